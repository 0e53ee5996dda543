//! Splitting packets across workers: batches of owned frames, and the hash that picks a
//! packet's worker.

use std::hash::{BuildHasher, Hash, Hasher};
use std::net::IpAddr;

use crate::Timestamp;
use crate::decode::{self, LinkType};

/// A packet inside a [`Batch`].
#[derive(Debug, Clone, Copy)]
pub struct BatchPacket<'a> {
    /// Capture time.
    pub ts: Timestamp,
    /// Position in the capture.
    pub pcap_cnt: u64,
    /// Frame bytes.
    pub data: &'a [u8],
}

/// Frames copied into one buffer (one allocation per batch; batches are recycled).
#[derive(Debug, Default)]
pub struct Batch {
    bytes: Vec<u8>,
    packets: Vec<(Timestamp, u64, usize, usize)>,
}

impl Batch {
    /// Appends a frame.
    pub fn push(&mut self, ts: Timestamp, pcap_cnt: u64, data: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(data);
        self.packets.push((ts, pcap_cnt, start, data.len()));
    }

    /// Frames held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.packets.len()
    }

    /// Whether the batch is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// The frames in order.
    pub fn packets(&self) -> impl Iterator<Item = BatchPacket<'_>> {
        self.packets
            .iter()
            .map(|&(ts, pcap_cnt, start, len)| BatchPacket {
                ts,
                pcap_cnt,
                data: self.bytes.get(start..start + len).unwrap_or_default(),
            })
    }

    /// The batch emptied, keeping its allocations.
    #[must_use]
    pub fn cleared(mut self) -> Self {
        self.bytes.clear();
        self.packets.clear();
        self
    }
}

/// Fixed-key hasher: the same input goes to the same worker in every run, so alert IDs of
/// a re-run are the same (see `Worker::with_budget`).
fn hasher() -> ahash::RandomState {
    ahash::RandomState::with_seeds(
        0x243f_6a88_85a3_08d3,
        0x1319_8a2e_0370_7344,
        0xa409_3822_299f_31d0,
        0x082e_fa98_ec4e_6c89,
    )
}

/// The worker-selection hash of a frame: the direction-independent address pair (and VLAN
/// IDs). Ports are left out on purpose: fragments carry none, and a flow, its fragments and
/// their rebuilt datagram must all reach the same worker. `None` for frames that do not
/// decode to IP (any worker may count them).
#[must_use]
pub fn dispatch_hash(link: LinkType, frame: &[u8]) -> Option<u64> {
    let pkt = decode::decode(link, frame, Timestamp(0), 0).ok()?;
    let (a, b) = (pkt.ip.src, pkt.ip.dst);
    let (lo, hi): (IpAddr, IpAddr) = if a <= b { (a, b) } else { (b, a) };
    let mut h = hasher().build_hasher();
    lo.hash(&mut h);
    hi.hash(&mut h);
    pkt.vlan.hash(&mut h);
    Some(h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_round_trip_and_recycle() {
        let mut b = Batch::default();
        b.push(Timestamp(1), 1, b"abc");
        b.push(Timestamp(2), 2, b"de");
        let got: Vec<(i64, u64, Vec<u8>)> = b
            .packets()
            .map(|p| (p.ts.0, p.pcap_cnt, p.data.to_vec()))
            .collect();
        assert_eq!(got, [(1, 1, b"abc".to_vec()), (2, 2, b"de".to_vec())]);
        let b = b.cleared();
        assert!(b.is_empty());
    }

    #[test]
    fn both_directions_and_fragments_hash_alike() {
        // IPv4/UDP 10.0.0.1:1 -> 10.0.0.2:2 and the reverse, and a fragment of the pair.
        let udp = |src: [u8; 4], dst: [u8; 4], frag: bool| {
            let mut p = vec![
                0x45,
                0,
                0,
                29,
                0,
                1,
                if frag { 0x20 } else { 0 },
                0,
                64,
                17,
                0,
                0,
            ];
            p.extend_from_slice(&src);
            p.extend_from_slice(&dst);
            p.extend_from_slice(&[0, 1, 0, 2, 0, 9, 0, 0, b'x']);
            p
        };
        let a = dispatch_hash(LinkType::Raw, &udp([10, 0, 0, 1], [10, 0, 0, 2], false));
        let b = dispatch_hash(LinkType::Raw, &udp([10, 0, 0, 2], [10, 0, 0, 1], false));
        let f = dispatch_hash(LinkType::Raw, &udp([10, 0, 0, 1], [10, 0, 0, 2], true));
        assert!(a.is_some());
        assert_eq!(a, b);
        assert_eq!(a, f);
    }
}
