//! Test-only helper: pull per-direction TCP payloads and UDP datagrams out of simple,
//! in-order captures (real libpcap + etherparse), so app-layer tests can run on real traffic
//! while the decode/reassembly stages are written elsewhere.
//!
//! Input: a pcap file (Ethernet, BSD loopback, Linux SLL or raw IP link types).
//! Output: flows with their events in capture order. TCP payloads are trimmed against the
//! next expected sequence number (retransmissions dropped, jumps reported as gaps); this is
//! enough for the captures used here, not a reassembler.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use etherparse::{NetSlice, SlicedPacket, TransportSlice};

use super::{AppLayer, AppLayerConfig, IPPROTO_TCP, IPPROTO_UDP};
use crate::{Direction, Timestamp};

/// The shared test data directory.
pub fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata")
}

/// A suricata-verify capture, or `None` (with a message) when the data set is absent.
pub fn sv_pcap(test: &str, file: &str) -> Option<PathBuf> {
    let p = testdata()
        .join("suricata-verify/tests")
        .join(test)
        .join(file);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("skipping: {} not found", p.display());
        None
    }
}

/// A capture from the real-pcap set, or `None` when absent.
pub fn real_pcap(file: &str) -> Option<PathBuf> {
    let p = testdata().join("pcaps").join(file);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("skipping: {} not found", p.display());
        None
    }
}

/// One thing that happened to a flow.
#[derive(Debug, Clone)]
pub enum Ev {
    Data(Direction, Vec<u8>),
    Gap(Direction, u64),
    Close(Direction),
}

/// A flow as seen in the capture.
#[derive(Debug, Clone)]
pub struct TestFlow {
    pub ipproto: u8,
    pub client: (IpAddr, u16),
    pub server: (IpAddr, u16),
    pub events: Vec<(Ev, Timestamp)>,
}

impl TestFlow {
    /// Feeds the flow into a fresh [`AppLayer`] (closing both directions at the end).
    pub fn run(&self, cfg: &AppLayerConfig) -> AppLayer {
        let mut al = AppLayer::new(cfg, self.ipproto, self.server.1, self.client.1);
        for (e, ts) in &self.events {
            match e {
                Ev::Data(d, b) if self.ipproto == IPPROTO_UDP => al.on_datagram(*d, b, *ts),
                Ev::Data(d, b) => al.on_stream(*d, b, *ts),
                Ev::Gap(d, n) => al.on_gap(*d, *n),
                Ev::Close(d) => al.on_close(*d),
            }
        }
        al.on_close(Direction::ToServer);
        al.on_close(Direction::ToClient);
        al
    }
}

struct TcpTrack {
    next: [Option<u32>; 2],
    closed: [bool; 2],
    /// Segments that arrived ahead of `next`, by sequence number.
    ahead: [std::collections::BTreeMap<u32, Vec<u8>>; 2],
}

fn slice(linktype: i32, data: &[u8]) -> Option<SlicedPacket<'_>> {
    match linktype {
        1 => SlicedPacket::from_ethernet(data).ok(),
        0 => SlicedPacket::from_ip(data.get(4..)?).ok(),
        113 => SlicedPacket::from_linux_sll(data).ok(),
        12 | 101 => SlicedPacket::from_ip(data).ok(),
        _ => None,
    }
}

