//! TCP stream reassembly: TCP packets of one flow in, two ordered byte streams out.
//!
//! Input: per packet of a TCP flow, its [`Direction`](crate::Direction),
//! [`TcpHeader`](crate::decode::TcpHeader) and payload, in capture
//! order, through [`TcpSession::on_packet`]. Output, per direction:
//! - a [`PacketVerdict`] for the packet: tracked or not, whether its payload became part of
//!   the reassembled stream (Suricata's `PKT_STREAM_ADD`: the engine then inspects the
//!   stream rather than the packet), its stream offset, retransmission, event flags;
//! - the **app-layer view** ([`TcpSession::app_data`] / [`TcpSession::app_consumed`]): new
//!   in-order bytes not yet handed to the parser, or a gap of N lost bytes;
//! - the **raw view** ([`TcpSession::raw_data`] / [`TcpSession::raw_inspected`]): what
//!   content rules without an app-layer buffer inspect, and when.
//!
//! Zero-copy: views borrow the session's reassembled buffer. Nothing here knows about
//! detection or app-layer protocols.
//!
//! # Sessions and sequence numbers
//! A session is tracked from the client's SYN (as Suricata with `stream.midstream: false`,
//! its default); with `midstream: true` any non-RST packet starts one, offset 0 being that
//! packet's sequence number (and its ACK for the other side). Each direction's offset 0 is
//! the byte after its SYN (a SYN or SYN/ACK sets it; split and simultaneous handshakes work
//! as each side's SYN names its ISN). Stream offsets are `u64`; sequence numbers map to them
//! with wrapping u32 arithmetic relative to the highest offset seen, so the sequence space
//! may wrap and a stream may pass 4 GiB. Data more than the largest TCP window (1 GiB) ahead
//! is out of window and not stored.
//!
//! # Overlaps and retransmissions
//! Every stored segment's original extent is remembered until consumed. When a new segment
//! overlaps stored bytes, the configured [`OverlapPolicy`] (Suricata's stream `os-policy`,
//! default `bsd`) decides per old segment, as Suricata's IDS mode does; a byte keeps the
//! old value if any old segment covering it wins:
//!
//! | policy | the new segment's bytes win over an old segment when it ... |
//! |---|---|
//! | `first` | never |
//! | `last` | always |
//! | `bsd`, `bsd-right`, `windows` | starts before it |
//! | `linux` | starts before it, or starts with it and ends after it |
//! | `solaris` | ends after it, or ends with it and starts at or before it |
//!
//! (Suricata maps `bsd-right` to `bsd` for streams, and its `windows` stream rule equals
//! `bsd`'s.) Overlapping bytes that differ raise [`StreamEvents::OVERLAP_DIFFERENT_DATA`]
//! (Suricata's `check-overlap-different-data`, always on here). A payload whose bytes are
//! all held or already consumed is a retransmission. Bytes already consumed by both views
//! are gone; overlaps on them are not re-applied (as in Suricata once the window slid).
//!
//! # SYN, FIN, RST
//! SYN payload is not stored (counted). A FIN marks the stream's end offset (its sequence
//! number is not data). A RST closes the session; its payload is **not** added to the
//! stream (Suricata 7, bug 6244: RST data is inspected as packet payload only) and later
//! data is not either.
//!
//! # When data becomes visible (Suricata IDS mode)
//! Both views hand out only data the other side has ACKed, as Suricata in IDS mode does
//! (`AdjustToAcked`, `StreamReassembleRaw`): overlapping evasions are resolved before
//! anything is inspected. After [`TcpSession::flush`] (flow end, Suricata's pseudo packet
//! with `PKT_PSEUDO_STREAM_END`) everything is handed out, ACKed or not.
//!
//! The raw view for a packet of direction `d` looks at stream `d` (data `d`'s sender sent,
//! up to what the receiver ACKed). It is ready when at least `chunk_size` (per direction,
//! Suricata `toserver-chunk-size`/`toclient-chunk-size`, default 2560, randomization
//! disabled) ACKed bytes wait, or the app layer called [`TcpSession::trigger_raw`], or the
//! depth was reached, or the session is closing (RST, or a FIN from the server: Suricata's
//! states past `TIME_WAIT`), or at flush. A chunk runs from the raw progress to the ready
//! edge, within one contiguous block; after a gap it restarts at the next data. Each chunk
//! starts up to `raw_overlap` already-inspected bytes early, so a pattern that crosses the
//! previous chunk's end is still found; [`RawChunk::new_from`] says where new bytes begin,
//! and a matcher should drop matches that end at or before it (they were reported).
//! Difference from Suricata 7: it keeps no such overlap in IDS mode (it resumes exactly at
//! the raw progress), so patterns spanning two inspections can be missed there.
//!
//! # Caps
//! Per direction, data past `depth` bytes (Suricata `stream.reassembly.depth`, default
//! 1 MiB, 0 = unlimited) is not reassembled: the packet is not `stream_add`, the stream is
//! flagged ([`StreamStatus::depth_reached`]) and counted. All sessions of a worker share one
//! [`MemBudget`] (bytes of buffers, block and segment bookkeeping); a segment that does not
//! fit is dropped and counted (`memcap_drops`), so the data shows up later as a gap. Memory
//! is released as both consumers progress and when a session is dropped (the budget handle
//! it holds gives its bytes back). A consumer that is never used must be disabled
//! ([`TcpSession::set_app_enabled`] / `raw = false`), or data stays held up to the depth.

