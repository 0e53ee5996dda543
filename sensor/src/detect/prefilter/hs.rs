//! Hyperscan backend: a block-mode database of caseless, single-match literals, and the
//! per-thread scratch space that scans need.
//!
//! Patterns are arbitrary bytes; the safe `hyperscan` API takes expressions as `String`,
//! so every byte outside `[A-Za-z0-9]` is written as `\xHH` (no metacharacter survives).
//! Pattern id = index into the caller's pattern list. `SINGLEMATCH` makes each pattern
//! report at most once per scan, which is all a prefilter needs.
//!
//! Scratch: Hyperscan needs one scratch per concurrent scan, suitable for the database.
//! `hs_alloc_scratch` on an existing scratch grows it to serve the new database as well
//! as every one it served before, so [`ThreadScratch`] keeps one scratch and the set of
//! database identities it has been grown for. The set is cleared past
//! [`MAX_KNOWN_DATABASES`] (engine reloads); re-growing for a database is cheap and safe.

use std::collections::HashSet;
use std::fmt::Write as _;

use hyperscan::Scratch;
use hyperscan::prelude::{BlockDatabase, Builder as _, CompileFlags, Matching, Pattern, Patterns};

/// Database identities remembered per thread before the set is reset.
const MAX_KNOWN_DATABASES: usize = 4096;

/// A compiled block-mode database.
pub(super) struct Database {
    db: BlockDatabase,
    bytes: usize,
}

/// Writes `pat` as a Hyperscan expression matching exactly those bytes.
fn escape(pat: &[u8]) -> String {
    let mut expr = String::with_capacity(pat.len() * 4);
    for &b in pat {
        if b.is_ascii_alphanumeric() {
            expr.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(expr, "\\x{b:02x}");
        }
    }
    expr
}

impl Database {
    /// Compiles non-empty `patterns` (ids = indices), caseless and single-match.
    pub(super) fn build(patterns: &[Vec<u8>]) -> Result<Self, String> {
        let flags = CompileFlags::CASELESS | CompileFlags::SINGLEMATCH;
        let mut set = Vec::with_capacity(patterns.len());
        for (i, p) in patterns.iter().enumerate() {
            let mut pat = Pattern::with_flags(escape(p), flags).map_err(|e| e.to_string())?;
            pat.id = Some(i);
            set.push(pat);
        }
        let db: BlockDatabase = Patterns(set).build().map_err(|e| e.to_string())?;
        let bytes = db.size().unwrap_or(0);
        Ok(Self { db, bytes })
    }

    /// Size of the compiled database in bytes.
    pub(super) fn size(&self) -> usize {
        self.bytes
    }
}

/// One thread's scratch space and the databases it is known to serve.
#[derive(Default)]
pub(super) struct ThreadScratch {
    scratch: Option<Scratch>,
    known: HashSet<u64, ahash::RandomState>,
}

impl std::fmt::Debug for ThreadScratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadScratch")
            .field("allocated", &self.scratch.is_some())
            .field("databases", &self.known.len())
            .finish()
    }
}

impl ThreadScratch {
    /// A scratch suitable for `db` (identity `id`), allocating or growing it if needed.
    fn prepare(&mut self, db: &Database, id: u64) -> Option<&Scratch> {
        if !self.known.contains(&id) {
            match self.scratch.take() {
                None => self.scratch = Some(db.db.alloc_scratch().ok()?),
                Some(mut s) => {
                    if db.db.realloc_scratch(&mut s).is_ok() {
                        self.scratch = Some(s);
                    } else {
                        // On failure Hyperscan may already have freed the old scratch while
                        // the wrapper still holds its pointer: leak the wrapper rather than
                        // free twice, and start over next time (no database is known).
                        std::mem::forget(s);
                        self.known.clear();
                        return None;
                    }
                }
            }
            if self.known.len() >= MAX_KNOWN_DATABASES {
                self.known.clear();
            }
            self.known.insert(id);
        }
        self.scratch.as_ref()
    }

    /// Scans `hay` with `db`, calling `on_pattern` once per pattern found. Returns `false`
    /// when the scan could not run (no scratch, haystack over 4 GiB, Hyperscan error);
    /// then some patterns may have been missed and the caller must assume all matched.
    pub(super) fn scan(
        &mut self,
        db: &Database,
        id: u64,
        hay: &[u8],
        mut on_pattern: impl FnMut(usize),
    ) -> bool {
        // hs_scan takes a 32-bit length.
        if u32::try_from(hay.len()).is_err() {
            return false;
        }
        let Some(scratch) = self.prepare(db, id) else {
            return false;
        };
        db.db
            .scan(hay, scratch, |pattern: u32, _from, _to, _flags| {
                on_pattern(pattern as usize);
                Matching::Continue
            })
            .is_ok()
    }
}
