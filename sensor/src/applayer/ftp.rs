//! FTP control channel: just enough parsing to announce data connections (`ftp-data`).
//!
//! Input: in-order control-channel bytes per direction.
//! Output: [`FtpExpectation`]s from `PORT`/`EPRT` commands (RFC 959, RFC 2428: the server will
//! connect to the client) and `227`/`229` replies (the client will connect to the server).
//! The flow layer turns them into flows created with [`crate::applayer::AppLayer::with_proto`]
//! and [`crate::applayer::AppProto::FtpData`], as Suricata's expectation table does.
//! Invariants: pure line handling; malformed commands are ignored.
//! Caps: lines longer than [`MAX_LINE`] are cut; at most [`MAX_EXPECTATIONS`] pending
//! expectations per flow (oldest dropped).

use std::net::{IpAddr, Ipv4Addr};

use crate::Direction;
use crate::applayer::perdir::PerDir;

/// Longest control line kept.
pub const MAX_LINE: usize = 4096;
/// Pending expectations kept per flow.
pub const MAX_EXPECTATIONS: usize = 64;

/// A data connection announced on the control channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FtpExpectation {
    /// Who will open the data connection, relative to the control flow: `ToServer` when the
    /// client connects to the server (passive mode), `ToClient` when the server connects to
    /// the client (active mode).
    pub initiator: Direction,
    /// The address to be connected to, when the command names one (`PORT`, `EPRT`, `227`).
    pub addr: Option<IpAddr>,
    /// The port to be connected to.
    pub port: u16,
}

/// Control-channel state of one FTP flow.
#[derive(Debug, Clone, Default)]
pub struct FtpState {
    lines: PerDir<Vec<u8>>,
    expectations: Vec<FtpExpectation>,
}

fn numbers(s: &[u8]) -> Vec<u16> {
    s.split(|&b| b == b',')
        .map(|p| {
            let p = super::http::parser::trim_by(p, |b| b == b' ');
            super::http::parser::parse_decimal(p).and_then(|n| u16::try_from(n).ok())
        })
        .map(|n| n.unwrap_or(u16::MAX))
        .collect()
}

/// `h1,h2,h3,h4,p1,p2` as in `PORT` and `227` replies.
fn host_port(s: &[u8]) -> Option<(IpAddr, u16)> {
    let n = numbers(s);
    let [h1, h2, h3, h4, p1, p2] = n.as_slice() else {
        return None;
    };
    let octet = |v: u16| u8::try_from(v).ok();
    let addr = Ipv4Addr::new(octet(*h1)?, octet(*h2)?, octet(*h3)?, octet(*h4)?);
    Some((
        IpAddr::V4(addr),
        u16::from(octet(*p1)?) << 8 | u16::from(octet(*p2)?),
    ))
}

/// `<d><proto><d><addr><d><port><d>` as in `EPRT` and (with empty fields) `229` replies.
fn extended(s: &[u8]) -> Option<(Option<IpAddr>, u16)> {
    let d = *s.first()?;
    let parts: Vec<&[u8]> = s.get(1..)?.split(|&b| b == d).collect();
    let (addr, port) = (parts.get(1)?, parts.get(2)?);
    let port = super::http::parser::parse_decimal(port).and_then(|p| u16::try_from(p).ok())?;
    let addr = std::str::from_utf8(addr)
        .ok()
        .and_then(|a| a.parse::<IpAddr>().ok());
    Some((addr, port))
}

impl FtpState {
    /// In-order control bytes for `dir`.
    pub fn on_stream(&mut self, dir: Direction, mut data: &[u8]) {
        while !data.is_empty() {
            let (part, rest, complete) = match memchr::memchr(b'\n', data) {
                Some(p) => {
                    let (a, b) = data.split_at(p + 1);
                    (a, b, true)
                }
                None => (data, &[][..], false),
            };
            let buf = self.lines.get_mut(dir);
            let room = MAX_LINE.saturating_sub(buf.len());
            buf.extend_from_slice(part.get(..room.min(part.len())).unwrap_or_default());
            data = rest;
            if complete {
                let line = std::mem::take(self.lines.get_mut(dir));
                self.line(dir, super::http::parser::chomp(&line));
            }
        }
    }

