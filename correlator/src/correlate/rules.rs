//! The correlation rule file format (TOML). See `correlator/README.md` for the guide.
//!
//! ```toml
//! # N alerts of a kind from one source within T.
//! [[rule]]
//! name = "ssh-brute-force"
//! kind = "threshold"
//! signature_ids = [2001219, 2003068]      # match: any listed sid ...
//! categories = []                         # ... or any listed category (both empty: all)
//! group_by = ["src_ip"]                   # the agency is always part of the group
//! count = 20
//! timeframe = "60s"
//!
//! # One source touching N distinct values of a field within T.
//! [[rule]]
//! name = "horizontal-scan"
//! kind = "distinct_count"
//! group_by = ["src_ip"]
//! distinct = "dest_ip"                    # or "agency" with cross_agency = true
//! count = 25
//! timeframe = "5m"
//!
//! # Step A, then step B on the same host, within T.
//! [[rule]]
//! name = "exploit-then-beacon"
//! kind = "sequence"
//! timeframe = "10m"
//! [[rule.step]]
//! categories = ["Attempted Administrator Privilege Gain"]
//! host = "dest_ip"                        # the attacked host ...
//! [[rule.step]]
//! categories = ["A Network Trojan was detected"]
//! host = "src_ip"                         # ... later talks to a C2 itself
//! ```
//!
//! Optional on every rule: `severity` (of the raised incident; default: the most severe
//! member), `cross_agency = true` (group alerts of all agencies together) and
//! `incident_agency = "CODE"` (owner of the raised incidents; default: the agency of the
//! alert that completed the rule).

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::config::duration;
use crate::dedup::KeyField;
use crate::ingest::Alert;

/// Why a rule file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// File unreadable.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// TOML syntax or unknown fields.
    #[error("parsing correlation rules {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A rule is inconsistent.
    #[error("correlation rule '{rule}': {message}")]
    Invalid {
        /// Rule name.
        rule: String,
        /// What is wrong.
        message: String,
    },
}

/// The rule kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// N matching alerts within the timeframe.
    Threshold,
    /// N distinct values of a field within the timeframe.
    DistinctCount,
    /// Steps in order on the same host within the timeframe.
    Sequence,
}

/// Which alerts a rule or step looks at (built from the rule's or step's match fields).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matcher {
    /// Signature IDs (any).
    pub signature_ids: Vec<u32>,
    /// Categories (any).
    pub categories: Vec<String>,
    /// Only alerts at least this severe (Suricata severity: 1 is the most severe).
    pub max_severity: Option<u8>,
}

impl Matcher {
    /// Whether `alert` matches (both lists empty: every alert).
    #[must_use]
    pub fn matches(&self, alert: &Alert) -> bool {
        if let Some(max) = self.max_severity
            && alert.severity > max
        {
            return false;
        }
        if self.signature_ids.is_empty() && self.categories.is_empty() {
            return true;
        }
        self.signature_ids.contains(&alert.signature_id)
            || self.categories.contains(&alert.category)
    }
}

/// One step of a sequence rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Match: signature IDs (any).
    #[serde(default)]
    pub signature_ids: Vec<u32>,
    /// Match: categories (any).
    #[serde(default)]
    pub categories: Vec<String>,
    /// Match: only alerts at least this severe (1 is the most severe).
    #[serde(default)]
    pub max_severity: Option<u8>,
    /// The alert field naming the host this step is about (`src_ip` or `dest_ip`).
    pub host: KeyField,
}

/// One correlation rule as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Unique name; stored as the raised incident's `rule`.
    pub name: String,
    /// Threshold, distinct count or sequence.
    pub kind: RuleKind,
    /// Match: signature IDs (any).
    #[serde(default)]
    pub signature_ids: Vec<u32>,
    /// Match: categories (any).
    #[serde(default)]
    pub categories: Vec<String>,
    /// Match: only alerts at least this severe (1 is the most severe).
    #[serde(default)]
    pub max_severity: Option<u8>,
    /// Group fields (threshold, distinct count).
    #[serde(default)]
    pub group_by: Vec<KeyField>,
    /// Field whose distinct values are counted (distinct count).
    #[serde(default)]
    pub distinct: Option<KeyField>,
    /// N (threshold, distinct count).
    #[serde(default)]
    pub count: usize,
    /// T.
    #[serde(with = "duration")]
    pub timeframe: Duration,
    /// Steps (sequence), in order.
    #[serde(default, rename = "step")]
    pub steps: Vec<Step>,
    /// Severity of the raised incident.
    #[serde(default)]
    pub severity: Option<u8>,
    /// Group across agencies.
    #[serde(default)]
    pub cross_agency: bool,
    /// Owner of raised incidents.
    #[serde(default)]
    pub incident_agency: Option<String>,
}

impl Step {
    /// This step's matcher.
    #[must_use]
    pub fn matcher(&self) -> Matcher {
        Matcher {
            signature_ids: self.signature_ids.clone(),
            categories: self.categories.clone(),
            max_severity: self.max_severity,
        }
    }
}

