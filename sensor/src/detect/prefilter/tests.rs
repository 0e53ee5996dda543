//! Prefilter cases: both backends against a naive oracle (ASCII-caseless substring search)
//! on fixed and random patterns, scratch reuse across databases, backend selection, and
//! the whole engine with ET Open over real captures with each backend.

use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::*;

/// Rules whose pattern occurs in `hay`, ASCII case ignored; empty patterns always match.
/// Written independently of both backends: a window-by-window comparison.
fn oracle(entries: &[(Vec<u8>, u32)], hay: &[u8]) -> Vec<u32> {
    let hay = hay.to_ascii_lowercase();
    let mut out: Vec<u32> = entries
        .iter()
        .filter(|(p, _)| {
            let p = p.to_ascii_lowercase();
            p.is_empty() || hay.windows(p.len()).any(|w| w == p.as_slice())
        })
        .map(|(_, r)| *r)
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

fn candidates(mpm: &Mpm, hay: &[u8], cands: &mut Candidates, nsigs: usize) -> Vec<u32> {
    cands.reset(nsigs, mpm.patterns());
    mpm.scan(hay, cands);
    cands.sort();
    cands.list.clone()
}

/// The backends this build can run.
fn backends() -> Vec<Backend> {
    let mut b = vec![Backend::AhoCorasick];
    if Backend::hyperscan_compiled() {
        b.push(Backend::Hyperscan);
    } else {
        eprintln!("hyperscan feature off: only aho-corasick is checked");
    }
    b
}

fn entries(pats: &[&[u8]]) -> Vec<(Vec<u8>, u32)> {
    pats.iter()
        .zip(0u32..)
        .map(|(p, i)| (p.to_vec(), i))
        .collect()
}

/// Patterns, haystack, expected rule numbers.
type Case<'a> = (&'a [&'a [u8]], &'a [u8], &'a [u32]);

#[test]
fn fixed_cases_match_the_oracle_on_every_backend() {
    // (patterns, haystack, expected rule numbers) — expectations worked out by hand.
    let cases: &[Case] = &[
        (&[b"abc", b"xyz"], b"..ABC..", &[0]),
        (&[b"ABC"], b"xabcx", &[0]),
        (&[b"\x00"], b"a\x00b", &[0]),
        (&[b"\x00\x00", b"\x00"], b"\x00", &[1]),
        (&[b"\xff\xfe", b"\xff"], b"\x01\xff\xfe", &[0, 1]),
        // No case folding outside ASCII: 0xC0 and 0xE0 are different bytes.
        (&[b"\xc0"], b"\xe0", &[]),
        (&[b"\xc9t\xe9"], b"\xc9T\xe9", &[0]),
        // Metacharacters of a regex engine are plain bytes here.
        (&[b".*", b"a|b", b"(x)", b"\\x41"], b"a|b \\x41", &[1, 3]),
        (&[b"a+"], b"aaa", &[]),
        // Longer than the haystack.
        (&[b"longer than the haystack"], b"longer", &[]),
        // Empty haystack: only empty patterns.
        (&[b"a", b""], b"", &[1]),
        (&[b"a"], b"", &[]),
        // The same pattern for two rules, differing in case.
        (&[b"GET", b"get", b"post"], b"GET / HTTP/1.1", &[0, 1]),
        // Overlapping occurrences.
        (&[b"aa", b"aaa", b"aaaa"], b"xaaax", &[0, 1]),
    ];
    for backend in backends() {
        let mut cands = Candidates::default();
        for (pats, hay, want) in cases {
            let e = entries(pats);
            assert_eq!(oracle(&e, hay), *want, "oracle on {pats:?} / {hay:?}");
            let mpm = Mpm::build_with(&e, backend).unwrap();
            assert_eq!(mpm.backend(), backend);
            let got = candidates(&mpm, hay, &mut cands, e.len());
            assert_eq!(got, *want, "{backend}: {pats:?} in {hay:?}");
            assert_eq!(cands.scan_failures(), 0);
        }
    }
}

#[test]
fn one_thread_scratch_serves_many_databases() {
    if !Backend::hyperscan_compiled() {
        eprintln!("hyperscan feature off: nothing to check");
        return;
    }
    // A tiny database first, then a large one needing more scratch, then both again.
    let small = entries(&[b"ab"]);
    let big: Vec<(Vec<u8>, u32)> = (0..5000u32)
        .map(|i| (format!("pattern-{i:05}-{}", i % 13).into_bytes(), i))
        .collect();
    let small_db = Mpm::build_with(&small, Backend::Hyperscan).unwrap();
    let big_db = Mpm::build_with(&big, Backend::Hyperscan).unwrap();
    let mut cands = Candidates::default();
    let hay = b"..AB..pattern-04321-5..PATTERN-00007-7..";
    for _ in 0..3 {
        assert_eq!(candidates(&small_db, hay, &mut cands, 5000), [0]);
        assert_eq!(candidates(&big_db, hay, &mut cands, 5000), [7, 4321]);
    }
    assert_eq!(cands.scan_failures(), 0);
    // A second thread gets its own scratch and the same answers.
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut other = Candidates::default();
            assert_eq!(candidates(&big_db, hay, &mut other, 5000), [7, 4321]);
        });
    });
}

