//! Ticket storage: `ticket_events` in, `tickets` / `ticket_incidents` / `ticket_events` out.
//!
//! A write is one `INSERT INTO ticket_events` of one or more events; the views fill
//! `tickets`, `ticket_incidents` and `audit` from the same block. Reads use `FINAL` (the
//! latest version per ticket). Values inside SQL go through [`quote`]; UUIDs are formatted by
//! `uuid` (hex and dashes only).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Event, Status, Ticket};
use crate::store::schema::TICKET_STATE_NAMES;
use crate::store::{ClickHouse, StoreError, quote};

/// One `ticket_events` row.
#[derive(Debug, Serialize)]
struct EventRow<'a> {
    event_id: &'a Uuid,
    ticket_id: &'a Uuid,
    seq: u32,
    version: u64,
    at: i64,
    at_us: i64,
    action: &'a str,
    actor: &'a str,
    actor_role: &'a str,
    actor_agency: &'a str,
    request_id: &'a str,
    comment: &'a str,
    before: &'a str,
    after: &'a str,
    status: &'a str,
    agency: &'a str,
    owner_agency: &'a str,
    agency_path: &'a str,
    level1_agency: &'a str,
    escalation_level: u8,
    severity: u8,
    assignee: &'a str,
    incident_id: &'a Uuid,
    linked_incident_id: &'a Uuid,
    related_ticket: &'a str,
    title: &'a str,
    rule: &'a str,
    dedup_key: &'a str,
    opened_at: i64,
    opened_us: i64,
    acknowledged_at: i64,
    acknowledged_us: i64,
    resolved_at: i64,
    resolved_us: i64,
    closed_us: i64,
    ack_due_at: i64,
    ack_due_us: i64,
    resolve_due_at: i64,
    resolve_due_us: i64,
    ack_breached: u8,
    resolve_breached: u8,
    reopen_count: u16,
    resolved_alert_count: u64,
}

fn secs(us: i64) -> i64 {
    us.max(0).div_euclid(1_000_000)
}

/// Writes events (one `INSERT`, so all or none).
///
/// # Errors
/// [`StoreError`].
pub async fn insert_events(ch: &ClickHouse, events: &[Event]) -> Result<(), StoreError> {
    let rows: Vec<EventRow<'_>> = events
        .iter()
        .map(|e| {
            let t = &e.ticket;
            EventRow {
                event_id: &e.id,
                ticket_id: &t.id,
                seq: t.seq,
                version: t.version,
                at: secs(e.at_us),
                at_us: e.at_us,
                action: &e.action,
                actor: &e.actor.name,
                actor_role: &e.actor.role,
                actor_agency: &e.actor.agency,
                request_id: &e.actor.request_id,
                comment: &e.comment,
                before: &e.before,
                after: &e.after,
                status: t.status.as_str(),
                agency: &t.agency,
                owner_agency: &t.owner_agency,
                agency_path: &t.agency_path,
                level1_agency: &t.level1_agency,
                escalation_level: t.escalation_level,
                severity: t.severity,
                assignee: &t.assignee,
                incident_id: &t.incident_id,
                linked_incident_id: &t.linked_incident_id,
                related_ticket: &t.related_ticket,
                title: &t.title,
                rule: &t.rule,
                dedup_key: &t.dedup_key,
                opened_at: secs(t.opened_us),
                opened_us: t.opened_us,
                acknowledged_at: secs(t.acknowledged_us),
                acknowledged_us: t.acknowledged_us,
                resolved_at: secs(t.resolved_us),
                resolved_us: t.resolved_us,
                closed_us: t.closed_us,
                ack_due_at: secs(t.ack_due_us),
                ack_due_us: t.ack_due_us,
                resolve_due_at: secs(t.resolve_due_us),
                resolve_due_us: t.resolve_due_us,
                ack_breached: u8::from(t.ack_breached),
                resolve_breached: u8::from(t.resolve_breached),
                reopen_count: t.reopen_count,
                resolved_alert_count: t.resolved_alert_count,
            }
        })
        .collect();
    ch.insert("ticket_events", &rows).await
}

/// A `tickets` row as read back.
#[derive(Debug, Deserialize)]
struct TicketRow {
    id: Uuid,
    seq: u32,
    version: u64,
    last_action: String,
    updated_us: i64,
    status: String,
    agency: String,
    owner_agency: String,
    agency_path: String,
    level1_agency: String,
    escalation_level: u8,
    severity: u8,
    assignee: String,
    incident_id: Uuid,
    linked_incident_id: Uuid,
    related_ticket: String,
    title: String,
    rule: String,
    dedup_key: String,
    opened_us: i64,
    acknowledged_us: i64,
    resolved_us: i64,
    closed_us: i64,
    ack_due_us: i64,
    resolve_due_us: i64,
    ack_breached: u8,
    resolve_breached: u8,
    reopen_count: u16,
    resolved_alert_count: u64,
}

