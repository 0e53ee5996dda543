//! Pure HTTP/1.x line parsers with libhtp's lenient semantics (Suricata 7's HTTP engine).
//!
//! Input: single lines (terminator already removed by [`split_line`]) or header values.
//! Output: borrowed views into the input ([`RequestLine<'a>`], [`ResponseLine<'a>`],
//! [`HeaderLine<'a>`]) or plain numbers. Nothing is copied.
//! Invariants: never panics; every function is total (bad input gives a value with a flag or
//! `None`, never an error that would stop the stream).
//! Semantics (libhtp "generic" personality): a line ends at LF, trailing CRs are dropped;
//! request lines split on runs of whitespace into method, URI and protocol (the protocol may
//! be missing: HTTP/0.9 style); header lines split at the first colon, the name loses
//! trailing blanks and the value loses surrounding blanks; a header line without a colon gets
//! an empty name.

/// libhtp's notion of whitespace: SP, HT, LF, VT, FF, CR.
#[must_use]
pub fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Linear whitespace: SP or HT.
#[must_use]
pub fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t')
}

/// Splits the next line off `input`: `(line without terminator, raw line with terminator,
/// rest)`, or `None` when no LF is present yet.
#[must_use]
pub fn split_line(input: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let lf = memchr::memchr(b'\n', input)?;
    let (raw, rest) = input.split_at(lf.saturating_add(1).min(input.len()));
    Some((chomp(raw), raw, rest))
}

/// Removes the trailing LF and any CRs before it.
#[must_use]
pub fn chomp(mut line: &[u8]) -> &[u8] {
    while let Some((&last, head)) = line.split_last() {
        if last == b'\n' || last == b'\r' {
            line = head;
        } else {
            break;
        }
    }
    line
}

/// Strips leading and trailing bytes matching `f`.
#[must_use]
pub fn trim_by(mut s: &[u8], f: fn(u8) -> bool) -> &[u8] {
    while let Some((&b, rest)) = s.split_first() {
        if f(b) {
            s = rest;
        } else {
            break;
        }
    }
    while let Some((&b, rest)) = s.split_last() {
        if f(b) {
            s = rest;
        } else {
            break;
        }
    }
    s
}

fn skip(s: &[u8], f: fn(u8) -> bool) -> &[u8] {
    let n = s.iter().position(|&b| !f(b)).unwrap_or(s.len());
    s.get(n..).unwrap_or_default()
}

fn until(s: &[u8], f: fn(u8) -> bool) -> (&[u8], &[u8]) {
    let n = s.iter().position(|&b| f(b)).unwrap_or(s.len());
    s.split_at(n) // n <= len
}

/// A request line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLine<'a> {
    /// Method token (may be anything, e.g. `World!`).
    pub method: &'a [u8],
    /// Request target as sent; `None` when the line has only a method.
    pub uri: Option<&'a [u8]>,
    /// Protocol text; `None` when missing (HTTP/0.9 style).
    pub protocol: Option<&'a [u8]>,
    /// The line started with whitespace.
    pub leading_whitespace: bool,
    /// A delimiter was not exactly one space.
    pub non_compliant_delimiter: bool,
}

/// Parses a request line.
#[must_use]
pub fn parse_request_line(line: &[u8]) -> RequestLine<'_> {
    let trimmed = skip(line, is_space);
    let leading_whitespace = trimmed.len() != line.len();
    let (method, rest) = until(trimmed, is_space);
    let after_method = skip(rest, is_space);
    let mut non_compliant =
        rest.len() - after_method.len() > 1 || rest.first().is_some_and(|&b| b != b' ');
    if after_method.is_empty() {
        return RequestLine {
            method,
            uri: None,
            protocol: None,
            leading_whitespace,
            non_compliant_delimiter: false,
        };
    }
    let (uri, rest) = until(after_method, is_space);
    let protocol = skip(rest, is_space);
    non_compliant |= rest.len() - protocol.len() > 1 || rest.first().is_some_and(|&b| b != b' ');
    RequestLine {
        method,
        uri: Some(uri),
        protocol: (!protocol.is_empty()).then_some(protocol),
        leading_whitespace,
        non_compliant_delimiter: non_compliant && !protocol.is_empty(),
    }
}

