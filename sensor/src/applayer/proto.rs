//! [`AppProto`]: the application protocol of a flow, as Suricata names it.
//!
//! Input: rule text (`alert http ...` heads, `app-layer-protocol:` values) or the detector.
//! Output: the protocol value and its EVE spelling (`app_proto`, `app_proto_tc`, ...).
//! Invariants: `as_eve_str` and `from_rule_name` use Suricata 7's names; every name that
//! Suricata 7 accepts in a rule head maps to a variant, even for protocols Tocsin only detects
//! (or does not detect at all), so such rules load and simply never match those flows.

/// An application-layer protocol, or the detection outcome when there is none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AppProto {
    /// Detection has not concluded yet (too little data so far).
    Unknown,
    /// Detection gave up: no known protocol matched (Suricata's `failed`).
    Failed,
    /// HTTP/1.x (Suricata 7 writes `http`; rules may say `http1`).
    Http,
    /// Rule-only: `http` in a rule head or `app-layer-protocol:http` means HTTP/1 or HTTP/2.
    HttpAny,
    /// HTTP/2 (detected by the client connection preface; not parsed).
    Http2,
    /// DNS over UDP or TCP.
    Dns,
    /// TLS / SSL.
    Tls,
    /// FTP control channel.
    Ftp,
    /// FTP data channel (set by the flow layer from an FTP expectation, never by content).
    FtpData,
    /// SMTP.
    Smtp,
    /// SSH.
    Ssh,
    /// IMAP.
    Imap,
    /// SIP.
    Sip,
    /// DHCP (BOOTP).
    Dhcp,
    /// SMB 1/2/3 over NetBIOS session service.
    Smb,
    /// DCE/RPC.
    Dcerpc,
    /// Modbus/TCP (rule name only).
    Modbus,
    /// EtherNet/IP (rule name only).
    Enip,
    /// DNP3 (rule name only).
    Dnp3,
    /// NFS (rule name only).
    Nfs,
    /// NTP (rule name only).
    Ntp,
    /// TFTP (rule name only).
    Tftp,
    /// IKE / IKEv2 (rule name only).
    Ike,
    /// Kerberos 5 (rule name only).
    Krb5,
    /// SNMP (rule name only).
    Snmp,
    /// RFB / VNC (rule name only).
    Rfb,
    /// MQTT (rule name only).
    Mqtt,
    /// PostgreSQL (rule name only).
    Pgsql,
    /// Telnet (rule name only).
    Telnet,
    /// RDP (rule name only).
    Rdp,
    /// QUIC (rule name only).
    Quic,
    /// BitTorrent DHT (rule name only).
    BittorrentDht,
}

