//! One rule's text to a [`Rule`].
//!
//! Options are split on unescaped `;` exactly as Suricata does (quotes do not protect a
//! `;`: rules escape it as `\;` or write `|3b|`). Keywords are applied in order: sticky
//! buffers switch the list that following payload keywords go to, content modifiers
//! change the most recent content, legacy modifiers (`http_uri`) move it.

use super::address::parse_address;
use super::ast::{
    Action, Check, Content, Header, Item, MatchList, Num, Rule, RuleProto, Transform,
};
use super::buffers::{self, BufferId};
use super::keywords as kw;
use super::port::parse_ports;
use super::vars::Vars;
use super::{RuleError, value_err};
use crate::applayer::AppProto;

/// Keywords accepted and ignored because they do not change which packets alert:
/// `tag` (extra logging of following packets), `prefilter` (an engine hint),
/// `rawbytes` (a no-op since Suricata 2), `reference`-like metadata is kept elsewhere.
pub const IGNORED_KEYWORDS: &[&str] = &["tag", "prefilter", "rawbytes"];

/// Parses one rule (a single logical line, without the trailing newline).
///
/// # Errors
/// [`RuleError`] describing the first problem found.
pub fn parse_rule(text: &str, vars: &Vars) -> Result<Rule, RuleError> {
    let text = text.trim();
    let open = text
        .find('(')
        .ok_or_else(|| RuleError::Syntax("no '(' starting the options".into()))?;
    let (head, rest) = text.split_at(open);
    let body = rest
        .trim_end()
        .strip_prefix('(')
        .and_then(|b| b.strip_suffix(')'))
        .ok_or_else(|| RuleError::Syntax("options must end with ')'".into()))?;
    let header = parse_header(head, vars)?;
    let mut b = Builder::new(header, text);
    for opt in split_options(body)? {
        let (name, value) = match opt.split_once(':') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (opt.trim(), None),
        };
        if name.is_empty() {
            continue;
        }
        b.option(name, value)?;
    }
    b.finish()
}

fn parse_header(head: &str, vars: &Vars) -> Result<Header, RuleError> {
    let tokens = header_tokens(head)?;
    let [action, proto, src, sp, dir, dst, dp] = tokens.as_slice() else {
        return Err(RuleError::Syntax(format!(
            "header needs 7 fields (action proto src sport -> dst dport), found {}",
            tokens.len()
        )));
    };
    let action = match *action {
        "alert" => Action::Alert,
        "pass" => Action::Pass,
        "drop" => Action::Drop,
        "reject" | "rejectsrc" | "rejectdst" | "rejectboth" => Action::Reject,
        other => return Err(RuleError::Action(other.to_owned())),
    };
    let proto_lc = proto.to_ascii_lowercase();
    let proto = match proto_lc.as_str() {
        "ip" | "pkthdr" => RuleProto::Ip(None),
        "ipv4" | "ip4" => RuleProto::Ip(Some(4)),
        "ipv6" | "ip6" => RuleProto::Ip(Some(6)),
        "tcp" => RuleProto::Tcp,
        "tcp-pkt" => RuleProto::TcpPkt,
        "tcp-stream" => RuleProto::TcpStream,
        "udp" => RuleProto::Udp,
        "icmp" => RuleProto::Icmp(None),
        "icmpv4" => RuleProto::Icmp(Some(4)),
        "icmpv6" => RuleProto::Icmp(Some(6)),
        "sctp" => RuleProto::Sctp,
        // Every protocol Suricata 7 names in a rule head; rules for protocols Tocsin only
        // detects (or does not parse) load and never see traffic of their protocol, as in a
        // Suricata built without that parser.
        p => match AppProto::from_rule_name(p) {
            Some(a) if a.is_known() => RuleProto::App(a),
            _ => return Err(RuleError::Protocol((*proto).to_owned())),
        },
    };
    let bidirectional = match *dir {
        "->" => false,
        "<>" => true,
        other => {
            return Err(RuleError::Syntax(format!(
                "direction must be '->' or '<>', found '{other}'"
            )));
        }
    };
    Ok(Header {
        action,
        proto,
        src: parse_address(src, vars)?,
        src_ports: parse_ports(sp, vars)?,
        bidirectional,
        dst: parse_address(dst, vars)?,
        dst_ports: parse_ports(dp, vars)?,
    })
}

