//! Value parsers for individual rule keywords. Each takes the text after `keyword:` and
//! returns a typed value or a [`RuleError`] naming the keyword.

use super::ast::{
    ByteBase, ByteExtract, ByteJump, ByteTest, CmpOp, FlagsMatch, FlagsModifier, FlowOpts, Flowbit,
    IsDataAt, Num, NumCmp, Pcre, StreamSide, Threshold, ThresholdKind, Track, UniqueOn,
};
use super::{RuleError, value_err};
use crate::decode::tcpflag;

/// Strips one pair of surrounding double quotes, if present.
pub(super) fn unquote(v: &str) -> &str {
    let v = v.trim();
    v.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(v)
}

/// Removes backslash escapes (`\"`, `\\`, `\;`, ...) from a quoted text value.
pub(super) fn unescape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Decodes a `content` string: `"abc|0d 0a|def"`, with `\"`, `\\`, `\;`, `\:` escapes.
/// Returns the bytes and whether it was negated (`!"..."`).
pub(super) fn content_value(keyword: &str, v: &str) -> Result<(Vec<u8>, bool), RuleError> {
    let v = v.trim();
    let (negated, v) = match v.strip_prefix('!') {
        Some(rest) => (true, rest.trim()),
        None => (false, v),
    };
    let inner = v
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .ok_or_else(|| value_err(keyword, "must be a quoted string"))?;
    let bytes = inner.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    let mut in_hex = false;
    let mut hex_nibble: Option<u8> = None;
    while let Some(&c) = bytes.get(i) {
        i += 1;
        if in_hex {
            match c {
                b'|' => {
                    if hex_nibble.is_some() {
                        return Err(value_err(keyword, "odd number of hex digits"));
                    }
                    in_hex = false;
                }
                b' ' | b'\t' => {
                    if hex_nibble.is_some() {
                        return Err(value_err(keyword, "space inside a hex byte"));
                    }
                }
                _ => {
                    let d = (c as char).to_digit(16).ok_or_else(|| {
                        value_err(keyword, format!("bad hex digit '{}'", c as char))
                    })?;
                    // to_digit(16) is < 16, fits in u8.
                    let d = u8::try_from(d).unwrap_or(0);
                    match hex_nibble.take() {
                        Some(hi) => out.push(hi << 4 | d),
                        None => hex_nibble = Some(d),
                    }
                }
            }
            continue;
        }
        match c {
            b'|' => in_hex = true,
            b'\\' => {
                let n = bytes
                    .get(i)
                    .ok_or_else(|| value_err(keyword, "dangling backslash"))?;
                i += 1;
                out.push(*n);
            }
            b'"' => return Err(value_err(keyword, "unescaped '\"' inside the string")),
            b';' => return Err(value_err(keyword, "unescaped ';' inside the string")),
            _ => out.push(c),
        }
    }
    if in_hex {
        return Err(value_err(keyword, "unterminated |hex| section"));
    }
    if out.is_empty() {
        return Err(value_err(keyword, "empty pattern"));
    }
    Ok((out, negated))
}

/// Parses an integer keyword value (`depth:10`).
pub(super) fn int<T: std::str::FromStr>(keyword: &str, v: &str) -> Result<T, RuleError> {
    v.trim()
        .parse::<T>()
        .map_err(|_| value_err(keyword, format!("'{}' is not a valid number", v.trim())))
}

/// Parses an integer that may be written in hex (`0x1f`).
pub(super) fn int_any_base(keyword: &str, v: &str) -> Result<u64, RuleError> {
    let t = v.trim();
    let parsed = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u64::from_str_radix(h, 16)
    } else {
        t.parse::<u64>()
    };
    parsed.map_err(|_| value_err(keyword, format!("'{t}' is not a valid number")))
}

/// A number or a `byte_extract` variable name.
pub(super) fn num_or_var(keyword: &str, v: &str, vars: &[String]) -> Result<Num, RuleError> {
    let t = v.trim();
    if let Ok(n) = t.parse::<i64>() {
        return Ok(Num::Lit(n));
    }
    vars.iter()
        .position(|name| name == t)
        .and_then(|i| u8::try_from(i).ok())
        .map(Num::Var)
        .ok_or_else(|| {
            value_err(
                keyword,
                format!("'{t}' is neither a number nor a byte_extract variable"),
            )
        })
}

