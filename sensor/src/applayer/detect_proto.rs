//! Protocol detection by content, with ports as hints (Suricata's pattern matcher + probing
//! parsers).
//!
//! Input: the first bytes of one direction of a flow (TCP: everything seen so far in that
//! direction; UDP: one datagram), the direction, and the flow's ports.
//! Output: [`Probe::Match`] with the protocol, [`Probe::NoMatch`] when no candidate can match
//! any more, or [`Probe::NeedMore`] when a candidate is still a prefix match.
//! Invariants: pure and allocation-free; never panics on any input; a `NoMatch` or `Match`
//! answer for a prefix never changes when more bytes are appended (so TCP chunking cannot
//! change the outcome).
//!
//! What matches, following Suricata 7's registrations:
//! - content patterns at offset 0, any port: HTTP methods followed by space/tab (to server,
//!   case-sensitive) and `HTTP/0.9`, `HTTP/1.0`, `HTTP/1.1` (to client); the HTTP/2 client
//!   preface; TLS handshake records `16 03 00..03` (both ways) and SSLv2 client hellos;
//!   `SSH-` (both ways); FTP `USER `, `PASS `, `PORT `, `FEAT` (to server, any case) and
//!   `220 (` (to client); SMTP `EHLO`, `HELO`, `QUIT` (to server, any case); SMB
//!   `\xffSMB`/`\xfeSMB`/`\xfdSMB` after a NetBIOS session header; DCE/RPC v5 headers.
//! - port-hinted probes: DNS (TCP and UDP, port 53, header and question section must parse),
//!   SIP (UDP 5060/5061, request or status line), DHCP (UDP 67/68, BOOTP with magic cookie).
//!
//! Caps: no probe reads more than 512 bytes of its input.

use crate::Direction;
use crate::applayer::AppProto;

/// The answer of a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// The data identifies this protocol.
    Match(AppProto),
    /// No candidate protocol can match this direction any more.
    NoMatch,
    /// Some candidate still matches a prefix; call again with more bytes.
    NeedMore,
}

/// The flow's ports, used as hints for port-bound probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    /// The responder's (server's) port.
    pub server: u16,
    /// The initiator's (client's) port.
    pub client: u16,
}

impl Ports {
    fn either(self, set: &[u16]) -> bool {
        set.contains(&self.server) || set.contains(&self.client)
    }
}

/// HTTP request methods Suricata registers for detection.
const HTTP_METHODS: [&[u8]; 28] = [
    b"GET",
    b"PUT",
    b"POST",
    b"HEAD",
    b"TRACE",
    b"OPTIONS",
    b"CONNECT",
    b"DELETE",
    b"PATCH",
    b"PROPFIND",
    b"PROPPATCH",
    b"MKCOL",
    b"COPY",
    b"MOVE",
    b"LOCK",
    b"UNLOCK",
    b"CHECKOUT",
    b"UNCHECKOUT",
    b"CHECKIN",
    b"UPDATE",
    b"LABEL",
    b"REPORT",
    b"MKWORKSPACE",
    b"MKACTIVITY",
    b"MERGE",
    b"INVALID",
    b"VERSION-CONTROL",
    b"BASELINE-CONTROL",
];

/// Combines candidate answers: any match wins (first in list order), otherwise any pending
/// prefix keeps detection open.
#[derive(Debug, Default)]
struct Verdict {
    found: Option<AppProto>,
    pending: bool,
}

impl Verdict {
    fn add(&mut self, p: Probe) {
        match p {
            Probe::Match(proto) => {
                if self.found.is_none() {
                    self.found = Some(proto);
                }
            }
            Probe::NeedMore => self.pending = true,
            Probe::NoMatch => {}
        }
    }
    fn finish(self) -> Probe {
        match (self.found, self.pending) {
            (Some(p), _) => Probe::Match(p),
            (None, true) => Probe::NeedMore,
            (None, false) => Probe::NoMatch,
        }
    }
}

/// Matches `pattern` at offset 0 of `data`.
fn prefix(data: &[u8], pattern: &[u8], case_insensitive: bool, proto: AppProto) -> Probe {
    let n = data.len().min(pattern.len());
    let (Some(have), Some(want)) = (data.get(..n), pattern.get(..n)) else {
        return Probe::NoMatch;
    };
    let same = if case_insensitive {
        have.eq_ignore_ascii_case(want)
    } else {
        have == want
    };
    if !same {
        Probe::NoMatch
    } else if n < pattern.len() {
        Probe::NeedMore
    } else {
        Probe::Match(proto)
    }
}

