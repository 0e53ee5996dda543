//! TCP sessions: handshake, data in either direction (segmented), teardown, with the
//! option to reorder or overlap segments for evasion tests.

use crate::packet::{Frame, Host, ethernet, flags, ipv4, tcp_segment};

/// A TCP session between a client and a server, producing frames with correct sequence
/// and acknowledgement numbers.
#[derive(Debug, Clone)]
pub struct TcpSession {
    /// Client endpoint.
    pub client: Host,
    /// Server endpoint.
    pub server: Host,
    cseq: u32,
    sseq: u32,
    ip_id: u16,
    /// Current time, advanced by each frame.
    pub ts: i64,
    /// Microseconds between frames.
    pub gap: i64,
    /// Frames produced so far.
    pub frames: Vec<Frame>,
}

impl TcpSession {
    /// A session starting at `ts` with the given initial sequence numbers.
    #[must_use]
    pub fn new(client: Host, server: Host, ts: i64, client_isn: u32, server_isn: u32) -> Self {
        Self {
            client,
            server,
            cseq: client_isn,
            sseq: server_isn,
            ip_id: u16::try_from(client_isn & 0xffff).unwrap_or(1),
            ts,
            gap: 1_000,
            frames: Vec::new(),
        }
    }

    fn emit(&mut self, from_client: bool, seq: u32, ack: u32, f: u8, data: &[u8]) {
        let (src, dst) = if from_client {
            (self.client, self.server)
        } else {
            (self.server, self.client)
        };
        self.ip_id = self.ip_id.wrapping_add(1);
        let seg = tcp_segment(src, dst, seq, ack, f, 65_535, data);
        let ip = ipv4(src.ip, dst.ip, 6, self.ip_id, 64, &seg);
        self.frames.push(Frame {
            ts_micros: self.ts,
            data: ethernet(src.ip, dst.ip, &ip),
        });
        self.ts += self.gap;
    }

    /// SYN, SYN/ACK, ACK.
    pub fn handshake(&mut self) -> &mut Self {
        let (c, s) = (self.cseq, self.sseq);
        self.emit(true, c, 0, flags::SYN, &[]);
        self.emit(false, s, c.wrapping_add(1), flags::SYN | flags::ACK, &[]);
        self.cseq = c.wrapping_add(1);
        self.sseq = s.wrapping_add(1);
        self.emit(true, self.cseq, self.sseq, flags::ACK, &[]);
        self
    }

    /// A SYN answered by RST/ACK (closed port), or SYN/ACK then RST (open port, scanner
    /// style).
    pub fn probe(&mut self, open: bool) -> &mut Self {
        let (c, s) = (self.cseq, self.sseq);
        self.emit(true, c, 0, flags::SYN, &[]);
        if open {
            self.emit(false, s, c.wrapping_add(1), flags::SYN | flags::ACK, &[]);
            self.emit(true, c.wrapping_add(1), 0, flags::RST, &[]);
        } else {
            self.emit(false, 0, c.wrapping_add(1), flags::RST | flags::ACK, &[]);
        }
        self
    }

    /// Sends `data` from the client in segments of at most `mss` bytes, each acknowledged.
    pub fn client_send(&mut self, data: &[u8], mss: usize) -> &mut Self {
        self.send(true, data, mss);
        self
    }

    /// Sends `data` from the server in segments of at most `mss` bytes, each acknowledged.
    pub fn server_send(&mut self, data: &[u8], mss: usize) -> &mut Self {
        self.send(false, data, mss);
        self
    }

    fn send(&mut self, from_client: bool, data: &[u8], mss: usize) {
        for chunk in data.chunks(mss.max(1)) {
            let (seq, ack) = if from_client {
                (self.cseq, self.sseq)
            } else {
                (self.sseq, self.cseq)
            };
            self.emit(from_client, seq, ack, flags::PSH | flags::ACK, chunk);
            let len = u32::try_from(chunk.len()).unwrap_or(0);
            if from_client {
                self.cseq = self.cseq.wrapping_add(len);
                self.emit(false, self.sseq, self.cseq, flags::ACK, &[]);
            } else {
                self.sseq = self.sseq.wrapping_add(len);
                self.emit(true, self.cseq, self.sseq, flags::ACK, &[]);
            }
        }
    }

    /// Sends client data as segments in the given order (indices into the `mss`-sized
    /// chunks), then one ACK covering everything: out-of-order delivery.
    pub fn client_send_reordered(&mut self, data: &[u8], mss: usize, order: &[usize]) -> &mut Self {
        let base = self.cseq;
        let chunks: Vec<&[u8]> = data.chunks(mss.max(1)).collect();
        for &i in order {
            if let Some(chunk) = chunks.get(i) {
                let off = u32::try_from(i * mss).unwrap_or(0);
                let ack = self.sseq;
                self.emit(
                    true,
                    base.wrapping_add(off),
                    ack,
                    flags::PSH | flags::ACK,
                    chunk,
                );
            }
        }
        self.cseq = base.wrapping_add(u32::try_from(data.len()).unwrap_or(0));
        self.emit(false, self.sseq, self.cseq, flags::ACK, &[]);
        self
    }

    /// Sends a client segment at an explicit offset from the current sequence number
    /// without advancing it (for overlapping retransmissions with different bytes).
    pub fn client_segment_at(&mut self, offset: u32, data: &[u8]) -> &mut Self {
        let ack = self.sseq;
        self.emit(
            true,
            self.cseq.wrapping_add(offset),
            ack,
            flags::PSH | flags::ACK,
            data,
        );
        self
    }

    /// Advances the client's sequence number by `n` (after segments sent with
    /// [`Self::client_segment_at`]) and has the server acknowledge.
    pub fn client_advance(&mut self, n: u32) -> &mut Self {
        self.cseq = self.cseq.wrapping_add(n);
        self.emit(false, self.sseq, self.cseq, flags::ACK, &[]);
        self
    }

    /// FIN from the client, FIN/ACK from the server, final ACK.
    pub fn close(&mut self) -> &mut Self {
        let (c, s) = (self.cseq, self.sseq);
        self.emit(true, c, s, flags::FIN | flags::ACK, &[]);
        self.emit(false, s, c.wrapping_add(1), flags::FIN | flags::ACK, &[]);
        self.cseq = c.wrapping_add(1);
        self.sseq = s.wrapping_add(1);
        self.emit(true, self.cseq, self.sseq, flags::ACK, &[]);
        self
    }

    /// Takes the frames produced so far.
    pub fn take(&mut self) -> Vec<Frame> {
        std::mem::take(&mut self.frames)
    }
}
