//! Port expressions: `any`, `80`, `1024:`, `:1023`, `1:1024`, `$HTTP_PORTS`, `!x`,
//! `[a,b,!c]`, nested. Resolves to a [`PortSet`] with the same list semantics as addresses.

use super::address::{minus, split_list, union};
use super::vars::Vars;

/// A set of ports as sorted disjoint inclusive ranges.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct PortSet {
    ranges: Vec<(u16, u16)>,
}

impl PortSet {
    /// All ports.
    #[must_use]
    pub fn any() -> Self {
        Self {
            ranges: vec![(0, u16::MAX)],
        }
    }

    /// Whether every port is in the set.
    #[must_use]
    pub fn is_any(&self) -> bool {
        self.ranges == [(0, u16::MAX)]
    }

    /// Whether `port` is in the set.
    #[must_use]
    pub fn contains(&self, port: u16) -> bool {
        let i = self.ranges.partition_point(|&(_, hi)| hi < port);
        self.ranges.get(i).is_some_and(|&(lo, _)| lo <= port)
    }

    /// The ranges, sorted and disjoint.
    #[must_use]
    pub fn ranges(&self) -> &[(u16, u16)] {
        &self.ranges
    }
}

/// Why a port expression is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// Unknown `$VAR`.
    #[error("undefined port variable ${0}")]
    UndefinedVar(String),
    /// Malformed.
    #[error("malformed port expression '{0}'")]
    Syntax(String),
    /// Variables loop or nest too deep.
    #[error("port variable nesting too deep (loop?) at ${0}")]
    TooDeep(String),
    /// The expression excludes every port.
    #[error("port expression '{0}' matches no port")]
    Empty(String),
}

/// Parses and resolves a port expression.
///
/// # Errors
/// [`PortError`] naming the part that is wrong.
pub fn parse_ports(text: &str, vars: &Vars) -> Result<PortSet, PortError> {
    let ranges = expr(text.trim(), vars, 0)?;
    if ranges.is_empty() {
        return Err(PortError::Empty(text.to_owned()));
    }
    Ok(PortSet { ranges })
}

fn expr(text: &str, vars: &Vars, depth: usize) -> Result<Vec<(u16, u16)>, PortError> {
    let text = text.trim();
    let all = [(0u16, u16::MAX)];
    if let Some(rest) = text.strip_prefix('!') {
        return Ok(minus(&all, &expr(rest, vars, depth)?));
    }
    if let Some(inner) = text.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or_else(|| PortError::Syntax(text.to_owned()))?;
        let mut pos: Vec<(u16, u16)> = Vec::new();
        let mut any_pos = false;
        let mut neg: Vec<(u16, u16)> = Vec::new();
        for item in split_list(inner).map_err(|()| PortError::Syntax(text.to_owned()))? {
            let item = item.trim();
            if let Some(n) = item.strip_prefix('!') {
                neg = union(&neg, &expr(n, vars, depth)?);
            } else {
                any_pos = true;
                pos = union(&pos, &expr(item, vars, depth)?);
            }
        }
        let base = if any_pos { pos } else { all.to_vec() };
        return Ok(minus(&base, &neg));
    }
    if let Some(name) = text.strip_prefix('$') {
        if depth >= 16 {
            return Err(PortError::TooDeep(name.to_owned()));
        }
        let value = vars
            .port(name)
            .ok_or_else(|| PortError::UndefinedVar(name.to_owned()))?;
        return expr(value, vars, depth + 1);
    }
    if text.eq_ignore_ascii_case("any") {
        return Ok(all.to_vec());
    }
    let bad = || PortError::Syntax(text.to_owned());
    let num = |s: &str| s.trim().parse::<u16>().map_err(|_| bad());
    if let Some((lo, hi)) = text.split_once(':') {
        let lo = if lo.trim().is_empty() { 0 } else { num(lo)? };
        let hi = if hi.trim().is_empty() {
            u16::MAX
        } else {
            num(hi)?
        };
        if lo > hi {
            return Err(bad());
        }
        return Ok(vec![(lo, hi)]);
    }
    let p = num(text)?;
    Ok(vec![(p, p)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let vars = Vars::suricata_defaults();
        let cases: &[(&str, &[u16], &[u16])] = &[
            ("any", &[0, 80, 65535], &[]),
            ("80", &[80], &[81]),
            ("!80", &[81, 0], &[80]),
            ("1024:", &[1024, 65535], &[1023]),
            (":1023", &[0, 1023], &[1024]),
            ("[80,443,8000:8100]", &[443, 8050], &[444]),
            ("[1:100,!50]", &[49, 51], &[50, 101]),
            ("$HTTP_PORTS", &[80], &[8080]),
            ("$SHELLCODE_PORTS", &[81], &[80]),
            ("[$HTTP_PORTS,8080]", &[80, 8080], &[81]),
            ("$FILE_DATA_PORTS", &[80, 110, 143], &[25]),
        ];
        for (e, inside, outside) in cases {
            let set = parse_ports(e, &vars).unwrap_or_else(|err| panic!("{e}: {err}"));
            for p in *inside {
                assert!(set.contains(*p), "{e} should contain {p}");
            }
            for p in *outside {
                assert!(!set.contains(*p), "{e} should not contain {p}");
            }
        }
    }

    #[test]
    fn errors() {
        let vars = Vars::suricata_defaults();
        assert!(matches!(
            parse_ports("70000", &vars),
            Err(PortError::Syntax(_))
        ));
        assert!(matches!(
            parse_ports("100:10", &vars),
            Err(PortError::Syntax(_))
        ));
        assert!(matches!(
            parse_ports("$NOPE", &vars),
            Err(PortError::UndefinedVar(_))
        ));
        assert!(matches!(
            parse_ports("!any", &vars),
            Err(PortError::Empty(_))
        ));
    }
}
