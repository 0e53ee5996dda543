use std::path::Path;

use proptest::prelude::*;

use super::*;

fn parse(text: &str) -> Result<Rule, RuleError> {
    parse_rule(text, &Vars::suricata_defaults())
}

fn contents(rule: &Rule, list: usize) -> Vec<&Content> {
    rule.lists[list]
        .items
        .iter()
        .filter_map(|i| match i {
            Item::Content(c) => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn a_full_et_style_rule() {
    let r = parse(
        r#"alert http $HOME_NET any -> $EXTERNAL_NET any (msg:"ET TEST \"quoted\" msg"; flow:established,to_server; pcre:"/^\/gate\.php$/U"; http.method; content:"POST"; http.uri; content:"/gate.php"; fast_pattern; endswith; http.header; content:"User-Agent|3a 20|Mozilla"; nocase; reference:url,example.com; classtype:trojan-activity; sid:2000001; rev:3; metadata:created_at 2020_01_01, updated_at 2021_02_02;)"#,
    )
    .unwrap();
    assert_eq!(r.header.action, Action::Alert);
    assert_eq!(
        r.header.proto,
        RuleProto::App(crate::applayer::AppProto::HttpAny)
    );
    assert_eq!(r.msg, "ET TEST \"quoted\" msg");
    assert_eq!((r.sid, r.rev, r.gid), (2_000_001, 3, 1));
    assert!(r.flow.established);
    assert_eq!(r.flow.to_server, Some(true));
    let bufs: Vec<_> = r.lists.iter().map(|l| l.buffer).collect();
    assert_eq!(
        bufs,
        [
            buffers::BufferId::HttpUri,
            buffers::BufferId::HttpMethod,
            buffers::BufferId::HttpHeader
        ]
    );
    // The pcre's U flag put it into the http.uri list, before the content.
    assert_eq!(r.lists[0].items.len(), 2);
    assert!(matches!(r.lists[0].items[0], Item::Pcre(_)));
    let uri = contents(&r, 0)[0];
    assert_eq!(uri.pattern, b"/gate.php");
    assert!(uri.fast_pattern && uri.endswith);
    assert_eq!(contents(&r, 2)[0].pattern, b"User-Agent: Mozilla");
    assert!(contents(&r, 2)[0].nocase);
    assert_eq!(
        r.metadata,
        [
            ("created_at".into(), "2020_01_01".into()),
            ("updated_at".into(), "2021_02_02".into())
        ]
    );
}

#[test]
fn legacy_modifiers_move_the_previous_content() {
    let r = parse(
        r#"alert tcp any any -> any 80 (msg:"x"; content:"GET"; http_method; content:"abc"; http_uri; nocase; content:"raw"; sid:1;)"#,
    )
    .unwrap();
    let by_buf = |b| r.lists.iter().position(|l| l.buffer == b).unwrap();
    let m = by_buf(buffers::BufferId::HttpMethod);
    let u = by_buf(buffers::BufferId::HttpUri);
    let p = by_buf(buffers::BufferId::Payload);
    assert_eq!(contents(&r, m)[0].pattern, b"GET");
    assert!(
        contents(&r, u)[0].nocase,
        "nocase after http_uri applies to the moved content"
    );
    assert_eq!(contents(&r, p)[0].pattern, b"raw");
}

#[test]
fn content_escapes_and_hex() {
    let cases: &[(&str, &[u8], bool)] = &[
        (r#""abc""#, b"abc", false),
        (r#""|41 42|C""#, b"ABC", false),
        (r#""a\;b\"c\\d""#, b"a;b\"c\\d", false),
        (r#"!"x|0d0a|""#, b"x\r\n", true),
        (r#""|00|""#, b"\0", false),
    ];
    for (v, want, neg) in cases {
        let r = parse(&format!(
            "alert tcp any any -> any any (content:{v}; sid:1;)"
        ))
        .unwrap();
        let c = contents(&r, 0)[0];
        assert_eq!((c.pattern.as_slice(), c.negated), (*want, *neg), "{v}");
    }
    for bad in [r#""|4""#, r#""|zz|""#, r#""""#, "abc"] {
        let e = parse(&format!(
            "alert tcp any any -> any any (content:{bad}; sid:1;)"
        ))
        .unwrap_err();
        assert!(matches!(e, RuleError::Value { .. }), "{bad}: {e}");
    }
}

#[test]
fn payload_keywords() {
    let r = parse(
        r#"alert tcp any any -> any any (content:"A"; offset:2; depth:10; content:"B"; distance:0; within:5; byte_extract:2,0,len,relative; byte_test:4,>,len,0,relative,little; byte_jump:2,1,relative,post_offset -1; isdataat:!1,relative; pcre:"/x+/R"; sid:9;)"#,
    )
    .unwrap();
    let items = &r.lists[0].items;
    assert_eq!(items.len(), 7);
    let Item::Content(a) = &items[0] else {
        panic!()
    };
    assert_eq!(
        (a.offset.clone(), a.depth.clone()),
        (Some(Num::Lit(2)), Some(Num::Lit(10)))
    );
    let Item::ByteTest(t) = &items[3] else {
        panic!()
    };
    assert_eq!(t.value, Num::Var(0));
    assert_eq!(t.base, ByteBase::Binary { little: true });
    let Item::ByteJump(j) = &items[4] else {
        panic!()
    };
    assert_eq!(j.post_offset, -1);
    let Item::IsDataAt(d) = &items[5] else {
        panic!()
    };
    assert!(d.negated && d.relative);
    let Item::Pcre(p) = &items[6] else { panic!() };
    assert!(p.relative);
    assert_eq!(r.nvars, 1);
}

#[test]
fn header_variants() {
    let ok = [
        "alert ip any any -> any any (sid:1;)",
        "alert tcp [10.0.0.0/8, !10.1.0.0/16] [80,443] <> $HOME_NET 1024: (sid:1;)",
        "drop udp any any -> any 53 (sid:1;)",
        "alert tcp-pkt any any -> any any (sid:1;)",
        "alert icmpv6 any any -> any any (sid:1;)",
        "alert dns any any -> any any (sid:1;)",
    ];
    for r in ok {
        parse(r).unwrap_or_else(|e| panic!("{r}: {e}"));
    }
    let bad: &[(&str, &str)] = &[
        ("alert tcp any any <- any any (sid:1;)", "syntax error"),
        ("warn tcp any any -> any any (sid:1;)", "unknown action"),
        (
            "alert foo any any -> any any (sid:1;)",
            "unknown protocol 'foo'",
        ),
        (
            "alert tcp $NOPE any -> any any (sid:1;)",
            "undefined variable $NOPE",
        ),
        ("alert tcp any any -> any any (msg:\"x\";)", "missing 'sid'"),
        (
            "alert tcp any any -> any any (sid:1; asn1:bitstring_overflow;)",
            "unsupported keyword 'asn1'",
        ),
        (
            "alert tcp any any -> any any (sid:1; content:\"x\"; depth:0;)",
            "invalid 'depth' value",
        ),
        (
            "alert tcp any any -> any any (sid:1; content:\"x\"; distance:1; depth:4;)",
            "invalid 'depth' value",
        ),
        (
            "alert tcp any any -> any any (sid:1; nocase;)",
            "invalid 'nocase' value",
        ),
        ("alert tcp any any -> any any (sid:1", "syntax error"),
        (
            "alert tcp any any -> any any (sid:1; detection_filter:track by_src, count 2, seconds 5; threshold:type limit, track by_src, count 1, seconds 5;)",
            "invalid 'detection_filter' value",
        ),
        (
            "alert tcp any any -> any any (sid:1; msg:\"x\")",
            "syntax error",
        ),
    ];
    for (rule, reason) in bad {
        let e = parse(rule).unwrap_err();
        assert_eq!(e.reason_key(), *reason, "{rule}: {e}");
    }
}

#[test]
fn checks_and_flow_state_keywords() {
    let r = parse(
        r#"alert tcp any any -> any any (flags:S,12; dsize:>100; ttl:<5; window:!1024; flowbits:set,a; flowbits:isset,b|c; flowbits:noalert; threshold:type limit, track by_src, seconds 60, count 1; sid:1;)"#,
    )
    .unwrap();
    assert!(r.noalert);
    assert_eq!(r.flowbits.len(), 2);
    assert_eq!(r.flowbits[1], Flowbit::IsSet(vec!["b".into(), "c".into()]));
    let t = r.threshold.unwrap();
    assert_eq!(
        (t.kind, t.track, t.count, t.seconds),
        (Some(ThresholdKind::Limit), Track::BySrc, 1, 60)
    );
    assert!(r.checks.contains(&Check::Dsize(NumCmp::Gt(100))));
    assert!(r.checks.contains(&Check::Window(1024, true)));
}

#[test]
fn transforms_follow_sticky_buffers_only() {
    let r = parse(r#"alert dns any any -> any any (dns.query; dotprefix; content:".evil.com"; endswith; sid:1;)"#)
        .unwrap();
    assert_eq!(r.lists[0].transforms, [Transform::DotPrefix]);
    assert!(parse(r#"alert dns any any -> any any (content:"x"; dotprefix; sid:1;)"#).is_err());
    assert!(
        parse(r#"alert dns any any -> any any (dns.query; content:"x"; dotprefix; sid:1;)"#)
            .is_err()
    );
}

#[test]
fn continuation_lines_and_comments() {
    let text = "# comment\n\nalert tcp any any -> any any (msg:\"a\"; \\\n  content:\"x\"; sid:1;)\n  # indented comment\nalert tcp any any -> any any (sid:2;)\nbroken line\n";
    let mut report = LoadReport::default();
    load_str(
        text,
        Path::new("t.rules"),
        &Vars::suricata_defaults(),
        &mut report,
    );
    assert_eq!(report.rules.len(), 2);
    assert_eq!((report.rules[0].line, report.rules[1].line), (3, 6));
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(report.rejected[0].line, 7);
    assert!(report.rejected[0].to_string().starts_with("t.rules:7: "));
}

#[test]
fn duplicate_sids_keep_the_highest_rev() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("d.rules");
    std::fs::write(
        &f,
        "alert tcp any any -> any any (msg:\"old\"; sid:5; rev:1;)\nalert tcp any any -> any any (msg:\"new\"; sid:5; rev:2;)\n",
    )
    .unwrap();
    let report = load_files(&[f], &Vars::suricata_defaults());
    assert_eq!(report.rules.len(), 1);
    assert_eq!(report.rules[0].rule.msg, "new");
    assert_eq!(report.by_reason().get("duplicate sid"), Some(&1));
}

#[test]
fn unreadable_file_is_reported() {
    let report = load_files(&["/nonexistent/x.rules".into()], &Vars::suricata_defaults());
    assert_eq!(report.unreadable_files, 1);
    assert!(report.rejected[0].to_string().contains("cannot read"));
}

/// The whole ET Open snapshot loads without panics, and the share that loads is recorded
/// against a floor (raised as keywords are added).
#[test]
fn et_open_loads() {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata/rules/et-open/rules");
    if !dir.is_dir() {
        eprintln!("SKIP: {} absent", dir.display());
        return;
    }
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rules"))
        .collect();
    files.sort();
    let report = load_files(&files, &Vars::suricata_defaults());
    let loaded = report.rules.len();
    let total = loaded + report.rejected.len();
    eprintln!(
        "ET Open: {loaded} loaded of {total}; rejected by reason: {:?}",
        report.by_reason()
    );
    assert!(total >= 24_000, "ET Open snapshot has 24,827 enabled rules");
    assert!(
        loaded * 100 >= total * 90,
        "only {loaded}/{total} ET Open rules loaded"
    );
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_text(text in ".{0,200}") {
        let _ = parse(&text);
    }

    #[test]
    fn never_panics_on_mutated_rules(body in "[a-z_.:;,!|\"0-9 <>=\\-\\\\]{0,120}") {
        let _ = parse(&format!("alert tcp any any -> any any ({body})"));
    }
}
