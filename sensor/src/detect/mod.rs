//! Detection: Suricata-syntax rules evaluated against packets, the reassembled stream and
//! app-layer transactions.
//!
//! Input: a decoded packet with its flow context ([`PacketInput`]). Output: [`Alert`]s in
//! signature order. Build an [`Engine`] once from loaded rules (shared, read-only, by all
//! workers); each worker owns a [`DetectThread`] (scratch space) and each flow a
//! [`FlowDetect`] (flowbits, per-transaction progress).
//!
//! Per packet: the prefilter ([`prefilter`]) scans the payload with the fast patterns of
//! the packet's protocol group and yields candidate rules; rules without a usable fast
//! pattern are always candidates. Candidates run in signature order ([`compile::order`]):
//! header, flow state, cheap checks, flowbits conditions, then the match lists
//! ([`content`]). A match applies its flowbits actions, then threshold/detection_filter
//! and `noalert` decide whether it alerts. At most `packet_alert_max` alerts per packet.

pub mod compile;
pub mod content;
mod eval;
pub mod prefilter;
pub mod rule;
pub mod threshold;
pub mod transform;
mod tx;

use std::sync::Mutex;

pub use compile::{BufferKey, Sig};
pub use eval::{FlowDetect, PacketInput};

use crate::applayer::{AppLayer, AppProto, TxRef};
use crate::config::DetectConfig;
use compile::Interner;
use prefilter::{Candidates, Mpm, MpmError};
use rule::buffers::BufferId;
use rule::classification::Classifications;
use rule::load::{LoadedRule, RejectReason, Rejection};
use threshold::ThresholdTable;

/// One alert raised on a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alert {
    /// Signature number (index into [`Engine::sig`]).
    pub sig: u32,
    /// Transaction, for app-layer matches.
    pub tx_id: Option<u64>,
    /// Whether the match was on the reassembled stream rather than the packet.
    pub stream: bool,
}

/// Fast patterns with their signature numbers, for one prefilter database.
type PatternList = Vec<(Vec<u8>, u32)>;

/// Packet protocol classes; each has its own prefilter group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Tcp = 0,
    Udp = 1,
    Icmp = 2,
    Other = 3,
}

/// Rules of one protocol class: a prefilter per inspected buffer and the rules that have
/// no fast pattern (always evaluated).
#[derive(Debug, Default)]
struct Group {
    mpms: Vec<(BufferKey, Mpm)>,
    always: Vec<u32>,
    /// Signatures without a fast pattern whose source (or else destination) addresses are
    /// a short list of IPv4 addresses (IP reputation rules), by address: a packet meets
    /// those listed under its source or destination address only. A superset of the ones
    /// whose header can match; the header is checked in full afterwards.
    by_addr: ahash::HashMap<u32, Vec<u32>>,
}

/// Most addresses a signature may be indexed under (larger lists stay in `always`).
const MAX_INDEXED_ADDRESSES: usize = 4096;

/// Counts from building the engine.
#[derive(Debug, Clone, Copy, Default)]
pub struct EngineStats {
    /// Signatures in the engine.
    pub signatures: usize,
    /// Signatures that inspect app-layer transactions.
    pub tx_signatures: usize,
    /// Signatures without a fast pattern (evaluated on every packet of their group).
    pub no_fast_pattern: usize,
    /// Transaction signatures for protocols Tocsin detects but does not parse (they load
    /// and never match, as in a Suricata built without that parser).
    pub tx_without_parser: usize,
}

/// The compiled rule set.
#[derive(Debug)]
pub struct Engine {
    sigs: Vec<Sig>,
    groups: [Group; 4],
    tx_groups: [Group; 3],
    max_patterns: usize,
    flowbits: Interner,
    thresholds: Mutex<ThresholdTable>,
    cfg: DetectConfig,
    stats: EngineStats,
    /// Hashes transaction buffers to tell which changed since the last round. Randomly
    /// seeded per engine, so traffic cannot be crafted to collide with earlier content.
    scan_hasher: ahash::RandomState,
}

/// Why the engine could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The prefilter could not be built.
    #[error(transparent)]
    Mpm(#[from] MpmError),
}

