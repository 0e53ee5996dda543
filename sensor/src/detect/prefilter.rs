//! Multi-pattern prefilter: one database per (signature group, buffer) over the rules'
//! fast patterns. A hit makes the rule a candidate; full evaluation confirms it.
//!
//! Input: `(pattern bytes, signature number)` pairs at build time, then haystacks (a packet
//! payload, a stream chunk, a header buffer). Output: candidate signature numbers, each
//! at most once per round, in a per-thread [`Candidates`].
//!
//! Invariants:
//! - Every database is case-insensitive (ASCII) for every pattern: a case-sensitive
//!   pattern may then yield a false candidate, never a missed one, and one database
//!   serves both. Identical patterns (after ASCII lowercasing) share one entry that lists
//!   all their rules. An empty pattern makes its rules candidates on every scan.
//! - Both backends report the same set of patterns for the same haystack: Hyperscan
//!   ([`Backend::Hyperscan`], cargo feature `hyperscan`, the default where the library
//!   exists) and aho-corasick ([`Backend::AhoCorasick`], always built, the portable
//!   fallback). Tests check this on random and binary patterns and on whole rulesets.
//! - A [`Mpm`] is immutable and `Send + Sync`: one engine serves every worker. The
//!   mutable per-scan state (candidate marks, Hyperscan scratch) lives in [`Candidates`],
//!   which each worker owns. A Hyperscan scratch is grown lazily for each database it
//!   meets, so one scratch per thread serves every database of every engine.
//! - A scan that cannot run (scratch allocation failed, haystack over 4 GiB) makes every
//!   rule of the database a candidate and is counted ([`Candidates::scan_failures`]):
//!   slower, never a miss.
//!
//! Caps: none of its own; the pattern count is the rule count, capped by rule loading.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};

#[cfg(feature = "hyperscan")]
mod hs;

/// Which matcher a prefilter database uses (`detect.prefilter` in the config).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Deserialize)]
pub enum Backend {
    /// The process default ([`set_default_backend`]); when that is `Auto` too, Hyperscan
    /// where it is compiled in and accepts the patterns, else aho-corasick.
    #[default]
    #[serde(rename = "auto")]
    Auto,
    /// Hyperscan; building fails when it is not compiled in or rejects the patterns.
    #[serde(rename = "hyperscan")]
    Hyperscan,
    /// aho-corasick (DFA where it fits, else NFA).
    #[serde(rename = "aho-corasick")]
    AhoCorasick,
}

impl Backend {
    /// Whether this build has the Hyperscan backend (cargo feature `hyperscan`).
    #[must_use]
    pub fn hyperscan_compiled() -> bool {
        cfg!(feature = "hyperscan")
    }

    /// The config spelling: `auto`, `hyperscan`, `aho-corasick`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Hyperscan => "hyperscan",
            Self::AhoCorasick => "aho-corasick",
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            Self::Auto => 0,
            Self::Hyperscan => 1,
            Self::AhoCorasick => 2,
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Hyperscan,
            2 => Self::AhoCorasick,
            _ => Self::Auto,
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Backend {
    type Err = MpmError;

    /// Parses the config spelling (`auto`, `hyperscan`, `aho-corasick`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "hyperscan" => Ok(Self::Hyperscan),
            "aho-corasick" => Ok(Self::AhoCorasick),
            _ => Err(MpmError::UnknownBackend(s.to_owned())),
        }
    }
}

/// Process-wide default used by [`Mpm::build`] and by `Backend::Auto`.
static DEFAULT_BACKEND: AtomicU8 = AtomicU8::new(0);

/// Source of [`Mpm`] identities (scratch bookkeeping); never reused within a process.
static NEXT_MPM_ID: AtomicU64 = AtomicU64::new(1);

/// Sets the backend that [`Mpm::build`] and [`Backend::Auto`] use from now on (set it once
/// at startup from `detect.prefilter`). Databases already built keep their backend.
pub fn set_default_backend(backend: Backend) {
    DEFAULT_BACKEND.store(backend.to_u8(), Ordering::Relaxed);
}

/// The backend set by [`set_default_backend`] (`Auto` unless set).
#[must_use]
pub fn default_backend() -> Backend {
    Backend::from_u8(DEFAULT_BACKEND.load(Ordering::Relaxed))
}

