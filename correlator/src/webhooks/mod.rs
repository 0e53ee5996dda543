//! Webhooks: signed POSTs to agencies on ticket opened / escalated / SLA breach / resolved,
//! retried with backoff, every attempt logged.
//!
//! Input: ticket events (from the ticket worker) and the directory's webhooks. Output: HTTP
//! POSTs, `webhook_deliveries` (one row per delivery state, latest by version) and
//! `webhook_attempts` (one row per attempt: the delivery log).
//!
//! Request: `POST url`, `Content-Type: application/json`, body
//! `{"event","delivery_id","event_id","occurred_at","agency","ticket":{...}}`, headers
//! `X-Tocsin-Event`, `X-Tocsin-Delivery`, `X-Tocsin-Timestamp` (Unix seconds) and
//! `X-Tocsin-Signature: sha256=HEX`, the HMAC-SHA256 (RFC 2104) of `TIMESTAMP + "." + body`
//! keyed with the webhook's secret. Receivers recompute it, compare in constant time, reject
//! old timestamps, and deduplicate by `X-Tocsin-Delivery` (a retry repeats it).
//!
//! Retries: network errors, timeouts, `408`, `429` and `5xx` are retried after
//! `initial_backoff * 2^(attempt-1)` (capped at `max_backoff`) up to `max_attempts`; other
//! answers fail at once. Only the ticket worker (the lease holder) delivers; a new holder
//! reloads pending deliveries. Delivery IDs derive from (event, webhook), so a delivery
//! created twice is one row.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

use crate::agency::{Directory, WebhookEvent};
use crate::config::WebhookConfig;
use crate::metrics::Metrics;
use crate::store::{ClickHouse, StoreError};
use crate::tickets::view::TicketItem;
use crate::tickets::{Event, TICKET_NAMESPACE};

/// `sha256=` + hex HMAC-SHA256 of `"{timestamp}.{body}"` under `secret`.
#[must_use]
pub fn sign(secret: &[u8], timestamp_s: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(timestamp_s.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The webhook event an action triggers.
#[must_use]
pub fn event_kind(e: &Event) -> Option<WebhookEvent> {
    match e.action.as_str() {
        "opened" => Some(WebhookEvent::TicketOpened),
        "escalated" => Some(WebhookEvent::TicketEscalated),
        "sla_breached" => Some(WebhookEvent::SlaBreached),
        "status_changed" if e.ticket.status == crate::tickets::Status::Resolved => {
            Some(WebhookEvent::TicketResolved)
        }
        _ => None,
    }
}

/// One delivery (row of `webhook_deliveries`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    /// UUIDv5 of (event, webhook).
    pub delivery_id: Uuid,
    /// `CODE#N`.
    pub webhook_id: String,
    /// The webhook's agency.
    pub agency: String,
    /// Event name.
    pub event: String,
    /// The ticket event.
    pub event_id: Uuid,
    /// The ticket.
    pub ticket_id: Uuid,
    /// Target.
    pub url: String,
    /// JSON body.
    pub payload: String,
    /// `pending`, `delivered`, `failed`.
    pub status: String,
    /// Attempts made.
    pub attempts: u16,
    /// Next attempt, µs.
    pub next_attempt_us: i64,
    /// Last HTTP status (0: none).
    pub last_http_status: u16,
    /// Last error text.
    pub last_error: String,
    /// Created, seconds.
    pub created_at: i64,
    /// Updated, seconds.
    pub updated_at: i64,
    /// Version (µs).
    pub version: u64,
}

/// Deliveries for `events` to the webhooks subscribed to them.
#[must_use]
pub fn deliveries_for(events: &[Event], dir: &Directory, now_us: i64) -> Vec<Delivery> {
    let mut out = Vec::new();
    for e in events {
        let Some(kind) = event_kind(e) else { continue };
        let mut hooks = dir.webhooks_for(&e.ticket.agency);
        hooks.extend(dir.webhooks_for(&e.ticket.owner_agency));
        if e.action == "escalated"
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(&e.before)
            && let Some(prev) = v.get("agency").and_then(|a| a.as_str())
        {
            hooks.extend(dir.webhooks_for(prev));
        }
        hooks.sort_by(|a, b| a.id.cmp(&b.id));
        hooks.dedup_by(|a, b| a.id == b.id);
        for h in hooks.into_iter().filter(|h| h.events.contains(&kind)) {
            let delivery_id =
                Uuid::new_v5(&TICKET_NAMESPACE, format!("{}/{}", e.id, h.id).as_bytes());
            let payload = serde_json::json!({
                "event": kind.as_str(),
                "delivery_id": delivery_id.to_string(),
                "event_id": e.id.to_string(),
                "occurred_at": crate::api::rfc3339(e.at_us),
                "agency": h.agency,
                "comment": e.comment,
                "ticket": TicketItem::from(&e.ticket),
            })
            .to_string();
            out.push(Delivery {
                delivery_id,
                webhook_id: h.id.clone(),
                agency: h.agency.clone(),
                event: kind.as_str().to_owned(),
                event_id: e.id,
                ticket_id: e.ticket.id,
                url: h.url.clone(),
                payload,
                status: "pending".into(),
                attempts: 0,
                next_attempt_us: now_us,
                last_http_status: 0,
                last_error: String::new(),
                created_at: now_us.div_euclid(1_000_000),
                updated_at: now_us.div_euclid(1_000_000),
                version: u64::try_from(now_us).unwrap_or(0),
            });
        }
    }
    out
}

#[derive(Debug, Serialize)]
struct AttemptRow<'a> {
    delivery_id: &'a Uuid,
    webhook_id: &'a str,
    agency: &'a str,
    event: &'a str,
    attempt: u16,
    at: i64,
    at_us: i64,
    http_status: u16,
    error: &'a str,
    duration_ms: u32,
    outcome: &'a str,
}

