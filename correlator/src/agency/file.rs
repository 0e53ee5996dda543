//! The directory file: TOML, `[[policy]]` and `[[agency]]` tables (format in
//! `rules/agencies/README.md`).
//!
//! Input: the file's text (and its folder, for `secret_file`). Output: a validated list of
//! [`Agency`] (effective policies resolved), or every problem found, each with its line:
//! TOML syntax and unknown fields, bad codes, unknown or missing parents, cycles, more than
//! one root, levels, codes that do not extend their parent's, bad or overlapping prefixes,
//! unknown policies, bad SLAs and webhooks. Caps: 100,000 agencies, 1,024 prefixes and 16
//! webhooks per agency; at most 100 errors are listed.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use ipnet::IpNet;
use serde::Deserialize;
use toml::Spanned;

use super::{
    AfterResolve, Agency, Contact, MAX_LEVEL, Policy, Sla, Webhook, WebhookEvent, check_code,
};

/// Most agencies in one file.
pub const MAX_AGENCIES: usize = 100_000;
/// Most prefixes per agency.
pub const MAX_PREFIXES: usize = 1024;
/// Most webhooks per agency.
pub const MAX_WEBHOOKS: usize = 16;
/// Most errors reported.
pub const MAX_ERRORS: usize = 100;

/// One problem in a directory file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line (0 when the whole file is concerned).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Why a directory file cannot be loaded: every problem found, with lines.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.file, .problems))]
pub struct DirectoryError {
    /// The file name (for messages).
    pub file: String,
    /// The problems, in line order.
    pub problems: Vec<Problem>,
}

