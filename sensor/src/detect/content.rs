//! Inspection of one buffer against one match list: content, pcre, byte_test, byte_jump,
//! byte_extract, isdataat, bsize, in rule order, with Suricata's relative semantics.
//!
//! Each step starts where the previous match ended (the cursor) when it is relative. When
//! a later relative step fails, the engine retries the earlier content or pcre at its next
//! occurrence (backtracking), as Suricata's content inspection does; the number of steps
//! tried is capped so a hostile buffer cannot make one rule cost unbounded time.
//!
//! Window arithmetic (matching Suricata): `offset`/`depth` give the absolute window
//! `[offset, offset + depth)`; `distance`/`within` give `[cursor + distance,
//! cursor + distance + within)`; `startswith` pins the match to the window start,
//! `endswith` to the buffer end.

use memchr::memmem;

use super::rule::ast::{ByteBase, CmpOp, Num, NumCmp};

/// Most steps one list inspection may take before giving up (Suricata's
/// `inspection-recursion-limit` default is 3000).
const STEP_LIMIT: u32 = 3000;

/// A compiled content.
#[derive(Debug)]
pub struct CContent {
    /// The pattern (original case).
    pub pattern: Vec<u8>,
    /// Lower-cased pattern, for nocase.
    lower: Vec<u8>,
    /// Case-sensitive searcher.
    finder: memmem::Finder<'static>,
    /// `nocase`.
    pub nocase: bool,
    /// `!`.
    pub negated: bool,
    /// `offset`.
    pub offset: Option<Num>,
    /// `depth`.
    pub depth: Option<Num>,
    /// `distance`.
    pub distance: Option<Num>,
    /// `within`.
    pub within: Option<Num>,
    /// `startswith`.
    pub startswith: bool,
    /// `endswith`.
    pub endswith: bool,
}

impl CContent {
    /// Builds a compiled content.
    #[must_use]
    pub fn new(c: &super::rule::Content) -> Self {
        Self {
            lower: c.pattern.to_ascii_lowercase(),
            finder: memmem::Finder::new(&c.pattern).into_owned(),
            pattern: c.pattern.clone(),
            nocase: c.nocase,
            negated: c.negated,
            offset: c.offset.clone(),
            depth: c.depth.clone(),
            distance: c.distance.clone(),
            within: c.within.clone(),
            startswith: c.startswith,
            endswith: c.endswith,
        }
    }

    fn is_relative(&self) -> bool {
        self.distance.is_some() || self.within.is_some()
    }

    /// First occurrence at or after `from` within `hay`.
    fn find(&self, hay: &[u8], from: usize) -> Option<usize> {
        let h = hay.get(from..)?;
        if self.nocase {
            find_nocase(h, &self.lower).map(|p| p + from)
        } else {
            self.finder.find(h).map(|p| p + from)
        }
    }
}

/// ASCII case-insensitive search of `needle` (already lower-case) in `hay`.
pub fn find_nocase(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let last_start = hay.len().checked_sub(needle.len())?;
    let mut pos = 0;
    while pos <= last_start {
        let window = hay.get(pos..=last_start)?;
        let i = memchr::memchr2(first, first.to_ascii_uppercase(), window)?;
        let at = pos + i;
        let tail = hay.get(at + 1..at + needle.len())?;
        if tail.eq_ignore_ascii_case(rest) {
            return Some(at);
        }
        pos = at + 1;
    }
    None
}

/// A compiled pcre.
#[derive(Debug)]
pub struct CPcre {
    /// The regex.
    pub re: pcre2::bytes::Regex,
    /// `R`.
    pub relative: bool,
    /// `!`.
    pub negated: bool,
}

/// A compiled inspection step.
#[derive(Debug)]
pub enum Step {
    /// content (boxed: much larger than the other steps).
    Content(Box<CContent>),
    /// pcre.
    Pcre(CPcre),
    /// byte_test.
    ByteTest(super::rule::ByteTest),
    /// byte_jump.
    ByteJump(super::rule::ByteJump),
    /// byte_extract.
    ByteExtract(super::rule::ByteExtract),
    /// isdataat.
    IsDataAt(super::rule::IsDataAt),
    /// bsize.
    Bsize(NumCmp),
}

impl Step {
    /// Whether this step's position depends on the previous match.
    fn is_relative(&self) -> bool {
        match self {
            Self::Content(c) => c.is_relative(),
            Self::Pcre(p) => p.relative,
            Self::ByteTest(t) => t.relative,
            Self::ByteJump(j) => j.relative,
            Self::ByteExtract(e) => e.relative,
            Self::IsDataAt(d) => d.relative,
            Self::Bsize(_) => false,
        }
    }
}

/// Per-inspection state: byte_extract variables and the step budget.
#[derive(Debug)]
pub struct InspectCtx<'v> {
    /// Variable values by slot.
    pub vars: &'v mut [u64],
    steps: u32,
}

impl<'v> InspectCtx<'v> {
    /// A fresh context over `vars`.
    pub fn new(vars: &'v mut [u64]) -> Self {
        Self { vars, steps: 0 }
    }

