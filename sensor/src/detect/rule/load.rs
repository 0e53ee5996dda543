//! Rule files: comments, blank lines, `\` line continuations, and a report of what loaded.
//!
//! Each rejected rule is reported as `file:line: reason` (the line where the rule starts)
//! and skipped; the rest load. A second rule with the same `gid:sid` replaces the first only
//! if its `rev` is higher, as in Suricata; the loser is reported as a duplicate.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use super::{Rule, RuleError, Vars, parse_rule};

/// A rule and where it came from.
#[derive(Debug, Clone)]
pub struct LoadedRule {
    /// The parsed rule.
    pub rule: Rule,
    /// Source file.
    pub file: PathBuf,
    /// 1-based line where the rule starts.
    pub line: usize,
}

/// A rule that did not load.
#[derive(Debug, Clone)]
pub struct Rejection {
    /// Source file.
    pub file: PathBuf,
    /// 1-based line where the rule starts (0 when the file itself could not be read).
    pub line: usize,
    /// Why.
    pub error: RejectReason,
}

/// Why a rule (or a file) was rejected.
#[derive(Debug, Clone)]
pub enum RejectReason {
    /// The rule text is invalid or uses something unsupported.
    Rule(RuleError),
    /// Another rule with the same gid:sid and a higher (or equal, earlier) rev won.
    Duplicate {
        /// gid.
        gid: u32,
        /// sid.
        sid: u32,
    },
    /// The file could not be read.
    Io(String),
}

impl RejectReason {
    /// Category for summaries.
    #[must_use]
    pub fn reason_key(&self) -> String {
        match self {
            Self::Rule(e) => e.reason_key(),
            Self::Duplicate { .. } => "duplicate sid".to_owned(),
            Self::Io(_) => "unreadable file".to_owned(),
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rule(e) => write!(f, "{e}"),
            Self::Duplicate { gid, sid } => {
                write!(
                    f,
                    "duplicate signature {gid}:{sid} (a rule with a higher or equal rev was kept)"
                )
            }
            Self::Io(e) => write!(f, "cannot read: {e}"),
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.error)
    }
}

/// The outcome of loading rule files.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Rules that loaded, in file order.
    pub rules: Vec<LoadedRule>,
    /// Rules (or files) that did not.
    pub rejected: Vec<Rejection>,
    /// Files that could not be read at all.
    pub unreadable_files: usize,
}

impl LoadReport {
    /// Rejections counted by [`RejectReason::reason_key`].
    #[must_use]
    pub fn by_reason(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for r in &self.rejected {
            *m.entry(r.error.reason_key()).or_insert(0) += 1;
        }
        m
    }
}

/// Splits rule text into logical rules: `(first line number, text)`, skipping comments and
/// blank lines and joining lines that end in `\`.
pub fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        let (start, mut acc) = match pending.take() {
            Some(p) => p,
            None => {
                let t = line.trim_start();
                if t.is_empty() || t.starts_with('#') {
                    continue;
                }
                (i + 1, String::new())
            }
        };
        if let Some(body) = line.strip_suffix('\\') {
            acc.push_str(body);
            pending = Some((start, acc));
        } else {
            acc.push_str(line);
            out.push((start, acc));
        }
    }
    if let Some(p) = pending {
        out.push(p);
    }
    out
}

/// Parses rules from `text` (as if read from `file`) into `report`.
pub fn load_str(text: &str, file: &Path, vars: &Vars, report: &mut LoadReport) {
    for (line, rule_text) in logical_lines(text) {
        match parse_rule(&rule_text, vars) {
            Ok(rule) => report.rules.push(LoadedRule {
                rule,
                file: file.to_owned(),
                line,
            }),
            Err(e) => report.rejected.push(Rejection {
                file: file.to_owned(),
                line,
                error: RejectReason::Rule(e),
            }),
        }
    }
}

/// Loads rule files. Unreadable files are reported, not fatal: the caller decides (the
/// sensor refuses to start when no rule loaded at all).
#[must_use]
pub fn load_files(paths: &[PathBuf], vars: &Vars) -> LoadReport {
    let mut report = LoadReport::default();
    for path in paths {
        match std::fs::read(path) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                load_str(&text, path, vars, &mut report);
            }
            Err(e) => {
                report.unreadable_files += 1;
                report.rejected.push(Rejection {
                    file: path.clone(),
                    line: 0,
                    error: RejectReason::Io(e.to_string()),
                });
            }
        }
    }
    dedup_sids(&mut report);
    report
}

/// Keeps one rule per gid:sid (highest rev, first on ties).
fn dedup_sids(report: &mut LoadReport) {
    let mut best: HashMap<(u32, u32), usize> = HashMap::new();
    for (i, r) in report.rules.iter().enumerate() {
        let key = (r.rule.gid, r.rule.sid);
        match best.get(&key) {
            Some(&j) if report.rules[j].rule.rev >= r.rule.rev => {}
            _ => {
                best.insert(key, i);
            }
        }
    }
    if best.len() == report.rules.len() {
        return;
    }
    let rules = std::mem::take(&mut report.rules);
    for (i, r) in rules.into_iter().enumerate() {
        let key = (r.rule.gid, r.rule.sid);
        if best.get(&key) == Some(&i) {
            report.rules.push(r);
        } else {
            report.rejected.push(Rejection {
                file: r.file,
                line: r.line,
                error: RejectReason::Duplicate {
                    gid: key.0,
                    sid: key.1,
                },
            });
        }
    }
}
