//! Ticket routes: list, get (with history), acknowledge, assign, comment, change status, bulk
//! acknowledge.
//!
//! Scope: a ticket is visible to a token whose agency subtree holds the ticket's owner
//! agency or its current (escalated-to) agency; anything else answers `404` exactly like a
//! ticket that does not exist. Actions need `act_on_tickets` (responder, admin). An illegal
//! transition answers `409` and changes nothing. Every change is one `INSERT` of ticket
//! events (state, history and audit at once); the answer is the ticket after the change.
//! List order: newest opened first, then ID; `next_cursor` continues strictly after the
//! last item, so pages neither repeat nor skip while tickets change.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::body::{JsonBody, OptionalBody};
use super::{ApiError, AppState, Caller};
use crate::agency::{Directory, subtree_sql};
use crate::auth::Permission;
use crate::store::ClickHouse;
use crate::tickets::store::{self, HistoryEntry, TicketQuery};
use crate::tickets::view::TicketItem;
use crate::tickets::{
    Change, ChangeError, Event, Status, Ticket, apply_change, make_event, now_us,
};
use crate::webhooks::deliveries_for;

/// Most tickets in one bulk acknowledge.
pub const MAX_BULK: usize = 500;

/// Query of `GET /api/v1/tickets`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Statuses, comma-separated (`new,acknowledged`); default all.
    pub status: Option<String>,
    /// Agency code: tickets owned by it or below it (must be within the token's scope).
    pub agency: Option<String>,
    /// Only this severity or more severe (1 = most severe).
    pub severity: Option<u8>,
    /// Only tickets attached to this incident.
    pub incident_id: Option<String>,
    /// Only this assignee.
    pub assignee: Option<String>,
    /// Opened at or after (RFC 3339).
    pub since: Option<String>,
    /// Opened before (RFC 3339).
    pub until: Option<String>,
    /// Page size, 1-1000 (default 100).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of tickets.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TicketPage {
    /// Tickets, newest opened first.
    pub items: Vec<TicketItem>,
    /// Cursor of the next page, `null` on the last.
    pub next_cursor: Option<String>,
}

/// A ticket with its history.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TicketDetail {
    /// The ticket.
    #[serde(flatten)]
    pub ticket: TicketItem,
    /// Its events, oldest first.
    pub history: Vec<HistoryEntry>,
}

/// Body of `acknowledge` (may be empty).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AckBody {
    /// Optional comment.
    #[serde(default)]
    pub comment: Option<String>,
}

/// Body of `assign`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    /// Person or team (1-128 characters).
    pub assignee: String,
    /// Optional comment.
    #[serde(default)]
    pub comment: Option<String>,
}

/// Body of `comment`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentBody {
    /// The comment (1-4096 bytes).
    pub text: String,
}

/// Body of `status`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusBody {
    /// Target status: `acknowledged`, `in_progress`, `resolved`, `closed`, `reopened`,
    /// `false_positive`.
    pub status: String,
    /// Optional comment.
    #[serde(default)]
    pub comment: Option<String>,
}

/// Body of the bulk acknowledge.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkAckBody {
    /// Ticket IDs (1-500).
    pub ids: Vec<String>,
    /// Optional comment for every ticket.
    #[serde(default)]
    pub comment: Option<String>,
}

/// Answer of the bulk acknowledge.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BulkAckAnswer {
    /// The tickets after acknowledgement, in request order.
    pub items: Vec<TicketItem>,
}

/// Parses an RFC 3339 query time to µs.
pub(crate) fn time_param(name: &'static str, v: Option<&String>) -> Result<Option<i64>, ApiError> {
    v.map(|s| {
        tocsin_eve::Timestamp::parse_eve(s)
            .map(|t| t.0)
            .map_err(|_| {
                ApiError::bad_request("bad_time", format!("{name} must be an RFC 3339 time"))
            })
    })
    .transpose()
}

/// The owner-scope SQL for `caller` and an optional `agency=` filter.
pub(crate) fn scope_sql(
    state: &AppState,
    caller: &Caller,
    dir: &Directory,
    column: &str,
    agency: Option<&String>,
) -> Result<String, ApiError> {
    match agency {
        Some(a) if !caller.sees(dir, a) => Err(caller.agency_denied(state, a)),
        Some(a) => Ok(subtree_sql(dir, column, a)),
        None => Ok(subtree_sql(dir, column, &caller.principal.agency)),
    }
}

