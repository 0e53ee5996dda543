//! `GET /api/v1/audit?since=...`: the audit log for admins, limited to entries filed under
//! an agency in the admin's subtree (the root's admins see all). Oldest first from `since`
//! (default: the last 24 hours), keyset-paginated by (`at_us`, `id`).

use axum::Json;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};

use super::tickets::{scope_sql, time_param};
use super::{ApiError, AppState, Caller, rfc3339};
use crate::auth::Permission;
use crate::store::quote;

/// Query parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// From this RFC 3339 time (default: 24 hours ago).
    pub since: Option<String>,
    /// Before this RFC 3339 time.
    pub until: Option<String>,
    /// Only entries filed under this agency or below (within the token's scope).
    pub agency: Option<String>,
    /// Only this action (`ticket.acknowledged`, `api.denied`, ...).
    pub action: Option<String>,
    /// Only this actor (token name).
    pub actor: Option<String>,
    /// `ok` or `denied`.
    pub outcome: Option<String>,
    /// Only entries about this object ID (a ticket ID, ...).
    pub object_id: Option<String>,
    /// Page size (1-1000, default 100).
    pub limit: Option<u32>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
}

/// One entry.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditItem {
    /// Entry ID.
    pub id: String,
    /// When (RFC 3339).
    pub at: String,
    /// Who (token name; `anonymous` without a valid token).
    pub actor: String,
    /// The actor's role.
    pub actor_role: String,
    /// The actor's agency.
    pub actor_agency: String,
    /// The agency the entry is filed under.
    pub agency: String,
    /// What was done or tried.
    pub action: String,
    /// Object kind.
    pub object_type: String,
    /// Object ID.
    pub object_id: String,
    /// Incident concerned (nil UUID when none).
    pub incident_id: String,
    /// State before.
    pub before: String,
    /// State after.
    pub after: String,
    /// `ok` or `denied`.
    pub outcome: String,
    /// HTTP status answered.
    pub http_status: u16,
    /// Request ID.
    pub request_id: String,
    /// Details.
    pub detail: String,
}

/// A page.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditPage {
    /// Entries, oldest first.
    pub items: Vec<AuditItem>,
    /// Cursor of the next page.
    pub next_cursor: Option<String>,
}

/// The handler.
///
/// # Errors
/// `400`, `401`, `403` (not an admin, or an agency outside the scope), `503`.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(Params), security(("bearer" = [])),
    responses((status = 200, body = AuditPage), (status = 403, body = super::openapi::ErrorBody)))]
pub async fn list_audit(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    caller.require(&state, Permission::ReadAudit)?;
    let Query(p) = params.map_err(|e| ApiError::bad_request("bad_query", e.body_text()))?;
    let limit = super::page_limit(p.limit)?;
    let dir = state.dir.get();
    let mut conds = vec![scope_sql(
        &state,
        &caller,
        &dir,
        "agency",
        p.agency.as_ref(),
    )?];
    let since = time_param("since", p.since.as_ref())?
        .unwrap_or_else(|| crate::tickets::now_us() - 86_400_000_000);
    conds.push(format!("at_us >= {since}"));
    if let Some(u) = time_param("until", p.until.as_ref())? {
        conds.push(format!("at_us < {u}"));
    }
    for (col, v) in [
        ("action", &p.action),
        ("actor", &p.actor),
        ("outcome", &p.outcome),
        ("object_id", &p.object_id),
    ] {
        if let Some(v) = v {
            conds.push(format!("{col} = {}", quote(v)));
        }
    }
    if let Some(c) = &p.cursor {
        let (us, id) = super::parse_cursor(c)?;
        conds.push(format!(
            "(at_us > {us} OR (at_us = {us} AND toString(id) > '{id}'))"
        ));
    }
    #[derive(Deserialize)]
    struct Row {
        id: String,
        at_us: i64,
        actor: String,
        actor_role: String,
        actor_agency: String,
        agency: String,
        action: String,
        object_type: String,
        object_id: String,
        incident_id: String,
        before: String,
        after: String,
        outcome: String,
        http_status: u16,
        request_id: String,
        detail: String,
    }
    let rows: Vec<Row> = state
        .ch
        .query_rows(&format!(
            "SELECT id, at_us, actor, actor_role, actor_agency, agency, action, object_type, \
             object_id, incident_id, before, after, outcome, http_status, request_id, \
             detail FROM {}.audit FINAL WHERE {} ORDER BY at_us, toString(id) LIMIT {limit}",
            state.ch.database(),
            conds.join(" AND ")
        ))
        .await
        .map_err(|e| ApiError::store(&e))?;
    let next_cursor = (rows.len() == usize::try_from(limit).unwrap_or(usize::MAX))
        .then(|| rows.last().map(|r| super::encode_cursor(r.at_us, &r.id)))
        .flatten();
    Ok(Json(AuditPage {
        items: rows
            .into_iter()
            .map(|r| AuditItem {
                id: r.id,
                at: rfc3339(r.at_us),
                actor: r.actor,
                actor_role: r.actor_role,
                actor_agency: r.actor_agency,
                agency: r.agency,
                action: r.action,
                object_type: r.object_type,
                object_id: r.object_id,
                incident_id: r.incident_id,
                before: r.before,
                after: r.after,
                outcome: r.outcome,
                http_status: r.http_status,
                request_id: r.request_id,
                detail: r.detail,
            })
            .collect(),
        next_cursor,
    }))
}
