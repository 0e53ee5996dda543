//! The parsed form of one rule: header, metadata, and match lists per buffer.
//!
//! A rule's payload keywords (content, pcre, byte_*, isdataat, bsize, ...) are grouped into
//! [`MatchList`]s, one per inspected buffer (packet/stream payload, `http.uri`, `dns.query`,
//! ...), in rule order. Everything else lands in typed fields. The detection engine
//! compiles this form into its own; nothing here knows about packets.

use super::address::IpSet;
use super::buffers::BufferId;
use super::port::PortSet;
use crate::applayer::AppProto;

/// What happens when the rule matches. Tocsin is passive: `drop` and `reject` alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// Stop inspecting the packet with later rules; no alert.
    Pass,
    /// Alert (would drop in IPS mode).
    Drop,
    /// Alert (would reject in IPS mode).
    Reject,
    /// Alert.
    Alert,
}

/// The protocol named in the rule header.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RuleProto {
    /// `ip` (also `ipv4`/`ipv6` with the version set): any IP packet.
    Ip(Option<u8>),
    /// `tcp`: packets and stream.
    Tcp,
    /// `tcp-pkt`: TCP packets only, never the reassembled stream.
    TcpPkt,
    /// `tcp-stream`: the reassembled TCP stream only.
    TcpStream,
    /// `udp`.
    Udp,
    /// `icmp` (v4 and v6) / `icmpv4` / `icmpv6`.
    Icmp(Option<u8>),
    /// `sctp`.
    Sctp,
    /// An application protocol (`http`, `dns`, `tls`, `ftp`, ...).
    App(AppProto),
}

/// The rule header: `action proto src sport -> dst dport`.
#[derive(Debug, Clone)]
pub struct Header {
    /// Action.
    pub action: Action,
    /// Protocol.
    pub proto: RuleProto,
    /// Source addresses.
    pub src: IpSet,
    /// Source ports.
    pub src_ports: PortSet,
    /// `<>`: also match with source and destination swapped.
    pub bidirectional: bool,
    /// Destination addresses.
    pub dst: IpSet,
    /// Destination ports.
    pub dst_ports: PortSet,
}

/// A `distance`/`within`/`offset`/`depth` value: a number or a `byte_extract` variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Num {
    /// A literal.
    Lit(i64),
    /// A variable set by `byte_extract` earlier in the rule (index into the rule's vars).
    Var(u8),
}

/// `content` with its modifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    /// The bytes to find (hex and escapes decoded).
    pub pattern: Vec<u8>,
    /// `content:!"..."`.
    pub negated: bool,
    /// `nocase`.
    pub nocase: bool,
    /// `offset`.
    pub offset: Option<Num>,
    /// `depth`.
    pub depth: Option<Num>,
    /// `distance` (relative to the previous match).
    pub distance: Option<Num>,
    /// `within` (relative to the previous match).
    pub within: Option<Num>,
    /// `startswith`: match at offset 0 (or right after the previous match if relative).
    pub startswith: bool,
    /// `endswith`: the match ends the buffer.
    pub endswith: bool,
    /// `fast_pattern` was given.
    pub fast_pattern: bool,
    /// `fast_pattern:only` (legacy; Suricata treats it as a hint).
    pub fast_pattern_only: bool,
    /// `fast_pattern:offset,length`: the slice of the pattern to use in the prefilter.
    pub fast_pattern_chop: Option<(u16, u16)>,
}

impl Content {
    /// A content with no modifiers.
    #[must_use]
    pub fn new(pattern: Vec<u8>, negated: bool) -> Self {
        Self {
            pattern,
            negated,
            nocase: false,
            offset: None,
            depth: None,
            distance: None,
            within: None,
            startswith: false,
            endswith: false,
            fast_pattern: false,
            fast_pattern_only: false,
            fast_pattern_chop: None,
        }
    }

    /// Whether the match position depends on the previous match.
    #[must_use]
    pub fn is_relative(&self) -> bool {
        self.distance.is_some() || self.within.is_some()
    }
}