fn visible(caller: &Caller, dir: &Directory, t: &Ticket) -> bool {
    caller.sees(dir, &t.owner_agency) || caller.sees(dir, &t.agency)
}

/// `GET /api/v1/tickets`.
///
/// # Errors
/// `400` bad parameters, `401`, `403`, `503`.
#[utoipa::path(get, path = "/api/v1/tickets", tag = "tickets", params(ListParams),
    security(("bearer" = [])),
    responses((status = 200, body = TicketPage), (status = 400, body = super::openapi::ErrorBody),
              (status = 401, body = super::openapi::ErrorBody), (status = 403, body = super::openapi::ErrorBody)))]
pub async fn list_tickets(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<TicketPage>, ApiError> {
    caller.require(&state, Permission::ReadTickets)?;
    let Query(p) = params.map_err(|e| ApiError::bad_request("bad_query", e.body_text()))?;
    let limit = super::page_limit(p.limit)?;
    let mut statuses = Vec::new();
    for s in p
        .status
        .iter()
        .flat_map(|s| s.split(','))
        .filter(|s| !s.is_empty())
    {
        statuses.push(Status::parse(s.trim()).ok_or_else(|| {
            ApiError::bad_request(
                "bad_status",
                format!(
                    "unknown status '{}'",
                    s.chars().take(32).collect::<String>()
                ),
            )
        })?);
    }
    let before = match &p.cursor {
        Some(c) => Some(super::parse_cursor(c)?),
        None => None,
    };
    let incident =
        match &p.incident_id {
            Some(i) => Some(Uuid::parse_str(i).map_err(|_| {
                ApiError::bad_request("bad_incident_id", "incident_id must be a UUID")
            })?),
            None => None,
        };
    let dir = state.dir.get();
    let scope = scope_sql(&state, &caller, &dir, "owner_agency", p.agency.as_ref())?;
    let q = TicketQuery {
        scope_sql: scope,
        statuses,
        max_severity: p.severity,
        incident,
        assignee: p.assignee.clone(),
        since_us: time_param("since", p.since.as_ref())?,
        until_us: time_param("until", p.until.as_ref())?,
        before,
        limit,
    };
    let rows = store::list(&state.ch, &q)
        .await
        .map_err(|e| ApiError::store(&e))?;
    let next_cursor = (rows.len() == usize::try_from(limit).unwrap_or(usize::MAX))
        .then(|| rows.last().map(|t| super::encode_cursor(t.opened_us, t.id)))
        .flatten();
    Ok(Json(TicketPage {
        items: rows.iter().map(TicketItem::from).collect(),
        next_cursor,
    }))
}

async fn load_visible(state: &AppState, caller: &Caller, id: &str) -> Result<Ticket, ApiError> {
    let Ok(uuid) = Uuid::parse_str(id) else {
        return Err(ApiError::not_found("ticket"));
    };
    let t = store::get(&state.ch, &uuid)
        .await
        .map_err(|e| ApiError::store(&e))?;
    let dir = state.dir.get();
    match t {
        Some(t) if visible(caller, &dir, &t) => Ok(t),
        Some(t) => Err(caller.hidden(state, "ticket", id, &t.owner_agency)),
        None => Err(ApiError::not_found("ticket")),
    }
}

/// `GET /api/v1/tickets/{id}`.
///
/// # Errors
/// `401`, `403`, `404`, `503`.
#[utoipa::path(get, path = "/api/v1/tickets/{id}", tag = "tickets",
    params(("id" = String, Path, description = "Ticket ID")), security(("bearer" = [])),
    responses((status = 200, body = TicketDetail), (status = 404, body = super::openapi::ErrorBody)))]
