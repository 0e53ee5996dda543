//! Live capture on a real interface: a veth pair whose far end sits in a network namespace
//! the test creates, fed by `tcpreplay` inside that namespace. Tests that need namespaces
//! skip with a message where they are not permitted (not root, no `ip netns`, no
//! `tcpreplay`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::testnet::veth_or_skip;
use super::*;

fn testdata_pcap(name: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/testdata/pcaps")
        .join(name);
    if p.is_file() {
        Some(p)
    } else {
        eprintln!("SKIP: {} is absent", p.display());
        None
    }
}

/// Reads frames until `want` arrived or `limit` passed, then `settle` longer to catch
/// extras. Returns `(captured bytes, wire length)` per frame.
fn collect(
    cap: &mut LiveCapture,
    want: usize,
    limit: Duration,
    settle: Duration,
) -> Vec<(Vec<u8>, u32)> {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut done_at: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if now.duration_since(start) > limit || done_at.is_some_and(|d| now > d + settle) {
            return got;
        }
        if let Some(f) = cap.next_frame().unwrap() {
            got.push((f.data.to_vec(), f.wire_len));
        }
        if got.len() >= want && done_at.is_none() {
            done_at = Some(Instant::now());
        }
    }
}

/// The frames of a pcap file that pass `filter`, read offline by libpcap.
fn offline_frames(path: &Path, filter: &str) -> Vec<Vec<u8>> {
    let mut cap = pcap::Capture::from_file(path).unwrap();
    cap.filter(filter, true).unwrap();
    let mut out = Vec::new();
    while let Ok(p) = cap.next_packet() {
        out.push(p.data.to_vec());
    }
    out
}

// ---------------------------------------------------------------- pcap writer

/// Ethernet/IPv4/UDP frame of exactly `len` bytes (≥ 42) to UDP port 9999.
fn udp_frame(len: usize, fill: u8) -> Vec<u8> {
    let ip_len = u16::try_from(len - 14).unwrap();
    let udp_len = ip_len - 20;
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    f.extend_from_slice(&[
        0x45, 0, 0, 0, 0, 1, 0, 0, 64, 17, 0, 0, 10, 9, 0, 1, 10, 9, 0, 2,
    ]);
    f[16..18].copy_from_slice(&ip_len.to_be_bytes());
    f.extend_from_slice(&4000u16.to_be_bytes());
    f.extend_from_slice(&9999u16.to_be_bytes());
    f.extend_from_slice(&udp_len.to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.resize(len, fill);
    f
}

/// A classic little-endian pcap (LINKTYPE_ETHERNET, snaplen 262144) of `frames`.
fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let mut b = Vec::new();
    b.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&4u16.to_le_bytes());
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(&262_144u32.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    for (i, f) in frames.iter().enumerate() {
        let len = u32::try_from(f.len()).unwrap();
        b.extend_from_slice(&(1_700_000_000u32 + u32::try_from(i).unwrap()).to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&len.to_le_bytes());
        b.extend_from_slice(&len.to_le_bytes());
        b.extend_from_slice(f);
    }
    std::fs::write(path, b).unwrap();
}

// ---------------------------------------------------------------- tests without root

#[test]
fn live_config_defaults_and_toml() {
    let cfg: LiveConfig = toml::from_str("interface = \"eth0\"").unwrap();
    assert_eq!(cfg.interface, "eth0");
    assert_eq!(cfg.snaplen, 262_144);
    assert_eq!(cfg.buffer_bytes, 64 << 20);
    assert!(cfg.promiscuous);
    assert!(!cfg.immediate);
    assert!(cfg.bpf_filter.is_empty());
    assert_eq!(cfg.poll_ms, 100);
    cfg.validate().unwrap();
    let full: LiveConfig = toml::from_str(
        "interface = \"ens1f0\"\nsnaplen = 1518\nbuffer_bytes = 268435456\npromiscuous = false\n\
         bpf_filter = \"not port 22\"\nimmediate = true\npoll_ms = 20\n",
    )
    .unwrap();
    assert_eq!(full.snaplen, 1518);
    assert_eq!(full.buffer_bytes, 256 << 20);
    assert_eq!(full.bpf_filter, "not port 22");
    let err = toml::from_str::<LiveConfig>("interface = \"eth0\"\nsnap_len = 5\n").unwrap_err();
    assert!(err.to_string().contains("snap_len"), "{err}");
}

