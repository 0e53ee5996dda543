//! Versioned, idempotent schema migrations (documented in `correlator/SCHEMA.md`).
//!
//! Every statement is `CREATE ... IF NOT EXISTS`, so running a migration twice (two
//! correlators starting at once, or a crash between a migration and its record in
//! `schema_migrations`) is harmless. Applied versions are recorded in `schema_migrations`.
//! SQL stays within what ClickHouse 18.16 understands and modern servers accept: the
//! `PARTITION BY ... ORDER BY ...` engine syntax, no TTL/`DateTime64`/`LowCardinality`
//! in the base schema; TTL is added by [`apply_ttl`] when the server has it.

use super::{ClickHouse, ServerVersion, StoreError};

/// One migration: a version, a name, and its statements (`{db}` is the database).
#[derive(Debug)]
pub struct Migration {
    /// Version, strictly increasing.
    pub version: u32,
    /// What it does.
    pub name: &'static str,
    /// Statements, run in order.
    pub statements: &'static [&'static str],
}

/// All migrations, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "alerts, incidents, incident_alerts, tokens",
        statements: &[
            "CREATE TABLE IF NOT EXISTS {db}.alerts (
                alert_id String, agency String, sensor String,
                ts DateTime, ts_us Int64, received_at DateTime,
                gid UInt32, signature_id UInt32, rev UInt32,
                signature String, category String, severity UInt8,
                src_ip String, src_port UInt16, dest_ip String, dest_port UInt16,
                proto String, app_proto String, flow_id UInt64,
                source String, incident_id UUID, app String
            ) ENGINE = ReplacingMergeTree
            PARTITION BY toYYYYMMDD(ts)
            ORDER BY (agency, ts, alert_id)",
            "CREATE TABLE IF NOT EXISTS {db}.incidents (
                id UUID, agency String, kind String, rule String, dedup_key String,
                window_start DateTime, window_start_us Int64,
                first_seen DateTime, first_seen_us Int64,
                last_seen DateTime, last_seen_us Int64,
                alert_count UInt64,
                sensors Array(String), src_ips Array(String), dest_ips Array(String),
                signature_ids Array(UInt32), signatures Array(String),
                severity UInt8, status String, version UInt64, updated_at DateTime
            ) ENGINE = ReplacingMergeTree(version)
            PARTITION BY toYYYYMM(window_start)
            ORDER BY (agency, id)",
            "CREATE TABLE IF NOT EXISTS {db}.incident_alerts (
                incident_id UUID, alert_id String, agency String,
                ts DateTime, ts_us Int64, step UInt8, received_at DateTime
            ) ENGINE = ReplacingMergeTree
            PARTITION BY toYYYYMM(ts)
            ORDER BY (incident_id, alert_id)",
            "CREATE TABLE IF NOT EXISTS {db}.tokens (
                token_hash String, name String, role String, agency String,
                created_at DateTime, expires_at DateTime, revoked UInt8, version UInt64
            ) ENGINE = ReplacingMergeTree(version)
            ORDER BY token_hash",
        ],
    },
    Migration {
        version: 2,
        name: "rollups: alerts per minute (agency, severity, signature), per hour by source, per minute by sensor",
        statements: &[
            "CREATE TABLE IF NOT EXISTS {db}.alerts_per_minute (
                minute DateTime, agency String, severity UInt8, signature_id UInt32,
                signature String, alerts UInt64
            ) ENGINE = SummingMergeTree(alerts)
            PARTITION BY toYYYYMM(minute)
            ORDER BY (agency, severity, signature_id, minute)",
            "CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.alerts_per_minute_mv
            TO {db}.alerts_per_minute AS
            SELECT toStartOfMinute(ts) AS minute, agency, severity, signature_id,
                   any(signature) AS signature, count() AS alerts
            FROM {db}.alerts
            GROUP BY minute, agency, severity, signature_id",
            "CREATE TABLE IF NOT EXISTS {db}.alerts_by_src_hour (
                hour DateTime, agency String, src_ip String, alerts UInt64
            ) ENGINE = SummingMergeTree(alerts)
            PARTITION BY toYYYYMM(hour)
            ORDER BY (agency, src_ip, hour)",
            "CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.alerts_by_src_hour_mv
            TO {db}.alerts_by_src_hour AS
            SELECT toStartOfHour(ts) AS hour, agency, src_ip, count() AS alerts
            FROM {db}.alerts
            GROUP BY hour, agency, src_ip",
            "CREATE TABLE IF NOT EXISTS {db}.sensor_alerts_per_minute (
                minute DateTime, agency String, sensor String, alerts UInt64
            ) ENGINE = SummingMergeTree(alerts)
            PARTITION BY toYYYYMM(minute)
            ORDER BY (agency, sensor, minute)",
            "CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.sensor_alerts_per_minute_mv
            TO {db}.sensor_alerts_per_minute AS
            SELECT toStartOfMinute(received_at) AS minute, agency, sensor, count() AS alerts
            FROM {db}.alerts
            GROUP BY minute, agency, sensor",
        ],
    },
    Migration {
        version: 3,
        name: "agency directory, tickets and their events, audit log, webhooks, leases, incident feed",
        statements: &[
            "CREATE TABLE IF NOT EXISTS {db}.agencies (
                code String, name String, level UInt8, parent String, path String,
                ancestors Array(String), level1 String, prefixes Array(String), contacts String,
                policy String, ticket_severity UInt8, after_resolve String,
                sla_severities Array(UInt8), sla_ack_s Array(UInt32), sla_resolve_s Array(UInt32),
                deleted UInt8, version UInt64, loaded_at DateTime
            ) ENGINE = ReplacingMergeTree(version)
            ORDER BY code",
            "CREATE TABLE IF NOT EXISTS {db}.agency_webhooks (
                id String, agency String, url String, secret String, events Array(String),
                subtree UInt8, deleted UInt8, version UInt64
            ) ENGINE = ReplacingMergeTree(version)
            ORDER BY id",
            TICKET_EVENTS,
            TICKETS,
            TICKETS_MV,
            "CREATE TABLE IF NOT EXISTS {db}.ticket_incidents (
                incident_id UUID, ticket_id UUID, at DateTime
            ) ENGINE = ReplacingMergeTree
            ORDER BY (incident_id, ticket_id)",
            "CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.ticket_incidents_mv
            TO {db}.ticket_incidents AS
            SELECT incident_id, ticket_id, at FROM {db}.ticket_events",
            "CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.ticket_linked_incidents_mv
            TO {db}.ticket_incidents AS
            SELECT linked_incident_id AS incident_id, ticket_id, at FROM {db}.ticket_events
            WHERE linked_incident_id != toUUID('00000000-0000-0000-0000-000000000000')",
            "CREATE TABLE IF NOT EXISTS {db}.audit (
                id UUID, at DateTime, at_us Int64,
                actor String, actor_role String, actor_agency String,
                agency String, action String, object_type String, object_id String,
                incident_id UUID, before String, after String,
                outcome String, http_status UInt16, request_id String, detail String
            ) ENGINE = ReplacingMergeTree
            PARTITION BY toYYYYMM(at)
            ORDER BY (at_us, id)",
            "CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.audit_tickets_mv
            TO {db}.audit AS
            SELECT event_id AS id, at, at_us, actor, actor_role, actor_agency,
                   owner_agency AS agency, concat('ticket.', action) AS action,
                   'ticket' AS object_type, toString(ticket_id) AS object_id, incident_id,
                   before, after, 'ok' AS outcome, toUInt16(200) AS http_status, request_id,
                   comment AS detail
            FROM {db}.ticket_events",
            "CREATE TABLE IF NOT EXISTS {db}.webhook_deliveries (
                delivery_id UUID, webhook_id String, agency String, event String,
                event_id UUID, ticket_id UUID, url String, payload String,
                status String, attempts UInt16, next_attempt_us Int64,
                last_http_status UInt16, last_error String,
                created_at DateTime, updated_at DateTime, version UInt64
            ) ENGINE = ReplacingMergeTree(version)
            ORDER BY delivery_id",
            "CREATE TABLE IF NOT EXISTS {db}.webhook_attempts (
                delivery_id UUID, webhook_id String, agency String, event String,
                attempt UInt16, at DateTime, at_us Int64, http_status UInt16,
                error String, duration_ms UInt32, outcome String
            ) ENGINE = MergeTree
            PARTITION BY toYYYYMM(at)
            ORDER BY (webhook_id, at_us)",
            "CREATE TABLE IF NOT EXISTS {db}.leases (
                name String, epoch UInt64, holder String, claimed_us Int64, expires_us Int64,
                version UInt64
            ) ENGINE = ReplacingMergeTree(version)
            ORDER BY (name, epoch, holder)",
            "CREATE TABLE IF NOT EXISTS {db}.incident_updates (
                updated_at DateTime, id UUID, agency String, kind String, rule String,
                dedup_key String, severity UInt8, status String, alert_count UInt64,
                first_seen_us Int64, last_seen_us Int64, signature String, version UInt64
            ) ENGINE = MergeTree
            PARTITION BY toYYYYMMDD(updated_at)
            ORDER BY (updated_at, id)",
            "CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.incident_updates_mv
            TO {db}.incident_updates AS
            SELECT updated_at, id, agency, kind, rule, dedup_key, severity, status, alert_count,
                   first_seen_us, last_seen_us, signatures[1] AS signature, version
            FROM {db}.incidents",
        ],
    },
    Migration {
        version: 4,
        name: "sensor_stats (the sensors' stats records)",
        statements: &[crate::ingest::stats::SENSOR_STATS_TABLE],
    },
];