#[test]
fn candidates_accumulate_over_scans_and_reset_per_round() {
    for backend in backends() {
        let mpm = Mpm::build_with(&entries(&[b"one", b"two", b"three"]), backend).unwrap();
        let mut cands = Candidates::default();
        cands.reset(3, mpm.patterns());
        mpm.scan(b"two", &mut cands);
        mpm.scan(b"one two", &mut cands); // payload, then stream: one round
        cands.sort();
        assert_eq!(cands.list, [0, 1], "{backend}");
        cands.reset(3, mpm.patterns());
        mpm.scan(b"three", &mut cands);
        assert_eq!(cands.list, [2], "{backend}");
    }
}

#[test]
fn backend_names_and_config() {
    for (name, b) in [
        ("auto", Backend::Auto),
        ("hyperscan", Backend::Hyperscan),
        ("aho-corasick", Backend::AhoCorasick),
    ] {
        assert_eq!(name.parse::<Backend>().unwrap(), b);
        assert_eq!(b.to_string(), name);
        let cfg: crate::config::DetectConfig =
            toml::from_str(&format!("prefilter = \"{name}\"")).unwrap();
        assert_eq!(cfg.prefilter, b);
    }
    let err = "hs".parse::<Backend>().unwrap_err().to_string();
    assert!(err.contains("auto, hyperscan or aho-corasick"), "{err}");
    assert!(toml::from_str::<crate::config::DetectConfig>("prefilter = \"ac\"").is_err());
    assert_eq!(
        crate::config::DetectConfig::default().prefilter,
        Backend::Auto
    );
}

#[test]
fn forced_hyperscan_reports_unavailability() {
    let r = Mpm::build_with(&entries(&[b"x"]), Backend::Hyperscan);
    if Backend::hyperscan_compiled() {
        assert_eq!(r.unwrap().backend(), Backend::Hyperscan);
    } else {
        assert!(matches!(r, Err(MpmError::HyperscanUnavailable)));
    }
}

/// Bytes that exercise case folding, NUL, high bytes and regex metacharacters.
const ALPHABET: &[u8] = b"aAbBzZ\x00\xff\xc0\xe0.\\|*(";

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(ALPHABET), 0..=max)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn backends_agree_with_the_oracle(
        pats in prop::collection::vec(bytes(6), 1..40),
        hay in bytes(120),
        inserted in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
    ) {
        // Plant some patterns in the haystack so most cases have hits.
        let mut hay = hay;
        for ix in &inserted {
            let p = ix.get(&pats);
            let at = ix.index(hay.len() + 1);
            hay.splice(at..at, p.iter().copied());
        }
        let e: Vec<(Vec<u8>, u32)> = pats.iter().cloned().zip(0u32..).collect();
        let want = oracle(&e, &hay);
        let mut cands = Candidates::default();
        for backend in backends() {
            let mpm = Mpm::build_with(&e, backend).unwrap();
            prop_assert_eq!(&candidates(&mpm, &hay, &mut cands, e.len()), &want, "{}", backend);
        }
    }
}