fn render(file: &str, problems: &[Problem]) -> String {
    let mut s = format!("{} problem(s) in {file}:", problems.len());
    for p in problems {
        s.push_str(&format!("\n  {file}:{}: {}", p.line, p.message));
    }
    s
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Doc {
    #[serde(default)]
    policy: Vec<Spanned<PolicyEntry>>,
    #[serde(default)]
    agency: Vec<Spanned<AgencyEntry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyEntry {
    name: String,
    #[serde(default = "default_ticket_severity")]
    ticket_severity: u8,
    #[serde(default)]
    after_resolve: AfterResolve,
    #[serde(default)]
    sla: Vec<SlaEntry>,
}

fn default_ticket_severity() -> u8 {
    2
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SlaEntry {
    severity: u8,
    ack: String,
    resolve: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AgencyEntry {
    code: String,
    name: String,
    #[serde(default)]
    parent: Option<String>,
    #[serde(default)]
    level: Option<u8>,
    #[serde(default)]
    prefixes: Vec<String>,
    #[serde(default)]
    contacts: Vec<Contact>,
    #[serde(default)]
    policy: Option<String>,
    #[serde(default)]
    webhook: Vec<WebhookEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookEntry {
    url: String,
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    secret_file: Option<String>,
    #[serde(default)]
    events: Option<Vec<String>>,
    #[serde(default)]
    subtree: bool,
}

struct Lines<'a> {
    text: &'a str,
}

impl Lines<'_> {
    fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text
            .get(..end)
            .map_or(1, |t| t.bytes().filter(|&b| b == b'\n').count() + 1)
    }
}

/// Parses and validates a directory file. `base_dir` resolves relative `secret_file`s.
///
/// # Errors
/// [`DirectoryError`] listing every problem with its line.
pub fn parse_directory(
    file_name: &str,
    text: &str,
    base_dir: &Path,
) -> Result<Vec<Agency>, DirectoryError> {
    let lines = Lines { text };
    let fail = |problems: Vec<Problem>| DirectoryError {
        file: file_name.to_owned(),
        problems,
    };
    let doc: Doc = toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(0, |s| lines.line_of(s.start));
        fail(vec![Problem {
            line,
            message: e.message().to_owned(),
        }])
    })?;
    // A `RefCell` so the reporting closure and the checks below can share the list.
    let problems: RefCell<Vec<Problem>> = RefCell::new(Vec::new());
    let err = |line: usize, message: String| {
        let mut list = problems.borrow_mut();
        if list.len() < MAX_ERRORS {
            list.push(Problem { line, message });
        }
    };
    if doc.agency.len() > MAX_AGENCIES {
        return Err(fail(vec![Problem {
            line: 0,
            message: format!("more than {MAX_AGENCIES} agencies"),
        }]));
    }
    // Policies.
    let mut policies: HashMap<String, Policy> = HashMap::new();
    policies.insert("default".into(), Policy::builtin());
    let mut declared: HashSet<String> = HashSet::new();
    for sp in &doc.policy {
        let line = lines.line_of(sp.span().start);
        let p = sp.get_ref();
        if p.name.is_empty() || p.name.len() > 64 {
            err(line, "policy name must be 1-64 characters".into());
            continue;
        }
        if !declared.insert(p.name.clone()) {
            err(line, format!("policy '{}' is defined twice", p.name));
            continue;
        }
        if p.ticket_severity == 0 {
            err(
                line,
                format!("policy '{}': ticket_severity must be 1 or more", p.name),
            );
        }
        let mut sla = Vec::new();
        let mut sevs = HashSet::new();
        for s in &p.sla {
            let ack = crate::config::parse_duration(&s.ack);
            let resolve = crate::config::parse_duration(&s.resolve);
            match (ack, resolve) {
                (Ok(ack), Ok(resolve)) if !ack.is_zero() && ack <= resolve && s.severity > 0 => {
                    if sevs.insert(s.severity) {
                        sla.push(Sla {
                            severity: s.severity,
                            ack,
                            resolve,
                        });
                    } else {
                        err(
                            line,
                            format!("policy '{}': two SLAs for severity {}", p.name, s.severity),
                        );
                    }
                }
                (Err(e), _) | (_, Err(e)) => err(line, format!("policy '{}': {e}", p.name)),
                _ => err(
                    line,
                    format!(
                        "policy '{}': severity {} needs severity >= 1 and 0 < ack <= resolve",
                        p.name, s.severity
                    ),
                ),
            }
        }
        sla.sort_by_key(|s| s.severity);
        policies.insert(
            p.name.clone(),
            Policy {
                name: p.name.clone(),
                ticket_severity: p.ticket_severity,
                after_resolve: p.after_resolve,
                sla,
            },
        );
    }
    // Agencies: codes and duplicates.
    let mut by_code: BTreeMap<String, (usize, &AgencyEntry)> = BTreeMap::new();
    for sp in &doc.agency {
        let line = lines.line_of(sp.span().start);
        let a = sp.get_ref();
        if let Err(m) = check_code(&a.code) {
            err(line, m);
            continue;
        }
        if a.name.trim().is_empty() || a.name.len() > 256 {
            err(
                line,
                format!("agency '{}': name must be 1-256 characters", a.code),
            );
        }
        if let Some((first, _)) = by_code.get(&a.code) {
            err(
                line,
                format!(
                    "agency '{}' is defined twice (first on line {first})",
                    a.code
                ),
            );
            continue;
        }
        by_code.insert(a.code.clone(), (line, a));
    }
    // Parents, roots, cycles, levels, hierarchical codes.
    let mut roots = Vec::new();
    let mut level: HashMap<&str, u8> = HashMap::new();
    for (code, (line, a)) in &by_code {
        match &a.parent {
            None => roots.push((*line, code.as_str())),
            Some(p) if !by_code.contains_key(p) => {
                err(
                    *line,
                    format!("agency '{code}': unknown parent '{}'", cut(p)),
                );
            }
            Some(_) => {}
        }
    }
    if roots.len() > 1 {
        let list: Vec<String> = roots
            .iter()
            .map(|(l, c)| format!("'{c}' (line {l})"))
            .collect();
        err(
            roots.first().map_or(0, |r| r.0),
            format!(
                "the tree needs exactly one root (an agency without parent); found {}",
                list.join(", ")
            ),
        );
    } else if by_code.is_empty() {
        // Loading it would mark every stored agency deleted: refuse rather than guess.
        err(0, "the file defines no agency".into());
    } else if roots.is_empty() {
        err(0, "the tree has no root (an agency without parent)".into());
    }
    for (code, (line, _)) in &by_code {
        // Walk up; a chain longer than the number of agencies is a cycle.
        let mut chain: Vec<&str> = vec![code.as_str()];
        let mut cur = code.as_str();
        let mut cycle = false;
        while let Some(p) = by_code.get(cur).and_then(|(_, a)| a.parent.as_deref()) {
            if !by_code.contains_key(p) {
                break;
            }
            if chain.contains(&p) {
                cycle = true;
                break;
            }
            chain.push(p);
            cur = p;
        }
        if cycle {
            err(
                *line,
                format!(
                    "agency '{code}': its parent chain is a cycle ({} → ...)",
                    chain.join(" → ")
                ),
            );
            continue;
        }
        let depth = u8::try_from(chain.len() - 1).unwrap_or(u8::MAX);
        let reaches_root = by_code.get(cur).is_some_and(|(_, a)| a.parent.is_none());
        if reaches_root {
            level.insert(code.as_str(), depth);
        }
    }
    for (code, (line, a)) in &by_code {
        let Some(&lv) = level.get(code.as_str()) else {
            continue;
        };
        if lv > MAX_LEVEL {
            err(
                *line,
                format!(
                    "agency '{code}' is at level {lv}; the tree has levels 1-{MAX_LEVEL} below the root"
                ),
            );
        }
        if let Some(want) = a.level
            && want != lv
        {
            err(
                *line,
                format!(
                    "agency '{code}': level = {want}, but its parent chain puts it at level {lv}"
                ),
            );
        }
        match (&a.parent, lv) {
            (Some(_), 1) if code.contains('.') => err(
                *line,
                format!("agency '{code}': a level-1 code is one segment (no '.')"),
            ),
            (Some(p), l) if l >= 2 => {
                let ok = code
                    .strip_prefix(p.as_str())
                    .and_then(|r| r.strip_prefix('.'))
                    .is_some_and(|seg| !seg.contains('.'));
                if !ok {
                    err(
                        *line,
                        format!(
                            "agency '{code}': code must be its parent's code plus one segment ('{p}.X')"
                        ),
                    );
                }
            }
            (None, _) if code.contains('.') => {
                err(
                    *line,
                    format!("root '{code}': the root's code is one segment"),
                );
            }
            _ => {}
        }
    }
    // Prefixes.
    let mut nets: Vec<(IpNet, &str, usize)> = Vec::new();
    for (code, (line, a)) in &by_code {
        if a.prefixes.len() > MAX_PREFIXES {
            err(
                *line,
                format!("agency '{code}': more than {MAX_PREFIXES} prefixes"),
            );
            continue;
        }
        for p in &a.prefixes {
            match p.parse::<IpNet>() {
                Ok(n) if n.trunc() != n => err(
                    *line,
                    format!(
                        "agency '{code}': prefix {p} has host bits set (did you mean {}?)",
                        n.trunc()
                    ),
                ),
                Ok(n) => nets.push((n, code.as_str(), *line)),
                Err(_) => err(
                    *line,
                    format!(
                        "agency '{code}': '{}' is not an IPv4/IPv6 CIDR prefix",
                        cut(p)
                    ),
                ),
            }
        }
    }
    let is_ancestor = |anc: &str, code: &str| -> bool {
        let mut cur = code;
        for _ in 0..=MAX_LEVEL + 1 {
            match by_code.get(cur).and_then(|(_, a)| a.parent.as_deref()) {
                Some(p) if p == anc => return true,
                Some(p) => cur = p,
                None => return false,
            }
        }
        false
    };
    nets.sort_by_key(|a| (a.0.network(), a.0.prefix_len()));
    for (i, (n, owner, line)) in nets.iter().enumerate() {
        for (m, other, _) in nets.iter().skip(i + 1) {
            // Sorted by network address: once `m` starts past `n`'s end, nothing later overlaps.
            if !n.contains(&m.network()) {
                if m.network() > n.broadcast() {
                    break;
                }
                continue;
            }
            if owner == other {
                if n == m {
                    err(*line, format!("agency '{owner}' lists {n} twice"));
                }
                continue;
            }
            if n == m {
                err(
                    *line,
                    format!("prefix {n} is claimed by both '{owner}' and '{other}'"),
                );
            } else if !is_ancestor(owner, other) {
                err(
                    *line,
                    format!(
                        "prefix {m} of '{other}' overlaps {n} of '{owner}', which is not its ancestor (only delegation to a descendant may nest)"
                    ),
                );
            }
        }
    }
    // Policies and webhooks, resolved down the tree.
    for (code, (line, a)) in &by_code {
        if let Some(p) = &a.policy
            && !policies.contains_key(p)
        {
            err(
                *line,
                format!("agency '{code}': unknown policy '{}'", cut(p)),
            );
        }
        if a.webhook.len() > MAX_WEBHOOKS {
            err(
                *line,
                format!("agency '{code}': more than {MAX_WEBHOOKS} webhooks"),
            );
        }
        for w in &a.webhook {
            if !(w.url.starts_with("http://") || w.url.starts_with("https://"))
                || w.url.len() > 2048
            {
                err(
                    *line,
                    format!(
                        "agency '{code}': webhook url must be http:// or https:// (at most 2048 characters)"
                    ),
                );
            }
            match (&w.secret, &w.secret_file) {
                (Some(_), Some(_)) => err(
                    *line,
                    format!("agency '{code}': webhook has both secret and secret_file"),
                ),
                (None, None) => err(
                    *line,
                    format!("agency '{code}': webhook needs secret or secret_file (HMAC key)"),
                ),
                _ => {}
            }
            for e in w.events.iter().flatten() {
                if WebhookEvent::parse(e).is_none() {
                    err(
                        *line,
                        format!(
                            "agency '{code}': unknown webhook event '{}' (ticket.opened, ticket.escalated, sla.breached, ticket.resolved)",
                            cut(e)
                        ),
                    );
                }
            }
        }
    }
    if !problems.borrow().is_empty() {
        let mut list = problems.take();
        list.sort_by_key(|p| p.line);
        return Err(fail(list));
    }
    // Build, resolving inherited policies from the root down and reading secrets.
    let mut out: Vec<Agency> = Vec::with_capacity(by_code.len());
    let mut effective: HashMap<String, Policy> = HashMap::new();
    let mut order: Vec<(&String, u8)> = by_code
        .keys()
        .filter_map(|c| level.get(c.as_str()).map(|l| (c, *l)))
        .collect();
    order.sort_by_key(|(c, l)| (*l, (*c).clone()));
    for (code, _) in order {
        let Some((line, a)) = by_code.get(code) else {
            continue;
        };
        let policy = match &a.policy {
            Some(p) => policies.get(p).cloned().unwrap_or_else(Policy::builtin),
            None => a
                .parent
                .as_ref()
                .and_then(|p| effective.get(p).cloned())
                .unwrap_or_else(|| {
                    policies
                        .get("default")
                        .cloned()
                        .unwrap_or_else(Policy::builtin)
                }),
        };
        effective.insert(code.clone(), policy.clone());
        let mut webhooks = Vec::new();
        for (i, w) in a.webhook.iter().enumerate() {
            let secret = match (&w.secret, &w.secret_file) {
                (Some(s), _) => s.clone(),
                (None, Some(f)) => {
                    let path = base_dir.join(f);
                    match std::fs::read_to_string(&path) {
                        Ok(t) => t.lines().next().unwrap_or_default().trim().to_owned(),
                        Err(e) => {
                            err(
                                *line,
                                format!("agency '{code}': reading {}: {e}", path.display()),
                            );
                            continue;
                        }
                    }
                }
                (None, None) => continue,
            };
            if secret.len() < 16 {
                err(
                    *line,
                    format!("agency '{code}': webhook secret must be at least 16 characters"),
                );
                continue;
            }
            webhooks.push(Webhook {
                id: format!("{code}#{i}"),
                agency: code.clone(),
                url: w.url.clone(),
                secret,
                events: match &w.events {
                    Some(list) => list.iter().filter_map(|e| WebhookEvent::parse(e)).collect(),
                    None => WebhookEvent::ALL.to_vec(),
                },
                subtree: w.subtree,
            });
        }
        out.push(Agency {
            code: code.clone(),
            name: a.name.trim().to_owned(),
            level: level.get(code.as_str()).copied().unwrap_or(0),
            parent: a.parent.clone(),
            prefixes: a.prefixes.iter().filter_map(|p| p.parse().ok()).collect(),
            contacts: a.contacts.clone(),
            policy,
            webhooks,
        });
    }
    if !problems.borrow().is_empty() {
        return Err(fail(problems.take()));
    }
    Ok(out)
}