/// Numeric comparison syntax shared by dsize, ttl, itype, icode, urilen, bsize, ...:
/// `N`, `<N`, `>N`, `<=N`, `>=N`, `!N`, `A<>B`, `A-B`.
pub(super) fn num_cmp(keyword: &str, v: &str) -> Result<NumCmp, RuleError> {
    let t: String = v.chars().filter(|c| !c.is_whitespace()).collect();
    let n = |s: &str| int_any_base(keyword, s);
    if let Some((a, b)) = t.split_once("<>") {
        let (neg, a) = match a.strip_prefix('!') {
            Some(a) => (true, a),
            None => (false, a),
        };
        let (a, b) = (n(a)?, n(b)?);
        if a >= b {
            return Err(value_err(keyword, "range start must be below its end"));
        }
        return Ok(if neg {
            NumCmp::NotBetween(a, b)
        } else {
            NumCmp::Between(a, b)
        });
    }
    if let Some(r) = t.strip_prefix("<=") {
        return Ok(NumCmp::Le(n(r)?));
    }
    if let Some(r) = t.strip_prefix(">=") {
        return Ok(NumCmp::Ge(n(r)?));
    }
    if let Some(r) = t.strip_prefix('<') {
        return Ok(NumCmp::Lt(n(r)?));
    }
    if let Some(r) = t.strip_prefix('>') {
        return Ok(NumCmp::Gt(n(r)?));
    }
    if let Some(r) = t.strip_prefix('!') {
        return Ok(NumCmp::Ne(n(r)?));
    }
    if let Some(r) = t.strip_prefix('=') {
        return Ok(NumCmp::Eq(n(r)?));
    }
    if let Some((a, b)) = t.split_once('-').filter(|(a, _)| !a.is_empty()) {
        let (a, b) = (n(a)?, n(b)?);
        if a > b {
            return Err(value_err(keyword, "range start must not exceed its end"));
        }
        // `A-B` is inclusive.
        return Ok(NumCmp::Between(a.saturating_sub(1), b.saturating_add(1)));
    }
    Ok(NumCmp::Eq(n(&t)?))
}

/// `pcre:"/re/flags"` (optionally `!"..."`). Returns the pcre and the legacy buffer flags
/// (U, H, P, ...) found, which move the pcre to that buffer.
pub(super) fn pcre_value(v: &str) -> Result<(Pcre, Vec<char>), RuleError> {
    let v = v.trim();
    let (negated, v) = match v.strip_prefix('!') {
        Some(rest) => (true, rest.trim()),
        None => (false, v),
    };
    let inner = v
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .ok_or_else(|| value_err("pcre", "must be a quoted string"))?;
    // Suricata allows `m{...}`-less form only with slashes: /.../flags.
    let body = inner
        .strip_prefix('/')
        .ok_or_else(|| value_err("pcre", "must start with '/'"))?;
    let end = body
        .rfind('/')
        .ok_or_else(|| value_err("pcre", "missing closing '/'"))?;
    let (pattern, flags) = body.split_at(end);
    let flags = flags.get(1..).unwrap_or_default();
    // Quotes and semicolons inside the rule text are escaped for the rule parser.
    let pattern = pattern.replace("\\\"", "\"").replace("\\;", ";");
    let mut p = Pcre {
        pattern,
        caseless: false,
        dotall: false,
        multiline: false,
        extended: false,
        anchored: false,
        dollar_endonly: false,
        ungreedy: false,
        relative: false,
        negated,
        captures: false,
    };
    let mut legacy = Vec::new();
    for f in flags.chars() {
        match f {
            'i' => p.caseless = true,
            's' => p.dotall = true,
            'm' => p.multiline = true,
            'x' => p.extended = true,
            'A' => p.anchored = true,
            'E' => p.dollar_endonly = true,
            'G' => p.ungreedy = true,
            'R' => p.relative = true,
            // Buffer selectors (legacy): uri, raw uri, request body, response body, header,
            // raw header, method, cookie, raw cookie, stat code, stat msg, user agent,
            // host, raw host.
            'U' | 'I' | 'P' | 'Q' | 'H' | 'D' | 'M' | 'C' | 'K' | 'S' | 'Y' | 'V' | 'W' | 'Z' => {
                legacy.push(f);
            }
            // `B` (rawbytes) and `O` (override match limits) have no effect here.
            'B' | 'O' => {}
            other => {
                return Err(value_err("pcre", format!("unknown modifier '{other}'")));
            }
        }
    }
    // Captures named `pkt_*`/`flow_*`/`alert_*` store variables (Suricata's pcre
    // capture); plain named groups only match and are fine.
    if ["(?P<", "(?<"].iter().any(|open| {
        ["pkt_", "flow_", "alert_"]
            .iter()
            .any(|prefix| p.pattern.contains(&format!("{open}{prefix}")))
    }) {
        return Err(RuleError::Unsupported("pcre capture into variables".into()));
    }
    Ok((p, legacy))
}

