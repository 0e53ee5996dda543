//! A lease in ClickHouse, so that of several correlators exactly one runs the ticket worker
//! (ticket opening, escalation, webhook delivery) at a time.
//!
//! ClickHouse has no compare-and-set, so the lease is an append-only claim log in `leases`
//! (ReplacingMergeTree by version, key `(name, epoch, holder)`):
//! - the holder renews its row of the current epoch every `ttl / 3` (new version, later
//!   `expires_us`) and acts only while its own clock is before the last renewal's expiry;
//! - when the newest epoch's winner has expired, a candidate appends a claim for
//!   `epoch + 1`, waits `settle`, reads all claims of that epoch and takes the lease only if
//!   its claim is the earliest `(claimed_us, holder)`. Every candidate reads the same claims
//!   after the settle time, so they agree on one winner; a claim arriving later than `settle`
//!   after the first one loses because it is later.
//!
//! Escalation rows are deterministic as well (see `escalate`), so even two holders at once
//! (a holder paused past its expiry) would write identical rows, not a second escalation.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::store::{ClickHouse, StoreError, quote};

/// A lease on one name.
#[derive(Debug)]
pub struct Lease {
    name: String,
    holder: String,
    ttl_us: i64,
    settle: Duration,
    epoch: u64,
    claimed_us: i64,
    held_until_us: i64,
    renewed_us: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Row {
    name: String,
    epoch: u64,
    holder: String,
    claimed_us: i64,
    expires_us: i64,
    version: u64,
}

impl Lease {
    /// A lease named `name` for this process (`holder` must be unique per process).
    #[must_use]
    pub fn new(name: &str, holder: &str, ttl: Duration, settle: Duration) -> Self {
        Self {
            name: name.to_owned(),
            holder: holder.to_owned(),
            ttl_us: i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX),
            settle,
            epoch: 0,
            claimed_us: 0,
            held_until_us: 0,
            renewed_us: 0,
        }
    }

    /// This process's holder ID.
    #[must_use]
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Whether the lease is held at `now_us` by our own clock.
    #[must_use]
    pub fn held(&self, now_us: i64) -> bool {
        now_us < self.held_until_us
    }

    async fn write(
        &self,
        ch: &ClickHouse,
        epoch: u64,
        claimed_us: i64,
        now_us: i64,
    ) -> Result<(), StoreError> {
        ch.insert(
            "leases",
            &[Row {
                name: self.name.clone(),
                epoch,
                holder: self.holder.clone(),
                claimed_us,
                expires_us: now_us.saturating_add(self.ttl_us),
                version: u64::try_from(now_us).unwrap_or(0),
            }],
        )
        .await
    }

    async fn claims(&self, ch: &ClickHouse, epoch: Option<u64>) -> Result<Vec<Row>, StoreError> {
        let db = ch.database();
        let name = quote(&self.name);
        let epoch_sql = epoch.map_or_else(
            || format!("(SELECT max(epoch) FROM {db}.leases WHERE name = {name})"),
            |e| e.to_string(),
        );
        ch.query_rows(&format!(
            "SELECT name, epoch, holder, claimed_us, expires_us, version FROM {db}.leases FINAL \
             WHERE name = {name} AND epoch = {epoch_sql}"
        ))
        .await
    }

    fn winner(rows: &[Row]) -> Option<&Row> {
        rows.iter()
            .min_by(|a, b| (a.claimed_us, &a.holder).cmp(&(b.claimed_us, &b.holder)))
    }

    /// Takes or renews the lease; returns whether it is held afterwards.
    ///
    /// # Errors
    /// [`StoreError`]; the lease is then not held (a holder that cannot renew stops acting
    /// at its expiry anyway).
    pub async fn ensure(&mut self, ch: &ClickHouse, now_us: i64) -> Result<bool, StoreError> {
        if self.held(now_us) {
            if now_us - self.renewed_us >= self.ttl_us / 3 {
                self.write(ch, self.epoch, self.claimed_us, now_us).await?;
                self.renewed_us = now_us;
                self.held_until_us = now_us.saturating_add(self.ttl_us);
            }
            return Ok(true);
        }
        let current = self.claims(ch, None).await?;
        let next_epoch = match Self::winner(&current) {
            Some(w) if w.expires_us > now_us && w.holder != self.holder => return Ok(false),
            Some(w) if w.holder == self.holder && w.expires_us > now_us => {
                // Ours (a renewal that failed to come back, then did).
                self.epoch = w.epoch;
                self.claimed_us = w.claimed_us;
                self.renewed_us = now_us;
                self.held_until_us = w.expires_us;
                return Ok(true);
            }
            Some(w) => w.epoch + 1,
            None => 1,
        };
        self.write(ch, next_epoch, now_us, now_us).await?;
        tokio::time::sleep(self.settle).await;
        let claims = self.claims(ch, Some(next_epoch)).await?;
        match Self::winner(&claims) {
            Some(w) if w.holder == self.holder => {
                self.epoch = next_epoch;
                self.claimed_us = now_us;
                self.renewed_us = now_us;
                self.held_until_us = now_us.saturating_add(self.ttl_us);
                tracing::info!(lease = %self.name, epoch = next_epoch, holder = %self.holder, "lease acquired");
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Gives the lease up (on shutdown): its row expires now, so another process may take it.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn release(&mut self, ch: &ClickHouse, now_us: i64) -> Result<(), StoreError> {
        if self.held(now_us) {
            self.held_until_us = 0;
            ch.insert(
                "leases",
                &[Row {
                    name: self.name.clone(),
                    epoch: self.epoch,
                    holder: self.holder.clone(),
                    claimed_us: self.claimed_us,
                    expires_us: now_us,
                    version: u64::try_from(now_us).unwrap_or(0).saturating_add(1),
                }],
            )
            .await?;
        }
        Ok(())
    }
}
