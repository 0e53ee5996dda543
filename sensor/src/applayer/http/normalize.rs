//! `http.uri` and `http.host` normalization as Suricata 7 (libhtp, default configuration)
//! performs it.
//!
//! Input: the raw request target and the Host header value.
//! Output: owned normalized bytes, computed once per transaction.
//! Semantics, each verified against Suricata 7.0.10 with crafted requests:
//! - Absolute targets (`http://host/p?q`) keep only path and query; the target's host, when
//!   present, takes precedence over the Host header for `http.host`.
//! - Path: `%HH` is decoded (including `%2f` to `/` and `%00` to NUL), `%uHHHH` is decoded
//!   (`%u00HH` gives byte HH, fullwidth `%uFF00`-`%uFF5E` give ASCII, anything else `?`),
//!   invalid or truncated escapes are kept literally, `\` becomes `/`, runs of `/` collapse;
//!   then UTF-8 sequences (overlong forms accepted) become one byte each (code points below
//!   256 as themselves, fullwidth ASCII as ASCII, others `?`; a broken sequence gives `?` and
//!   an unfinished one at the end is dropped); then dot segments are removed (RFC 3986 5.2.4,
//!   with libhtp's twist that a trailing `/.` or `/..` leaves no trailing slash).
//! - Query and fragment: only `%HH` is decoded (`+` stays, `%u` stays).
//! - Host: surrounding whitespace removed; without a port the name is lowercased and
//!   trailing dots are kept; with a port the port is cut off and the case is left alone (a
//!   libhtp quirk Suricata 7 shows: `Host: WWW.Example.COM:8080` gives `WWW.Example.COM`).
//!
//! Caps: output is never longer than the input.

use super::parser::{is_space, trim_by};

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn hex2(s: &[u8]) -> Option<u8> {
    match s {
        [a, b, ..] => Some(hex(*a)? << 4 | hex(*b)?),
        _ => None,
    }
}

/// Best-fit mapping of a code point to one byte (see the module header).
fn best_fit(cp: u32) -> u8 {
    match cp {
        // fits: the guard bounds cp below 256
        0..=0xff => u8::try_from(cp).unwrap_or(b'?'),
        0xff00..=0xff5e => u8::try_from(cp - 0xfee0).unwrap_or(b'?'),
        _ => b'?',
    }
}

/// Decodes `%HH` escapes only; invalid escapes stay as they are.
#[must_use]
pub fn percent_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        if b == b'%'
            && let Some(v) = s.get(i + 1..).and_then(hex2)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b);
        i += 1;
    }
    out
}

/// Path decoding: `%HH`, `%uHHHH`, backslashes, separator compression.
fn decode_path(s: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        let mut c = b;
        let mut step = 1;
        if b == b'%' {
            let next = s.get(i + 1).copied();
            if matches!(next, Some(b'u' | b'U')) {
                if let (Some(hi), Some(lo)) =
                    (s.get(i + 2..).and_then(hex2), s.get(i + 4..).and_then(hex2))
                {
                    c = if hi == 0 {
                        lo
                    } else {
                        best_fit(u32::from(hi) << 8 | u32::from(lo))
                    };
                    step = 6;
                }
            } else if let Some(v) = s.get(i + 1..).and_then(hex2) {
                c = v;
                step = 3;
            }
        }
        if c == b'\\' {
            c = b'/';
        }
        if !(c == b'/' && out.last() == Some(&b'/')) {
            out.push(c);
        }
        i += step;
    }
    out
}

/// UTF-8 to best-fit single bytes (overlong forms accepted).
fn utf8_best_fit(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut cp: u32 = 0;
    let mut need = 0u8;
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        if need > 0 {
            if b & 0xc0 == 0x80 {
                cp = cp << 6 | u32::from(b & 0x3f);
                need -= 1;
                if need == 0 {
                    out.push(best_fit(cp));
                }
                i += 1;
            } else {
                // Broken sequence: one replacement, then look at this byte afresh.
                out.push(b'?');
                need = 0;
            }
            continue;
        }
        match b {
            0x00..=0x7f => out.push(b),
            0xc0..=0xdf => (cp, need) = (u32::from(b & 0x1f), 1),
            0xe0..=0xef => (cp, need) = (u32::from(b & 0x0f), 2),
            0xf0..=0xf7 => (cp, need) = (u32::from(b & 0x07), 3),
            _ => out.push(b'?'),
        }
        i += 1;
    }
    out
}

