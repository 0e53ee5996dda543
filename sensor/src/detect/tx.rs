//! Transaction inspection: signatures with app-layer buffers (`http.uri`, `dns.query`,
//! `tls.sni`, `file.data`, ...) evaluated against the flow's transactions.
//!
//! Semantics (Suricata's, simplified where noted):
//! - A signature is inspected on packets of its direction ([`SigDir`]): its `flow:` direction,
//!   else response-side when it uses any response buffer. Buffers that exist in both
//!   directions (`http.header`) are read from the packet's direction.
//! - A signature is evaluated on a transaction once, in the first inspection round (of its
//!   direction) where every buffer it uses is final: the transaction reached the progress at
//!   which the buffer is complete (request line, headers, body, ...) or the flow ended.
//!   Suricata evaluates buffer by buffer as they arrive; the alerts are the same, only the
//!   packet they are attached to may be a later one of the same direction.
//! - Multi-buffers (`dns.query`, `http.request_header`, `tls.certs`) match when any instance
//!   matches the whole list.
//! - Signatures that also have a stream part (payload `content` in an app-layer rule, such
//!   as `content:"HTTP/1."; depth:7; content:"200"; http_stat_code;`) need both parts on one
//!   packet: the transaction buffers, and the raw stream chunk inspected with that packet.
//!   They are retried on each packet carrying a stream chunk until they match once.
//! - Per transaction the flow keeps, per direction, the progress seen at the last round, so
//!   a round costs nothing when nothing progressed and no stream chunk came.

use super::compile::{CList, Sig};
use super::content::{InspectCtx, inspect};
use super::rule::ast::Check;
use super::rule::buffers::BufferId;
use super::{DetectThread, transform};
use crate::Direction;
use crate::applayer::{DnsBuffer, HttpBuffer, TlsBuffer, TxRef, http, tls};

/// Progress of a transaction as one round saw it: (to-server, to-client, flow ended).
pub(super) type Snapshot = (u8, u8, bool);

/// What the flow remembers per transaction.
#[derive(Debug, Clone)]
pub(super) struct TxSeen {
    pub id: u64,
    /// Snapshot of the last round per direction (index: [`Direction::index`]).
    pub last: [Option<Snapshot>; 2],
    /// Signatures with a stream part (payload content in an app-layer rule) that already
    /// matched this transaction: they are retried on later packets until they match.
    pub matched: Vec<u32>,
    /// Per direction, the prefilter work of the last round: which buffers were scanned
    /// (database index, buffer index, content hash) and the candidates found. A later round
    /// rescans only buffers whose content changed and keeps the earlier candidates, so a
    /// transaction's URI and headers are not rescanned every time its body grows.
    /// Candidates are a superset of the true ones; every candidate is confirmed in full.
    pub scanned: [ScanMemo; 2],
}

/// See [`TxSeen::scanned`].
#[derive(Debug, Clone, Default)]
pub(super) struct ScanMemo {
    /// `(database index, buffer index, content hash)` of each buffer scanned.
    pub buffers: Vec<(u32, u32, u64)>,
    /// Candidates found so far (sorted).
    pub cands: Vec<u32>,
}

