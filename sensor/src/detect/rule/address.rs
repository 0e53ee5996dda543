//! Address expressions: `any`, `1.2.3.4`, `10.0.0.0/8`, `2001:db8::/32`, `$HOME_NET`,
//! `!x`, `[a,b,!c]`, ranges `1.2.3.4-1.2.3.9`, nested freely.
//!
//! An expression resolves (variables expanded) to an [`IpSet`]: sorted, disjoint, inclusive
//! ranges per address family, so matching is a binary search. List semantics follow
//! Suricata: the union of the positive items (everything, when there are none) minus the
//! union of the negated ones.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::vars::Vars;

/// A set of IPv4 and IPv6 addresses.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct IpSet {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

impl IpSet {
    /// Every address.
    #[must_use]
    pub fn any() -> Self {
        Self {
            v4: vec![(0, u32::MAX)],
            v6: vec![(0, u128::MAX)],
        }
    }

    /// Whether the set holds every address.
    #[must_use]
    pub fn is_any(&self) -> bool {
        self.v4 == [(0, u32::MAX)] && self.v6 == [(0, u128::MAX)]
    }

    /// The set as a list of single IPv4 addresses, when it is exactly that: no IPv6, and
    /// at most `max` addresses in all (small ranges are expanded). `None` otherwise. Used
    /// to index signatures by address (IP reputation lists) instead of checking each one
    /// on every packet.
    #[must_use]
    pub fn v4_addresses(&self, max: usize) -> Option<Vec<u32>> {
        if !self.v6.is_empty() || self.v4.is_empty() {
            return None;
        }
        let mut out = Vec::new();
        for &(lo, hi) in &self.v4 {
            let n = usize::try_from(hi - lo).ok()?.checked_add(1)?;
            if out.len() + n > max {
                return None;
            }
            out.extend(lo..=hi);
        }
        Some(out)
    }

    /// Whether the set is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// Whether `addr` is in the set.
    #[must_use]
    pub fn contains(&self, addr: IpAddr) -> bool {
        match addr {
            IpAddr::V4(a) => contains(&self.v4, u32::from(a)),
            IpAddr::V6(a) => contains(&self.v6, u128::from(a)),
        }
    }

    fn single(net: Net) -> Self {
        match net {
            Net::V4(lo, hi) => Self {
                v4: vec![(lo, hi)],
                v6: Vec::new(),
            },
            Net::V6(lo, hi) => Self {
                v4: Vec::new(),
                v6: vec![(lo, hi)],
            },
        }
    }

    /// `self ∪ other`.
    #[must_use]
    pub fn union(&self, other: &Self) -> Self {
        Self {
            v4: union(&self.v4, &other.v4),
            v6: union(&self.v6, &other.v6),
        }
    }

    /// `self \ other`.
    #[must_use]
    pub fn minus(&self, other: &Self) -> Self {
        Self {
            v4: minus(&self.v4, &other.v4),
            v6: minus(&self.v6, &other.v6),
        }
    }
}

fn contains<T: Ord + Copy>(ranges: &[(T, T)], v: T) -> bool {
    // First range whose end is >= v.
    let i = ranges.partition_point(|&(_, hi)| hi < v);
    ranges.get(i).is_some_and(|&(lo, _)| lo <= v)
}

/// Integer types usable as range bounds.
pub(super) trait Bound: Ord + Copy {
    const MAX: Self;
    fn succ(self) -> Self;
    fn pred(self) -> Self;
}

macro_rules! bound {
    ($t:ty) => {
        impl Bound for $t {
            const MAX: Self = <$t>::MAX;
            fn succ(self) -> Self {
                self.saturating_add(1)
            }
            fn pred(self) -> Self {
                self.saturating_sub(1)
            }
        }
    };
}
bound!(u16);
bound!(u32);
bound!(u128);

/// Union of two normalized range lists.
pub(super) fn union<T: Bound>(a: &[(T, T)], b: &[(T, T)]) -> Vec<(T, T)> {
    let mut all: Vec<(T, T)> = a.iter().chain(b).copied().collect();
    all.sort_unstable();
    let mut out: Vec<(T, T)> = Vec::with_capacity(all.len());
    for (lo, hi) in all {
        if let Some(last) = out.last_mut() {
            // Merge overlapping or adjacent ranges.
            if lo <= last.1.succ() || last.1 == T::MAX {
                if hi > last.1 {
                    last.1 = hi;
                }
                continue;
            }
        }
        out.push((lo, hi));
    }
    out
}

/// `a \ b` for normalized range lists.
pub(super) fn minus<T: Bound>(a: &[(T, T)], b: &[(T, T)]) -> Vec<(T, T)> {
    let mut out = Vec::new();
    for &(mut lo, hi) in a {
        let mut alive = true;
        for &(blo, bhi) in b {
            if !alive || bhi < lo || blo > hi {
                continue;
            }
            if blo > lo {
                out.push((lo, blo.pred()));
            }
            if bhi >= hi {
                alive = false;
            } else {
                lo = bhi.succ();
            }
        }
        if alive {
            out.push((lo, hi));
        }
    }
    out
}