/// Splits the header on whitespace outside brackets (`[1.1.1.1, 2.2.2.2]` is one field).
fn header_tokens(head: &str) -> Result<Vec<&str>, RuleError> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start: Option<usize> = None;
    for (i, c) in head.char_indices() {
        match c {
            '[' => {
                depth += 1;
                start.get_or_insert(i);
            }
            ']' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| RuleError::Syntax("unbalanced ']' in header".into()))?;
            }
            c if c.is_whitespace() && depth == 0 => {
                if let Some(s) = start.take() {
                    out.push(head.get(s..i).unwrap_or_default());
                }
            }
            _ => {
                start.get_or_insert(i);
            }
        }
    }
    if depth != 0 {
        return Err(RuleError::Syntax("unbalanced '[' in header".into()));
    }
    if let Some(s) = start {
        out.push(head.get(s..).unwrap_or_default());
    }
    Ok(out)
}

/// Splits options on `;` not preceded by a backslash.
fn split_options(body: &str) -> Result<Vec<&str>, RuleError> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            ';' if !escaped => {
                out.push(body.get(start..i).unwrap_or_default());
                start = i + 1;
            }
            _ => escaped = false,
        }
    }
    let tail = body.get(start..).unwrap_or_default();
    if !tail.trim().is_empty() {
        return Err(RuleError::Syntax(format!(
            "last option '{}' is not terminated by ';'",
            tail.trim()
        )));
    }
    Ok(out)
}

/// Where payload keywords currently go.
enum Cur {
    /// A list already holding items.
    List(usize),
    /// A buffer selected (with transforms so far) but no item added yet.
    Pending(BufferId, Vec<Transform>),
}

struct Builder {
    rule: Rule,
    cur: Cur,
    /// The most recent content: (list, item).
    last_content: Option<(usize, usize)>,
    var_names: Vec<String>,
    has_sid: bool,
    /// Application protocol implied so far (rule head or app-layer buffers).
    app: Option<AppProto>,
}

fn needs_value<'a>(name: &str, v: Option<&'a str>) -> Result<&'a str, RuleError> {
    v.ok_or_else(|| value_err(name, "needs a value"))
}

fn no_value(name: &str, v: Option<&str>) -> Result<(), RuleError> {
    match v {
        Some(x) if !x.is_empty() => Err(value_err(name, "takes no value")),
        _ => Ok(()),
    }
}

impl Builder {
    fn new(header: Header, text: &str) -> Self {
        let app = match &header.proto {
            RuleProto::App(a) => Some(*a),
            _ => None,
        };
        Self {
            rule: Rule {
                header,
                msg: String::new(),
                sid: 0,
                gid: 1,
                rev: 0,
                classtype: None,
                priority: None,
                references: Vec::new(),
                metadata: Vec::new(),
                target: None,
                lists: Vec::new(),
                checks: Vec::new(),
                flow: Default::default(),
                flowbits: Vec::new(),
                noalert: false,
                threshold: None,
                detection_filter: None,
                nvars: 0,
                app_proto: None,
                text: text.to_owned(),
            },
            cur: Cur::Pending(BufferId::Payload, Vec::new()),
            last_content: None,
            var_names: Vec::new(),
            has_sid: false,
            app,
        }
    }

    fn finish(mut self) -> Result<Rule, RuleError> {
        if !self.has_sid {
            return Err(RuleError::Missing("sid"));
        }
        self.ensure_matches_in_pending()?;
        if self.rule.threshold.is_some() && self.rule.detection_filter.is_some() {
            return Err(value_err(
                "detection_filter",
                "detection_filter and threshold are not allowed in the same rule",
            ));
        }
        self.rule.app_proto = self.app.take();
        self.rule.nvars = u8::try_from(self.var_names.len()).unwrap_or(u8::MAX);
        self.rule.lists.retain(|l| !l.items.is_empty());
        Ok(self.rule)
    }

    /// Index of the list payload keywords go to now, creating it if needed.
    fn list(&mut self) -> usize {
        match &mut self.cur {
            Cur::List(i) => *i,
            Cur::Pending(buf, transforms) => {
                let (buf, transforms) = (*buf, std::mem::take(transforms));
                let i = self.list_for(buf, transforms);
                self.cur = Cur::List(i);
                i
            }
        }
    }

