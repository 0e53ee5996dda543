//! Inspection buffers and the keywords that select them.
//!
//! A sticky buffer keyword (`http.uri;`) switches where following payload keywords look; a
//! legacy content modifier (`http_uri;`) moves the content just before it. Both spellings
//! map to one [`BufferId`]. The table also records which application protocol produces
//! the buffer and in which direction, which the engine uses to decide when to inspect.

use crate::Direction;

/// Where payload keywords look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(
    missing_docs,
    reason = "variants are named after their rule keywords, listed in BUFFERS"
)]
pub enum BufferId {
    /// Packet payload, or the reassembled stream for TCP (`pkt_data` / no sticky buffer).
    Payload,
    Ipv4Hdr,
    Ipv6Hdr,
    TcpHdr,
    UdpHdr,
    Icmpv4Hdr,
    Icmpv6Hdr,
    /// `file.data` / `file_data`: HTTP bodies (and other protocols' files).
    FileData,
    /// `base64_data`: the output of the last `base64_decode`.
    Base64Data,
    HttpUri,
    HttpUriRaw,
    HttpMethod,
    HttpRequestLine,
    HttpRequestBody,
    HttpHeader,
    HttpHeaderRaw,
    HttpHeaderNames,
    HttpCookie,
    HttpUserAgent,
    HttpHost,
    HttpHostRaw,
    HttpAccept,
    HttpAcceptEnc,
    HttpAcceptLang,
    HttpConnection,
    HttpContentLen,
    HttpContentType,
    HttpReferer,
    HttpStart,
    HttpProtocol,
    HttpStatCode,
    HttpStatMsg,
    HttpResponseLine,
    HttpResponseBody,
    HttpServer,
    HttpLocation,
    HttpRequestHeader,
    HttpResponseHeader,
    DnsQuery,
    TlsSni,
    TlsCertSubject,
    TlsCertIssuer,
    TlsCertSerial,
    TlsCertFingerprint,
    TlsCerts,
    TlsSubjectAltName,
    Ja3Hash,
    Ja3String,
    Ja3sHash,
    Ja3sString,
    SshProto,
    SshSoftware,
}

/// Which directions a buffer exists in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufDir {
    /// Request side only.
    ToServer,
    /// Response side only.
    ToClient,
    /// Both sides (e.g. `http.header` has request and response headers).
    Both,
}

impl BufDir {
    /// Whether the buffer exists in `dir`.
    #[must_use]
    pub fn has(self, dir: Direction) -> bool {
        matches!(
            (self, dir),
            (Self::Both, _)
                | (Self::ToServer, Direction::ToServer)
                | (Self::ToClient, Direction::ToClient)
        )
    }
}

/// One row of the buffer table.
#[derive(Debug, Clone, Copy)]
pub struct BufferInfo {
    /// The buffer.
    pub id: BufferId,
    /// Sticky keyword (`http.uri`).
    pub sticky: &'static str,
    /// Legacy content modifier (`http_uri`), if Suricata 7 still treats it as one.
    pub legacy: Option<&'static str>,
    /// Application protocol producing it (`None`: packet-level buffer).
    pub app: Option<&'static str>,
    /// Directions.
    pub dir: BufDir,
    /// Several instances per transaction (each inspected separately).
    pub multi: bool,
}

const fn b(
    id: BufferId,
    sticky: &'static str,
    legacy: Option<&'static str>,
    app: Option<&'static str>,
    dir: BufDir,
    multi: bool,
) -> BufferInfo {
    BufferInfo {
        id,
        sticky,
        legacy,
        app,
        dir,
        multi,
    }
}

use BufDir::{Both, ToClient as TC, ToServer as TS};
use BufferId as B;

const HTTP: Option<&str> = Some("http");
const DNS: Option<&str> = Some("dns");
const TLS: Option<&str> = Some("tls");
const SSH: Option<&str> = Some("ssh");

