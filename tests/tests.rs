//! Tocsin's integration tests: one binary, one module per area (ripgrep's layout).
//! They run the real `tocsin` binary, real libpcap, and a private clickhouse-server.

mod common;
mod correlator;
mod sensor;