/// An HTTP method followed by a space or a tab.
fn http_request(data: &[u8]) -> Probe {
    let mut v = Verdict::default();
    for m in HTTP_METHODS {
        match prefix(data, m, false, AppProto::Http) {
            Probe::Match(_) => match data.get(m.len()) {
                Some(b' ' | b'\t') => v.add(Probe::Match(AppProto::Http)),
                Some(_) => {}
                None => v.add(Probe::NeedMore),
            },
            other => v.add(other),
        }
    }
    v.finish()
}

/// TLS handshake record header `16 03 0x` with x in 0..=3.
fn tls_record(data: &[u8]) -> Probe {
    match data {
        [] => Probe::NeedMore,
        [0x16] | [0x16, 0x03] => Probe::NeedMore,
        [0x16, 0x03, minor, ..] if *minor <= 3 => Probe::Match(AppProto::Tls),
        _ => Probe::NoMatch,
    }
}

/// SSLv2-format ClientHello: 2-byte record header with the high bit set, message type 1 and a
/// version of SSL 2.0, SSL 3.0 or TLS 1.x.
fn sslv2_client_hello(data: &[u8]) -> Probe {
    let Some(first) = data.first() else {
        return Probe::NeedMore;
    };
    if first & 0x80 == 0 {
        return Probe::NoMatch;
    }
    let Some(h) = data.first_chunk::<5>() else {
        return Probe::NeedMore;
    };
    let len = usize::from(u16::from_be_bytes([h[0] & 0x7f, h[1]]));
    let version = u16::from_be_bytes([h[3], h[4]]);
    if h[2] == 1 && len >= 9 && (version == 0x0002 || (0x0300..=0x0303).contains(&version)) {
        Probe::Match(AppProto::Tls)
    } else {
        Probe::NoMatch
    }
}

/// NetBIOS session message followed by an SMB1/2/3 header magic.
fn smb(data: &[u8]) -> Probe {
    match data.first() {
        None => return Probe::NeedMore,
        Some(0x00) => {}
        Some(_) => return Probe::NoMatch,
    }
    let Some(magic) = data.get(4..8) else {
        return if data.len() <= 4 {
            Probe::NeedMore
        } else {
            // Partial magic: keep going while it still could be one.
            let tail = data.get(4..).unwrap_or_default();
            let could = [b"\xffSMB", b"\xfeSMB", b"\xfdSMB"]
                .iter()
                .any(|m| m.starts_with(tail));
            if could {
                Probe::NeedMore
            } else {
                Probe::NoMatch
            }
        };
    };
    if matches!(magic, b"\xffSMB" | b"\xfeSMB" | b"\xfdSMB") {
        Probe::Match(AppProto::Smb)
    } else {
        Probe::NoMatch
    }
}

/// DCE/RPC connection-oriented header: version 5, minor 0/1, a known packet type, a sane data
/// representation and fragment length.
fn dcerpc(data: &[u8]) -> Probe {
    let Some(h) = data.first_chunk::<10>() else {
        return match data {
            [] | [5] => Probe::NeedMore,
            [5, minor, ..] if *minor <= 1 => Probe::NeedMore,
            _ => Probe::NoMatch,
        };
    };
    let frag_len = if h[4] & 0x10 != 0 {
        u16::from_le_bytes([h[8], h[9]])
    } else {
        u16::from_be_bytes([h[8], h[9]])
    };
    if h[0] == 5 && h[1] <= 1 && h[2] <= 19 && h[4] & 0xee == 0 && frag_len >= 16 {
        Probe::Match(AppProto::Dcerpc)
    } else {
        Probe::NoMatch
    }
}

/// Probes the first bytes of one direction of a TCP flow.
#[must_use]
pub fn probe_tcp(dir: Direction, data: &[u8], ports: Ports) -> Probe {
    let mut v = Verdict::default();
    match dir {
        Direction::ToServer => {
            v.add(http_request(data));
            v.add(prefix(data, b"PRI * HTTP/2.0\r\n", false, AppProto::Http2));
            v.add(tls_record(data));
            v.add(sslv2_client_hello(data));
            v.add(prefix(data, b"SSH-", false, AppProto::Ssh));
            for p in [&b"USER "[..], b"PASS ", b"PORT ", b"FEAT"] {
                v.add(prefix(data, p, true, AppProto::Ftp));
            }
            for p in [b"EHLO", b"HELO", b"QUIT"] {
                v.add(prefix(data, p, true, AppProto::Smtp));
            }
        }
        Direction::ToClient => {
            for p in [b"HTTP/0.9", b"HTTP/1.0", b"HTTP/1.1"] {
                v.add(prefix(data, p, false, AppProto::Http));
            }
            v.add(tls_record(data));
            v.add(prefix(data, b"SSH-", false, AppProto::Ssh));
            v.add(prefix(data, b"220 (", true, AppProto::Ftp));
        }
    }
    v.add(smb(data));
    v.add(dcerpc(data));
    if ports.either(&[53]) {
        v.add(crate::applayer::dns::parser::probe_tcp(data, dir));
    }
    v.finish()
}

