//! The flow key: 5-tuple plus VLAN IDs, normalized so both directions are equal.

use std::hash::Hash;
use std::net::IpAddr;

use crate::decode::Packet;

/// Direction-normalized flow key: the lower (address, port) pair comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// Lower endpoint address.
    pub addr_lo: IpAddr,
    /// Higher endpoint address.
    pub addr_hi: IpAddr,
    /// Port belonging to `addr_lo`.
    pub port_lo: u16,
    /// Port belonging to `addr_hi`.
    pub port_hi: u16,
    /// IP protocol.
    pub proto: u8,
    /// VLAN IDs (0 where untagged).
    pub vlan: [u16; 2],
}

impl FlowKey {
    /// The key of `pkt`'s flow.
    #[must_use]
    pub fn of(pkt: &Packet<'_>) -> Self {
        Self::new(
            pkt.ip.src,
            pkt.src_port(),
            pkt.ip.dst,
            pkt.dst_port(),
            pkt.ip.proto,
            pkt.vlan,
        )
    }

    /// Builds a normalized key from one direction's endpoints.
    #[must_use]
    pub fn new(
        src: IpAddr,
        sport: u16,
        dst: IpAddr,
        dport: u16,
        proto: u8,
        vlan: [u16; 2],
    ) -> Self {
        if (src, sport) <= (dst, dport) {
            Self {
                addr_lo: src,
                addr_hi: dst,
                port_lo: sport,
                port_hi: dport,
                proto,
                vlan,
            }
        } else {
            Self {
                addr_lo: dst,
                addr_hi: src,
                port_lo: dport,
                port_hi: sport,
                proto,
                vlan,
            }
        }
    }

    /// A hash equal for both directions and stable within the process: used to pick the
    /// worker that owns the flow. Seeded per process, so an attacker cannot aim many flows
    /// at one worker.
    #[must_use]
    pub fn hash(&self) -> u64 {
        dispatch_hasher().hash_one(self)
    }
}

/// One random-keyed hasher per process.
fn dispatch_hasher() -> &'static ahash::RandomState {
    static STATE: std::sync::OnceLock<ahash::RandomState> = std::sync::OnceLock::new();
    STATE.get_or_init(ahash::RandomState::new)
}

/// Hash of a key with the process's dispatch hasher (for `Hash` users wanting a u64).
pub(super) fn stable_hash<K: Hash>(k: &K) -> u64 {
    dispatch_hasher().hash_one(k)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn both_directions_give_the_same_key(a in any::<u32>(), b in any::<u32>(), pa in any::<u16>(), pb in any::<u16>(), proto in any::<u8>()) {
            let (a, b) = (IpAddr::V4(Ipv4Addr::from(a)), IpAddr::V4(Ipv4Addr::from(b)));
            let fwd = FlowKey::new(a, pa, b, pb, proto, [0, 0]);
            let rev = FlowKey::new(b, pb, a, pa, proto, [0, 0]);
            prop_assert_eq!(fwd, rev);
            prop_assert_eq!(fwd.hash(), rev.hash());
        }
    }

    #[test]
    fn vlan_and_proto_separate_flows() {
        let a = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let b = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
        let base = FlowKey::new(a, 1, b, 2, 6, [0, 0]);
        assert_ne!(base, FlowKey::new(a, 1, b, 2, 17, [0, 0]));
        assert_ne!(base, FlowKey::new(a, 1, b, 2, 6, [5, 0]));
    }
}