#[derive(Debug, Clone, Copy)]
enum Net {
    V4(u32, u32),
    V6(u128, u128),
}

/// Why an address expression is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Unknown `$VAR`.
    #[error("undefined address variable ${0}")]
    UndefinedVar(String),
    /// Unbalanced brackets, stray characters...
    #[error("malformed address expression '{0}'")]
    Syntax(String),
    /// Not an address or network.
    #[error("invalid address '{0}'")]
    BadAddress(String),
    /// Variables refer to each other in a loop, or nest absurdly deep.
    #[error("address variable nesting too deep (loop?) at ${0}")]
    TooDeep(String),
    /// The expression excludes everything.
    #[error("address expression '{0}' matches no address")]
    Empty(String),
}

const MAX_DEPTH: usize = 16;

/// Parses and resolves an address expression.
///
/// # Errors
/// [`AddressError`] naming the part that is wrong.
pub fn parse_address(text: &str, vars: &Vars) -> Result<IpSet, AddressError> {
    let set = parse_expr(text.trim(), vars, 0)?;
    if set.is_empty() {
        return Err(AddressError::Empty(text.to_owned()));
    }
    Ok(set)
}

fn parse_expr(text: &str, vars: &Vars, depth: usize) -> Result<IpSet, AddressError> {
    let text = text.trim();
    if let Some(rest) = text.strip_prefix('!') {
        return Ok(IpSet::any().minus(&parse_expr(rest, vars, depth)?));
    }
    if let Some(inner) = text.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or_else(|| AddressError::Syntax(text.to_owned()))?;
        let mut pos = IpSet::default();
        let mut any_pos = false;
        let mut neg = IpSet::default();
        for item in split_list(inner).map_err(|()| AddressError::Syntax(text.to_owned()))? {
            let item = item.trim();
            if item.is_empty() {
                return Err(AddressError::Syntax(text.to_owned()));
            }
            if let Some(negated) = item.strip_prefix('!') {
                neg = neg.union(&parse_expr(negated, vars, depth)?);
            } else {
                any_pos = true;
                pos = pos.union(&parse_expr(item, vars, depth)?);
            }
        }
        let base = if any_pos { pos } else { IpSet::any() };
        return Ok(base.minus(&neg));
    }
    if let Some(name) = text.strip_prefix('$') {
        if depth >= MAX_DEPTH {
            return Err(AddressError::TooDeep(name.to_owned()));
        }
        let value = vars
            .address(name)
            .ok_or_else(|| AddressError::UndefinedVar(name.to_owned()))?;
        return parse_expr(value, vars, depth + 1);
    }
    if text.eq_ignore_ascii_case("any") {
        return Ok(IpSet::any());
    }
    parse_net(text).map(IpSet::single)
}

/// Splits a bracket list's inside on top-level commas.
pub(super) fn split_list(inner: &str) -> Result<Vec<&str>, ()> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in inner.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.checked_sub(1).ok_or(())?,
            ',' if depth == 0 => {
                out.push(inner.get(start..i).ok_or(())?);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(());
    }
    out.push(inner.get(start..).ok_or(())?);
    Ok(out)
}

fn parse_net(text: &str) -> Result<Net, AddressError> {
    let bad = || AddressError::BadAddress(text.to_owned());
    if let Some((lo, hi)) = text.split_once('-') {
        return match (lo.trim().parse::<IpAddr>(), hi.trim().parse::<IpAddr>()) {
            (Ok(IpAddr::V4(a)), Ok(IpAddr::V4(b))) if a <= b => Ok(Net::V4(a.into(), b.into())),
            (Ok(IpAddr::V6(a)), Ok(IpAddr::V6(b))) if a <= b => Ok(Net::V6(a.into(), b.into())),
            _ => Err(bad()),
        };
    }
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    match addr.parse::<IpAddr>().map_err(|_| bad())? {
        IpAddr::V4(a) => {
            let bits = match prefix {
                None => 32,
                Some(p) => prefix_len(p, 32)
                    .or_else(|| netmask_v4(p))
                    .ok_or_else(bad)?,
            };
            let a = u32::from(a);
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            Ok(Net::V4(a & mask, (a & mask) | !mask))
        }
        IpAddr::V6(a) => {
            let bits = match prefix {
                None => 128,
                Some(p) => prefix_len(p, 128).ok_or_else(bad)?,
            };
            let a = u128::from(a);
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            Ok(Net::V6(a & mask, (a & mask) | !mask))
        }
    }
}

fn prefix_len(p: &str, max: u32) -> Option<u32> {
    p.parse::<u32>().ok().filter(|&b| b <= max)
}

/// `10.0.0.0/255.0.0.0` style masks.
fn netmask_v4(p: &str) -> Option<u32> {
    let m = u32::from(p.parse::<Ipv4Addr>().ok()?);
    (m.leading_ones() + m.trailing_zeros() == 32).then(|| m.leading_ones())
}

