//! TLS/SSL: handshake parsing, the per-flow handshake transaction, rule buffers and EVE
//! metadata.
//!
//! Input: in-order TCP bytes per direction from [`crate::applayer::AppLayer`].
//! Output: one [`TlsTx`] per flow exposing `tls.sni`, `tls.cert_subject`, `tls.cert_issuer`,
//! `tls.cert_serial`, `tls.cert_fingerprint`, `tls.certs`, `ja3.hash`/`ja3.string`,
//! `ja3s.hash`/`ja3s.string` ([`TlsBuffer`]), the negotiated version and validity dates; the
//! EVE `tls` object ([`eve::alert_object`]).
//! Invariants: certificate facts are computed once, when the Certificate message is parsed;
//! strings follow Suricata 7 (`C=US, O=..., CN=...` names, `AA:BB` serials, `aa:bb` SHA-1
//! fingerprints).
//! Caps: see [`TlsConfig`].

pub mod eve;
pub mod ja3;
pub mod parser;
pub mod state;
#[cfg(test)]
mod tests;

use sha1::{Digest, Sha1};

pub use state::{TlsEvent, TlsState, progress};

use crate::Direction;
use crate::applayer::perdir::PerDir;

/// TLS limits and options.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// Largest handshake message reassembled (certificate chains are the big ones).
    pub max_handshake_len: usize,
    /// Certificates kept from a chain.
    pub max_certs: usize,
    /// Compute JA3/JA3S (Suricata's `ja3-fingerprints`).
    pub ja3: bool,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            max_handshake_len: 256 * 1024,
            max_certs: 16,
            ja3: true,
        }
    }
}

/// Facts about one certificate, computed when it is parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// The DER bytes (`tls.certs`).
    pub der: Vec<u8>,
    /// Subject in Suricata's format, `None` when the DER did not parse.
    pub subject: Option<String>,
    /// Issuer in Suricata's format.
    pub issuer: Option<String>,
    /// Serial as uppercase hex bytes joined by `:`.
    pub serial: Option<String>,
    /// SHA-1 of the DER as lowercase hex bytes joined by `:`.
    pub fingerprint: String,
    /// notBefore, seconds since the epoch.
    pub not_before: Option<i64>,
    /// notAfter, seconds since the epoch.
    pub not_after: Option<i64>,
}

fn hex_colon(bytes: &[u8], upper: bool) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        let h = if upper {
            format!("{b:02X}")
        } else {
            format!("{b:02x}")
        };
        s.push_str(&h);
    }
    s
}

impl CertInfo {
    /// Parses `der`; when it is not valid X.509 only the DER and fingerprint are kept.
    #[must_use]
    pub fn from_der(der: &[u8]) -> Self {
        let fingerprint = hex_colon(&Sha1::digest(der), false);
        match x509_parser::parse_x509_certificate(der) {
            Ok((_, cert)) => Self {
                der: der.to_vec(),
                subject: Some(cert.subject().to_string()),
                issuer: Some(cert.issuer().to_string()),
                serial: Some(hex_colon(cert.raw_serial(), true)),
                fingerprint,
                not_before: Some(cert.validity().not_before.timestamp()),
                not_after: Some(cert.validity().not_after.timestamp()),
            },
            Err(_) => Self {
                der: der.to_vec(),
                subject: None,
                issuer: None,
                serial: None,
                fingerprint,
                not_before: None,
                not_after: None,
            },
        }
    }
}

/// Byte buffers of a TLS transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsBuffer {
    /// `tls.sni`: the ClientHello host name.
    Sni,
    /// `tls.cert_subject`: server certificate subject.
    CertSubject,
    /// `tls.cert_issuer`: server certificate issuer.
    CertIssuer,
    /// `tls.cert_serial`.
    CertSerial,
    /// `tls.cert_fingerprint`.
    CertFingerprint,
    /// `tls.certs`: every certificate of the chain, DER (multi-buffer).
    Certs,
    /// `ja3.hash`.
    Ja3Hash,
    /// `ja3.string`.
    Ja3String,
    /// `ja3s.hash`.
    Ja3sHash,
    /// `ja3s.string`.
    Ja3sString,
}

impl TlsBuffer {
    /// The buffer a rule keyword selects (sticky-buffer and legacy spellings).
    #[must_use]
    pub fn from_keyword(kw: &str) -> Option<Self> {
        Some(match kw {
            "tls.sni" | "tls_sni" => Self::Sni,
            "tls.cert_subject" | "tls_cert_subject" => Self::CertSubject,
            "tls.cert_issuer" | "tls_cert_issuer" => Self::CertIssuer,
            "tls.cert_serial" | "tls_cert_serial" => Self::CertSerial,
            "tls.cert_fingerprint" | "tls_cert_fingerprint" => Self::CertFingerprint,
            "tls.certs" => Self::Certs,
            "ja3.hash" | "ja3_hash" => Self::Ja3Hash,
            "ja3.string" | "ja3_string" => Self::Ja3String,
            "ja3s.hash" => Self::Ja3sHash,
            "ja3s.string" => Self::Ja3sString,
            _ => return None,
        })
    }