/// Reads the shared options of byte_test/byte_jump/byte_extract after the positional ones.
struct ByteOpts {
    relative: bool,
    little: bool,
    string: Option<u32>,
    align: bool,
    from_beginning: bool,
    from_end: bool,
    multiplier: u32,
    post_offset: i64,
    bitmask: Option<u64>,
    dce: bool,
}

fn byte_opts(keyword: &str, opts: &[&str]) -> Result<ByteOpts, RuleError> {
    let mut o = ByteOpts {
        relative: false,
        little: false,
        string: None,
        align: false,
        from_beginning: false,
        from_end: false,
        multiplier: 1,
        post_offset: 0,
        bitmask: None,
        dce: false,
    };
    let mut string = false;
    let mut base = 10;
    for raw in opts {
        let t = raw.trim();
        let (name, arg) = match t.split_once(char::is_whitespace) {
            Some((n, a)) => (n, Some(a.trim())),
            None => (t, None),
        };
        match name {
            "relative" => o.relative = true,
            "little" => o.little = true,
            "big" => o.little = false,
            "string" => string = true,
            "dec" => base = 10,
            "hex" => base = 16,
            "oct" => base = 8,
            "align" => o.align = true,
            "from_beginning" => o.from_beginning = true,
            "from_end" => o.from_end = true,
            "dce" => o.dce = true,
            "multiplier" => {
                o.multiplier = int(
                    keyword,
                    arg.ok_or_else(|| value_err(keyword, "multiplier needs a value"))?,
                )?;
            }
            "post_offset" => {
                o.post_offset = int(
                    keyword,
                    arg.ok_or_else(|| value_err(keyword, "post_offset needs a value"))?,
                )?;
            }
            "bitmask" => {
                let m = int_any_base(
                    keyword,
                    arg.ok_or_else(|| value_err(keyword, "bitmask needs a value"))?,
                )?;
                if m == 0 {
                    return Err(value_err(keyword, "bitmask must not be 0"));
                }
                o.bitmask = Some(m);
            }
            "" => {}
            other => return Err(value_err(keyword, format!("unknown option '{other}'"))),
        }
    }
    if string {
        o.string = Some(base);
    }
    if o.dce {
        return Err(RuleError::Unsupported(format!("{keyword} dce")));
    }
    Ok(o)
}

fn nbytes(keyword: &str, v: &str, string: bool) -> Result<u8, RuleError> {
    let n: u8 = int(keyword, v)?;
    let max = if string { 10 } else { 8 };
    // Suricata accepts 0 with `string` (the conversion then always fails).
    if (n == 0 && !string) || n > max {
        return Err(value_err(
            keyword,
            format!("bytes to convert must be 1..={max}"),
        ));
    }
    Ok(n)
}

/// `nbytes` of byte_test/byte_jump: a number or a byte_extract variable.
fn nbytes_or_var(keyword: &str, v: &str, string: bool, vars: &[String]) -> Result<Num, RuleError> {
    if v.trim().parse::<i64>().is_ok() {
        return Ok(Num::Lit(i64::from(nbytes(keyword, v, string)?)));
    }
    num_or_var(keyword, v, vars)
}

fn base_of(o: &ByteOpts) -> ByteBase {
    match o.string {
        Some(b) => ByteBase::String(b),
        None => ByteBase::Binary { little: o.little },
    }
}