/// Why a prefilter database could not be built.
#[derive(Debug, thiserror::Error)]
pub enum MpmError {
    /// aho-corasick refused the pattern set (size limits).
    #[error("building the aho-corasick prefilter failed: {0}")]
    AhoCorasick(String),
    /// Hyperscan refused the pattern set, or the CPU lacks what it needs.
    #[error("building the Hyperscan prefilter failed ({patterns} patterns): {reason}")]
    Hyperscan {
        /// Distinct patterns in the set.
        patterns: usize,
        /// Hyperscan's message.
        reason: String,
    },
    /// Hyperscan was asked for but this build does not include it.
    #[error(
        "prefilter backend 'hyperscan' is not compiled in (build with the `hyperscan` feature)"
    )]
    HyperscanUnavailable,
    /// A backend name that is not `auto`, `hyperscan` or `aho-corasick`.
    #[error("unknown prefilter backend '{0}' (expected auto, hyperscan or aho-corasick)")]
    UnknownBackend(String),
}

/// Candidate collection, reused across packets (one per worker thread). Also holds the
/// thread's Hyperscan scratch space, grown on demand for each database it scans with.
#[derive(Debug, Default)]
pub struct Candidates {
    mark: Vec<u32>,
    generation: u32,
    /// Collected rule numbers (unsorted).
    pub list: Vec<u32>,
    pattern_mark: Vec<u32>,
    pattern_generation: u32,
    scan_failures: u64,
    #[cfg(feature = "hyperscan")]
    hs: hs::ThreadScratch,
}

/// A pattern list as [`Mpm::build_with`] takes it: `(pattern, rule)` pairs.
type PatternSlice<'a> = &'a [(Vec<u8>, u32)];

/// Adds `sig` to `list` unless it is already marked with `generation`.
fn mark_rule(mark: &mut [u32], generation: u32, list: &mut Vec<u32>, sig: u32) {
    if let Some(m) = mark.get_mut(sig as usize)
        && *m != generation
    {
        *m = generation;
        list.push(sig);
    }
}

impl Candidates {
    /// Starts a new collection round for an engine with `nsigs` rules and at most
    /// `npatterns` patterns in any database.
    pub fn reset(&mut self, nsigs: usize, npatterns: usize) {
        if self.mark.len() < nsigs {
            self.mark.resize(nsigs, 0);
        }
        if self.pattern_mark.len() < npatterns {
            self.pattern_mark.resize(npatterns, 0);
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            // Wrapped: clear so stale marks cannot alias the new generation.
            self.mark.fill(0);
            self.generation = 1;
        }
        self.list.clear();
    }

    /// Starts one database scan: pattern ids are per database.
    fn new_scan(&mut self) {
        self.pattern_generation = self.pattern_generation.wrapping_add(1);
        if self.pattern_generation == 0 {
            self.pattern_mark.fill(0);
            self.pattern_generation = 1;
        }
    }

    /// Adds a rule once per round.
    pub fn add(&mut self, sig: u32) {
        mark_rule(&mut self.mark, self.generation, &mut self.list, sig);
    }

    /// Sorts the candidates into evaluation order.
    pub fn sort(&mut self) {
        self.list.sort_unstable();
    }

    /// Scans that could not run and made every rule of their database a candidate
    /// instead (Hyperscan scratch allocation failure, haystack over 4 GiB).
    #[must_use]
    pub fn scan_failures(&self) -> u64 {
        self.scan_failures
    }

    /// Whether `pattern` was already reported this round (and marks it).
    fn seen_pattern(&mut self, pattern: usize) -> bool {
        match self.pattern_mark.get_mut(pattern) {
            Some(m) if *m == self.pattern_generation => true,
            Some(m) => {
                *m = self.pattern_generation;
                false
            }
            None => false,
        }
    }
}

/// The matcher behind one database.
enum Matcher {
    /// No non-empty pattern: nothing to search for.
    Nothing,
    AhoCorasick(AhoCorasick),
    #[cfg(feature = "hyperscan")]
    Hyperscan(hs::Database),
}

/// A prefilter database.
pub struct Mpm {
    matcher: Matcher,
    /// Backend that built it (`Hyperscan` or `AhoCorasick`, never `Auto`).
    backend: Backend,
    /// The rules of pattern `p` are `rule_ids[starts[p]..starts[p + 1]]`.
    starts: Vec<u32>,
    rule_ids: Vec<u32>,
    /// Rules whose fast pattern is empty: candidates on every scan.
    always: Vec<u32>,
    /// Process-unique identity, for per-thread scratch bookkeeping.
    #[cfg_attr(
        not(feature = "hyperscan"),
        expect(dead_code, reason = "only the Hyperscan scratch bookkeeping reads it")
    )]
    id: u64,
}

impl std::fmt::Debug for Mpm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mpm")
            .field("backend", &self.backend)
            .field("patterns", &self.patterns())
            .field("rules", &self.rule_ids.len())
            .field("always", &self.always.len())
            .finish_non_exhaustive()
    }
}