/// Removes dot segments (RFC 3986 5.2.4 as libhtp implements it).
fn remove_dot_segments(s: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(s.len());
    let mut i = 0;
    // A synthetic first byte of the input buffer (the "/" a removed prefix leaves behind).
    let mut pending: Option<u8> = None;
    let pop_segment = |out: &mut Vec<u8>| {
        while out.last().is_some_and(|&b| b != b'/') {
            out.pop();
        }
        out.pop();
    };
    while i < s.len() {
        let c = match pending.take() {
            Some(c) => c,
            None => {
                let c = s.get(i).copied().unwrap_or(0);
                i += 1;
                c
            }
        };
        let rest = s.get(i..).unwrap_or_default();
        if c == b'.' {
            if rest.starts_with(b"./") {
                i += 2;
                continue;
            }
            if rest.starts_with(b"/") {
                i += 1;
                continue;
            }
            if rest.is_empty() || rest == b"." {
                i += rest.len();
                continue;
            }
        }
        if c == b'/' {
            if rest.starts_with(b"./") || rest == b"." {
                pending = Some(b'/');
                i += if rest == b"." { 1 } else { 2 };
                continue;
            }
            if rest.starts_with(b"../") || rest == b".." {
                pending = Some(b'/');
                i += if rest == b".." { 2 } else { 3 };
                pop_segment(&mut out);
                continue;
            }
        }
        out.push(c);
        while let Some(&b) = s.get(i) {
            if b == b'/' {
                break;
            }
            out.push(b);
            i += 1;
        }
    }
    out
}

/// The parts of a request target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UriParts<'a> {
    /// `host[:port]` of an absolute target.
    pub authority: Option<&'a [u8]>,
    /// Path (may be empty).
    pub path: &'a [u8],
    /// Query without `?`.
    pub query: Option<&'a [u8]>,
    /// Fragment without `#`.
    pub fragment: Option<&'a [u8]>,
}

/// Splits a request target into authority, path, query and fragment.
#[must_use]
pub fn split_uri(uri: &[u8]) -> UriParts<'_> {
    let mut rest = uri;
    let mut authority = None;
    if let Some(pos) = memchr::memmem::find(uri, b"://") {
        let scheme = uri.get(..pos).unwrap_or_default();
        if !scheme.is_empty()
            && scheme
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(b))
        {
            let after = uri.get(pos + 3..).unwrap_or_default();
            let end = after
                .iter()
                .position(|b| b"/?#".contains(b))
                .unwrap_or(after.len());
            let (auth, tail) = after.split_at(end);
            // drop userinfo
            let auth = auth
                .iter()
                .rposition(|&b| b == b'@')
                .map_or(auth, |p| auth.get(p + 1..).unwrap_or_default());
            authority = Some(auth);
            rest = tail;
        }
    }
    let (before_frag, fragment) = match memchr::memchr(b'#', rest) {
        Some(p) => (rest.get(..p).unwrap_or_default(), rest.get(p + 1..)),
        None => (rest, None),
    };
    let (path, query) = match memchr::memchr(b'?', before_frag) {
        Some(p) => (
            before_frag.get(..p).unwrap_or_default(),
            before_frag.get(p + 1..),
        ),
        None => (before_frag, None),
    };
    UriParts {
        authority,
        path,
        query,
        fragment,
    }
}

/// The normalized `http.uri` for a raw request target.
#[must_use]
pub fn normalize_uri(raw: &[u8]) -> Vec<u8> {
    let parts = split_uri(raw);
    let mut out = remove_dot_segments(&utf8_best_fit(&decode_path(parts.path)));
    if let Some(q) = parts.query {
        out.push(b'?');
        out.extend_from_slice(&percent_decode(q));
    }
    if let Some(f) = parts.fragment {
        out.push(b'#');
        out.extend_from_slice(&percent_decode(f));
    }
    out
}

/// A normalized host and the port given with it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostPort {
    /// Host as `http.host` shows it.
    pub host: Vec<u8>,
    /// Port text after the colon, when present.
    pub port: Option<Vec<u8>>,
}

