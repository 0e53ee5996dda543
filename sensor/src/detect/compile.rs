//! Rules to signatures: compiled match lists, interned flowbits, the evaluation order.
//!
//! Signatures are ordered as Suricata orders them (its signature ordering functions):
//! by action (pass, drop, reject, alert), then flowbits use (rules that only set bits
//! first, then set-and-read, then read-only, then rules without flowbits), then priority,
//! then load order. Within one packet, rules run in that order, so a bit set by one rule
//! is visible to a later rule on the same packet, and alerts are logged in that order.

use std::collections::HashMap;

use super::content::{CContent, CPcre, Step};
use super::rule::ast::{
    Action, Check, Content, FlowOpts, Flowbit, Item, MatchList, NumCmp, Rule, RuleProto, Threshold,
    Transform,
};
use super::rule::buffers::BufferId;
use super::rule::classification::Classifications;
use super::rule::{RuleError, value_err};
use crate::applayer::AppProto;

/// A buffer plus the transforms applied to it: the unit one prefilter database covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BufferKey {
    /// The buffer.
    pub buffer: BufferId,
    /// Transforms, in order.
    pub transforms: Vec<Transform>,
}

/// A compiled match list.
#[derive(Debug)]
pub struct CList {
    /// What it inspects.
    pub key: BufferKey,
    /// Steps in rule order.
    pub steps: Vec<Step>,
}

/// Which packets a signature's protocol admits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtoFilter {
    /// Any IP packet (optionally one IP version).
    Ip(Option<u8>),
    /// TCP, with whether packets and/or the stream are inspected.
    Tcp {
        /// Inspect packet payloads.
        packets: bool,
        /// Inspect the reassembled stream.
        stream: bool,
    },
    /// UDP.
    Udp,
    /// ICMP (optionally only v4 or v6).
    Icmp(Option<u8>),
    /// SCTP.
    Sctp,
}

/// The packet direction a signature is inspected in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigDir {
    /// To-server packets only.
    ToServer,
    /// To-client packets only.
    ToClient,
    /// Either direction.
    Either,
}

impl SigDir {
    /// Whether packets travelling `dir` are inspected.
    #[must_use]
    pub fn admits(self, dir: crate::Direction) -> bool {
        match self {
            Self::Either => true,
            Self::ToServer => dir == crate::Direction::ToServer,
            Self::ToClient => dir == crate::Direction::ToClient,
        }
    }
}

/// Flowbit operations with interned ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CFlowbit {
    /// set.
    Set(Vec<u32>),
    /// unset.
    Unset(Vec<u32>),
    /// toggle.
    Toggle(Vec<u32>),
    /// isset (any of).
    IsSet(Vec<u32>),
    /// isnotset (all of).
    IsNotSet(Vec<u32>),
}

/// A signature ready for evaluation.
#[derive(Debug)]
pub struct Sig {
    /// Position in evaluation order (index into the engine's signature list).
    pub num: u32,
    /// `gid`.
    pub gid: u32,
    /// `sid`.
    pub sid: u32,
    /// `rev`.
    pub rev: u32,
    /// `msg`.
    pub msg: String,
    /// Classtype description (EVE `category`), empty without classtype.
    pub category: String,
    /// Priority (EVE `severity`).
    pub priority: u8,
    /// Action.
    pub action: Action,
    /// Protocol filter.
    pub proto: ProtoFilter,
    /// Application protocol required (head or implied by buffers).
    pub app_proto: Option<AppProto>,
    /// For transaction signatures: the direction of packets they are inspected on.
    pub dir: SigDir,
    /// Header addresses and ports.
    pub header: super::rule::Header,
    /// `flow:` options.
    pub flow: FlowOpts,
    /// Non-payload checks.
    pub checks: Vec<Check>,
    /// Flowbit conditions and actions in rule order.
    pub flowbits: Vec<CFlowbit>,
    /// Match lists.
    pub lists: Vec<CList>,
    /// Whether any list needs an app-layer transaction.
    pub needs_tx: bool,
    /// A transaction signature that also inspects the packet payload / stream.
    pub stream_part: bool,
    /// A TCP stream signature that also inspects packets whose payload went into the
    /// stream: Suricata sets this when a payload content has `depth`/`offset` (positions
    /// that mean "from the packet start") or the rule uses `stream_size`.
    pub require_packet: bool,
    /// `noalert`.
    pub noalert: bool,
    /// `threshold`.
    pub threshold: Option<Threshold>,
    /// `detection_filter`.
    pub detection_filter: Option<Threshold>,
    /// `byte_extract` variable count.
    pub nvars: u8,
    /// `metadata` as EVE's `alert.metadata` object (key → list of values).
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// The prefilter pattern: (list index, bytes, nocase), when the rule has a positive content.
    pub fast_pattern: Option<(usize, Vec<u8>, bool)>,
}