/// Probes one UDP datagram. UDP probes never answer `NeedMore`: a datagram is all there is.
#[must_use]
pub fn probe_udp(dir: Direction, data: &[u8], ports: Ports) -> Probe {
    let mut v = Verdict::default();
    if ports.either(&[53]) {
        v.add(crate::applayer::dns::parser::probe_udp(data, dir));
    }
    if ports.either(&[5060, 5061]) && sip(data) {
        v.add(Probe::Match(AppProto::Sip));
    }
    if ports.either(&[67, 68]) && dhcp(data) {
        v.add(Probe::Match(AppProto::Dhcp));
    }
    match v.finish() {
        Probe::NeedMore => Probe::NoMatch,
        other => other,
    }
}

/// A SIP request line (`METHOD sip:... SIP/2.0`) or status line (`SIP/2.0 NNN`).
fn sip(data: &[u8]) -> bool {
    let line_end = memchr::memchr(b'\n', data).unwrap_or(data.len()).min(512);
    let line = data.get(..line_end).unwrap_or_default();
    if line.starts_with(b"SIP/2.0 ") {
        return line
            .get(8..11)
            .is_some_and(|c| c.iter().all(u8::is_ascii_digit));
    }
    let mut parts = line.split(|&b| b == b' ');
    let method = parts.next().unwrap_or_default();
    let uri = parts.next().unwrap_or_default();
    let version = parts.next().unwrap_or_default();
    !method.is_empty()
        && method.iter().all(u8::is_ascii_uppercase)
        && (uri.starts_with(b"sip:") || uri.starts_with(b"sips:") || uri.starts_with(b"tel:"))
        && version.starts_with(b"SIP/2.0")
}

/// BOOTP request/reply with the DHCP magic cookie `63 82 53 63` at offset 236.
fn dhcp(data: &[u8]) -> bool {
    matches!(data.first(), Some(1 | 2)) && data.get(236..240) == Some(&[0x63, 0x82, 0x53, 0x63][..])
}

#[cfg(test)]
mod tests {
    use super::{Ports, Probe, probe_tcp, probe_udp};
    use crate::Direction::{ToClient, ToServer};
    use crate::applayer::AppProto;

    const WEB: Ports = Ports {
        server: 80,
        client: 40000,
    };
    const DNS: Ports = Ports {
        server: 53,
        client: 40000,
    };

