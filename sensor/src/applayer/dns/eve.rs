//! The `dns` object Suricata 7 puts in EVE alert records.
//!
//! Input: one [`DnsTx`].
//! Output: for a query, `{"version":2,"query":[{"type":"query","id","rrname","rrtype",
//! "tx_id","opcode"}, ...]}` (one entry per question, `"z":true` when the Z bit is set); for a
//! response, `{"version":2,"answer":{"version":2,"type":"answer","id","flags","qr","aa","tc",
//! "rd","ra","z","opcode","rrname","rrtype","rcode"}}` where the flag booleans appear only
//! when set and `rrname`/`rrtype` come from the first question. Suricata's alert records carry
//! no answer list; this matches what Suricata 7.0.10 writes (checked against its output on the
//! suricata-verify DNS captures).
//! Invariants: names are written as text with invalid UTF-8 replaced (Suricata escapes them
//! likewise); JSON objects here have sorted keys (serde_json without `preserve_order`).

use serde_json::{Map, Value, json};

use super::DnsTx;

/// Suricata's name for a record type, or the number as text.
#[must_use]
pub fn rrtype_name(t: u16) -> String {
    let s = match t {
        1 => "A",
        2 => "NS",
        3 => "MD",
        4 => "MF",
        5 => "CNAME",
        6 => "SOA",
        7 => "MB",
        8 => "MG",
        9 => "MR",
        10 => "NULL",
        11 => "WKS",
        12 => "PTR",
        13 => "HINFO",
        14 => "MINFO",
        15 => "MX",
        16 => "TXT",
        17 => "RP",
        18 => "AFSDB",
        19 => "X25",
        20 => "ISDN",
        21 => "RT",
        22 => "NSAP",
        23 => "NSAPPTR",
        24 => "SIG",
        25 => "KEY",
        26 => "PX",
        27 => "GPOS",
        28 => "AAAA",
        29 => "LOC",
        30 => "NXT",
        33 => "SRV",
        34 => "ATMA",
        35 => "NAPTR",
        36 => "KX",
        37 => "CERT",
        38 => "A6",
        39 => "DNAME",
        41 => "OPT",
        42 => "APL",
        43 => "DS",
        44 => "SSHFP",
        45 => "IPSECKEY",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        49 => "DHCID",
        50 => "NSEC3",
        51 => "NSEC3PARAM",
        52 => "TLSA",
        55 => "HIP",
        59 => "CDS",
        60 => "CDNSKEY",
        64 => "SVCB",
        65 => "HTTPS",
        99 => "SPF",
        249 => "TKEY",
        250 => "TSIG",
        251 => "IXFR",
        252 => "AXFR",
        253 => "MAILB",
        254 => "MAILA",
        255 => "ANY",
        256 => "URI",
        257 => "CAA",
        _ => return t.to_string(),
    };
    s.to_owned()
}

/// Suricata's name for a response code, or the number as text.
#[must_use]
pub fn rcode_name(rcode: u8) -> String {
    let s = match rcode {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        _ => return rcode.to_string(),
    };
    s.to_owned()
}

fn text(b: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(b).into_owned())
}

/// Builds the alert metadata object for `tx`.
#[must_use]
pub fn alert_object(tx: &DnsTx) -> Value {
    let msg = tx.message();
    let h = msg.header;
    if tx.is_request() {
        let queries: Vec<Value> = msg
            .queries
            .iter()
            .map(|q| {
                let mut o = Map::new();
                o.insert("type".into(), json!("query"));
                o.insert("id".into(), json!(h.id));
                o.insert("rrname".into(), text(&q.name));
                o.insert("rrtype".into(), json!(rrtype_name(q.rrtype)));
                o.insert("tx_id".into(), json!(tx.id()));
                o.insert("opcode".into(), json!(h.opcode()));
                if h.flags & 0x0040 != 0 {
                    o.insert("z".into(), json!(true));
                }
                Value::Object(o)
            })
            .collect();
        json!({ "version": 2, "query": queries })
    } else {
        let mut a = Map::new();
        a.insert("version".into(), json!(2));
        a.insert("type".into(), json!("answer"));
        a.insert("id".into(), json!(h.id));
        a.insert("flags".into(), json!(format!("{:x}", h.flags)));
        for (bit, name) in [
            (0x8000u16, "qr"),
            (0x0400, "aa"),
            (0x0200, "tc"),
            (0x0100, "rd"),
            (0x0080, "ra"),
            (0x0040, "z"),
        ] {
            if h.flags & bit != 0 {
                a.insert(name.into(), json!(true));
            }
        }
        a.insert("opcode".into(), json!(h.opcode()));
        if let Some(q) = msg.queries.first() {
            a.insert("rrname".into(), text(&q.name));
            a.insert("rrtype".into(), json!(rrtype_name(q.rrtype)));
        }
        a.insert("rcode".into(), json!(rcode_name(h.rcode())));
        json!({ "version": 2, "answer": Value::Object(a) })
    }
}
