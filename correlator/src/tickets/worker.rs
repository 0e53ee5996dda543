//! The ticket worker: while this correlator holds the `ticket-worker` lease, it opens
//! tickets for new incidents, escalates overdue ones at their deadlines and delivers
//! webhooks. Every correlator also runs two small refreshers: the agency directory (reloaded
//! when a new load appears) and the ticket gauges of `/metrics`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::escalate::{Clock, Schedule, plan};
use super::lease::Lease;
use super::ticketer::Ticketer;
use super::{Event, TicketLocks, now_us, store};
use crate::agency::DirHandle;
use crate::config::{TicketsConfig, WebhookConfig};
use crate::metrics::Metrics;
use crate::store::{ClickHouse, StoreError, agencies};
use crate::webhooks::{Deliverer, deliveries_for};

/// Name of the worker's lease.
pub const LEASE_NAME: &str = "ticket-worker";

/// The ticket worker of one correlator.
#[derive(Debug)]
pub struct Worker {
    ch: ClickHouse,
    dir: DirHandle,
    cfg: TicketsConfig,
    metrics: Arc<Metrics>,
    locks: Arc<TicketLocks>,
    lease: Lease,
    deliverer: Deliverer,
    ticketer: Option<Ticketer>,
    schedule: Schedule,
    last_refresh_us: i64,
}

impl Worker {
    /// A worker; `holder` names this process in the lease table.
    ///
    /// # Errors
    /// [`StoreError::Config`] when the webhook HTTP client cannot be built.
    pub fn new(
        ch: ClickHouse,
        dir: DirHandle,
        cfg: TicketsConfig,
        webhooks: WebhookConfig,
        metrics: Arc<Metrics>,
        locks: Arc<TicketLocks>,
        holder: &str,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            lease: Lease::new(LEASE_NAME, holder, cfg.lease_ttl, cfg.lease_settle),
            deliverer: Deliverer::new(webhooks, metrics.clone())?,
            ch,
            dir,
            cfg,
            metrics,
            locks,
            ticketer: None,
            schedule: Schedule::default(),
            last_refresh_us: 0,
        })
    }

    /// Runs until `cancel`, then gives the lease up.
    pub async fn run(mut self, cancel: CancellationToken) {
        let clock = Clock::starting_at(now_us());
        let mut tick = tokio::time::interval(self.cfg.poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let far = Duration::from_secs(3600);
        loop {
            let next = [self.schedule.next_due(), self.deliverer.next_due()]
                .into_iter()
                .flatten()
                .min()
                .map_or_else(
                    || tokio::time::Instant::now() + far,
                    |us| clock.instant_of(us),
                );
            tokio::select! {
                () = cancel.cancelled() => break,
                _ = tick.tick() => self.poll(clock.now_us()).await,
                () = tokio::time::sleep_until(next) => {}
            }
            let now = clock.now_us();
            if !self.lease.held(now) {
                continue;
            }
            self.escalate_due(now).await;
            let dir = self.dir.get();
            if let Err(e) = self.deliverer.run_due(&self.ch, &dir, now).await {
                tracing::warn!(error = %e, "writing the webhook delivery log failed");
            }
        }
        if let Err(e) = self.lease.release(&self.ch, now_us()).await {
            tracing::debug!(error = %e, "releasing the ticket worker lease");
        }
    }

    async fn poll(&mut self, now: i64) {
        let held = match self.lease.ensure(&self.ch, now).await {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(error = %e, "ticket worker lease check failed");
                false
            }
        };
        self.metrics
            .ticket_worker_leader
            .store(i64::from(held), Ordering::Relaxed);
        if !held {
            if self.ticketer.take().is_some() {
                tracing::info!("ticket worker lease lost");
                self.schedule = Schedule::default();
                self.deliverer.clear();
            }
            return;
        }
        if self.ticketer.is_none() {
            let horizon = i64::try_from(self.cfg.scan_horizon.as_secs()).unwrap_or(3600);
            self.ticketer = Some(Ticketer::new(now.div_euclid(1_000_000), horizon));
            self.last_refresh_us = 0;
            match self.deliverer.load_pending(&self.ch).await {
                Ok(n) => tracing::info!(pending_webhooks = n, "ticket worker active"),
                Err(e) => tracing::warn!(error = %e, "loading pending webhook deliveries"),
            }
        }
        if let Err(e) = self.deliverer.load_pending(&self.ch).await {
            tracing::warn!(error = %e, "loading pending webhook deliveries");
        }
        let dir = self.dir.get();
        if let Some(t) = self.ticketer.as_mut() {
            match t.poll(&self.ch, &dir, now).await {
                Ok((events, done, newest)) => {
                    if events.is_empty() || self.store(&events, now).await {
                        let opened = events.iter().filter(|e| e.action == "opened").count();
                        Metrics::add(&self.metrics.tickets_opened, opened as u64);
                        if let Some(t) = self.ticketer.as_mut() {
                            t.commit(done, newest);
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "looking for new incidents failed"),
            }
        }
        let refresh = i64::try_from(self.cfg.refresh_interval.as_micros()).unwrap_or(i64::MAX);
        if now - self.last_refresh_us >= refresh {
            match store::active_with_deadlines(&self.ch).await {
                Ok(list) => {
                    self.schedule.replace(list);
                    self.last_refresh_us = now;
                }
                Err(e) => tracing::warn!(error = %e, "reading active tickets failed"),
            }
        }
    }

    /// Stores events, schedules their tickets and queues their webhooks. Returns success.
    async fn store(&mut self, events: &[Event], now: i64) -> bool {
        if let Err(e) = store::insert_events(&self.ch, events).await {
            tracing::warn!(error = %e, events = events.len(), "storing ticket events failed; will retry");
            return false;
        }
        for e in events {
            self.schedule.upsert(e.ticket.clone());
        }
        let dir = self.dir.get();
        let ds = deliveries_for(events, &dir, now);
        if let Err(e) = self.deliverer.enqueue(&self.ch, ds).await {
            tracing::warn!(error = %e, "recording webhook deliveries failed");
        }
        true
    }

    async fn escalate_due(&mut self, now: i64) {
        let due = self.schedule.take_due(now);
        if due.is_empty() {
            return;
        }
        let dir = self.dir.get();
        let locks = self.locks.clone();
        for stale in due {
            let _guard = locks.lock(&stale.id).await;
            // Decide on the stored state: a person may have acted since the last refresh.
            let fresh = match store::get(&self.ch, &stale.id).await {
                Ok(Some(t)) => t,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "reading a due ticket failed");
                    continue;
                }
            };
            let events = plan(&fresh, now, &dir, self.cfg.escalate_to_root);
            if events.is_empty() {
                self.schedule.upsert(fresh);
                continue;
            }
            if self.store(&events, now).await {
                for e in &events {
                    match (e.action.as_str(), e.comment.starts_with("ack")) {
                        ("sla_breached", true) => Metrics::add(&self.metrics.sla_breaches_ack, 1),
                        ("sla_breached", false) => {
                            Metrics::add(&self.metrics.sla_breaches_resolve, 1);
                        }
                        ("escalated", _) => Metrics::add(&self.metrics.escalations, 1),
                        _ => {}
                    }
                    tracing::info!(ticket = %e.ticket.id, action = %e.action, agency = %e.ticket.agency, "{}", e.comment);
                }
            }
        }
    }
}