    fn list_for(&mut self, buffer: BufferId, transforms: Vec<Transform>) -> usize {
        if let Some(i) = self
            .rule
            .lists
            .iter()
            .position(|l| l.buffer == buffer && l.transforms == transforms)
        {
            return i;
        }
        self.rule.lists.push(MatchList {
            buffer,
            transforms,
            items: Vec::new(),
        });
        self.rule.lists.len() - 1
    }

    fn push_item(&mut self, item: Item) -> (usize, usize) {
        let l = self.list();
        let items = &mut self.rule.lists[l].items; // l was just returned by list()
        items.push(item);
        (l, items.len() - 1)
    }

    fn last_content_mut(&mut self, name: &str) -> Result<&mut Content, RuleError> {
        let (l, i) = self
            .last_content
            .ok_or_else(|| value_err(name, "needs a preceding content"))?;
        match self
            .rule
            .lists
            .get_mut(l)
            .and_then(|list| list.items.get_mut(i))
        {
            Some(Item::Content(c)) => Ok(c),
            _ => Err(value_err(name, "needs a preceding content")),
        }
    }

    /// A sticky buffer selected without any keyword using it is an error in Suricata.
    fn ensure_matches_in_pending(&self) -> Result<(), RuleError> {
        match &self.cur {
            Cur::Pending(buf, _) if *buf != BufferId::Payload => Err(value_err(
                buf.name(),
                "sticky buffer selected but no content/pcre/... follows it",
            )),
            _ => Ok(()),
        }
    }

    fn select_buffer(&mut self, buf: BufferId) -> Result<(), RuleError> {
        self.ensure_matches_in_pending()?;
        self.use_app(buf)?;
        self.cur = Cur::Pending(buf, Vec::new());
        Ok(())
    }

    /// Records the application protocol a buffer implies; two different ones conflict.
    fn use_app(&mut self, buf: BufferId) -> Result<(), RuleError> {
        let Some(app) = buf.info().app.and_then(AppProto::from_rule_name) else {
            return Ok(());
        };
        match self.app {
            None => {
                self.app = Some(app);
                Ok(())
            }
            Some(a) if a.matches_flow(app) || app.matches_flow(a) => Ok(()),
            Some(a) => Err(value_err(
                buf.name(),
                format!("conflicting protocols: rule is {a}, buffer is {app}"),
            )),
        }
    }

    /// Adds a transform to the current sticky buffer. After items were added, following
    /// items go to a variant of the buffer with the transforms so far plus this one.
    fn transform(&mut self, name: &str, t: Transform) -> Result<(), RuleError> {
        match &mut self.cur {
            Cur::Pending(buf, ts) if *buf != BufferId::Payload => {
                ts.push(t);
                Ok(())
            }
            Cur::List(i) => {
                let list = &self.rule.lists[*i]; // Cur::List always points at a live list
                if list.buffer == BufferId::Payload {
                    return Err(value_err(name, "transforms must follow a sticky buffer"));
                }
                let mut ts = list.transforms.clone();
                ts.push(t);
                self.cur = Cur::Pending(list.buffer, ts);
                Ok(())
            }
            Cur::Pending(..) => Err(value_err(name, "transforms must follow a sticky buffer")),
        }
    }

    /// The buffer payload keywords currently go to.
    fn current_buffer(&self) -> BufferId {
        match &self.cur {
            Cur::List(i) => self.rule.lists[*i].buffer, // live list
            Cur::Pending(b, _) => *b,
        }
    }

    /// Moves the last content into `buf`'s list (legacy `http_uri;` style modifiers).
    fn move_last_content(&mut self, name: &str, buf: BufferId) -> Result<(), RuleError> {
        let (l, i) = self
            .last_content
            .ok_or_else(|| value_err(name, "needs a preceding content"))?;
        let from = self
            .rule
            .lists
            .get(l)
            .ok_or_else(|| value_err(name, "needs a preceding content"))?;
        if from.buffer != BufferId::Payload || !from.transforms.is_empty() {
            return Err(value_err(
                name,
                "cannot modify a content already in a sticky buffer",
            ));
        }
        let item = self.rule.lists[l].items.remove(i); // (l, i) points at a live item
        let to = self.list_for(buf, Vec::new());
        self.rule.lists[to].items.push(item);
        self.last_content = Some((to, self.rule.lists[to].items.len() - 1));
        Ok(())
    }

