//! The `http` object Suricata 7 puts in EVE alert records.
//!
//! Input: one [`HttpTx`].
//! Output: `{"hostname","http_port","url","http_user_agent","http_content_type","http_refer",
//! "http_method","protocol","status","redirect","length"}`, each present only when known:
//! `hostname` is the normalized host (see [`super::normalize`]), `http_port` the port given
//! with it, `url` the raw request target, `http_content_type` the response `Content-Type` up
//! to the first `;`, `redirect` the response `Location`, `length` the response body bytes seen
//! so far (0 before any). Field choice and forms were checked against Suricata 7.0.10's alert
//! output on crafted and suricata-verify captures.
//! Invariants: byte strings are written as text with invalid UTF-8 replaced; keys are sorted
//! (serde_json without `preserve_order`).

use serde_json::{Map, Value, json};

use super::HttpTx;
use super::parser::parse_decimal;
use crate::Direction;

fn text(b: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(b).into_owned())
}

/// Builds the alert metadata object for `tx`.
#[must_use]
pub fn alert_object(tx: &HttpTx) -> Value {
    let mut o = Map::new();
    let req = &tx.req;
    if let Some(h) = &req.host {
        o.insert("hostname".into(), text(h));
    }
    if let Some(p) = req
        .port
        .as_deref()
        .and_then(parse_decimal)
        .filter(|p| (1..=65535).contains(p))
    {
        o.insert("http_port".into(), json!(p));
    }
    if let Some(u) = req.uri.clone().and_then(|r| req.msg.line.get(r)) {
        o.insert("url".into(), text(u));
    }
    if let Some(ua) = tx.header(Direction::ToServer, b"user-agent") {
        o.insert("http_user_agent".into(), text(ua));
    }
    if let Some(ct) = tx.header(Direction::ToClient, b"content-type") {
        let main = ct.split(|&b| b == b';').next().unwrap_or(ct);
        o.insert("http_content_type".into(), text(main));
    }
    if let Some(r) = tx.header(Direction::ToServer, b"referer") {
        o.insert("http_refer".into(), text(r));
    }
    if let Some(m) = tx.method() {
        o.insert("http_method".into(), text(m));
    }
    if let Some(p) = req.protocol.clone().and_then(|r| req.msg.line.get(r)) {
        o.insert("protocol".into(), text(p));
    }
    if let Some(s) = tx.status() {
        o.insert("status".into(), json!(s));
    }
    if let Some(l) = tx.header(Direction::ToClient, b"location") {
        o.insert("redirect".into(), text(l));
    }
    o.insert("length".into(), json!(tx.body_len(Direction::ToClient)));
    Value::Object(o)
}
