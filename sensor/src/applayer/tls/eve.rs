//! The `tls` object Suricata 7 puts in EVE alert records.
//!
//! Input: the flow's [`TlsTx`].
//! Output: `{"subject","issuerdn","serial","fingerprint","sni","version","notbefore",
//! "notafter","session_resumed","ja3":{"hash","string"},"ja3s":{"hash","string"}}` with each
//! field present only when known (certificate fields from the leaf certificate; `version` is
//! always present, `UNDETERMINED` before the ServerHello; dates as `YYYY-MM-DDTHH:MM:SS` UTC),
//! as Suricata 7.0.10 writes them (checked against its output on the suricata-verify TLS
//! captures).

use serde_json::{Map, Value, json};

use super::{TlsTx, version_name};

/// `YYYY-MM-DDTHH:MM:SS` for seconds since the epoch.
fn date(secs: i64) -> String {
    let full = tocsin_eve::Timestamp::from_secs_micros(secs, 0).to_string();
    full.get(..19).unwrap_or(&full).to_owned()
}

/// Builds the alert metadata object for `tx`.
#[must_use]
pub fn alert_object(tx: &TlsTx) -> Value {
    let mut o = Map::new();
    if let Some(c) = tx.certs.first() {
        if let Some(s) = &c.subject {
            o.insert("subject".into(), json!(s));
        }
        if let Some(s) = &c.issuer {
            o.insert("issuerdn".into(), json!(s));
        }
        if let Some(s) = &c.serial {
            o.insert("serial".into(), json!(s));
        }
        o.insert("fingerprint".into(), json!(c.fingerprint));
    }
    if let Some(sni) = &tx.sni {
        o.insert("sni".into(), json!(String::from_utf8_lossy(sni)));
    }
    o.insert("version".into(), json!(version_name(tx.version)));
    if let Some(c) = tx.certs.first() {
        if let Some(t) = c.not_before {
            o.insert("notbefore".into(), json!(date(t)));
        }
        if let Some(t) = c.not_after {
            o.insert("notafter".into(), json!(date(t)));
        }
    }
    if tx.session_resumed {
        o.insert("session_resumed".into(), json!(true));
    }
    if let (Some(h), Some(s)) = (&tx.ja3_hash, &tx.ja3_string) {
        o.insert("ja3".into(), json!({ "hash": h, "string": s }));
    }
    if let (Some(h), Some(s)) = (&tx.ja3s_hash, &tx.ja3s_string) {
        o.insert("ja3s".into(), json!({ "hash": h, "string": s }));
    }
    Value::Object(o)
}
