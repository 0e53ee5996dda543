//! Defragmentation: IPv4 and IPv6 fragments in, whole datagrams out.
//!
//! Input: decoded fragment [`Packet`]s (`ip.frag` is `Some`; `ip.datagram` is the whole IP
//! packet), in capture order. Output: when a datagram completes, an owned `Vec<u8>` holding
//! a valid IP datagram that the pipeline re-decodes with
//! [`decode_ip`](crate::decode::decode_ip):
//! - IPv4: the header (with options) of the fragment that owns byte 0, total length
//!   rewritten, MF and the fragment offset cleared (DF kept), header checksum recomputed.
//! - IPv6: the unfragmentable part (fixed header and the extension headers before the
//!   fragment header) of the fragment at offset 0, the fragment header removed, the
//!   preceding next-header field pointing at the fragment's upper-layer protocol, payload
//!   length rewritten.
//!
//! Trackers are keyed by (source, destination, identification, protocol, VLAN IDs). For
//! IPv6 the protocol is left out of the key (RFC 8200 4.5: only the first fragment's next
//! header counts), and offset, MF and identification come from the first fragment header
//! in the chain (a nested one belongs to the payload).
//!
//! # Overlaps
//! Fragments are kept as they arrived; the datagram is rebuilt when complete by replaying
//! them in arrival order. Where a new fragment overlaps bytes already owned by an earlier
//! fragment, the configured [`OverlapPolicy`] (Suricata's `host-os-policy` names; default
//! `bsd`, Suricata's default for hosts not listed) decides, comparing the two fragments'
//! original extents (Novak, "Target-Based Fragmentation Reassembly", 2005):
//!
//! | policy | the later fragment's bytes win when it ... |
//! |---|---|
//! | `first` | never (the original always wins) |
//! | `last` | always |
//! | `bsd` | starts before the original |
//! | `bsd-right` | starts at or after the original's start (the right-most fragment wins) |
//! | `linux` | starts at or before the original's start |
//! | `windows` | starts before and ends after the original |
//! | `solaris` | starts before and ends at or after the original's end |
//!
//! These reproduce the per-policy results of the Sturges/Novak 17-fragment test pattern
//! (see the unit tests). Suricata maps `bsd-right` to a policy that has no special case in
//! its overlap code; ours lets the right-most fragment win, which is what the name says.
//! The first fragment with MF clear fixes the datagram's length; bytes beyond it are
//! ignored. The datagram is complete when `[0, length)` is covered.
//!
//! # Caps and counters
//! Memory (fragment bytes plus fixed per-fragment and per-tracker overhead) stays under
//! `memcap`; live trackers under `max_trackers`; fragments per datagram under
//! `max_fragments`. Past a cap the fragment is dropped and counted, never stored. Trackers
//! expire `timeout_secs` of packet time after their latest fragment (Suricata: 60 s); the
//! sweep runs on packet time from [`Defragmenter::process`] and [`Defragmenter::expire`].
//! Counters: see [`DefragStats`]. A tiny first fragment (too short for the TCP, UDP or
//! ICMP header) is counted and kept, as Suricata keeps it.
//!
//! Invariants: never panics, never grows past its caps, copies only fragment payloads.

#![warn(clippy::indexing_slicing)]

mod policy;
mod tracker;

use std::collections::HashMap;
use std::net::IpAddr;

use serde::Deserialize;

pub use policy::{Extent, OverlapPolicy, UnknownPolicy};
use tracker::{TRACKER_OVERHEAD, Tracker};

use crate::Timestamp;
use crate::decode::{IpVersion, Packet, ipproto};

/// Defragmentation limits. Defaults follow Suricata 7's `defrag` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DefragConfig {
    /// Overlap resolution for IPv4 (Suricata's `host-os-policy` name). Default `windows`:
    /// Suricata's shipped suricata.yaml maps `0.0.0.0/0` to windows.
    pub policy: OverlapPolicy,
    /// Overlap resolution for IPv6. Default `bsd`: the shipped suricata.yaml names no IPv6
    /// network, so Suricata falls back to its built-in default.
    pub policy_v6: OverlapPolicy,
    /// Bytes of fragment data and bookkeeping held at most (Suricata: 32 MB).
    pub memcap: usize,
    /// Datagrams being reassembled at most (Suricata `trackers`: 65535).
    pub max_trackers: usize,
    /// Fragments stored per datagram at most; more drop the datagram's further fragments.
    pub max_fragments: usize,
    /// Seconds of packet time a tracker lives after its latest fragment (Suricata: 60).
    pub timeout_secs: u32,
}

