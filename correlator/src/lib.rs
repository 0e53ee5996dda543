//! The Tocsin correlator: alert ingest, deduplication into incidents, correlation rules,
//! ClickHouse storage and the HTTP API.
//!
//! Data flow, one module per stage:
//!
//! ```text
//! api (axum) ─► ingest (decode body, parse NDJSON lines) ─► writer (one task)
//!                                                             │ dedup by alert_id (cache + ClickHouse)
//!                                                             │ dedup   (alerts → incidents)
//!                                                             │ correlate (threshold / distinct / sequence)
//!                                                             ▼
//!                                                           store (ClickHouse over HTTP)
//! ```
//!
//! A request is answered only after its alerts are durably in ClickHouse; when ClickHouse
//! is down or the writer is behind, the request gets `503`/`429` with `Retry-After` and the
//! sender retries. [`service::Correlator`] wires the stages together.
//!
//! Response (issue 7), beside the ingest path:
//!
//! ```text
//! agency (directory: tree, prefixes, policies) ──► writer (owner of each incident: LPM)
//!                                                  api    (scope of every token)
//! incidents ──► incident_updates (view) ──► tickets::worker (one correlator, by lease)
//!                                             ├─ ticketer: open / link / reopen tickets
//!                                             ├─ escalate: SLA deadlines → parent agency
//!                                             └─ webhooks: signed POSTs, retries, log
//! api (responders) ──► ticket_events ──► tickets, ticket_incidents, audit (views)
//! ```

pub mod agency;
pub mod api;
pub mod audit;
pub mod auth;
pub mod config;
pub mod correlate;
pub mod dedup;
pub mod ingest;
pub mod metrics;
pub mod service;
pub mod store;
pub mod tickets;
pub mod webhooks;
pub mod writer;

pub use config::CorrelatorConfig;
pub use service::Correlator;