/// `byte_test:nbytes,[!]op,value,offset[,opts]`.
pub(super) fn byte_test(v: &str, vars: &[String]) -> Result<ByteTest, RuleError> {
    const K: &str = "byte_test";
    let parts: Vec<&str> = v.split(',').map(str::trim).collect();
    let [n, op, value, offset, rest @ ..] = parts.as_slice() else {
        return Err(value_err(
            K,
            "expected nbytes,operator,value,offset[,options]",
        ));
    };
    let o = byte_opts(K, rest)?;
    let (negated, op) = match op.strip_prefix('!') {
        Some(o) => (true, o.trim()),
        None => (false, *op),
    };
    let op = match op {
        "<" => CmpOp::Lt,
        ">" => CmpOp::Gt,
        "=" => CmpOp::Eq,
        "<=" => CmpOp::Le,
        ">=" => CmpOp::Ge,
        "&" => CmpOp::And,
        "^" => CmpOp::Xor,
        other => return Err(value_err(K, format!("unknown operator '{other}'"))),
    };
    let value = match int_any_base(K, value) {
        Ok(n) => Num::Lit(i64::try_from(n).map_err(|_| value_err(K, "value too large"))?),
        Err(_) => num_or_var(K, value, vars)?,
    };
    Ok(ByteTest {
        nbytes: nbytes_or_var(K, n, o.string.is_some(), vars)?,
        op,
        negated,
        value,
        offset: num_or_var(K, offset, vars)?,
        relative: o.relative,
        base: base_of(&o),
        bitmask: o.bitmask,
    })
}

/// `byte_jump:nbytes,offset[,opts]`.
pub(super) fn byte_jump(v: &str, vars: &[String]) -> Result<ByteJump, RuleError> {
    const K: &str = "byte_jump";
    let parts: Vec<&str> = v.split(',').map(str::trim).collect();
    let [n, offset, rest @ ..] = parts.as_slice() else {
        return Err(value_err(K, "expected nbytes,offset[,options]"));
    };
    let o = byte_opts(K, rest)?;
    Ok(ByteJump {
        nbytes: nbytes_or_var(K, n, o.string.is_some(), vars)?,
        offset: num_or_var(K, offset, vars)?,
        relative: o.relative,
        base: base_of(&o),
        multiplier: o.multiplier,
        align: o.align,
        from_beginning: o.from_beginning,
        from_end: o.from_end,
        post_offset: o.post_offset,
        bitmask: o.bitmask,
    })
}

/// `byte_extract:nbytes,offset,name[,opts]`. Returns the extract and the variable name.
pub(super) fn byte_extract(v: &str, var_slot: u8) -> Result<(ByteExtract, String), RuleError> {
    const K: &str = "byte_extract";
    let parts: Vec<&str> = v.split(',').map(str::trim).collect();
    let [n, offset, name, rest @ ..] = parts.as_slice() else {
        return Err(value_err(K, "expected nbytes,offset,name[,options]"));
    };
    // `align N` takes a number here, unlike byte_jump's flag.
    let mut align = 0u8;
    let mut others = Vec::new();
    for r in rest {
        if let Some(a) = r.strip_prefix("align") {
            align = int(K, a)?;
            if align != 2 && align != 4 {
                return Err(value_err(K, "align must be 2 or 4"));
            }
        } else {
            others.push(*r);
        }
    }
    let o = byte_opts(K, &others)?;
    if name.is_empty() || name.parse::<i64>().is_ok() {
        return Err(value_err(K, "variable name must not be a number"));
    }
    Ok((
        ByteExtract {
            nbytes: nbytes(K, n, o.string.is_some())?,
            offset: int(K, offset)?,
            var: var_slot,
            relative: o.relative,
            base: base_of(&o),
            multiplier: o.multiplier,
            align,
            bitmask: o.bitmask,
        },
        (*name).to_owned(),
    ))
}

/// `isdataat:[!]N[,relative][,rawbytes]`.
pub(super) fn isdataat(v: &str, vars: &[String]) -> Result<IsDataAt, RuleError> {
    const K: &str = "isdataat";
    let mut parts = v.split(',').map(str::trim);
    let first = parts.next().unwrap_or_default();
    let (negated, first) = match first.strip_prefix('!') {
        Some(f) => (true, f.trim()),
        None => (false, first),
    };
    let mut relative = false;
    for p in parts {
        match p {
            "relative" => relative = true,
            "rawbytes" => {}
            other => return Err(value_err(K, format!("unknown option '{other}'"))),
        }
    }
    Ok(IsDataAt {
        offset: num_or_var(K, first, vars)?,
        relative,
        negated,
    })
}

