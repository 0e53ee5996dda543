//! Ingest: a request body in, validated [`Alert`]s and per-line rejections out.
//!
//! Input: the raw body of `POST /api/v1/alerts` (identity, gzip or zstd), NDJSON, one EVE
//! alert per line: Tocsin's records (with `sensor` and `alert_id`) or plain Suricata ones
//! (an ID is derived, see [`tocsin_eve::AlertId::derive_suricata`]).
//!
//! Output: [`ParsedBatch`] with the good alerts in line order and the bad lines with their
//! 1-based line number and a message. Empty lines are skipped, never rejected.
//!
//! Caps: compressed size (checked by the API), decoded size (`max_decoded_bytes`, checked
//! while inflating so a zip bomb stops early), line length, line count.

pub mod body;
pub mod parse;
pub mod stats;

pub use body::{BodyError, Encoding, decode_body};
pub use parse::{Alert, LineContext, LineError, SourceFormat, parse_line};

/// A line that was not stored and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Rejected {
    /// 1-based line number in the (decoded) body.
    pub line: usize,
    /// What was wrong, for a person.
    pub error: String,
}

/// Result of parsing one body.
#[derive(Debug, Default)]
pub struct ParsedBatch {
    /// Valid alerts with their 1-based line numbers, in line order.
    pub alerts: Vec<(usize, Alert)>,
    /// Invalid lines, in line order.
    pub rejected: Vec<Rejected>,
}

/// Why a whole body was refused (as opposed to single lines).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// More lines than allowed.
    #[error("body has more than {max} lines")]
    TooManyLines {
        /// The limit.
        max: usize,
    },
}

/// Splits a decoded body into lines and parses each one.
///
/// # Errors
/// [`BatchError::TooManyLines`] when the body has more than `max_lines` non-empty lines;
/// nothing is parsed then.
pub fn parse_batch(
    body: &[u8],
    ctx: &LineContext,
    max_lines: usize,
) -> Result<ParsedBatch, BatchError> {
    let mut out = ParsedBatch::default();
    let mut count = 0usize;
    for (idx, raw) in body.split(|&b| b == b'\n').enumerate() {
        let line_no = idx + 1;
        let line = raw.trim_ascii();
        if line.is_empty() {
            continue;
        }
        count += 1;
        if count > max_lines {
            return Err(BatchError::TooManyLines { max: max_lines });
        }
        match parse_line(line, ctx) {
            Ok(alert) => out.alerts.push((line_no, alert)),
            Err(err) => out.rejected.push(Rejected {
                line: line_no,
                error: err.to_string(),
            }),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> LineContext {
        LineContext {
            agency: "A1".into(),
            token_name: "sensor-a".into(),
            now_us: 1_700_000_000_000_000,
            max_future_skew_us: 300_000_000,
            max_line_bytes: 4096,
        }
    }

    const GOOD: &str = r#"{"timestamp":"2023-11-14T22:13:20.000001+0000","flow_id":7,"pcap_cnt":3,"event_type":"alert","src_ip":"10.0.0.1","src_port":1234,"dest_ip":"10.0.0.2","dest_port":80,"proto":"TCP","alert":{"action":"allowed","gid":1,"signature_id":1000,"rev":1,"signature":"test","category":"Misc","severity":2}}"#;

    #[test]
    fn good_bad_and_empty_lines() {
        let body = format!("{GOOD}\n\nnot json\n{GOOD}\r\n  \n{{\"event_type\":\"alert\"}}\n");
        let b = parse_batch(body.as_bytes(), &ctx(), 100).unwrap();
        let lines: Vec<usize> = b.alerts.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, vec![1, 4]);
        let bad: Vec<usize> = b.rejected.iter().map(|r| r.line).collect();
        assert_eq!(bad, vec![3, 6]);
        assert!(
            b.rejected[0].error.starts_with("malformed JSON"),
            "{:?}",
            b.rejected
        );
        assert!(
            b.rejected[1].error.contains("missing field"),
            "{:?}",
            b.rejected
        );
    }

    #[test]
    fn too_many_lines() {
        let body = format!("{GOOD}\n{GOOD}\n{GOOD}\n");
        assert_eq!(
            parse_batch(body.as_bytes(), &ctx(), 2).unwrap_err(),
            BatchError::TooManyLines { max: 2 }
        );
        assert_eq!(
            parse_batch(body.as_bytes(), &ctx(), 3)
                .unwrap()
                .alerts
                .len(),
            3
        );
    }

    proptest::proptest! {
        #[test]
        fn batch_never_panics(body in proptest::collection::vec(proptest::num::u8::ANY, 0..2048)) {
            let _ = parse_batch(&body, &ctx(), 1000);
        }

        #[test]
        fn every_nonempty_line_is_accounted_for(
            picks in proptest::collection::vec(0u8..4, 0..40)
        ) {
            // Each line is good, malformed, wrong-typed or empty; good + rejected must equal
            // the number of non-empty lines, and good lines keep their order.
            let mut body = String::new();
            let mut want_good = Vec::new();
            let mut want_bad = Vec::new();
            for (i, p) in picks.iter().enumerate() {
                let line = match p {
                    0 => { want_good.push(i + 1); GOOD.to_owned() }
                    1 => { want_bad.push(i + 1); "{\"timestamp\":".to_owned() }
                    2 => { want_bad.push(i + 1); GOOD.replace("\"gid\":1", "\"gid\":\"one\"") }
                    _ => String::new(),
                };
                body.push_str(&line);
                body.push('\n');
            }
            let b = parse_batch(body.as_bytes(), &ctx(), 1000).unwrap();
            let good: Vec<usize> = b.alerts.iter().map(|(l, _)| *l).collect();
            let bad: Vec<usize> = b.rejected.iter().map(|r| r.line).collect();
            proptest::prop_assert_eq!(good, want_good);
            proptest::prop_assert_eq!(bad, want_bad);
        }
    }
}