    /// A byte count from a literal or variable (a variable may hold 0: the read then
    /// yields 0, as in Suricata); `None` when out of range.
    fn nbytes(&self, n: &Num, base: ByteBase) -> Option<u8> {
        let max = match base {
            ByteBase::String(_) => 10,
            ByteBase::Binary { .. } => 8,
        };
        u8::try_from(self.num(n)).ok().filter(|&v| v <= max)
    }

    fn num(&self, n: &Num) -> i64 {
        match n {
            Num::Lit(v) => *v,
            Num::Var(i) => self
                .vars
                .get(usize::from(*i))
                .map_or(0, |&v| i64::try_from(v).unwrap_or(i64::MAX)),
        }
    }
}

/// Runs `steps` over `buf`. Returns whether the whole list matches.
pub fn inspect(steps: &[Step], buf: &[u8], ctx: &mut InspectCtx<'_>) -> bool {
    run(steps, 0, buf, 0, ctx)
}

fn clamp(v: i64, len: usize) -> usize {
    usize::try_from(v.max(0)).unwrap_or(usize::MAX).min(len)
}

fn run(steps: &[Step], i: usize, buf: &[u8], cursor: usize, ctx: &mut InspectCtx<'_>) -> bool {
    let Some(step) = steps.get(i) else {
        return true;
    };
    ctx.steps += 1;
    if ctx.steps > STEP_LIMIT {
        return false;
    }
    // Only retry earlier matches when the next step is relative to them.
    let next_relative = steps.get(i + 1).is_some_and(Step::is_relative);
    match step {
        Step::Content(c) => run_content(c, steps, i, buf, cursor, ctx, next_relative),
        Step::Pcre(p) => run_pcre(p, steps, i, buf, cursor, ctx, next_relative),
        Step::ByteTest(t) => {
            let base = if t.relative { cursor } else { 0 };
            let pos = i64::try_from(base).unwrap_or(i64::MAX) + ctx.num(&t.offset);
            let Some(n) = ctx.nbytes(&t.nbytes, t.base) else {
                return false;
            };
            let Some(v) = read_number(buf, pos, n, t.base) else {
                return false;
            };
            let v = apply_bitmask(v, t.bitmask);
            let want = u64::try_from(ctx.num(&t.value)).unwrap_or(0);
            let ok = match t.op {
                CmpOp::Lt => v < want,
                CmpOp::Gt => v > want,
                CmpOp::Eq => v == want,
                CmpOp::Le => v <= want,
                CmpOp::Ge => v >= want,
                CmpOp::And => v & want != 0,
                CmpOp::Xor => v ^ want != 0,
            };
            ok != t.negated && run(steps, i + 1, buf, cursor, ctx)
        }
        Step::ByteJump(j) => {
            let base = if j.relative { cursor } else { 0 };
            let pos = i64::try_from(base).unwrap_or(i64::MAX) + ctx.num(&j.offset);
            let Some(n) = ctx.nbytes(&j.nbytes, j.base) else {
                return false;
            };
            let Some(v) = read_number(buf, pos, n, j.base) else {
                return false;
            };
            let v = apply_bitmask(v, j.bitmask).saturating_mul(u64::from(j.multiplier));
            let mut jump = i64::try_from(v).unwrap_or(i64::MAX);
            if j.align {
                jump = (jump + 3) & !3;
            }
            let origin = if j.from_beginning {
                0
            } else if j.from_end {
                i64::try_from(buf.len()).unwrap_or(i64::MAX)
            } else {
                pos + i64::from(n)
            };
            let target = origin.saturating_add(jump).saturating_add(j.post_offset);
            // Suricata fails the jump when it lands outside the buffer.
            if target < 0 || target > i64::try_from(buf.len()).unwrap_or(i64::MAX) {
                return false;
            }
            run(steps, i + 1, buf, clamp(target, buf.len()), ctx)
        }
        Step::ByteExtract(e) => {
            let base = if e.relative { cursor } else { 0 };
            let pos = i64::try_from(base).unwrap_or(i64::MAX) + e.offset;
            let Some(v) = read_number(buf, pos, e.nbytes, e.base) else {
                return false;
            };
            let mut v = apply_bitmask(v, e.bitmask).saturating_mul(u64::from(e.multiplier));
            if e.align > 1 {
                let a = u64::from(e.align);
                v = v.div_ceil(a) * a;
            }
            if let Some(slot) = ctx.vars.get_mut(usize::from(e.var)) {
                *slot = v;
            }
            let end = clamp(pos + i64::from(e.nbytes), buf.len());
            run(steps, i + 1, buf, end, ctx)
        }
        Step::IsDataAt(d) => {
            // Suricata: absolute `isdataat:N` needs a byte at offset N (N < len); relative
            // needs N bytes after the cursor (cursor + N <= len).
            let n = ctx.num(&d.offset);
            let len = i64::try_from(buf.len()).unwrap_or(i64::MAX);
            let has = if d.relative {
                i64::try_from(cursor).unwrap_or(i64::MAX).saturating_add(n) <= len
            } else {
                n < len
            };
            has != d.negated && run(steps, i + 1, buf, cursor, ctx)
        }
        Step::Bsize(cmp) => cmp.matches(buf.len() as u64) && run(steps, i + 1, buf, cursor, ctx),
    }
}