impl Rule {
    /// The rule's matcher (threshold, distinct count).
    #[must_use]
    pub fn matcher(&self) -> Matcher {
        Matcher {
            signature_ids: self.signature_ids.clone(),
            categories: self.categories.clone(),
            max_severity: self.max_severity,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(default)]
    rule: Vec<Rule>,
}

/// Most rules in one file.
pub const MAX_RULES: usize = 10_000;
/// Largest N.
pub const MAX_COUNT: usize = 100_000;

/// Parses and validates rule file text.
///
/// # Errors
/// [`RulesError::Parse`] or [`RulesError::Invalid`].
pub fn parse_rules(text: &str, path: &str) -> Result<Vec<Rule>, RulesError> {
    let file: RuleFile = toml::from_str(text).map_err(|e| RulesError::Parse {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    if file.rule.len() > MAX_RULES {
        return Err(RulesError::Parse {
            path: path.to_owned(),
            message: format!("more than {MAX_RULES} rules"),
        });
    }
    let mut names = HashSet::new();
    for r in &file.rule {
        let bad = |m: &str| {
            Err(RulesError::Invalid {
                rule: r.name.clone(),
                message: m.to_owned(),
            })
        };
        if r.name.is_empty() || !names.insert(r.name.clone()) {
            return bad("name must be non-empty and unique");
        }
        if r.timeframe.is_zero() {
            return bad("timeframe must be above 0");
        }
        match r.kind {
            RuleKind::Threshold | RuleKind::DistinctCount => {
                if r.count < 2 || r.count > MAX_COUNT {
                    return bad("count must be in 2..=100000");
                }
                if !r.steps.is_empty() {
                    return bad("only sequence rules have steps");
                }
                if r.kind == RuleKind::DistinctCount && r.distinct.is_none() {
                    return bad("distinct_count needs `distinct = \"field\"`");
                }
                if r.kind == RuleKind::Threshold && r.distinct.is_some() {
                    return bad("threshold rules take no `distinct`");
                }
                if r.distinct == Some(KeyField::Agency) && !r.cross_agency {
                    return bad("distinct = \"agency\" needs cross_agency = true");
                }
            }
            RuleKind::Sequence => {
                if r.steps.len() < 2 || r.steps.len() > 16 {
                    return bad("sequence needs 2 to 16 [[rule.step]] entries");
                }
                if !r.group_by.is_empty() || r.distinct.is_some() || r.count != 0 {
                    return bad(
                        "sequence rules group by each step's `host`; drop group_by/distinct/count",
                    );
                }
                if !r.signature_ids.is_empty() || !r.categories.is_empty() {
                    return bad(
                        "sequence rules match per step; put signature_ids/categories in [[rule.step]]",
                    );
                }
            }
        }
    }
    Ok(file.rule)
}

/// Reads and validates a rule file.
///
/// # Errors
/// [`RulesError`].
pub fn load_rules(path: &Path) -> Result<Vec<Rule>, RulesError> {
    let text = std::fs::read_to_string(path).map_err(|source| RulesError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse_rules(&text, &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        // The example from this module's header, verbatim.
        let text = r#"
[[rule]]
name = "ssh-brute-force"
kind = "threshold"
signature_ids = [2001219, 2003068]
categories = []
group_by = ["src_ip"]
count = 20
timeframe = "60s"

[[rule]]
name = "horizontal-scan"
kind = "distinct_count"
group_by = ["src_ip"]
distinct = "dest_ip"
count = 25
timeframe = "5m"

[[rule]]
name = "exploit-then-beacon"
kind = "sequence"
timeframe = "10m"
[[rule.step]]
categories = ["Attempted Administrator Privilege Gain"]
host = "dest_ip"
[[rule.step]]
categories = ["A Network Trojan was detected"]
host = "src_ip"
"#;
        let rules = parse_rules(text, "t").unwrap();
        assert_eq!(rules.len(), 3);
        assert_eq!(rules[0].count, 20);
        assert_eq!(rules[1].distinct, Some(KeyField::DestIp));
        assert_eq!(rules[2].steps[1].host, KeyField::SrcIp);
        assert_eq!(rules[2].timeframe, Duration::from_secs(600));
    }

    #[test]
    fn rejects_bad_rules() {
        for (text, want) in [
            (
                "[[rule]]\nname='a'\nkind='threshold'\ncount=1\ntimeframe='1m'\n",
                "count must be",
            ),
            (
                "[[rule]]\nname='a'\nkind='distinct_count'\ncount=3\ntimeframe='1m'\n",
                "needs `distinct",
            ),
            (
                "[[rule]]\nname='a'\nkind='sequence'\ntimeframe='1m'\n",
                "2 to 16",
            ),
            (
                "[[rule]]\nname='a'\nkind='threshold'\ncount=3\ntimeframe='1m'\ncolour='red'\n",
                "unknown field",
            ),
            (
                "[[rule]]\nname='a'\nkind='nope'\ncount=3\ntimeframe='1m'\n",
                "unknown variant",
            ),
            (
                "[[rule]]\nname='a'\nkind='distinct_count'\ndistinct='agency'\ncount=3\ntimeframe='1m'\n",
                "cross_agency",
            ),
        ] {
            let err = parse_rules(text, "t").unwrap_err().to_string();
            assert!(err.contains(want), "{text}\n → {err}");
        }
    }
}
