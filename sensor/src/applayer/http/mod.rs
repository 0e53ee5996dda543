//! HTTP/1.0 and 1.1: stream parser, transactions, rule buffers and EVE metadata.
//!
//! Input: in-order TCP bytes per direction from [`crate::applayer::AppLayer`] (any chunking),
//! gaps and closes.
//! Output: [`HttpTx`] transactions (one per request/response pair, pipelining and keep-alive
//! included) exposing Suricata 7's HTTP buffers through [`HttpTx::buffer`] and
//! [`HttpTx::multi_buffer`], per-direction progress ([`progress`]), and the EVE `http` object
//! ([`eve::alert_object`]).
//! Invariants: the parser follows libhtp (Suricata 7's HTTP engine) where behaviour is
//! observable in rules: lenient request lines, HTTP/0.9-style requests, header folding and
//! merging, chunked and Content-Length bodies, close-delimited responses, `100 Continue`,
//! responses that are not HTTP treated as body. Normalized buffers are computed once, when
//! their part of the message is complete.
//! Caps: see [`HttpConfig`]; every cap hit raises an [`HttpEvent`].

pub mod decompress;
pub mod eve;
pub mod headers;
pub mod normalize;
pub mod parser;
pub mod state;
#[cfg(test)]
mod tests;
mod tx;

pub use state::HttpState;
pub use tx::HttpTx;

use crate::Direction;

/// HTTP limits and options (Suricata `libhtp.default-config` equivalents).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Live transactions per flow (libhtp's default limit is 512).
    pub max_txs: usize,
    /// Longest request/status/header/chunk line kept (libhtp's field limit, 18,000 bytes);
    /// longer lines are truncated.
    pub max_line_len: usize,
    /// Header fields kept per message.
    pub max_headers: usize,
    /// Request body bytes kept for inspection (`request-body-limit`, 100 KiB).
    pub request_body_limit: usize,
    /// Response body bytes kept for inspection, after decompression (`response-body-limit`).
    pub response_body_limit: usize,
    /// Decompressed bytes produced per body at most (`compression-bomb-limit`, 1 MiB).
    pub decompress_limit: usize,
    /// Content codings undone per body at most (`decompress-layer-limit`, 2).
    pub decompress_layers: usize,
    /// Also decompress request bodies with a `Content-Encoding` (Suricata 7.0.16+).
    pub decompress_requests: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_txs: 512,
            max_line_len: 18_000,
            max_headers: 1024,
            request_body_limit: 100 * 1024,
            response_body_limit: 100 * 1024,
            decompress_limit: 1024 * 1024,
            decompress_layers: 2,
            decompress_requests: true,
        }
    }
}

/// Progress values, per direction, monotone (libhtp's numbering).
pub mod progress {
    /// Nothing of this side of the transaction yet.
    pub const NOT_STARTED: u8 = 0;
    /// The request/status line is parsed: line buffers are final.
    pub const LINE: u8 = 1;
    /// The headers are complete: header buffers are final.
    pub const HEADERS: u8 = 2;
    /// The body is arriving: body buffers hold a prefix.
    pub const BODY: u8 = 3;
    /// Chunked trailers are arriving.
    pub const TRAILER: u8 = 4;
    /// This side is complete: every buffer is final.
    pub const COMPLETE: u8 = 5;
}

/// HTTP anomalies (Suricata's `http.*` app-layer events, plus Tocsin's body-limit events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HttpEvent {
    /// A line exceeded `max_line_len` and was truncated.
    FieldTooLong(Direction),
    /// A header line had no colon.
    FieldMissingColon(Direction),
    /// A folded continuation line came before any header.
    InvalidFieldFolding(Direction),
    /// A chunk-size line was not hexadecimal.
    InvalidChunkLen(Direction),
    /// `Content-Length` was not a number.
    InvalidContentLength(Direction),
    /// `Content-Length` was repeated with a different value.
    DuplicateContentLength(Direction),
    /// `Transfer-Encoding` present without `chunked`.
    InvalidTransferEncoding(Direction),
    /// More header fields than `max_headers`.
    TooManyHeaders(Direction),
    /// More than one `100 Continue` for one request.
    ContinueAlreadySeen,
    /// A response arrived with no request waiting for it.
    UnableToMatchResponseToRequest,
    /// The request line started with whitespace.
    RequestLineLeadingWhitespace,
    /// Request line delimiters were not single spaces.
    MethodDelimNonCompliant,
    /// The request line had no protocol.
    RequestLineMissingProtocol,
    /// The status code was not a 3-digit number.
    ResponseInvalidStatus,
    /// HTTP/1.1 request without `Host`.
    MissingHostHeader,
    /// A compressed body could not be decoded; the rest was kept as sent.
    GzipDecompressionFailed(Direction),
    /// More content codings than `decompress_layers`.
    TooManyEncodingLayers(Direction),
    /// An unknown content coding.
    AbnormalCeHeader(Direction),
    /// The body exceeded the inspection limit (Tocsin event).
    BodyLimitReached(Direction),
}