#[test]
fn live_config_rejects_out_of_range_values() {
    let base = LiveConfig::for_interface("eth0");
    let cases: Vec<(LiveConfig, &str)> = vec![
        (LiveConfig::default(), "interface is empty"),
        (
            LiveConfig::for_interface("a-very-long-ifname"),
            "not an interface name",
        ),
        (LiveConfig::for_interface("../etc"), "not an interface name"),
        (
            LiveConfig {
                snaplen: 64,
                ..base.clone()
            },
            "snaplen 64",
        ),
        (
            LiveConfig {
                snaplen: 262_145,
                ..base.clone()
            },
            "snaplen 262145",
        ),
        (
            LiveConfig {
                buffer_bytes: 4096,
                ..base.clone()
            },
            "buffer_bytes 4096",
        ),
        (
            LiveConfig {
                buffer_bytes: 1 << 31,
                ..base.clone()
            },
            "buffer_bytes 2147483648",
        ),
        (
            LiveConfig {
                poll_ms: 0,
                ..base.clone()
            },
            "poll_ms 0",
        ),
        (
            LiveConfig {
                bpf_filter: "tcp\0".into(),
                ..base.clone()
            },
            "NUL",
        ),
    ];
    for (cfg, want) in cases {
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains(want), "{cfg:?}: {err}");
        // open() refuses the same configs before touching libpcap.
        assert!(matches!(LiveCapture::open(&cfg), Err(LiveError::Config(_))));
    }
}

#[test]
fn live_missing_interface_is_an_open_error() {
    let err = LiveCapture::open(&LiveConfig::for_interface("tocsin-nope0")).unwrap_err();
    assert!(matches!(err, LiveError::Open { .. }), "{err}");
    assert!(
        err.to_string().starts_with("tocsin-nope0: cannot capture"),
        "{err}"
    );
}

#[test]
fn live_counters_widen_across_wraps() {
    let mut w = Wide::default();
    assert_eq!(w.update(10), 10);
    assert_eq!(w.update(4_294_967_294), 4_294_967_294);
    // 4294967294 -> 3 is 5 more packets (wrapped at 2^32).
    assert_eq!(w.update(3), 4_294_967_299);
    assert_eq!(w.update(3), 4_294_967_299);
}

// ---------------------------------------------------------------- tests on a veth pair

#[test]
fn live_capture_sees_every_replayed_packet() {
    let Some(pcap) = testdata_pcap("chrissanders-aurora.pcap") else {
        return;
    };
    let Some(veth) = veth_or_skip("live_capture_sees_every_replayed_packet") else {
        return;
    };
    // 39 Ethernet/IPv4/TCP frames (capinfos); the filter keeps them and drops any noise.
    let filter = "ip and tcp";
    let expected = offline_frames(&pcap, filter);
    assert_eq!(expected.len(), 39);
    let mut cap = LiveCapture::open(&LiveConfig {
        bpf_filter: filter.into(),
        immediate: true,
        poll_ms: 20,
        ..LiveConfig::for_interface(&veth.host)
    })
    .unwrap();
    assert_eq!(cap.linktype(), LinkType::Ethernet);
    let report = veth.replay(&pcap).unwrap();
    assert!(report.contains("Successful packets:        39"), "{report}");
    let got = collect(
        &mut cap,
        expected.len(),
        Duration::from_secs(10),
        Duration::from_millis(300),
    );
    assert_eq!(got.len(), expected.len(), "frames captured");
    for (i, ((data, wire), want)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(data, want, "frame {i}");
        assert_eq!(*wire as usize, want.len(), "frame {i}");
    }
    let stats = cap.stats().unwrap();
    assert_eq!(stats.captured, 39);
    assert_eq!(
        stats.captured_bytes,
        expected.iter().map(|f| f.len() as u64).sum::<u64>()
    );
    assert!(stats.received >= 39, "{stats:?}");
    assert_eq!(stats.dropped, 0, "{stats:?}");
}