/// Parses a single address (no variables), for configuration values.
///
/// # Errors
/// [`AddressError::BadAddress`] when `text` is not an IPv4/IPv6 address.
pub fn parse_ip(text: &str) -> Result<IpAddr, AddressError> {
    text.parse::<IpAddr>()
        .or_else(|_| text.parse::<Ipv6Addr>().map(IpAddr::V6))
        .map_err(|_| AddressError::BadAddress(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn table() {
        let vars = Vars::suricata_defaults();
        // (expression, inside, outside)
        let cases: &[(&str, &[&str], &[&str])] = &[
            ("any", &["1.2.3.4", "::1"], &[]),
            ("10.0.0.0/8", &["10.255.0.1"], &["11.0.0.0", "::1"]),
            ("!10.0.0.0/8", &["11.0.0.0", "::1"], &["10.0.0.1"]),
            (
                "[10.0.0.0/8,!10.1.0.0/16]",
                &["10.2.0.0"],
                &["10.1.2.3", "1.1.1.1"],
            ),
            ("[!1.1.1.1]", &["1.1.1.2", "::"], &["1.1.1.1"]),
            ("$HOME_NET", &["192.168.1.1", "172.16.0.1"], &["8.8.8.8"]),
            ("$EXTERNAL_NET", &["8.8.8.8", "2001:db8::1"], &["10.0.0.1"]),
            (
                "[$HOME_NET,!192.168.0.0/24]",
                &["192.168.1.1"],
                &["192.168.0.9"],
            ),
            ("2001:db8::/32", &["2001:db8:ffff::1"], &["2001:db9::"]),
            ("1.2.3.4-1.2.3.9", &["1.2.3.4", "1.2.3.9"], &["1.2.3.10"]),
            ("10.0.0.0/255.0.0.0", &["10.9.9.9"], &["11.0.0.0"]),
            (
                "![1.0.0.0/8,[2.0.0.0/8]]",
                &["3.0.0.1"],
                &["1.1.1.1", "2.2.2.2"],
            ),
        ];
        for (expr, inside, outside) in cases {
            let set = parse_address(expr, &vars).unwrap_or_else(|e| panic!("{expr}: {e}"));
            for a in *inside {
                assert!(set.contains(ip(a)), "{expr} should contain {a}");
            }
            for a in *outside {
                assert!(!set.contains(ip(a)), "{expr} should not contain {a}");
            }
        }
    }

    #[test]
    fn errors() {
        let vars = Vars::suricata_defaults();
        assert_eq!(
            parse_address("$NOPE", &vars),
            Err(AddressError::UndefinedVar("NOPE".into()))
        );
        assert!(matches!(
            parse_address("[1.1.1.1", &vars),
            Err(AddressError::Syntax(_))
        ));
        assert!(matches!(
            parse_address("1.1.1.300", &vars),
            Err(AddressError::BadAddress(_))
        ));
        assert!(matches!(
            parse_address("!any", &vars),
            Err(AddressError::Empty(_))
        ));
        let mut looping = Vars::suricata_defaults();
        looping.set_address("A", "$B");
        looping.set_address("B", "$A");
        assert!(matches!(
            parse_address("$A", &looping),
            Err(AddressError::TooDeep(_))
        ));
    }

    proptest! {
        #[test]
        fn set_algebra_matches_a_model(ranges in proptest::collection::vec((0u32..64, 0u32..64, any::<bool>()), 0..8), probe in 0u32..70) {
            // Build a list expression of small ranges with negations and compare with a naive model.
            let mut items = Vec::new();
            let mut pos = Vec::new();
            let mut neg = Vec::new();
            for (a, b, negated) in &ranges {
                let (lo, hi) = if a <= b { (*a, *b) } else { (*b, *a) };
                let text = format!("{}-{}", Ipv4Addr::from(lo), Ipv4Addr::from(hi));
                if *negated { neg.push((lo, hi)); items.push(format!("!{text}")); } else { pos.push((lo, hi)); items.push(text); }
            }
            if items.is_empty() { return Ok(()); }
            let expr = format!("[{}]", items.join(","));
            let in_pos = pos.is_empty() || pos.iter().any(|&(lo, hi)| probe >= lo && probe <= hi);
            let in_neg = neg.iter().any(|&(lo, hi)| probe >= lo && probe <= hi);
            let expected = in_pos && !in_neg;
            match parse_address(&expr, &Vars::suricata_defaults()) {
                Ok(set) => prop_assert_eq!(set.contains(IpAddr::V4(Ipv4Addr::from(probe))), expected),
                Err(AddressError::Empty(_)) => prop_assert!(!expected),
                Err(e) => prop_assert!(false, "{}", e),
            }
        }

        #[test]
        fn never_panics(text in "[\\[\\]!$,0-9a-fA-F:./ -]{0,40}") {
            let _ = parse_address(&text, &Vars::suricata_defaults());
        }
    }
}
