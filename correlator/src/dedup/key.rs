//! Dedup and grouping keys: which alert fields decide that two alerts belong together.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::ingest::Alert;

/// An alert field usable in a dedup key, a correlation `group_by` or `distinct`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyField {
    /// The sensor token's agency code.
    Agency,
    /// Rule `sid`.
    SignatureId,
    /// Source address.
    SrcIp,
    /// Destination address.
    DestIp,
    /// Source port.
    SrcPort,
    /// Destination port.
    DestPort,
    /// Transport protocol.
    Proto,
    /// Sensor name.
    Sensor,
    /// EVE `alert.category`.
    Category,
}

impl KeyField {
    /// The field's value in `alert`, written into `out`.
    pub fn write_value(self, alert: &Alert, out: &mut String) {
        // Writing into a String cannot fail.
        let _ = match self {
            Self::Agency => out.write_str(&alert.owner),
            Self::SignatureId => write!(out, "{}", alert.signature_id),
            Self::SrcIp => out.write_str(&alert.src_ip),
            Self::DestIp => out.write_str(&alert.dest_ip),
            Self::SrcPort => write!(out, "{}", alert.src_port),
            Self::DestPort => write!(out, "{}", alert.dest_port),
            Self::Proto => out.write_str(&alert.proto),
            Self::Sensor => out.write_str(&alert.sensor),
            Self::Category => out.write_str(&alert.category),
        };
    }

    /// The field's value as an owned string.
    #[must_use]
    pub fn value(self, alert: &Alert) -> String {
        let mut s = String::new();
        self.write_value(alert, &mut s);
        s
    }

    /// The field's name as written in config.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Agency => "agency",
            Self::SignatureId => "signature_id",
            Self::SrcIp => "src_ip",
            Self::DestIp => "dest_ip",
            Self::SrcPort => "src_port",
            Self::DestPort => "dest_port",
            Self::Proto => "proto",
            Self::Sensor => "sensor",
            Self::Category => "category",
        }
    }
}

/// Builds the key text `field=value|field=value` (human-readable, stored in incidents).
#[must_use]
pub fn key_text(fields: &[KeyField], alert: &Alert) -> String {
    let mut out = String::with_capacity(64);
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push('|');
        }
        out.push_str(f.name());
        out.push('=');
        f.write_value(alert, &mut out);
    }
    out
}