/// Interns flowbit names to small integer ids.
#[derive(Debug, Default)]
pub struct Interner {
    ids: HashMap<String, u32>,
    names: Vec<String>,
}

impl Interner {
    /// The id of `name`, allocating one on first use.
    pub fn id(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.ids.insert(name.to_owned(), id);
        self.names.push(name.to_owned());
        id
    }

    /// The name of `id`.
    #[must_use]
    pub fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", String::as_str)
    }
}

/// Compiles a match list.
///
/// # Errors
/// [`RuleError`] when a pcre does not compile.
pub fn compile_list(list: &MatchList) -> Result<CList, RuleError> {
    let mut steps = Vec::with_capacity(list.items.len());
    for item in &list.items {
        steps.push(match item {
            Item::Content(c) => Step::Content(Box::new(CContent::new(c))),
            Item::Pcre(p) => Step::Pcre(compile_pcre(p)?),
            Item::ByteTest(t) => Step::ByteTest(t.clone()),
            Item::ByteJump(j) => Step::ByteJump(j.clone()),
            Item::ByteExtract(e) => Step::ByteExtract(e.clone()),
            Item::IsDataAt(d) => Step::IsDataAt(d.clone()),
            Item::Bsize(b) => Step::Bsize(*b),
            Item::Base64Decode { .. } => {
                return Err(RuleError::Unsupported("base64_decode".into()));
            }
        });
    }
    Ok(CList {
        key: BufferKey {
            buffer: list.buffer,
            transforms: list.transforms.clone(),
        },
        steps,
    })
}

fn compile_pcre(p: &super::rule::Pcre) -> Result<CPcre, RuleError> {
    let mut pattern = String::with_capacity(p.pattern.len() + 16);
    if p.ungreedy {
        pattern.push_str("(?U)");
    }
    if p.anchored {
        pattern.push_str("\\A(?:");
        pattern.push_str(&p.pattern);
        pattern.push(')');
    } else {
        pattern.push_str(&p.pattern);
    }
    let re = pcre2::bytes::RegexBuilder::new()
        .caseless(p.caseless)
        .dotall(p.dotall)
        .multi_line(p.multiline)
        .extended(p.extended)
        .jit_if_available(true)
        .build(&pattern)
        .map_err(|e| value_err("pcre", format!("does not compile: {e}")))?;
    Ok(CPcre {
        re,
        relative: p.relative,
        negated: p.negated,
    })
}

fn intern_all(names: &[String], interner: &mut Interner) -> Vec<u32> {
    names.iter().map(|n| interner.id(n)).collect()
}

/// Picks the prefilter pattern: the content marked `fast_pattern`, else the longest
/// positive content (first on ties), as Suricata does when no content is marked.
fn fast_pattern(lists: &[MatchList]) -> Option<(usize, Vec<u8>, bool)> {
    let mut best: Option<(usize, &Content)> = None;
    for (li, list) in lists.iter().enumerate() {
        for item in &list.items {
            let Item::Content(c) = item else { continue };
            if c.negated {
                continue;
            }
            if c.fast_pattern {
                let bytes = match c.fast_pattern_chop {
                    Some((o, l)) => c
                        .pattern
                        .get(usize::from(o)..usize::from(o) + usize::from(l))
                        .unwrap_or(&c.pattern)
                        .to_vec(),
                    None => c.pattern.clone(),
                };
                return Some((li, bytes, c.nocase));
            }
            if best.is_none_or(|(_, b)| c.pattern.len() > b.pattern.len()) {
                best = Some((li, c));
            }
        }
    }
    best.map(|(li, c)| (li, c.pattern.clone(), c.nocase))
}