impl Default for DefragConfig {
    fn default() -> Self {
        Self {
            policy: OverlapPolicy::Windows,
            policy_v6: OverlapPolicy::default(),
            memcap: 32 << 20,
            max_trackers: 65_535,
            max_fragments: 1024,
            timeout_secs: 60,
        }
    }
}

/// Counters (monotonic except the two gauges at the end).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DefragStats {
    /// Fragments handed to [`Defragmenter::process`].
    pub fragments: u64,
    /// Datagrams rebuilt and returned.
    pub reassembled: u64,
    /// Trackers removed by their timeout.
    pub timeouts: u64,
    /// Fragments dropped because storing them would pass the memcap.
    pub memcap_drops: u64,
    /// Fragments dropped because `max_trackers` datagrams were already in progress.
    pub tracker_drops: u64,
    /// Fragments that overlapped data already held for their datagram.
    pub overlaps: u64,
    /// First fragments too short to hold their transport header.
    pub tiny_fragments: u64,
    /// Fragments dropped because their datagram already held `max_fragments`.
    pub max_fragments_exceeded: u64,
    /// Fragments dropped as invalid (end past 65535, cut by the snaplen, IPv6 fragment
    /// header unreachable, rebuilt datagram too long, ...).
    pub invalid: u64,
    /// Gauge: trackers alive.
    pub trackers: u64,
    /// Gauge: bytes charged to the memcap.
    pub mem_used: u64,
}

impl DefragStats {
    /// The counters as `("defrag.<name>", value)` pairs, for stats records.
    #[must_use]
    pub fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("defrag.fragments", self.fragments),
            ("defrag.reassembled", self.reassembled),
            ("defrag.timeouts", self.timeouts),
            ("defrag.memcap_drops", self.memcap_drops),
            ("defrag.tracker_drops", self.tracker_drops),
            ("defrag.overlaps", self.overlaps),
            ("defrag.tiny_fragments", self.tiny_fragments),
            ("defrag.max_fragments_exceeded", self.max_fragments_exceeded),
            ("defrag.invalid", self.invalid),
            ("defrag.trackers", self.trackers),
            ("defrag.mem_used", self.mem_used),
        ]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct DefragKey {
    src: IpAddr,
    dst: IpAddr,
    id: u32,
    proto: u8,
    vlan: [u16; 2],
}

/// How often (packet time) `process` sweeps for expired trackers.
const SWEEP_INTERVAL_US: i64 = 1_000_000;

/// Reassembles fragmented datagrams for one worker.
#[derive(Debug)]
pub struct Defragmenter {
    cfg: DefragConfig,
    trackers: HashMap<DefragKey, Tracker, ahash::RandomState>,
    mem_used: usize,
    next_sweep: Timestamp,
    stats: DefragStats,
}

/// A fragment's parts, taken from the packet.
struct Piece<'a> {
    key: DefragKey,
    /// Upper-layer protocol of this fragment (IPv6: its fragment header's next header).
    proto: u8,
    offset: u32,
    more: bool,
    data: &'a [u8],
    /// For offset 0: the header the rebuilt datagram starts with.
    header: Option<Vec<u8>>,
}

impl Defragmenter {
    /// An empty defragmenter.
    #[must_use]
    pub fn new(cfg: DefragConfig) -> Self {
        Self {
            cfg,
            trackers: HashMap::with_hasher(ahash::RandomState::new()),
            mem_used: 0,
            next_sweep: Timestamp(i64::MIN),
            stats: DefragStats::default(),
        }
    }

    /// Counters and gauges.
    #[must_use]
    pub fn stats(&self) -> DefragStats {
        DefragStats {
            trackers: self.trackers.len() as u64,
            mem_used: self.mem_used as u64,
            ..self.stats
        }
    }

