//! `GET /api/v1/webhooks/deliveries`: the webhook delivery log for admins (deliveries of
//! webhooks of agencies in the admin's subtree), newest first.

use axum::Json;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};

use super::tickets::scope_sql;
use super::{ApiError, AppState, Caller};
use crate::auth::Permission;

/// Query parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Only deliveries of this agency's webhooks or below.
    pub agency: Option<String>,
    /// `pending`, `delivered` or `failed`.
    pub status: Option<String>,
    /// Only deliveries about this ticket.
    pub ticket_id: Option<String>,
    /// At most this many (1-1000, default 100).
    pub limit: Option<u32>,
}

/// One delivery.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeliveryItem {
    /// Delivery ID (also sent as `X-Tocsin-Delivery`).
    pub delivery_id: String,
    /// Webhook (`CODE#N`).
    pub webhook_id: String,
    /// The webhook's agency.
    pub agency: String,
    /// Event name.
    pub event: String,
    /// Ticket.
    pub ticket_id: String,
    /// `pending`, `delivered`, `failed`.
    pub status: String,
    /// Attempts made.
    pub attempts: u16,
    /// Last HTTP status (0: none).
    pub last_http_status: u16,
    /// Last error.
    pub last_error: String,
}

/// The answer.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeliveryList {
    /// Deliveries, newest first.
    pub items: Vec<DeliveryItem>,
}

/// The handler.
///
/// # Errors
/// `400`, `401`, `403`, `503`.
#[utoipa::path(get, path = "/api/v1/webhooks/deliveries", tag = "webhooks", params(Params), security(("bearer" = [])),
    responses((status = 200, body = DeliveryList), (status = 403, body = super::openapi::ErrorBody)))]
pub async fn list_deliveries(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<DeliveryList>, ApiError> {
    caller.require(&state, Permission::ReadWebhookLog)?;
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
    match p.status.as_deref() {
        Some(s @ ("pending" | "delivered" | "failed")) => conds.push(format!("status = '{s}'")),
        Some(_) => {
            return Err(ApiError::bad_request(
                "bad_status",
                "status must be pending, delivered or failed",
            ));
        }
        None => {}
    }
    if let Some(t) = &p.ticket_id {
        let t = uuid::Uuid::parse_str(t)
            .map_err(|_| ApiError::bad_request("bad_ticket_id", "ticket_id must be a UUID"))?;
        conds.push(format!("ticket_id = toUUID('{t}')"));
    }
    let items: Vec<DeliveryItem> = state
        .ch
        .query_rows(&format!(
            "SELECT delivery_id, webhook_id, agency, event, ticket_id, \
             status, attempts, last_http_status, last_error FROM {}.webhook_deliveries FINAL WHERE {} \
             ORDER BY created_at DESC, delivery_id LIMIT {limit}",
            state.ch.database(),
            conds.join(" AND ")
        ))
        .await
        .map_err(|e| ApiError::store(&e))?;
    Ok(Json(DeliveryList { items }))
}
