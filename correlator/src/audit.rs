//! The audit log: every state change and every denied attempt, queryable by admins.
//!
//! Input: [`AuditEntry`]s from the API (denied requests, token and directory changes come
//! from the CLI directly). Ticket changes reach `audit` without passing here: a materialized
//! view copies each `ticket_events` row, so a ticket change and its audit entry are one
//! `INSERT`. Output: rows of `audit`.
//!
//! Denied attempts are written by a background task in batches (bounded queue of
//! `QUEUE_MAX`; when full, entries are counted as dropped, never blocking a request).
//! Unauthenticated attempts (`401`) are rate-limited to `UNAUTH_PER_MINUTE` entries per
//! process so a flood of bad tokens cannot flood the log; the excess is counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::store::{ClickHouse, StoreError};

/// Entries waiting to be written.
pub const QUEUE_MAX: usize = 10_000;
/// Unauthenticated attempts logged per minute and process.
pub const UNAUTH_PER_MINUTE: i64 = 120;

/// One `audit` row.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AuditEntry {
    /// Entry ID.
    pub id: Uuid,
    /// When, seconds.
    pub at: i64,
    /// When, µs.
    pub at_us: i64,
    /// Token name (`anonymous` without a valid token, `cli` for the command line).
    pub actor: String,
    /// The actor's role.
    pub actor_role: String,
    /// The actor's agency.
    pub actor_agency: String,
    /// The agency whose data this concerns (scopes who may read the entry).
    pub agency: String,
    /// What was done or tried (`ticket.acknowledged`, `api.denied`, `token.created`, ...).
    pub action: String,
    /// `ticket`, `incident`, `agency`, `token`, `audit`, `route`.
    pub object_type: String,
    /// The object's ID or path.
    pub object_id: String,
    /// The incident concerned (nil when none).
    pub incident_id: Uuid,
    /// State before (JSON or empty).
    pub before: String,
    /// State after (JSON or empty).
    pub after: String,
    /// `ok` or `denied`.
    pub outcome: String,
    /// HTTP status answered.
    pub http_status: u16,
    /// Request ID (`x-request-id`).
    pub request_id: String,
    /// Free text.
    pub detail: String,
}

impl AuditEntry {
    /// A new entry at `at_us` with a random ID; fill the rest with struct update syntax.
    #[must_use]
    pub fn new(at_us: i64, action: &str, outcome: &str) -> Self {
        Self {
            id: Uuid::new_v4(),
            at: at_us.div_euclid(1_000_000),
            at_us,
            actor: String::new(),
            actor_role: String::new(),
            actor_agency: String::new(),
            agency: String::new(),
            action: action.to_owned(),
            object_type: String::new(),
            object_id: String::new(),
            incident_id: Uuid::nil(),
            before: String::new(),
            after: String::new(),
            outcome: outcome.to_owned(),
            http_status: 0,
            request_id: String::new(),
            detail: String::new(),
        }
    }
}

/// Where the API hands entries to the background writer.
#[derive(Debug, Clone)]
pub struct AuditSink {
    tx: mpsc::Sender<AuditEntry>,
    /// Entries not written (queue full or rate limit).
    pub dropped: Arc<AtomicU64>,
    window: Arc<(AtomicI64, AtomicI64)>,
}

impl AuditSink {
    /// A sink and the receiver its writer drains.
    #[must_use]
    pub fn new() -> (Self, mpsc::Receiver<AuditEntry>) {
        let (tx, rx) = mpsc::channel(QUEUE_MAX);
        (
            Self {
                tx,
                dropped: Arc::new(AtomicU64::new(0)),
                window: Arc::new((AtomicI64::new(0), AtomicI64::new(0))),
            },
            rx,
        )
    }

    /// Queues an entry (never blocks).
    pub fn record(&self, e: AuditEntry) {
        if self.tx.try_send(e).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Queues an unauthenticated attempt, within the per-minute budget.
    pub fn record_unauthenticated(&self, e: AuditEntry) {
        let minute = e.at / 60;
        let (win, count) = (&self.window.0, &self.window.1);
        if win.swap(minute, Ordering::Relaxed) != minute {
            count.store(0, Ordering::Relaxed);
        }
        if count.fetch_add(1, Ordering::Relaxed) < UNAUTH_PER_MINUTE {
            self.record(e);
        } else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Writes queued entries in batches (every 200 ms or 1,000 entries) until `cancel`, then
/// drains what is left. A failed batch is retried a few times, then dropped with a warning.
pub async fn run_writer(
    ch: ClickHouse,
    mut rx: mpsc::Receiver<AuditEntry>,
    cancel: CancellationToken,
) {
    let mut buf: Vec<AuditEntry> = Vec::new();
    loop {
        let closing = tokio::select! {
            got = rx.recv() => match got {
                Some(e) => { buf.push(e); false }
                None => true,
            },
            () = cancel.cancelled() => true,
        };
        if !closing && buf.len() < 1000 {
            // Collect what arrives within 200 ms.
            let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
            while buf.len() < 1000 {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(e)) => buf.push(e),
                    _ => break,
                }
            }
        }
        if closing {
            while let Ok(e) = rx.try_recv() {
                buf.push(e);
            }
        }
        if !buf.is_empty() {
            let mut tries = 0;
            loop {
                match write(&ch, &buf).await {
                    Ok(()) => break,
                    Err(e) if tries < 3 && !closing => {
                        tries += 1;
                        tracing::warn!(error = %e, "audit write failed; retrying");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, lost = buf.len(), "audit entries not written");
                        break;
                    }
                }
            }
            buf.clear();
        }
        if closing {
            return;
        }
    }
}

/// Writes entries now (the CLI's token and directory changes).
///
/// # Errors
/// [`StoreError`].
pub async fn write(ch: &ClickHouse, entries: &[AuditEntry]) -> Result<(), StoreError> {
    ch.insert("audit", entries).await
}