// ---------------------------------------------------------------- whole engine, ET Open

use crate::capture::PcapFile;
use crate::config::SensorConfig;
use crate::decode::decode;
use crate::detect::Engine;
use crate::detect::rule::{self, LoadReport};
use crate::output::eve::MemorySink;
use crate::pipeline::{RunOptions, run_pcap};

/// Serializes the tests that change the process default backend.
static DEFAULT_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn testdata() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata");
    if p.join("rules/et-open/rules").is_dir() && p.join("pcaps").is_dir() {
        Some(p)
    } else {
        eprintln!("SKIP: {} is absent", p.display());
        None
    }
}

/// Every ET Open rule file, with the commented-out rules enabled (as the Suricata reference
/// run in `pcaps/suricata-7-et-open/README.md` did).
fn et_open_enabled(dir: &Path) -> String {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rules"))
        .collect();
    files.sort();
    let mut text = String::new();
    for f in files {
        let body = String::from_utf8_lossy(&std::fs::read(f).unwrap()).into_owned();
        for line in body.lines() {
            let l = line
                .strip_prefix("# ")
                .or_else(|| line.strip_prefix('#'))
                .filter(|rest| {
                    ["alert ", "drop ", "reject ", "pass "]
                        .iter()
                        .any(|a| rest.starts_with(a))
                })
                .unwrap_or(line);
            text.push_str(l);
            text.push('\n');
        }
    }
    text
}

/// Builds the engine with `backend` both as the config value and as the process default,
/// so the test holds whichever of the two the engine consults.
fn engine_with(report: &LoadReport, cfg: &SensorConfig, backend: Backend) -> Engine {
    let mut detect = cfg.detect.clone();
    detect.prefilter = backend;
    set_default_backend(backend);
    let built = Engine::build(&report.rules, &cfg.classifications().unwrap(), detect);
    set_default_backend(Backend::Auto);
    let (engine, _rejected) = built.unwrap();
    let used: Vec<Backend> = engine
        .groups
        .iter()
        .flat_map(|g| g.mpms.iter().map(|(_, m)| m.backend()))
        .collect();
    assert!(!used.is_empty(), "ET Open built no prefilter database");
    assert!(
        used.iter().all(|&b| b == backend),
        "asked for {backend}, engine used {used:?}"
    );
    engine
}

