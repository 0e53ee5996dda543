//! A TCP session: two streams, the handshake/close logic that sets their starts and ends,
//! and the consumer API.

use super::stream::Stream;
use super::{
    AppChunk, MemBudget, PacketVerdict, RawChunk, Reassembler, ReassemblyConfig, StreamEvents,
    StreamStatus,
};
use crate::Direction;
use crate::decode::{TcpHeader, tcpflag};

/// Reassembly state of one TCP flow (per-flow `ext` state of the flow table).
#[derive(Debug)]
pub struct TcpSession {
    /// Indexed by [`Direction::index`]: 0 = client to server.
    streams: [Stream; 2],
    started: bool,
    rst: bool,
    /// Window scale option of each side's SYN (indexed like `streams`).
    wscale: [Option<u8>; 2],
    budget: MemBudget,
    /// Bytes this session charged to the budget.
    charged: usize,
}

impl Drop for TcpSession {
    fn drop(&mut self) {
        self.budget.release(self.charged);
    }
}

impl TcpSession {
    pub(super) fn new(cfg: &ReassemblyConfig, budget: MemBudget) -> Self {
        Self {
            streams: [Stream::new(cfg), Stream::new(cfg)],
            started: false,
            rst: false,
            wscale: [None, None],
            budget,
            charged: 0,
        }
    }

    fn stream(&self, dir: Direction) -> &Stream {
        match dir {
            Direction::ToServer => &self.streams[0],
            Direction::ToClient => &self.streams[1],
        }
    }

    fn stream_mut(&mut self, dir: Direction) -> &mut Stream {
        match dir {
            Direction::ToServer => &mut self.streams[0],
            Direction::ToClient => &mut self.streams[1],
        }
    }

    /// Takes one packet travelling `dir` with header `tcp` and `payload`.
    pub fn on_packet(
        &mut self,
        ctx: &mut Reassembler,
        dir: Direction,
        tcp: &TcpHeader<'_>,
        payload: &[u8],
    ) -> PacketVerdict {
        let mut v = PacketVerdict::default();
        let syn = tcp.flags & tcpflag::SYN != 0;
        let ack = tcp.flags & tcpflag::ACK != 0;
        let rst = tcp.flags & tcpflag::RST != 0;
        let fin = tcp.flags & tcpflag::FIN != 0;

        if !self.started {
            if syn && !ack && dir == Direction::ToServer {
                self.started = true;
                ctx.stats.sessions += 1;
            } else if ctx.cfg.midstream && !rst {
                self.started = true;
                ctx.stats.sessions += 1;
                ctx.stats.midstream_pickups += 1;
                let first = if syn {
                    tcp.seq.wrapping_add(1)
                } else {
                    tcp.seq
                };
                self.stream_mut(dir).set_base(first);
                if ack && !syn {
                    self.stream_mut(dir.reverse()).set_base(tcp.ack);
                }
            } else {
                ctx.stats.untracked_packets += 1;
                return v;
            }
        }
        v.tracked = true;

        if syn {
            if !self.stream_mut(dir).set_isn(tcp.seq) {
                v.events.set(StreamEvents::SYN_ISN_CHANGED);
            }
            if let Some(slot) = self.wscale.get_mut(dir.index()) {
                *slot = tcp.wscale.map(|w| w.min(14));
            }
        }
        // The sender's receive window bounds what the other side may send (RFC 7323: the
        // window of a SYN is never scaled; scaling needs the option from both sides).
        let shift = match self.wscale {
            [Some(c), Some(s)] if !syn => match dir {
                Direction::ToServer => c,
                Direction::ToClient => s,
            },
            _ => 0,
        };
        self.stream_mut(dir.reverse()).peer_window = Some(u64::from(tcp.window) << shift);
        if ack {
            self.stream_mut(dir.reverse()).on_ack(tcp.ack);
        }

        let data_seq = if syn {
            tcp.seq.wrapping_add(1)
        } else {
            tcp.seq
        };
        let s = self.stream(dir);
        let has_base = s.has_base;
        v.rel_seq = if has_base {
            s.offset_of(data_seq)
        } else {
            None
        };
        v.in_window = v.rel_seq.is_some_and(|o| s.in_window(o));

        if rst {
            if !payload.is_empty() {
                v.events.set(StreamEvents::RST_WITH_DATA);
                ctx.stats.rst_with_data += 1;
            }
            // Accept the RST when its sequence number is in window (or the side's start is
            // unknown): a blind RST far outside does not close the session.
            if v.in_window || !has_base {
                self.rst = true;
            }
            return v;
        }
        if !payload.is_empty() {
            self.add_payload(ctx, dir, syn, payload, &mut v);
        }
        if fin {
            let s = self.stream_mut(dir);
            if let Some(off) = v.rel_seq {
                let end = off + payload.len() as u64;
                if s.fin_off.is_none_or(|f| end < f) {
                    s.fin_off = Some(end);
                }
            }
        }
        v
    }

