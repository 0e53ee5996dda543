//! HTTP state-machine tests: hand-built streams (table-driven where the shape allows) and
//! properties. Expected values come from RFC 9112 framing rules, libhtp semantics as
//! Suricata 7.0.10 shows them (captures and outputs quoted below), or hand counting.

use proptest::prelude::*;

use super::{HttpBuffer as B, HttpConfig, HttpEvent, HttpState, HttpTx, progress};
use crate::Direction::{self, ToClient, ToServer};
use crate::applayer::events::{AppEventKind, Events};

struct Run {
    st: HttpState,
    ev: Events,
}

impl Run {
    fn new() -> Self {
        Self::with(&HttpConfig::default())
    }
    fn with(cfg: &HttpConfig) -> Self {
        Self {
            st: HttpState::new(cfg),
            ev: Events::new(10_000),
        }
    }
    fn feed(&mut self, dir: Direction, data: &[u8]) -> &mut Self {
        self.st.on_stream(dir, data, &mut self.ev);
        self
    }
    fn close(&mut self) -> &mut Self {
        self.st.on_close(ToServer, &mut self.ev);
        self.st.on_close(ToClient, &mut self.ev);
        self
    }
    fn txs(&self) -> Vec<&HttpTx> {
        self.st.txs().collect()
    }
    fn tx(&self, i: usize) -> &HttpTx {
        self.st.txs().nth(i).expect("tx")
    }
    fn has(&self, e: HttpEvent) -> bool {
        self.ev.contains(AppEventKind::Http(e))
    }
}

fn s(v: &str) -> Option<&[u8]> {
    Some(v.as_bytes())
}

fn hex(h: &str) -> Vec<u8> {
    hex::decode(h).expect("hex")
}