/// Per-worker scratch space.
#[derive(Debug, Default)]
pub struct DetectThread {
    cands: Candidates,
    vars: Vec<u64>,
    transformed: Vec<(BufferKey, Vec<u8>)>,
}

impl DetectThread {
    /// Fresh scratch space.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

fn class_of(sig: &Sig) -> Vec<Class> {
    use compile::ProtoFilter as P;
    match &sig.proto {
        P::Tcp { .. } => vec![Class::Tcp],
        P::Udp => vec![Class::Udp],
        P::Icmp(_) => vec![Class::Icmp],
        P::Sctp => vec![Class::Other],
        // App rules only ever see flows whose protocol was detected (TCP or UDP).
        P::Ip(_) if sig.app_proto.is_some() => vec![Class::Tcp, Class::Udp],
        P::Ip(_) => vec![Class::Tcp, Class::Udp, Class::Icmp, Class::Other],
    }
}

/// Transaction types with a parser; transaction signatures are grouped by them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxKind {
    Http = 0,
    Dns = 1,
    Tls = 2,
}

fn tx_kind_of_sig(app: Option<AppProto>) -> Option<TxKind> {
    match app? {
        AppProto::Http | AppProto::HttpAny => Some(TxKind::Http),
        AppProto::Dns => Some(TxKind::Dns),
        AppProto::Tls => Some(TxKind::Tls),
        _ => None,
    }
}

fn tx_kind_of(tx: TxRef<'_>) -> TxKind {
    match tx {
        TxRef::Http(_) => TxKind::Http,
        TxRef::Dns(_) => TxKind::Dns,
        TxRef::Tls(_) => TxKind::Tls,
    }
}

impl Engine {
    /// Compiles loaded rules. Rules that fail to compile (bad pcre, unknown classtype) are
    /// returned as rejections, like parse failures.
    ///
    /// # Errors
    /// [`EngineError`] when the prefilter cannot be built.
    pub fn build(
        rules: &[LoadedRule],
        classes: &Classifications,
        cfg: DetectConfig,
    ) -> Result<(Self, Vec<Rejection>), EngineError> {
        Self::build_from(rules.iter(), rules.len(), classes, cfg)
    }

    /// As [`Engine::build`], consuming the parsed rules: each one is freed as soon as it is
    /// compiled, so parsed and compiled forms of a big ruleset (ET Open: ~140 MB of parsed
    /// rules) are never all in memory at once. Use it when the parsed rules are not needed
    /// afterwards; it lowers the sensor's peak RSS.
    ///
    /// # Errors
    /// [`EngineError`] when the prefilter cannot be built.
    pub fn build_owned(
        rules: Vec<LoadedRule>,
        classes: &Classifications,
        cfg: DetectConfig,
    ) -> Result<(Self, Vec<Rejection>), EngineError> {
        let n = rules.len();
        Self::build_from(rules.into_iter(), n, classes, cfg)
    }