/// `pcre:"/re/flags"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pcre {
    /// The pattern between the slashes.
    pub pattern: String,
    /// `i`.
    pub caseless: bool,
    /// `s`.
    pub dotall: bool,
    /// `m`.
    pub multiline: bool,
    /// `x`.
    pub extended: bool,
    /// `A`: anchored.
    pub anchored: bool,
    /// `E`: `$` matches only at the very end.
    pub dollar_endonly: bool,
    /// `G`: ungreedy.
    pub ungreedy: bool,
    /// `R`: relative to the previous match.
    pub relative: bool,
    /// `pcre:!"..."`.
    pub negated: bool,
    /// Named captures into flow/packet variables are not supported: rules using them are
    /// rejected at parse time, so this is always false today.
    pub captures: bool,
}

/// Number representation for `byte_test`/`byte_jump`/`byte_extract`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteBase {
    /// Raw bytes, big or little endian.
    Binary {
        /// `little`.
        little: bool,
    },
    /// ASCII digits (`string,dec|hex|oct`).
    String(u32),
}

/// Comparison operator of `byte_test` and similar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `<`.
    Lt,
    /// `>`.
    Gt,
    /// `=`.
    Eq,
    /// `<=`.
    Le,
    /// `>=`.
    Ge,
    /// `&`: any of the bits.
    And,
    /// `^`: xor non-zero.
    Xor,
}

/// `byte_test`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ByteTest {
    /// Bytes to read (1..=10 for strings, 1..=8 binary), or a `byte_extract` variable.
    pub nbytes: Num,
    /// Operator.
    pub op: CmpOp,
    /// `!` before the operator.
    pub negated: bool,
    /// Value to compare with.
    pub value: Num,
    /// Offset.
    pub offset: Num,
    /// `relative`.
    pub relative: bool,
    /// Number format.
    pub base: ByteBase,
    /// `bitmask` applied (and shifted right by its trailing zeros) before comparing.
    pub bitmask: Option<u64>,
}

/// `byte_jump`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ByteJump {
    /// Bytes to read, or a `byte_extract` variable.
    pub nbytes: Num,
    /// Offset.
    pub offset: Num,
    /// `relative`.
    pub relative: bool,
    /// Number format.
    pub base: ByteBase,
    /// `multiplier N`.
    pub multiplier: u32,
    /// `align`: round up to a multiple of 4.
    pub align: bool,
    /// `from_beginning`: jump from the buffer start rather than after the read bytes.
    pub from_beginning: bool,
    /// `from_end`: jump from the buffer end.
    pub from_end: bool,
    /// `post_offset N`.
    pub post_offset: i64,
    /// `bitmask`.
    pub bitmask: Option<u64>,
}

/// `byte_extract`: read a number into a rule variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ByteExtract {
    /// Bytes to read.
    pub nbytes: u8,
    /// Offset.
    pub offset: i64,
    /// Variable slot.
    pub var: u8,
    /// `relative`.
    pub relative: bool,
    /// Number format.
    pub base: ByteBase,
    /// `multiplier N`.
    pub multiplier: u32,
    /// `align N` (2 or 4).
    pub align: u8,
    /// `bitmask`.
    pub bitmask: Option<u64>,
}

/// `isdataat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsDataAt {
    /// Position that must (or, negated, must not) hold data.
    pub offset: Num,
    /// `relative`.
    pub relative: bool,
    /// `!`.
    pub negated: bool,
}

/// A numeric condition: `N`, `<N`, `>N`, `<=N`, `>=N`, `!N`, `A<>B` (exclusive), `A-B`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumCmp {
    /// `== N`.
    Eq(u64),
    /// `!= N`.
    Ne(u64),
    /// `< N`.
    Lt(u64),
    /// `> N`.
    Gt(u64),
    /// `<= N`.
    Le(u64),
    /// `>= N`.
    Ge(u64),
    /// `A<>B`: strictly between.
    Between(u64, u64),
    /// `!A<>B`: outside.
    NotBetween(u64, u64),
}

