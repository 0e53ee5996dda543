//! classification.config: classtype → (description, default priority).
//!
//! Format per line: `config classification: NAME,DESCRIPTION,PRIORITY`; `#` comments and
//! blank lines are ignored. Tocsin embeds its own table (`rules/classification.config`),
//! with the classtypes Suricata and Emerging Threats use; a config can name another file.

use std::collections::HashMap;
use std::path::Path;

/// The embedded default table.
pub const DEFAULT_CLASSIFICATION: &str = include_str!("../../../../rules/classification.config");

/// One classtype.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassType {
    /// Description, written to EVE as `alert.category`.
    pub description: String,
    /// Default priority (EVE `alert.severity`).
    pub priority: u8,
}

/// Classtypes by name.
#[derive(Debug, Clone, Default)]
pub struct Classifications {
    map: HashMap<String, ClassType>,
}

/// A malformed line in a classification file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {reason}")]
pub struct ClassificationError {
    /// File name (or `<embedded>`).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

impl Classifications {
    /// The embedded default table.
    #[must_use]
    pub fn builtin() -> Self {
        // The embedded table is ours and tested to parse (see the test below).
        Self::parse(DEFAULT_CLASSIFICATION, "<embedded>").unwrap_or_default()
    }

    /// Reads a classification file.
    ///
    /// # Errors
    /// A message naming the file and line of the first bad entry, or the I/O error.
    pub fn load(path: &Path) -> Result<Self, ClassificationError> {
        let text = std::fs::read_to_string(path).map_err(|e| ClassificationError {
            file: path.display().to_string(),
            line: 0,
            reason: e.to_string(),
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses classification text.
    ///
    /// # Errors
    /// The first malformed line.
    pub fn parse(text: &str, file: &str) -> Result<Self, ClassificationError> {
        let mut map = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |reason: &str| ClassificationError {
                file: file.to_owned(),
                line: i + 1,
                reason: reason.to_owned(),
            };
            let body = line.strip_prefix("config classification:").ok_or_else(|| {
                err("expected 'config classification: NAME,DESCRIPTION,PRIORITY'")
            })?;
            let mut parts = body.splitn(3, ',');
            let (Some(name), Some(desc), Some(prio)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(err("expected three comma-separated fields"));
            };
            let priority = prio
                .trim()
                .parse::<u8>()
                .map_err(|_| err("priority is not a number 0-255"))?;
            map.insert(
                name.trim().to_owned(),
                ClassType {
                    description: desc.trim().to_owned(),
                    priority,
                },
            );
        }
        Ok(Self { map })
    }

    /// Looks up a classtype.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&ClassType> {
        self.map.get(name)
    }

    /// Number of classtypes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_table_parses_whole() {
        let c = Classifications::parse(DEFAULT_CLASSIFICATION, "<embedded>").unwrap();
        assert_eq!(c.len(), 43);
        let bad = c.get("bad-unknown").unwrap();
        assert_eq!(bad.description, "Potentially Bad Traffic");
        assert_eq!(bad.priority, 2);
        assert_eq!(c.get("trojan-activity").unwrap().priority, 1);
    }

    #[test]
    fn errors_name_the_line() {
        let err =
            Classifications::parse("# c\nconfig classification: x,y,high\n", "f").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.to_string().starts_with("f:2:"));
    }
}
