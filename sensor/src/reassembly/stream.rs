//! One direction of a TCP session: sequence state, stored data, and the consumers'
//! progress (app-layer and raw inspection).

use super::store::{Inserted, Store};
use super::{AppChunk, RawChunk, ReassemblyConfig};
use crate::defrag::OverlapPolicy;

/// Largest TCP window (65535 << 14): the in-window limit when the receiver's window is not
/// known, and the most an ACK may run ahead of the data seen.
const MAX_WINDOW: u64 = 65_535 << 14;
/// Smallest in-window allowance, whatever window the receiver advertised.
const MIN_WINDOW: u64 = 65_535;

/// Per-direction state.
#[derive(Debug, Default)]
pub(super) struct Stream {
    /// Sequence number of stream offset 0 (ISN + 1, or the first seen seq on pickup).
    pub base_seq: u32,
    /// Whether `base_seq` is known.
    pub has_base: bool,
    /// ISN from this side's SYN, when seen.
    pub isn: Option<u32>,
    /// One past the highest data offset seen (RFC 793 "next seq" in stream offsets).
    pub next_off: u64,
    /// Highest offset the other side acknowledged.
    pub last_ack_off: u64,
    /// Offset of this side's FIN, when seen.
    pub fin_off: Option<u64>,
    /// Receive window the other side advertised last (scaled), when seen.
    pub peer_window: Option<u64>,
    /// Data offsets beyond this are not reassembled (`u64::MAX` = unlimited).
    pub depth: u64,
    pub depth_reached: bool,
    pub store: Store,
    /// App-layer progress: everything before it was handed over (or skipped as a gap).
    pub app_off: u64,
    /// Raw inspection progress.
    pub raw_off: u64,
    pub app_enabled: bool,
    pub raw_enabled: bool,
    /// The app-layer asked for raw inspection now (end of a request/response).
    pub trigger_raw: bool,
    /// Flow end: hand out everything, ACKed or not.
    pub eof: bool,
    /// Data before this offset is gone from the store.
    pub left_edge: u64,
    /// Payload bytes seen in accepted (tracked, in-window) packets, retransmissions included.
    pub bytes_seen: u64,
    /// Gaps reported to the app layer (count, bytes).
    pub gaps: u64,
    pub gap_bytes: u64,
}

impl Stream {
    pub fn new(cfg: &ReassemblyConfig) -> Self {
        Self {
            depth: if cfg.depth == 0 { u64::MAX } else { cfg.depth },
            app_enabled: true,
            raw_enabled: cfg.raw,
            ..Self::default()
        }
    }

    /// Sets offset 0 to `seq` (first data byte). Only before any data was stored.
    pub fn set_base(&mut self, seq: u32) {
        if self.next_off == 0 && self.store.mem == 0 {
            self.base_seq = seq;
            self.has_base = true;
        }
    }

    /// This side's SYN carried `isn`. Returns false when it contradicts an ISN already in
    /// use (data stored); the first SYN then stays authoritative.
    pub fn set_isn(&mut self, isn: u32) -> bool {
        if self.isn == Some(isn) {
            return true;
        }
        if self.next_off == 0 && self.store.mem == 0 {
            self.isn = Some(isn);
            self.base_seq = isn.wrapping_add(1);
            self.has_base = true;
            return true;
        }
        self.isn.is_none()
    }

    /// Stream offset of `seq`, `None` when it lies before offset 0. Sequence numbers are
    /// taken within 2^31 of the highest offset seen, so streams may pass 4 GiB and the
    /// sequence space may wrap.
    pub fn offset_of(&self, seq: u32) -> Option<u64> {
        // Truncation intended: sequence numbers are offsets mod 2^32.
        let ref_seq = self.base_seq.wrapping_add(self.next_off as u32);
        let delta = i64::from(seq.wrapping_sub(ref_seq) as i32);
        let off = i128::from(self.next_off) + i128::from(delta);
        u64::try_from(off).ok()
    }

    /// The other side acknowledged up to `ack`.
    pub fn on_ack(&mut self, ack: u32) {
        if !self.has_base {
            return;
        }
        if let Some(off) = self.offset_of(ack) {
            let cap = self.next_off.max(self.last_ack_off) + MAX_WINDOW;
            if off > self.last_ack_off && off <= cap {
                self.last_ack_off = off;
            }
        }
    }

    /// Whether offset `off` is within the window we accept: no further ahead of the data
    /// seen (or ACKed) than the receiver's advertised window (at least 64 KiB; 1 GiB when
    /// the receiver's window is unknown).
    pub fn in_window(&self, off: u64) -> bool {
        let window = self
            .peer_window
            .map_or(MAX_WINDOW, |w| w.clamp(MIN_WINDOW, MAX_WINDOW));
        off <= self.next_off.max(self.last_ack_off) + window
    }