#[test]
fn et_open_engine_alerts_and_candidates_are_identical_on_both_backends() {
    if !Backend::hyperscan_compiled() {
        eprintln!("SKIP: hyperscan feature off, there is only one backend to compare");
        return;
    }
    let Some(data) = testdata() else {
        return;
    };
    let text = et_open_enabled(&data.join("rules/et-open/rules"));
    let mut cfg = SensorConfig::default();
    cfg.vars.address.insert("HOME_NET".into(), "any".into());
    cfg.vars.address.insert("EXTERNAL_NET".into(), "any".into());
    let mut report = LoadReport::default();
    rule::load_str(
        &text,
        Path::new("et-enabled.rules"),
        &cfg.rule_vars().unwrap(),
        &mut report,
    );
    assert!(report.rules.len() > 30_000, "{} rules", report.rules.len());
    let (ac, hs) = {
        let _guard = DEFAULT_LOCK
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (
            engine_with(&report, &cfg, Backend::AhoCorasick),
            engine_with(&report, &cfg, Backend::Hyperscan),
        )
    };
    let pcaps = [
        "chrissanders-http_espn.pcap",
        "markofu-suspicious-time.pcap",
        "chrissanders-dns_isp_hijack.pcap",
    ];
    let (mut total_alerts, mut total_candidates) = (0usize, 0usize);
    for name in pcaps {
        let path = data.join("pcaps").join(name);
        // 1. Alerts through the real pipeline: byte-identical EVE output.
        let mut out = [MemorySink::default(), MemorySink::default()];
        for (engine, sink) in [&ac, &hs].into_iter().zip(out.iter_mut()) {
            engine.reset_thresholds();
            run_pcap(engine, &cfg, &path, sink, RunOptions::default()).unwrap();
        }
        let [a, h] = out;
        assert_eq!(a.lines.len(), h.lines.len(), "{name}: alert counts");
        for (x, y) in a.lines.iter().zip(&h.lines) {
            assert_eq!(
                String::from_utf8_lossy(x),
                String::from_utf8_lossy(y),
                "{name}"
            );
        }
        total_alerts += a.lines.len();
        // 2. Candidates of every database on every payload: the same sets.
        let mut file = PcapFile::open(&path).unwrap();
        let link = file.linktype();
        let (mut ca, mut ch) = (Candidates::default(), Candidates::default());
        let nsigs = ac.sigs().len();
        let mut n = 0u64;
        while let Some(frame) = file.next_frame().unwrap() {
            n += 1;
            let Ok(pkt) = decode(link, frame.data, frame.ts, n) else {
                continue;
            };
            if pkt.payload.is_empty() {
                continue;
            }
            for (ga, gh) in ac.groups.iter().zip(&hs.groups) {
                assert_eq!(ga.mpms.len(), gh.mpms.len());
                for ((ka, ma), (kh, mh)) in ga.mpms.iter().zip(&gh.mpms) {
                    assert_eq!(ka, kh);
                    let want = candidates(ma, pkt.payload, &mut ca, nsigs);
                    let got = candidates(mh, pkt.payload, &mut ch, nsigs);
                    assert_eq!(want, got, "{name} packet {n}, buffer {ka:?}");
                    total_candidates += got.len();
                }
            }
        }
        assert_eq!(ch.scan_failures(), 0);
    }
    eprintln!(
        "ET Open: {} signatures; {total_alerts} alerts and {total_candidates} prefilter candidates, identical on both backends",
        ac.sigs().len()
    );
    assert!(total_alerts > 0, "no alert at all: the comparison is empty");
    assert!(total_candidates > 0, "no candidate at all");
}

#[test]
fn build_many_returns_each_database_in_input_order() {
    // Lists of different sizes (built biggest first on the threads) and one that fails
    // nothing: each result must answer for its own list, in the order given.
    let a = entries(&[b"alpha", b"beta"]);
    let b: Vec<(Vec<u8>, u32)> = (0..500u32)
        .map(|i| (format!("pattern-{i:04}").into_bytes(), i))
        .collect();
    let c = entries(&[b"gamma"]);
    let lists: Vec<&[(Vec<u8>, u32)]> = vec![&a, &b, &c];
    for backend in backends() {
        for threads in [1, 2, 8] {
            let built = Mpm::build_many(&lists, backend, threads);
            assert_eq!(built.len(), 3);
            let dbs: Vec<Mpm> = built.into_iter().map(Result::unwrap).collect();
            let mut cands = Candidates::default();
            assert_eq!(candidates(&dbs[0], b"xx BETA", &mut cands, 500), [1]);
            assert_eq!(
                candidates(&dbs[1], b"pattern-0499 pattern-0007", &mut cands, 500),
                [7, 499]
            );
            assert_eq!(candidates(&dbs[2], b"gamma alpha", &mut cands, 500), [0]);
            assert_eq!(dbs[1].patterns(), 500, "{backend} x{threads}");
        }
    }
    assert!(Mpm::build_many(&[], Backend::AhoCorasick, 4).is_empty());
}
