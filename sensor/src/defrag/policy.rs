//! Overlap policies, named as Suricata's `host-os-policy` names them.
//!
//! One enum serves both IP defragmentation and TCP reassembly (Suricata configures both from
//! the same `host-os-policy` table), but each layer applies its own rule, because targets
//! resolve overlapping IP fragments and overlapping TCP segments differently. The rules are
//! written down in the `defrag` and `reassembly` module headers and implemented by
//! [`OverlapPolicy::ip_new_wins`] and [`OverlapPolicy::tcp_new_wins`].

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

/// Which copy of overlapping bytes a target keeps.
///
/// "Original" is data received earlier, "new" (or "subsequent") is data received later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OverlapPolicy {
    /// Always keep the original bytes (HP-UX 11, MacOS, old Solaris in Suricata's mapping).
    First,
    /// Always take the new bytes (Cisco IOS).
    Last,
    /// BSD: original, unless the new piece starts before the original one. Suricata's
    /// default for hosts not listed in `host-os-policy`.
    #[default]
    Bsd,
    /// BSD-right (HP JetDirect).
    BsdRight,
    /// Linux.
    Linux,
    /// Windows (also Vista and 2003 in Suricata's mapping).
    Windows,
    /// Solaris.
    Solaris,
}

/// A half-open byte range `[start, end)` as a piece of data originally arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl Extent {
    /// `[start, end)`.
    #[must_use]
    pub fn new(start: u64, end: u64) -> Self {
        Self { start, end }
    }
}

impl OverlapPolicy {
    /// All policies, for tables and tests.
    pub const ALL: [Self; 7] = [
        Self::First,
        Self::Last,
        Self::Bsd,
        Self::BsdRight,
        Self::Linux,
        Self::Windows,
        Self::Solaris,
    ];

    /// The `host-os-policy` name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::First => "first",
            Self::Last => "last",
            Self::Bsd => "bsd",
            Self::BsdRight => "bsd-right",
            Self::Linux => "linux",
            Self::Windows => "windows",
            Self::Solaris => "solaris",
        }
    }

    /// IP fragments: whether the bytes of fragment `new` replace the bytes of the earlier
    /// fragment `old` where the two overlap. Extents are the fragments as they arrived.
    ///
    /// | policy | new fragment wins when |
    /// |---|---|
    /// | first | never |
    /// | last | always |
    /// | bsd | it starts before the original |
    /// | bsd-right | it starts at or after the original's start |
    /// | linux | it starts at or before the original's start |
    /// | windows | it starts before and ends after the original |
    /// | solaris | it starts before and ends at or after the original's end |
    #[must_use]
    pub fn ip_new_wins(self, new: Extent, old: Extent) -> bool {
        match self {
            Self::First => false,
            Self::Last => true,
            Self::Bsd => new.start < old.start,
            Self::BsdRight => new.start >= old.start,
            Self::Linux => new.start <= old.start,
            Self::Windows => new.start < old.start && new.end > old.end,
            Self::Solaris => new.start < old.start && new.end >= old.end,
        }
    }

    /// TCP segments: whether the bytes of segment `new` replace the bytes of the earlier
    /// segment `old` where the two overlap (Suricata's IDS-mode stream rules).
    ///
    /// | policy | new segment wins when |
    /// |---|---|
    /// | first | never |
    /// | last | always |
    /// | bsd, bsd-right, windows | it starts before the original |
    /// | linux | it starts before the original, or at the same sequence and ends after it |
    /// | solaris | it ends after the original, or ends with it and starts at or before it |
    #[must_use]
    pub fn tcp_new_wins(self, new: Extent, old: Extent) -> bool {
        match self {
            Self::First => false,
            Self::Last => true,
            Self::Bsd | Self::BsdRight | Self::Windows => new.start < old.start,
            Self::Linux => new.start < old.start || (new.start == old.start && new.end > old.end),
            Self::Solaris => new.end > old.end || (new.end == old.end && new.start <= old.start),
        }
    }
}

impl fmt::Display for OverlapPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An overlap policy name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown overlap policy {0:?} (expected first, last, bsd, bsd-right, linux, windows or solaris)"
)]
pub struct UnknownPolicy(pub String);

impl FromStr for OverlapPolicy {
    type Err = UnknownPolicy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| UnknownPolicy(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_default_is_bsd() {
        for p in OverlapPolicy::ALL {
            assert_eq!(p.name().parse::<OverlapPolicy>(), Ok(p));
        }
        assert_eq!(OverlapPolicy::default(), OverlapPolicy::Bsd);
        assert!("vista".parse::<OverlapPolicy>().is_err());
        #[derive(Deserialize)]
        struct W {
            p: OverlapPolicy,
        }
        let w: W = toml::from_str("p = \"bsd-right\"").unwrap();
        assert_eq!(w.p, OverlapPolicy::BsdRight);
    }
}
