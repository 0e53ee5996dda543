//! The flow table: lookup/create per packet, timeouts on packet time, and a hard cap.
//!
//! Storage is a dense `Vec` of flows plus a key → index map, so expiring is a linear sweep
//! over contiguous memory and eviction can sample flows at random positions.

use std::collections::HashMap;

use serde::Deserialize;

use super::{Flow, FlowKey, FlowState, key::stable_hash};
use crate::decode::{Packet, Transport, ipproto, tcpflag};
use crate::{Direction, Timestamp};

/// Flow table limits and timeouts (seconds of packet time). Defaults follow Suricata 7's
/// suricata.yaml (`flow-timeouts`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowConfig {
    /// Hard cap on live flows; new flows beyond it trigger emergency expiry and eviction.
    pub max_flows: usize,
    /// TCP: handshake not complete.
    pub tcp_new_timeout: u32,
    /// TCP: established.
    pub tcp_established_timeout: u32,
    /// TCP: closed (FIN/RST seen).
    pub tcp_closed_timeout: u32,
    /// UDP and others: one direction only.
    pub other_new_timeout: u32,
    /// UDP and others: both directions seen.
    pub other_established_timeout: u32,
    /// Timeouts used when the table is full ("emergency mode").
    pub emergency_new_timeout: u32,
    /// Emergency timeout for established flows.
    pub emergency_established_timeout: u32,
    /// Emergency timeout for closed flows.
    pub emergency_closed_timeout: u32,
    /// Pick up TCP sessions whose handshake was not seen. Not read from `[flow]`: the
    /// pipeline copies `[stream] midstream` here so flow state and reassembly agree.
    #[serde(skip)]
    pub midstream: bool,
}

impl Default for FlowConfig {
    fn default() -> Self {
        Self {
            max_flows: 1 << 20,
            tcp_new_timeout: 60,
            tcp_established_timeout: 600,
            tcp_closed_timeout: 60,
            other_new_timeout: 30,
            other_established_timeout: 300,
            emergency_new_timeout: 10,
            emergency_established_timeout: 100,
            emergency_closed_timeout: 5,
            midstream: false,
        }
    }
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowStats {
    /// Flows created.
    pub created: u64,
    /// Flows ended by their timeout.
    pub timed_out: u64,
    /// Flows forced out because the table was full.
    pub evicted: u64,
    /// Times the table was full when a new flow arrived.
    pub emergencies: u64,
}

impl FlowStats {
    /// The counters as `("flow.<name>", value)` pairs, for stats records.
    #[must_use]
    pub fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("flow.created", self.created),
            ("flow.timed_out", self.timed_out),
            ("flow.evicted", self.evicted),
            ("flow.emergencies", self.emergencies),
        ]
    }
}

/// The result of looking up a packet's flow.
#[derive(Debug)]
pub struct Lookup<'a, T> {
    /// The flow.
    pub flow: &'a mut Flow<T>,
    /// The packet's direction in it.
    pub dir: Direction,
    /// Whether the packet created the flow.
    pub created: bool,
}

/// Live flows of one worker.
#[derive(Debug)]
pub struct FlowTable<T> {
    cfg: FlowConfig,
    flows: Vec<Flow<T>>,
    index: HashMap<FlowKey, u32, ahash::RandomState>,
    next_sweep: Timestamp,
    rng: u64,
    stats: FlowStats,
}

const SWEEP_INTERVAL_US: i64 = 1_000_000;
const EVICTION_SAMPLE: usize = 16;

impl<T> FlowTable<T> {
    /// An empty table.
    #[must_use]
    pub fn new(cfg: FlowConfig) -> Self {
        Self {
            cfg,
            flows: Vec::new(),
            index: HashMap::with_hasher(ahash::RandomState::new()),
            next_sweep: Timestamp(i64::MIN),
            rng: 0x9e37_79b9_7f4a_7c15,
            stats: FlowStats::default(),
        }
    }

    /// Live flows.
    #[must_use]
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    /// Whether no flow is live.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// Counters so far.
    #[must_use]
    pub fn stats(&self) -> FlowStats {
        self.stats
    }