/// Every buffer Tocsin knows.
pub const BUFFERS: &[BufferInfo] = &[
    b(B::Payload, "pkt_data", None, None, Both, false),
    b(B::Ipv4Hdr, "ipv4.hdr", None, None, Both, false),
    b(B::Ipv6Hdr, "ipv6.hdr", None, None, Both, false),
    b(B::TcpHdr, "tcp.hdr", None, None, Both, false),
    b(B::UdpHdr, "udp.hdr", None, None, Both, false),
    b(B::Icmpv4Hdr, "icmpv4.hdr", None, None, Both, false),
    b(B::Icmpv6Hdr, "icmpv6.hdr", None, None, Both, false),
    b(B::FileData, "file.data", None, None, Both, false),
    b(B::Base64Data, "base64_data", None, None, Both, false),
    b(B::HttpUri, "http.uri", Some("http_uri"), HTTP, TS, false),
    b(
        B::HttpUriRaw,
        "http.uri.raw",
        Some("http_raw_uri"),
        HTTP,
        TS,
        false,
    ),
    b(
        B::HttpMethod,
        "http.method",
        Some("http_method"),
        HTTP,
        TS,
        false,
    ),
    b(
        B::HttpRequestLine,
        "http.request_line",
        None,
        HTTP,
        TS,
        false,
    ),
    b(
        B::HttpRequestBody,
        "http.request_body",
        Some("http_client_body"),
        HTTP,
        TS,
        false,
    ),
    b(
        B::HttpHeader,
        "http.header",
        Some("http_header"),
        HTTP,
        Both,
        false,
    ),
    b(
        B::HttpHeaderRaw,
        "http.header.raw",
        Some("http_raw_header"),
        HTTP,
        Both,
        false,
    ),
    b(
        B::HttpHeaderNames,
        "http.header_names",
        None,
        HTTP,
        Both,
        false,
    ),
    b(
        B::HttpCookie,
        "http.cookie",
        Some("http_cookie"),
        HTTP,
        Both,
        false,
    ),
    b(
        B::HttpUserAgent,
        "http.user_agent",
        Some("http_user_agent"),
        HTTP,
        TS,
        false,
    ),
    b(B::HttpHost, "http.host", Some("http_host"), HTTP, TS, false),
    b(
        B::HttpHostRaw,
        "http.host.raw",
        Some("http_raw_host"),
        HTTP,
        TS,
        false,
    ),
    b(B::HttpAccept, "http.accept", None, HTTP, TS, false),
    b(B::HttpAcceptEnc, "http.accept_enc", None, HTTP, TS, false),
    b(B::HttpAcceptLang, "http.accept_lang", None, HTTP, TS, false),
    b(
        B::HttpConnection,
        "http.connection",
        None,
        HTTP,
        Both,
        false,
    ),
    b(
        B::HttpContentLen,
        "http.content_len",
        None,
        HTTP,
        Both,
        false,
    ),
    b(
        B::HttpContentType,
        "http.content_type",
        None,
        HTTP,
        Both,
        false,
    ),
    b(B::HttpReferer, "http.referer", None, HTTP, TS, false),
    b(B::HttpStart, "http.start", None, HTTP, Both, false),
    b(B::HttpProtocol, "http.protocol", None, HTTP, Both, false),
    b(
        B::HttpStatCode,
        "http.stat_code",
        Some("http_stat_code"),
        HTTP,
        TC,
        false,
    ),
    b(
        B::HttpStatMsg,
        "http.stat_msg",
        Some("http_stat_msg"),
        HTTP,
        TC,
        false,
    ),
    b(
        B::HttpResponseLine,
        "http.response_line",
        None,
        HTTP,
        TC,
        false,
    ),
    b(
        B::HttpResponseBody,
        "http.response_body",
        Some("http_server_body"),
        HTTP,
        TC,
        false,
    ),
    b(B::HttpServer, "http.server", None, HTTP, TC, false),
    b(B::HttpLocation, "http.location", None, HTTP, TC, false),
    b(
        B::HttpRequestHeader,
        "http.request_header",
        None,
        HTTP,
        TS,
        true,
    ),
    b(
        B::HttpResponseHeader,
        "http.response_header",
        None,
        HTTP,
        TC,
        true,
    ),
    b(B::DnsQuery, "dns.query", None, DNS, TS, true),
    b(B::TlsSni, "tls.sni", None, TLS, TS, false),
    b(B::TlsCertSubject, "tls.cert_subject", None, TLS, TC, false),
    b(B::TlsCertIssuer, "tls.cert_issuer", None, TLS, TC, false),
    b(B::TlsCertSerial, "tls.cert_serial", None, TLS, TC, false),
    b(
        B::TlsCertFingerprint,
        "tls.cert_fingerprint",
        None,
        TLS,
        TC,
        false,
    ),
    b(B::TlsCerts, "tls.certs", None, TLS, TC, true),
    b(
        B::TlsSubjectAltName,
        "tls.subjectaltname",
        None,
        TLS,
        TC,
        true,
    ),
    b(B::Ja3Hash, "ja3.hash", None, TLS, TS, false),
    b(B::Ja3String, "ja3.string", None, TLS, TS, false),
    b(B::Ja3sHash, "ja3s.hash", None, TLS, TC, false),
    b(B::Ja3sString, "ja3s.string", None, TLS, TC, false),
    b(B::SshProto, "ssh.proto", None, SSH, Both, false),
    b(B::SshSoftware, "ssh.software", None, SSH, Both, false),
];