/// Pending deliveries of the lease holder, by next attempt time.
#[derive(Debug)]
pub struct Deliverer {
    queue: BTreeMap<(i64, Uuid), Delivery>,
    /// Finished deliveries (not reloaded while the store still shows an older version).
    done: std::collections::HashSet<Uuid>,
    http: reqwest::Client,
    cfg: WebhookConfig,
    metrics: Arc<Metrics>,
}

impl Deliverer {
    /// A deliverer with an empty queue.
    ///
    /// # Errors
    /// [`StoreError::Config`] when the HTTP client cannot be built.
    pub fn new(cfg: WebhookConfig, metrics: Arc<Metrics>) -> Result<Self, StoreError> {
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| StoreError::Config(e.to_string()))?;
        Ok(Self {
            queue: BTreeMap::new(),
            done: std::collections::HashSet::new(),
            http,
            cfg,
            metrics,
        })
    }

    /// Deliveries waiting.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// Forgets the queue (the lease was lost; the next holder reloads it).
    pub fn clear(&mut self) {
        self.queue.clear();
        self.done.clear();
    }

    /// Loads pending deliveries from ClickHouse into the queue (after taking the lease, and
    /// on every poll: the API of any correlator records deliveries for `ticket.resolved`).
    /// A queued delivery whose local version is newer is kept.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn load_pending(&mut self, ch: &ClickHouse) -> Result<usize, StoreError> {
        let rows: Vec<Delivery> = ch
            .query_rows(&format!(
                "SELECT delivery_id, webhook_id, agency, event, \
                 event_id, ticket_id, url, payload, status, \
                 attempts, next_attempt_us, last_http_status, last_error, \
                 toInt64(toUnixTimestamp(created_at)) AS created_at, \
                 toInt64(toUnixTimestamp(updated_at)) AS updated_at, version \
                 FROM {}.webhook_deliveries FINAL WHERE status = 'pending' LIMIT 100000",
                ch.database()
            ))
            .await?;
        let mut added = 0;
        for d in rows {
            let known = self
                .queue
                .values()
                .any(|q| q.delivery_id == d.delivery_id && q.version >= d.version)
                || self.done.contains(&d.delivery_id);
            if !known {
                self.queue.retain(|_, q| q.delivery_id != d.delivery_id);
                self.queue.insert((d.next_attempt_us, d.delivery_id), d);
                added += 1;
            }
        }
        Ok(added)
    }

    /// Records new deliveries as pending and queues them.
    ///
    /// # Errors
    /// [`StoreError`]; nothing is queued then.
    pub async fn enqueue(&mut self, ch: &ClickHouse, ds: Vec<Delivery>) -> Result<(), StoreError> {
        if ds.is_empty() {
            return Ok(());
        }
        ch.insert("webhook_deliveries", &ds).await?;
        for d in ds {
            self.queue.insert((d.next_attempt_us, d.delivery_id), d);
        }
        Ok(())
    }

    /// Sends every delivery due at `now_us` (a few at a time), records attempts and states,
    /// and requeues retries. The webhook's current URL and secret come from `dir`; a
    /// delivery whose webhook is gone fails.
    ///
    /// # Errors
    /// [`StoreError`] when the log cannot be written (the deliveries stay queued).
    pub async fn run_due(
        &mut self,
        ch: &ClickHouse,
        dir: &Directory,
        now_us: i64,
    ) -> Result<usize, StoreError> {
        let due: Vec<(i64, Uuid)> = self
            .queue
            .range(..=(now_us, Uuid::max()))
            .map(|(k, _)| *k)
            .take(64)
            .collect();
        if due.is_empty() {
            return Ok(0);
        }
        let hooks = dir.all_webhooks();
        let mut sends = Vec::new();
        for k in &due {
            let Some(d) = self.queue.get(k) else { continue };
            let hook = hooks
                .iter()
                .find(|h| h.id == d.webhook_id)
                .map(|h| (h.url.clone(), h.secret.clone()));
            let http = self.http.clone();
            let d = d.clone();
            sends.push(async move {
                let started = Instant::now();
                let result = match hook {
                    None => Err((0u16, "webhook no longer in the directory".to_owned(), false)),
                    Some((url, secret)) => {
                        let ts = now_us.div_euclid(1_000_000);
                        let sig = sign(secret.as_bytes(), ts, d.payload.as_bytes());
                        let r = http
                            .post(&url)
                            .header("Content-Type", "application/json")
                            .header("X-Tocsin-Event", &d.event)
                            .header("X-Tocsin-Delivery", d.delivery_id.to_string())
                            .header("X-Tocsin-Timestamp", ts.to_string())
                            .header("X-Tocsin-Signature", sig)
                            .body(d.payload.clone())
                            .send()
                            .await;
                        match r {
                            Ok(resp) if resp.status().is_success() => Ok(resp.status().as_u16()),
                            Ok(resp) => {
                                let s = resp.status().as_u16();
                                let retry = s == 408 || s == 429 || s >= 500;
                                Err((s, format!("HTTP {s}"), retry))
                            }
                            Err(e) => Err((0, e.to_string().chars().take(300).collect(), true)),
                        }
                    }
                };
                (d, result, started.elapsed())
            });
        }
        let results = futures_join_all(sends).await;
        let mut attempts = Vec::new();
        let mut updates = Vec::new();
        for (mut d, result, took) in results {
            self.queue.remove(&(d.next_attempt_us, d.delivery_id));
            d.attempts = d.attempts.saturating_add(1);
            d.updated_at = now_us.div_euclid(1_000_000);
            d.version = u64::try_from(now_us).unwrap_or(0).max(d.version + 1);
            let (outcome, status, error) = match &result {
                Ok(s) => ("delivered", *s, String::new()),
                Err((s, e, retry)) if *retry && d.attempts < self.cfg.max_attempts => {
                    ("retry", *s, e.clone())
                }
                Err((s, e, _)) => ("failed", *s, e.clone()),
            };
            d.last_http_status = status;
            d.last_error.clone_from(&error);
            match outcome {
                "delivered" => {
                    d.status = "delivered".into();
                    Metrics::add(&self.metrics.webhook_delivered, 1);
                }
                "retry" => {
                    let shift = u32::from(d.attempts.saturating_sub(1)).min(20);
                    let backoff = self
                        .cfg
                        .initial_backoff
                        .saturating_mul(1 << shift)
                        .min(self.cfg.max_backoff);
                    d.next_attempt_us = now_us
                        .saturating_add(i64::try_from(backoff.as_micros()).unwrap_or(i64::MAX));
                    Metrics::add(&self.metrics.webhook_retries, 1);
                }
                _ => {
                    d.status = "failed".into();
                    Metrics::add(&self.metrics.webhook_failed, 1);
                    tracing::warn!(webhook = %d.webhook_id, delivery = %d.delivery_id, error = %error, "webhook delivery failed for good");
                }
            }
            attempts.push((d.clone(), status, error, took, outcome));
            updates.push(d);
        }
        let rows: Vec<AttemptRow<'_>> = attempts
            .iter()
            .map(|(d, status, error, took, outcome)| AttemptRow {
                delivery_id: &d.delivery_id,
                webhook_id: &d.webhook_id,
                agency: &d.agency,
                event: &d.event,
                attempt: d.attempts,
                at: now_us.div_euclid(1_000_000),
                at_us: now_us,
                http_status: *status,
                error,
                duration_ms: u32::try_from(took.as_millis()).unwrap_or(u32::MAX),
                outcome,
            })
            .collect();
        let n = updates.len();
        let logged = async {
            ch.insert("webhook_attempts", &rows).await?;
            ch.insert("webhook_deliveries", &updates).await
        }
        .await;
        if self.done.len() > 100_000 {
            self.done.clear();
        }
        for d in updates {
            if d.status == "pending" {
                self.queue.insert((d.next_attempt_us, d.delivery_id), d);
            } else {
                self.done.insert(d.delivery_id);
            }
        }
        logged.map(|()| n)
    }

    /// When the next delivery is due (µs).
    #[must_use]
    pub fn next_due(&self) -> Option<i64> {
        self.queue.keys().next().map(|(t, _)| *t)
    }
}

/// Awaits all futures concurrently (a small `join_all` without the `futures` crate).
async fn futures_join_all<F>(futs: Vec<F>) -> Vec<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    for (i, f) in futs.into_iter().enumerate() {
        set.spawn(async move { (i, f.await) });
    }
    let mut out: Vec<(usize, F::Output)> = Vec::new();
    while let Some(r) = set.join_next().await {
        if let Ok(v) = r {
            out.push(v);
        }
    }
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, v)| v).collect()
}

/// Duration helper for config defaults.
#[must_use]
pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_sha256_matches_rfc4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        // Our message is "{ts}.{body}", so split the data at its first '.'-free point:
        // use a timestamp-free check through the same primitive instead.
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // sign() = HMAC over "ts.body": "1.x" under "Jefe" equals HMAC of those 3 bytes.
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"1.x");
        let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(sign(b"Jefe", 1, b"x"), want);
    }
}
