//! Correlator integration tests: the real `tocsin` binary against a real clickhouse-server
//! started by the harness (one shared server, a fresh database per test; the fault tests
//! start their own so they can stop it).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod dedup;
mod faults;
mod ingest;
mod response;
mod rules;
mod tls;