/// `flow:` options.
pub(super) fn flow(v: &str) -> Result<FlowOpts, RuleError> {
    let mut f = FlowOpts::default();
    for opt in v.split(',').map(str::trim) {
        match opt {
            "established" => f.established = true,
            "not_established" => f.not_established = true,
            "stateless" => f.stateless = true,
            "to_server" | "from_client" => f.to_server = Some(true),
            "to_client" | "from_server" => f.to_server = Some(false),
            "only_stream" => f.only_stream = true,
            "no_stream" => f.no_stream = true,
            "only_frag" => f.only_frag = true,
            "no_frag" => f.no_frag = true,
            other => return Err(value_err("flow", format!("unknown option '{other}'"))),
        }
    }
    if f.established && f.not_established {
        return Err(value_err(
            "flow",
            "established and not_established conflict",
        ));
    }
    if f.only_stream && f.no_stream {
        return Err(value_err("flow", "only_stream and no_stream conflict"));
    }
    Ok(f)
}

/// `flowbits:cmd[,name[|name...]]`. `None` for `noalert`.
pub(super) fn flowbits(v: &str) -> Result<Option<Flowbit>, RuleError> {
    const K: &str = "flowbits";
    let (cmd, names) = match v.split_once(',') {
        Some((c, n)) => (c.trim(), Some(n.trim())),
        None => (v.trim(), None),
    };
    if cmd == "noalert" {
        return Ok(None);
    }
    let names = names.ok_or_else(|| value_err(K, format!("'{cmd}' needs a name")))?;
    let (sep, list) = if names.contains('|') {
        ('|', true)
    } else {
        ('&', names.contains('&'))
    };
    let names: Vec<String> = names.split(sep).map(|s| s.trim().to_owned()).collect();
    if names
        .iter()
        .any(|n| n.is_empty() || n.contains(char::is_whitespace))
    {
        return Err(value_err(K, "invalid flowbit name"));
    }
    if sep == '&' && list {
        return Err(RuleError::Unsupported("flowbits with '&'".into()));
    }
    Ok(Some(match cmd {
        "set" => Flowbit::Set(names),
        "unset" => Flowbit::Unset(names),
        "toggle" => Flowbit::Toggle(names),
        "isset" => Flowbit::IsSet(names),
        "isnotset" => Flowbit::IsNotSet(names),
        other => return Err(value_err(K, format!("unknown command '{other}'"))),
    }))
}

/// `threshold:` (with `kind`) or `detection_filter:` (without).
pub(super) fn threshold(keyword: &str, v: &str, with_type: bool) -> Result<Threshold, RuleError> {
    let mut kind = None;
    let mut track = None;
    let mut count = None;
    let mut seconds = None;
    let mut multiplier = None;
    let mut unique_on = None;
    for part in v.split(',') {
        let t = part.trim();
        let (k, val) = t
            .split_once(char::is_whitespace)
            .map(|(k, v)| (k.trim(), v.trim()))
            .ok_or_else(|| value_err(keyword, format!("'{t}' is not 'name value'")))?;
        match k {
            "type" if with_type => {
                kind = Some(match val {
                    "limit" => ThresholdKind::Limit,
                    "threshold" => ThresholdKind::Threshold,
                    "both" => ThresholdKind::Both,
                    "backoff" => ThresholdKind::Backoff,
                    other => return Err(value_err(keyword, format!("unknown type '{other}'"))),
                });
            }
            "track" => {
                track = Some(match val {
                    "by_src" => Track::BySrc,
                    "by_dst" => Track::ByDst,
                    "by_rule" => Track::ByRule,
                    "by_both" => Track::ByBoth,
                    "by_flow" => Track::ByFlow,
                    other => return Err(value_err(keyword, format!("unknown track '{other}'"))),
                });
            }
            "count" => count = Some(int::<u32>(keyword, val)?),
            "seconds" => seconds = Some(int::<u32>(keyword, val)?),
            "multiplier" => multiplier = Some(int::<u32>(keyword, val)?),
            "unique_on" => {
                unique_on = Some(match val {
                    "src_port" => UniqueOn::SrcPort,
                    "dst_port" => UniqueOn::DstPort,
                    other => {
                        return Err(value_err(keyword, format!("unknown unique_on '{other}'")));
                    }
                });
            }
            other => return Err(value_err(keyword, format!("unknown field '{other}'"))),
        }
    }
    if with_type && kind.is_none() {
        return Err(value_err(keyword, "missing 'type'"));
    }
    let track = track.ok_or_else(|| value_err(keyword, "missing 'track'"))?;
    let count = count.ok_or_else(|| value_err(keyword, "missing 'count'"))?;
    let seconds = if kind == Some(ThresholdKind::Backoff) {
        multiplier.ok_or_else(|| value_err(keyword, "backoff needs 'multiplier'"))?
    } else {
        seconds.ok_or_else(|| value_err(keyword, "missing 'seconds'"))?
    };
    if count == 0 && kind != Some(ThresholdKind::Limit) {
        return Err(value_err(keyword, "count must be at least 1"));
    }
    Ok(Threshold {
        kind,
        track,
        count,
        seconds,
        unique_on,
    })
}