#[test]
fn pipelined_requests_and_responses_pair_in_order() {
    let mut r = Run::new();
    r.feed(ToServer, b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\nPOST /c HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyz");
    r.feed(ToClient, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nAAHTTP/1.1 404 Nope\r\nContent-Length: 0\r\n\r\n");
    r.feed(
        ToClient,
        b"HTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nC",
    );
    let t = r.txs();
    assert_eq!(t.len(), 3);
    let table = [("/a", "200", "AA"), ("/b", "404", ""), ("/c", "201", "C")];
    for (tx, (uri, code, body)) in t.iter().zip(table) {
        assert_eq!(tx.buffer(B::Uri, ToServer), s(uri));
        assert_eq!(tx.buffer(B::StatCode, ToClient), s(code));
        assert_eq!(
            tx.buffer(B::ResponseBody, ToClient).unwrap_or_default(),
            body.as_bytes()
        );
        assert!(tx.is_complete(ToServer) && tx.is_complete(ToClient));
    }
    assert_eq!(t[2].buffer(B::RequestBody, ToServer), s("xyz"));
    assert_eq!(t[1].buffer(B::StatMsg, ToClient), s("Nope"));
}

#[test]
fn suricata_reference_exchange() {
    // Streams of a flow built for Suricata 7.0.10 (chunked POST with Expect, 100 Continue,
    // gzip 302, then an HTTP/1.0 close-delimited exchange). Suricata's alert metadata:
    // tx 0: {"hostname":"Ex.com","http_port":81,"url":"/p?x=1","http_content_type":"text/html",
    //        "http_refer":"http://r/","http_method":"POST","protocol":"HTTP/1.1","status":302,
    //        "redirect":"/new","length":39}
    // tx 1: {"url":"/two","http_method":"GET","protocol":"HTTP/1.0","status":200,"length":20}
    // and rules matched http.request_body "helloabc" (bsize 8), http.response_body "hello gzip
    // world", http.response_body "close-delimited body" (bsize 20), http.header "Trail".
    let mut r = Run::new();
    r.feed(ToServer, &hex("504f5354202f703f783d3120485454502f312e310d0a486f73743a2045782e636f6d3a38310d0a526566657265723a20687474703a2f2f722f0d0a436f6e74656e742d547970653a20746578742f706c61696e0d0a5472616e736665722d456e636f64696e673a206368756e6b65640d0a4578706563743a203130302d636f6e74696e75650d0a0d0a"));
    r.feed(
        ToClient,
        &hex("485454502f312e312031303020436f6e74696e75650d0a582d413a20310d0a0d0a"),
    );
    assert_eq!(
        r.tx(0).progress(ToClient),
        progress::NOT_STARTED,
        "interim 100 is not exposed"
    );
    r.feed(
        ToServer,
        &hex("350d0a68656c6c6f0d0a333b6578743d310d0a6162630d0a300d0a547261696c3a20780d0a0d0a"),
    );
    r.feed(ToClient, &hex("485454502f312e312033303220466f756e640d0a4c6f636174696f6e3a202f6e65770d0a436f6e74656e742d547970653a20746578742f68746d6c3b20636861727365743d7574662d380d0a436f6e74656e742d456e636f64696e673a20677a69700d0a436f6e74656e742d4c656e6774683a2033390d0a0d0a1f8b080071a4066b02ffcb48cdc9c95748afca2c5028cf2fca49c920c00700dca406b630000000"));
    r.feed(ToServer, &hex("474554202f74776f20485454502f312e300d0a0d0a"));
    r.feed(
        ToClient,
        &hex("485454502f312e3020323030204f4b0d0a0d0a636c6f73652d64656c696d6974656420626f6479"),
    );
    assert_eq!(
        r.tx(1).progress(ToClient),
        progress::BODY,
        "close-delimited body still open"
    );
    r.close();
    let (t0, t1) = (r.tx(0), r.tx(1));
    assert_eq!(
        super::eve::alert_object(t0),
        serde_json::json!({"hostname":"Ex.com","http_port":81,"url":"/p?x=1","http_content_type":"text/html",
            "http_refer":"http://r/","http_method":"POST","protocol":"HTTP/1.1","status":302,"redirect":"/new","length":39})
    );
    assert_eq!(
        super::eve::alert_object(t1),
        serde_json::json!({"url":"/two","http_method":"GET","protocol":"HTTP/1.0","status":200,"length":20})
    );
    assert_eq!(t0.buffer(B::RequestBody, ToServer), s("helloabc"));
    assert_eq!(
        t0.buffer(B::ResponseBody, ToClient),
        s("hello gzip worldhello gzip worldhello gzip world")
    );
    assert!(
        memchr::memmem::find(t0.buffer(B::Header, ToServer).unwrap(), b"Trail: x\r\n").is_some()
    );
    assert_eq!(t0.buffer(B::ContentType, ToServer), s("text/plain"));
    assert_eq!(t0.buffer(B::ContentLen, ToServer), None);
    assert_eq!(
        t1.buffer(B::ResponseBody, ToClient),
        s("close-delimited body")
    );
    assert!(t1.is_complete(ToClient));
}

#[test]
fn chunked_length_counts_framing_like_suricata() {
    // Suricata 7.0.10 logged "length":35 for this response (all framing up to and including
    // the last-chunk line, trailer CRLF excluded) and matched http.response_body "hello0123".
    let mut r = Run::new();
    r.feed(ToServer, b"GET /c HTTP/1.1\r\nHost: h\r\n\r\n");
    r.feed(ToClient, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n");
    let t = r.tx(0);
    assert_eq!(t.body_len(ToClient), 35);
    assert_eq!(
        t.buffer(B::ResponseBody, ToClient),
        s("hello0123456789abcdef")
    );
    assert!(t.is_complete(ToClient));
}

#[test]
fn http09_request_and_body_only_response() {
    let mut r = Run::new();
    r.feed(ToServer, b"GET /old\r\nanything after is ignored\r\n");
    r.feed(ToClient, b"<html>no status line</html>");
    r.close();
    let t = r.txs();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].buffer(B::UriRaw, ToServer), s("/old"));
    assert_eq!(t[0].buffer(B::Protocol, ToServer), None);
    assert_eq!(
        t[0].buffer(B::ResponseBody, ToClient),
        s("<html>no status line</html>")
    );
    assert_eq!(t[0].buffer(B::StatCode, ToClient), None);
}

#[test]
fn folding_missing_colon_and_long_lines() {
    let cfg = HttpConfig {
        max_line_len: 64,
        ..HttpConfig::default()
    };
    let mut r = Run::with(&cfg);
    let long = "a".repeat(200);
    let req =
        format!("GET / HTTP/1.1\r\nX-Fold: a\r\n\t b\r\nNoColonHere\r\nX-Long: {long}\r\n\r\n");
    // Feed in two pieces so the long line spans chunks.
    let (p1, p2) = req.as_bytes().split_at(60);
    r.feed(ToServer, p1).feed(ToServer, p2);
    let t = r.tx(0);
    assert_eq!(t.header(ToServer, b"x-fold"), s("a\t b"));
    assert_eq!(t.header(ToServer, b""), s("NoColonHere"));
    let long_val = t.header(ToServer, b"X-Long").unwrap();
    assert_eq!(long_val.len(), 64 - "X-Long: ".len());
    assert!(r.has(HttpEvent::FieldMissingColon(ToServer)));
    assert!(r.has(HttpEvent::FieldTooLong(ToServer)));
    assert!(t.progress(ToServer) >= progress::HEADERS);
}

#[test]
fn header_and_tx_caps() {
    let cfg = HttpConfig {
        max_headers: 3,
        max_txs: 4,
        ..HttpConfig::default()
    };
    let mut r = Run::with(&cfg);
    r.feed(
        ToServer,
        b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nA: 5\r\n\r\n",
    );
    let t = r.tx(0);
    assert_eq!(t.header(ToServer, b"d"), None);
    assert_eq!(
        t.header(ToServer, b"a"),
        s("1, 5"),
        "repeats of kept fields still merge"
    );
    assert!(r.has(HttpEvent::TooManyHeaders(ToServer)));
    for _ in 0..5 {
        r.feed(ToServer, b"GET /x HTTP/1.1\r\n\r\n");
    }
    let ids: Vec<u64> = r.txs().iter().map(|t| t.id()).collect();
    assert_eq!(ids, vec![2, 3, 4, 5]);
    assert!(r.ev.contains(AppEventKind::TooManyTransactions));
}

#[test]
fn body_limits_and_compression_bomb() {
    use std::io::Write;
    let cfg = HttpConfig {
        request_body_limit: 10,
        response_body_limit: 1000,
        ..HttpConfig::default()
    };
    let mut r = Run::with(&cfg);
    r.feed(
        ToServer,
        b"POST / HTTP/1.1\r\nContent-Length: 30\r\n\r\n012345678901234567890123456789",
    );
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(&vec![b'z'; 5_000_000]).unwrap();
    let gz = e.finish().unwrap();
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        gz.len()
    );
    r.feed(ToClient, head.as_bytes()).feed(ToClient, &gz);
    let t = r.tx(0);
    assert_eq!(t.buffer(B::RequestBody, ToServer), s("0123456789"));
    assert!(t.body_truncated(ToServer));
    assert_eq!(t.body_len(ToServer), 30);
    assert_eq!(
        t.buffer(B::ResponseBody, ToClient).map(<[u8]>::len),
        Some(1000)
    );
    assert_eq!(t.body_len(ToClient), gz.len() as u64);
    assert!(
        r.has(HttpEvent::BodyLimitReached(ToServer))
            && r.has(HttpEvent::BodyLimitReached(ToClient))
    );
    assert!(t.is_complete(ToClient));
}

