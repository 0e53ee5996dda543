//! HTTP API (axum): routes, shared state, the bearer-token extractor and overload handling.
//!
//! Routes (all under `/api/v1`, documented in `openapi.json`, served with a docs page at
//! `/api/v1/docs`): alerts (sensor), incidents, tickets and their actions, agencies, the
//! audit log and webhook deliveries; plus `GET /healthz` and `GET /metrics`. Every error
//! answers JSON via [`ApiError`]; every request gets an `x-request-id` (kept when the client
//! sends one) that the audit log records. Objects outside the caller's agency subtree
//! answer `404`, exactly like objects that do not exist; every denial is audited.
//! Overload: a concurrency limit with load shedding answers `503` + `Retry-After` when
//! `max_concurrent_requests` are in flight; the writer's queue answers `429` when full.

pub mod agencies;
pub mod alerts;
pub mod audit;
pub mod body;
pub mod error;
pub mod incidents;
pub mod openapi;
pub mod sensor_stats;
pub mod tickets;
pub mod tls;
pub mod webhooks;

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

use crate::agency::{DirHandle, Directory};
use crate::audit::{AuditEntry, AuditSink};
use crate::auth::{Authenticator, Permission, Principal};
use crate::config::IngestConfig;
use crate::metrics::Metrics;
use crate::store::ClickHouse;
use crate::tickets::TicketLocks;
use crate::writer::WriterHandle;

/// Largest body of the JSON (non-ingest) endpoints.
pub const MAX_JSON_BODY: usize = 64 * 1024;

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
    /// The agency directory.
    pub dir: DirHandle,
    /// Audit entries of denied requests.
    pub audit: AuditSink,
    /// Per-ticket serialization within this process.
    pub locks: Arc<TicketLocks>,
}

/// Largest page of any list endpoint.
pub const MAX_PAGE: u32 = 1000;

/// The `limit` query parameter of a list endpoint: 100 when absent, `400 bad_limit` outside
/// `1..=MAX_PAGE`.
///
/// # Errors
/// [`ApiError`] `bad_limit`.
pub fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    let limit = limit.unwrap_or(100);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::bad_request(
            "bad_limit",
            format!("limit must be 1..={MAX_PAGE}"),
        ));
    }
    Ok(limit)
}

/// A page cursor of the list endpoints: URL-safe base64 of `MICROS:UUID`, the sort key of
/// the page's last row and its ID (the tie-breaker).
#[must_use]
pub fn encode_cursor(us: i64, id: impl std::fmt::Display) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{us}:{id}"))
}

/// Reads a cursor made by [`encode_cursor`]; `None` for anything else (so nothing a client
/// writes into a cursor reaches SQL unparsed).
#[must_use]
pub fn decode_cursor(c: &str) -> Option<(i64, uuid::Uuid)> {
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (us, id) = text.split_once(':')?;
    Some((us.parse().ok()?, uuid::Uuid::parse_str(id).ok()?))
}

/// [`decode_cursor`] as the `cursor` query parameter: `400 bad_cursor` when it is not one
/// this API issued.
///
/// # Errors
/// [`ApiError`] `bad_cursor`.
pub fn parse_cursor(c: &str) -> Result<(i64, uuid::Uuid), ApiError> {
    decode_cursor(c)
        .ok_or_else(|| ApiError::bad_request("bad_cursor", "cursor is not one this API issued"))
}

/// `2010-07-14T17:40:43.727475Z` from microseconds since the epoch.
#[must_use]
pub fn rfc3339(us: i64) -> String {
    let t = tocsin_eve::Timestamp(us).to_string(); // 2010-07-14T17:40:43.727475+0000
    match t.strip_suffix("+0000") {
        Some(base) => format!("{base}Z"),
        None => t,
    }
}

/// The request's ID (`x-request-id`, set by the router).
#[must_use]
pub fn request_id(headers: &axum::http::HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(128).collect())
        .unwrap_or_default()
}

/// The caller and what a handler needs to judge and record its request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who.
    pub principal: Principal,
    /// `x-request-id`.
    pub request_id: String,
    /// `METHOD /path`.
    pub route: String,
}