/// Normalizes a `host[:port]` (Host header value or URI authority).
#[must_use]
pub fn normalize_host(value: &[u8]) -> HostPort {
    let v = trim_by(value, is_space);
    if v.first() == Some(&b'[') {
        // IPv6 literal: keep through the bracket, port after it.
        let end = memchr::memchr(b']', v).map_or(v.len(), |p| p + 1);
        let (h, rest) = v.split_at(end.min(v.len()));
        let port = rest
            .strip_prefix(b":")
            .map(|p| trim_by(p, is_space).to_vec());
        return HostPort {
            host: h.to_vec(),
            port,
        };
    }
    match memchr::memchr(b':', v) {
        None => HostPort {
            host: v.to_ascii_lowercase(),
            port: None,
        },
        Some(p) => {
            let (h, rest) = v.split_at(p);
            let h = trim_by(h, is_space);
            let port = trim_by(rest.get(1..).unwrap_or_default(), is_space);
            HostPort {
                host: h.to_vec(),
                port: Some(port.to_vec()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{normalize_host, normalize_uri, split_uri};

    /// Expected values were obtained by running Suricata 7.0.10 on each request with
    /// `http.uri; content:"..."; bsize:N;` rules (see the module header).
    #[test]
    fn uri_table_from_suricata() {
        let table: &[(&[u8], &[u8])] = &[
            (b"/a/b/../../../c", b"/c"),
            (b"/%2e%2e/x", b"/x"),
            (b"/p%zz%4%u00%u0041%U0042", b"/p%zz%4%u00AB"),
            (b"/p?a=%u0041%zz+%2b#frag", b"/p?a=%u0041%zz++#frag"),
            (b"http://Ex.COM:81/P/./q?x=1", b"/P/q?x=1"),
            (b"//x//y/", b"/x/y/"),
            (b"/x/.", b"/x"),
            (b"/x/..", b""),
            (b"/a%2F..%2Fb", b"/b"),
            (b"/%7e%7E", b"/~~"),
            (b"x/y", b"x/y"),
            (b"/a?b?c", b"/a?b?c"),
            (b"*", b"*"),
            (b"/a%3fb", b"/a?b"),
            (b"/a%23b", b"/a#b"),
            (b"/a;b=c/../d", b"/d"),
            (b"/%c3%a9", b"/\xe9"),
            (b"/%c3%a9%e9", b"/\xe9"),
            (b"/%e2%80%9c", b"/?"),
            (b"/%e9x", b"/?x"),
            (b"/a%c0%afb", b"/a/b"),
            (b"/\xc3\xa9", b"/\xe9"),
            (b"/%f0%9f%98%80", b"/?"),
            (
                b"/A/./b//c/../D%41%2f%20x%2Ey%u0041+z%00w\\v?q=%41%2F+b&c=/./",
                b"/A/b/DA/ x.yA+z\x00w/v?q=A/+b&c=/./",
            ),
        ];
        for (raw, want) in table {
            assert_eq!(
                normalize_uri(raw),
                want.to_vec(),
                "{} -> {}",
                String::from_utf8_lossy(raw),
                String::from_utf8_lossy(&normalize_uri(raw))
            );
        }
    }

    #[test]
    fn hosts_from_suricata() {
        type Case<'a> = (&'a [u8], &'a [u8], Option<&'a [u8]>);
        let table: &[Case<'_>] = &[
            (b"WWW.Example.COM", b"www.example.com", None),
            (b"WWW.Example.COM:80", b"WWW.Example.COM", Some(b"80")),
            (b"WWW.Example.COM.", b"www.example.com.", None),
            (b" WWW.Example.COM ", b"www.example.com", None),
            (b"[::1]:8080", b"[::1]", Some(b"8080")),
        ];
        for (raw, host, port) in table {
            let hp = normalize_host(raw);
            assert_eq!(hp.host, host.to_vec(), "{raw:?}");
            assert_eq!(hp.port.as_deref(), *port, "{raw:?}");
        }
    }

    #[test]
    fn uri_parts() {
        let p = split_uri(b"http://user@h:1/p?q#f");
        assert_eq!(p.authority, Some(&b"h:1"[..]));
        assert_eq!(
            (p.path, p.query, p.fragment),
            (&b"/p"[..], Some(&b"q"[..]), Some(&b"f"[..]))
        );
        let p = split_uri(b"/only");
        assert_eq!((p.authority, p.path, p.query), (None, &b"/only"[..], None));
    }
}