    /// Finds or creates the flow of `pkt` and updates its counters and TCP state.
    /// `new_ext` builds later stages' state for a new flow. Flows evicted to make room are
    /// pushed to `evicted` so the caller can flush them.
    pub fn lookup(
        &mut self,
        pkt: &Packet<'_>,
        new_ext: impl FnOnce(&FlowKey) -> T,
        evicted: &mut Vec<Flow<T>>,
    ) -> Lookup<'_, T> {
        let key = FlowKey::of(pkt);
        let (idx, created) = if let Some(&idx) = self.index.get(&key) {
            (idx as usize, false)
        } else {
            if self.flows.len() >= self.cfg.max_flows.max(1) {
                self.make_room(pkt.ts, evicted);
            }
            let flow = self.new_flow(pkt, key, new_ext(&key));
            let idx = self.flows.len();
            self.flows.push(flow);
            // The table never exceeds max_flows, which is far below u32::MAX in practice;
            // saturate rather than wrap if someone configures more.
            self.index
                .insert(key, u32::try_from(idx).unwrap_or(u32::MAX));
            self.stats.created += 1;
            (idx, true)
        };
        let midstream = self.cfg.midstream;
        // idx comes from the index map, which always points at a live slot.
        let Some(flow) = self.flows.get_mut(idx) else {
            unreachable!("flow index out of sync with flow storage")
        };
        let dir = flow.direction_of(pkt.ip.src, pkt.src_port());
        flow.last_ts = flow.last_ts.max(pkt.ts);
        if let (Some(p), Some(b)) = (
            flow.packets.get_mut(dir.index()),
            flow.bytes.get_mut(dir.index()),
        ) {
            *p += 1;
            *b += pkt.ip.datagram.len() as u64;
        }
        match &pkt.l4 {
            Transport::Tcp(t) => {
                flow.tcp.on_packet(dir, t.flags, t.seq, midstream);
                flow.state = match flow.tcp.state {
                    super::tcp::TcpSessionState::Closed => FlowState::Closed,
                    _ if flow.tcp.established() => FlowState::Established,
                    _ => FlowState::New,
                };
            }
            _ => {
                if flow.packets[0] > 0 && flow.packets[1] > 0 {
                    flow.state = FlowState::Established;
                }
            }
        }
        Lookup { flow, dir, created }
    }

    fn new_flow(&self, pkt: &Packet<'_>, key: FlowKey, ext: T) -> Flow<T> {
        // The client is the packet's sender, except when the first packet we see is the
        // server's SYN/ACK (the SYN was missed): then the receiver started the session.
        let reversed = matches!(&pkt.l4, Transport::Tcp(t)
            if t.flags & (tcpflag::SYN | tcpflag::ACK) == tcpflag::SYN | tcpflag::ACK);
        let (client_addr, client_port, server_addr, server_port) = if reversed {
            (pkt.ip.dst, pkt.dst_port(), pkt.ip.src, pkt.src_port())
        } else {
            (pkt.ip.src, pkt.src_port(), pkt.ip.dst, pkt.dst_port())
        };
        // 51 bits: exact in JSON consumers that read numbers as doubles.
        let id = stable_hash(&(key, pkt.ts)) & ((1 << 51) - 1);
        Flow {
            key,
            id,
            client_addr,
            client_port,
            server_addr,
            server_port,
            proto: pkt.ip.proto,
            first_ts: pkt.ts,
            last_ts: pkt.ts,
            packets: [0; 2],
            bytes: [0; 2],
            state: FlowState::New,
            tcp: super::tcp::TcpTrack::default(),
            ext,
        }
    }

    fn timeout_secs(&self, flow: &Flow<T>, emergency: bool) -> u32 {
        let c = &self.cfg;
        match (flow.state, flow.proto == ipproto::TCP, emergency) {
            (FlowState::New, true, false) => c.tcp_new_timeout,
            (FlowState::Established, true, false) => c.tcp_established_timeout,
            (FlowState::Closed, true, false) => c.tcp_closed_timeout,
            (FlowState::New | FlowState::Closed, false, false) => c.other_new_timeout,
            (FlowState::Established, false, false) => c.other_established_timeout,
            (FlowState::New, _, true) => c.emergency_new_timeout,
            (FlowState::Established, _, true) => c.emergency_established_timeout,
            (FlowState::Closed, _, true) => c.emergency_closed_timeout,
        }
    }

    /// Moves flows idle past their timeout at packet time `now` into `out`. Cheap to call
    /// per packet: the sweep runs at most once per second of packet time.
    pub fn expire(&mut self, now: Timestamp, out: &mut Vec<Flow<T>>) {
        if now < self.next_sweep {
            return;
        }
        self.next_sweep = now.add_micros(SWEEP_INTERVAL_US);
        let n = self.sweep(now, false, out);
        self.stats.timed_out += n as u64;
    }

    /// Removes every flow (end of input), oldest activity first.
    pub fn drain(&mut self, out: &mut Vec<Flow<T>>) {
        self.index.clear();
        let mut all = std::mem::take(&mut self.flows);
        all.sort_by_key(|f| (f.last_ts, f.id));
        out.extend(all);
    }

    fn sweep(&mut self, now: Timestamp, emergency: bool, out: &mut Vec<Flow<T>>) -> usize {
        let mut i = 0;
        let mut removed = 0;
        while i < self.flows.len() {
            let expired = self.flows.get(i).is_some_and(|f| {
                let timeout = i64::from(self.timeout_secs(f, emergency)) * 1_000_000;
                now.0.saturating_sub(f.last_ts.0) > timeout
            });
            if expired {
                out.push(self.remove_at(i));
                removed += 1;
            } else {
                i += 1;
            }
        }
        removed
    }

    fn remove_at(&mut self, i: usize) -> Flow<T> {
        let flow = self.flows.swap_remove(i);
        self.index.remove(&flow.key);
        if let Some(moved) = self.flows.get(i) {
            self.index
                .insert(moved.key, u32::try_from(i).unwrap_or(u32::MAX));
        }
        flow
    }

    /// Frees at least one slot: emergency timeouts first, then the least recently seen of
    /// a random sample.
    fn make_room(&mut self, now: Timestamp, out: &mut Vec<Flow<T>>) {
        self.stats.emergencies += 1;
        let n = self.sweep(now, true, out);
        self.stats.timed_out += n as u64;
        if self.flows.len() < self.cfg.max_flows.max(1) {
            return;
        }
        let mut victim: Option<usize> = None;
        for _ in 0..EVICTION_SAMPLE {
            // xorshift64: cheap, and the seed never matters for correctness.
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            let len = self.flows.len() as u64;
            let i = usize::try_from(self.rng % len.max(1)).unwrap_or(0);
            let older = match (victim.and_then(|v| self.flows.get(v)), self.flows.get(i)) {
                (Some(v), Some(c)) => c.last_ts < v.last_ts,
                (None, Some(_)) => true,
                _ => false,
            };
            if older {
                victim = Some(i);
            }
        }
        if let Some(v) = victim {
            out.push(self.remove_at(v));
            self.stats.evicted += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{LinkType, decode};

    fn udp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 29, 0, 1, 0, 0, 64, 17, 0, 0];
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(&sport.to_be_bytes());
        p.extend_from_slice(&dport.to_be_bytes());
        p.extend_from_slice(&[0, 9, 0, 0, b'x']);
        p
    }

    #[test]
    fn directions_counters_and_establishment() {
        let mut table = FlowTable::<u32>::new(FlowConfig::default());
        let mut out = Vec::new();
        let a = udp([10, 0, 0, 1], 5000, [10, 0, 0, 2], 53);
        let b = udp([10, 0, 0, 2], 53, [10, 0, 0, 1], 5000);
        let pa = decode(LinkType::Raw, &a, Timestamp(1), 1).unwrap();
        let pb = decode(LinkType::Raw, &b, Timestamp(2), 2).unwrap();
        let l = table.lookup(&pa, |_| 7, &mut out);
        assert!(l.created);
        assert_eq!(l.dir, Direction::ToServer);
        assert_eq!(l.flow.state, FlowState::New);
        let l = table.lookup(&pb, |_| 0, &mut out);
        assert!(!l.created);
        assert_eq!(l.dir, Direction::ToClient);
        assert_eq!(l.flow.ext, 7, "existing flow keeps its state");
        assert_eq!(l.flow.packets, [1, 1]);
        assert_eq!(l.flow.state, FlowState::Established);
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn timeouts_run_on_packet_time() {
        let mut table = FlowTable::<()>::new(FlowConfig::default());
        let mut out = Vec::new();
        let a = udp([10, 0, 0, 1], 5000, [10, 0, 0, 2], 53);
        let p = decode(LinkType::Raw, &a, Timestamp(0), 1).unwrap();
        table.lookup(&p, |_| (), &mut out);
        table.expire(Timestamp(29 * 1_000_000), &mut out);
        assert!(out.is_empty());
        table.expire(Timestamp(31 * 1_000_000), &mut out);
        assert_eq!(out.len(), 1);
        assert!(table.is_empty());
        assert_eq!(table.stats().timed_out, 1);
    }

    #[test]
    fn flood_of_new_flows_stays_under_the_cap() {
        let cfg = FlowConfig {
            max_flows: 100,
            ..FlowConfig::default()
        };
        let mut table = FlowTable::<()>::new(cfg);
        let mut out = Vec::new();
        for i in 0..10_000u32 {
            let src = i.to_be_bytes();
            let a = udp(src, 1000, [10, 0, 0, 2], 53);
            let p = decode(LinkType::Raw, &a, Timestamp(i64::from(i)), 1).unwrap();
            table.lookup(&p, |_| (), &mut out);
            assert!(table.len() <= 100);
        }
        let s = table.stats();
        assert_eq!(s.created, 10_000);
        assert_eq!(s.evicted + s.timed_out, 9_900);
        assert_eq!(out.len(), 9_900);
        // Index and storage agree after thousands of swap-removes.
        for f in &table.flows {
            assert_eq!(
                table
                    .index
                    .get(&f.key)
                    .map(|&i| table.flows[i as usize].key),
                Some(f.key)
            );
        }
    }
}