#[test]
fn live_snaplen_keeps_or_cuts_jumbo_frames() {
    let Some(veth) = veth_or_skip("live_snaplen_keeps_or_cuts_jumbo_frames") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jumbo.pcap");
    // 60 bytes, 9014 bytes, and the largest frame MTU 65535 allows: 14 + 65535 = 65549.
    let frames = vec![
        udp_frame(60, 0x11),
        udp_frame(9014, 0x22),
        udp_frame(65_549, 0x33),
    ];
    write_pcap(&file, &frames);
    let filter = "udp dst port 9999";
    let mut full = LiveCapture::open(&LiveConfig {
        bpf_filter: filter.into(),
        immediate: true,
        ..LiveConfig::for_interface(&veth.host)
    })
    .unwrap();
    let mut cut = LiveCapture::open(&LiveConfig {
        bpf_filter: filter.into(),
        snaplen: 128,
        immediate: true,
        ..LiveConfig::for_interface(&veth.host)
    })
    .unwrap();
    veth.replay(&file).unwrap();
    let limit = Duration::from_secs(10);
    let settle = Duration::from_millis(200);
    let got_full = collect(&mut full, 3, limit, settle);
    let got_cut = collect(&mut cut, 3, limit, settle);
    assert_eq!(got_full.len(), 3);
    assert_eq!(got_cut.len(), 3);
    for ((f, c), want) in got_full.iter().zip(&got_cut).zip(&frames) {
        assert_eq!(&f.0, want, "default snaplen keeps the whole frame");
        assert_eq!(f.1 as usize, want.len());
        let keep = want.len().min(128);
        assert_eq!(c.0.as_slice(), &want[..keep], "snaplen 128 cuts");
        assert_eq!(c.1 as usize, want.len(), "wire length survives the cut");
    }
}

#[test]
fn live_bad_filter_is_reported() {
    let Some(veth) = veth_or_skip("live_bad_filter_is_reported") else {
        return;
    };
    let err = LiveCapture::open(&LiveConfig {
        bpf_filter: "tcp port eighty".into(),
        ..LiveConfig::for_interface(&veth.host)
    })
    .unwrap_err();
    assert!(matches!(err, LiveError::Filter { .. }), "{err}");
    assert!(err.to_string().contains("tcp port eighty"), "{err}");
}

#[test]
fn live_idle_capture_returns_and_removal_ends_it() {
    let Some(veth) = veth_or_skip("live_idle_capture_returns_and_removal_ends_it") else {
        return;
    };
    let mut cap = LiveCapture::open(&LiveConfig {
        bpf_filter: "udp dst port 9999".into(),
        poll_ms: 50,
        ..LiveConfig::for_interface(&veth.host)
    })
    .unwrap();
    // Idle: each call comes back within about poll_ms, with nothing.
    let start = Instant::now();
    for _ in 0..4 {
        assert!(cap.next_frame().unwrap().is_none());
    }
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    // Deleting the namespace destroys the pair: the capture must end with Closed.
    drop(veth);
    let start = Instant::now();
    let err = loop {
        match cap.next_frame() {
            Ok(_) => assert!(
                start.elapsed() < Duration::from_secs(5),
                "capture still running 5 s after its interface was removed"
            ),
            Err(e) => break e,
        }
    };
    assert!(matches!(err, LiveError::Closed { .. }), "{err}");
    // libpcap on Linux: "The interface disappeared" (ENODEV) or "... went down" (ENETDOWN).
    let msg = err.to_string();
    assert!(
        msg.contains("disappeared") || msg.contains("went down"),
        "{msg}"
    );
}
