//! The Tocsin sensor: packets in, EVE alerts out.
//!
//! Data flow, one module per stage, in pipeline order:
//!
//! ```text
//! capture ─► decode ─► defrag ─► flow ─► reassembly ─► applayer ─► detect ─► output
//!  (pcap)   (etherparse) (IPv4/6)  (5-tuple)  (TCP streams)   (HTTP/DNS/TLS)  (rules)   (EVE, spool)
//! ```
//!
//! A stage depends on the stages before it and on the shared types here, never on a later
//! stage; [`pipeline`] wires them together. Malformed traffic is normal input: every stage
//! counts what it cannot handle and moves on, nothing on the packet path panics.

pub mod applayer;
pub mod capture;
pub mod config;
pub mod decode;
pub mod defrag;
pub mod detect;
pub mod flow;
pub mod output;
pub mod pipeline;
pub mod reassembly;
pub mod stats;

pub use tocsin_eve::Timestamp;

/// Which way a packet or a chunk of stream travels relative to the flow's initiator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the client (the side that sent the first packet / the SYN) to the server.
    ToServer,
    /// From the server back to the client.
    ToClient,
}

impl Direction {
    /// The other direction.
    #[must_use]
    pub fn reverse(self) -> Self {
        match self {
            Self::ToServer => Self::ToClient,
            Self::ToClient => Self::ToServer,
        }
    }

    /// Index for per-direction arrays: 0 to server, 1 to client.
    #[must_use]
    pub fn index(self) -> usize {
        match self {
            Self::ToServer => 0,
            Self::ToClient => 1,
        }
    }

    /// Suricata's EVE spelling: `to_server` / `to_client`.
    #[must_use]
    pub fn as_eve_str(self) -> &'static str {
        match self {
            Self::ToServer => "to_server",
            Self::ToClient => "to_client",
        }
    }
}
