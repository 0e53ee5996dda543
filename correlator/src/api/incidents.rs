//! `GET /api/v1/incidents` (list and filter) and `GET /api/v1/incidents/{id}` (with member
//! alerts and tickets).
//!
//! Newest first (by first alert, then ID), keyset-paginated: `next_cursor` is opaque
//! (URL-safe base64 of `first_seen_us:id`) and `null` on the last page. Tokens see their
//! agency's subtree only (an incident belongs to the agency owning the attacked address);
//! an `agency=` outside it is `403`, an incident outside it is `404`.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use tocsin_eve::Timestamp;

use super::tickets::{scope_sql, time_param};
use super::{ApiError, AppState, Caller, rfc3339};
use crate::auth::Permission;
use crate::store::rows::IncidentRow;
use crate::store::{IncidentQuery, quote};
use crate::tickets::view::TicketItem;

/// Most member alerts in one answer.
pub const MAX_ALERTS: u32 = 1000;

/// Query parameters of the list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Agency code: its incidents and those below it (default: the token's subtree).
    pub agency: Option<String>,
    /// Only incidents with alerts at or after this RFC 3339 time.
    pub since: Option<String>,
    /// Only incidents that started before this RFC 3339 time.
    pub until: Option<String>,
    /// `open` or `closed`.
    pub status: Option<String>,
    /// Only this severity or more severe (1 = most severe).
    pub severity: Option<u8>,
    /// Only incidents with this signature ID.
    pub signature_id: Option<u32>,
    /// Only incidents involving this address (source or destination).
    pub ip: Option<String>,
    /// Page size (1..=1000, default 100).
    pub limit: Option<u32>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
}

/// One incident in the answer.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
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
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Page {
    /// Items.
    pub items: Vec<IncidentItem>,
    /// Cursor of the next page.
    pub next_cursor: Option<String>,
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

/// The list handler.
///
/// # Errors
/// `400` for bad parameters, `401`, `403`, `503` when ClickHouse fails.
#[utoipa::path(get, path = "/api/v1/incidents", tag = "incidents", params(Params), security(("bearer" = [])),
    responses((status = 200, body = Page), (status = 400, body = super::openapi::ErrorBody),
              (status = 401, body = super::openapi::ErrorBody), (status = 403, body = super::openapi::ErrorBody)))]
pub async fn list_incidents(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Page>, ApiError> {
    caller.require(&state, Permission::ReadIncidents)?;
    let Query(p) = params.map_err(|e| ApiError::bad_request("bad_query", e.body_text()))?;
    let limit = super::page_limit(p.limit)?;
    let since_s = match &p.since {
        Some(s) => Some(
            Timestamp::parse_eve(s)
                .map_err(|_| ApiError::bad_request("bad_since", "since must be an RFC 3339 time"))?
                .secs(),
        ),
        None => None,
    };
    let before = match &p.cursor {
        Some(c) => {
            let (us, id) = super::parse_cursor(c)?;
            Some((us, id.to_string()))
        }
        None => None,
    };
    let mut extra = Vec::new();
    if let Some(u) = time_param("until", p.until.as_ref())? {
        extra.push(format!("first_seen_us < {u}"));
    }
    match p.status.as_deref() {
        Some(s @ ("open" | "closed")) => extra.push(format!("status = '{s}'")),
        Some(_) => {
            return Err(ApiError::bad_request(
                "bad_status",
                "status must be open or closed",
            ));
        }
        None => {}
    }
    if let Some(s) = p.severity {
        extra.push(format!("severity <= {s}"));
    }
    if let Some(sid) = p.signature_id {
        extra.push(format!("has(signature_ids, toUInt32({sid}))"));
    }
    if let Some(ip) = &p.ip {
        let ip: std::net::IpAddr = ip
            .parse()
            .map_err(|_| ApiError::bad_request("bad_ip", "ip must be an IPv4 or IPv6 address"))?;
        let q = quote(&ip.to_string());
        extra.push(format!("(has(src_ips, {q}) OR has(dest_ips, {q}))"));
    }
    let dir = state.dir.get();
    let q = IncidentQuery {
        scope_sql: scope_sql(&state, &caller, &dir, "agency", p.agency.as_ref())?,
        extra,
        since_s,
        before,
        limit,
    };
    let rows = state
        .ch
        .list_incidents(&q)
        .await
        .map_err(|e| ApiError::store(&e))?;
    let next_cursor = if rows.len() == usize::try_from(limit).unwrap_or(usize::MAX) {
        rows.last()
            .map(|r| super::encode_cursor(r.first_seen_us, &r.id))
    } else {
        None
    };
    Ok(Json(Page {
        items: rows.into_iter().map(IncidentItem::from).collect(),
        next_cursor,
    }))
}

/// Query of the single incident.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct GetParams {
    /// Member alerts to include (0-1000, default 100), oldest first.
    pub alerts_limit: Option<u32>,
}