impl TryFrom<TicketRow> for Ticket {
    type Error = StoreError;
    fn try_from(r: TicketRow) -> Result<Self, StoreError> {
        let status = Status::parse(&r.status)
            .ok_or_else(|| StoreError::Decode(format!("ticket {}: status '{}'", r.id, r.status)))?;
        Ok(Self {
            id: r.id,
            seq: r.seq,
            version: r.version,
            status,
            agency: r.agency,
            owner_agency: r.owner_agency,
            agency_path: r.agency_path,
            level1_agency: r.level1_agency,
            escalation_level: r.escalation_level,
            severity: r.severity,
            assignee: r.assignee,
            incident_id: r.incident_id,
            linked_incident_id: r.linked_incident_id,
            related_ticket: r.related_ticket,
            title: r.title,
            rule: r.rule,
            dedup_key: r.dedup_key,
            opened_us: r.opened_us,
            acknowledged_us: r.acknowledged_us,
            resolved_us: r.resolved_us,
            closed_us: r.closed_us,
            ack_due_us: r.ack_due_us,
            resolve_due_us: r.resolve_due_us,
            ack_breached: r.ack_breached != 0,
            resolve_breached: r.resolve_breached != 0,
            reopen_count: r.reopen_count,
            resolved_alert_count: r.resolved_alert_count,
            updated_us: r.updated_us,
            last_action: r.last_action,
        })
    }
}

fn select(db: &str, where_: &str, tail: &str) -> String {
    // UUID columns come out of JSONEachRow as text. Never `toString(x) AS x`: 18.16 then
    // substitutes the alias into `WHERE x = toUUID(..)` and fails (String vs UUID).
    let cols = TICKET_STATE_NAMES;
    format!(
        "SELECT id, seq, version, last_action, updated_us, {cols} \
         FROM {db}.tickets FINAL {where_} {tail}"
    )
}

async fn read(ch: &ClickHouse, where_: &str, tail: &str) -> Result<Vec<Ticket>, StoreError> {
    let rows: Vec<TicketRow> = ch.query_rows(&select(ch.database(), where_, tail)).await?;
    rows.into_iter().map(Ticket::try_from).collect()
}

/// One ticket by ID.
///
/// # Errors
/// [`StoreError`].
pub async fn get(ch: &ClickHouse, id: &Uuid) -> Result<Option<Ticket>, StoreError> {
    Ok(read(ch, &format!("WHERE id = toUUID('{id}')"), "")
        .await?
        .into_iter()
        .next())
}

/// Several tickets by ID.
///
/// # Errors
/// [`StoreError`].
pub async fn get_many(ch: &ClickHouse, ids: &[Uuid]) -> Result<Vec<Ticket>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let list: Vec<String> = ids.iter().map(|i| format!("toUUID('{i}')")).collect();
    read(ch, &format!("WHERE id IN ({})", list.join(",")), "").await
}

/// Filters of [`list`].
#[derive(Debug, Clone, Default)]
pub struct TicketQuery {
    /// SQL condition limiting the owner agency (from the caller's scope and `agency=`).
    pub scope_sql: String,
    /// Only these statuses.
    pub statuses: Vec<Status>,
    /// Only this severity or more severe.
    pub max_severity: Option<u8>,
    /// Only tickets of this incident.
    pub incident: Option<Uuid>,
    /// Only this assignee.
    pub assignee: Option<String>,
    /// Opened at or after, µs.
    pub since_us: Option<i64>,
    /// Opened before, µs.
    pub until_us: Option<i64>,
    /// Keyset cursor: strictly before (opened_us, id).
    pub before: Option<(i64, Uuid)>,
    /// Page size.
    pub limit: u32,
}

/// A page of tickets, newest first (opened_us, then ID, both descending).
///
/// # Errors
/// [`StoreError`].
pub async fn list(ch: &ClickHouse, q: &TicketQuery) -> Result<Vec<Ticket>, StoreError> {
    let mut conds = vec![q.scope_sql.clone()];
    if !q.statuses.is_empty() {
        let l: Vec<String> = q.statuses.iter().map(|s| quote(s.as_str())).collect();
        conds.push(format!("status IN ({})", l.join(",")));
    }
    if let Some(s) = q.max_severity {
        conds.push(format!("severity <= {s}"));
    }
    if let Some(i) = &q.incident {
        conds.push(format!(
            "id IN (SELECT ticket_id FROM {}.ticket_incidents WHERE incident_id = toUUID('{i}'))",
            ch.database()
        ));
    }
    if let Some(a) = &q.assignee {
        conds.push(format!("assignee = {}", quote(a)));
    }
    if let Some(s) = q.since_us {
        conds.push(format!("opened_us >= {s}"));
    }
    if let Some(u) = q.until_us {
        conds.push(format!("opened_us < {u}"));
    }
    if let Some((us, id)) = &q.before {
        conds.push(format!(
            "(opened_us < {us} OR (opened_us = {us} AND toString(id) < '{id}'))"
        ));
    }
    read(
        ch,
        &format!("WHERE {}", conds.join(" AND ")),
        &format!(
            "ORDER BY opened_us DESC, toString(id) DESC LIMIT {}",
            q.limit
        ),
    )
    .await
}