/// Reads every TCP/UDP flow of a capture.
pub fn flows(path: &Path) -> Vec<TestFlow> {
    let mut cap = pcap::Capture::from_file(path).expect("open pcap");
    let linktype = cap.get_datalink().0;
    let mut out: Vec<TestFlow> = Vec::new();
    type Key = (u8, (IpAddr, u16), (IpAddr, u16));
    let mut index: HashMap<Key, usize> = HashMap::new();
    let mut tcp: HashMap<usize, TcpTrack> = HashMap::new();
    while let Ok(pkt) = cap.next_packet() {
        let ts = Timestamp::from_secs_micros(pkt.header.ts.tv_sec, pkt.header.ts.tv_usec);
        let Some(sp) = slice(linktype, pkt.data) else {
            continue;
        };
        let (src, dst) = match &sp.net {
            Some(NetSlice::Ipv4(v4)) => (
                IpAddr::V4(v4.header().source_addr()),
                IpAddr::V4(v4.header().destination_addr()),
            ),
            Some(NetSlice::Ipv6(v6)) => (
                IpAddr::V6(v6.header().source_addr()),
                IpAddr::V6(v6.header().destination_addr()),
            ),
            _ => continue,
        };
        let (proto, sport, dport, payload, tcp_info) = match &sp.transport {
            Some(TransportSlice::Tcp(t)) => (
                IPPROTO_TCP,
                t.source_port(),
                t.destination_port(),
                t.payload(),
                Some((t.sequence_number(), t.syn(), t.ack(), t.fin() || t.rst())),
            ),
            Some(TransportSlice::Udp(u)) => (
                IPPROTO_UDP,
                u.source_port(),
                u.destination_port(),
                u.payload(),
                None,
            ),
            _ => continue,
        };
        let a = (src, sport);
        let b = (dst, dport);
        let (fi, dir) = if let Some(&i) = index.get(&(proto, a, b)) {
            (i, Direction::ToServer)
        } else if let Some(&i) = index.get(&(proto, b, a)) {
            (i, Direction::ToClient)
        } else {
            // A SYN-ACK first means the capture starts with the server's side.
            let (client, server, dir) = match tcp_info {
                Some((_, true, true, _)) => (b, a, Direction::ToClient),
                _ => (a, b, Direction::ToServer),
            };
            out.push(TestFlow {
                ipproto: proto,
                client,
                server,
                events: Vec::new(),
            });
            index.insert((proto, client, server), out.len() - 1);
            (out.len() - 1, dir)
        };
        let flow = &mut out[fi];
        let Some((seq, syn, _, fin)) = tcp_info else {
            flow.events.push((Ev::Data(dir, payload.to_vec()), ts));
            continue;
        };
        let tr = tcp.entry(fi).or_insert(TcpTrack {
            next: [None; 2],
            closed: [false; 2],
            ahead: Default::default(),
        });
        let d = dir.index();
        if syn {
            tr.next[d] = Some(seq.wrapping_add(1));
        }
        if !payload.is_empty() {
            let next = *tr.next[d].get_or_insert(seq);
            if (seq.wrapping_sub(next) as i32) > 0 {
                // Out of order: hold it until the hole is filled (or the flow ends).
                tr.ahead[d].insert(seq, payload.to_vec());
            } else {
                let mut cur = (seq, payload.to_vec());
                loop {
                    let next = tr.next[d].unwrap_or(cur.0);
                    let behind = next.wrapping_sub(cur.0) as usize;
                    if let Some(fresh) = cur.1.get(behind..).filter(|f| !f.is_empty()) {
                        flow.events.push((Ev::Data(dir, fresh.to_vec()), ts));
                        tr.next[d] = Some(cur.0.wrapping_add(cur.1.len() as u32));
                    }
                    let next = tr.next[d].unwrap_or(0);
                    let Some((&k, _)) = tr.ahead[d]
                        .iter()
                        .find(|(k, _)| (k.wrapping_sub(next) as i32) <= 0)
                    else {
                        break;
                    };
                    let seg = tr.ahead[d].remove(&k).unwrap_or_default();
                    cur = (k, seg);
                }
            }
        }
        if fin && !tr.closed[d] {
            tr.closed[d] = true;
            flow.events.push((Ev::Close(dir), ts));
        }
    }
    // Segments never preceded by their hole: report the hole as a gap, then the data.
    for (fi, tr) in &mut tcp {
        for d in [Direction::ToServer, Direction::ToClient] {
            let ahead = std::mem::take(&mut tr.ahead[d.index()]);
            let mut next = tr.next[d.index()].unwrap_or(0);
            for (seq, data) in ahead {
                let hole = seq.wrapping_sub(next) as i32;
                if hole > 0 {
                    out[*fi].events.push((
                        Ev::Gap(d, u64::from(hole.unsigned_abs())),
                        Timestamp::default(),
                    ));
                }
                out[*fi]
                    .events
                    .push((Ev::Data(d, data.clone()), Timestamp::default()));
                next = seq.wrapping_add(data.len() as u32);
            }
        }
    }
    out
}
