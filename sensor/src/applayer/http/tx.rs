//! One HTTP transaction: the request and response data kept for rules and logs.
//!
//! Input: filled in by [`super::state`] as the message parts complete.
//! Output: rule buffers by [`HttpBuffer`], borrowed from the transaction.
//! Invariants: method, URI and protocol are ranges into the stored request line (one copy);
//! derived buffers (`http.header`, `http.header_names`, `http.start`, the per-field
//! multi-buffer, normalized URI and host) are computed once when their part completes.
//! Caps: bodies hold at most the configured limit; the rest is only counted.

use std::ops::Range;

use super::headers::{HeaderTable, MultiBuf};
use super::{HttpBuffer, progress};
use crate::Direction;
use crate::applayer::perdir::PerDir;

/// The part of a message common to requests and responses.
#[derive(Debug, Clone, Default)]
pub(crate) struct Message {
    /// Request or status line, without terminator.
    pub(crate) line: Vec<u8>,
    pub(crate) headers: HeaderTable,
    /// The header block as received, the terminating empty line included.
    pub(crate) headers_raw: Vec<u8>,
    pub(crate) header_norm: Vec<u8>,
    pub(crate) header_names: Vec<u8>,
    pub(crate) start: Vec<u8>,
    pub(crate) fields: MultiBuf,
    /// Body bytes kept (de-chunked, decoded).
    pub(crate) body: Vec<u8>,
    /// Message body bytes on the wire, chunk framing included, trailers excluded (libhtp's
    /// `response_message_len`, Suricata's `length`).
    pub(crate) body_len: u64,
    /// The body was cut at the limit.
    pub(crate) body_truncated: bool,
    /// Bytes of the body were lost in a gap.
    pub(crate) body_gap: bool,
    pub(crate) progress: u8,
}

impl Message {
    /// Computes the derived header buffers (called when the header block, or the trailer,
    /// is complete).
    pub(crate) fn finish_headers(&mut self, skip_cookie: &[u8]) {
        self.header_norm = self.headers.normalized(skip_cookie);
        self.header_names = self.headers.names();
        self.start = self.headers.start(&self.line);
        self.fields = self.headers.field_lines();
    }

    fn header(&self, name: &[u8]) -> Option<&[u8]> {
        if self.progress >= progress::HEADERS {
            self.headers.get(name)
        } else {
            None
        }
    }
}

/// Request side.
#[derive(Debug, Clone, Default)]
pub(crate) struct Request {
    pub(crate) msg: Message,
    pub(crate) method: Range<usize>,
    pub(crate) uri: Option<Range<usize>>,
    pub(crate) protocol: Option<Range<usize>>,
    pub(crate) uri_norm: Vec<u8>,
    pub(crate) host: Option<Vec<u8>>,
    pub(crate) host_raw: Option<Vec<u8>>,
    pub(crate) port: Option<Vec<u8>>,
    /// HTTP/0.9-style request: no protocol and no headers.
    pub(crate) is_09: bool,
}

/// Response side.
#[derive(Debug, Clone, Default)]
pub(crate) struct Response {
    pub(crate) msg: Message,
    pub(crate) protocol: Range<usize>,
    pub(crate) status: Range<usize>,
    pub(crate) status_number: Option<u16>,
    pub(crate) message: Range<usize>,
    pub(crate) seen_100: bool,
    /// The response was not HTTP and is all body (HTTP/0.9 style).
    pub(crate) as_body: bool,
}

/// One request/response pair.
#[derive(Debug, Clone, Default)]
pub struct HttpTx {
    pub(crate) id: u64,
    pub(crate) req: Request,
    pub(crate) resp: Response,
    pub(crate) inspected: PerDir<bool>,
}

/// The range of `inner` within `outer` (both from the same allocation).
pub(crate) fn range_in(outer: &[u8], inner: &[u8]) -> Range<usize> {
    let start = (inner.as_ptr() as usize).saturating_sub(outer.as_ptr() as usize);
    let start = start.min(outer.len());
    start..start.saturating_add(inner.len()).min(outer.len())
}

impl HttpTx {
    /// Transaction id within the flow.
    #[must_use]
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Progress of the request (`ToServer`) or response (`ToClient`) side; see
    /// [`progress`].
    #[must_use]
    pub fn progress(&self, dir: Direction) -> u8 {
        match dir {
            Direction::ToServer => self.req.msg.progress,
            Direction::ToClient => self.resp.msg.progress,
        }
    }

    /// Whether that side is complete.
    #[must_use]
    pub fn is_complete(&self, dir: Direction) -> bool {
        self.progress(dir) >= progress::COMPLETE
    }

    fn msg(&self, dir: Direction) -> &Message {
        match dir {
            Direction::ToServer => &self.req.msg,
            Direction::ToClient => &self.resp.msg,
        }
    }

    fn req_line_part(&self, r: Option<&Range<usize>>) -> Option<&[u8]> {
        if self.req.msg.progress < progress::LINE {
            return None;
        }
        r.and_then(|r| self.req.msg.line.get(r.clone()))
    }