/// Reloads the directory whenever a new version is stored (every correlator runs this).
pub async fn refresh_directory(
    ch: ClickHouse,
    dir: DirHandle,
    every: Duration,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let current = dir.get().version;
        match agencies::version(&ch).await {
            Ok(v) if v != current => match agencies::load(&ch).await {
                Ok(d) => {
                    tracing::info!(
                        version = d.version,
                        agencies = d.len(),
                        "agency directory loaded"
                    );
                    dir.set(d);
                }
                Err(e) => tracing::warn!(error = %e, "loading the agency directory failed"),
            },
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "checking the agency directory version"),
        }
    }
}

/// Reads open and breached tickets per agency and severity for `/metrics`.
pub async fn refresh_gauges(
    ch: ClickHouse,
    metrics: Arc<Metrics>,
    every: Duration,
    cancel: CancellationToken,
) {
    #[derive(serde::Deserialize)]
    struct Row {
        agency: String,
        severity: u8,
        open: u64,
        breached: u64,
    }
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = now_us();
        let sql = format!(
            "SELECT agency, severity, count() AS open, \
             countIf(ack_breached = 1 OR resolve_breached = 1 \
                     OR (acknowledged_us = 0 AND ack_due_us > 0 AND ack_due_us < {now}) \
                     OR (resolve_due_us > 0 AND resolve_due_us < {now})) AS breached \
             FROM {}.tickets FINAL WHERE status IN ('new','acknowledged','in_progress','reopened') \
             GROUP BY agency, severity ORDER BY agency, severity",
            ch.database()
        );
        match ch.query_rows::<Row>(&sql).await {
            Ok(rows) => {
                if let Ok(mut g) = metrics.ticket_gauges.lock() {
                    *g = rows
                        .into_iter()
                        .map(|r| (r.agency, r.severity, r.open, r.breached))
                        .collect();
                }
            }
            Err(e) => tracing::debug!(error = %e, "reading ticket gauges"),
        }
    }
}
