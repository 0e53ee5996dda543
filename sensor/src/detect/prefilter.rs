//! Multi-pattern prefilter: one automaton per (signature group, buffer) over the rules'
//! fast patterns. A hit makes the rule a candidate; full evaluation confirms it.
//!
//! The automaton is case-insensitive for every pattern: a case-sensitive pattern may then
//! yield a false candidate, never a missed one, and one automaton serves both. Identical
//! patterns share one automaton entry that lists all their rules.

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};

/// A prefilter database.
#[derive(Debug)]
pub struct Mpm {
    ac: AhoCorasick,
    /// Rules per pattern id.
    rules: Vec<Vec<u32>>,
}

/// Candidate collection, reused across packets (one per worker thread).
#[derive(Debug, Default)]
pub struct Candidates {
    mark: Vec<u32>,
    generation: u32,
    /// Collected rule numbers (unsorted).
    pub list: Vec<u32>,
    pattern_mark: Vec<u32>,
    pattern_generation: u32,
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
        if let Some(m) = self.mark.get_mut(sig as usize)
            && *m != self.generation
        {
            *m = self.generation;
            self.list.push(sig);
        }
    }

    /// Sorts the candidates into evaluation order.
    pub fn sort(&mut self) {
        self.list.sort_unstable();
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

/// Why a prefilter database could not be built.
#[derive(Debug, thiserror::Error)]
#[error("building the prefilter failed: {0}")]
pub struct MpmError(String);

impl Mpm {
    /// Builds a database from `(pattern, rule)` pairs.
    ///
    /// # Errors
    /// [`MpmError`] when the automaton cannot be built (size limits).
    pub fn build(entries: &[(Vec<u8>, u32)]) -> Result<Self, MpmError> {
        let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
        let mut patterns: Vec<Vec<u8>> = Vec::new();
        let mut rules: Vec<Vec<u32>> = Vec::new();
        for (pat, sig) in entries {
            let key = pat.to_ascii_lowercase();
            let id = *index.entry(key.clone()).or_insert_with(|| {
                patterns.push(key);
                rules.push(Vec::new());
                patterns.len() - 1
            });
            if let Some(r) = rules.get_mut(id) {
                r.push(*sig);
            }
        }
        let ac = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&patterns)
            .or_else(|_| {
                // A DFA over a huge set can exceed size limits: fall back to the NFA.
                AhoCorasickBuilder::new()
                    .ascii_case_insensitive(true)
                    .match_kind(MatchKind::Standard)
                    .build(&patterns)
            })
            .map_err(|e| MpmError(e.to_string()))?;
        Ok(Self { ac, rules })
    }

    /// Number of distinct patterns.
    #[must_use]
    pub fn patterns(&self) -> usize {
        self.rules.len()
    }

    /// Scans `hay` and adds the rules of every pattern found to `cands`.
    pub fn scan(&self, hay: &[u8], cands: &mut Candidates) {
        cands.new_scan();
        for m in self.ac.find_overlapping_iter(hay) {
            let p = m.pattern().as_usize();
            if cands.seen_pattern(p) {
                continue;
            }
            if let Some(rules) = self.rules.get(p) {
                for &r in rules {
                    cands.add(r);
                }
            }
        }
    }
}
