//! HTTP API (axum): routes, shared state, the bearer-token extractor and overload handling.
//!
//! Routes: `POST /api/v1/alerts` (sensor), `GET /api/v1/incidents` (analyst, responder,
//! admin), `GET /healthz`, `GET /metrics`. Every error answers JSON via [`ApiError`].
//! Overload: a concurrency limit with load shedding answers `503` + `Retry-After` when
//! `max_concurrent_requests` are in flight; the writer's queue answers `429` when full.

pub mod alerts;
pub mod error;
pub mod incidents;
pub mod tls;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
pub use error::ApiError;

use crate::auth::{Authenticator, Principal};
use crate::config::IngestConfig;
use crate::metrics::Metrics;
use crate::store::ClickHouse;
use crate::writer::WriterHandle;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Token lookups.
    pub auth: Arc<Authenticator>,
    /// The writer (absent until the schema is ready).
    pub writer: Arc<tokio::sync::OnceCell<WriterHandle>>,
    /// ClickHouse, for reads.
    pub ch: ClickHouse,
    /// Ingest limits.
    pub ingest: Arc<IngestConfig>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Set once migrations ran.
    pub ready: Arc<AtomicBool>,
}

/// The authenticated caller of a request (extracted from `Authorization: Bearer ...`
/// before the body is read).
#[derive(Debug, Clone)]
pub struct Auth(pub Principal);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(ApiError::unauthorized(
                "missing Authorization: Bearer <token>",
            ));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| ApiError::unauthorized("Authorization must be 'Bearer <token>'"))?;
        match state.auth.authenticate(token).await {
            Ok(Some(p)) => Ok(Self(p)),
            Ok(None) => Err(ApiError::unauthorized("unknown, revoked or expired token")),
            Err(e) => {
                tracing::warn!(error = %e, "token lookup failed");
                Err(ApiError::unavailable(
                    "cannot check the token: store unavailable",
                    state.ingest.retry_after_unavailable_secs,
                ))
            }
        }
    }
}

/// Builds the router with all layers.
pub fn router(state: AppState) -> Router {
    let limit = state.ingest.max_concurrent_requests;
    let retry = state.ingest.retry_after_unavailable_secs;
    let metrics = state.metrics.clone();
    let overload = tower::ServiceBuilder::new()
        .layer(HandleErrorLayer::new(move |err: tower::BoxError| {
            let metrics = metrics.clone();
            async move {
                Metrics::add(&metrics.requests_unavailable, 1);
                if err.is::<tower::load_shed::error::Overloaded>() {
                    ApiError::unavailable("too many requests in flight", retry)
                } else {
                    ApiError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal",
                        "internal error",
                    )
                }
            }
        }))
        .load_shed()
        .concurrency_limit(limit);
    Router::new()
        .route("/api/v1/alerts", post(alerts::post_alerts))
        .route("/api/v1/incidents", get(incidents::list_incidents))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .layer(axum::extract::DefaultBodyLimit::max(
            state.ingest.max_body_bytes,
        ))
        .layer(overload)
        .with_state(state)
}

async fn healthz(State(state): State<AppState>) -> Response {
    let up = state.writer.get().is_some_and(WriterHandle::clickhouse_up);
    if state.ready.load(Ordering::Relaxed) {
        (
            StatusCode::OK,
            axum::Json(serde_json::json!({"status": "ok", "schema": "ready", "clickhouse": if up {"up"} else {"down"}})),
        )
            .into_response()
    } else {
        ApiError::unavailable("schema not ready yet", 1).into_response()
    }
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}