    #[test]
    fn tcp_table() {
        let table: &[(crate::Direction, &[u8], Ports, Probe)] = &[
            (
                ToServer,
                b"GET / HTTP/1.1\r\n",
                WEB,
                Probe::Match(AppProto::Http),
            ),
            (ToServer, b"GET\t/", WEB, Probe::Match(AppProto::Http)),
            (ToServer, b"GE", WEB, Probe::NeedMore),
            (ToServer, b"GET", WEB, Probe::NeedMore),
            (ToServer, b"get / HTTP/1.1", WEB, Probe::NoMatch),
            (ToServer, b"GETX /", WEB, Probe::NoMatch),
            (
                ToClient,
                b"HTTP/1.1 200 OK\r\n",
                WEB,
                Probe::Match(AppProto::Http),
            ),
            (ToClient, b"HTTP/1.", WEB, Probe::NeedMore),
            (ToClient, b"HTTP/2.0 200", WEB, Probe::NoMatch),
            (
                ToServer,
                b"\x16\x03\x01\x02\x00\x01",
                WEB,
                Probe::Match(AppProto::Tls),
            ),
            (
                ToClient,
                b"\x16\x03\x03\x00\x5d\x02",
                WEB,
                Probe::Match(AppProto::Tls),
            ),
            (ToServer, b"\x16\x03\x05", WEB, Probe::NoMatch),
            // SSLv2 ClientHello offering TLS 1.0: len 0x2e, type 1, version 3.1
            (
                ToServer,
                b"\x80\x2e\x01\x03\x01\x00\x15",
                WEB,
                Probe::Match(AppProto::Tls),
            ),
            (
                ToServer,
                b"SSH-2.0-OpenSSH_8.9\r\n",
                WEB,
                Probe::Match(AppProto::Ssh),
            ),
            (ToClient, b"SSH-1.99-x", WEB, Probe::Match(AppProto::Ssh)),
            (
                ToServer,
                b"user anonymous\r\n",
                WEB,
                Probe::Match(AppProto::Ftp),
            ),
            (ToServer, b"FEAT\r\n", WEB, Probe::Match(AppProto::Ftp)),
            (
                ToClient,
                b"220 (vsFTPd 3.0.3)\r\n",
                WEB,
                Probe::Match(AppProto::Ftp),
            ),
            (
                ToClient,
                b"220 mail.example.com ESMTP\r\n",
                WEB,
                Probe::NoMatch,
            ),
            (
                ToServer,
                b"ehlo client\r\n",
                WEB,
                Probe::Match(AppProto::Smtp),
            ),
            (
                ToServer,
                b"\x00\x00\x00\x2f\xffSMBr",
                WEB,
                Probe::Match(AppProto::Smb),
            ),
            (
                ToClient,
                b"\x00\x00\x00\x2f\xfeSMB",
                WEB,
                Probe::Match(AppProto::Smb),
            ),
            (ToServer, b"\x00\x00\x00\x2f\xfeS", WEB, Probe::NeedMore),
            (ToServer, b"\x00\x00\x00\x2f\xaaSMB", WEB, Probe::NoMatch),
            // DCE/RPC bind: v5.0, ptype 11, flags 3, drep LE, frag_len 72
            (
                ToServer,
                b"\x05\x00\x0b\x03\x10\x00\x00\x00\x48\x00",
                WEB,
                Probe::Match(AppProto::Dcerpc),
            ),
            (
                ToServer,
                b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
                WEB,
                Probe::Match(AppProto::Http2),
            ),
            (ToServer, b"\x01\x02\x03garbage", WEB, Probe::NoMatch),
            (ToServer, b"", WEB, Probe::NeedMore),
        ];
        for (i, (dir, data, ports, want)) in table.iter().enumerate() {
            assert_eq!(probe_tcp(*dir, data, *ports), *want, "case {i}: {data:?}");
        }
    }

    #[test]
    fn dns_over_tcp_needs_port_53() {
        // len 28 | id 0x1234 | flags 0x0100 | qd 1 an 0 ns 0 ar 0 | 7example3com0 | A IN
        let msg = b"\x00\x1d\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01";
        assert_eq!(probe_tcp(ToServer, msg, DNS), Probe::Match(AppProto::Dns));
        assert_eq!(probe_tcp(ToServer, msg, WEB), Probe::NoMatch);
    }

    #[test]
    fn udp_table() {
        let query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01";
        assert_eq!(probe_udp(ToServer, query, DNS), Probe::Match(AppProto::Dns));
        assert_eq!(probe_udp(ToServer, query, WEB), Probe::NoMatch);
        assert_eq!(probe_udp(ToServer, b"\x12\x34", DNS), Probe::NoMatch);
        let sip_ports = Ports {
            server: 5060,
            client: 5060,
        };
        let options = b"OPTIONS sip:100@172.25.105.40 SIP/2.0\r\nVia: SIP/2.0/UDP x\r\n";
        assert_eq!(
            probe_udp(ToServer, options, sip_ports),
            Probe::Match(AppProto::Sip)
        );
        let status = b"SIP/2.0 200 OK\r\n";
        assert_eq!(
            probe_udp(ToClient, status, sip_ports),
            Probe::Match(AppProto::Sip)
        );
        assert_eq!(
            probe_udp(ToClient, b"HTTP/1.1 200 OK", sip_ports),
            Probe::NoMatch
        );
        let mut bootp = vec![0u8; 300];
        bootp[0] = 1;
        bootp[236..240].copy_from_slice(&[0x63, 0x82, 0x53, 0x63]);
        let dhcp_ports = Ports {
            server: 67,
            client: 68,
        };
        assert_eq!(
            probe_udp(ToServer, &bootp, dhcp_ports),
            Probe::Match(AppProto::Dhcp)
        );
        bootp[237] = 0;
        assert_eq!(probe_udp(ToServer, &bootp, dhcp_ports), Probe::NoMatch);
    }
}