/// The app-layer buffer behind a rule buffer, for HTTP.
fn http_buffer(id: BufferId) -> Option<HttpBuffer> {
    use BufferId as B;
    use HttpBuffer as H;
    Some(match id {
        B::HttpUri => H::Uri,
        B::HttpUriRaw => H::UriRaw,
        B::HttpMethod => H::Method,
        B::HttpRequestLine => H::RequestLine,
        B::HttpRequestBody => H::RequestBody,
        B::HttpHeader => H::Header,
        B::HttpHeaderRaw => H::HeaderRaw,
        B::HttpHeaderNames => H::HeaderNames,
        B::HttpCookie => H::Cookie,
        B::HttpUserAgent => H::UserAgent,
        B::HttpHost => H::Host,
        B::HttpHostRaw => H::HostRaw,
        B::HttpAccept => H::Accept,
        B::HttpAcceptEnc => H::AcceptEnc,
        B::HttpAcceptLang => H::AcceptLang,
        B::HttpConnection => H::Connection,
        B::HttpContentLen => H::ContentLen,
        B::HttpContentType => H::ContentType,
        B::HttpReferer => H::Referer,
        B::HttpStart => H::Start,
        B::HttpProtocol => H::Protocol,
        B::HttpStatCode => H::StatCode,
        B::HttpStatMsg => H::StatMsg,
        B::HttpResponseLine => H::ResponseLine,
        B::HttpResponseBody => H::ResponseBody,
        B::HttpServer => H::Server,
        B::HttpLocation => H::Location,
        B::HttpRequestHeader => H::RequestHeader,
        B::HttpResponseHeader => H::ResponseHeader,
        B::FileData => H::FileData,
        _ => return None,
    })
}

fn tls_buffer(id: BufferId) -> Option<TlsBuffer> {
    use BufferId as B;
    use TlsBuffer as T;
    Some(match id {
        B::TlsSni => T::Sni,
        B::TlsCertSubject => T::CertSubject,
        B::TlsCertIssuer => T::CertIssuer,
        B::TlsCertSerial => T::CertSerial,
        B::TlsCertFingerprint => T::CertFingerprint,
        B::TlsCerts => T::Certs,
        B::Ja3Hash => T::Ja3Hash,
        B::Ja3String => T::Ja3String,
        B::Ja3sHash => T::Ja3sHash,
        B::Ja3sString => T::Ja3sString,
        _ => return None,
    })
}

/// Instance `idx` of buffer `id` of `tx`, read in direction `dir`.
pub(super) fn tx_buffer<'t>(
    tx: TxRef<'t>,
    id: BufferId,
    dir: Direction,
    idx: usize,
) -> Option<&'t [u8]> {
    match tx {
        TxRef::Http(t) => {
            let hb = http_buffer(id)?;
            if hb.is_multi() {
                t.multi_buffer(hb, dir, idx)
            } else if idx == 0 {
                t.buffer(hb, dir)
            } else {
                None
            }
        }
        TxRef::Dns(t) => (id == BufferId::DnsQuery).then(|| t.buffer(DnsBuffer::Query, idx))?,
        TxRef::Tls(t) => t.buffer(tls_buffer(id)?, idx),
    }
}

/// Whether buffer `id` of `tx` is final for a round in `dir`.
fn buffer_ready(tx: TxRef<'_>, id: BufferId, dir: Direction, snap: Snapshot) -> bool {
    if snap.2 {
        return true;
    }
    let prog = |d: Direction| match d {
        Direction::ToServer => snap.0,
        Direction::ToClient => snap.1,
    };
    match tx {
        TxRef::Http(_) => match http_buffer(id) {
            Some(hb) => {
                let d = hb.fixed_direction().unwrap_or(dir);
                prog(d) >= hb.available_at() || prog(d) >= http::progress::COMPLETE
            }
            None => true,
        },
        TxRef::Dns(_) => true,
        TxRef::Tls(_) => match tls_buffer(id) {
            Some(tb) => {
                let (d, p) = tb.available_at();
                prog(d) >= p || prog(d) >= tls::progress::DONE
            }
            None => true,
        },
    }
}

/// Whether every app-layer list and transaction check of `sig` is decidable at `snap`.
pub(super) fn sig_ready(sig: &Sig, tx: TxRef<'_>, dir: Direction, snap: Snapshot) -> bool {
    sig.lists
        .iter()
        .filter(|l| l.key.buffer != BufferId::Payload)
        .all(|l| buffer_ready(tx, l.key.buffer, dir, snap))
        && sig.checks.iter().all(|c| match c {
            Check::Urilen(..) => buffer_ready(tx, BufferId::HttpUri, dir, snap),
            Check::TlsVersion(_) | Check::SslVersion(_) | Check::SslState(..) => {
                snap.2 || snap.1 >= tls::progress::HELLO
            }
            Check::TlsFingerprint(_) => buffer_ready(tx, BufferId::TlsCertFingerprint, dir, snap),
            _ => true,
        })
}