impl AppProto {
    /// Suricata's spelling in EVE `app_proto` fields: `http`, `dns`, `tls`, `ftp-data`,
    /// `failed`, ... `Unknown` is written as `unknown` (Suricata omits the field then).
    #[must_use]
    pub fn as_eve_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Failed => "failed",
            Self::Http | Self::HttpAny => "http",
            Self::Http2 => "http2",
            Self::Dns => "dns",
            Self::Tls => "tls",
            Self::Ftp => "ftp",
            Self::FtpData => "ftp-data",
            Self::Smtp => "smtp",
            Self::Ssh => "ssh",
            Self::Imap => "imap",
            Self::Sip => "sip",
            Self::Dhcp => "dhcp",
            Self::Smb => "smb",
            Self::Dcerpc => "dcerpc",
            Self::Modbus => "modbus",
            Self::Enip => "enip",
            Self::Dnp3 => "dnp3",
            Self::Nfs => "nfs",
            Self::Ntp => "ntp",
            Self::Tftp => "tftp",
            Self::Ike => "ike",
            Self::Krb5 => "krb5",
            Self::Snmp => "snmp",
            Self::Rfb => "rfb",
            Self::Mqtt => "mqtt",
            Self::Pgsql => "pgsql",
            Self::Telnet => "telnet",
            Self::Rdp => "rdp",
            Self::Quic => "quic",
            Self::BittorrentDht => "bittorrent-dht",
        }
    }

    /// Parses a protocol name from a rule head (`alert http ...`) or an `app-layer-protocol:`
    /// value. Case-insensitive. `http` gives [`AppProto::HttpAny`] (HTTP/1 or HTTP/2, as in
    /// Suricata 7), `http1` gives [`AppProto::Http`]; `failed` and `unknown` are accepted for
    /// `app-layer-protocol`. Returns `None` for names Suricata 7 does not know, and for the
    /// transport names (`tcp`, `udp`, `ip`, ...), which are not application protocols.
    #[must_use]
    pub fn from_rule_name(name: &str) -> Option<Self> {
        let lower = name.to_ascii_lowercase();
        Some(match lower.as_str() {
            "unknown" => Self::Unknown,
            "failed" => Self::Failed,
            "http" => Self::HttpAny,
            "http1" => Self::Http,
            "http2" => Self::Http2,
            "dns" => Self::Dns,
            "tls" | "ssl" => Self::Tls,
            "ftp" => Self::Ftp,
            "ftp-data" => Self::FtpData,
            "smtp" => Self::Smtp,
            "ssh" => Self::Ssh,
            "imap" => Self::Imap,
            "sip" => Self::Sip,
            "dhcp" => Self::Dhcp,
            "smb" => Self::Smb,
            "dcerpc" => Self::Dcerpc,
            "modbus" => Self::Modbus,
            "enip" => Self::Enip,
            "dnp3" => Self::Dnp3,
            "nfs" => Self::Nfs,
            "ntp" => Self::Ntp,
            "tftp" => Self::Tftp,
            "ike" | "ikev2" => Self::Ike,
            "krb5" => Self::Krb5,
            "snmp" => Self::Snmp,
            "rfb" => Self::Rfb,
            "mqtt" => Self::Mqtt,
            "pgsql" => Self::Pgsql,
            "telnet" => Self::Telnet,
            "rdp" => Self::Rdp,
            "quic" => Self::Quic,
            "bittorrent-dht" => Self::BittorrentDht,
            _ => return None,
        })
    }

    /// Whether a rule written for `self` (from [`AppProto::from_rule_name`]) applies to a flow
    /// whose protocol is `flow`. Equal protocols match; [`AppProto::HttpAny`] also matches
    /// HTTP/1 and HTTP/2 flows.
    #[must_use]
    pub fn matches_flow(self, flow: Self) -> bool {
        self == flow || (self == Self::HttpAny && matches!(flow, Self::Http | Self::Http2))
    }

    /// True for a real protocol (neither `Unknown` nor `Failed`).
    #[must_use]
    pub fn is_known(self) -> bool {
        !matches!(self, Self::Unknown | Self::Failed)
    }
}

impl std::fmt::Display for AppProto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_eve_str())
    }
}

#[cfg(test)]
mod tests {
    use super::AppProto;

    #[test]
    fn rule_names_round_trip_to_eve_names() {
        let table = [
            ("http", AppProto::HttpAny, "http"),
            ("HTTP1", AppProto::Http, "http"),
            ("http2", AppProto::Http2, "http2"),
            ("dns", AppProto::Dns, "dns"),
            ("tls", AppProto::Tls, "tls"),
            ("ssl", AppProto::Tls, "tls"),
            ("ftp-data", AppProto::FtpData, "ftp-data"),
            ("ikev2", AppProto::Ike, "ike"),
            ("failed", AppProto::Failed, "failed"),
        ];
        for (name, proto, eve) in table {
            assert_eq!(AppProto::from_rule_name(name), Some(proto), "{name}");
            assert_eq!(proto.as_eve_str(), eve, "{name}");
        }
        for bad in ["tcp", "udp", "ip", "tcp-pkt", "gopher", ""] {
            assert_eq!(AppProto::from_rule_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn keywords_select_buffers() {
        use crate::applayer::{DnsBuffer, HttpBuffer, TlsBuffer};
        assert_eq!(
            HttpBuffer::from_keyword("http_client_body"),
            Some(HttpBuffer::RequestBody)
        );
        assert_eq!(
            HttpBuffer::from_keyword("http.uri.raw"),
            Some(HttpBuffer::UriRaw)
        );
        assert_eq!(
            HttpBuffer::from_keyword("file_data"),
            Some(HttpBuffer::FileData)
        );
        assert_eq!(HttpBuffer::from_keyword("content"), None);
        assert_eq!(
            TlsBuffer::from_keyword("tls_cert_subject"),
            Some(TlsBuffer::CertSubject)
        );
        assert_eq!(DnsBuffer::from_keyword("dns_query"), Some(DnsBuffer::Query));
    }

    #[test]
    fn generic_http_matches_both_versions_only() {
        assert!(AppProto::HttpAny.matches_flow(AppProto::Http));
        assert!(AppProto::HttpAny.matches_flow(AppProto::Http2));
        assert!(!AppProto::Http.matches_flow(AppProto::Http2));
        assert!(!AppProto::HttpAny.matches_flow(AppProto::Tls));
        assert!(AppProto::Dns.matches_flow(AppProto::Dns));
    }
}