/// Sticky-buffer spellings beyond the table's main one.
const STICKY_ALIASES: &[(&str, BufferId)] = &[
    ("file_data", B::FileData),
    ("http_request_line", B::HttpRequestLine),
    ("http_header_names", B::HttpHeaderNames),
    ("http_accept", B::HttpAccept),
    ("http_accept_enc", B::HttpAcceptEnc),
    ("http_accept_lang", B::HttpAcceptLang),
    ("http_connection", B::HttpConnection),
    ("http_content_len", B::HttpContentLen),
    ("http_content_type", B::HttpContentType),
    ("http_referer", B::HttpReferer),
    ("http_start", B::HttpStart),
    ("http_protocol", B::HttpProtocol),
    ("http_response_line", B::HttpResponseLine),
    ("dns_query", B::DnsQuery),
    ("tls_sni", B::TlsSni),
    ("tls_cert_subject", B::TlsCertSubject),
    ("tls_cert_issuer", B::TlsCertIssuer),
    ("tls_cert_serial", B::TlsCertSerial),
    ("tls_cert_fingerprint", B::TlsCertFingerprint),
    ("ssh_proto", B::SshProto),
    ("ssh_software", B::SshSoftware),
    ("ja3_hash", B::Ja3Hash),
    ("ja3_string", B::Ja3String),
];

impl BufferId {
    /// The table row for this buffer.
    #[must_use]
    pub fn info(self) -> &'static BufferInfo {
        // Every variant has a row (checked by a test); fall back to Payload's row.
        BUFFERS.iter().find(|i| i.id == self).unwrap_or(&BUFFERS[0])
    }

    /// The sticky keyword naming this buffer.
    #[must_use]
    pub fn name(self) -> &'static str {
        self.info().sticky
    }
}

/// Looks up a sticky buffer keyword (`http.uri`, `file_data`, `dns_query`, ...).
#[must_use]
pub fn sticky(keyword: &str) -> Option<BufferId> {
    BUFFERS
        .iter()
        .find(|i| i.sticky == keyword)
        .map(|i| i.id)
        .or_else(|| {
            STICKY_ALIASES
                .iter()
                .find(|(k, _)| *k == keyword)
                .map(|&(_, id)| id)
        })
}

/// Looks up a legacy content modifier (`http_uri`, `http_header`, ...). Suricata 7 keeps
/// thirteen of these as modifiers; its other underscore spellings (`http_content_type`,
/// `dns_query`, `tls_sni`, ...) are aliases of sticky buffers (see `STICKY_ALIASES`).
#[must_use]
pub fn legacy_modifier(keyword: &str) -> Option<BufferId> {
    BUFFERS
        .iter()
        .find(|i| i.legacy == Some(keyword))
        .map(|i| i.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_resolve() {
        assert_eq!(sticky("http.uri"), Some(BufferId::HttpUri));
        assert_eq!(sticky("file_data"), Some(BufferId::FileData));
        assert_eq!(sticky("dns_query"), Some(BufferId::DnsQuery));
        assert_eq!(legacy_modifier("http_uri"), Some(BufferId::HttpUri));
        assert_eq!(
            legacy_modifier("http_client_body"),
            Some(BufferId::HttpRequestBody)
        );
        assert_eq!(legacy_modifier("dns_query"), None);
        assert_eq!(legacy_modifier("http_content_type"), None);
        assert_eq!(sticky("http_content_type"), Some(BufferId::HttpContentType));
        assert_eq!(sticky("nonsense"), None);
    }

    #[test]
    fn every_row_round_trips() {
        for row in BUFFERS {
            assert_eq!(row.id.info().sticky, row.sticky);
            assert_eq!(sticky(row.sticky), Some(row.id));
        }
    }
}