#[test]
fn responses_without_body() {
    // HEAD, 204 and 304 responses carry no body even with a Content-Length (RFC 9112 6.3).
    let mut r = Run::new();
    r.feed(ToServer, b"HEAD /h HTTP/1.1\r\n\r\nGET /n HTTP/1.1\r\n\r\nGET /m HTTP/1.1\r\n\r\nGET /last HTTP/1.1\r\n\r\n");
    r.feed(ToClient, b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n");
    r.feed(
        ToClient,
        b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
    );
    r.feed(ToClient, b"HTTP/1.1 200\r\nContent-Length: 4\r\n\r\nlast");
    assert_eq!(r.tx(1).buffer(B::StatMsg, ToClient), s("No Content"));
    assert_eq!(r.tx(3).buffer(B::StatMsg, ToClient), None);
    let codes: Vec<_> = r.txs().iter().map(|t| t.status()).collect();
    assert_eq!(codes, vec![Some(200), Some(204), Some(304), Some(200)]);
    assert_eq!(r.tx(3).buffer(B::ResponseBody, ToClient), s("last"));
    assert!(r.txs().iter().all(|t| t.is_complete(ToClient)));
}

#[test]
fn connect_tunnel_stops_parsing() {
    let mut r = Run::new();
    r.feed(
        ToServer,
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    );
    r.feed(ToClient, b"HTTP/1.1 200 Connection established\r\n\r\n");
    r.feed(
        ToServer,
        b"\x16\x03\x01\x00\x05hello GET / HTTP/1.1\r\n\r\n",
    );
    r.feed(ToClient, b"\x16\x03\x03 HTTP/1.1 200 OK\r\n\r\n");
    assert_eq!(r.txs().len(), 1);
    assert_eq!(r.tx(0).buffer(B::Host, ToServer), s("example.com"));
}

#[test]
fn response_without_request_and_absolute_uri() {
    let mut r = Run::new();
    r.feed(ToClient, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert!(r.has(HttpEvent::UnableToMatchResponseToRequest));
    assert!(r.tx(0).is_complete(ToServer));
    r.feed(
        ToServer,
        b"GET http://Proxy.Example/x/../y?q=1 HTTP/1.1\r\nHost: other\r\n\r\n",
    );
    let t = r.tx(1);
    assert_eq!(t.buffer(B::Uri, ToServer), s("/y?q=1"));
    assert_eq!(
        t.buffer(B::UriRaw, ToServer),
        s("http://Proxy.Example/x/../y?q=1")
    );
    assert_eq!(t.buffer(B::Host, ToServer), s("proxy.example"));
    // Suricata 7.0.10: http.host "proxy.example" (bsize 13) and http.host.raw bsize 13
    // without "Proxy": the target's host, normalized, in both buffers.
    assert_eq!(t.buffer(B::HostRaw, ToServer), s("proxy.example"));
    let mut r = Run::new();
    r.feed(
        ToServer,
        b"GET http://Proxy.Example.:8080/x HTTP/1.1\r\n\r\n",
    );
    assert_eq!(r.tx(0).buffer(B::Host, ToServer), s("proxy.example"));
    assert_eq!(super::eve::alert_object(r.tx(0))["http_port"], 8080);
}

#[test]
fn gaps_skip_bodies_and_resync_lines() {
    let mut r = Run::new();
    r.feed(
        ToServer,
        b"POST /a HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123",
    );
    r.st.on_gap(ToServer, 4, &mut r.ev);
    r.feed(ToServer, b"89GET /b HTTP/1.1\r\n\r\n");
    let t = r.txs();
    assert_eq!(t.len(), 2);
    assert_eq!(t[0].buffer(B::RequestBody, ToServer), s("012389"));
    assert_eq!(t[0].body_len(ToServer), 10);
    assert_eq!(t[1].buffer(B::Uri, ToServer), s("/b"));
    // A gap inside headers: the damaged request ends, parsing resumes at the next request.
    r.feed(ToServer, b"GET /c HTTP/1.1\r\nHost: x");
    r.st.on_gap(ToServer, 100, &mut r.ev);
    r.feed(
        ToServer,
        b"garbage\r\nmore: junk\r\nGET /d HTTP/1.1\r\n\r\n",
    );
    let uris: Vec<_> = r
        .txs()
        .iter()
        .map(|t| t.buffer(B::UriRaw, ToServer).map(<[u8]>::to_vec))
        .collect();
    assert_eq!(uris.last().cloned().flatten(), Some(b"/d".to_vec()));
    assert_eq!(r.txs().len(), 4);
}

#[test]
fn inspected_transactions_are_freed() {
    let mut r = Run::new();
    r.feed(ToServer, b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n");
    r.feed(ToClient, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    r.st.tx_inspected(0, ToServer);
    assert_eq!(r.txs().len(), 2, "inspected in one direction only");
    r.st.tx_inspected(0, ToClient);
    assert_eq!(r.txs().len(), 1);
    r.st.tx_inspected(1, ToServer);
    r.st.tx_inspected(1, ToClient);
    assert_eq!(r.txs().len(), 1, "tx 1 has no response yet");
}

#[test]
fn progress_is_staged() {
    let mut r = Run::new();
    r.feed(ToServer, b"POST /p HTTP/1.1\r\n");
    assert_eq!(r.tx(0).progress(ToServer), progress::LINE);
    assert_eq!(r.tx(0).buffer(B::Uri, ToServer), s("/p"));
    assert_eq!(r.tx(0).buffer(B::Header, ToServer), None);
    r.feed(ToServer, b"Content-Length: 4\r\nCookie: c=1\r\n\r\nab");
    assert_eq!(r.tx(0).progress(ToServer), progress::BODY);
    assert_eq!(
        r.tx(0).buffer(B::Header, ToServer),
        s("Content-Length: 4\r\n")
    );
    assert_eq!(r.tx(0).buffer(B::Cookie, ToServer), s("c=1"));
    r.feed(ToServer, b"cd");
    assert_eq!(r.tx(0).progress(ToServer), progress::COMPLETE);
    assert_eq!(r.tx(0).buffer(B::RequestBody, ToServer), s("abcd"));
}

fn snapshot(r: &Run) -> String {
    format!("{:?} {:?}", r.txs(), r.ev.as_slice())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Splitting each direction's bytes at arbitrary points never changes the result.
    #[test]
    fn chunking_invariance(
        req_cuts in prop::collection::vec(0usize..400, 0..8),
        resp_cuts in prop::collection::vec(0usize..400, 0..8),
    ) {
        let req: &[u8] = b"GET /a/./b%41?x=1 HTTP/1.1\r\nHost: H.example\r\nX-F: a\r\n b\r\n\r\nPOST /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\nGET /z HTTP/1.0\r\n\r\n";
        let resp: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nxyzHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\nHTTP/1.0 200 OK\r\n\r\nrest of it";
        let feed = |cuts: &[usize], data: &[u8], dir: Direction, r: &mut Run| {
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
            cuts.sort_unstable();
            let mut prev = 0;
            for c in cuts.into_iter().chain([data.len()]) {
                r.feed(dir, &data[prev..c]);
                prev = c;
            }
        };
        let mut whole = Run::new();
        whole.feed(ToServer, req).feed(ToClient, resp).close();
        let mut parts = Run::new();
        feed(&req_cuts, req, ToServer, &mut parts);
        feed(&resp_cuts, resp, ToClient, &mut parts);
        parts.close();
        prop_assert_eq!(snapshot(&whole), snapshot(&parts));
    }

    #[test]
    fn no_panic_on_random_bytes(a in prop::collection::vec(any::<u8>(), 0..2000), b in prop::collection::vec(any::<u8>(), 0..2000), gap in 0u64..100) {
        let mut r = Run::with(&HttpConfig { max_line_len: 100, max_headers: 5, max_txs: 3, ..HttpConfig::default() });
        r.feed(ToServer, &a).feed(ToClient, &b);
        r.st.on_gap(ToClient, gap, &mut r.ev);
        r.feed(ToClient, &a).feed(ToServer, &b).close();
        let _ = snapshot(&r);
    }

    #[test]
    fn no_panic_on_http_shaped_input(lines in prop::collection::vec(prop::sample::select(vec![
        "GET / HTTP/1.1", "HTTP/1.1 200 OK", "Content-Length: 5", "Content-Length: x", "Transfer-Encoding: chunked",
        "Content-Encoding: gzip", "Content-Encoding: deflate, gzip", "Content-Encoding: br", "5", "zz", "0",
        "", " folded", "Host: a:b:c", "hello", "HTTP/1.1 100 Continue", "HTTP/1.1 101 Switching", "CONNECT x HTTP/1.1",
    ]), 0..40)) {
        let data = lines.join("\r\n").into_bytes();
        let mut r = Run::new();
        r.feed(ToServer, &data).feed(ToClient, &data).close();
        let _ = snapshot(&r);
    }
}