    /// Takes one fragment; returns the rebuilt datagram when this fragment completed it.
    /// A packet that is not a fragment returns `None` and is not counted.
    ///
    /// The caller decodes the result with `decode_ip(&datagram, pkt.vlan, pkt.ts,
    /// pkt.pcap_cnt)`. A rebuilt datagram can itself carry a fragment header (nested IPv6
    /// fragmentation); callers should bound how often they feed results back in.
    pub fn process(&mut self, pkt: &Packet<'_>) -> Option<Vec<u8>> {
        pkt.ip.frag?;
        self.stats.fragments += 1;
        if pkt.ts >= self.next_sweep {
            self.expire(pkt.ts);
            self.next_sweep = pkt.ts.add_micros(SWEEP_INTERVAL_US);
        }
        let Some(piece) = split_fragment(pkt) else {
            self.stats.invalid += 1;
            return None;
        };
        if piece.offset == 0 && is_tiny(piece.proto, piece.data.len()) {
            self.stats.tiny_fragments += 1;
        }
        let expires = pkt
            .ts
            .add_micros(i64::from(self.cfg.timeout_secs) * 1_000_000);
        let cost =
            piece.data.len() + tracker::FRAG_OVERHEAD + piece.header.as_ref().map_or(0, Vec::len);

        // A tracker whose time ran out is gone, whether or not the sweep saw it yet.
        if self
            .trackers
            .get(&piece.key)
            .is_some_and(|t| t.expires <= pkt.ts)
            && let Some(old) = self.trackers.remove(&piece.key)
        {
            self.mem_used = self.mem_used.saturating_sub(old.mem);
            self.stats.timeouts += 1;
        }
        if self.trackers.contains_key(&piece.key) {
            // `fits` only expires trackers with `expires <= now`, so this one survives it.
            if !self.fits(cost, pkt.ts) {
                self.stats.memcap_drops += 1;
                return None;
            }
        } else {
            if self.trackers.len() >= self.cfg.max_trackers {
                self.expire(pkt.ts);
                if self.trackers.len() >= self.cfg.max_trackers {
                    self.stats.tracker_drops += 1;
                    return None;
                }
            }
            if !self.fits(cost + TRACKER_OVERHEAD, pkt.ts) {
                self.stats.memcap_drops += 1;
                return None;
            }
            self.trackers.insert(piece.key, Tracker::new(expires));
            self.mem_used += TRACKER_OVERHEAD;
        }
        let tracker = self.trackers.get_mut(&piece.key)?;
        if tracker.fragments() >= self.cfg.max_fragments {
            self.stats.max_fragments_exceeded += 1;
            return None;
        }
        tracker.expires = expires;
        let before = tracker.mem;
        let result = tracker.insert(piece.offset, piece.data, piece.more, piece.header);
        self.mem_used += tracker.mem - before;
        if result.overlap {
            self.stats.overlaps += 1;
        }
        if !result.complete {
            return None;
        }
        let tracker = self.trackers.remove(&piece.key)?;
        self.mem_used = self.mem_used.saturating_sub(tracker.mem);
        let policy = match pkt.ip.version {
            IpVersion::V4 => self.cfg.policy,
            IpVersion::V6 => self.cfg.policy_v6,
        };
        let rebuilt = tracker
            .rebuild(policy)
            .and_then(|(header, payload)| build_datagram(pkt.ip.version, header, &payload));
        match rebuilt {
            Some(d) => {
                self.stats.reassembled += 1;
                Some(d)
            }
            None => {
                self.stats.invalid += 1;
                None
            }
        }
    }

    /// Removes trackers whose timeout passed at `now` (packet time), counting them.
    pub fn expire(&mut self, now: Timestamp) {
        let mut freed = 0usize;
        let mut expired = 0u64;
        self.trackers.retain(|_, t| {
            if t.expires <= now {
                freed += t.mem;
                expired += 1;
                false
            } else {
                true
            }
        });
        self.mem_used = self.mem_used.saturating_sub(freed);
        self.stats.timeouts += expired;
    }

    /// Whether `cost` more bytes fit under the memcap, expiring old trackers first if not.
    fn fits(&mut self, cost: usize, now: Timestamp) -> bool {
        if self.mem_used + cost <= self.cfg.memcap {
            return true;
        }
        self.expire(now);
        self.mem_used + cost <= self.cfg.memcap
    }
}

/// Whether a first fragment of `len` bytes cannot hold the `proto` header.
fn is_tiny(proto: u8, len: usize) -> bool {
    match proto {
        ipproto::TCP => len < 20,
        ipproto::UDP | ipproto::ICMP | ipproto::ICMPV6 => len < 8,
        _ => false,
    }
}

