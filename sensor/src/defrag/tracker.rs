//! One datagram being reassembled: its fragments as they arrived, and the rebuild.

use super::policy::{Extent, OverlapPolicy};
use crate::Timestamp;

/// Bytes charged per stored fragment on top of its data (bookkeeping, allocator slack).
pub(super) const FRAG_OVERHEAD: usize = 64;
/// Bytes charged per tracker on top of its fragments.
pub(super) const TRACKER_OVERHEAD: usize = 128;

/// A stored fragment: its bytes at `[start, end)` of the fragmentable part.
#[derive(Debug)]
struct Frag {
    start: u32,
    data: Vec<u8>,
    /// For a fragment at offset 0: the header to rebuild the datagram with (IPv4 header with
    /// options; IPv6 unfragmentable part with the next-header field already patched).
    header: Option<Vec<u8>>,
}

impl Frag {
    fn extent(&self) -> Extent {
        let start = u64::from(self.start);
        Extent::new(start, start + self.data.len() as u64)
    }
}

/// Fragments of one datagram.
#[derive(Debug)]
pub(super) struct Tracker {
    /// In arrival order: the policy decides by arrival order and original extents.
    frags: Vec<Frag>,
    /// Merged, sorted coverage of `[0, 65535]`, to know when the datagram is complete.
    coverage: Vec<(u32, u32)>,
    /// Length of the fragmentable part, known once the last fragment (MF clear) arrived.
    pub total_len: Option<u32>,
    /// Whether any two fragments overlapped (the rebuild then applies the policy).
    pub overlapped: bool,
    /// Bytes charged to the memcap for this tracker.
    pub mem: usize,
    /// Expiry time (packet time).
    pub expires: Timestamp,
}

/// What inserting one fragment did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Inserted {
    /// The fragment overlapped data already held.
    pub overlap: bool,
    /// The datagram is now complete.
    pub complete: bool,
}

impl Tracker {
    pub fn new(expires: Timestamp) -> Self {
        Self {
            frags: Vec::new(),
            coverage: Vec::new(),
            total_len: None,
            overlapped: false,
            mem: TRACKER_OVERHEAD,
            expires,
        }
    }

    pub fn fragments(&self) -> usize {
        self.frags.len()
    }

    /// Stores a fragment. `end` has been checked to be at most 65535 by the caller.
    pub fn insert(
        &mut self,
        start: u32,
        data: &[u8],
        more: bool,
        header: Option<Vec<u8>>,
    ) -> Inserted {
        let end = start.saturating_add(u32::try_from(data.len()).unwrap_or(u32::MAX));
        let overlap = self
            .frags
            .iter()
            .any(|f| u64::from(start) < f.extent().end && f.extent().start < u64::from(end));
        self.overlapped |= overlap;
        if !more && self.total_len.is_none() {
            // The first "last fragment" fixes the length, as most stacks do; a later one
            // with another end is stored but cannot change it.
            self.total_len = Some(end);
        }
        self.mem += data.len() + FRAG_OVERHEAD + header.as_ref().map_or(0, Vec::len);
        self.frags.push(Frag {
            start,
            data: data.to_vec(),
            header,
        });
        add_coverage(&mut self.coverage, start, end);
        Inserted {
            overlap,
            complete: self.is_complete(),
        }
    }

    fn is_complete(&self) -> bool {
        let Some(total) = self.total_len else {
            return false;
        };
        match self.coverage.first() {
            Some(&(0, end)) => end >= total,
            _ => false,
        }
    }

    /// Rebuilds the fragmentable part under `policy`, and returns it with the header of the
    /// fragment that owns byte 0. `None` when no offset-0 fragment carried a header.
    pub fn rebuild(&self, policy: OverlapPolicy) -> Option<(&[u8], Vec<u8>)> {
        let total = usize::try_from(self.total_len?).ok()?;
        let mut out = vec![0u8; total];
        let mut header_owner: Option<usize> = None;
        if self.overlapped {
            // owner[b] = 1 + index of the fragment whose byte b is kept.
            let mut owner = vec![0u16; total];
            for (i, f) in self.frags.iter().enumerate() {
                let new = f.extent();
                let tag = u16::try_from(i + 1).unwrap_or(u16::MAX);
                let start = f.start as usize;
                for (k, &byte) in f.data.iter().enumerate() {
                    let b = start + k;
                    let (Some(slot), Some(o)) = (out.get_mut(b), owner.get_mut(b)) else {
                        break;
                    };
                    let take = match self.frags.get(usize::from(*o).wrapping_sub(1)) {
                        None => true,
                        Some(old) => policy.ip_new_wins(new, old.extent()),
                    };
                    if take {
                        *slot = byte;
                        *o = tag;
                    }
                }
            }
            header_owner = owner
                .first()
                .and_then(|&o| usize::from(o).checked_sub(1))
                .filter(|&i| self.frags.get(i).is_some_and(|f| f.header.is_some()));
        } else {
            for (i, f) in self.frags.iter().enumerate() {
                let start = f.start as usize;
                let n = f.data.len().min(total.saturating_sub(start));
                if let (Some(dst), Some(src)) = (out.get_mut(start..start + n), f.data.get(..n)) {
                    dst.copy_from_slice(src);
                }
                if f.start == 0 && f.header.is_some() {
                    header_owner = Some(i);
                }
            }
        }
        // With overlaps, a header-less offset-0 fragment cannot own byte 0 (only offset-0
        // fragments carry headers and all of them start at 0), so fall back to any header.
        let header = header_owner
            .and_then(|i| self.frags.get(i))
            .or_else(|| self.frags.iter().find(|f| f.header.is_some()))
            .and_then(|f| f.header.as_deref())?;
        Some((header, out))
    }
}

/// Adds `[start, end)` to a sorted list of disjoint, non-adjacent ranges.
fn add_coverage(cov: &mut Vec<(u32, u32)>, start: u32, end: u32) {
    if start >= end {
        return;
    }
    let mut s = start;
    let mut e = end;
    // Ranges that touch or overlap [s, e) are merged into it.
    let first = cov.partition_point(|&(_, re)| re < s);
    let mut last = first;
    while let Some(&(rs, re)) = cov.get(last) {
        if rs > e {
            break;
        }
        s = s.min(rs);
        e = e.max(re);
        last += 1;
    }
    cov.splice(first..last, [(s, e)]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_merges_touching_and_overlapping_ranges() {
        let mut c = Vec::new();
        add_coverage(&mut c, 16, 24);
        add_coverage(&mut c, 0, 8);
        assert_eq!(c, [(0, 8), (16, 24)]);
        add_coverage(&mut c, 8, 16);
        assert_eq!(c, [(0, 24)]);
        add_coverage(&mut c, 40, 48);
        add_coverage(&mut c, 4, 44);
        assert_eq!(c, [(0, 48)]);
        add_coverage(&mut c, 5, 5);
        assert_eq!(c, [(0, 48)]);
    }
}