#![warn(clippy::indexing_slicing)]

mod session;
mod store;
mod stream;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Deserialize;

pub use crate::defrag::OverlapPolicy;
pub use session::TcpSession;

/// Reassembly settings. Defaults follow Suricata 7's `stream` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReassemblyConfig {
    /// Overlap resolution (Suricata's `os-policy` / `host-os-policy` name).
    pub policy: OverlapPolicy,
    /// Bytes reassembled per direction (Suricata `stream.reassembly.depth`); 0 = unlimited.
    pub depth: u64,
    /// Bytes all sessions of a worker may hold (Suricata `stream.reassembly.memcap`).
    pub memcap: usize,
    /// ACKed bytes that make raw inspection run, client to server.
    pub toserver_chunk_size: u64,
    /// ACKed bytes that make raw inspection run, server to client.
    pub toclient_chunk_size: u64,
    /// Already-inspected bytes repeated at the start of the next raw chunk.
    pub raw_overlap: u64,
    /// Raw stream inspection on (Suricata `stream.reassembly.raw`).
    pub raw: bool,
    /// Track sessions whose handshake was not seen (Suricata `stream.midstream`).
    pub midstream: bool,
}

impl Default for ReassemblyConfig {
    fn default() -> Self {
        Self {
            policy: OverlapPolicy::default(),
            depth: 1 << 20,
            memcap: 256 << 20,
            toserver_chunk_size: 2560,
            toclient_chunk_size: 2560,
            // Suricata 7 resumes raw inspection exactly at its progress mark; an overlap
            // would need match positions to avoid re-alerting, so it is opt-in.
            raw_overlap: 0,
            raw: true,
            midstream: false,
        }
    }
}

/// A byte budget shared by sessions (one per worker, or one for all workers). Cloning gives
/// another handle to the same budget. Sessions hold a handle and give their bytes back when
/// dropped, so an evicted flow cannot leak budget.
#[derive(Debug, Clone)]
pub struct MemBudget {
    inner: Arc<BudgetInner>,
}

#[derive(Debug)]
struct BudgetInner {
    cap: usize,
    used: AtomicUsize,
}

impl MemBudget {
    /// A budget of `cap` bytes.
    #[must_use]
    pub fn new(cap: usize) -> Self {
        Self {
            inner: Arc::new(BudgetInner {
                cap,
                used: AtomicUsize::new(0),
            }),
        }
    }

    /// Bytes in use.
    #[must_use]
    pub fn used(&self) -> usize {
        self.inner.used.load(Ordering::Relaxed)
    }

    /// The cap.
    #[must_use]
    pub fn cap(&self) -> usize {
        self.inner.cap
    }

    /// Bytes still available.
    #[must_use]
    pub fn available(&self) -> usize {
        self.inner.cap.saturating_sub(self.used())
    }

    fn charge(&self, n: usize) {
        self.inner.used.fetch_add(n, Ordering::Relaxed);
    }

    fn release(&self, n: usize) {
        // Never below zero even if accounting were off: saturating update.
        let _ = self
            .inner
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                Some(u.saturating_sub(n))
            });
    }
}

/// Per-worker reassembly context: configuration, shared budget, counters.
#[derive(Debug)]
pub struct Reassembler {
    cfg: ReassemblyConfig,
    budget: MemBudget,
    stats: ReassemblyStats,
}