    /// The direction and handshake progress at which the buffer is final.
    #[must_use]
    pub fn available_at(self) -> (Direction, u8) {
        match self {
            Self::Sni | Self::Ja3Hash | Self::Ja3String => (Direction::ToServer, progress::HELLO),
            Self::Ja3sHash | Self::Ja3sString => (Direction::ToClient, progress::HELLO),
            _ => (Direction::ToClient, progress::CERT),
        }
    }
}

/// The TLS handshake of a flow (Suricata keeps exactly one per flow).
#[derive(Debug, Clone, Default)]
pub struct TlsTx {
    pub(crate) client_version: Option<u16>,
    pub(crate) sslv2_client_hello: bool,
    pub(crate) client_session_id: Vec<u8>,
    pub(crate) sni: Option<Vec<u8>>,
    pub(crate) ja3_string: Option<String>,
    pub(crate) ja3_hash: Option<String>,
    pub(crate) version: u16,
    pub(crate) cipher: Option<u16>,
    pub(crate) ja3s_string: Option<String>,
    pub(crate) ja3s_hash: Option<String>,
    pub(crate) session_resumed: bool,
    pub(crate) certs: Vec<CertInfo>,
    pub(crate) progress: PerDir<u8>,
    pub(crate) inspected: PerDir<bool>,
}

impl TlsTx {
    /// Always 0: one transaction per flow.
    #[must_use]
    pub fn id(&self) -> u64 {
        0
    }
    /// Handshake progress in `dir` (see [`progress`]).
    #[must_use]
    pub fn progress(&self, dir: Direction) -> u8 {
        *self.progress.get(dir)
    }
    /// The version the server chose (0 until the ServerHello), as `tls.version` compares it.
    #[must_use]
    pub fn version(&self) -> u16 {
        self.version
    }
    /// The ClientHello's `legacy_version` (or the SSLv2 hello's version).
    #[must_use]
    pub fn client_version(&self) -> Option<u16> {
        self.client_version
    }
    /// The chosen cipher suite.
    #[must_use]
    pub fn cipher(&self) -> Option<u16> {
        self.cipher
    }
    /// Whether the server resumed the client's session.
    #[must_use]
    pub fn session_resumed(&self) -> bool {
        self.session_resumed
    }
    /// The server certificate chain as parsed (leaf first).
    #[must_use]
    pub fn certs(&self) -> &[CertInfo] {
        &self.certs
    }
    /// A rule buffer: `index` selects the certificate for [`TlsBuffer::Certs`] and must be 0
    /// for the others.
    #[must_use]
    pub fn buffer(&self, which: TlsBuffer, index: usize) -> Option<&[u8]> {
        if which != TlsBuffer::Certs && index != 0 {
            return None;
        }
        let leaf = self.certs.first();
        fn s(o: Option<&String>) -> Option<&[u8]> {
            o.map(String::as_bytes)
        }
        match which {
            TlsBuffer::Sni => self.sni.as_deref(),
            TlsBuffer::CertSubject => s(leaf.and_then(|c| c.subject.as_ref())),
            TlsBuffer::CertIssuer => s(leaf.and_then(|c| c.issuer.as_ref())),
            TlsBuffer::CertSerial => s(leaf.and_then(|c| c.serial.as_ref())),
            TlsBuffer::CertFingerprint => leaf.map(|c| c.fingerprint.as_bytes()),
            TlsBuffer::Certs => self.certs.get(index).map(|c| c.der.as_slice()),
            TlsBuffer::Ja3Hash => s(self.ja3_hash.as_ref()),
            TlsBuffer::Ja3String => s(self.ja3_string.as_ref()),
            TlsBuffer::Ja3sHash => s(self.ja3s_hash.as_ref()),
            TlsBuffer::Ja3sString => s(self.ja3s_string.as_ref()),
        }
    }
}

/// Suricata's name for a TLS version: `TLSv1`, `TLS 1.1`, `TLS 1.2`, `TLS 1.3`, `SSLv2`,
/// `SSLv3`, `UNDETERMINED` (0), `TLS 1.3 draft-NN`, else `0x%04x`.
#[must_use]
pub fn version_name(v: u16) -> String {
    match v {
        0 => "UNDETERMINED".into(),
        0x0002 => "SSLv2".into(),
        0x0300 => "SSLv3".into(),
        0x0301 => "TLSv1".into(),
        0x0302 => "TLS 1.1".into(),
        0x0303 => "TLS 1.2".into(),
        0x0304 => "TLS 1.3".into(),
        v if v >> 8 == 0x7f => format!("TLS 1.3 draft-{}", v & 0xff),
        v => format!("0x{v:04x}"),
    }
}
