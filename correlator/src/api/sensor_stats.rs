//! `POST /api/v1/sensor-stats`: NDJSON of the sensors' EVE `stats` records (role sensor),
//! stored in `sensor_stats` for the sensor operations dashboard.
//!
//! Answers `200 {"accepted":N,"rejected":[{"line":N,"error":"..."}]}` once stored; `422`
//! with the same body when no line was valid; `401`, `403`, `413`; `503` with `Retry-After`
//! while ClickHouse is unreachable (the sensor sends the next record later; stats are
//! cumulative counters, so a lost record loses no information but resolution).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::{ApiError, AppState, Caller};
use crate::auth::Permission;
use crate::ingest::Rejected;
use crate::ingest::stats::parse_stats_body;

/// The answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StatsResponse {
    /// Records stored.
    pub accepted: usize,
    /// Bad lines.
    pub rejected: Vec<Rejected>,
}

/// `POST /api/v1/sensor-stats`: NDJSON of EVE `stats` records.
///
/// # Errors
/// [`ApiError`] as listed in the module header.
#[utoipa::path(post, path = "/api/v1/sensor-stats", tag = "alerts", security(("bearer" = [])),
    request_body(content = String, content_type = "application/x-ndjson", description = "One EVE stats record per line"),
    responses((status = 200, body = StatsResponse), (status = 422, body = StatsResponse),
              (status = 401, body = super::openapi::ErrorBody), (status = 503, body = super::openapi::ErrorBody)))]
pub async fn post_sensor_stats(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    // Refusals are audited like every other route's.
    caller.require(&state, Permission::IngestAlerts)?;
    let principal = caller.principal;
    let body = body.map_err(|rej| {
        if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                rej.body_text(),
            )
        } else {
            ApiError::bad_request("bad_body", rej.body_text())
        }
    })?;
    let now_s = time::OffsetDateTime::now_utc().unix_timestamp();
    let (rows, rejected) =
        parse_stats_body(&body, &principal.agency, now_s, state.ingest.max_line_bytes);
    let status = if rows.is_empty() && !rejected.is_empty() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    if !rows.is_empty() {
        state.ch.insert("sensor_stats", &rows).await.map_err(|e| {
            tracing::warn!(error = %e, "storing sensor stats");
            ApiError::unavailable(
                "store unavailable, retry later",
                state.ingest.retry_after_unavailable_secs,
            )
        })?;
    }
    Ok((
        status,
        Json(StatsResponse {
            accepted: rows.len(),
            rejected,
        }),
    )
        .into_response())
}