impl Reassembler {
    /// A context with its own budget of `cfg.memcap` bytes.
    #[must_use]
    pub fn new(cfg: ReassemblyConfig) -> Self {
        let budget = MemBudget::new(cfg.memcap);
        Self::with_budget(cfg, budget)
    }

    /// A context drawing on an existing (possibly shared) budget.
    #[must_use]
    pub fn with_budget(cfg: ReassemblyConfig, budget: MemBudget) -> Self {
        Self {
            cfg,
            budget,
            stats: ReassemblyStats::default(),
        }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &ReassemblyConfig {
        &self.cfg
    }

    /// The budget handle.
    #[must_use]
    pub fn budget(&self) -> &MemBudget {
        &self.budget
    }

    /// Counters, with the budget's current use.
    #[must_use]
    pub fn stats(&self) -> ReassemblyStats {
        ReassemblyStats {
            mem_used: self.budget.used() as u64,
            ..self.stats
        }
    }

    /// A new, empty session drawing on this context's budget.
    #[must_use]
    pub fn new_session(&self) -> TcpSession {
        TcpSession::new(&self.cfg, self.budget.clone())
    }
}

/// Counters of one worker (monotonic except `mem_used`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReassemblyStats {
    /// Sessions that started tracking (SYN seen, or midstream pickup).
    pub sessions: u64,
    /// Of those, picked up midstream.
    pub midstream_pickups: u64,
    /// Packets of sessions not tracked (no SYN seen, midstream off).
    pub untracked_packets: u64,
    /// Packets with payload offered to a tracked session.
    pub data_packets: u64,
    /// Payload bytes newly stored.
    pub bytes_stored: u64,
    /// Packets whose payload overlapped stored segments.
    pub overlaps: u64,
    /// Of those, with bytes that differed.
    pub overlap_different_data: u64,
    /// Packets whose payload was entirely held or consumed already.
    pub retransmissions: u64,
    /// Packets out of window or before the stream start.
    pub out_of_window: u64,
    /// Packets not stored for lack of budget.
    pub memcap_drops: u64,
    /// Bytes of those packets.
    pub memcap_drop_bytes: u64,
    /// Streams that reached the depth.
    pub depth_reached: u64,
    /// Payload bytes past the depth, not reassembled.
    pub bytes_beyond_depth: u64,
    /// Gaps handed to the app layer.
    pub gaps: u64,
    /// Payloads of RST packets (not added to the stream).
    pub rst_with_data: u64,
    /// Payloads of SYN packets (not added).
    pub syn_with_data: u64,
    /// Payloads after the session closed (not added).
    pub data_after_close: u64,
    /// Gauge: budget bytes in use.
    pub mem_used: u64,
}

impl ReassemblyStats {
    /// The counters as `("tcp.<name>", value)` pairs, for stats records.
    #[must_use]
    pub fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("tcp.sessions", self.sessions),
            ("tcp.midstream_pickups", self.midstream_pickups),
            ("tcp.untracked_packets", self.untracked_packets),
            ("tcp.data_packets", self.data_packets),
            ("tcp.bytes_stored", self.bytes_stored),
            ("tcp.overlaps", self.overlaps),
            ("tcp.overlap_different_data", self.overlap_different_data),
            ("tcp.retransmissions", self.retransmissions),
            ("tcp.out_of_window", self.out_of_window),
            ("tcp.memcap_drops", self.memcap_drops),
            ("tcp.memcap_drop_bytes", self.memcap_drop_bytes),
            ("tcp.depth_reached", self.depth_reached),
            ("tcp.bytes_beyond_depth", self.bytes_beyond_depth),
            ("tcp.gaps", self.gaps),
            ("tcp.rst_with_data", self.rst_with_data),
            ("tcp.syn_with_data", self.syn_with_data),
            ("tcp.data_after_close", self.data_after_close),
            ("tcp.mem_used", self.mem_used),
        ]
    }
}

/// Per-packet stream events (bit flags), for decoder-event style rules and logging.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct StreamEvents(pub u32);