/// Extracts key, offset, data and (for offset 0) the rebuild header from a fragment.
///
/// IPv6 takes offset, MF and identification from the first fragment header it finds by
/// walking the header chain, not from `pkt.ip.frag`: with nested fragment headers the
/// outer one is the one that fragments this packet.
fn split_fragment<'a>(pkt: &Packet<'a>) -> Option<Piece<'a>> {
    let frag = pkt.ip.frag?;
    let d = pkt.ip.datagram;
    let (proto, offset, more, id, data, header) = match pkt.ip.version {
        IpVersion::V4 => {
            let hlen = pkt.ip.header.len();
            let total = usize::from(u16::from_be_bytes([*d.get(2)?, *d.get(3)?]));
            // A fragment cut by the snaplen would rebuild into a wrong datagram.
            if d.len() < total || total < hlen {
                return None;
            }
            let data = d.get(hlen..total)?;
            if hlen + frag.offset as usize + data.len() > 65_535 {
                return None;
            }
            let header = (frag.offset == 0).then(|| d.get(..hlen).map(<[u8]>::to_vec));
            (
                pkt.ip.proto,
                frag.offset,
                frag.more,
                frag.id,
                data,
                header.flatten(),
            )
        }
        IpVersion::V6 => {
            let loc = locate_ipv6_fragment_header(d)?;
            let (offset, more, id) = (loc.offset, loc.more, loc.id);
            if offset == 0 && !more {
                return None; // an atomic fragment is not ours to hold
            }
            let plen = usize::from(u16::from_be_bytes([*d.get(4)?, *d.get(5)?]));
            let end = 40 + plen;
            if d.len() < end {
                return None;
            }
            let data = d.get(loc.at + 8..end)?;
            if offset as usize + data.len() > 65_535 {
                return None;
            }
            let header = if offset == 0 {
                let mut h = d.get(..loc.at)?.to_vec();
                *h.get_mut(loc.named_at)? = loc.next_header;
                Some(h)
            } else {
                None
            };
            (loc.next_header, offset, more, id, data, header)
        }
    };
    Some(Piece {
        key: DefragKey {
            src: pkt.ip.src,
            dst: pkt.ip.dst,
            id,
            // RFC 8200 4.5: only the first fragment's next header counts, later fragments
            // may carry any value, so IPv6 trackers are not keyed by it.
            proto: if pkt.ip.version == IpVersion::V4 {
                proto
            } else {
                0
            },
            vlan: pkt.vlan,
        },
        proto,
        offset,
        more,
        data,
        header,
    })
}

/// Where the IPv6 fragment header sits in a datagram (decode's extension-header walk).
fn locate_ipv6_fragment_header(d: &[u8]) -> Option<crate::decode::Ipv6FragHeader> {
    crate::decode::walk_ipv6(d).frag
}

/// Prepends `header` to `payload` and fixes the length fields. `None` when too long.
fn build_datagram(version: IpVersion, header: &[u8], payload: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(header.len() + payload.len());
    out.extend_from_slice(header);
    out.extend_from_slice(payload);
    match version {
        IpVersion::V4 => {
            let total = u16::try_from(out.len()).ok()?;
            let [hi, lo] = total.to_be_bytes();
            let flags = out.get(6).copied()? & 0x40; // keep DF, clear MF and the offset
            let hlen = header.len();
            let h = out.get_mut(..hlen)?;
            *h.get_mut(2)? = hi;
            *h.get_mut(3)? = lo;
            *h.get_mut(6)? = flags;
            *h.get_mut(7)? = 0;
            *h.get_mut(10)? = 0;
            *h.get_mut(11)? = 0;
            let [c0, c1] = ipv4_checksum(h).to_be_bytes();
            *h.get_mut(10)? = c0;
            *h.get_mut(11)? = c1;
        }
        IpVersion::V6 => {
            let plen = u16::try_from(out.len().checked_sub(40)?).ok()?;
            let [hi, lo] = plen.to_be_bytes();
            *out.get_mut(4)? = hi;
            *out.get_mut(5)? = lo;
        }
    }
    Some(out)
}

/// RFC 791 header checksum over `h` (whose checksum field is zero).
fn ipv4_checksum(h: &[u8]) -> u16 {
    let mut sum: u32 = h
        .chunks(2)
        .map(|c| {
            u32::from(u16::from_be_bytes([
                c.first().copied().unwrap_or(0),
                c.get(1).copied().unwrap_or(0),
            ]))
        })
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(u16::try_from(sum).unwrap_or(0xffff))
}

#[cfg(test)]
mod tests;
