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
];

/// Tables whose rows expire with `retention.alerts_days`, with the time column used.
pub const ALERT_TABLES: &[(&str, &str)] = &[
    ("alerts", "received_at"),
    ("incident_alerts", "received_at"),
    ("incidents", "updated_at"),
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
