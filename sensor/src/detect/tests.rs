//! Engine-level cases: ordering, flowbits, pass, thresholds, prefilter completeness.

use std::path::PathBuf;

use super::*;
use crate::Timestamp;
use crate::decode::{LinkType, decode};
use crate::detect::rule::{LoadReport, Vars, load_str};

fn engine(rules: &str) -> Engine {
    let mut report = LoadReport::default();
    load_str(
        rules,
        &PathBuf::from("t.rules"),
        &Vars::suricata_defaults(),
        &mut report,
    );
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    let (e, rejected) = Engine::build(
        &report.rules,
        &Classifications::builtin(),
        DetectConfig::default(),
    )
    .unwrap();
    assert!(rejected.is_empty(), "{rejected:?}");
    e
}

/// IPv4/TCP 10.0.0.1:1234 -> 10.0.0.2:80, PSH|ACK, with `payload`.
fn tcp_packet(payload: &[u8]) -> Vec<u8> {
    let total = 40 + payload.len();
    let mut p = vec![
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        1,
        0,
        0,
        64,
        6,
        0,
        0,
        10,
        0,
        0,
        1,
        10,
        0,
        0,
        2,
    ];
    p.extend_from_slice(&[
        0x04, 0xd2, 0, 80, 0, 0, 0, 1, 0, 0, 0, 1, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0,
    ]);
    p.extend_from_slice(payload);
    p
}

fn run(e: &Engine, frame: &[u8], flow: &mut FlowDetect) -> Vec<u32> {
    let pkt = decode(LinkType::Raw, frame, Timestamp(0), 1).unwrap();
    let mut input = PacketInput {
        pkt: &pkt,
        dir: crate::Direction::ToServer,
        flow_id: 1,
        established: true,
        app_proto: AppProto::Unknown,
        stream_bytes: [0; 2],
        stream: None,
        in_stream: false,
        reassembled_frag: false,
        pseudo: false,
        flow,
    };
    let mut out = Vec::new();
    e.inspect_packet(&mut DetectThread::new(), &mut input, &mut out);
    out.iter().map(|a| e.sig(a.sig).unwrap().sid).collect()
}

#[test]
fn flowbits_set_before_read_on_the_same_packet() {
    // The reader comes first in the file; ordering must still run the setter first.
    let e = engine(
        "alert tcp any any -> any any (msg:\"reader\"; flowbits:isset,seen; content:\"GET\"; sid:2;)\n\
         alert tcp any any -> any any (msg:\"setter\"; content:\"GET\"; flowbits:set,seen; flowbits:noalert; sid:1;)\n",
    );
    let mut flow = FlowDetect::default();
    assert_eq!(run(&e, &tcp_packet(b"GET / HTTP/1.1"), &mut flow), [2]);
    assert_eq!(flow.bits().len(), 1);
}

#[test]
fn isnotset_and_unset() {
    let e = engine(
        "alert tcp any any -> any any (content:\"A\"; flowbits:isnotset,x; flowbits:set,x; sid:1;)\n\
         alert tcp any any -> any any (content:\"B\"; flowbits:isset,x; flowbits:unset,x; sid:2;)\n",
    );
    let mut flow = FlowDetect::default();
    assert_eq!(run(&e, &tcp_packet(b"A"), &mut flow), [1]);
    assert_eq!(
        run(&e, &tcp_packet(b"A"), &mut flow),
        Vec::<u32>::new(),
        "x is set now"
    );
    assert_eq!(run(&e, &tcp_packet(b"B"), &mut flow), [2]);
    assert_eq!(run(&e, &tcp_packet(b"A"), &mut flow), [1], "x was unset");
}

#[test]
fn pass_rules_stop_inspection() {
    let e = engine(
        "alert tcp any any -> any any (content:\"evil\"; sid:1;)\n\
         pass tcp any any -> any 80 (content:\"evil\"; sid:2;)\n",
    );
    assert!(run(&e, &tcp_packet(b"evil"), &mut FlowDetect::default()).is_empty());
}