/// Compiles one rule into a signature (its `num` is set later, after ordering).
///
/// # Errors
/// [`RuleError`] when part of the rule cannot be compiled (pcre syntax, ...).
pub fn compile(
    rule: &Rule,
    classes: &Classifications,
    interner: &mut Interner,
) -> Result<Sig, RuleError> {
    let lists = rule
        .lists
        .iter()
        .map(compile_list)
        .collect::<Result<Vec<_>, _>>()?;
    let needs_tx = lists
        .iter()
        .any(|l| l.key.buffer == BufferId::FileData || l.key.buffer.info().app.is_some())
        || rule.checks.iter().any(|c| {
            matches!(
                c,
                Check::Urilen(..)
                    | Check::TlsVersion(_)
                    | Check::TlsFingerprint(_)
                    | Check::SslVersion(_)
                    | Check::SslState(..)
            )
        });
    // Transaction keywords without a protocol imply one: TLS state keywords TLS,
    // `file.data` and `urilen` HTTP (the protocol Tocsin extracts bodies and URIs from).
    let tls_check = rule.checks.iter().any(|c| {
        matches!(
            c,
            Check::TlsVersion(_)
                | Check::TlsFingerprint(_)
                | Check::SslVersion(_)
                | Check::SslState(..)
        )
    });
    let app_proto = match rule.app_proto {
        None if needs_tx && tls_check => Some(AppProto::Tls),
        None if needs_tx => Some(AppProto::HttpAny),
        other => other,
    };
    let proto = match &rule.header.proto {
        RuleProto::Ip(v) => ProtoFilter::Ip(*v),
        RuleProto::Tcp => ProtoFilter::Tcp {
            packets: true,
            stream: true,
        },
        RuleProto::TcpPkt => ProtoFilter::Tcp {
            packets: true,
            stream: false,
        },
        RuleProto::TcpStream => ProtoFilter::Tcp {
            packets: false,
            stream: true,
        },
        RuleProto::Udp => ProtoFilter::Udp,
        RuleProto::Icmp(v) => ProtoFilter::Icmp(*v),
        RuleProto::Sctp => ProtoFilter::Sctp,
        // App protocols ride on TCP or UDP; the flow's detected protocol decides.
        RuleProto::App(_) => ProtoFilter::Ip(None),
    };
    let class = rule.classtype.as_deref().and_then(|c| classes.get(c));
    if let (Some(name), None) = (&rule.classtype, class) {
        return Err(value_err(
            "classtype",
            format!("unknown classtype '{name}'"),
        ));
    }
    let priority = rule
        .priority
        .or_else(|| class.map(|c| c.priority))
        .unwrap_or(3);
    let flowbits = rule
        .flowbits
        .iter()
        .map(|f| match f {
            Flowbit::Set(n) => CFlowbit::Set(intern_all(n, interner)),
            Flowbit::Unset(n) => CFlowbit::Unset(intern_all(n, interner)),
            Flowbit::Toggle(n) => CFlowbit::Toggle(intern_all(n, interner)),
            Flowbit::IsSet(n) => CFlowbit::IsSet(intern_all(n, interner)),
            Flowbit::IsNotSet(n) => CFlowbit::IsNotSet(intern_all(n, interner)),
        })
        .collect();
    let metadata = (!rule.metadata.is_empty()).then(|| {
        let mut m = serde_json::Map::new();
        for (k, v) in &rule.metadata {
            let entry = m
                .entry(k.clone())
                .or_insert_with(|| serde_json::Value::Array(Vec::new()));
            if let serde_json::Value::Array(a) = entry {
                a.push(serde_json::Value::String(v.clone()));
            }
        }
        m
    });
    // A dsize keyword makes Suricata inspect packets only, never the stream.
    let proto = match proto {
        ProtoFilter::Tcp { packets, .. }
            if rule.checks.iter().any(|c| matches!(c, Check::Dsize(_))) || rule.flow.no_stream =>
        {
            ProtoFilter::Tcp {
                packets,
                stream: false,
            }
        }
        other => other,
    };
    Ok(Sig {
        num: 0,
        gid: rule.gid,
        sid: rule.sid,
        rev: rule.rev,
        msg: rule.msg.clone(),
        category: class.map(|c| c.description.clone()).unwrap_or_default(),
        priority,
        action: rule.header.action,
        proto,
        app_proto,
        dir: sig_dir(rule),
        header: rule.header.clone(),
        flow: rule.flow,
        checks: rule.checks.clone(),
        flowbits,
        fast_pattern: fast_pattern(&rule.lists),
        stream_part: needs_tx && lists.iter().any(|l| l.key.buffer == BufferId::Payload),
        require_packet: require_packet(rule),
        lists,
        needs_tx,
        noalert: rule.noalert,
        threshold: rule.threshold,
        detection_filter: rule.detection_filter,
        nvars: rule.nvars,
        metadata,
    })
}