fn cut(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agency::Directory;

    const GOOD: &str = r#"
[[policy]]
name = "strict"
ticket_severity = 2
after_resolve = "link"
sla = [{ severity = 1, ack = "15m", resolve = "4h" }, { severity = 2, ack = "1h", resolve = "1d" }]

[[agency]]
code = "NCC"
name = "National Coordination Centre"
policy = "strict"

[[agency]]
code = "MIC"
parent = "NCC"
name = "Ministry of Information"
prefixes = ["10.1.0.0/16", "2001:db8:1::/48"]

[[agency]]
code = "MIC.DEPT-3"
parent = "MIC"
level = 2
name = "Department 3"
prefixes = ["10.1.3.0/24"]
[[agency.webhook]]
url = "http://127.0.0.1:9/hook"
secret = "0123456789abcdef0123"
events = ["ticket.opened"]
"#;

    fn parse(text: &str) -> Result<Vec<Agency>, DirectoryError> {
        parse_directory("t.toml", text, Path::new("."))
    }

    proptest::proptest! {
        /// Any text: no panic; problems name lines inside the file.
        #[test]
        fn any_text_parses_or_names_lines(text in "\\PC{0,400}") {
            if let Err(e) = parse(&text) {
                let lines = text.lines().count().max(1);
                for p in &e.problems {
                    proptest::prop_assert!(p.line <= lines + 1, "line {} of {}", p.line, lines);
                }
            }
        }

        /// A good file with one line dropped: accepted as a tree, or every problem names a line.
        #[test]
        fn good_file_minus_a_line(drop in 0usize..40) {
            let text: String = GOOD
                .lines()
                .enumerate()
                .filter(|(i, _)| *i != drop)
                .map(|(_, l)| format!("{l}\n"))
                .collect();
            match parse(&text) {
                Ok(list) => {
                    proptest::prop_assert_eq!(list.iter().filter(|a| a.parent.is_none()).count(), 1);
                }
                Err(e) => {
                    proptest::prop_assert!(!e.problems.is_empty());
                    let lines = text.lines().count();
                    for p in &e.problems {
                        proptest::prop_assert!(p.line <= lines + 1);
                    }
                }
            }
        }
    }

    #[test]
    fn an_empty_file_is_refused() {
        let e = parse("# nothing here\n").unwrap_err();
        assert_eq!(e.problems.len(), 1);
        assert_eq!(e.problems[0].message, "the file defines no agency");
    }

    #[test]
    fn good_file_builds_a_tree() {
        let list = parse(GOOD).unwrap();
        let d = Directory::from_validated(list, 1);
        assert_eq!(d.root(), Some("NCC"));
        assert_eq!(d.get("MIC.DEPT-3").unwrap().level, 2);
        // Inherited policy.
        assert_eq!(d.policy_for("MIC.DEPT-3").name, "strict");
        assert_eq!(d.policy_for("MIC.DEPT-3").after_resolve, AfterResolve::Link);
        assert_eq!(d.owner_of("10.1.3.9".parse().unwrap()), Some("MIC.DEPT-3"));
        assert_eq!(d.owner_of("10.1.4.9".parse().unwrap()), Some("MIC"));
        assert_eq!(d.owner_of("2001:db8:1::1".parse().unwrap()), Some("MIC"));
        assert_eq!(d.path("MIC.DEPT-3"), "/NCC/MIC/MIC.DEPT-3/");
        assert_eq!(d.level1("MIC.DEPT-3"), "MIC");
        assert_eq!(d.level1("NCC"), "");
        assert!(d.in_subtree("MIC.DEPT-3", "MIC"));
        assert!(d.in_subtree("MIC", "NCC"));
        assert!(!d.in_subtree("MICX", "MIC"));
        assert_eq!(d.webhooks_for("MIC.DEPT-3").len(), 1);
        assert_eq!(d.webhooks_for("MIC").len(), 0);
        let order: Vec<&str> = d.preorder().iter().map(|a| a.code.as_str()).collect();
        assert_eq!(order, ["NCC", "MIC", "MIC.DEPT-3"]);
    }

    #[test]
    fn shipped_national_tree_is_valid_and_owns_by_longest_prefix() {
        let text = include_str!("../../../rules/agencies/national.toml");
        let list = parse(text).unwrap();
        // 1 root + 22 ministries × (1 + 4 departments + data centre + lab)
        //        + 63 provinces × (1 + 3 departments + hospital + 2 × (district, commune, school)).
        assert_eq!(list.len(), 1 + 22 * 7 + 63 * 11);
        let d = Directory::from_validated(list, 1);
        assert_eq!(d.root(), Some("NCC"));
        let level1: Vec<&Agency> = d.preorder().into_iter().filter(|a| a.level == 1).collect();
        assert_eq!(level1.len(), 85);
        assert_eq!(d.preorder().iter().map(|a| a.level).max(), Some(4));
        // MOH is the 18th ministry: 10.18.0.0/16; its IT department (first) 10.18.16.0/20,
        // the data centre 10.18.17.0/24, the laboratory 10.18.17.128/25.
        let own = |ip: &str| d.owner_of(ip.parse().unwrap()).map(str::to_owned);
        assert_eq!(own("10.18.17.200").as_deref(), Some("MOH.IT.DC.LAB"));
        assert_eq!(own("::ffff:10.18.17.200").as_deref(), Some("MOH.IT.DC.LAB"));
        assert_eq!(own("10.18.17.5").as_deref(), Some("MOH.IT.DC"));
        assert_eq!(own("10.18.31.255").as_deref(), Some("MOH.IT"));
        assert_eq!(own("10.18.200.1").as_deref(), Some("MOH"));
        assert_eq!(own("10.0.5.5").as_deref(), Some("NCC"));
        assert_eq!(own("10.23.0.1"), None);
        // Ha Noi is province 1: 100.64.0.0/16; district 1 = 100.64.64.0/20, its commune
        // 100.64.65.0/24, the school 100.64.65.128/26.
        assert_eq!(own("100.64.65.130").as_deref(), Some("HA-NOI.D1.C1.SCH"));
        assert_eq!(own("100.64.65.200").as_deref(), Some("HA-NOI.D1.C1"));
        assert_eq!(own("2001:db8:101:2000::1").as_deref(), Some("HA-NOI.DOH"));
        assert_eq!(own("2001:db8:12:f000::1").as_deref(), Some("MOH"));
        assert_eq!(d.policy_for("HA-NOI.DOH.HOSP").name, "health");
        assert_eq!(d.policy_for("HA-NOI.D1").name, "province");
        assert_eq!(
            d.path("HA-NOI.D1.C1.SCH"),
            "/NCC/HA-NOI/HA-NOI.D1/HA-NOI.D1.C1/HA-NOI.D1.C1.SCH/"
        );
    }

    fn problems(text: &str) -> Vec<(usize, String)> {
        parse(text)
            .unwrap_err()
            .problems
            .into_iter()
            .map(|p| (p.line, p.message))
            .collect()
    }

    #[test]
    fn errors_carry_lines() {
        let root = "[[agency]]\ncode = \"NCC\"\nname = \"Root\"\n";
        // line 4: unknown parent.
        let p = problems(&format!(
            "{root}[[agency]]\ncode = \"MIC\"\nparent = \"NOPE\"\nname = \"M\"\n"
        ));
        assert_eq!(
            p,
            vec![(4, "agency 'MIC': unknown parent 'NOPE'".to_owned())]
        );
        // Bad code, on line 4.
        let p = problems(&format!(
            "{root}[[agency]]\ncode = \"mic\"\nparent = \"NCC\"\nname = \"M\"\n"
        ));
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].0, 4);
        assert!(p[0].1.contains("segment 'mic'"), "{p:?}");
        // Cycle: A → B → A (both also fail to reach a root).
        let p = problems(&format!(
            "{root}[[agency]]\ncode = \"A\"\nparent = \"B\"\nname = \"a\"\n[[agency]]\ncode = \"B\"\nparent = \"A\"\nname = \"b\"\n"
        ));
        assert!(
            p.iter().any(|(l, m)| *l == 4 && m.contains("cycle")),
            "{p:?}"
        );
        assert!(
            p.iter().any(|(l, m)| *l == 8 && m.contains("cycle")),
            "{p:?}"
        );
        // Overlap between unrelated agencies, on the line of the shorter prefix's owner.
        let p = problems(&format!(
            "{root}[[agency]]\ncode = \"A\"\nparent = \"NCC\"\nname = \"a\"\nprefixes = [\"10.0.0.0/8\"]\n\
             [[agency]]\ncode = \"B\"\nparent = \"NCC\"\nname = \"b\"\nprefixes = [\"10.2.0.0/16\"]\n"
        ));
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].0, 4);
        assert!(
            p[0].1
                .contains("10.2.0.0/16 of 'B' overlaps 10.0.0.0/8 of 'A'"),
            "{p:?}"
        );
        // Same prefix twice, host bits, garbage.
        let p = problems(&format!(
            "{root}[[agency]]\ncode = \"A\"\nparent = \"NCC\"\nname = \"a\"\nprefixes = [\"10.0.0.0/8\", \"10.1.2.3/16\", \"nope\"]\n\
             [[agency]]\ncode = \"B\"\nparent = \"NCC\"\nname = \"b\"\nprefixes = [\"10.0.0.0/8\"]\n"
        ));
        assert!(
            p.iter()
                .any(|(_, m)| m.contains("host bits set (did you mean 10.1.0.0/16?)")),
            "{p:?}"
        );
        assert!(p.iter().any(|(_, m)| m.contains("'nope' is not")), "{p:?}");
        assert!(
            p.iter()
                .any(|(_, m)| m.contains("claimed by both 'A' and 'B'")),
            "{p:?}"
        );
        // Child code must extend the parent's; two roots; TOML syntax with its line.
        let p = problems(&format!(
            "{root}[[agency]]\ncode = \"A\"\nparent = \"NCC\"\nname = \"a\"\n[[agency]]\ncode = \"B.X\"\nparent = \"A\"\nname = \"x\"\n"
        ));
        assert_eq!(
            p,
            vec![(
                8,
                "agency 'B.X': code must be its parent's code plus one segment ('A.X')".to_owned()
            )]
        );
        let p = problems(&format!("{root}[[agency]]\ncode = \"R2\"\nname = \"r\"\n"));
        assert!(p[0].1.contains("exactly one root"), "{p:?}");
        let p = problems(&format!(
            "{root}[[agency]]\ncode = \"A\"\nparnet = \"NCC\"\nname = \"a\"\n"
        ));
        // Line 6 holds the misspelt key (4: `[[agency]]`, 5: `code`).
        assert_eq!(p[0].0, 6, "{p:?}");
        assert!(p[0].1.contains("unknown field `parnet`"), "{p:?}");
        let p = problems("[[agency]]\ncode = \"NCC\"\nname = \n");
        assert_eq!(p[0].0, 3, "{p:?}");
        // Level 5 is too deep; a stated level must match.
        let mut deep = root.to_owned();
        let mut parent = "NCC".to_owned();
        let mut code = String::new();
        for (i, seg) in ["L1", "L2", "L3", "L4", "L5"].iter().enumerate() {
            code = if i == 0 {
                (*seg).to_owned()
            } else {
                format!("{code}.{seg}")
            };
            deep.push_str(&format!(
                "[[agency]]\ncode = \"{code}\"\nparent = \"{parent}\"\nname = \"x\"\n"
            ));
            parent.clone_from(&code);
        }
        let p = problems(&deep);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].1.contains("level 5"), "{p:?}");
    }
}