/// Active tickets with a deadline (the escalator's working set).
///
/// # Errors
/// [`StoreError`].
pub async fn active_with_deadlines(ch: &ClickHouse) -> Result<Vec<Ticket>, StoreError> {
    read(
        ch,
        "WHERE status IN ('new','acknowledged','in_progress','reopened') \
         AND (ack_due_us > 0 OR resolve_due_us > 0)",
        "LIMIT 100000",
    )
    .await
}

/// The newest ticket attached to each of `incidents`: `(incident, ticket)`.
///
/// # Errors
/// [`StoreError`].
pub async fn by_incidents(
    ch: &ClickHouse,
    incidents: &[Uuid],
) -> Result<Vec<(Uuid, Ticket)>, StoreError> {
    if incidents.is_empty() {
        return Ok(Vec::new());
    }
    #[derive(Deserialize)]
    struct Link {
        incident_id: Uuid,
        ticket_id: Uuid,
    }
    let list: Vec<String> = incidents.iter().map(|i| format!("toUUID('{i}')")).collect();
    let links: Vec<Link> = ch
        .query_rows(&format!(
            "SELECT DISTINCT incident_id, ticket_id \
             FROM {}.ticket_incidents WHERE incident_id IN ({})",
            ch.database(),
            list.join(",")
        ))
        .await?;
    let ids: Vec<Uuid> = links.iter().map(|l| l.ticket_id).collect();
    let tickets = get_many(ch, &ids).await?;
    let mut out: Vec<(Uuid, Ticket)> = Vec::new();
    for l in links {
        if let Some(t) = tickets.iter().find(|t| t.id == l.ticket_id) {
            match out.iter_mut().find(|(i, _)| *i == l.incident_id) {
                Some((_, cur)) if cur.opened_us < t.opened_us => *cur = t.clone(),
                Some(_) => {}
                None => out.push((l.incident_id, t.clone())),
            }
        }
    }
    Ok(out)
}

/// The newest ticket of each `(owner_agency, rule, dedup_key)`.
///
/// # Errors
/// [`StoreError`].
pub async fn latest_by_key(
    ch: &ClickHouse,
    keys: &[(String, String, String)],
) -> Result<Vec<Ticket>, StoreError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let list: Vec<String> = keys
        .iter()
        .map(|(a, r, k)| format!("({},{},{})", quote(a), quote(r), quote(k)))
        .collect();
    let mut all = read(
        ch,
        &format!(
            "WHERE (owner_agency, rule, dedup_key) IN ({})",
            list.join(",")
        ),
        "",
    )
    .await?;
    all.sort_by_key(|t| std::cmp::Reverse(t.opened_us));
    let mut out: Vec<Ticket> = Vec::new();
    for t in all {
        if !out.iter().any(|o| {
            o.owner_agency == t.owner_agency && o.rule == t.rule && o.dedup_key == t.dedup_key
        }) {
            out.push(t);
        }
    }
    Ok(out)
}

/// One event of a ticket's history.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    /// Event ID.
    pub event_id: String,
    /// Sequence number.
    pub seq: u32,
    /// RFC 3339 time.
    pub at: String,
    /// What happened.
    pub action: String,
    /// Who.
    pub actor: String,
    /// The actor's role.
    pub actor_role: String,
    /// Comment or note.
    pub comment: String,
    /// Status after.
    pub status: String,
    /// Responsible agency after.
    pub agency: String,
    /// State before (JSON text).
    pub before: String,
    /// State after (JSON text).
    pub after: String,
    /// The request that caused it (empty for system events).
    pub request_id: String,
}

/// A ticket's events in order.
///
/// # Errors
/// [`StoreError`].
pub async fn history(ch: &ClickHouse, id: &Uuid) -> Result<Vec<HistoryEntry>, StoreError> {
    #[derive(Deserialize)]
    struct Row {
        event_id: String,
        seq: u32,
        at_us: i64,
        action: String,
        actor: String,
        actor_role: String,
        comment: String,
        status: String,
        agency: String,
        before: String,
        after: String,
        request_id: String,
    }
    let rows: Vec<Row> = ch
        .query_rows(&format!(
            "SELECT event_id, seq, at_us, action, actor, actor_role, comment, \
             status, agency, before, after, request_id FROM {}.ticket_events FINAL \
             WHERE ticket_id = toUUID('{id}') ORDER BY seq, at_us, event_id LIMIT 10000",
            ch.database()
        ))
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| HistoryEntry {
            event_id: r.event_id,
            seq: r.seq,
            at: crate::api::rfc3339(r.at_us),
            action: r.action,
            actor: r.actor,
            actor_role: r.actor_role,
            comment: r.comment,
            status: r.status,
            agency: r.agency,
            before: r.before,
            after: r.after,
            request_id: r.request_id,
        })
        .collect())
}