    fn build_from<R: std::borrow::Borrow<LoadedRule>>(
        rules: impl Iterator<Item = R>,
        count: usize,
        classes: &Classifications,
        cfg: DetectConfig,
    ) -> Result<(Self, Vec<Rejection>), EngineError> {
        let mut interner = Interner::default();
        let mut sigs = Vec::with_capacity(count);
        let mut rejected = Vec::new();
        for lr in rules {
            let lr = lr.borrow();
            match compile::compile(&lr.rule, classes, &mut interner) {
                Ok(s) => sigs.push(s),
                Err(e) => rejected.push(Rejection {
                    file: lr.file.clone(),
                    line: lr.line,
                    error: RejectReason::Rule(e),
                }),
            }
        }
        sigs.shrink_to_fit();
        compile::order(&mut sigs);
        let mut groups: [Group; 4] = Default::default();
        let mut entries: [Vec<(BufferKey, PatternList)>; 4] = Default::default();
        let mut tx_groups: [Group; 3] = Default::default();
        let mut tx_entries: [Vec<(BufferKey, PatternList)>; 3] = Default::default();
        let mut stats = EngineStats {
            signatures: sigs.len(),
            ..EngineStats::default()
        };
        for sig in &sigs {
            if sig.needs_tx {
                stats.tx_signatures += 1;
                let Some(kind) = tx_kind_of_sig(sig.app_proto) else {
                    stats.tx_without_parser += 1;
                    continue;
                };
                let g = kind as usize;
                // The prefilter runs on transaction buffers: only app-layer fast patterns.
                match sig.fast_pattern.as_ref().and_then(|(li, pat, _)| {
                    let list = sig.lists.get(*li)?;
                    (list.key.buffer != BufferId::Payload).then_some((list, pat))
                }) {
                    Some((list, pat)) => {
                        let per = &mut tx_entries[g];
                        match per.iter_mut().find(|(k, _)| *k == list.key) {
                            Some((_, v)) => v.push((pat.clone(), sig.num)),
                            None => per.push((list.key.clone(), vec![(pat.clone(), sig.num)])),
                        }
                    }
                    None => tx_groups[g].always.push(sig.num),
                }
                continue;
            }
            for class in class_of(sig) {
                let g = class as usize;
                // A fast pattern in the payload or a header buffer drives the prefilter.
                match &sig.fast_pattern {
                    Some((li, pat, _nocase)) => {
                        let Some(list) = sig.lists.get(*li) else {
                            continue;
                        };
                        let per = &mut entries[g];
                        match per.iter_mut().find(|(k, _)| *k == list.key) {
                            Some((_, v)) => v.push((pat.clone(), sig.num)),
                            None => per.push((list.key.clone(), vec![(pat.clone(), sig.num)])),
                        }
                    }
                    None => {
                        let h = &sig.header;
                        match h
                            .src
                            .v4_addresses(MAX_INDEXED_ADDRESSES)
                            .or_else(|| h.dst.v4_addresses(MAX_INDEXED_ADDRESSES))
                        {
                            Some(addrs) => {
                                for a in addrs {
                                    groups[g].by_addr.entry(a).or_default().push(sig.num);
                                }
                            }
                            None => groups[g].always.push(sig.num),
                        }
                    }
                }
            }
            if sig.fast_pattern.is_none() {
                stats.no_fast_pattern += 1;
            }
        }
        // One prefilter database per (group, buffer). Building them (Hyperscan's compiler)
        // is most of rule loading on big rulesets and they are independent: build them on
        // every core. (packet group or tx group, group index, buffer, patterns)
        let mut jobs: Vec<(bool, usize, BufferKey, PatternList)> = Vec::new();
        for (g, per) in entries.into_iter().enumerate() {
            jobs.extend(per.into_iter().map(|(k, p)| (false, g, k, p)));
        }
        for (g, per) in tx_entries.into_iter().enumerate() {
            jobs.extend(per.into_iter().map(|(k, p)| (true, g, k, p)));
        }
        let lists: Vec<&[(Vec<u8>, u32)]> = jobs.iter().map(|j| j.3.as_slice()).collect();
        let threads = match cfg.build_threads {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        let built = Mpm::build_many(&lists, prefilter::Backend::Auto, threads);
        let mut max_patterns = 0;
        for ((tx, g, key, _), mpm) in jobs.into_iter().zip(built) {
            let mpm = mpm?;
            max_patterns = max_patterns.max(mpm.patterns());
            let group = if tx {
                tx_groups.get_mut(g)
            } else {
                groups.get_mut(g)
            };
            if let Some(group) = group {
                group.mpms.push((key, mpm));
            }
        }
        let thresholds = Mutex::new(ThresholdTable::new(cfg.threshold_max_entries));
        Ok((
            Self {
                sigs,
                groups,
                tx_groups,
                max_patterns,
                flowbits: interner,
                thresholds,
                cfg,
                stats,
                scan_hasher: ahash::RandomState::new(),
            },
            rejected,
        ))
    }

    /// Signature by number.
    #[must_use]
    pub fn sig(&self, num: u32) -> Option<&Sig> {
        self.sigs.get(num as usize)
    }

    /// All signatures in evaluation order.
    #[must_use]
    pub fn sigs(&self) -> &[Sig] {
        &self.sigs
    }

    /// Build statistics.
    #[must_use]
    pub fn stats(&self) -> EngineStats {
        self.stats
    }

    /// Forgets threshold/detection_filter state, e.g. between unrelated captures.
    pub fn reset_thresholds(&self) {
        self.thresholds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// Name of a flowbit id.
    #[must_use]
    pub fn flowbit_name(&self, id: u32) -> &str {
        self.flowbits.name(id)
    }

    /// Inspects one packet and appends its alerts to `out`.
    pub fn inspect_packet(
        &self,
        th: &mut DetectThread,
        input: &mut PacketInput<'_, '_>,
        out: &mut Vec<Alert>,
    ) {
        let class = match &input.pkt.l4 {
            crate::decode::Transport::Tcp(_) => Class::Tcp,
            crate::decode::Transport::Udp(_) => Class::Udp,
            crate::decode::Transport::Icmpv4(_) | crate::decode::Transport::Icmpv6(_) => {
                Class::Icmp
            }
            _ => Class::Other,
        };
        let group = &self.groups[class as usize];
        th.cands.reset(self.sigs.len(), self.max_patterns);
        th.transformed.clear();
        for &s in &group.always {
            th.cands.add(s);
        }
        if !group.by_addr.is_empty() {
            for addr in [input.pkt.ip.src, input.pkt.ip.dst] {
                if let std::net::IpAddr::V4(a) = addr
                    && let Some(sigs) = group.by_addr.get(&u32::from(a))
                {
                    for &s in sigs {
                        th.cands.add(s);
                    }
                }
            }
        }
        for (key, mpm) in &group.mpms {
            if key.buffer == BufferId::Payload {
                if !input.pkt.payload.is_empty() {
                    mpm.scan(input.pkt.payload, &mut th.cands);
                }
                if let Some(stream) = input.stream.filter(|s| !s.is_empty()) {
                    mpm.scan(stream, &mut th.cands);
                }
            } else if let Some(buf) = eval::packet_buffer(input.pkt, key.buffer) {
                if key.transforms.is_empty() {
                    mpm.scan(buf, &mut th.cands);
                } else {
                    mpm.scan(&transform::apply(&key.transforms, buf), &mut th.cands);
                }
            }
        }
        th.cands.sort();
        let cands = std::mem::take(&mut th.cands.list);
        let before = out.len();
        for &num in &cands {
            let Some(sig) = self.sigs.get(num as usize) else {
                continue;
            };
            let Some(stream_match) = eval::match_packet(sig, th, input) else {
                continue;
            };
            eval::apply_flowbits(sig, input.flow);
            if sig.action == rule::Action::Pass {
                // A pass rule ends inspection of this packet; it never alerts.
                break;
            }
            if sig.noalert || !self.threshold_allows(sig, input) {
                continue;
            }
            if out.len() - before < self.cfg.packet_alert_max {
                out.push(Alert {
                    sig: num,
                    tx_id: None,
                    stream: stream_match,
                });
            }
        }
        th.cands.list = cands;
    }

    /// Inspects the flow's transactions in the packet's direction (`flow_end`: the flow is
    /// over, every buffer counts as final) and appends alerts, with their `tx_id`, to `out`.
    /// Call after the packet's app-layer data was parsed and after [`Self::inspect_packet`].
    pub fn inspect_txs(
        &self,
        th: &mut DetectThread,
        input: &mut PacketInput<'_, '_>,
        app: &AppLayer,
        flow_end: bool,
        out: &mut Vec<Alert>,
    ) {
        let dir = input.dir;
        let mut live: smallvec::SmallVec<[u64; 8]> = smallvec::SmallVec::new();
        for t in app.txs() {
            live.push(t.id());
            if !t.inspect_direction(dir) {
                continue;
            }
            let snap = tx::snapshot(t, flow_end);
            let pos = match input.flow.txs.iter().position(|s| s.id == t.id()) {
                Some(p) => p,
                None => {
                    input.flow.txs.push(tx::TxSeen {
                        id: t.id(),
                        last: [None, None],
                        matched: Vec::new(),
                        scanned: Default::default(),
                    });
                    input.flow.txs.len() - 1
                }
            };
            let last = input.flow.txs.get(pos).and_then(|s| s.last[dir.index()]);
            let has_stream = input.stream.is_some_and(|c| !c.is_empty());
            if last == Some(snap) && !has_stream {
                continue;
            }
            let group = &self.tx_groups[tx_kind_of(t) as usize];
            th.cands.reset(self.sigs.len(), self.max_patterns);
            for &s in &group.always {
                th.cands.add(s);
            }
            let memo = input
                .flow
                .txs
                .get_mut(pos)
                .map(|s| std::mem::take(&mut s.scanned[dir.index()]))
                .unwrap_or_default();
            let mut scanned = Vec::with_capacity(memo.buffers.len());
            for (mi, (key, mpm)) in (0u32..).zip(&group.mpms) {
                let mut idx = 0u32;
                while let Some(buf) = tx::tx_buffer(t, key.buffer, dir, idx as usize) {
                    let h = self.scan_hasher.hash_one(buf);
                    // Same content as last round: its candidates are in `memo.cands`.
                    if !memo.buffers.contains(&(mi, idx, h)) {
                        if key.transforms.is_empty() {
                            mpm.scan(buf, &mut th.cands);
                        } else {
                            mpm.scan(&transform::apply(&key.transforms, buf), &mut th.cands);
                        }
                    }
                    scanned.push((mi, idx, h));
                    if !key.buffer.info().multi {
                        break;
                    }
                    idx += 1;
                }
            }
            for &c in &memo.cands {
                th.cands.add(c);
            }
            th.cands.sort();
            if let Some(s) = input.flow.txs.get_mut(pos) {
                s.scanned[dir.index()] = tx::ScanMemo {
                    buffers: scanned,
                    cands: th.cands.list.clone(),
                };
            }
            let cands = std::mem::take(&mut th.cands.list);
            let before = out.len();
            for &num in &cands {
                let Some(sig) = self.sigs.get(num as usize) else {
                    continue;
                };
                if !tx::dir_ok(sig, t, dir) || !tx::sig_ready(sig, t, dir, snap) {
                    continue;
                }
                if last.is_some_and(|l| tx::sig_ready(sig, t, dir, l)) {
                    // Evaluated already: only signatures with a stream part that have not
                    // matched yet try again, and only with a new stream chunk.
                    let retry = sig.stream_part
                        && has_stream
                        && !input
                            .flow
                            .txs
                            .get(pos)
                            .is_some_and(|s| s.matched.contains(&num));
                    if !retry {
                        continue;
                    }
                }
                if !eval::pre_checks(sig, input) || !tx::tx_checks_ok(sig, t) {
                    continue;
                }
                let Some(stream_match) = eval::packet_lists_match(sig, th, input) else {
                    continue;
                };
                if !tx::lists_match(sig, t, dir, th) {
                    continue;
                }
                if sig.stream_part
                    && let Some(s) = input.flow.txs.get_mut(pos)
                {
                    s.matched.push(num);
                }
                eval::apply_flowbits(sig, input.flow);
                if sig.action == rule::Action::Pass {
                    break;
                }
                if sig.noalert || !self.threshold_allows(sig, input) {
                    continue;
                }
                if out.len() - before < self.cfg.packet_alert_max {
                    out.push(Alert {
                        sig: num,
                        tx_id: Some(t.id()),
                        stream: stream_match,
                    });
                }
            }
            th.cands.list = cands;
            if let Some(s) = input.flow.txs.get_mut(pos) {
                s.last[dir.index()] = Some(snap);
            }
        }
        // Forget transactions the app layer has freed.
        input.flow.txs.retain(|s| live.contains(&s.id));
    }

    fn threshold_allows(&self, sig: &Sig, input: &PacketInput<'_, '_>) -> bool {
        if sig.threshold.is_none() && sig.detection_filter.is_none() {
            return true;
        }
        let (src, dst) = (input.pkt.ip.src, input.pkt.ip.dst);
        // A poisoned lock only means another worker panicked mid-update; the counters are
        // still usable for rate limiting.
        let mut table = self
            .thresholds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = input.pkt.ts;
        if let Some(df) = &sig.detection_filter {
            let key = threshold::TrackKey::of(df.track, src, dst, input.flow_id);
            let unique =
                threshold::TrackKey::unique_value(df, input.pkt.src_port(), input.pkt.dst_port());
            if !table.check(sig.num, true, df, key, unique, now) {
                return false;
            }
        }
        if let Some(t) = &sig.threshold {
            let key = threshold::TrackKey::of(t.track, src, dst, input.flow_id);
            let unique =
                threshold::TrackKey::unique_value(t, input.pkt.src_port(), input.pkt.dst_port());
            if !table.check(sig.num, false, t, key, unique, now) {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests;