impl NumCmp {
    /// Whether `v` satisfies the condition.
    #[must_use]
    pub fn matches(self, v: u64) -> bool {
        match self {
            Self::Eq(n) => v == n,
            Self::Ne(n) => v != n,
            Self::Lt(n) => v < n,
            Self::Gt(n) => v > n,
            Self::Le(n) => v <= n,
            Self::Ge(n) => v >= n,
            Self::Between(a, b) => v > a && v < b,
            Self::NotBetween(a, b) => !(v > a && v < b),
        }
    }
}

/// A transform applied to a sticky buffer before inspection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Transform {
    /// `dotprefix`: prepend a `.`.
    DotPrefix,
    /// `to_lowercase`.
    ToLowercase,
    /// `to_uppercase`.
    ToUppercase,
    /// `strip_whitespace`.
    StripWhitespace,
    /// `compress_whitespace`.
    CompressWhitespace,
    /// `url_decode`.
    UrlDecode,
    /// `to_md5`.
    ToMd5,
    /// `to_sha1`.
    ToSha1,
    /// `to_sha256`.
    ToSha256,
    /// `header_lowercase`.
    HeaderLowercase,
    /// `strip_pseudo_headers`.
    StripPseudoHeaders,
    /// `xor:"key"`.
    Xor(Vec<u8>),
}

/// One inspection step inside a match list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// `content`.
    Content(Content),
    /// `pcre`.
    Pcre(Pcre),
    /// `byte_test`.
    ByteTest(ByteTest),
    /// `byte_jump`.
    ByteJump(ByteJump),
    /// `byte_extract`.
    ByteExtract(ByteExtract),
    /// `isdataat`.
    IsDataAt(IsDataAt),
    /// `bsize`: the buffer's length.
    Bsize(NumCmp),
    /// `base64_decode`: decode part of the buffer for a following `base64_data`.
    Base64Decode {
        /// Bytes to decode (0 = all).
        bytes: u32,
        /// Offset.
        offset: u32,
        /// `relative`.
        relative: bool,
    },
}

/// The match list of one buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchList {
    /// The buffer inspected.
    pub buffer: BufferId,
    /// Transforms applied, in order.
    pub transforms: Vec<Transform>,
    /// Steps, in rule order.
    pub items: Vec<Item>,
}

/// `flow:` options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowOpts {
    /// `established`.
    pub established: bool,
    /// `not_established`.
    pub not_established: bool,
    /// `stateless`.
    pub stateless: bool,
    /// `to_server`/`from_client`: `Some(true)`; `to_client`/`from_server`: `Some(false)`.
    pub to_server: Option<bool>,
    /// `only_stream`.
    pub only_stream: bool,
    /// `no_stream`.
    pub no_stream: bool,
    /// `only_frag`.
    pub only_frag: bool,
    /// `no_frag`.
    pub no_frag: bool,
}

/// `flowbits` commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flowbit {
    /// `set,name` (also `set,a|b`: sets each).
    Set(Vec<String>),
    /// `unset,name`.
    Unset(Vec<String>),
    /// `toggle,name`.
    Toggle(Vec<String>),
    /// `isset,a|b`: any of them set.
    IsSet(Vec<String>),
    /// `isnotset,a|b`: none of them set... (Suricata: all unset).
    IsNotSet(Vec<String>),
}

/// How a threshold or detection filter tracks events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Track {
    /// Per source address.
    BySrc,
    /// Per destination address.
    ByDst,
    /// Per rule.
    ByRule,
    /// Per source/destination pair.
    ByBoth,
    /// Per flow.
    ByFlow,
}

/// `threshold` type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThresholdKind {
    /// Alert on the first `count` events per window.
    Limit,
    /// Alert on every `count`-th event.
    Threshold,
    /// Alert once per window, after `count` events.
    Both,
    /// Alert on `count`-th, 2×`count`-th, 4×... (Suricata 8 `backoff`).
    Backoff,
}

/// `threshold:` / `detection_filter:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    /// Type (`detection_filter` has none: it alerts on every event past `count`).
    pub kind: Option<ThresholdKind>,
    /// Tracking key.
    pub track: Track,
    /// Count.
    pub count: u32,
    /// Window in seconds (for `backoff`, the multiplier).
    pub seconds: u32,
    /// `unique_on src_port|dst_port`: count distinct ports instead of matches.
    pub unique_on: Option<UniqueOn>,
}

