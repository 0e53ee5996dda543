//! Opens tickets for new incidents and applies the reopen/link policy to known ones.
//!
//! Input: rows of `incident_updates` (every incident version the writers store, fed by a
//! materialized view) since a checkpoint, filtered to severities that can open a ticket.
//! Output: ticket events. Idempotent: an incident already attached to a ticket
//! (`ticket_incidents`) opens nothing; ticket IDs derive from incident IDs.
//!
//! Per incident at or above its owner's `ticket_severity`, in update order:
//! - attached to a ticket: if that ticket is `resolved` and the incident has more alerts than
//!   when it was resolved, the owner's `after_resolve` policy applies: `reopen` moves the
//!   ticket to `reopened`, `link` opens a new ticket linked to it;
//! - not attached: the newest ticket of the same key (owner, rule, key) decides: none or
//!   `closed` → a new ticket (linked to the closed one); active or `false_positive` → the
//!   incident is attached to it (`incident_linked`); `resolved` → the policy as above.

use std::collections::HashMap;

use serde::Deserialize;
use uuid::Uuid;

use super::store;
use super::{
    Actor, Event, Status, Ticket, deadlines, make_event, reopen, system_event_id, ticket_id,
};
use crate::agency::{AfterResolve, Directory};
use crate::store::{ClickHouse, StoreError};

/// Seconds re-read before the checkpoint (writers stamp rows a little before inserting).
pub const OVERLAP_S: i64 = 15;
/// Incidents remembered as handled.
pub const MAX_HANDLED: usize = 200_000;

/// One incident version as the ticketer reads it.
#[derive(Debug, Clone, Deserialize)]
pub struct IncidentUpdate {
    /// Incident ID.
    pub id: Uuid,
    /// Owning agency.
    pub agency: String,
    /// Dedup or correlation rule.
    pub rule: String,
    /// Key text.
    pub dedup_key: String,
    /// Severity.
    pub severity: u8,
    /// Member alerts.
    pub alert_count: u64,
    /// First signature.
    pub signature: String,
    /// When stored, seconds.
    pub updated: i64,
}

/// The ticketer's memory between polls.
#[derive(Debug)]
pub struct Ticketer {
    checkpoint_s: i64,
    handled: HashMap<Uuid, u64>,
}

impl Ticketer {
    /// Starts `horizon_s` seconds back from `now_s`.
    #[must_use]
    pub fn new(now_s: i64, horizon_s: i64) -> Self {
        Self {
            checkpoint_s: now_s - horizon_s,
            handled: HashMap::new(),
        }
    }

    /// Reads new incident updates and returns the ticket events they cause (not yet stored).
    /// Call [`Ticketer::commit`] after storing them.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn poll(
        &mut self,
        ch: &ClickHouse,
        dir: &Directory,
        now_us: i64,
    ) -> Result<(Vec<Event>, Vec<(Uuid, u64)>, i64), StoreError> {
        let max_sev = dir
            .preorder()
            .iter()
            .map(|a| a.policy.ticket_severity)
            .chain([crate::agency::Policy::builtin().ticket_severity])
            .max()
            .unwrap_or(1);
        let since = self.checkpoint_s - OVERLAP_S;
        let rows: Vec<IncidentUpdate> = ch
            .query_rows(&format!(
                "SELECT id, agency, rule, dedup_key, severity, alert_count, signature, \
                 toInt64(toUnixTimestamp(updated_at)) AS updated FROM {}.incident_updates \
                 WHERE updated_at >= toDateTime({}) AND severity <= {max_sev} \
                 ORDER BY id, version DESC LIMIT 1 BY id",
                ch.database(),
                since.max(0)
            ))
            .await?;
        let newest = rows
            .iter()
            .map(|r| r.updated)
            .max()
            .unwrap_or(self.checkpoint_s);
        let todo: Vec<IncidentUpdate> = rows
            .into_iter()
            .filter(|r| r.severity <= dir.policy_for(&r.agency).ticket_severity)
            .filter(|r| self.handled.get(&r.id) != Some(&r.alert_count))
            .collect();
        if todo.is_empty() {
            return Ok((Vec::new(), Vec::new(), newest));
        }
        let ids: Vec<Uuid> = todo.iter().map(|r| r.id).collect();
        let attached: HashMap<Uuid, Ticket> =
            store::by_incidents(ch, &ids).await?.into_iter().collect();
        let mut keys: Vec<(String, String, String)> = todo
            .iter()
            .filter(|r| !attached.contains_key(&r.id))
            .map(|r| (r.agency.clone(), r.rule.clone(), r.dedup_key.clone()))
            .collect();
        keys.sort();
        keys.dedup();
        let mut by_key: HashMap<(String, String, String), Ticket> = store::latest_by_key(ch, &keys)
            .await?
            .into_iter()
            .map(|t| {
                (
                    (t.owner_agency.clone(), t.rule.clone(), t.dedup_key.clone()),
                    t,
                )
            })
            .collect();
        let mut attached = attached;
        let mut events = Vec::new();
        let mut done = Vec::new();
        for inc in &todo {
            let key = (inc.agency.clone(), inc.rule.clone(), inc.dedup_key.clone());
            let produced = match attached.get(&inc.id) {
                Some(t) => after_more_alerts(t, inc, dir, now_us),
                None => match by_key.get(&key) {
                    None => vec![open(inc, dir, now_us, None)],
                    Some(t) if t.status == Status::Closed => vec![open(inc, dir, now_us, Some(t))],
                    Some(t) if t.status == Status::Resolved => {
                        after_more_alerts(t, inc, dir, now_us)
                    }
                    Some(t) => vec![link(t, inc, now_us)],
                },
            };
            if let Some(last) = produced.last() {
                attached.insert(inc.id, last.ticket.clone());
                by_key.insert(key, last.ticket.clone());
            }
            events.extend(produced);
            done.push((inc.id, inc.alert_count));
        }
        Ok((events, done, newest))
    }

    /// Records a poll's results as handled (after its events are stored).
    pub fn commit(&mut self, done: Vec<(Uuid, u64)>, newest_s: i64) {
        if self.handled.len() + done.len() > MAX_HANDLED {
            self.handled.clear(); // re-handling is harmless, only slower
        }
        self.handled.extend(done);
        self.checkpoint_s = self.checkpoint_s.max(newest_s);
    }
}