pub async fn get_ticket(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TicketDetail>, ApiError> {
    caller.require(&state, Permission::ReadTickets)?;
    let t = load_visible(&state, &caller, &id).await?;
    let history = store::history(&state.ch, &t.id)
        .await
        .map_err(|e| ApiError::store(&e))?;
    Ok(Json(TicketDetail {
        ticket: TicketItem::from(&t),
        history,
    }))
}

async fn incident_alerts(ch: &ClickHouse, id: &Uuid) -> u64 {
    #[derive(Deserialize)]
    struct N {
        n: u64,
    }
    ch.query_rows::<N>(&format!(
        "SELECT alert_count AS n FROM {}.incidents FINAL WHERE id = toUUID('{id}')",
        ch.database()
    ))
    .await
    .ok()
    .and_then(|r| r.into_iter().map(|n| n.n).max())
    .unwrap_or(0)
}

fn change_error(state: &AppState, caller: &Caller, t: &Ticket, e: &ChangeError) -> ApiError {
    match e {
        ChangeError::Illegal { .. } => {
            state.audit.record(crate::audit::AuditEntry {
                agency: t.owner_agency.clone(),
                object_type: "ticket".into(),
                object_id: t.id.to_string(),
                incident_id: t.incident_id,
                before: t.status.as_str().to_owned(),
                detail: e.to_string(),
                ..caller.entry("ticket.rejected", "denied", StatusCode::CONFLICT)
            });
            ApiError::conflict(e.to_string())
        }
        ChangeError::Invalid(m) => ApiError::bad_request("bad_request", m.clone()),
    }
}

/// Stores events and records webhook deliveries for them (the ticket worker sends them).
async fn commit(state: &AppState, events: &[Event]) -> Result<(), ApiError> {
    store::insert_events(&state.ch, events)
        .await
        .map_err(|e| ApiError::store(&e))?;
    let ds = deliveries_for(events, &state.dir.get(), now_us());
    if !ds.is_empty()
        && let Err(e) = state.ch.insert("webhook_deliveries", &ds).await
    {
        tracing::warn!(error = %e, "recording webhook deliveries failed");
    }
    Ok(())
}

async fn act(
    state: &AppState,
    caller: &Caller,
    id: &str,
    change: Change,
    comment: &str,
) -> Result<Json<TicketItem>, ApiError> {
    caller.require(state, Permission::ActOnTickets)?;
    let Ok(uuid) = Uuid::parse_str(id) else {
        return Err(ApiError::not_found("ticket"));
    };
    let _guard = state.locks.lock(&uuid).await;
    let t = load_visible(state, caller, id).await?;
    let dir = state.dir.get();
    let alerts = match change {
        Change::Status(Status::Resolved | Status::FalsePositive) => {
            incident_alerts(&state.ch, &t.incident_id).await
        }
        _ => 0,
    };
    let now = now_us();
    let (action, after) = apply_change(&t, &change, comment, now, &dir, alerts)
        .map_err(|e| change_error(state, caller, &t, &e))?;
    let event = make_event(Some(&t), after, action, &caller.actor(), comment, now, None);
    let item = TicketItem::from(&event.ticket);
    commit(state, &[event]).await?;
    Ok(Json(item))
}

/// `POST /api/v1/tickets/{id}/acknowledge`.
///
/// # Errors
/// `400`, `401`, `403`, `404`, `409`, `413`, `503`.
#[utoipa::path(post, path = "/api/v1/tickets/{id}/acknowledge", tag = "tickets",
    params(("id" = String, Path, description = "Ticket ID")), request_body(content = AckBody, description = "optional"),
    security(("bearer" = [])),
    responses((status = 200, body = TicketItem), (status = 404, body = super::openapi::ErrorBody),
              (status = 409, body = super::openapi::ErrorBody)))]
pub async fn acknowledge(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    OptionalBody(body): OptionalBody<AckBody>,
) -> Result<Json<TicketItem>, ApiError> {
    act(
        &state,
        &caller,
        &id,
        Change::Status(Status::Acknowledged),
        body.comment.as_deref().unwrap_or(""),
    )
    .await
}

/// `POST /api/v1/tickets/{id}/assign`.
///
/// # Errors
/// `400`, `401`, `403`, `404`, `409` (closed), `413`, `503`.
#[utoipa::path(post, path = "/api/v1/tickets/{id}/assign", tag = "tickets",
    params(("id" = String, Path, description = "Ticket ID")), request_body = AssignBody,
    security(("bearer" = [])),
    responses((status = 200, body = TicketItem), (status = 404, body = super::openapi::ErrorBody),
              (status = 409, body = super::openapi::ErrorBody)))]
pub async fn assign(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<AssignBody>,
) -> Result<Json<TicketItem>, ApiError> {
    act(
        &state,
        &caller,
        &id,
        Change::Assign(body.assignee),
        body.comment.as_deref().unwrap_or(""),
    )
    .await
}

