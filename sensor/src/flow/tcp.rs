//! TCP session tracking for flow state: the three-way handshake and closing.
//!
//! Enough for `flow:established` / `not_established`, for choosing the client side, and for
//! knowing when a session ended. Sequence-level tracking (windows, reassembly) lives in
//! `reassembly`.
//!
//! As in Suricata with `midstream` off (its default), a session without a seen handshake
//! never becomes established; with `midstream` on, the first ACK packet establishes it.

use crate::Direction;
use crate::decode::tcpflag;

/// Handshake / session state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TcpSessionState {
    /// Nothing seen yet (or only non-handshake packets without midstream pickup).
    #[default]
    None,
    /// The client's SYN was seen.
    SynSent,
    /// The server's SYN/ACK was seen.
    SynRecv,
    /// The handshake completed.
    Established,
    /// One side sent FIN.
    Closing,
    /// Both sides sent FIN, or either sent RST.
    Closed,
}

/// Per-flow TCP tracking.
#[derive(Debug, Clone, Copy, Default)]
pub struct TcpTrack {
    /// Current state.
    pub state: TcpSessionState,
    /// FIN seen per direction (indexed by [`Direction::index`]).
    pub fin: [bool; 2],
    /// RST seen.
    pub rst: bool,
    /// Whether the session ever reached `Established`.
    pub was_established: bool,
    /// Client initial sequence number (from its SYN), when seen.
    pub client_isn: Option<u32>,
    /// Server initial sequence number (from its SYN/ACK), when seen.
    pub server_isn: Option<u32>,
}

impl TcpTrack {
    /// Advances the state with one packet travelling `dir` with `flags`.
    pub fn on_packet(&mut self, dir: Direction, flags: u8, seq: u32, midstream: bool) {
        let syn = flags & tcpflag::SYN != 0;
        let ack = flags & tcpflag::ACK != 0;
        let rst = flags & tcpflag::RST != 0;
        let fin = flags & tcpflag::FIN != 0;
        match (self.state, dir) {
            (TcpSessionState::None, Direction::ToServer) if syn && !ack => {
                self.state = TcpSessionState::SynSent;
                self.client_isn = Some(seq);
            }
            (TcpSessionState::None, _) if midstream && ack && !syn && !rst => {
                self.establish();
            }
            (TcpSessionState::SynSent, Direction::ToClient) if syn && ack => {
                self.state = TcpSessionState::SynRecv;
                self.server_isn = Some(seq);
            }
            (TcpSessionState::SynSent, Direction::ToServer) if syn && !ack => {
                // SYN retransmission.
                self.client_isn = Some(seq);
            }
            (TcpSessionState::SynRecv, Direction::ToServer) if ack && !syn && !rst => {
                self.establish();
            }
            _ => {}
        }
        if rst && self.state != TcpSessionState::None {
            self.rst = true;
            self.state = TcpSessionState::Closed;
        } else if fin {
            if let Some(slot) = self.fin.get_mut(dir.index()) {
                *slot = true;
            }
            if self.was_established {
                self.state = if self.fin == [true, true] {
                    TcpSessionState::Closed
                } else {
                    TcpSessionState::Closing
                };
            }
        }
    }

    fn establish(&mut self) {
        self.state = TcpSessionState::Established;
        self.was_established = true;
    }

    /// Whether `flow:established` holds: the handshake completed (closing states included,
    /// as Suricata keeps a session established while it shuts down).
    #[must_use]
    pub fn established(&self) -> bool {
        self.was_established
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::tcpflag::{ACK, FIN, PSH, RST, SYN};

    const S: Direction = Direction::ToServer;
    const C: Direction = Direction::ToClient;

    #[test]
    fn handshake_then_close() {
        let mut t = TcpTrack::default();
        t.on_packet(S, SYN, 100, false);
        assert_eq!(t.state, TcpSessionState::SynSent);
        t.on_packet(C, SYN | ACK, 500, false);
        assert!(!t.established());
        t.on_packet(S, ACK, 101, false);
        assert!(t.established());
        assert_eq!((t.client_isn, t.server_isn), (Some(100), Some(500)));
        t.on_packet(S, FIN | ACK, 101, false);
        assert_eq!(t.state, TcpSessionState::Closing);
        t.on_packet(C, FIN | ACK, 501, false);
        assert_eq!(t.state, TcpSessionState::Closed);
        assert!(t.established(), "closing sessions stay established");
    }

    #[test]
    fn no_handshake_no_establishment_unless_midstream() {
        let mut t = TcpTrack::default();
        t.on_packet(S, PSH | ACK, 1, false);
        t.on_packet(C, ACK, 1, false);
        assert!(!t.established());
        let mut m = TcpTrack::default();
        m.on_packet(S, PSH | ACK, 1, true);
        assert!(m.established());
    }

    #[test]
    fn rst_closes() {
        let mut t = TcpTrack::default();
        t.on_packet(S, SYN, 1, false);
        t.on_packet(C, RST | ACK, 0, false);
        assert_eq!(t.state, TcpSessionState::Closed);
        assert!(!t.established());
    }
}