impl Caller {
    /// An audit entry about this caller.
    #[must_use]
    pub fn entry(&self, action: &str, outcome: &str, status: StatusCode) -> AuditEntry {
        AuditEntry {
            actor: self.principal.name.clone(),
            actor_role: self.principal.role.as_str().to_owned(),
            actor_agency: self.principal.agency.clone(),
            agency: self.principal.agency.clone(),
            request_id: self.request_id.clone(),
            http_status: status.as_u16(),
            object_type: "route".into(),
            object_id: self.route.clone(),
            ..AuditEntry::new(crate::tickets::now_us(), action, outcome)
        }
    }

    /// The ticket actor for this caller.
    #[must_use]
    pub fn actor(&self) -> crate::tickets::Actor {
        crate::tickets::Actor {
            name: self.principal.name.clone(),
            role: self.principal.role.as_str().to_owned(),
            agency: self.principal.agency.clone(),
            request_id: self.request_id.clone(),
        }
    }

    /// Checks a permission; on refusal records the denial and answers `403`.
    ///
    /// # Errors
    /// `403`.
    pub fn require(&self, state: &AppState, perm: Permission) -> Result<(), ApiError> {
        if self.principal.can(perm) {
            return Ok(());
        }
        state.audit.record(AuditEntry {
            detail: format!(
                "role {} lacks {}",
                self.principal.role.as_str(),
                perm.as_str()
            ),
            ..self.entry("api.denied", "denied", StatusCode::FORBIDDEN)
        });
        Err(ApiError::forbidden(format!(
            "a {} token may not do this ({} needed)",
            self.principal.role.as_str(),
            perm.as_str()
        )))
    }

    /// Whether the caller sees `agency`.
    #[must_use]
    pub fn sees(&self, dir: &Directory, agency: &str) -> bool {
        self.principal.sees_agency(dir, agency)
    }

    /// Records that an object outside the caller's scope (owned by `agency`) was asked for
    /// and answers `404`, the same as for an object that does not exist. The entry is filed
    /// under the object's agency, so its admins see the attempt and the caller's do not
    /// learn of the object.
    #[must_use]
    pub fn hidden(&self, state: &AppState, kind: &str, id: &str, agency: &str) -> ApiError {
        state.audit.record(AuditEntry {
            agency: agency.to_owned(),
            object_type: kind.to_owned(),
            object_id: id.chars().take(64).collect(),
            detail: format!("{kind} outside the caller's agency subtree"),
            ..self.entry("api.denied", "denied", StatusCode::NOT_FOUND)
        });
        ApiError::not_found(kind)
    }

    /// `403` for an `agency=` filter outside the caller's scope (recorded).
    #[must_use]
    pub fn agency_denied(&self, state: &AppState, agency: &str) -> ApiError {
        state.audit.record(AuditEntry {
            object_type: "agency".into(),
            object_id: agency.chars().take(64).collect(),
            detail: "agency filter outside the caller's subtree".into(),
            ..self.entry("api.denied", "denied", StatusCode::FORBIDDEN)
        });
        ApiError::forbidden(format!(
            "token is not scoped to agency '{}'",
            agency.chars().take(64).collect::<String>()
        ))
    }
}