impl StreamEvents {
    /// The payload overlapped stored segments.
    pub const OVERLAP: u32 = 1 << 0;
    /// ... and some overlapping bytes differed.
    pub const OVERLAP_DIFFERENT_DATA: u32 = 1 << 1;
    /// Every byte was held or consumed already.
    pub const RETRANSMISSION: u32 = 1 << 2;
    /// Sequence number before the stream start or too far ahead.
    pub const OUT_OF_WINDOW: u32 = 1 << 3;
    /// Not stored for lack of memory budget.
    pub const MEMCAP: u32 = 1 << 4;
    /// Some bytes lie past the reassembly depth.
    pub const DEPTH_REACHED: u32 = 1 << 5;
    /// RST carrying payload.
    pub const RST_WITH_DATA: u32 = 1 << 6;
    /// SYN carrying payload.
    pub const SYN_WITH_DATA: u32 = 1 << 7;
    /// Payload after the session closed (RST).
    pub const DATA_AFTER_CLOSE: u32 = 1 << 8;
    /// A SYN with another ISN than the one already known.
    pub const SYN_ISN_CHANGED: u32 = 1 << 9;
    /// Payload in a direction whose start was never seen (no SYN from that side).
    pub const NO_BASE: u32 = 1 << 10;

    /// Whether all bits of `mask` are set.
    #[must_use]
    pub fn has(self, mask: u32) -> bool {
        self.0 & mask == mask
    }

    fn set(&mut self, mask: u32) {
        self.0 |= mask;
    }
}

/// What the session did with one packet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PacketVerdict {
    /// The session is tracked (handshake seen or midstream pickup).
    pub tracked: bool,
    /// Some of the payload is part of the reassembled stream (`PKT_STREAM_ADD`).
    pub stream_add: bool,
    /// Stream offset of the payload's first byte (relative sequence number), when the
    /// direction's start is known and the sequence number is not before it.
    pub rel_seq: Option<u64>,
    /// The sequence number was within the window.
    pub in_window: bool,
    /// Every payload byte was held or consumed already.
    pub retransmission: bool,
    /// Events.
    pub events: StreamEvents,
}

/// The app-layer view of one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppChunk<'a> {
    /// Nothing new (or not ACKed yet).
    None,
    /// In-order bytes starting at stream `offset`.
    Data {
        /// Stream offset of `data[0]`.
        offset: u64,
        /// The bytes (borrowing the session buffer).
        data: &'a [u8],
    },
    /// `len` bytes at `offset` were lost (the other side ACKed them, or more data follows
    /// at flow end). Consume them with [`TcpSession::app_consumed`] like data.
    Gap {
        /// Stream offset of the first missing byte.
        offset: u64,
        /// Missing bytes.
        len: u64,
    },
}

/// A chunk of reassembled stream for raw (non app-layer) content inspection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawChunk<'a> {
    /// The bytes, borrowing the session buffer.
    pub data: &'a [u8],
    /// Stream offset of `data[0]`.
    pub offset: u64,
    /// Stream offset where not-yet-inspected bytes begin (`offset` plus the overlap).
    pub new_from: u64,
    /// Data was lost between the previous chunk and this one.
    pub gap_before: bool,
}

impl RawChunk<'_> {
    /// Stream offset one past the last byte: pass it to [`TcpSession::raw_inspected`].
    #[must_use]
    pub fn end(&self) -> u64 {
        self.offset + self.data.len() as u64
    }
}

/// Per-direction facts for keywords and logging.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamStatus {
    /// The direction's start (ISN or pickup point) is known.
    pub has_base: bool,
    /// ISN from this side's SYN.
    pub isn: Option<u32>,
    /// One past the highest stream offset seen (bytes of sequence space used by data).
    pub next_offset: u64,
    /// Highest stream offset the other side acknowledged.
    pub acked_offset: u64,
    /// Payload bytes of accepted packets, retransmissions included.
    pub bytes_seen: u64,
    /// App-layer progress.
    pub app_offset: u64,
    /// Raw inspection progress.
    pub raw_offset: u64,
    /// The depth was reached: later data is not reassembled.
    pub depth_reached: bool,
    /// FIN seen.
    pub fin: bool,
    /// Gaps handed to the app layer.
    pub gaps: u64,
}

impl StreamStatus {
    /// Suricata's `stream_size` value: sequence space used, counting the SYN (next_seq -
    /// ISN). Falls back to the data bytes when the SYN was not seen.
    #[must_use]
    pub fn stream_size(&self) -> u64 {
        self.next_offset + u64::from(self.isn.is_some())
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_pcap;