/// Distinct lowercased patterns with their rules, in first-seen order.
struct PatternTable {
    patterns: Vec<Vec<u8>>,
    rules: Vec<Vec<u32>>,
    always: Vec<u32>,
}

impl PatternTable {
    fn new(entries: &[(Vec<u8>, u32)]) -> Self {
        let mut index: HashMap<Vec<u8>, usize> = HashMap::with_capacity(entries.len());
        let mut table = Self {
            patterns: Vec::new(),
            rules: Vec::new(),
            always: Vec::new(),
        };
        for (pat, sig) in entries {
            if pat.is_empty() {
                table.always.push(*sig);
                continue;
            }
            let key = pat.to_ascii_lowercase();
            let id = match index.get(&key) {
                Some(&id) => id,
                None => {
                    table.patterns.push(key.clone());
                    table.rules.push(Vec::new());
                    index.insert(key, table.patterns.len() - 1);
                    table.patterns.len() - 1
                }
            };
            if let Some(r) = table.rules.get_mut(id) {
                r.push(*sig);
            }
        }
        table.always.sort_unstable();
        table.always.dedup();
        table
    }
}

fn build_aho_corasick(patterns: &[Vec<u8>]) -> Result<AhoCorasick, MpmError> {
    AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::Standard)
        .kind(Some(AhoCorasickKind::DFA))
        .build(patterns)
        .or_else(|_| {
            // A DFA over a huge set can exceed size limits: fall back to the NFA.
            AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::Standard)
                .build(patterns)
        })
        .map_err(|e| MpmError::AhoCorasick(e.to_string()))
}

#[cfg(feature = "hyperscan")]
fn build_hyperscan(patterns: &[Vec<u8>]) -> Result<Matcher, MpmError> {
    hs::Database::build(patterns)
        .map(Matcher::Hyperscan)
        .map_err(|reason| MpmError::Hyperscan {
            patterns: patterns.len(),
            reason,
        })
}

#[cfg(not(feature = "hyperscan"))]
fn build_hyperscan(_patterns: &[Vec<u8>]) -> Result<Matcher, MpmError> {
    Err(MpmError::HyperscanUnavailable)
}

impl Mpm {
    /// Builds a database from `(pattern, rule)` pairs with the process default backend
    /// ([`set_default_backend`]; `Auto` unless set).
    ///
    /// # Errors
    /// [`MpmError`] when the database cannot be built (size limits; Hyperscan forced
    /// but unavailable or refusing the set).
    pub fn build(entries: &[(Vec<u8>, u32)]) -> Result<Self, MpmError> {
        Self::build_with(entries, Backend::Auto)
    }