    fn add_payload(
        &mut self,
        ctx: &mut Reassembler,
        dir: Direction,
        syn: bool,
        payload: &[u8],
        v: &mut PacketVerdict,
    ) {
        ctx.stats.data_packets += 1;
        if syn {
            v.events.set(StreamEvents::SYN_WITH_DATA);
            ctx.stats.syn_with_data += 1;
            return;
        }
        if self.rst {
            v.events.set(StreamEvents::DATA_AFTER_CLOSE);
            ctx.stats.data_after_close += 1;
            return;
        }
        if !self.stream(dir).has_base {
            v.events.set(StreamEvents::NO_BASE);
            return;
        }
        let Some(off) = v.rel_seq.filter(|_| v.in_window) else {
            v.events.set(StreamEvents::OUT_OF_WINDOW);
            ctx.stats.out_of_window += 1;
            return;
        };
        let policy = ctx.cfg.policy;
        let budget_left = self.budget.available();
        let s = self.stream_mut(dir);
        s.bytes_seen += payload.len() as u64;
        let before = s.store.mem;
        let added = s.add(off, payload, policy, budget_left);
        let after = s.store.mem;
        self.account(before, after);

        v.stream_add = added.in_stream;
        v.retransmission = added.retransmission;
        if added.retransmission {
            v.events.set(StreamEvents::RETRANSMISSION);
            ctx.stats.retransmissions += 1;
        }
        if added.store.overlap {
            v.events.set(StreamEvents::OVERLAP);
            ctx.stats.overlaps += 1;
        }
        if added.store.different {
            v.events.set(StreamEvents::OVERLAP_DIFFERENT_DATA);
            ctx.stats.overlap_different_data += 1;
        }
        if added.store.memcap {
            v.events.set(StreamEvents::MEMCAP);
            ctx.stats.memcap_drops += 1;
            ctx.stats.memcap_drop_bytes += payload.len() as u64;
        }
        ctx.stats.bytes_stored += added.store.new_bytes as u64;
        if added.beyond_depth > 0 {
            v.events.set(StreamEvents::DEPTH_REACHED);
            ctx.stats.bytes_beyond_depth += added.beyond_depth;
        }
        if added.depth_now_reached {
            ctx.stats.depth_reached += 1;
        }
    }

    /// Moves the budget by a store's change from `before` to `after` bytes.
    fn account(&mut self, before: usize, after: usize) {
        if after > before {
            self.budget.charge(after - before);
            self.charged += after - before;
        } else {
            self.budget.release(before - after);
            self.charged = self.charged.saturating_sub(before - after);
        }
    }

    fn prune(&mut self, ctx: &Reassembler, dir: Direction) {
        let keep = ctx.cfg.raw_overlap;
        let s = self.stream_mut(dir);
        let before = s.store.mem;
        s.prune(keep);
        let after = s.store.mem;
        self.account(before, after);
    }