    fn option(&mut self, name: &str, value: Option<&str>) -> Result<(), RuleError> {
        if let Some(buf) = buffers::sticky(name) {
            no_value(name, value)?;
            if buf == BufferId::Base64Data {
                return Err(RuleError::Unsupported("base64_data".into()));
            }
            return self.select_buffer(buf);
        }
        if let Some(buf) = buffers::legacy_modifier(name) {
            no_value(name, value)?;
            self.use_app(buf)?;
            return self.move_last_content(name, buf);
        }
        match name {
            "msg" => self.rule.msg = kw::unescape(kw::unquote(needs_value(name, value)?)),
            "sid" => {
                let sid: u32 = kw::int(name, needs_value(name, value)?)?;
                if sid == 0 {
                    return Err(value_err(name, "must be > 0"));
                }
                self.rule.sid = sid;
                self.has_sid = true;
            }
            "rev" => self.rule.rev = kw::int(name, needs_value(name, value)?)?,
            "gid" => self.rule.gid = kw::int(name, needs_value(name, value)?)?,
            "classtype" => self.rule.classtype = Some(needs_value(name, value)?.trim().to_owned()),
            "priority" => {
                let p: u8 = kw::int(name, needs_value(name, value)?)?;
                if p == 0 {
                    return Err(value_err(name, "must be 1-255"));
                }
                self.rule.priority = Some(p);
            }
            "reference" => self
                .rule
                .references
                .push(needs_value(name, value)?.to_owned()),
            "metadata" => self
                .rule
                .metadata
                .extend(kw::metadata(needs_value(name, value)?)),
            "target" => {
                let t = needs_value(name, value)?.trim();
                if t != "src_ip" && t != "dest_ip" {
                    return Err(value_err(name, "must be src_ip or dest_ip"));
                }
                self.rule.target = Some(t.to_owned());
            }
            "content" | "uricontent" => {
                let (pattern, negated) = kw::content_value(name, needs_value(name, value)?)?;
                let pos = self.push_item(Item::Content(Content::new(pattern, negated)));
                self.last_content = Some(pos);
                if name == "uricontent" {
                    self.move_last_content(name, BufferId::HttpUri)?;
                }
            }
            "nocase" => {
                no_value(name, value)?;
                self.last_content_mut(name)?.nocase = true;
            }
            "depth" | "offset" | "distance" | "within" => {
                let v = kw::num_or_var(name, needs_value(name, value)?, &self.var_names)?;
                let c = self.last_content_mut(name)?;
                let relative = matches!(name, "distance" | "within");
                if relative && (c.depth.is_some() || c.offset.is_some())
                    || !relative && c.is_relative()
                {
                    return Err(value_err(
                        name,
                        "cannot mix relative (distance/within) and absolute (offset/depth) on one content",
                    ));
                }
                if c.startswith && name != "within" && name != "distance" {
                    return Err(value_err(name, "cannot be combined with startswith"));
                }
                let len = i64::try_from(c.pattern.len()).unwrap_or(i64::MAX);
                match (name, &v) {
                    ("depth", Num::Lit(n)) if *n < len => {
                        return Err(value_err(name, "smaller than the content length"));
                    }
                    ("within", Num::Lit(n)) if *n < len => {
                        return Err(value_err(name, "smaller than the content length"));
                    }
                    ("depth" | "offset" | "within", Num::Lit(n)) if *n < 0 => {
                        return Err(value_err(name, "must not be negative"));
                    }
                    _ => {}
                }
                let slot = match name {
                    "depth" => &mut c.depth,
                    "offset" => &mut c.offset,
                    "distance" => &mut c.distance,
                    _ => &mut c.within,
                };
                *slot = Some(v);
            }
            "startswith" => {
                no_value(name, value)?;
                let c = self.last_content_mut(name)?;
                if c.depth.is_some() || c.offset.is_some() {
                    return Err(value_err(name, "cannot be combined with depth/offset"));
                }
                c.startswith = true;
            }
            "endswith" => {
                no_value(name, value)?;
                self.last_content_mut(name)?.endswith = true;
            }
            "fast_pattern" => {
                let c = self.last_content_mut(name)?;
                if c.negated {
                    // Suricata allows fast_pattern on negated contents only without options;
                    // it then never uses it as the prefilter. Keep the flag off.
                    return Ok(());
                }
                c.fast_pattern = true;
                match value.map(str::trim) {
                    None | Some("") => {}
                    Some("only") => c.fast_pattern_only = true,
                    Some(chop) => {
                        let (o, l) = chop
                            .split_once(',')
                            .ok_or_else(|| value_err(name, "expected 'only' or offset,length"))?;
                        let (o, l): (u16, u16) = (kw::int(name, o)?, kw::int(name, l)?);
                        if usize::from(o) + usize::from(l) > c.pattern.len() || l == 0 {
                            return Err(value_err(name, "offset,length outside the content"));
                        }
                        c.fast_pattern_chop = Some((o, l));
                    }
                }
            }
            "pcre" => {
                let (p, legacy) = kw::pcre_value(needs_value(name, value)?)?;
                if let Some(&flag) = legacy.first() {
                    let buf = pcre_legacy_buffer(flag);
                    let cur = self.current_buffer();
                    if cur == buf {
                        // `http.uri; pcre:"/x/U"`: the flag names the active buffer.
                        self.push_item(Item::Pcre(p));
                    } else if cur == BufferId::Payload {
                        self.use_app(buf)?;
                        let l = self.list_for(buf, Vec::new());
                        self.rule.lists[l].items.push(Item::Pcre(p));
                    } else {
                        return Err(value_err(
                            name,
                            "a buffer flag other than the active sticky buffer's",
                        ));
                    }
                } else {
                    self.push_item(Item::Pcre(p));
                }
            }
            "byte_test" => {
                let t = kw::byte_test(needs_value(name, value)?, &self.var_names)?;
                self.push_item(Item::ByteTest(t));
            }
            "byte_jump" => {
                let j = kw::byte_jump(needs_value(name, value)?, &self.var_names)?;
                self.push_item(Item::ByteJump(j));
            }
            "byte_extract" => {
                let slot = u8::try_from(self.var_names.len())
                    .map_err(|_| value_err(name, "too many variables"))?;
                let (e, var) = kw::byte_extract(needs_value(name, value)?, slot)?;
                if self.var_names.contains(&var) {
                    return Err(value_err(name, format!("variable '{var}' defined twice")));
                }
                self.var_names.push(var);
                self.push_item(Item::ByteExtract(e));
            }
            "isdataat" => {
                let d = kw::isdataat(needs_value(name, value)?, &self.var_names)?;
                self.push_item(Item::IsDataAt(d));
            }
            "bsize" => {
                let cmp = kw::num_cmp(name, needs_value(name, value)?)?;
                if self.current_buffer() == BufferId::Payload {
                    return Err(value_err(name, "needs a sticky buffer"));
                }
                self.push_item(Item::Bsize(cmp));
            }
            "pkt_data" => {
                no_value(name, value)?;
                self.select_buffer(BufferId::Payload)?;
            }
            "dotprefix" => self.transform(name, Transform::DotPrefix)?,
            "to_lowercase" => self.transform(name, Transform::ToLowercase)?,
            "to_uppercase" => self.transform(name, Transform::ToUppercase)?,
            "strip_whitespace" => self.transform(name, Transform::StripWhitespace)?,
            "compress_whitespace" => self.transform(name, Transform::CompressWhitespace)?,
            "url_decode" => self.transform(name, Transform::UrlDecode)?,
            "to_md5" => self.transform(name, Transform::ToMd5)?,
            "to_sha1" => self.transform(name, Transform::ToSha1)?,
            "to_sha256" => self.transform(name, Transform::ToSha256)?,
            "header_lowercase" => self.transform(name, Transform::HeaderLowercase)?,
            "strip_pseudo_headers" => self.transform(name, Transform::StripPseudoHeaders)?,
            "xor" => {
                let key = kw::unquote(needs_value(name, value)?);
                let bytes = hex::decode(key).map_err(|_| value_err(name, "key must be hex"))?;
                if bytes.is_empty() {
                    return Err(value_err(name, "empty key"));
                }
                self.transform(name, Transform::Xor(bytes))?;
            }
            "flow" => {
                let f = kw::flow(needs_value(name, value)?)?;
                self.rule.flow = f;
            }
            "flowbits" => match kw::flowbits(needs_value(name, value)?)? {
                None => self.rule.noalert = true,
                Some(fb) => self.rule.flowbits.push(fb),
            },
            "noalert" => {
                no_value(name, value)?;
                self.rule.noalert = true;
            }
            "threshold" => {
                self.rule.threshold = Some(kw::threshold(name, needs_value(name, value)?, true)?);
            }
            "detection_filter" => {
                self.rule.detection_filter =
                    Some(kw::threshold(name, needs_value(name, value)?, false)?);
            }
            "dsize" => self.check(Check::Dsize(kw::num_cmp(name, needs_value(name, value)?)?)),
            "ttl" => self.check(Check::Ttl(kw::num_cmp(name, needs_value(name, value)?)?)),
            "itype" => self.check(Check::Itype(kw::num_cmp(name, needs_value(name, value)?)?)),
            "icode" => self.check(Check::Icode(kw::num_cmp(name, needs_value(name, value)?)?)),
            "icmp_id" => self.check(Check::IcmpId(kw::int(name, needs_value(name, value)?)?)),
            "icmp_seq" => self.check(Check::IcmpSeq(kw::int(name, needs_value(name, value)?)?)),
            "ip_proto" => {
                let v = needs_value(name, value)?.trim();
                let (neg, v) = match v.strip_prefix('!') {
                    Some(r) => (true, r.trim()),
                    None => (false, v),
                };
                let p = match v.to_ascii_lowercase().as_str() {
                    "tcp" => 6,
                    "udp" => 17,
                    "icmp" => 1,
                    "ipv6-icmp" | "icmpv6" => 58,
                    "igmp" => 2,
                    "gre" => 47,
                    "esp" => 50,
                    "ah" => 51,
                    "sctp" => 132,
                    n => kw::int(name, n)?,
                };
                self.check(Check::IpProto(p, neg));
            }
            "id" => self.check(Check::IpId(kw::int(name, needs_value(name, value)?)?)),
            "fragbits" => {
                let (bits, m) = kw::fragbits(needs_value(name, value)?)?;
                self.check(Check::Fragbits(bits, m));
            }
            "fragoffset" => {
                self.check(Check::FragOffset(kw::num_cmp(
                    name,
                    needs_value(name, value)?,
                )?));
            }
            "ipopts" => {
                use crate::decode::ipopt;
                let bit = match needs_value(name, value)?.trim() {
                    "rr" => ipopt::RR,
                    "eol" => ipopt::EOL,
                    "nop" => ipopt::NOP,
                    "ts" => ipopt::TS,
                    "sec" => ipopt::SEC,
                    "esec" => ipopt::ESEC,
                    "lsrr" => ipopt::LSRR,
                    "ssrr" => ipopt::SSRR,
                    "satid" => ipopt::SATID,
                    "any" => ipopt::ANY,
                    other => return Err(value_err(name, format!("unknown option '{other}'"))),
                };
                self.check(Check::IpOpts(bit));
            }
            "sameip" => {
                no_value(name, value)?;
                self.check(Check::SameIp);
            }
            "flags" | "tcp.flags" => {
                self.check(Check::Flags(kw::flags(needs_value(name, value)?)?));
            }
            "window" => {
                let v = needs_value(name, value)?.trim();
                let (neg, v) = match v.strip_prefix('!') {
                    Some(r) => (true, r),
                    None => (false, v),
                };
                let w = u16::try_from(kw::int_any_base(name, v)?)
                    .map_err(|_| value_err(name, "must be 0-65535"))?;
                self.check(Check::Window(w, neg));
            }
            "seq" => self.check(Check::Seq(kw::int(name, needs_value(name, value)?)?)),
            "ack" => self.check(Check::Ack(kw::int(name, needs_value(name, value)?)?)),
            "tcp.mss" => self.check(Check::TcpMss(kw::num_cmp(name, needs_value(name, value)?)?)),
            "stream_size" => {
                let (side, cmp) = kw::stream_size(needs_value(name, value)?)?;
                self.check(Check::StreamSize(side, cmp));
            }
            "urilen" => {
                let v = needs_value(name, value)?;
                let (cmp_text, raw) = match v.split_once(',') {
                    Some((c, "raw")) => (c, true),
                    Some((c, m)) if m.trim() == "raw" => (c, true),
                    Some((c, m)) if m.trim() == "norm" => (c, false),
                    Some(_) => return Err(value_err(name, "second field must be raw or norm")),
                    None => (v, false),
                };
                self.check(Check::Urilen(kw::num_cmp(name, cmp_text)?, raw));
            }
            "app-layer-protocol" => {
                let v = needs_value(name, value)?.trim();
                let (neg, v) = match v.strip_prefix('!') {
                    Some(r) => (true, r.trim()),
                    None => (false, v),
                };
                let v = v.split(',').next().unwrap_or(v).trim();
                let proto = AppProto::from_rule_name(v)
                    .ok_or_else(|| value_err(name, format!("unknown protocol '{v}'")))?;
                self.check(Check::AppLayerProtocol(proto, neg));
            }
            "tls.version" => {
                let v = needs_value(name, value)?.trim();
                let n = match v {
                    "1.0" => 0x0301,
                    "1.1" => 0x0302,
                    "1.2" => 0x0303,
                    "1.3" => 0x0304,
                    other => u16::try_from(kw::int_any_base(name, other)?)
                        .map_err(|_| value_err(name, "unknown version"))?,
                };
                self.check(Check::TlsVersion(n));
            }
            "tls.fingerprint" | "tls_fingerprint" => {
                let v = kw::unquote(needs_value(name, value)?).to_ascii_lowercase();
                let ok = v.split(':').count() == 20
                    && v.split(':')
                        .all(|b| b.len() == 2 && b.bytes().all(|c| c.is_ascii_hexdigit()));
                if !ok {
                    return Err(value_err(name, "expected 20 hex bytes like aa:bb:..."));
                }
                self.use_app(BufferId::TlsCertFingerprint)?;
                self.check(Check::TlsFingerprint(v));
            }
            "ssl_version" => {
                let mut bits = 0u8;
                for v in needs_value(name, value)?.split(',') {
                    bits |= match v.trim().trim_start_matches('!') {
                        "sslv2" => 1,
                        "sslv3" => 2,
                        "tls1.0" => 4,
                        "tls1.1" => 8,
                        "tls1.2" => 16,
                        "tls1.3" => 32,
                        other => return Err(value_err(name, format!("unknown version '{other}'"))),
                    };
                }
                self.check(Check::SslVersion(bits));
            }
            "ssl_state" => {
                let v = needs_value(name, value)?;
                let mut bits = 0u8;
                let mut neg = false;
                for s in v.split('|') {
                    let s = s.trim();
                    let s = if let Some(r) = s.strip_prefix('!') {
                        neg = true;
                        r
                    } else {
                        s
                    };
                    bits |= match s {
                        "client_hello" => 1,
                        "server_hello" => 2,
                        "client_keyx" => 4,
                        "server_keyx" => 8,
                        "unknown" => 16,
                        other => return Err(value_err(name, format!("unknown state '{other}'"))),
                    };
                }
                self.check(Check::SslState(bits, neg));
            }
            k if IGNORED_KEYWORDS.contains(&k) => {}
            other => return Err(RuleError::Unsupported(other.to_owned())),
        }
        Ok(())
    }

    fn check(&mut self, c: Check) {
        self.rule.checks.push(c);
    }
}

/// The buffer a legacy pcre flag selects.
fn pcre_legacy_buffer(flag: char) -> BufferId {
    match flag {
        'U' => BufferId::HttpUri,
        'I' => BufferId::HttpUriRaw,
        'P' => BufferId::HttpRequestBody,
        'Q' => BufferId::HttpResponseBody,
        'H' => BufferId::HttpHeader,
        'D' => BufferId::HttpHeaderRaw,
        'M' => BufferId::HttpMethod,
        'C' | 'K' => BufferId::HttpCookie,
        'S' => BufferId::HttpStatCode,
        'Y' => BufferId::HttpStatMsg,
        'V' => BufferId::HttpUserAgent,
        'W' => BufferId::HttpHost,
        _ => BufferId::HttpHostRaw, // 'Z'
    }
}