    /// Builds a database with `backend`. `Auto` means the process default, and when that
    /// is `Auto` as well: Hyperscan if compiled in and it accepts the patterns, else
    /// aho-corasick (logged at `warn` when Hyperscan was expected but failed).
    ///
    /// # Errors
    /// [`MpmError::AhoCorasick`] when aho-corasick cannot build the set;
    /// [`MpmError::HyperscanUnavailable`] / [`MpmError::Hyperscan`] when Hyperscan is
    /// forced (here or as the process default) and cannot be used.
    pub fn build_with(entries: &[(Vec<u8>, u32)], backend: Backend) -> Result<Self, MpmError> {
        let table = PatternTable::new(entries);
        let requested = match backend {
            Backend::Auto => default_backend(),
            forced => forced,
        };
        let (matcher, backend) = if table.patterns.is_empty() {
            let b = match requested {
                Backend::Hyperscan if !Backend::hyperscan_compiled() => {
                    return Err(MpmError::HyperscanUnavailable);
                }
                Backend::Auto if Backend::hyperscan_compiled() => Backend::Hyperscan,
                Backend::Auto => Backend::AhoCorasick,
                b => b,
            };
            (Matcher::Nothing, b)
        } else {
            match requested {
                Backend::AhoCorasick => (
                    Matcher::AhoCorasick(build_aho_corasick(&table.patterns)?),
                    Backend::AhoCorasick,
                ),
                Backend::Hyperscan => (build_hyperscan(&table.patterns)?, Backend::Hyperscan),
                Backend::Auto if !Backend::hyperscan_compiled() => (
                    Matcher::AhoCorasick(build_aho_corasick(&table.patterns)?),
                    Backend::AhoCorasick,
                ),
                Backend::Auto => match build_hyperscan(&table.patterns) {
                    Ok(m) => (m, Backend::Hyperscan),
                    Err(e) => {
                        tracing::warn!(error = %e, "prefilter falls back to aho-corasick");
                        (
                            Matcher::AhoCorasick(build_aho_corasick(&table.patterns)?),
                            Backend::AhoCorasick,
                        )
                    }
                },
            }
        };
        let mut starts = Vec::with_capacity(table.rules.len() + 1);
        let mut rule_ids = Vec::with_capacity(entries.len());
        starts.push(0);
        for rules in &table.rules {
            rule_ids.extend_from_slice(rules);
            starts.push(u32::try_from(rule_ids.len()).unwrap_or(u32::MAX));
        }
        Ok(Self {
            matcher,
            backend,
            starts,
            rule_ids,
            always: table.always,
            id: NEXT_MPM_ID.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// Builds one database per pattern list on up to `threads` threads (Hyperscan compiles
    /// dominate rule loading; they are independent). Results are in the order of `lists`,
    /// each as [`Mpm::build_with`] would return it. A panic in a build thread is re-raised.
    #[must_use]
    pub fn build_many(
        lists: &[&[(Vec<u8>, u32)]],
        backend: Backend,
        threads: usize,
    ) -> Vec<Result<Self, MpmError>> {
        let threads = threads.clamp(1, lists.len().max(1));
        if threads == 1 {
            return lists.iter().map(|l| Self::build_with(l, backend)).collect();
        }
        // Biggest first, so the longest compiles do not start last.
        let mut order: Vec<(usize, PatternSlice<'_>)> = lists.iter().copied().enumerate().collect();
        order.sort_by_key(|(_, l)| std::cmp::Reverse(l.len()));
        let next = std::sync::atomic::AtomicUsize::new(0);
        let mut built: Vec<(usize, Result<Self, MpmError>)> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(|| {
                        let mut done = Vec::new();
                        while let Some(&(i, list)) = order.get(next.fetch_add(1, Ordering::Relaxed))
                        {
                            done.push((i, Self::build_with(list, backend)));
                        }
                        done
                    })
                })
                .collect();
            let mut all = Vec::with_capacity(lists.len());
            for w in workers {
                match w.join() {
                    Ok(done) => all.extend(done),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
            all
        });
        built.sort_by_key(|(i, _)| *i);
        built.into_iter().map(|(_, r)| r).collect()
    }

    /// Number of distinct non-empty patterns (pattern ids are `0..patterns()`).
    #[must_use]
    pub fn patterns(&self) -> usize {
        self.starts.len().saturating_sub(1)
    }

    /// The backend this database was built with (`Hyperscan` or `AhoCorasick`).
    #[must_use]
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Heap bytes held by the matcher (Hyperscan database or aho-corasick automaton).
    #[must_use]
    pub fn memory_bytes(&self) -> usize {
        let tables = (self.starts.len() + self.rule_ids.len() + self.always.len()) * 4;
        tables
            + match &self.matcher {
                Matcher::Nothing => 0,
                Matcher::AhoCorasick(ac) => ac.memory_usage(),
                #[cfg(feature = "hyperscan")]
                Matcher::Hyperscan(db) => db.size(),
            }
    }

    /// The rules of pattern `p`.
    fn rules_of(&self, p: usize) -> &[u32] {
        let (Some(&a), Some(&b)) = (self.starts.get(p), self.starts.get(p + 1)) else {
            return &[];
        };
        self.rule_ids
            .get(a as usize..b as usize)
            .unwrap_or_default()
    }

    /// Scans `hay` and adds the rules of every pattern found to `cands`.
    pub fn scan(&self, hay: &[u8], cands: &mut Candidates) {
        for &r in &self.always {
            cands.add(r);
        }
        match &self.matcher {
            Matcher::Nothing => {}
            Matcher::AhoCorasick(ac) => {
                cands.new_scan();
                for m in ac.find_overlapping_iter(hay) {
                    let p = m.pattern().as_usize();
                    if cands.seen_pattern(p) {
                        continue;
                    }
                    for &r in self.rules_of(p) {
                        cands.add(r);
                    }
                }
            }
            #[cfg(feature = "hyperscan")]
            Matcher::Hyperscan(db) => {
                let Candidates {
                    mark,
                    generation,
                    list,
                    hs,
                    ..
                } = cands;
                let generation = *generation;
                // SINGLEMATCH: each pattern is reported at most once per scan.
                let ran = hs.scan(db, self.id, hay, |p| {
                    for &r in self.rules_of(p) {
                        mark_rule(mark, generation, list, r);
                    }
                });
                if !ran {
                    cands.scan_failures += 1;
                    for &r in &self.rule_ids {
                        cands.add(r);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