/// The direction a rule is inspected in: its `flow:` direction, else what its buffers
/// imply (any response-side buffer makes it a response rule: it can only complete there).
fn sig_dir(rule: &Rule) -> SigDir {
    use super::rule::buffers::BufDir;
    match rule.flow.to_server {
        Some(true) => return SigDir::ToServer,
        Some(false) => return SigDir::ToClient,
        None => {}
    }
    let mut dirs: Vec<BufDir> = rule.lists.iter().map(|l| l.buffer.info().dir).collect();
    if rule
        .checks
        .iter()
        .any(|c| matches!(c, Check::TlsFingerprint(_)))
    {
        dirs.push(BufDir::ToClient);
    }
    if dirs.contains(&BufDir::ToClient) {
        SigDir::ToClient
    } else if dirs.contains(&BufDir::ToServer) {
        SigDir::ToServer
    } else {
        SigDir::Either
    }
}

/// Whether a stream rule also inspects packets (see [`Sig::require_packet`]).
fn require_packet(rule: &Rule) -> bool {
    let anchored = rule
        .lists
        .iter()
        .filter(|l| l.buffer == BufferId::Payload)
        .flat_map(|l| &l.items)
        .any(|i| matches!(i, Item::Content(c) if c.depth.is_some() || c.offset.is_some()));
    anchored
        || rule
            .checks
            .iter()
            .any(|c| matches!(c, Check::StreamSize(..)))
}

/// Suricata's flowbits ordering class: set-only 0, set-and-read 1, read-only 2, none 3.
fn flowbits_class(sig: &Sig) -> u8 {
    let sets = sig.flowbits.iter().any(|f| {
        matches!(
            f,
            CFlowbit::Set(_) | CFlowbit::Unset(_) | CFlowbit::Toggle(_)
        )
    });
    let reads = sig
        .flowbits
        .iter()
        .any(|f| matches!(f, CFlowbit::IsSet(_) | CFlowbit::IsNotSet(_)));
    match (sets, reads) {
        (true, false) => 0,
        (true, true) => 1,
        (false, true) => 2,
        (false, false) => 3,
    }
}

/// Sorts signatures into evaluation order and numbers them.
pub fn order(sigs: &mut [Sig]) {
    // sort_by_key is stable: load order breaks ties.
    sigs.sort_by_key(|s| (s.action, flowbits_class(s), s.priority));
    for (i, s) in sigs.iter_mut().enumerate() {
        s.num = u32::try_from(i).unwrap_or(u32::MAX);
    }
}

/// Whether `v` passes an optional numeric comparison (helper for checks).
#[must_use]
pub fn cmp(c: NumCmp, v: u64) -> bool {
    c.matches(v)
}