/// `flags:[modifier]FLAGS[,MASK]`.
pub(super) fn flags(v: &str) -> Result<FlagsMatch, RuleError> {
    const K: &str = "flags";
    let (main, mask) = match v.split_once(',') {
        Some((m, k)) => (m.trim(), Some(k.trim())),
        None => (v.trim(), None),
    };
    let mut modifier = FlagsModifier::Exact;
    let mut flags = 0u8;
    let mut zero = false;
    for c in main.chars() {
        match c {
            '!' => modifier = FlagsModifier::Not,
            '*' => modifier = FlagsModifier::Any,
            '+' => modifier = FlagsModifier::Plus,
            '0' => zero = true,
            c => flags |= flag_bit(c).ok_or_else(|| value_err(K, format!("unknown flag '{c}'")))?,
        }
    }
    if zero && flags != 0 {
        return Err(value_err(K, "'0' (no flags) cannot be combined with flags"));
    }
    let mut m = 0u8;
    if let Some(mask) = mask {
        for c in mask.chars() {
            m |= flag_bit(c).ok_or_else(|| value_err(K, format!("unknown mask flag '{c}'")))?;
        }
    }
    Ok(FlagsMatch {
        flags,
        mask: m,
        modifier,
    })
}

fn flag_bit(c: char) -> Option<u8> {
    Some(match c.to_ascii_uppercase() {
        'F' => tcpflag::FIN,
        'S' => tcpflag::SYN,
        'R' => tcpflag::RST,
        'P' => tcpflag::PSH,
        'A' => tcpflag::ACK,
        'U' => tcpflag::URG,
        'C' | '2' => tcpflag::CWR,
        'E' | '1' => tcpflag::ECE,
        _ => return None,
    })
}

/// `fragbits:[modifier]MDR`.
pub(super) fn fragbits(v: &str) -> Result<(u8, FlagsModifier), RuleError> {
    let mut modifier = FlagsModifier::Exact;
    let mut bits = 0u8;
    for c in v.trim().chars() {
        match c {
            '!' => modifier = FlagsModifier::Not,
            '*' => modifier = FlagsModifier::Any,
            '+' => modifier = FlagsModifier::Plus,
            'M' | 'm' => bits |= 1,
            'D' | 'd' => bits |= 2,
            'R' | 'r' => bits |= 4,
            c => return Err(value_err("fragbits", format!("unknown bit '{c}'"))),
        }
    }
    Ok((bits, modifier))
}

/// `stream_size:side,op,value`.
pub(super) fn stream_size(v: &str) -> Result<(StreamSide, NumCmp), RuleError> {
    const K: &str = "stream_size";
    let parts: Vec<&str> = v.split(',').map(str::trim).collect();
    let [side, op, value] = parts.as_slice() else {
        return Err(value_err(K, "expected side,operator,value"));
    };
    let side = match *side {
        "server" => StreamSide::Server,
        "client" => StreamSide::Client,
        "both" => StreamSide::Both,
        "either" => StreamSide::Either,
        other => return Err(value_err(K, format!("unknown side '{other}'"))),
    };
    let n = int_any_base(K, value)?;
    let cmp = match *op {
        "<" => NumCmp::Lt(n),
        ">" => NumCmp::Gt(n),
        "=" | "==" => NumCmp::Eq(n),
        "!=" => NumCmp::Ne(n),
        "<=" => NumCmp::Le(n),
        ">=" => NumCmp::Ge(n),
        other => return Err(value_err(K, format!("unknown operator '{other}'"))),
    };
    Ok((side, cmp))
}

/// `metadata:key value, key value`.
pub(super) fn metadata(v: &str) -> Vec<(String, String)> {
    v.split(',')
        .filter_map(|kv| {
            let kv = kv.trim();
            if kv.is_empty() {
                return None;
            }
            Some(match kv.split_once(char::is_whitespace) {
                Some((k, val)) => (k.trim().to_owned(), val.trim().to_owned()),
                None => (kv.to_owned(), String::new()),
            })
        })
        .collect()
}