/// What `unique_on` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UniqueOn {
    /// Distinct source ports.
    SrcPort,
    /// Distinct destination ports.
    DstPort,
}

/// TCP `flags:` keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlagsMatch {
    /// Flags named in the rule.
    pub flags: u8,
    /// Flags to ignore (after the comma).
    pub mask: u8,
    /// Match modifier.
    pub modifier: FlagsModifier,
}

/// How `flags` compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagsModifier {
    /// Exactly these flags (ignoring the mask).
    Exact,
    /// `+`: these and any others.
    Plus,
    /// `*`: any of these.
    Any,
    /// `!`: not these exact flags.
    Not,
}

/// `stream_size` side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamSide {
    /// `server`.
    Server,
    /// `client`.
    Client,
    /// `both`.
    Both,
    /// `either`.
    Either,
}

/// Non-payload checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// `dsize`.
    Dsize(NumCmp),
    /// `ttl`.
    Ttl(NumCmp),
    /// `itype`.
    Itype(NumCmp),
    /// `icode`.
    Icode(NumCmp),
    /// `icmp_id`.
    IcmpId(u16),
    /// `icmp_seq`.
    IcmpSeq(u16),
    /// `ip_proto` (with `!`).
    IpProto(u8, bool),
    /// `id` (IPv4 identification).
    IpId(u16),
    /// `fragbits` (bits M=1, D=2, R=4; modifier).
    Fragbits(u8, FlagsModifier),
    /// `fragoffset`.
    FragOffset(NumCmp),
    /// `ipopts`.
    IpOpts(u16),
    /// `sameip`.
    SameIp,
    /// `flags`.
    Flags(FlagsMatch),
    /// `window` (with `!`).
    Window(u16, bool),
    /// `seq`.
    Seq(u32),
    /// `ack`.
    Ack(u32),
    /// `tcp.mss`.
    TcpMss(NumCmp),
    /// `stream_size`.
    StreamSize(StreamSide, NumCmp),
    /// `urilen` (on the normalized URI unless raw).
    Urilen(NumCmp, bool),
    /// `app-layer-protocol` (with `!`).
    AppLayerProtocol(AppProto, bool),
    /// `tls.version`.
    TlsVersion(u16),
    /// `tls.fingerprint` (legacy keyword; lower-case `aa:bb:...`).
    TlsFingerprint(String),
    /// `ssl_version` (bit set of versions).
    SslVersion(u8),
    /// `ssl_state` (bit set of states, negated).
    SslState(u8, bool),
}

/// Everything known about one rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Header.
    pub header: Header,
    /// `msg`.
    pub msg: String,
    /// `sid`.
    pub sid: u32,
    /// `gid` (default 1).
    pub gid: u32,
    /// `rev` (default 0).
    pub rev: u32,
    /// `classtype` name.
    pub classtype: Option<String>,
    /// `priority` (overrides the classtype's).
    pub priority: Option<u8>,
    /// `reference` values as written.
    pub references: Vec<String>,
    /// `metadata` key/value pairs.
    pub metadata: Vec<(String, String)>,
    /// `target:src_ip|dest_ip`.
    pub target: Option<String>,
    /// Match lists; at most one per (buffer, transforms) in first-use order.
    pub lists: Vec<MatchList>,
    /// Non-payload checks.
    pub checks: Vec<Check>,
    /// `flow:`.
    pub flow: FlowOpts,
    /// `flowbits` commands, in order.
    pub flowbits: Vec<Flowbit>,
    /// `noalert` (or `flowbits:noalert`).
    pub noalert: bool,
    /// `threshold`.
    pub threshold: Option<Threshold>,
    /// `detection_filter`.
    pub detection_filter: Option<Threshold>,
    /// Number of `byte_extract` variables.
    pub nvars: u8,
    /// Application protocol the rule is limited to: from the head (`alert http`) or implied
    /// by its app-layer buffers (`alert tcp ... http.uri;`).
    pub app_proto: Option<AppProto>,
    /// The rule's text (one line, continuations joined).
    pub text: String,
}