    fn line(&mut self, dir: Direction, line: &[u8]) {
        let upper = |n: usize| line.get(..n).map(<[u8]>::to_ascii_uppercase);
        let found = match dir {
            Direction::ToServer if upper(5).as_deref() == Some(b"PORT ") => line
                .get(5..)
                .and_then(host_port)
                .map(|(a, p)| FtpExpectation {
                    initiator: Direction::ToClient,
                    addr: Some(a),
                    port: p,
                }),
            Direction::ToServer if upper(5).as_deref() == Some(b"EPRT ") => line
                .get(5..)
                .and_then(extended)
                .map(|(a, p)| FtpExpectation {
                    initiator: Direction::ToClient,
                    addr: a,
                    port: p,
                }),
            Direction::ToClient if line.starts_with(b"227") => {
                let open = memchr::memchr(b'(', line);
                let close = memchr::memrchr(b')', line);
                match (open, close) {
                    (Some(o), Some(c)) if c > o => {
                        line.get(o + 1..c)
                            .and_then(host_port)
                            .map(|(a, p)| FtpExpectation {
                                initiator: Direction::ToServer,
                                addr: Some(a),
                                port: p,
                            })
                    }
                    _ => None,
                }
            }
            Direction::ToClient if line.starts_with(b"229") => {
                let open = memchr::memchr(b'(', line);
                let close = memchr::memrchr(b')', line);
                match (open, close) {
                    (Some(o), Some(c)) if c > o => {
                        line.get(o + 1..c)
                            .and_then(extended)
                            .map(|(a, p)| FtpExpectation {
                                initiator: Direction::ToServer,
                                addr: a,
                                port: p,
                            })
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        if let Some(e) = found {
            if self.expectations.len() >= MAX_EXPECTATIONS {
                self.expectations.remove(0);
            }
            self.expectations.push(e);
        }
    }

    /// Takes the expectations announced since the last call.
    pub fn take_expectations(&mut self) -> Vec<FtpExpectation> {
        std::mem::take(&mut self.expectations)
    }
}

#[cfg(test)]
mod tests {
    use super::{FtpExpectation, FtpState};
    use crate::Direction::{ToClient, ToServer};
    use std::net::IpAddr;

    #[test]
    fn port_eprt_pasv_epsv() {
        let mut f = FtpState::default();
        // RFC 959 PORT: 172.19.79.6, port 19*256+137 = 5001
        f.on_stream(ToServer, b"PORT 172,19,79,6,19,");
        f.on_stream(ToServer, b"137\r\nEPRT |2|::1|6275|\r\nPORT 1,2,3\r\n");
        f.on_stream(ToClient, b"227 Entering Passive Mode (192,168,1,10,234,220).\r\n229 Entering Extended Passive Mode (|||6446|)\r\n");
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert_eq!(
            f.take_expectations(),
            vec![
                FtpExpectation {
                    initiator: ToClient,
                    addr: ip("172.19.79.6"),
                    port: 5001
                },
                FtpExpectation {
                    initiator: ToClient,
                    addr: ip("::1"),
                    port: 6275
                },
                FtpExpectation {
                    initiator: ToServer,
                    addr: ip("192.168.1.10"),
                    port: 60124
                },
                FtpExpectation {
                    initiator: ToServer,
                    addr: None,
                    port: 6446
                },
            ]
        );
        assert!(f.take_expectations().is_empty());
        f.on_stream(ToServer, &vec![b'x'; 10_000]);
        f.on_stream(ToServer, b"\r\nPORT 256,1,1,1,1,1\r\n");
        assert!(f.take_expectations().is_empty());
    }
}
