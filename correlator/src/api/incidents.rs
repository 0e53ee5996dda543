//! `GET /api/v1/incidents?agency=CODE&since=RFC3339&limit=N&cursor=C`.
//!
//! Newest first (by first alert, then ID), keyset-paginated: `next_cursor` is opaque
//! (URL-safe base64 of `first_seen_us:id`) and `null` on the last page. Non-admin tokens
//! see their agency's subtree only; asking for another agency is `403`.

use axum::Json;
use axum::extract::{Query, State};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use tocsin_eve::Timestamp;

use super::{ApiError, AppState, Auth};
use crate::auth::{Permission, Role};
use crate::store::IncidentQuery;
use crate::store::rows::IncidentRow;

/// Largest page.
pub const MAX_LIMIT: u32 = 1000;

/// Query parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Agency code (default: the token's agency subtree; all for admins).
    pub agency: Option<String>,
    /// Only incidents with alerts at or after this RFC 3339 time.
    pub since: Option<String>,
    /// Page size (1..=1000, default 100).
    pub limit: Option<u32>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
}

/// One incident in the answer.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct IncidentItem {
    /// UUIDv5.
    pub id: String,
    /// Owning agency.
    pub agency: String,
    /// Member alerts.
    pub alert_count: u64,
    /// First member's time (RFC 3339, UTC, microseconds).
    pub first_seen: String,
    /// Last member's time.
    pub last_seen: String,
    /// Signature IDs (capped).
    pub signature_ids: Vec<u32>,
    /// Most severe member's severity (1 = most severe).
    pub severity: u8,
    /// `open` or `closed`.
    pub status: String,
    /// `dedup`, `threshold`, `distinct_count` or `sequence`.
    pub kind: String,
    /// Rule or dedup override name.
    pub rule: String,
    /// Key text.
    pub key: String,
    /// Signatures (capped).
    pub signatures: Vec<String>,
    /// Sensors (capped).
    pub sensors: Vec<String>,
    /// Source addresses (capped).
    pub src_ips: Vec<String>,
    /// Destination addresses (capped).
    pub dest_ips: Vec<String>,
}

/// A page.
#[derive(Debug, Serialize, Deserialize)]
pub struct Page {
    /// Items.
    pub items: Vec<IncidentItem>,
    /// Cursor of the next page.
    pub next_cursor: Option<String>,
}

fn rfc3339(us: i64) -> String {
    let t = Timestamp(us).to_string(); // 2010-07-14T17:40:43.727475+0000
    match t.strip_suffix("+0000") {
        Some(base) => format!("{base}Z"),
        None => t,
    }
}

impl From<IncidentRow> for IncidentItem {
    fn from(r: IncidentRow) -> Self {
        Self {
            id: r.id,
            agency: r.agency,
            alert_count: r.alert_count,
            first_seen: rfc3339(r.first_seen_us),
            last_seen: rfc3339(r.last_seen_us),
            signature_ids: r.signature_ids,
            severity: r.severity,
            status: r.status,
            kind: r.kind,
            rule: r.rule,
            key: r.dedup_key,
            signatures: r.signatures,
            sensors: r.sensors,
            src_ips: r.src_ips,
            dest_ips: r.dest_ips,
        }
    }
}

fn decode_cursor(c: &str) -> Option<(i64, String)> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (us, id) = text.split_once(':')?;
    let id = uuid::Uuid::parse_str(id).ok()?;
    Some((us.parse().ok()?, id.to_string()))
}

fn encode_cursor(first_seen_us: i64, id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{first_seen_us}:{id}"))
}

/// The handler.
///
/// # Errors
/// `400` for bad parameters, `401`, `403`, `503` when ClickHouse fails.
pub async fn list_incidents(
    State(state): State<AppState>,
    Auth(principal): Auth,
    params: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Page>, ApiError> {
    if !principal.can(Permission::ReadIncidents) {
        return Err(ApiError::forbidden("this token may not read incidents"));
    }
    let Query(p) = params.map_err(|e| ApiError::bad_request("bad_query", e.body_text()))?;
    let limit = p.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::bad_request(
            "bad_limit",
            format!("limit must be 1..={MAX_LIMIT}"),
        ));
    }
    let since_s = match &p.since {
        Some(s) => Some(
            Timestamp::parse_eve(s)
                .map_err(|_| ApiError::bad_request("bad_since", "since must be an RFC 3339 time"))?
                .secs(),
        ),
        None => None,
    };
    let before = match &p.cursor {
        Some(c) => Some(decode_cursor(c).ok_or_else(|| {
            ApiError::bad_request("bad_cursor", "cursor is not one this API issued")
        })?),
        None => None,
    };
    let scope = match (&p.agency, principal.role) {
        (Some(a), _) if !principal.sees_agency(a) => {
            return Err(ApiError::forbidden(format!(
                "token is not scoped to agency '{}'",
                a.chars().take(64).collect::<String>()
            )));
        }
        (Some(a), _) => Some((a.clone(), false)),
        (None, Role::Admin) => None,
        (None, _) => Some((principal.agency.clone(), true)),
    };
    let q = IncidentQuery {
        agency: scope.as_ref().map(|(a, _)| a.clone()),
        subtree: scope.is_some_and(|(_, sub)| sub),
        since_s,
        before,
        limit,
    };
    let rows = state.ch.list_incidents(&q).await.map_err(|e| {
        tracing::warn!(error = %e, "listing incidents failed");
        ApiError::unavailable(
            "store unavailable",
            state.ingest.retry_after_unavailable_secs,
        )
    })?;
    let next_cursor = if rows.len() == usize::try_from(limit).unwrap_or(usize::MAX) {
        rows.last().map(|r| encode_cursor(r.first_seen_us, &r.id))
    } else {
        None
    };
    Ok(Json(Page {
        items: rows.into_iter().map(IncidentItem::from).collect(),
        next_cursor,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trip_and_garbage() {
        let id = "6ba7b810-9dad-11d1-80b4-00c04fd430c8";
        let c = encode_cursor(1_279_129_243_727_475, id);
        assert_eq!(
            decode_cursor(&c),
            Some((1_279_129_243_727_475, id.to_owned()))
        );
        assert_eq!(decode_cursor("!!"), None);
        let sneaky = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("1:' OR 1=1");
        assert_eq!(decode_cursor(&sneaky), None);
    }

    #[test]
    fn times_are_rfc3339() {
        assert_eq!(
            rfc3339(1_279_129_243_727_475),
            "2010-07-14T17:40:43.727475Z"
        );
    }
}