/// libhtp's test for a missing protocol followed by headers: does `line` look like a header
/// (a colon before any whitespace that is not part of the name's trailing blanks)?
#[must_use]
pub fn looks_like_header(line: &[u8]) -> bool {
    let mut after_blank = false;
    for &b in line {
        if b == b':' {
            return true;
        } else if is_lws(b) {
            after_blank = true;
        } else if is_space(b) || after_blank {
            return false;
        }
    }
    false
}

/// A response status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseLine<'a> {
    /// Protocol text (`HTTP/1.1`).
    pub protocol: &'a [u8],
    /// Status code text as sent.
    pub status: &'a [u8],
    /// Status code when it is a number in 100..=999.
    pub status_number: Option<u16>,
    /// Reason phrase.
    pub message: &'a [u8],
}

/// Parses a status line.
#[must_use]
pub fn parse_response_line(line: &[u8]) -> ResponseLine<'_> {
    let s = skip(line, is_space);
    let (protocol, rest) = until(s, is_space);
    let rest = skip(rest, is_space);
    let (status, rest) = until(rest, is_space);
    let message = skip(rest, is_space);
    ResponseLine {
        protocol,
        status,
        status_number: parse_status(status),
        message,
    }
}

/// A status code: digits only (surrounding blanks allowed), value 100..=999.
#[must_use]
pub fn parse_status(s: &[u8]) -> Option<u16> {
    let n = parse_decimal(trim_by(s, is_lws))?;
    u16::try_from(n).ok().filter(|n| (100..=999).contains(n))
}

/// libhtp's test for a response line that is really body data (HTTP/0.9 style responses):
/// after leading whitespace the line must start with `http` in any case.
#[must_use]
pub fn response_line_is_body(data: &[u8]) -> bool {
    let s = skip(data, |b| is_space(b) || b == 0);
    !s.get(..4).is_some_and(|p| p.eq_ignore_ascii_case(b"http"))
}

/// A header line split into name and value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderLine<'a> {
    /// Name without trailing blanks (empty when the colon is missing).
    pub name: &'a [u8],
    /// Value without surrounding blanks.
    pub value: &'a [u8],
    /// The colon was missing.
    pub missing_colon: bool,
}

/// Parses one (possibly folded, continuation lines already appended) header line.
#[must_use]
pub fn parse_header_line(line: &[u8]) -> HeaderLine<'_> {
    match memchr::memchr(b':', line) {
        Some(colon) => {
            let (name, value) = line.split_at(colon);
            let value = value.get(1..).unwrap_or_default();
            let name_end = name.iter().rposition(|&b| !is_lws(b)).map_or(0, |p| p + 1);
            HeaderLine {
                name: name.get(..name_end).unwrap_or_default(),
                value: trim_by(value, is_space),
                missing_colon: false,
            }
        }
        None => HeaderLine {
            name: b"",
            value: trim_by(line, is_space),
            missing_colon: true,
        },
    }
}

/// Decimal digits only, no sign, no overflow.
#[must_use]
pub fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        b.is_ascii_digit()
            .then(|| acc.checked_mul(10)?.checked_add(u64::from(b - b'0')))
            .flatten()
    })
}

/// A `Content-Length` value: optional surrounding whitespace around decimal digits.
#[must_use]
pub fn parse_content_length(value: &[u8]) -> Option<u64> {
    parse_decimal(trim_by(value, is_space))
}

/// A chunk-size line: leading whitespace is skipped, hex digits are read until the first
/// non-hex byte (so `;ext` and trailing junk are ignored). `None` when there is no digit or
/// the value exceeds 2^62.
#[must_use]
pub fn parse_chunk_len(line: &[u8]) -> Option<u64> {
    let s = skip(line, is_space);
    let digits = s.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let hex = s.get(..digits)?;
    if hex.is_empty() {
        return None;
    }
    let v = hex.iter().try_fold(0u64, |acc, &b| {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => b - b'A' + 10, // only hex digits reach here
        };
        acc.checked_mul(16)?.checked_add(u64::from(d))
    })?;
    (v < 1 << 62).then_some(v)
}

