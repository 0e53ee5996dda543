//! `POST /api/v1/alerts`: NDJSON (identity, gzip or zstd) of EVE alerts.
//!
//! Answers:
//! - `200 {"accepted":N,"duplicates":N,"rejected":[{"line":N,"error":"..."}],"rejected_total":N}`
//!   once the accepted alerts are in ClickHouse (bad lines listed, at most 1,000 of them);
//! - `422` with the same body when no line was valid;
//! - `400` (unreadable encoding), `401`, `403`, `413` (body, decoded body or line count);
//! - `429`/`503` with `Retry-After` when the writer is behind or ClickHouse is down:
//!   nothing of the request is stored then, and a retry is safe.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::{ApiError, AppState, Auth};
use crate::auth::Permission;
use crate::ingest::{
    BatchError, BodyError, Encoding, LineContext, Rejected, decode_body, parse_batch,
};
use crate::metrics::Metrics;
use crate::writer::SubmitError;

/// Most rejected lines listed in one answer.
pub const MAX_LISTED_REJECTIONS: usize = 1000;

/// The ingest answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IngestResponse {
    /// Alerts stored by this request.
    pub accepted: usize,
    /// Alerts that were already stored (or repeated in the body).
    pub duplicates: usize,
    /// Bad lines (first 1,000).
    pub rejected: Vec<Rejected>,
    /// All bad lines.
    pub rejected_total: usize,
}

/// `POST /api/v1/alerts`: NDJSON of EVE alerts (Tocsin or Suricata), optionally gzip/zstd.
///
/// # Errors
/// [`ApiError`] as listed in the module header.
#[utoipa::path(post, path = "/api/v1/alerts", tag = "alerts", security(("bearer" = [])),
    request_body(content = String, content_type = "application/x-ndjson", description = "One EVE alert record per line"),
    responses((status = 200, body = IngestResponse), (status = 422, body = IngestResponse),
              (status = 401, body = super::openapi::ErrorBody), (status = 413, body = super::openapi::ErrorBody),
              (status = 429, body = super::openapi::ErrorBody), (status = 503, body = super::openapi::ErrorBody)))]
pub async fn post_alerts(
    State(state): State<AppState>,
    Auth(principal): Auth,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let result = ingest(&state, &principal, &headers, body).await;
    let m = &state.metrics;
    match &result {
        Ok(_) => Metrics::add(&m.requests_ok, 1),
        Err(e) if e.status == StatusCode::TOO_MANY_REQUESTS => Metrics::add(&m.requests_busy, 1),
        Err(e) if e.status == StatusCode::SERVICE_UNAVAILABLE => {
            Metrics::add(&m.requests_unavailable, 1);
        }
        Err(_) => Metrics::add(&m.requests_client_error, 1),
    }
    result
}

async fn ingest(
    state: &AppState,
    principal: &crate::auth::Principal,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    if !principal.can(Permission::IngestAlerts) {
        return Err(ApiError::forbidden(
            "this token may not post alerts (needs role sensor)",
        ));
    }
    let cfg = &state.ingest;
    let body = body.map_err(|rej| {
        if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("request body exceeds {} bytes", cfg.max_body_bytes),
            )
        } else {
            ApiError::bad_request("bad_body", rej.body_text())
        }
    })?;
    let Some(writer) = state.writer.get().cloned() else {
        return Err(ApiError::unavailable(
            "schema not ready yet",
            cfg.retry_after_unavailable_secs,
        ));
    };
    if !writer.clickhouse_up() {
        return Err(ApiError::unavailable(
            "store unavailable, retry later",
            cfg.retry_after_unavailable_secs,
        ));
    }
    let encoding = Encoding::from_header(
        headers
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok()),
    )
    .map_err(|e| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_encoding",
            e.to_string(),
        )
    })?;
    let ctx = LineContext {
        agency: principal.agency.clone(),
        token_name: principal.name.clone(),
        now_us: i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000)
            .unwrap_or(0),
        max_future_skew_us: i64::try_from(cfg.max_future_skew.as_micros()).unwrap_or(i64::MAX),
        max_line_bytes: cfg.max_line_bytes,
    };
    let (max_decoded, max_lines) = (cfg.max_decoded_bytes, cfg.max_lines);
    // Decompression and JSON parsing are CPU work: keep them off the async workers.
    let parsed = tokio::task::spawn_blocking(move || {
        let decoded = decode_body(&body, encoding, max_decoded)?;
        parse_batch(&decoded, &ctx, max_lines).map_err(ParseFail::Batch)
    })
    .await
    .map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "parser task failed",
        )
    })?
    .map_err(|e| match e {
        ParseFail::Body(BodyError::TooLarge { max }) => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "decoded_body_too_large",
            format!("decoded body exceeds {max} bytes"),
        ),
        ParseFail::Body(other) => ApiError::bad_request("bad_encoding", other.to_string()),
        ParseFail::Batch(BatchError::TooManyLines { max }) => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_lines",
            format!("body has more than {max} lines; split the batch"),
        ),
    })?;
    let rejected_total = parsed.rejected.len();
    Metrics::add(&state.metrics.lines_rejected, rejected_total as u64);
    if rejected_total > 0 {
        tracing::debug!(sensor = %principal.name, rejected = rejected_total, first = ?parsed.rejected.first(), "rejected lines");
    }
    let alerts: Vec<_> = parsed.alerts.into_iter().map(|(_, a)| a).collect();
    let any_valid = !alerts.is_empty();
    let stored = writer.submit(alerts).await.map_err(|e| match e {
        SubmitError::Busy { .. } => ApiError::busy(e.to_string(), cfg.retry_after_busy_secs),
        SubmitError::Unavailable(_) | SubmitError::ShuttingDown => {
            ApiError::unavailable(e.to_string(), cfg.retry_after_unavailable_secs)
        }
    })?;
    let mut rejected = parsed.rejected;
    rejected.truncate(MAX_LISTED_REJECTIONS);
    let status = if !any_valid && rejected_total > 0 {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(IngestResponse {
            accepted: stored.accepted,
            duplicates: stored.duplicates,
            rejected,
            rejected_total,
        }),
    )
        .into_response())
}

enum ParseFail {
    Body(BodyError),
    Batch(BatchError),
}

impl From<BodyError> for ParseFail {
    fn from(e: BodyError) -> Self {
        Self::Body(e)
    }
}