/// Columns of a ticket's state, shared by `ticket_events` (state after each event) and
/// `tickets` (the latest state).
macro_rules! ticket_state_columns {
    () => {
        "status String, agency String, owner_agency String, agency_path String,
        level1_agency String, escalation_level UInt8, severity UInt8, assignee String,
        incident_id UUID, linked_incident_id UUID, related_ticket String,
        title String, rule String, dedup_key String,
        opened_at DateTime, opened_us Int64, acknowledged_at DateTime, acknowledged_us Int64,
        resolved_at DateTime, resolved_us Int64, closed_us Int64,
        ack_due_at DateTime, ack_due_us Int64, resolve_due_at DateTime, resolve_due_us Int64,
        ack_breached UInt8, resolve_breached UInt8, reopen_count UInt16,
        resolved_alert_count UInt64"
    };
}

/// Names of the ticket state columns (`ticket_state_columns!`), for the view and for reads.
pub const TICKET_STATE_NAMES: &str = "status, agency, owner_agency, agency_path, level1_agency, \
    escalation_level, severity, assignee, incident_id, linked_incident_id, related_ticket, title, \
    rule, dedup_key, opened_at, opened_us, acknowledged_at, acknowledged_us, resolved_at, \
    resolved_us, closed_us, ack_due_at, ack_due_us, resolve_due_at, resolve_due_us, \
    ack_breached, resolve_breached, reopen_count, resolved_alert_count";

