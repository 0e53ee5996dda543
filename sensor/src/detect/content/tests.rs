//! Table-driven content inspection cases. Expected results are worked out by hand from
//! Suricata's documented keyword semantics.

use proptest::prelude::*;

use super::*;
use crate::detect::compile::compile_list;
use crate::detect::rule::{Vars, parse_rule};

fn matches(opts: &str, buf: &[u8]) -> bool {
    let rule = parse_rule(
        &format!("alert tcp any any -> any any ({opts} sid:1;)"),
        &Vars::suricata_defaults(),
    )
    .unwrap_or_else(|e| panic!("{opts}: {e}"));
    let list = compile_list(&rule.lists[0]).unwrap();
    let mut vars = vec![0u64; usize::from(rule.nvars)];
    inspect(&list.steps, buf, &mut InspectCtx::new(&mut vars))
}

#[test]
fn table() {
    let cases: &[(&str, &[u8], bool)] = &[
        // plain and nocase
        (r#"content:"abc";"#, b"xxabcxx", true),
        (r#"content:"ABC";"#, b"xxabcxx", false),
        (r#"content:"ABC"; nocase;"#, b"xxabcxx", true),
        // offset/depth: window [offset, offset + depth)
        (r#"content:"abc"; offset:2;"#, b"xxabc", true),
        (r#"content:"abc"; offset:3;"#, b"xxabc", false),
        (r#"content:"abc"; depth:4;"#, b"xabcxx", true),
        (r#"content:"abc"; depth:3;"#, b"xabcxx", false),
        (r#"content:"abc"; offset:1; depth:3;"#, b"xabcxx", true),
        // distance/within relative to the previous match end
        (r#"content:"a"; content:"b"; distance:2;"#, b"axxb", true),
        (r#"content:"a"; content:"b"; distance:3;"#, b"axxb", false),
        (r#"content:"a"; content:"b"; within:3;"#, b"axxb", true),
        (r#"content:"a"; content:"b"; within:2;"#, b"axxb", false),
        (
            r#"content:"a"; content:"b"; distance:1; within:2;"#,
            b"axxb",
            true,
        ),
        (
            r#"content:"a"; content:"b"; distance:1; within:1;"#,
            b"axxb",
            false,
        ),
        // negative distance reaches back before the previous match
        (
            r#"content:"bc"; content:"ab"; distance:-3; within:2;"#,
            b"abc",
            true,
        ),
        // backtracking: the first "a" fails the relative "b", the second succeeds
        (r#"content:"a"; content:"b"; within:1;"#, b"axab", true),
        // startswith / endswith
        (r#"content:"ab"; startswith;"#, b"abxx", true),
        (r#"content:"ab"; startswith;"#, b"xabx", false),
        (r#"content:"ab"; endswith;"#, b"xxab", true),
        (r#"content:"ab"; endswith;"#, b"xabx", false),
        (r#"content:"ab"; startswith; endswith;"#, b"ab", true),
        (r#"content:"ab"; startswith; endswith;"#, b"abab", false),
        // negation
        (r#"content:!"zz";"#, b"abc", true),
        (r#"content:!"b";"#, b"abc", false),
        (r#"content:"a"; content:!"c"; within:1;"#, b"abc", true),
        (r#"content:"a"; content:!"b"; within:1;"#, b"abc", false),
        // isdataat
        // relative: N more bytes after the match (Suricata: cursor + N <= len)
        (r#"content:"ab"; isdataat:1,relative;"#, b"abc", true),
        (r#"content:"ab"; isdataat:2,relative;"#, b"abc", false),
        (r#"content:"ab"; isdataat:!2,relative;"#, b"abc", true),
        (r#"isdataat:3;"#, b"abc", false),
        (r#"isdataat:2;"#, b"abc", true),
        // pcre, relative and anchored
        (r#"pcre:"/a.c/";"#, b"xxabc", true),
        (r#"pcre:"/^abc/";"#, b"xxabc", false),
        (r#"content:"xx"; pcre:"/^abc/R";"#, b"xxabc", true),
        (r#"pcre:"/ABC/i";"#, b"abc", true),
        (r#"pcre:!"/zzz/";"#, b"abc", true),
        // byte_test: big endian 0x0102 = 258
        (r#"byte_test:2,=,258,0;"#, b"\x01\x02", true),
        (r#"byte_test:2,>,258,0;"#, b"\x01\x02", false),
        (r#"byte_test:2,=,513,0,little;"#, b"\x01\x02", true),
        (r#"byte_test:3,=,123,1,string,dec;"#, b"x123", true),
        (r#"byte_test:2,=,255,0,string,hex;"#, b"ff", true),
        (r#"byte_test:1,&,2,0;"#, b"\x06", true),
        (r#"byte_test:1,!&,2,0;"#, b"\x06", false),
        (
            r#"content:"L"; byte_test:1,=,5,0,relative;"#,
            b"L\x05",
            true,
        ),
        (r#"byte_test:1,=,1,0,bitmask 0xf0;"#, b"\x1f", true),
        // byte_jump: read 1 byte (3) at 0, jump 3 past the read byte -> position 4
        (
            r#"byte_jump:1,0; content:"X"; within:1;"#,
            b"\x03abcX",
            true,
        ),
        (
            r#"byte_jump:1,0; content:"X"; within:1;"#,
            b"\x02abcX",
            false,
        ),
        (
            r#"byte_jump:1,0,from_beginning; content:"c"; within:1;"#,
            b"\x03abcX",
            true,
        ),
        (
            r#"byte_jump:1,0,post_offset -1; content:"c"; within:1;"#,
            b"\x03abcX",
            true,
        ),
        // jumping past the end fails
        (r#"byte_jump:1,0;"#, b"\x09ab", false),
        // byte_extract then use as distance: extract 2 -> skip 2 bytes after the length
        (
            r#"byte_extract:1,0,len; content:"Z"; distance:len; within:1;"#,
            b"\x02abZ",
            true,
        ),
        (
            r#"byte_extract:1,0,len; content:"Z"; distance:len; within:1;"#,
            b"\x01abZ",
            false,
        ),
        (
            r#"byte_extract:1,0,v; byte_test:1,=,v,1;"#,
            b"\x07\x07",
            true,
        ),
        // nbytes from a variable: read 1 (from byte 0), then jump 2 bytes read as 0x0002
        (
            r#"byte_extract:1,0,n; byte_jump:n,0,relative; content:"Q"; within:1;"#,
            b"\x02\x00\x02abQ",
            true,
        ),
    ];
    for (opts, buf, want) in cases {
        assert_eq!(
            matches(opts, buf),
            *want,
            "{opts} on {:?}",
            String::from_utf8_lossy(buf)
        );
    }
}

#[test]
fn bsize_on_sticky_buffer() {
    let rule = parse_rule(
        r#"alert http any any -> any any (http.uri; content:"/a"; bsize:2; sid:1;)"#,
        &Vars::suricata_defaults(),
    )
    .unwrap();
    let list = compile_list(&rule.lists[0]).unwrap();
    let mut vars = Vec::new();
    assert!(inspect(&list.steps, b"/a", &mut InspectCtx::new(&mut vars)));
    assert!(!inspect(
        &list.steps,
        b"/ab",
        &mut InspectCtx::new(&mut vars)
    ));
}

#[test]
fn nocase_search_finds_every_position() {
    assert_eq!(find_nocase(b"xxAbC", b"abc"), Some(2));
    assert_eq!(find_nocase(b"ab", b"abc"), None);
    assert_eq!(find_nocase(b"aaab", b"ab"), Some(2));
    assert_eq!(find_nocase(b"", b"a"), None);
}

proptest! {
    /// A content with no modifiers matches exactly when the pattern occurs.
    #[test]
    fn plain_content_agrees_with_naive_search(hay in proptest::collection::vec(0u8..4, 0..40), pat in proptest::collection::vec(0u8..4, 1..4)) {
        let hex: Vec<String> = pat.iter().map(|b| format!("{b:02x}")).collect();
        let opts = format!("content:\"|{}|\";", hex.join(" "));
        let naive = hay.windows(pat.len()).any(|w| w == pat.as_slice());
        prop_assert_eq!(matches(&opts, &hay), naive);
    }

    #[test]
    fn never_panics(hay in proptest::collection::vec(any::<u8>(), 0..64), off in -10i64..10, n in 1u8..9) {
        let opts = format!("content:\"a\"; byte_jump:{n},{off},relative,post_offset {off}; byte_test:{n},>,5,{off},relative; isdataat:{},relative;", off.abs());
        let _ = matches(&opts, &hay);
    }
}