#[test]
fn header_and_checks() {
    let e = engine(
        "alert tcp any any -> any 80 (msg:\"port\"; flags:PA; dsize:4; sid:1;)\n\
         alert tcp any any -> any 81 (msg:\"wrong port\"; sid:2;)\n\
         alert tcp 10.0.0.2 any -> any any (msg:\"wrong src\"; sid:3;)\n\
         alert tcp 10.0.0.2 80 <> any any (msg:\"bidir\"; sid:4;)\n\
         alert udp any any -> any any (msg:\"udp\"; sid:5;)\n\
         alert tcp any any -> any any (msg:\"to_client\"; flow:to_client; sid:6;)\n\
         alert ip any any -> any any (msg:\"ttl\"; ttl:64; sid:7;)\n",
    );
    let mut got = run(&e, &tcp_packet(b"abcd"), &mut FlowDetect::default());
    got.sort_unstable();
    assert_eq!(got, [1, 4, 7]);
}

#[test]
fn every_rule_with_a_fast_pattern_is_found_by_the_prefilter() {
    let mut rules = String::new();
    for i in 0..500u32 {
        rules.push_str(&format!(
            "alert tcp any any -> any any (content:\"pat{i:03}x\"; nocase; sid:{};)\n",
            i + 1
        ));
    }
    let e = engine(&rules);
    for i in [0u32, 17, 499] {
        let payload = format!("....PAT{i:03}X....");
        assert_eq!(
            run(
                &e,
                &tcp_packet(payload.as_bytes()),
                &mut FlowDetect::default()
            ),
            [i + 1]
        );
    }
}

#[test]
fn threshold_limit_by_src() {
    let e = engine(
        "alert tcp any any -> any any (content:\"x\"; threshold:type limit, track by_src, count 2, seconds 60; sid:1;)\n",
    );
    let mut flow = FlowDetect::default();
    let alerts: usize = (0..5)
        .map(|_| run(&e, &tcp_packet(b"x"), &mut flow).len())
        .sum();
    assert_eq!(alerts, 2);
}

#[test]
fn alert_order_follows_priority() {
    let e = engine(
        "alert tcp any any -> any any (content:\"x\"; priority:3; sid:1;)\n\
         alert tcp any any -> any any (content:\"x\"; priority:1; sid:2;)\n",
    );
    assert_eq!(
        run(&e, &tcp_packet(b"x"), &mut FlowDetect::default()),
        [2, 1]
    );
}

#[test]
fn address_indexed_rules_match_exactly_as_their_headers_say() {
    // Content-less rules over short IPv4 lists are indexed by address; the packet is
    // 10.0.0.1:1234 -> 10.0.0.2:80. Expected by reading the headers: 1 (source listed),
    // 3 (destination listed, source any), 5 (bidirectional, the packet's destination is
    // the listed source), 7 (a /30 holding 10.0.0.2 as destination); not 2 (listed IP is
    // neither end), 4 (source listed but destination port 443), 6 (one-way, reversed).
    let e = engine(
        "alert tcp [10.0.0.1,192.0.2.7] any -> any any (msg:\"1\"; sid:1;)\n\
         alert tcp [192.0.2.8,192.0.2.9] any -> any any (msg:\"2\"; sid:2;)\n\
         alert tcp any any -> [10.0.0.2] any (msg:\"3\"; sid:3;)\n\
         alert tcp [10.0.0.1] any -> any 443 (msg:\"4\"; sid:4;)\n\
         alert tcp [10.0.0.2] any <> [10.0.0.1] any (msg:\"5\"; sid:5;)\n\
         alert tcp [10.0.0.2] any -> [10.0.0.1] any (msg:\"6\"; sid:6;)\n\
         alert tcp any any -> 10.0.0.0/30 80 (msg:\"7\"; sid:7;)\n",
    );
    let mut flow = FlowDetect::default();
    let mut sids = run(&e, &tcp_packet(b"x"), &mut flow);
    sids.sort_unstable();
    assert_eq!(sids, [1, 3, 5, 7]);
}