    fn resp_line_part(&self, r: &Range<usize>) -> Option<&[u8]> {
        if self.resp.msg.progress < progress::LINE || self.resp.as_body {
            return None;
        }
        self.resp.msg.line.get(r.clone())
    }

    /// The request method.
    #[must_use]
    pub fn method(&self) -> Option<&[u8]> {
        self.req_line_part(Some(&self.req.method))
            .filter(|m| !m.is_empty())
    }

    /// The response status code, when it is a valid number.
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        self.resp.status_number
    }

    /// Header value of the request or response (merged as libhtp merges repeats).
    #[must_use]
    pub fn header(&self, dir: Direction, name: &[u8]) -> Option<&[u8]> {
        self.msg(dir).header(name)
    }

    /// A single-valued rule buffer. `dir` picks the side for direction-dependent buffers
    /// (see [`HttpBuffer::fixed_direction`]). `None` when the buffer does not exist (yet) —
    /// which differs from an empty buffer (`User-Agent:` with no value gives `Some(b"")`).
    #[must_use]
    pub fn buffer(&self, which: HttpBuffer, dir: Direction) -> Option<&[u8]> {
        use HttpBuffer as B;
        let dir = which.fixed_direction().unwrap_or(dir);
        let m = self.msg(dir);
        let headers_done = m.progress >= progress::HEADERS;
        let hdr_ok = |b: &'_ [u8]| -> bool { headers_done && !b.is_empty() };
        match which {
            B::Method => self.method(),
            B::Uri => self.req.uri.as_ref().and_then(|_| {
                (self.req.msg.progress >= progress::LINE).then_some(self.req.uri_norm.as_slice())
            }),
            B::UriRaw => self.req_line_part(self.req.uri.as_ref()),
            B::Protocol => match dir {
                Direction::ToServer => self.req_line_part(self.req.protocol.as_ref()),
                Direction::ToClient => self.resp_line_part(&self.resp.protocol),
            },
            B::RequestLine => {
                (self.req.msg.progress >= progress::LINE).then_some(self.req.msg.line.as_slice())
            }
            B::Host => self.req.host.as_deref().filter(|_| headers_done),
            B::HostRaw => self.req.host_raw.as_deref().filter(|_| headers_done),
            B::UserAgent => m.header(b"user-agent"),
            B::Referer => m.header(b"referer"),
            B::Accept => m.header(b"accept"),
            B::AcceptEnc => m.header(b"accept-encoding"),
            B::AcceptLang => m.header(b"accept-language"),
            B::Connection => m.header(b"connection"),
            B::ContentType => m.header(b"content-type"),
            B::ContentLen => m.header(b"content-length"),
            B::Cookie => match dir {
                Direction::ToServer => m.header(b"cookie"),
                Direction::ToClient => m.header(b"set-cookie"),
            },
            B::Header => Some(m.header_norm.as_slice()).filter(|b| hdr_ok(b)),
            B::HeaderRaw => Some(m.headers_raw.as_slice()).filter(|b| hdr_ok(b)),
            B::HeaderNames => Some(m.header_names.as_slice()).filter(|_| headers_done),
            B::Start => Some(m.start.as_slice()).filter(|_| headers_done),
            B::RequestBody | B::ResponseBody | B::FileData => {
                (m.progress >= progress::BODY && !m.body.is_empty()).then_some(m.body.as_slice())
            }
            B::StatCode => self.resp_line_part(&self.resp.status),
            // libhtp leaves the reason phrase unset when the line ends after the code.
            B::StatMsg => self
                .resp_line_part(&self.resp.message)
                .filter(|m| !m.is_empty()),
            B::ResponseLine => (self.resp.msg.progress >= progress::LINE && !self.resp.as_body)
                .then_some(self.resp.msg.line.as_slice()),
            B::Server => m.header(b"server"),
            B::Location => m.header(b"location"),
            B::RequestHeader | B::ResponseHeader => None,
        }
    }

    /// The `index`-th buffer of a multi-buffer ([`HttpBuffer::RequestHeader`],
    /// [`HttpBuffer::ResponseHeader`]); single-valued buffers answer at index 0 only.
    #[must_use]
    pub fn multi_buffer(&self, which: HttpBuffer, dir: Direction, index: usize) -> Option<&[u8]> {
        let side = match which {
            HttpBuffer::RequestHeader => Direction::ToServer,
            HttpBuffer::ResponseHeader => Direction::ToClient,
            _ => {
                return if index == 0 {
                    self.buffer(which, dir)
                } else {
                    None
                };
            }
        };
        let m = self.msg(side);
        if m.progress < progress::HEADERS {
            return None;
        }
        m.fields.get(index)
    }

    /// Message body bytes seen on the wire for `dir` (chunk framing included, before
    /// decoding).
    #[must_use]
    pub fn body_len(&self, dir: Direction) -> u64 {
        self.msg(dir).body_len
    }

    /// Whether the kept body of `dir` was cut at the inspection limit.
    #[must_use]
    pub fn body_truncated(&self, dir: Direction) -> bool {
        self.msg(dir).body_truncated
    }
}