/// Whether a header value lists `token` as a comma-separated element (case-insensitive),
/// e.g. `chunked` in `Transfer-Encoding: gzip, chunked`.
#[must_use]
pub fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| trim_by(t, is_space).eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        let r = parse_request_line(b"GET /index.html HTTP/1.1");
        assert_eq!(
            (r.method, r.uri, r.protocol),
            (
                &b"GET"[..],
                Some(&b"/index.html"[..]),
                Some(&b"HTTP/1.1"[..])
            )
        );
        assert!(!r.non_compliant_delimiter && !r.leading_whitespace);
        let r = parse_request_line(b" POST  /  HTTP/1.0");
        assert_eq!(
            (r.method, r.uri, r.protocol),
            (&b"POST"[..], Some(&b"/"[..]), Some(&b"HTTP/1.0"[..]))
        );
        assert!(r.leading_whitespace && r.non_compliant_delimiter);
        let r = parse_request_line(b"GET /gen.php?x=1");
        assert_eq!((r.uri, r.protocol), (Some(&b"/gen.php?x=1"[..]), None));
        let r = parse_request_line(b"World!");
        assert_eq!((r.method, r.uri, r.protocol), (&b"World!"[..], None, None));
        let r = parse_request_line(b"GET /a b HTTP/1.1");
        assert_eq!(
            (r.uri, r.protocol),
            (Some(&b"/a"[..]), Some(&b"b HTTP/1.1"[..]))
        );
    }

    #[test]
    fn header_lines() {
        type Case<'a> = (&'a [u8], &'a [u8], &'a [u8], bool);
        let table: &[Case<'_>] = &[
            (b"Host: example.com", b"Host", b"example.com", false),
            (b"User-Agent: UA/1 ", b"User-Agent", b"UA/1", false),
            (b"Name : v", b"Name", b"v", false),
            (b"X:", b"X", b"", false),
            (b"X-Fold: a\t b", b"X-Fold", b"a\t b", false),
            (b"no colon here", b"", b"no colon here", true),
            (b"A: b: c", b"A", b"b: c", false),
        ];
        for (line, name, value, missing) in table {
            let h = parse_header_line(line);
            assert_eq!(
                (h.name, h.value, h.missing_colon),
                (*name, *value, *missing),
                "{line:?}"
            );
        }
    }

    #[test]
    fn response_lines() {
        let r = parse_response_line(b"HTTP/1.1 200 OK");
        assert_eq!(
            (r.protocol, r.status, r.status_number, r.message),
            (&b"HTTP/1.1"[..], &b"200"[..], Some(200), &b"OK"[..])
        );
        let r = parse_response_line(b"HTTP/1.0 404 Not Found");
        assert_eq!((r.status_number, r.message), (Some(404), &b"Not Found"[..]));
        assert_eq!(parse_response_line(b"HTTP/1.1 2x0 Bad").status_number, None);
        assert_eq!(parse_response_line(b"HTTP/1.1 099 x").status_number, None);
        assert!(!response_line_is_body(b"HTTP/1.1 200 OK"));
        assert!(!response_line_is_body(b"  http/1.0 200"));
        assert!(response_line_is_body(b"xzscx#$#AzMTax"));
        assert!(response_line_is_body(b"HTT"));
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_content_length(b" 42 "), Some(42));
        assert_eq!(parse_content_length(b"4 2"), None);
        assert_eq!(parse_content_length(b"-1"), None);
        assert_eq!(parse_content_length(b"99999999999999999999"), None);
        assert_eq!(parse_chunk_len(b"1a"), Some(26));
        assert_eq!(parse_chunk_len(b"  FF;ext=1"), Some(255));
        assert_eq!(parse_chunk_len(b"0"), Some(0));
        assert_eq!(parse_chunk_len(b"zz"), None);
        assert_eq!(parse_chunk_len(b""), None);
        assert_eq!(parse_chunk_len(b"ffffffffffffffffffff"), None);
    }

    #[test]
    fn lines_and_tokens() {
        assert_eq!(
            split_line(b"ab\r\ncd"),
            Some((&b"ab"[..], &b"ab\r\n"[..], &b"cd"[..]))
        );
        assert_eq!(
            split_line(b"ab\ncd"),
            Some((&b"ab"[..], &b"ab\n"[..], &b"cd"[..]))
        );
        assert_eq!(split_line(b"ab"), None);
        assert!(looks_like_header(b"Host: x"));
        assert!(looks_like_header(b"Host : x"));
        assert!(!looks_like_header(b"Host x: y"));
        assert!(!looks_like_header(b""));
        assert!(has_token(b"gzip, Chunked", b"chunked"));
        assert!(!has_token(b"chunkedx", b"chunked"));
    }
}
