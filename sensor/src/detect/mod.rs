//! Detection: Suricata-syntax rules evaluated against packets, streams and app-layer
//! transactions.

pub mod rule;
