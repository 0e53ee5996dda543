//! Expands a panel's `rawSql` the way Grafana and the ClickHouse datasource plugin (v4) do
//! before the SQL reaches the server, so the tests can run it against a real ClickHouse.
//!
//! Order, as in Grafana: (1) the plugin's `$__conditionalAll(cond, $var)` (frontend): `1=1`
//! when `$var` is set to All, else `cond`; (2) Grafana's template variables: `$var`,
//! `${var}`, `${var:csv}`, `${var:singlequote}` (All becomes the variable's `allValue` when it
//! has one, else every option); (3) the plugin's time macros (backend):
//! `$__timeFilter(col)` → `col >= toDateTime(FROM) AND col <= toDateTime(TO)`,
//! `$__fromTime` → `toDateTime(FROM)`, `$__toTime` → `toDateTime(TO)`,
//! `$__interval_s` → the interval in whole seconds. FROM and TO are Unix seconds.
//! Anything else starting with `$` is left alone, so an unknown macro reaches the server and
//! fails the test.

use std::collections::BTreeMap;

/// The value a template variable is set to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VarValue {
    /// "All" selected.
    All,
    /// One or more concrete values.
    Values(Vec<String>),
}

/// A template variable: its current value, its options (for All) and its `allValue`.
#[derive(Debug, Clone)]
pub struct Var {
    pub value: VarValue,
    pub options: Vec<String>,
    pub all_value: Option<String>,
}

impl Var {
    fn values(&self) -> Vec<String> {
        match &self.value {
            VarValue::All => self.options.clone(),
            VarValue::Values(v) => v.clone(),
        }
    }

    fn format(&self, fmt: Option<&str>) -> String {
        if self.value == VarValue::All
            && let Some(all) = &self.all_value
        {
            return all.clone();
        }
        let vals = self.values();
        match fmt {
            Some("singlequote") => vals
                .iter()
                .map(|v| format!("'{}'", v.replace('\'', "\\'")))
                .collect::<Vec<_>>()
                .join(","),
            // csv, and Grafana's default for a multi-value variable outside a quoted format.
            _ => vals.join(","),
        }
    }
}

/// The dashboard time range and interval.
#[derive(Debug, Clone, Copy)]
pub struct Range {
    pub from: i64,
    pub to: i64,
    pub interval_s: i64,
}

/// Expands `sql` with `vars` and `range`.
pub fn expand(sql: &str, vars: &BTreeMap<String, Var>, range: Range) -> Result<String, String> {
    let sql = conditional_all(sql, vars)?;
    let sql = variables(&sql, vars)?;
    time_macros(&sql, range)
}

/// Splits `name(args)` at the matching parenthesis: returns (args, rest after `)`).
fn call_args(s: &str) -> Option<(&str, &str)> {
    let body = s.strip_prefix('(')?;
    let mut depth = 1usize;
    for (i, c) in body.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return Some((&body[..i], &body[i + 1..]));
                }
            }
            _ => {}
        }
    }
    None
}

/// Splits macro arguments at top-level commas.
fn split_args(args: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth) = (Vec::new(), String::new(), 0i32);
    for c in args.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(cur.trim().to_owned());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur.trim().to_owned());
    out
}

fn conditional_all(sql: &str, vars: &BTreeMap<String, Var>) -> Result<String, String> {
    const M: &str = "$__conditionalAll";
    let mut out = String::new();
    let mut rest = sql;
    while let Some(at) = rest.find(M) {
        out.push_str(&rest[..at]);
        let (args, after) =
            call_args(&rest[at + M.len()..]).ok_or("unclosed $__conditionalAll(")?;
        let a = split_args(args);
        let [cond, var] = a.as_slice() else {
            return Err(format!("$__conditionalAll takes 2 arguments, got {args}"));
        };
        let name = var
            .trim_start_matches('$')
            .trim_matches(|c| c == '{' || c == '}');
        let v = vars
            .get(name)
            .ok_or_else(|| format!("unknown variable {var}"))?;
        out.push_str(if v.value == VarValue::All {
            "1=1"
        } else {
            cond
        });
        rest = after;
    }
    out.push_str(rest);
    Ok(out)
}