/// A member alert.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MemberAlert {
    /// Alert ID.
    pub alert_id: String,
    /// Event time (RFC 3339).
    pub timestamp: String,
    /// Sensor.
    pub sensor: String,
    /// Agency of the sensor that sent it.
    pub sensor_agency: String,
    /// Rule sid.
    pub signature_id: u32,
    /// Rule message.
    pub signature: String,
    /// Severity.
    pub severity: u8,
    /// Source address.
    pub src_ip: String,
    /// Source port.
    pub src_port: u16,
    /// Destination address.
    pub dest_ip: String,
    /// Destination port.
    pub dest_port: u16,
    /// Transport protocol.
    pub proto: String,
}

/// An incident with its member alerts and tickets.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IncidentDetail {
    /// The incident.
    #[serde(flatten)]
    pub incident: IncidentItem,
    /// Member alerts (first `alerts_limit`, oldest first).
    pub alerts: Vec<MemberAlert>,
    /// Tickets attached to it.
    pub tickets: Vec<TicketItem>,
}

/// `GET /api/v1/incidents/{id}`.
///
/// # Errors
/// `400`, `401`, `403`, `404` (unknown or outside the scope), `503`.
#[utoipa::path(get, path = "/api/v1/incidents/{id}", tag = "incidents",
    params(("id" = String, Path, description = "Incident ID"), GetParams), security(("bearer" = [])),
    responses((status = 200, body = IncidentDetail), (status = 404, body = super::openapi::ErrorBody)))]
pub async fn get_incident(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    params: Result<Query<GetParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<IncidentDetail>, ApiError> {
    caller.require(&state, Permission::ReadIncidents)?;
    let Query(p) = params.map_err(|e| ApiError::bad_request("bad_query", e.body_text()))?;
    let limit = p.alerts_limit.unwrap_or(100);
    if limit > MAX_ALERTS {
        return Err(ApiError::bad_request(
            "bad_limit",
            format!("alerts_limit must be 0..={MAX_ALERTS}"),
        ));
    }
    let Ok(uuid) = uuid::Uuid::parse_str(&id) else {
        return Err(ApiError::not_found("incident"));
    };
    let db = state.ch.database().to_owned();
    let rows: Vec<IncidentRow> = state
        .ch
        .query_rows(&format!(
            "SELECT {} FROM {db}.incidents FINAL WHERE id = toUUID('{uuid}')",
            crate::store::INCIDENT_COLUMNS
        ))
        .await
        .map_err(|e| ApiError::store(&e))?;
    let Some(row) = rows.into_iter().next() else {
        return Err(ApiError::not_found("incident"));
    };
    let dir = state.dir.get();
    if !caller.sees(&dir, &row.agency) {
        return Err(caller.hidden(&state, "incident", &id, &row.agency));
    }
    #[derive(Deserialize)]
    struct A {
        alert_id: String,
        ts_us: i64,
        sensor: String,
        agency: String,
        signature_id: u32,
        signature: String,
        severity: u8,
        src_ip: String,
        src_port: u16,
        dest_ip: String,
        dest_port: u16,
        proto: String,
    }
    // Dedup members carry the incident in `alerts.incident_id`; correlated incidents list
    // theirs in `incident_alerts`. The time range prunes partitions.
    let alerts: Vec<A> = if limit == 0 {
        Vec::new()
    } else {
        state
            .ch
            .query_rows(&format!(
                "SELECT alert_id, ts_us, sensor, agency, signature_id, signature, severity, src_ip, src_port, \
                 dest_ip, dest_port, proto FROM {db}.alerts \
                 WHERE ts >= toDateTime({from}) AND ts <= toDateTime({to}) \
                 AND (incident_id = toUUID('{uuid}') OR alert_id IN \
                      (SELECT alert_id FROM {db}.incident_alerts WHERE incident_id = toUUID('{uuid}'))) \
                 ORDER BY ts_us, alert_id LIMIT 1 BY alert_id LIMIT {limit}",
                from = row.first_seen_us.div_euclid(1_000_000),
                to = row.last_seen_us.div_euclid(1_000_000) + 1,
            ))
            .await
            .map_err(|e| ApiError::store(&e))?
    };
    let tickets = crate::tickets::store::list(
        &state.ch,
        &crate::tickets::store::TicketQuery {
            scope_sql: "1".into(),
            incident: Some(uuid),
            limit: 100,
            ..Default::default()
        },
    )
    .await
    .map_err(|e| ApiError::store(&e))?;
    Ok(Json(IncidentDetail {
        incident: IncidentItem::from(row),
        alerts: alerts
            .into_iter()
            .map(|a| MemberAlert {
                alert_id: a.alert_id,
                timestamp: rfc3339(a.ts_us),
                sensor: a.sensor,
                sensor_agency: a.agency,
                signature_id: a.signature_id,
                signature: a.signature,
                severity: a.severity,
                src_ip: a.src_ip,
                src_port: a.src_port,
                dest_ip: a.dest_ip,
                dest_port: a.dest_port,
                proto: a.proto,
            })
            .collect(),
        tickets: tickets.iter().map(TicketItem::from).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339() {
        assert_eq!(
            rfc3339(1_279_129_243_727_475),
            "2010-07-14T17:40:43.727475Z"
        );
    }
}
