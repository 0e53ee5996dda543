//! Flows: packets grouped by direction-normalized 5-tuple (plus VLAN IDs).
//!
//! Input: decoded [`Packet`]s in time order. Output: for each packet, its [`Flow`] (created
//! on first sight), the packet's [`Direction`] in it, and expired flows handed back to the
//! caller so later stages can flush them (stream end, final detection, logging).
//!
//! The table is generic over `T`, the per-flow state of later stages (reassembly, app-layer,
//! detection), so this module depends on nothing after it. It never grows past
//! `max_flows`: a full table first expires idle flows with emergency timeouts, then evicts
//! the least recently seen of a random sample. Timeouts run on packet time, so offline runs
//! behave like live ones. [`FlowKey::hash`] is symmetric: both directions of a flow map to
//! the same worker when packets are split across threads.

mod key;
mod table;
pub mod tcp;

use std::net::IpAddr;

pub use key::FlowKey;
pub use table::{FlowConfig, FlowStats, FlowTable, Lookup};

use crate::{Direction, Timestamp};

/// Lifecycle of a flow, as `flow:` keywords see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowState {
    /// Packets seen in one direction only (or TCP handshake not complete).
    New,
    /// TCP handshake completed, or non-TCP traffic seen in both directions.
    Established,
    /// TCP FIN or RST seen.
    Closed,
}

/// One flow and the per-flow state of later stages (`ext`).
#[derive(Debug)]
pub struct Flow<T> {
    /// Normalized key.
    pub key: FlowKey,
    /// Stable identifier written as `flow_id` in EVE.
    pub id: u64,
    /// Client (initiator) address.
    pub client_addr: IpAddr,
    /// Client port (0 for port-less protocols).
    pub client_port: u16,
    /// Server (responder) address.
    pub server_addr: IpAddr,
    /// Server port.
    pub server_port: u16,
    /// IP protocol number.
    pub proto: u8,
    /// Time of the first packet.
    pub first_ts: Timestamp,
    /// Time of the latest packet.
    pub last_ts: Timestamp,
    /// Packets per direction, indexed by [`Direction::index`].
    pub packets: [u64; 2],
    /// IP bytes per direction.
    pub bytes: [u64; 2],
    /// Lifecycle state.
    pub state: FlowState,
    /// TCP handshake/close tracking (unused for other protocols).
    pub tcp: tcp::TcpTrack,
    /// State owned by later stages.
    pub ext: T,
}

impl<T> Flow<T> {
    /// Whether the flow counts as established for `flow:established`: for TCP, the
    /// handshake completed (closing sessions stay established, as in Suricata); otherwise
    /// packets were seen in both directions.
    #[must_use]
    pub fn is_established(&self) -> bool {
        if self.proto == crate::decode::ipproto::TCP {
            self.tcp.established()
        } else {
            self.state == FlowState::Established
        }
    }

    /// Direction of a packet from `src:sport` within this flow.
    #[must_use]
    pub fn direction_of(&self, src: IpAddr, sport: u16) -> Direction {
        if src == self.client_addr && sport == self.client_port {
            Direction::ToServer
        } else {
            Direction::ToClient
        }
    }
}