impl HttpEvent {
    /// The `app-layer-event` name.
    #[must_use]
    pub fn name(self) -> &'static str {
        use Direction::{ToClient as C, ToServer as S};
        match self {
            Self::FieldTooLong(S) => "http.request_field_too_long",
            Self::FieldTooLong(C) => "http.response_field_too_long",
            Self::FieldMissingColon(S) => "http.request_field_missing_colon",
            Self::FieldMissingColon(C) => "http.response_field_missing_colon",
            Self::InvalidFieldFolding(S) => "http.invalid_request_field_folding",
            Self::InvalidFieldFolding(C) => "http.invalid_response_field_folding",
            Self::InvalidChunkLen(S) => "http.invalid_request_chunk_len",
            Self::InvalidChunkLen(C) => "http.invalid_response_chunk_len",
            Self::InvalidContentLength(S) => "http.invalid_content_length_field_in_request",
            Self::InvalidContentLength(C) => "http.invalid_content_length_field_in_response",
            Self::DuplicateContentLength(S) => "http.duplicate_content_length_field_in_request",
            Self::DuplicateContentLength(C) => "http.duplicate_content_length_field_in_response",
            Self::InvalidTransferEncoding(S) => "http.invalid_transfer_encoding_value_in_request",
            Self::InvalidTransferEncoding(C) => "http.invalid_transfer_encoding_value_in_response",
            Self::TooManyHeaders(S) => "http.request_too_many_headers",
            Self::TooManyHeaders(C) => "http.response_too_many_headers",
            Self::ContinueAlreadySeen => "http.100_continue_already_seen",
            Self::UnableToMatchResponseToRequest => "http.unable_to_match_response_to_request",
            Self::RequestLineLeadingWhitespace => "http.request_line_leading_whitespace",
            Self::MethodDelimNonCompliant => "http.method_delim_non_compliant",
            Self::RequestLineMissingProtocol => "http.request_line_missing_protocol",
            Self::ResponseInvalidStatus => "http.response_invalid_status",
            Self::MissingHostHeader => "http.missing_host_header",
            Self::GzipDecompressionFailed(_) => "http.gzip_decompression_failed",
            Self::TooManyEncodingLayers(_) => "http.too_many_encoding_layers",
            Self::AbnormalCeHeader(_) => "http.abnormal_ce_header",
            Self::BodyLimitReached(S) => "http.request_body_limit_reached",
            Self::BodyLimitReached(C) => "http.response_body_limit_reached",
        }
    }
}

/// Rule buffers of an HTTP transaction (Suricata 7 sticky buffers and their legacy
/// modifiers). Direction-dependent ones (`Protocol`, `Header`, ...) take the direction at
/// lookup; the others ignore it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HttpBuffer {
    /// `http.method`.
    Method,
    /// `http.uri` / `http_uri`: normalized path and query.
    Uri,
    /// `http.uri.raw` / `http_raw_uri`.
    UriRaw,
    /// `http.protocol`: request or response protocol.
    Protocol,
    /// `http.request_line`.
    RequestLine,
    /// `http.host`: normalized host.
    Host,
    /// `http.host.raw`.
    HostRaw,
    /// `http.user_agent`.
    UserAgent,
    /// `http.referer`.
    Referer,
    /// `http.accept`.
    Accept,
    /// `http.accept_enc`.
    AcceptEnc,
    /// `http.accept_lang`.
    AcceptLang,
    /// `http.connection`.
    Connection,
    /// `http.content_type` (per direction).
    ContentType,
    /// `http.content_len` (per direction).
    ContentLen,
    /// `http.cookie`: `Cookie` (request) or `Set-Cookie` (response) value.
    Cookie,
    /// `http.header` / `http_header`: normalized fields without cookies.
    Header,
    /// `http.header.raw` / `http_raw_header`: the header block as sent, final CRLF included.
    HeaderRaw,
    /// `http.header_names`.
    HeaderNames,
    /// `http.start`: start line and header fields.
    Start,
    /// `http.request_body` / `http_client_body`: de-chunked (and decoded) request body.
    RequestBody,
    /// `http.stat_code`.
    StatCode,
    /// `http.stat_msg`.
    StatMsg,
    /// `http.response_line`.
    ResponseLine,
    /// `http.server`.
    Server,
    /// `http.location`.
    Location,
    /// `http.response_body` / `http_server_body`: de-chunked, decompressed response body.
    ResponseBody,
    /// `file.data` / `file_data`: response body to the client, request body to the server.
    FileData,
    /// `http.request_header`: one `Name: value` per request field (multi-buffer).
    RequestHeader,
    /// `http.response_header`: one `Name: value` per response field (multi-buffer).
    ResponseHeader,
}

