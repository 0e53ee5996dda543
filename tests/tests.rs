//! Tocsin's integration tests: one binary, one module per area (ripgrep's layout).
//! They run the real `tocsin` binary, real libpcap, and a private clickhouse-server.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail loudly on broken fixtures"
)]

mod common;
mod correlator;
mod dashboards;
mod packaging;
mod sensor;