/// The search window `[start, end)` of a content at `cursor`.
fn window(c: &CContent, len: usize, cursor: usize, ctx: &InspectCtx<'_>) -> (usize, usize) {
    if c.is_relative() {
        let cur = i64::try_from(cursor).unwrap_or(i64::MAX);
        let dist = c.distance.as_ref().map_or(0, |d| ctx.num(d));
        let end = match &c.within {
            Some(w) => clamp(cur.saturating_add(dist).saturating_add(ctx.num(w)), len),
            None => len,
        };
        (clamp(cur.saturating_add(dist), len), end)
    } else {
        let off = c.offset.as_ref().map_or(0, |o| ctx.num(o));
        let end = match &c.depth {
            Some(d) => clamp(off.saturating_add(ctx.num(d)), len),
            None => len,
        };
        (clamp(off, len), end)
    }
}

/// The first occurrence of `c` at or after `from` that satisfies the window and the
/// startswith/endswith anchors.
fn first_fit(c: &CContent, buf: &[u8], start: usize, end: usize, from: usize) -> Option<usize> {
    let plen = c.pattern.len();
    let len = buf.len();
    if c.endswith {
        // Only one position can end the buffer.
        let p = len.checked_sub(plen)?;
        let ok = p >= from.max(start)
            && p + plen <= end
            && (!c.startswith || p == start)
            && c.find(buf, p) == Some(p);
        return ok.then_some(p);
    }
    if c.startswith {
        let ok = from <= start
            && start + plen <= end
            && c.find(buf.get(..start + plen)?, start) == Some(start);
        return ok.then_some(start);
    }
    let hay = buf.get(..end)?;
    c.find(hay, from.max(start))
}

#[allow(
    clippy::too_many_arguments,
    reason = "the recursion carries the inspection state"
)]
fn run_content(
    c: &CContent,
    steps: &[Step],
    i: usize,
    buf: &[u8],
    cursor: usize,
    ctx: &mut InspectCtx<'_>,
    next_relative: bool,
) -> bool {
    let (start, end) = window(c, buf.len(), cursor, ctx);
    if c.negated {
        return first_fit(c, buf, start, end, start).is_none()
            && run(steps, i + 1, buf, cursor, ctx);
    }
    let mut from = start;
    while let Some(pos) = first_fit(c, buf, start, end, from) {
        if run(steps, i + 1, buf, pos + c.pattern.len(), ctx) {
            return true;
        }
        if !next_relative || ctx.steps > STEP_LIMIT {
            return false;
        }
        from = pos + 1;
    }
    false
}

#[allow(
    clippy::too_many_arguments,
    reason = "the recursion carries the inspection state"
)]
fn run_pcre(
    p: &CPcre,
    steps: &[Step],
    i: usize,
    buf: &[u8],
    cursor: usize,
    ctx: &mut InspectCtx<'_>,
    next_relative: bool,
) -> bool {
    let base = if p.relative { cursor } else { 0 };
    let Some(subject) = buf.get(base..) else {
        return p.negated && run(steps, i + 1, buf, cursor, ctx);
    };
    if p.negated {
        let found = matches!(p.re.is_match(subject), Ok(true));
        return !found && run(steps, i + 1, buf, cursor, ctx);
    }
    let mut from = 0;
    loop {
        // Matching errors (match limit hit on hostile input) count as no match.
        let Ok(Some(m)) = p.re.find_at(subject, from) else {
            return false;
        };
        let end = base + m.end();
        if run(steps, i + 1, buf, end, ctx) {
            return true;
        }
        if !next_relative || ctx.steps > STEP_LIMIT || m.start() >= subject.len() {
            return false;
        }
        from = m.start() + 1;
    }
}

fn apply_bitmask(v: u64, mask: Option<u64>) -> u64 {
    match mask {
        Some(m) => (v & m) >> m.trailing_zeros(),
        None => v,
    }
}

/// Reads `n` bytes at `pos` as a number (binary big/little endian, or ASCII digits).
fn read_number(buf: &[u8], pos: i64, n: u8, base: ByteBase) -> Option<u64> {
    let pos = usize::try_from(pos).ok()?;
    let bytes = buf.get(pos..pos.checked_add(usize::from(n))?)?;
    match base {
        ByteBase::Binary { little } => {
            let mut v: u64 = 0;
            if little {
                for &b in bytes.iter().rev() {
                    v = (v << 8) | u64::from(b);
                }
            } else {
                for &b in bytes {
                    v = (v << 8) | u64::from(b);
                }
            }
            Some(v)
        }
        ByteBase::String(radix) => {
            // Like strtoull: leading digits, stopping at the first non-digit; none is a failure.
            let digits: Vec<u8> = bytes
                .iter()
                .copied()
                .take_while(|b| (*b as char).is_digit(radix))
                .collect();
            if digits.is_empty() {
                return None;
            }
            u64::from_str_radix(std::str::from_utf8(&digits).ok()?, radix).ok()
        }
    }
}

#[cfg(test)]
mod tests;