const TICKET_EVENTS: &str = concat!(
    "CREATE TABLE IF NOT EXISTS {db}.ticket_events (
        event_id UUID, ticket_id UUID, seq UInt32, version UInt64,
        at DateTime, at_us Int64, action String,
        actor String, actor_role String, actor_agency String, request_id String,
        comment String, before String, after String, ",
    ticket_state_columns!(),
    ") ENGINE = ReplacingMergeTree
    PARTITION BY toYYYYMM(at)
    ORDER BY (ticket_id, seq, event_id)"
);

const TICKETS: &str = concat!(
    "CREATE TABLE IF NOT EXISTS {db}.tickets (
        id UUID, version UInt64, seq UInt32, last_event_id UUID, last_action String,
        updated_at DateTime, updated_us Int64, ",
    ticket_state_columns!(),
    ") ENGINE = ReplacingMergeTree(version)
    ORDER BY id"
);

const TICKETS_MV: &str = "CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.tickets_mv
    TO {db}.tickets AS
    SELECT ticket_id AS id, version, seq, event_id AS last_event_id, action AS last_action,
           at AS updated_at, at_us AS updated_us,
           status, agency, owner_agency, agency_path, level1_agency, escalation_level,
           severity, assignee, incident_id, linked_incident_id, related_ticket, title, rule,
           dedup_key, opened_at, opened_us, acknowledged_at, acknowledged_us, resolved_at,
           resolved_us, closed_us, ack_due_at, ack_due_us, resolve_due_at, resolve_due_us,
           ack_breached, resolve_breached, reopen_count, resolved_alert_count
    FROM {db}.ticket_events";