/// The authenticated caller of a request (extracted from `Authorization: Bearer ...`
/// before the body is read).
#[derive(Debug, Clone)]
pub struct Auth(pub Principal);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            record_unauthenticated(parts, state, "no Authorization header");
            return Err(ApiError::unauthorized(
                "missing Authorization: Bearer <token>",
            ));
        };
        let Some(token) = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
        else {
            record_unauthenticated(parts, state, "malformed Authorization header");
            return Err(ApiError::unauthorized(
                "Authorization must be 'Bearer <token>'",
            ));
        };
        match state.auth.authenticate(token).await {
            Ok(Some(p)) => Ok(Self(p)),
            Ok(None) => {
                record_unauthenticated(parts, state, "unknown, revoked or expired token");
                Err(ApiError::unauthorized("unknown, revoked or expired token"))
            }
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

fn record_unauthenticated(parts: &Parts, state: &AppState, why: &str) {
    state.audit.record_unauthenticated(AuditEntry {
        actor: "anonymous".into(),
        object_type: "route".into(),
        object_id: format!("{} {}", parts.method, parts.uri.path())
            .chars()
            .take(200)
            .collect(),
        http_status: 401,
        request_id: request_id(&parts.headers),
        detail: why.to_owned(),
        ..AuditEntry::new(crate::tickets::now_us(), "api.unauthenticated", "denied")
    });
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Auth(principal) = Auth::from_request_parts(parts, state).await?;
        Ok(Self {
            principal,
            request_id: request_id(&parts.headers),
            route: format!("{} {}", parts.method, parts.uri.path())
                .chars()
                .take(200)
                .collect(),
        })
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
    let small = || axum::extract::DefaultBodyLimit::max(MAX_JSON_BODY);
    let x_request_id = axum::http::HeaderName::from_static("x-request-id");
    Router::new()
        .route(
            "/api/v1/alerts",
            post(alerts::post_alerts).layer(axum::extract::DefaultBodyLimit::max(
                state.ingest.max_body_bytes,
            )),
        )
        .route(
            "/api/v1/sensor-stats",
            post(sensor_stats::post_sensor_stats).layer(small()),
        )
        .route("/api/v1/incidents", get(incidents::list_incidents))
        .route("/api/v1/incidents/{id}", get(incidents::get_incident))
        .route("/api/v1/tickets", get(tickets::list_tickets))
        .route(
            "/api/v1/tickets/acknowledge",
            post(tickets::bulk_acknowledge).layer(small()),
        )
        .route("/api/v1/tickets/{id}", get(tickets::get_ticket))
        .route(
            "/api/v1/tickets/{id}/acknowledge",
            post(tickets::acknowledge).layer(small()),
        )
        .route(
            "/api/v1/tickets/{id}/assign",
            post(tickets::assign).layer(small()),
        )
        .route(
            "/api/v1/tickets/{id}/comment",
            post(tickets::comment).layer(small()),
        )
        .route(
            "/api/v1/tickets/{id}/status",
            post(tickets::set_status).layer(small()),
        )
        .route("/api/v1/agencies", get(agencies::list_agencies))
        .route("/api/v1/audit", get(audit::list_audit))
        .route(
            "/api/v1/webhooks/deliveries",
            get(webhooks::list_deliveries),
        )
        .route("/api/v1/openapi.json", get(openapi::openapi_json))
        .route("/api/v1/docs", get(openapi::docs_page))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this route",
            )
        })
        .layer(small())
        .layer(overload)
        .layer(tower_http::request_id::PropagateRequestIdLayer::new(
            x_request_id.clone(),
        ))
        .layer(tower_http::request_id::SetRequestIdLayer::new(
            x_request_id,
            tower_http::request_id::MakeRequestUuid,
        ))
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
    state.metrics.audit_dropped.store(
        state.audit.dropped.load(Ordering::Relaxed),
        Ordering::Relaxed,
    );
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use base64::Engine as _;

    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_anything_else() {
        let id = uuid::Uuid::parse_str("6ba7b810-9dad-11d1-80b4-00c04fd430c8").unwrap();
        let c = encode_cursor(1_279_129_243_727_475, id);
        assert_eq!(decode_cursor(&c), Some((1_279_129_243_727_475, id)));
        assert_eq!(
            decode_cursor(&encode_cursor(17, uuid::Uuid::from_u128(42))),
            Some((17, uuid::Uuid::from_u128(42)))
        );
        assert_eq!(decode_cursor("!!"), None);
        assert_eq!(decode_cursor("%%%"), None);
        for evil in ["1:' OR 1=1", "1:' OR 1=1 --"] {
            let c = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(evil);
            assert_eq!(decode_cursor(&c), None);
            assert_eq!(
                parse_cursor(&c).unwrap_err().status,
                StatusCode::BAD_REQUEST
            );
        }
    }

    #[test]
    fn page_limits() {
        assert_eq!(page_limit(None).unwrap(), 100);
        assert_eq!(page_limit(Some(1000)).unwrap(), 1000);
        assert!(page_limit(Some(0)).is_err());
        assert!(page_limit(Some(1001)).is_err());
    }
}