impl HttpBuffer {
    /// The buffer a rule keyword selects: Suricata 7 sticky buffers (`http.uri`) and their
    /// legacy content modifiers (`http_uri`). `None` for other keywords.
    #[must_use]
    pub fn from_keyword(kw: &str) -> Option<Self> {
        use HttpBuffer as B;
        Some(match kw {
            "http.method" | "http_method" => B::Method,
            "http.uri" | "http_uri" => B::Uri,
            "http.uri.raw" | "http_raw_uri" => B::UriRaw,
            "http.protocol" | "http_protocol" => B::Protocol,
            "http.request_line" | "http_request_line" => B::RequestLine,
            "http.host" | "http_host" => B::Host,
            "http.host.raw" | "http_raw_host" => B::HostRaw,
            "http.user_agent" | "http_user_agent" => B::UserAgent,
            "http.referer" | "http_referer" => B::Referer,
            "http.accept" | "http_accept" => B::Accept,
            "http.accept_enc" | "http_accept_enc" => B::AcceptEnc,
            "http.accept_lang" | "http_accept_lang" => B::AcceptLang,
            "http.connection" | "http_connection" => B::Connection,
            "http.content_type" | "http_content_type" => B::ContentType,
            "http.content_len" | "http_content_len" => B::ContentLen,
            "http.cookie" | "http_cookie" => B::Cookie,
            "http.header" | "http_header" => B::Header,
            "http.header.raw" | "http_raw_header" => B::HeaderRaw,
            "http.header_names" | "http_header_names" => B::HeaderNames,
            "http.start" | "http_start" => B::Start,
            "http.request_body" | "http_client_body" => B::RequestBody,
            "http.stat_code" | "http_stat_code" => B::StatCode,
            "http.stat_msg" | "http_stat_msg" => B::StatMsg,
            "http.response_line" | "http_response_line" => B::ResponseLine,
            "http.server" | "http_server" => B::Server,
            "http.location" | "http_location" => B::Location,
            "http.response_body" | "http_server_body" => B::ResponseBody,
            "file.data" | "file_data" => B::FileData,
            "http.request_header" => B::RequestHeader,
            "http.response_header" => B::ResponseHeader,
            _ => return None,
        })
    }

    /// Whether the buffer holds several values (one per header field).
    #[must_use]
    pub fn is_multi(self) -> bool {
        matches!(self, Self::RequestHeader | Self::ResponseHeader)
    }

    /// The direction whose data fills the buffer when it is fixed, `None` when it follows the
    /// inspected direction.
    #[must_use]
    pub fn fixed_direction(self) -> Option<Direction> {
        use HttpBuffer as B;
        match self {
            B::Method
            | B::Uri
            | B::UriRaw
            | B::RequestLine
            | B::Host
            | B::HostRaw
            | B::UserAgent
            | B::Referer
            | B::Accept
            | B::AcceptEnc
            | B::AcceptLang
            | B::RequestBody
            | B::RequestHeader => Some(Direction::ToServer),
            B::StatCode
            | B::StatMsg
            | B::ResponseLine
            | B::Server
            | B::Location
            | B::ResponseBody
            | B::ResponseHeader => Some(Direction::ToClient),
            B::Protocol
            | B::Connection
            | B::ContentType
            | B::ContentLen
            | B::Cookie
            | B::Header
            | B::HeaderRaw
            | B::HeaderNames
            | B::Start
            | B::FileData => None,
        }
    }

    /// Progress (in the buffer's direction) from which the buffer is final. Body buffers are
    /// final at [`progress::COMPLETE`] and hold a growing prefix from [`progress::BODY`].
    #[must_use]
    pub fn available_at(self) -> u8 {
        use HttpBuffer as B;
        match self {
            B::Method
            | B::Uri
            | B::UriRaw
            | B::RequestLine
            | B::StatCode
            | B::StatMsg
            | B::ResponseLine
            | B::Protocol => progress::LINE,
            B::RequestBody | B::ResponseBody | B::FileData => progress::COMPLETE,
            _ => progress::HEADERS,
        }
    }
}