/// Tables whose rows expire with `retention.alerts_days`, with the time column used.
pub const ALERT_TABLES: &[(&str, &str)] = &[
    ("alerts", "received_at"),
    ("incident_alerts", "received_at"),
    ("incidents", "updated_at"),
    ("incident_updates", "updated_at"),
    ("sensor_stats", "ts"),
];
/// Rollup tables, expiring with `retention.rollup_days`.
pub const ROLLUP_TABLES: &[(&str, &str)] = &[
    ("alerts_per_minute", "minute"),
    ("alerts_by_src_hour", "hour"),
    ("sensor_alerts_per_minute", "minute"),
];

/// Creates the database and brings the schema up to the newest version. Returns the
/// versions applied by this call.
///
/// # Errors
/// [`StoreError`] from the server.
pub async fn migrate(ch: &ClickHouse) -> Result<Vec<u32>, StoreError> {
    let db = ch.database();
    ch.execute_no_db(&format!("CREATE DATABASE IF NOT EXISTS {db}"))
        .await?;
    ch.execute(&format!(
        "CREATE TABLE IF NOT EXISTS {db}.schema_migrations (
            version UInt32, name String, applied_at DateTime
        ) ENGINE = ReplacingMergeTree ORDER BY version"
    ))
    .await?;
    #[derive(serde::Deserialize)]
    struct Applied {
        version: u32,
    }
    let applied: Vec<Applied> = ch
        .query_rows(&format!(
            "SELECT DISTINCT version FROM {db}.schema_migrations"
        ))
        .await?;
    let have: std::collections::HashSet<u32> = applied.into_iter().map(|a| a.version).collect();
    let mut done = Vec::new();
    for m in MIGRATIONS {
        if have.contains(&m.version) {
            continue;
        }
        for stmt in m.statements {
            ch.execute(&stmt.replace("{db}", db)).await?;
        }
        #[derive(serde::Serialize)]
        struct Row<'a> {
            version: u32,
            name: &'a str,
            applied_at: i64,
        }
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        ch.insert(
            "schema_migrations",
            &[Row {
                version: m.version,
                name: m.name,
                applied_at: now,
            }],
        )
        .await?;
        tracing::info!(
            version = m.version,
            name = m.name,
            "schema migration applied"
        );
        done.push(m.version);
    }
    Ok(done)
}

/// On servers with table TTL (19.6+), sets TTLs from the retention settings (idempotent).
/// Does nothing on older servers, where [`super::retention`] drops partitions instead.
///
/// # Errors
/// [`StoreError`] from the server.
pub async fn apply_ttl(
    ch: &ClickHouse,
    version: ServerVersion,
    alerts_days: u32,
    rollup_days: u32,
) -> Result<bool, StoreError> {
    if !version.has_ttl() {
        return Ok(false);
    }
    let db = ch.database();
    for (tables, days) in [(ALERT_TABLES, alerts_days), (ROLLUP_TABLES, rollup_days)] {
        if days == 0 {
            continue;
        }
        for (table, col) in tables {
            ch.execute(&format!(
                "ALTER TABLE {db}.{table} MODIFY TTL {col} + INTERVAL {days} DAY"
            ))
            .await?;
        }
    }
    Ok(true)
}
