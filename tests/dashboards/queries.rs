//! Every panel query of every dashboard, run against a real ClickHouse seeded through the
//! real pipeline (see [`super::seed`]), expanded as Grafana and the plugin expand it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::expand::{Range, Var, VarValue, expand};

/// One query's outcome, for the report.
pub struct Ran {
    pub dashboard: String,
    pub panel: String,
    pub rows: usize,
    pub elapsed: Duration,
}

/// A result: (column name, type) pairs and the rows.
pub type Answer = (Vec<(String, String)>, Vec<Value>);

/// Runs `sql` (already expanded) and returns its columns and rows.
pub fn run_json(ch_url: &str, db: &str, sql: &str) -> Result<Answer, String> {
    let resp = reqwest::blocking::Client::new()
        .post(format!(
            "{ch_url}/?database={db}&output_format_json_quote_64bit_integers=0"
        ))
        .body(format!("{sql}\nFORMAT JSON"))
        .send()
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let text = resp.text().map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{status}: {}", text.trim()));
    }
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?;
    let meta = v["meta"]
        .as_array()
        .ok_or("no meta")?
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap_or_default().to_owned(),
                m["type"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let rows = v["data"].as_array().cloned().unwrap_or_default();
    Ok((meta, rows))
}

fn is_numeric(ty: &str) -> bool {
    let t = ty.trim_start_matches("Nullable(");
    t.starts_with("UInt")
        || t.starts_with("Int")
        || t.starts_with("Float")
        || t.starts_with("Decimal")
}

/// The template variables of `dash` with their default values; query variables are resolved
/// by running their query (Grafana's default: All where offered, else the first value).
fn variables(dash: &Value, ch_url: &str, db: &str, range: Range) -> BTreeMap<String, Var> {
    let mut vars = BTreeMap::new();
    for v in dash["templating"]["list"].as_array().unwrap() {
        let name = v["name"].as_str().unwrap().to_owned();
        let all_value = v["allValue"].as_str().map(str::to_owned);
        let var = match v["type"].as_str().unwrap() {
            "datasource" => continue,
            "custom" => {
                let options: Vec<String> = v["options"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|o| o["value"].as_str().unwrap().to_owned())
                    .collect();
                let cur = v["current"]["value"].as_str().unwrap();
                let value = if cur == "$__all" {
                    VarValue::All
                } else {
                    assert!(
                        options.iter().any(|o| o == cur),
                        "{name}: current {cur} not an option"
                    );
                    VarValue::Values(vec![cur.to_owned()])
                };
                Var {
                    value,
                    options,
                    all_value,
                }
            }
            "query" => {
                let sql = expand(v["query"].as_str().unwrap(), &vars, range)
                    .unwrap_or_else(|e| panic!("variable {name}: {e}"));
                let (_, rows) = run_json(ch_url, db, &sql)
                    .unwrap_or_else(|e| panic!("variable {name}: {sql}: {e}"));
                let options: Vec<String> = rows
                    .iter()
                    .filter_map(|r| r.as_object()?.values().next()?.as_str().map(str::to_owned))
                    .collect();
                assert!(
                    !options.is_empty(),
                    "variable {name} has no values on the seeded data: {sql}"
                );
                let value = if v["includeAll"].as_bool() == Some(true) {
                    VarValue::All
                } else {
                    VarValue::Values(vec![options[0].clone()])
                };
                Var {
                    value,
                    options,
                    all_value,
                }
            }
            other => panic!("{name}: variable type {other} not handled by the test"),
        };
        vars.insert(name, var);
    }
    vars
}

/// Runs every panel of `dash` with `vars`, checking each result; returns what ran.
fn run_panels(
    dash_name: &str,
    dash: &Value,
    vars: &BTreeMap<String, Var>,
    ch_url: &str,
    db: &str,
    range: Range,
    strict: bool,
) -> Vec<Ran> {
    let mut out = Vec::new();
    for p in dash["panels"].as_array().unwrap() {
        let title = p["title"].as_str().unwrap();
        let kind = p["type"].as_str().unwrap();
        let raw = p["targets"][0]["rawSql"].as_str().unwrap();
        let ctx = format!("{dash_name} / {title}");
        let sql = expand(raw, vars, range).unwrap_or_else(|e| panic!("{ctx}: {e}"));
        let t = Instant::now();
        let (meta, rows) =
            run_json(ch_url, db, &sql).unwrap_or_else(|e| panic!("{ctx}: {sql}: {e}"));
        let elapsed = t.elapsed();
        if strict {
            assert!(!rows.is_empty(), "{ctx}: no rows on the seeded data: {sql}");
        }
        let names: Vec<&str> = meta.iter().map(|(n, _)| n.as_str()).collect();
        match kind {
            "timeseries" => {
                assert_eq!(names[0], "time", "{ctx}: time series need `time` first");
                assert!(
                    meta[0].1.contains("DateTime"),
                    "{ctx}: time is {}",
                    meta[0].1
                );
                assert!(
                    meta[1..].iter().any(|(_, t)| is_numeric(t)),
                    "{ctx}: no numeric column"
                );
            }
            "stat" => {
                assert_eq!(meta.len(), 1, "{ctx}: a stat shows one number");
                assert!(
                    is_numeric(&meta[0].1),
                    "{ctx}: {} is not numeric",
                    meta[0].1
                );
                let v = rows
                    .first()
                    .and_then(|r| r[&meta[0].0].as_f64())
                    .unwrap_or(f64::NAN);
                if strict {
                    assert!(
                        v.is_finite() && v > 0.0,
                        "{ctx}: {} = {v} on the seeded data",
                        meta[0].0
                    );
                }
            }
            "barchart" => {
                assert!(
                    meta.len() >= 2 && !is_numeric(&meta[0].1),
                    "{ctx}: label column first"
                );
                assert!(
                    meta[1..].iter().all(|(_, t)| is_numeric(t)),
                    "{ctx}: values numeric"
                );
            }
            "table" => {}
            other => panic!("{ctx}: panel type {other} not checked by the test"),
        }
        // Drill-down links read fields of the result: they must exist.
        for l in p["fieldConfig"]["defaults"]["links"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let url = format!("{}{}", l["title"], l["url"]);
            for part in url.split("${__data.fields.").skip(1) {
                let field = part.split('}').next().unwrap();
                assert!(
                    names.contains(&field),
                    "{ctx}: link uses field {field}, result has {names:?}"
                );
            }
        }
        out.push(Ran {
            dashboard: dash_name.to_owned(),
            panel: title.to_owned(),
            rows: rows.len(),
            elapsed,
        });
    }
    out
}

/// Runs every dashboard twice: variables at their defaults (All where offered), then every
/// multi-value variable narrowed to its first value (the other branch of
/// `$__conditionalAll` and of All formatting).
pub fn run_all(ch_url: &str, db: &str, range: Range) -> Vec<Ran> {
    let mut report = Vec::new();
    for (name, dash) in super::dashboards() {
        let vars = variables(&dash, ch_url, db, range);
        report.extend(run_panels(&name, &dash, &vars, ch_url, db, range, true));
        let mut narrowed = vars.clone();
        for v in narrowed.values_mut() {
            if v.value == VarValue::All {
                v.value = VarValue::Values(vec![v.options[0].clone()]);
            }
        }
        if narrowed
            .iter()
            .any(|(k, v)| vars.get(k).is_some_and(|o| o.value != v.value))
        {
            // Narrowed, a panel may rightly be empty; it must still run and keep its shape.
            run_panels(&name, &dash, &narrowed, ch_url, db, range, false);
        }
    }
    report
}