/// A new ticket for `inc` (linked to `related`).
#[must_use]
pub fn open(inc: &IncidentUpdate, dir: &Directory, now_us: i64, related: Option<&Ticket>) -> Event {
    let id = ticket_id(&inc.id, related.map(|t| &t.id));
    let (ack, resolve) = deadlines(dir, &inc.agency, inc.severity, now_us);
    let title = if inc.signature.is_empty() {
        format!("{}: {}", inc.rule, inc.dedup_key)
    } else {
        inc.signature.clone()
    };
    let t = Ticket {
        id,
        seq: 0,
        version: 0,
        status: Status::New,
        agency: inc.agency.clone(),
        owner_agency: inc.agency.clone(),
        agency_path: dir.path(&inc.agency),
        level1_agency: dir.level1(&inc.agency),
        escalation_level: 0,
        severity: inc.severity,
        assignee: String::new(),
        incident_id: inc.id,
        linked_incident_id: Uuid::nil(),
        related_ticket: related.map(|r| r.id.to_string()).unwrap_or_default(),
        title: title.chars().take(512).collect(),
        rule: inc.rule.clone(),
        dedup_key: inc.dedup_key.clone(),
        opened_us: now_us,
        acknowledged_us: 0,
        resolved_us: 0,
        closed_us: 0,
        ack_due_us: ack,
        resolve_due_us: resolve,
        ack_breached: false,
        resolve_breached: false,
        reopen_count: 0,
        resolved_alert_count: 0,
        updated_us: now_us,
        last_action: String::new(),
    };
    let note = match related {
        Some(r) => format!("opened for incident {}; follows ticket {}", inc.id, r.id),
        None => format!("opened for incident {}", inc.id),
    };
    make_event(
        None,
        t,
        "opened",
        &Actor::system(),
        &note,
        now_us,
        Some(system_event_id(&id, "opened")),
    )
}

fn link(t: &Ticket, inc: &IncidentUpdate, now_us: i64) -> Event {
    let mut n = t.clone();
    n.linked_incident_id = inc.id;
    make_event(
        Some(t),
        n,
        "incident_linked",
        &Actor::system(),
        &format!("incident {} has the same key", inc.id),
        now_us,
        Some(system_event_id(
            &t.id,
            &format!("incident_linked/{}", inc.id),
        )),
    )
}

/// New alerts reached `inc`, which belongs (or whose key belongs) to `t`.
fn after_more_alerts(t: &Ticket, inc: &IncidentUpdate, dir: &Directory, now_us: i64) -> Vec<Event> {
    let new_incident = t.incident_id != inc.id && t.linked_incident_id != inc.id;
    match t.status {
        Status::Resolved if new_incident || inc.alert_count > t.resolved_alert_count => {
            match dir.policy_for(&t.owner_agency).after_resolve {
                AfterResolve::Reopen => {
                    let mut n = t.clone();
                    reopen(&mut n, now_us, dir);
                    if new_incident {
                        n.linked_incident_id = inc.id;
                    }
                    vec![make_event(
                        Some(t),
                        n,
                        "reopened",
                        &Actor::system(),
                        &format!("new alerts on incident {} after resolution", inc.id),
                        now_us,
                        Some(system_event_id(
                            &t.id,
                            &format!("reopened/{}", t.reopen_count + 1),
                        )),
                    )]
                }
                AfterResolve::Link => vec![open(inc, dir, now_us, Some(t))],
            }
        }
        _ if new_incident => vec![link(t, inc, now_us)],
        _ => Vec::new(),
    }
}