/// The progress snapshot of `tx` now.
pub(super) fn snapshot(tx: TxRef<'_>, ended: bool) -> Snapshot {
    (
        tx.progress(Direction::ToServer),
        tx.progress(Direction::ToClient),
        ended,
    )
}

/// Transaction-level checks (`urilen`, TLS version/state).
pub(super) fn tx_checks_ok(sig: &Sig, tx: TxRef<'_>) -> bool {
    sig.checks.iter().all(|c| match (c, tx) {
        (Check::Urilen(cmp, raw), TxRef::Http(t)) => {
            let b = if *raw {
                HttpBuffer::UriRaw
            } else {
                HttpBuffer::Uri
            };
            t.buffer(b, Direction::ToServer)
                .is_some_and(|u| cmp.matches(u.len() as u64))
        }
        (Check::Urilen(..), _) => false,
        (Check::TlsVersion(v), TxRef::Tls(t)) => t.version() == *v,
        (Check::TlsFingerprint(want), TxRef::Tls(t)) => t
            .buffer(TlsBuffer::CertFingerprint, 0)
            .is_some_and(|f| f.eq_ignore_ascii_case(want.as_bytes())),
        (Check::SslVersion(bits), TxRef::Tls(t)) => {
            let bit = match t.version() {
                0x0200 | 0x0002 => 1,
                0x0300 => 2,
                0x0301 => 4,
                0x0302 => 8,
                0x0303 => 16,
                0x0304 => 32,
                _ => 0,
            };
            bits & bit != 0
        }
        (Check::SslState(bits, neg), TxRef::Tls(t)) => {
            // client_hello 1, server_hello 2, client_keyx 4, server_keyx 8.
            let mut have = 0u8;
            if t.progress(Direction::ToServer) >= tls::progress::HELLO {
                have |= 1;
            }
            if t.progress(Direction::ToClient) >= tls::progress::HELLO {
                have |= 2;
            }
            (have & bits != 0) != *neg
        }
        (
            Check::TlsVersion(_)
            | Check::TlsFingerprint(_)
            | Check::SslVersion(_)
            | Check::SslState(..),
            _,
        ) => false,
        // Packet-level checks were evaluated with the packet.
        _ => true,
    })
}

/// Evaluates the app-layer lists of `sig` on `tx` in direction `dir`.
pub(super) fn lists_match(sig: &Sig, tx: TxRef<'_>, dir: Direction, th: &mut DetectThread) -> bool {
    sig.lists
        .iter()
        .filter(|l| l.key.buffer != BufferId::Payload)
        .all(|l| list_match(l, tx, dir, th))
}

fn list_match(list: &CList, tx: TxRef<'_>, dir: Direction, th: &mut DetectThread) -> bool {
    let multi = list.key.buffer.info().multi;
    let mut idx = 0;
    loop {
        let Some(buf) = tx_buffer(tx, list.key.buffer, dir, idx) else {
            return false;
        };
        let ok = if list.key.transforms.is_empty() {
            inspect(&list.steps, buf, &mut InspectCtx::new(&mut th.vars))
        } else {
            let t = transform::apply(&list.key.transforms, buf);
            inspect(&list.steps, &t, &mut InspectCtx::new(&mut th.vars))
        };
        if ok {
            return true;
        }
        if !multi {
            return false;
        }
        idx += 1;
    }
}

/// Whether `sig` is inspected on packets of `dir` (its direction, and the transaction's:
/// DNS messages exist in one direction only).
pub(super) fn dir_ok(sig: &Sig, tx: TxRef<'_>, dir: Direction) -> bool {
    sig.dir.admits(dir) && tx.inspect_direction(dir)
}