    /// New in-order bytes (or a gap) for the app-layer parser of direction `dir`.
    #[must_use]
    pub fn app_data(&self, dir: Direction) -> AppChunk<'_> {
        self.stream(dir).app_data()
    }

    /// The parser consumed `n` bytes of the last [`AppChunk::Data`] (or skipped the whole
    /// [`AppChunk::Gap`], passing its `len`). Releases memory no consumer needs.
    pub fn app_consumed(&mut self, ctx: &mut Reassembler, dir: Direction, n: u64) {
        let was_gap = matches!(self.app_data(dir), AppChunk::Gap { .. });
        if was_gap {
            ctx.stats.gaps += 1;
        }
        self.stream_mut(dir).app_consumed(n, was_gap);
        self.prune(ctx, dir);
    }

    /// Turns the app-layer view of `dir` off (no parser for this flow) or on.
    pub fn set_app_enabled(&mut self, ctx: &Reassembler, dir: Direction, on: bool) {
        let s = self.stream_mut(dir);
        s.app_enabled = on;
        if !on {
            self.prune(ctx, dir);
        }
    }

    /// Turns raw inspection of `dir` off (no stream rules apply) or on.
    pub fn set_raw_enabled(&mut self, ctx: &Reassembler, dir: Direction, on: bool) {
        self.stream_mut(dir).raw_enabled = on;
        if !on {
            self.prune(ctx, dir);
        }
    }

    /// The app layer finished an entity (request, response) in `dir`: inspect the raw
    /// stream at the next packet of that direction without waiting for a full chunk.
    pub fn trigger_raw(&mut self, dir: Direction) {
        self.stream_mut(dir).trigger_raw = true;
    }

    /// The raw chunk to inspect for a packet travelling `dir`, if inspection is due (see
    /// the module header). Call after [`Self::on_packet`] for that packet, then report
    /// progress with [`Self::raw_inspected`]; repeat while chunks come (after a gap).
    #[must_use]
    pub fn raw_data(&self, ctx: &Reassembler, dir: Direction) -> Option<RawChunk<'_>> {
        let chunk = match dir {
            Direction::ToServer => ctx.cfg.toserver_chunk_size,
            Direction::ToClient => ctx.cfg.toclient_chunk_size,
        };
        let closing = self.rst || self.streams[1].fin_off.is_some();
        self.stream(dir)
            .raw_data(chunk, ctx.cfg.raw_overlap, closing)
    }

    /// Raw inspection of `dir` covered everything before stream offset `upto`.
    pub fn raw_inspected(&mut self, ctx: &mut Reassembler, dir: Direction, upto: u64) {
        self.stream_mut(dir).raw_inspected(upto);
        self.prune(ctx, dir);
    }

    /// Flow end (timeout, eviction, shutdown): from now on both views hand out all stored
    /// data, ACKed or not, so the tail is parsed and inspected once. Drain both directions
    /// with [`Self::app_data`] and [`Self::raw_data`] afterwards.
    pub fn flush(&mut self) {
        for s in &mut self.streams {
            s.eof = true;
        }
    }

    /// Whether a RST was accepted.
    #[must_use]
    pub fn is_reset(&self) -> bool {
        self.rst
    }

    /// Whether the session is tracked (handshake seen or midstream pickup).
    #[must_use]
    pub fn is_tracked(&self) -> bool {
        self.started
    }

    /// Facts about direction `dir`.
    #[must_use]
    pub fn status(&self, dir: Direction) -> StreamStatus {
        let s = self.stream(dir);
        StreamStatus {
            has_base: s.has_base,
            isn: s.isn,
            next_offset: s.next_off,
            acked_offset: s.last_ack_off,
            bytes_seen: s.bytes_seen,
            app_offset: s.app_off,
            raw_offset: s.raw_off,
            depth_reached: s.depth_reached,
            fin: s.fin_off.is_some(),
            gaps: s.gaps,
        }
    }

    /// Budget bytes this session holds.
    #[must_use]
    pub fn mem_used(&self) -> usize {
        self.charged
    }
}
