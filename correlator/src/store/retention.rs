//! Retention on servers without table TTL (ClickHouse 18.16): drop whole partitions.
//!
//! A partition (a day of `alerts`, a month of the others) is dropped when both hold:
//! its key range ended more than N days ago, and none of its parts was written within the
//! last N days (`system.parts.modification_time`). The second rule keeps replayed old
//! traffic (a 2010 pcap) for N days after it was ingested, like the TTL on
//! `received_at` does on modern servers.

use time::{Date, Month};

use super::schema::{ALERT_TABLES, ROLLUP_TABLES};
use super::{ClickHouse, StoreError, quote};

/// End (exclusive) of a partition named `YYYYMMDD` or `YYYYMM`, as Unix seconds.
#[must_use]
pub fn partition_end_s(partition: &str) -> Option<i64> {
    if !partition.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: i32 = partition.get(0..4)?.parse().ok()?;
    let month: u8 = partition.get(4..6)?.parse().ok()?;
    let month = Month::try_from(month).ok()?;
    let end = match partition.len() {
        8 => {
            let day: u8 = partition.get(6..8)?.parse().ok()?;
            Date::from_calendar_date(year, month, day)
                .ok()?
                .next_day()?
        }
        6 => {
            let (y, m) = if month == Month::December {
                (year + 1, Month::January)
            } else {
                (year, month.next())
            };
            Date::from_calendar_date(y, m, 1).ok()?
        }
        _ => return None,
    };
    Some(end.midnight().assume_utc().unix_timestamp())
}

/// Drops expired partitions; returns `(table, partition)` for each one dropped.
///
/// # Errors
/// [`StoreError`] from the server.
pub async fn drop_expired(
    ch: &ClickHouse,
    now_s: i64,
    alerts_days: u32,
    rollup_days: u32,
) -> Result<Vec<(String, String)>, StoreError> {
    #[derive(serde::Deserialize)]
    struct Part {
        table: String,
        partition: String,
        newest: i64,
    }
    let db = ch.database();
    let parts: Vec<Part> = ch
        .query_rows(&format!(
            "SELECT table, partition, toInt64(toUnixTimestamp(max(modification_time))) AS newest \
             FROM system.parts WHERE database = {} AND active GROUP BY table, partition",
            quote(db)
        ))
        .await?;
    let mut dropped = Vec::new();
    for p in parts {
        let days = if ALERT_TABLES.iter().any(|(t, _)| *t == p.table) {
            alerts_days
        } else if ROLLUP_TABLES.iter().any(|(t, _)| *t == p.table) {
            rollup_days
        } else {
            continue;
        };
        if days == 0 {
            continue;
        }
        let cutoff = now_s - i64::from(days) * 86_400;
        let Some(end) = partition_end_s(&p.partition) else {
            continue;
        };
        if end <= cutoff && p.newest < cutoff {
            // `partition` is all digits (checked by partition_end_s): safe as a literal.
            ch.execute(&format!(
                "ALTER TABLE {db}.{} DROP PARTITION {}",
                p.table, p.partition
            ))
            .await?;
            tracing::info!(table = %p.table, partition = %p.partition, "retention: dropped partition");
            dropped.push((p.table, p.partition));
        }
    }
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_ends() {
        // 2024-01-01T00:00:00Z = 1704067200.
        assert_eq!(partition_end_s("20231231"), Some(1_704_067_200));
        assert_eq!(partition_end_s("202312"), Some(1_704_067_200));
        // Leap day: 2024-03-01 = 1709251200.
        assert_eq!(partition_end_s("20240229"), Some(1_709_251_200));
        assert_eq!(partition_end_s("202402"), Some(1_709_251_200));
        assert_eq!(partition_end_s("20230229"), None);
        assert_eq!(partition_end_s("2024"), None);
        assert_eq!(partition_end_s("tuple()"), None);
    }
}