fn variables(sql: &str, vars: &BTreeMap<String, Var>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at + 1..];
        if tail.starts_with("__") {
            // A macro: handled by the plugin later.
            out.push('$');
            rest = tail;
            continue;
        }
        let (name, fmt, after) = if let Some(b) = tail.strip_prefix('{') {
            let end = b.find('}').ok_or("unclosed ${")?;
            let inner = &b[..end];
            let (n, f) = match inner.split_once(':') {
                Some((n, f)) => (n, Some(f)),
                None => (inner, None),
            };
            (n, f, &b[end + 1..])
        } else {
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            (&tail[..end], None, &tail[end..])
        };
        let v = vars
            .get(name)
            .ok_or_else(|| format!("unknown variable ${name}"))?;
        out.push_str(&v.format(fmt));
        rest = after;
    }
    out.push_str(rest);
    Ok(out)
}

fn time_macros(sql: &str, r: Range) -> Result<String, String> {
    const TF: &str = "$__timeFilter";
    let mut out = String::new();
    let mut rest = sql;
    while let Some(at) = rest.find(TF) {
        out.push_str(&rest[..at]);
        let (col, after) = call_args(&rest[at + TF.len()..]).ok_or("unclosed $__timeFilter(")?;
        let col = col.trim();
        out.push_str(&format!(
            "{col} >= toDateTime({}) AND {col} <= toDateTime({})",
            r.from, r.to
        ));
        rest = after;
    }
    out.push_str(rest);
    Ok(out
        .replace("$__fromTime", &format!("toDateTime({})", r.from))
        .replace("$__toTime", &format!("toDateTime({})", r.to))
        .replace("$__interval_s", &r.interval_s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<String, Var> {
        let mut m = BTreeMap::new();
        m.insert(
            "sensor".into(),
            Var {
                value: VarValue::All,
                options: vec!["a".into(), "o'b".into()],
                all_value: None,
            },
        );
        m.insert(
            "severity".into(),
            Var {
                value: VarValue::All,
                options: vec!["1".into(), "2".into()],
                all_value: Some("1,2,3,4".into()),
            },
        );
        m.insert(
            "agency".into(),
            Var {
                value: VarValue::Values(vec!["MIC".into()]),
                options: vec![],
                all_value: None,
            },
        );
        m
    }

    const R: Range = Range {
        from: 1_700_000_000,
        to: 1_700_003_600,
        interval_s: 60,
    };

    #[test]
    fn time_macros_expand_to_unix_seconds() {
        let got = expand(
            "SELECT 1 FROM t WHERE $__timeFilter(ts) AND x < $__toTime AND y > $__fromTime GROUP BY intDiv(a, $__interval_s)",
            &vars(),
            R,
        )
        .unwrap();
        assert_eq!(
            got,
            "SELECT 1 FROM t WHERE ts >= toDateTime(1700000000) AND ts <= toDateTime(1700003600) \
             AND x < toDateTime(1700003600) AND y > toDateTime(1700000000) GROUP BY intDiv(a, 60)"
        );
    }

    #[test]
    fn variables_and_formats() {
        let v = vars();
        assert_eq!(
            expand(
                "a = '${agency}' AND s IN (${severity:csv}) AND $agency",
                &v,
                R
            )
            .unwrap(),
            "a = 'MIC' AND s IN (1,2,3,4) AND MIC"
        );
        assert_eq!(
            expand("x IN (${sensor:singlequote})", &v, R).unwrap(),
            r"x IN ('a','o\'b')"
        );
        assert!(expand("${nope}", &v, R).is_err());
    }

    #[test]
    fn conditional_all_depends_on_all() {
        let mut v = vars();
        let q = "WHERE $__conditionalAll(sensor IN (${sensor:singlequote}), $sensor) AND 1";
        assert_eq!(expand(q, &v, R).unwrap(), "WHERE 1=1 AND 1");
        v.get_mut("sensor").unwrap().value = VarValue::Values(vec!["a".into()]);
        assert_eq!(expand(q, &v, R).unwrap(), "WHERE sensor IN ('a') AND 1");
    }
}