/// `POST /api/v1/tickets/{id}/comment`.
///
/// # Errors
/// `400`, `401`, `403`, `404`, `413`, `503`.
#[utoipa::path(post, path = "/api/v1/tickets/{id}/comment", tag = "tickets",
    params(("id" = String, Path, description = "Ticket ID")), request_body = CommentBody,
    security(("bearer" = [])),
    responses((status = 200, body = TicketItem), (status = 404, body = super::openapi::ErrorBody)))]
pub async fn comment(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<CommentBody>,
) -> Result<Json<TicketItem>, ApiError> {
    act(&state, &caller, &id, Change::Comment, &body.text).await
}

/// `POST /api/v1/tickets/{id}/status`.
///
/// # Errors
/// `400` (unknown status), `401`, `403`, `404`, `409`, `413`, `503`.
#[utoipa::path(post, path = "/api/v1/tickets/{id}/status", tag = "tickets",
    params(("id" = String, Path, description = "Ticket ID")), request_body = StatusBody,
    security(("bearer" = [])),
    responses((status = 200, body = TicketItem), (status = 404, body = super::openapi::ErrorBody),
              (status = 409, body = super::openapi::ErrorBody)))]
pub async fn set_status(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<StatusBody>,
) -> Result<Json<TicketItem>, ApiError> {
    let to = Status::parse(&body.status).ok_or_else(|| {
        ApiError::bad_request(
            "bad_status",
            format!(
                "unknown status '{}'",
                body.status.chars().take(32).collect::<String>()
            ),
        )
    })?;
    if to == Status::New {
        return Err(ApiError::conflict("a ticket cannot go back to new"));
    }
    act(
        &state,
        &caller,
        &id,
        Change::Status(to),
        body.comment.as_deref().unwrap_or(""),
    )
    .await
}

/// `POST /api/v1/tickets/acknowledge`: all or nothing. Any ID unknown or outside the scope
/// (`404`) or not acknowledgeable (`409`) fails the whole request and changes nothing.
///
/// # Errors
/// `400`, `401`, `403`, `404`, `409`, `413`, `503`.
#[utoipa::path(post, path = "/api/v1/tickets/acknowledge", tag = "tickets", request_body = BulkAckBody,
    security(("bearer" = [])),
    responses((status = 200, body = BulkAckAnswer), (status = 404, body = super::openapi::ErrorBody),
              (status = 409, body = super::openapi::ErrorBody)))]
pub async fn bulk_acknowledge(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<BulkAckBody>,
) -> Result<Json<BulkAckAnswer>, ApiError> {
    caller.require(&state, Permission::ActOnTickets)?;
    if body.ids.is_empty() || body.ids.len() > MAX_BULK {
        return Err(ApiError::bad_request(
            "bad_ids",
            format!("ids must list 1-{MAX_BULK} tickets"),
        ));
    }
    let mut ids = Vec::with_capacity(body.ids.len());
    for s in &body.ids {
        let id = Uuid::parse_str(s).map_err(|_| ApiError::not_found("ticket"))?;
        if ids.contains(&id) {
            return Err(ApiError::bad_request(
                "bad_ids",
                format!("ticket {id} is listed twice"),
            ));
        }
        ids.push(id);
    }
    let _guards = state.locks.lock_many(&ids).await;
    let found = store::get_many(&state.ch, &ids)
        .await
        .map_err(|e| ApiError::store(&e))?;
    let dir = state.dir.get();
    let comment = body.comment.as_deref().unwrap_or("");
    let now = now_us();
    let mut events = Vec::with_capacity(ids.len());
    for id in &ids {
        let Some(t) = found.iter().find(|t| t.id == *id) else {
            return Err(ApiError::not_found("ticket"));
        };
        if !visible(&caller, &dir, t) {
            return Err(caller.hidden(&state, "ticket", &id.to_string(), &t.owner_agency));
        }
        let (action, after) = apply_change(
            t,
            &Change::Status(Status::Acknowledged),
            comment,
            now,
            &dir,
            0,
        )
        .map_err(|e| {
            let mut err = change_error(&state, &caller, t, &e);
            err.message = format!("ticket {id}: {}", err.message);
            err
        })?;
        events.push(make_event(
            Some(t),
            after,
            action,
            &caller.actor(),
            comment,
            now,
            None,
        ));
    }
    let items = events.iter().map(|e| TicketItem::from(&e.ticket)).collect();
    commit(&state, &events).await?;
    Ok(Json(BulkAckAnswer { items }))
}