    /// Stores a payload at `off` (already known to be in-window). Returns what the store
    /// did and the part that was in the reassembled range (after depth and left-edge clips).
    pub fn add(
        &mut self,
        off: u64,
        payload: &[u8],
        policy: OverlapPolicy,
        budget_left: usize,
    ) -> Added {
        let end = off + payload.len() as u64;
        let mut added = Added::default();
        // The highest sequence seen advances even for data we do not keep (past the depth,
        // refused by the budget): it anchors the mapping of later sequence numbers.
        self.next_off = self.next_off.max(end);
        // Depth: bytes at or past it are not reassembled.
        let keep_end = end.min(self.depth);
        if keep_end < end {
            added.beyond_depth = end - keep_end.max(off);
            if !self.depth_reached {
                self.depth_reached = true;
                added.depth_now_reached = true;
            }
        }
        let keep_start = off.max(self.left_edge);
        added.retransmission = end <= self.left_edge
            || (keep_start < keep_end && self.store.covers(keep_start, keep_end));
        if keep_start >= keep_end {
            return added;
        }
        let Some(data) = payload.get((keep_start - off) as usize..(keep_end - off) as usize) else {
            return added;
        };
        let r = self.store.insert(keep_start, data, policy, budget_left);
        added.store = r;
        added.in_stream = !r.memcap;
        added
    }

    /// Right edge of data consumers may take now: ACKed data, or everything at EOF.
    fn ready_edge(&self) -> u64 {
        if self.eof {
            self.depth
        } else {
            // The ACK of a FIN covers the FIN's sequence number, which carries no data;
            // past the depth nothing is reassembled, so nothing there is a gap either.
            self.last_ack_off
                .min(self.fin_off.unwrap_or(u64::MAX))
                .min(self.depth)
        }
    }

    pub fn app_data(&self) -> AppChunk<'_> {
        if !self.app_enabled {
            return AppChunk::None;
        }
        let right = self.ready_edge();
        let at = self.app_off;
        if at >= right {
            return AppChunk::None;
        }
        if let Some((bs, d)) = self.store.block_at(at) {
            let end = (bs + d.len() as u64).min(right);
            let from = (at - bs) as usize;
            let to = (end - bs) as usize;
            return match d.get(from..to) {
                Some(data) if !data.is_empty() => AppChunk::Data { offset: at, data },
                _ => AppChunk::None,
            };
        }
        // A hole at the app progress: a gap once the other side ACKed past it, or at EOF
        // when more data follows it.
        match self.store.next_block_after(at) {
            Some(next) if next <= right => AppChunk::Gap {
                offset: at,
                len: next - at,
            },
            _ if !self.eof => {
                let lost_to = right;
                if lost_to > at {
                    AppChunk::Gap {
                        offset: at,
                        len: lost_to - at,
                    }
                } else {
                    AppChunk::None
                }
            }
            _ => AppChunk::None,
        }
    }

    pub fn app_consumed(&mut self, n: u64, was_gap: bool) {
        if was_gap {
            self.gaps += 1;
            self.gap_bytes += n;
        }
        self.app_off = self.app_off.saturating_add(n);
    }

    /// Whether raw inspection should run on a packet now (Suricata's IDS-mode raw limit:
    /// a chunk of ACKed data, an app-layer trigger, depth reached, session closing, EOF).
    fn raw_ready(&self, chunk_size: u64, closing: bool) -> bool {
        self.eof
            || self.trigger_raw
            || self.depth_reached
            || closing
            || self.ready_edge().saturating_sub(self.raw_off) >= chunk_size
    }

    pub fn raw_data(&self, chunk_size: u64, overlap: u64, closing: bool) -> Option<RawChunk<'_>> {
        if !self.raw_enabled || !self.raw_ready(chunk_size, closing) {
            return None;
        }
        let right = self.ready_edge();
        let mut at = self.raw_off;
        let mut gap = false;
        if self.store.block_at(at).is_none() {
            let next = self.store.next_block_after(at)?;
            if next >= right {
                return None;
            }
            at = next;
            gap = true;
        }
        let (bs, d) = self.store.block_at(at)?;
        let end = (bs + d.len() as u64).min(right);
        if end <= at {
            return None;
        }
        let start = if gap {
            at
        } else {
            at.saturating_sub(overlap).max(bs)
        };
        let data = d.get((start - bs) as usize..(end - bs) as usize)?;
        Some(RawChunk {
            data,
            offset: start,
            new_from: at,
            gap_before: gap,
        })
    }

    pub fn raw_inspected(&mut self, upto: u64) {
        if upto > self.raw_off {
            self.raw_off = upto;
        }
        self.trigger_raw = false;
    }

    /// Drops data no consumer needs any more; returns the bytes released.
    pub fn prune(&mut self, raw_keep: u64) -> usize {
        let app = if self.app_enabled {
            self.app_off
        } else {
            u64::MAX
        };
        let raw = if self.raw_enabled {
            self.raw_off.saturating_sub(raw_keep)
        } else {
            u64::MAX
        };
        let edge = app.min(raw).min(self.next_off.max(self.left_edge));
        let edge = if edge == u64::MAX {
            self.next_off
        } else {
            edge
        };
        if edge <= self.left_edge {
            return 0;
        }
        self.left_edge = edge;
        let before = self.store.mem;
        self.store.prune(edge);
        before.saturating_sub(self.store.mem)
    }
}

/// What adding one payload did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Added {
    /// Some of the payload is part of the reassembled stream.
    pub in_stream: bool,
    /// Every byte was already held or already consumed.
    pub retransmission: bool,
    pub beyond_depth: u64,
    pub depth_now_reached: bool,
    pub store: Inserted,
}
