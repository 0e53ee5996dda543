//! DNS over UDP and TCP: parser, per-flow transactions, rule buffers and EVE metadata.
//!
//! Input: UDP payloads and TCP stream chunks from [`crate::applayer::AppLayer`].
//! Output: [`DnsTx`] transactions (one per message) with the `dns.query` multi-buffer
//! ([`DnsBuffer::Query`]), opcode, rcode, flags, query types and parsed answers; the EVE `dns`
//! alert object ([`eve::alert_object`]).
//! Invariants: parsing is pure ([`parser`]); state is per flow ([`state`]).
//! Caps: see [`DnsConfig`].

pub mod eve;
pub mod parser;
pub mod state;
#[cfg(test)]
mod tests;

pub use parser::{DnsHeader, DnsMessage, DnsQuery, DnsRdata, DnsRecord};
pub use state::{DnsBuffer, DnsEvent, DnsState, DnsTx};

/// DNS limits.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DnsConfig {
    /// Live transactions per flow (Suricata's `dns.max-tx` default is 256).
    pub max_txs: usize,
    /// Names longer than this many bytes are truncated (Suricata: 1025).
    pub max_name_len: usize,
    /// Questions / records kept per message section.
    pub max_records: usize,
}

impl Default for DnsConfig {
    fn default() -> Self {
        Self {
            max_txs: 256,
            max_name_len: 1025,
            max_records: 256,
        }
    }
}
