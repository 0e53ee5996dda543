//! Longest-prefix match over IPv4 and IPv6 prefixes.
//!
//! Input: `(prefix, value)` pairs. Output: the value of the longest prefix containing an
//! address. One hash map per prefix length that occurs, probed from the longest length down:
//! at most 33 (IPv4) or 129 (IPv6) probes, usually a handful, no allocation per lookup.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;

/// A longest-prefix-match table mapping prefixes to `T`.
#[derive(Debug, Clone)]
pub struct PrefixTable<T> {
    v4: Vec<(u8, HashMap<u32, T>)>,
    v6: Vec<(u8, HashMap<u128, T>)>,
}

impl<T> Default for PrefixTable<T> {
    fn default() -> Self {
        Self {
            v4: Vec::new(),
            v6: Vec::new(),
        }
    }
}

fn mask4(addr: u32, len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        addr & (u32::MAX << (32 - u32::from(len)))
    }
}

fn mask6(addr: u128, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        addr & (u128::MAX << (128 - u32::from(len)))
    }
}

impl<T: Clone> PrefixTable<T> {
    /// Adds `net` → `value`; returns the previous value for exactly this prefix.
    pub fn insert(&mut self, net: IpNet, value: T) -> Option<T> {
        match net {
            IpNet::V4(n) => {
                let len = n.prefix_len();
                let key = mask4(u32::from(n.network()), len);
                let slot = match self.v4.iter().position(|(l, _)| *l == len) {
                    Some(i) => i,
                    None => {
                        self.v4.push((len, HashMap::new()));
                        self.v4.sort_by_key(|e| std::cmp::Reverse(e.0));
                        self.v4.iter().position(|(l, _)| *l == len).unwrap_or(0)
                    }
                };
                self.v4
                    .get_mut(slot)
                    .and_then(|(_, m)| m.insert(key, value))
            }
            IpNet::V6(n) => {
                let len = n.prefix_len();
                let key = mask6(u128::from(n.network()), len);
                let slot = match self.v6.iter().position(|(l, _)| *l == len) {
                    Some(i) => i,
                    None => {
                        self.v6.push((len, HashMap::new()));
                        self.v6.sort_by_key(|e| std::cmp::Reverse(e.0));
                        self.v6.iter().position(|(l, _)| *l == len).unwrap_or(0)
                    }
                };
                self.v6
                    .get_mut(slot)
                    .and_then(|(_, m)| m.insert(key, value))
            }
        }
    }

    /// The value of the longest prefix containing `addr`, with that prefix's length.
    #[must_use]
    pub fn lookup(&self, addr: IpAddr) -> Option<(u8, &T)> {
        match addr {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.v4
                    .iter()
                    .find_map(|(len, m)| m.get(&mask4(a, *len)).map(|v| (*len, v)))
            }
            IpAddr::V6(a) => {
                // IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) belong to the IPv4 owner.
                if let Some(v4) = a.to_ipv4_mapped() {
                    return self.lookup(IpAddr::V4(v4));
                }
                let a = u128::from(a);
                self.v6
                    .iter()
                    .find_map(|(len, m)| m.get(&mask6(a, *len)).map(|v| (*len, v)))
            }
        }
    }

    /// Number of prefixes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.v4.iter().map(|(_, m)| m.len()).sum::<usize>()
            + self.v6.iter().map(|(_, m)| m.len()).sum::<usize>()
    }

    /// Whether the table is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn longest_prefix_wins() {
        let mut t = PrefixTable::default();
        t.insert(net("10.0.0.0/8"), "a");
        t.insert(net("10.1.0.0/16"), "b");
        t.insert(net("10.1.2.0/24"), "c");
        t.insert(net("10.1.2.7/32"), "d");
        t.insert(net("2001:db8::/32"), "v6a");
        t.insert(net("2001:db8:1::/48"), "v6b");
        let l = |s: &str| t.lookup(s.parse().unwrap()).map(|(len, v)| (len, *v));
        assert_eq!(l("10.200.0.1"), Some((8, "a")));
        assert_eq!(l("10.1.3.1"), Some((16, "b")));
        assert_eq!(l("10.1.2.1"), Some((24, "c")));
        assert_eq!(l("10.1.2.7"), Some((32, "d")));
        assert_eq!(l("11.0.0.1"), None);
        assert_eq!(l("2001:db8:1::5"), Some((48, "v6b")));
        assert_eq!(l("2001:db8:2::5"), Some((32, "v6a")));
        assert_eq!(l("2001:db9::1"), None);
        assert_eq!(l("::ffff:10.1.2.9"), Some((24, "c")));
        assert_eq!(t.len(), 6);
    }

    #[test]
    fn default_route_and_host_bits_are_masked() {
        let mut t = PrefixTable::default();
        t.insert(net("0.0.0.0/0"), 0);
        // ipnet keeps host bits ("10.1.2.3/8"); the table masks them.
        t.insert(net("10.1.2.3/8"), 8);
        assert_eq!(t.lookup("10.9.9.9".parse().unwrap()), Some((8, &8)));
        assert_eq!(t.lookup("192.0.2.1".parse().unwrap()), Some((0, &0)));
    }
}
