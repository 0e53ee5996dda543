//! The durable spool: alerts are on disk before the forwarder sends them, and stay there
//! until the correlator has acknowledged them.
//!
//! Layout of the spool directory:
//! - `seg-NNNNNNNNNNNNNNNNNNNN.log`: append-only segments, rotated at `segment_max_bytes`;
//! - `cursor`: the acknowledged position `(segment, offset)`, replaced atomically
//!   (write `cursor.tmp`, fsync, rename, fsync the directory);
//! - `rejected.ndjson`: lines the correlator refused as invalid (kept, never dropped).
//!
//! Record format (little-endian): `magic u32 = "TSR1"`, `len u32`, `crc32(payload) u32`,
//! then `len` payload bytes (one EVE JSON line, no newline). Invariants: every record before
//! the write position is whole and checksummed; segments wholly before the cursor are
//! deleted. Recovery on open: from the cursor on, each segment is scanned and cut at its
//! first bad record (a torn tail after a crash; mid-file damage is logged and counted).
//! Caps: `MAX_RECORD_BYTES` per record; the forwarder blocks writers at `max_bytes` of
//! unacknowledged data.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Record magic: `TSR1`.
pub const MAGIC: u32 = u32::from_le_bytes(*b"TSR1");
/// Bytes of a record header.
pub const HEADER_BYTES: u64 = 12;
/// Largest record payload.
pub const MAX_RECORD_BYTES: usize = 16 << 20;

/// A position in the spool: segment number and byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    /// Segment number.
    pub segment: u64,
    /// Byte offset within the segment.
    pub offset: u64,
}

/// Why a spool operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// File system error.
    #[error("spool {context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
    /// A record larger than [`MAX_RECORD_BYTES`].
    #[error("record of {len} bytes exceeds the spool's {max}-byte limit")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> SpoolError {
    let context = context.into();
    move |source| SpoolError::Io { context, source }
}

/// What recovery found on open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Records not yet acknowledged (they will be resent).
    pub pending_records: u64,
    /// Bytes cut from segment tails (torn or damaged records).
    pub truncated_bytes: u64,
    /// Whether the cursor file was missing or unreadable (everything is resent then).
    pub cursor_reset: bool,
}

/// The spool (single writer; share it behind a mutex).
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    segment_max_bytes: u64,
    segments: BTreeMap<u64, u64>,
    file: File,
    write: Pos,
    ack: Pos,
    dirty: bool,
}

fn seg_name(n: u64) -> String {
    format!("seg-{n:020}.log")
}

fn parse_seg_name(name: &str) -> Option<u64> {
    name.strip_prefix("seg-")?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

/// Reads one record at the file's position. `Ok(None)` at a clean end of data;
/// `Err(())` when the bytes there are not a whole valid record.
fn read_record(r: &mut impl Read, remaining: u64) -> Result<Option<Vec<u8>>, ()> {
    if remaining == 0 {
        return Ok(None);
    }
    if remaining < HEADER_BYTES {
        return Err(());
    }
    let mut h = [0u8; 12];
    r.read_exact(&mut h).map_err(|_| ())?;
    let [m0, m1, m2, m3, l0, l1, l2, l3, c0, c1, c2, c3] = h;
    if u32::from_le_bytes([m0, m1, m2, m3]) != MAGIC {
        return Err(());
    }
    let len = u32::from_le_bytes([l0, l1, l2, l3]);
    let crc = u32::from_le_bytes([c0, c1, c2, c3]);
    let len_usize = usize::try_from(len).map_err(|_| ())?;
    if len_usize > MAX_RECORD_BYTES || u64::from(len) > remaining - HEADER_BYTES {
        return Err(());
    }
    let mut payload = vec![0u8; len_usize];
    r.read_exact(&mut payload).map_err(|_| ())?;
    if crc32fast::hash(&payload) != crc {
        return Err(());
    }
    Ok(Some(payload))
}

/// Scans a segment from `from`; returns (records, end of the valid prefix).
fn scan(path: &Path, from: u64) -> Result<(u64, u64), SpoolError> {
    let mut f = File::open(path).map_err(io(format!("opening {}", path.display())))?;
    let size = f
        .metadata()
        .map_err(io(format!("reading {}", path.display())))?
        .len();
    if from >= size {
        return Ok((0, from.min(size)));
    }
    f.seek(SeekFrom::Start(from))
        .map_err(io(format!("seeking {}", path.display())))?;
    let mut r = std::io::BufReader::with_capacity(1 << 16, f);
    let mut pos = from;
    let mut n = 0;
    while let Ok(Some(p)) = read_record(&mut r, size - pos) {
        pos += HEADER_BYTES + p.len() as u64;
        n += 1;
    }
    Ok((n, pos))
}

fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(format!("syncing directory {}", dir.display())))
}

impl Spool {
    /// Opens (or creates) the spool in `dir` and recovers it.
    ///
    /// # Errors
    /// [`SpoolError::Io`].
    pub fn open(dir: &Path, segment_max_bytes: u64) -> Result<(Self, Recovery), SpoolError> {
        std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
        let mut segments = BTreeMap::new();
        for entry in std::fs::read_dir(dir).map_err(io(format!("listing {}", dir.display())))? {
            let entry = entry.map_err(io("listing"))?;
            if let Some(n) = entry.file_name().to_str().and_then(parse_seg_name) {
                let len = entry.metadata().map_err(io("stat segment"))?.len();
                segments.insert(n, len);
            }
        }
        let mut rec = Recovery::default();
        let first = segments.keys().next().copied().unwrap_or(1);
        let mut ack = match read_cursor(dir) {
            Some(p) => p,
            None => {
                rec.cursor_reset = dir.join("cursor").exists() || !segments.is_empty();
                Pos {
                    segment: first,
                    offset: 0,
                }
            }
        };
        // A cursor pointing before the first remaining segment (its segment was deleted).
        if !segments.contains_key(&ack.segment) {
            ack = match segments.range(ack.segment..).next() {
                Some((&n, _)) => Pos {
                    segment: n,
                    offset: 0,
                },
                None => Pos {
                    segment: segments.keys().next_back().map_or(first, |&n| n + 1),
                    offset: 0,
                },
            };
        }
        // Drop segments wholly before the cursor, then validate the rest.
        let stale: Vec<u64> = segments.range(..ack.segment).map(|(&n, _)| n).collect();
        for n in stale {
            let _ = std::fs::remove_file(dir.join(seg_name(n)));
            segments.remove(&n);
        }
        for (&n, len) in &mut segments {
            let from = if n == ack.segment { ack.offset } else { 0 };
            let path = dir.join(seg_name(n));
            let (records, valid_end) = scan(&path, from)?;
            rec.pending_records += records;
            if valid_end < *len {
                tracing::warn!(
                    segment = n,
                    cut = *len - valid_end,
                    "spool: cutting a torn or damaged segment tail"
                );
                rec.truncated_bytes += *len - valid_end;
                let f = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(io(format!("opening {}", path.display())))?;
                f.set_len(valid_end)
                    .map_err(io(format!("truncating {}", path.display())))?;
                f.sync_all().map_err(io("syncing a truncated segment"))?;
                *len = valid_end;
            }
        }
        if ack.offset > segments.get(&ack.segment).copied().unwrap_or(0) {
            ack.offset = segments.get(&ack.segment).copied().unwrap_or(0);
        }
        let (write_seg, write_len) = match segments.iter().next_back() {
            Some((&n, &len)) => (n, len),
            None => (ack.segment, 0),
        };
        segments.entry(write_seg).or_insert(0);
        let path = dir.join(seg_name(write_seg));
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(format!("opening {}", path.display())))?;
        let me = Self {
            dir: dir.to_owned(),
            segment_max_bytes: segment_max_bytes.max(HEADER_BYTES + 1),
            segments,
            file,
            write: Pos {
                segment: write_seg,
                offset: write_len,
            },
            ack,
            dirty: false,
        };
        me.persist_cursor()?;
        Ok((me, rec))
    }

    /// The spool directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Position after the last whole record.
    #[must_use]
    pub fn write_pos(&self) -> Pos {
        self.write
    }

    /// The acknowledged position.
    #[must_use]
    pub fn ack_pos(&self) -> Pos {
        self.ack
    }

    /// Bytes written but not acknowledged.
    #[must_use]
    pub fn pending_bytes(&self) -> u64 {
        self.segments
            .range(self.ack.segment..)
            .map(|(_, &l)| l)
            .sum::<u64>()
            .saturating_sub(self.ack.offset)
    }

    /// Appends one record (not yet fsynced; see [`Spool::sync`]). Returns the position
    /// after it.
    ///
    /// # Errors
    /// [`SpoolError`].
    pub fn append(&mut self, payload: &[u8]) -> Result<Pos, SpoolError> {
        if payload.len() > MAX_RECORD_BYTES {
            return Err(SpoolError::TooLarge {
                len: payload.len(),
                max: MAX_RECORD_BYTES,
            });
        }
        let rec_len = HEADER_BYTES + payload.len() as u64;
        if self.write.offset > 0 && self.write.offset + rec_len > self.segment_max_bytes {
            self.rotate()?;
        }
        let len = u32::try_from(payload.len()).unwrap_or(u32::MAX); // ≤ MAX_RECORD_BYTES
        let mut buf = Vec::with_capacity(payload.len() + 12);
        buf.extend_from_slice(&MAGIC.to_le_bytes());
        buf.extend_from_slice(&len.to_le_bytes());
        buf.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        buf.extend_from_slice(payload);
        if let Err(e) = self.file.write_all(&buf) {
            // Cut whatever part of the record reached the file, so the segment stays whole.
            let _ = self.file.set_len(self.write.offset);
            return Err(SpoolError::Io {
                context: "appending a record".into(),
                source: e,
            });
        }
        self.write.offset += rec_len;
        self.segments.insert(self.write.segment, self.write.offset);
        self.dirty = true;
        Ok(self.write)
    }

    fn rotate(&mut self) -> Result<(), SpoolError> {
        self.file
            .sync_data()
            .map_err(io("syncing a full segment"))?;
        let next = self.write.segment + 1;
        let path = self.dir.join(seg_name(next));
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(format!("creating {}", path.display())))?;
        sync_dir(&self.dir)?;
        self.write = Pos {
            segment: next,
            offset: 0,
        };
        self.segments.insert(next, 0);
        self.dirty = false;
        Ok(())
    }

    /// Flushes appended records to stable storage (fdatasync) if any are unsynced.
    ///
    /// # Errors
    /// [`SpoolError::Io`].
    pub fn sync(&mut self) -> Result<(), SpoolError> {
        if self.dirty {
            self.file.sync_data().map_err(io("syncing the spool"))?;
            self.dirty = false;
        }
        Ok(())
    }

    /// Records that everything before `pos` was delivered: persists the cursor atomically and
    /// deletes segments wholly before it.
    ///
    /// # Errors
    /// [`SpoolError::Io`].
    pub fn ack(&mut self, pos: Pos) -> Result<(), SpoolError> {
        if pos <= self.ack {
            return Ok(());
        }
        self.ack = pos.min(self.write);
        // A fully read segment that is not the one being written: move to the next one.
        while self.ack.segment < self.write.segment
            && self.segments.get(&self.ack.segment).copied().unwrap_or(0) <= self.ack.offset
        {
            let next = self
                .segments
                .range(self.ack.segment + 1..)
                .next()
                .map_or(self.write.segment, |(&n, _)| n);
            self.ack = Pos {
                segment: next,
                offset: 0,
            };
        }
        self.persist_cursor()?;
        let done: Vec<u64> = self
            .segments
            .range(..self.ack.segment)
            .map(|(&n, _)| n)
            .collect();
        for n in done {
            std::fs::remove_file(self.dir.join(seg_name(n)))
                .map_err(io("deleting a delivered segment"))?;
            self.segments.remove(&n);
        }
        Ok(())
    }

    fn persist_cursor(&self) -> Result<(), SpoolError> {
        let tmp = self.dir.join("cursor.tmp");
        let text = format!(
            "tocsin-spool-cursor v1 {} {} {:08x}\n",
            self.ack.segment,
            self.ack.offset,
            crc32fast::hash(format!("{} {}", self.ack.segment, self.ack.offset).as_bytes())
        );
        let mut f = File::create(&tmp).map_err(io("writing cursor.tmp"))?;
        f.write_all(text.as_bytes())
            .map_err(io("writing cursor.tmp"))?;
        f.sync_all().map_err(io("syncing cursor.tmp"))?;
        std::fs::rename(&tmp, self.dir.join("cursor")).map_err(io("replacing cursor"))?;
        sync_dir(&self.dir)
    }

    /// Appends a refused line to `rejected.ndjson` with the correlator's reason.
    ///
    /// # Errors
    /// [`SpoolError::Io`].
    pub fn dead_letter(&self, line: &[u8], reason: &str) -> Result<(), SpoolError> {
        let rec = serde_json::json!({
            "error": reason,
            "record": String::from_utf8_lossy(line),
        });
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("rejected.ndjson"))
            .map_err(io("opening rejected.ndjson"))?;
        writeln!(f, "{rec}").map_err(io("writing rejected.ndjson"))?;
        f.sync_data().map_err(io("syncing rejected.ndjson"))
    }

    /// A reader starting at the acknowledged position.
    #[must_use]
    pub fn reader(&self) -> SpoolReader {
        SpoolReader {
            dir: self.dir.clone(),
            pos: self.ack,
            file: None,
        }
    }
}

fn read_cursor(dir: &Path) -> Option<Pos> {
    let text = std::fs::read_to_string(dir.join("cursor")).ok()?;
    let mut it = text.split_whitespace();
    if it.next()? != "tocsin-spool-cursor" || it.next()? != "v1" {
        return None;
    }
    let segment: u64 = it.next()?.parse().ok()?;
    let offset: u64 = it.next()?.parse().ok()?;
    let crc = u32::from_str_radix(it.next()?, 16).ok()?;
    (crc == crc32fast::hash(format!("{segment} {offset}").as_bytes()))
        .then_some(Pos { segment, offset })
}

/// Reads records in order, never past a limit given by the writer.
#[derive(Debug)]
pub struct SpoolReader {
    dir: PathBuf,
    pos: Pos,
    file: Option<std::io::BufReader<File>>,
}

impl SpoolReader {
    /// Position of the next record.
    #[must_use]
    pub fn pos(&self) -> Pos {
        self.pos
    }

    /// Moves back to `pos` (to resend from the acknowledged position).
    pub fn seek(&mut self, pos: Pos) {
        self.pos = pos;
        self.file = None;
    }

    /// The next record before `limit` (the spool's write position, read under its lock),
    /// or `None` when caught up. `segment_len` gives a segment's length (under the lock too).
    ///
    /// # Errors
    /// [`SpoolError::Io`] when a segment cannot be read or holds a bad record (the spool
    /// was changed behind its back).
    pub fn next(
        &mut self,
        limit: Pos,
        segment_len: &dyn Fn(u64) -> Option<u64>,
    ) -> Result<Option<(Vec<u8>, Pos)>, SpoolError> {
        loop {
            if self.pos >= limit {
                return Ok(None);
            }
            let seg_len = segment_len(self.pos.segment).unwrap_or(0);
            let end = if self.pos.segment == limit.segment {
                limit.offset
            } else {
                seg_len
            };
            if self.pos.offset >= end {
                // End of a finished segment: on to the next one.
                self.pos = Pos {
                    segment: self.pos.segment + 1,
                    offset: 0,
                };
                self.file = None;
                continue;
            }
            if self.file.is_none() {
                let path = self.dir.join(seg_name(self.pos.segment));
                let mut f = File::open(&path).map_err(io(format!("opening {}", path.display())))?;
                f.seek(SeekFrom::Start(self.pos.offset))
                    .map_err(io("seeking a segment"))?;
                self.file = Some(std::io::BufReader::with_capacity(1 << 16, f));
            }
            let Some(r) = self.file.as_mut() else {
                continue;
            };
            return match read_record(r, end - self.pos.offset) {
                Ok(Some(p)) => {
                    self.pos.offset += HEADER_BYTES + p.len() as u64;
                    Ok(Some((p, self.pos)))
                }
                Ok(None) => Ok(None),
                Err(()) => Err(SpoolError::Io {
                    context: format!(
                        "reading segment {} at {}",
                        self.pos.segment, self.pos.offset
                    ),
                    source: std::io::Error::new(std::io::ErrorKind::InvalidData, "bad record"),
                }),
            };
        }
    }
}

impl Spool {
    /// Length of a segment, for [`SpoolReader::next`].
    #[must_use]
    pub fn segment_len(&self, n: u64) -> Option<u64> {
        self.segments.get(&n).copied()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn drain(sp: &Spool, r: &mut SpoolReader) -> Vec<(Vec<u8>, Pos)> {
        let mut out = Vec::new();
        while let Some(x) = r.next(sp.write_pos(), &|n| sp.segment_len(n)).unwrap() {
            out.push(x);
        }
        out
    }

    #[test]
    fn append_read_ack_rotate_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (mut sp, rec) = Spool::open(dir.path(), 100).unwrap();
        assert_eq!(rec, Recovery::default());
        // 40-byte payloads: 52-byte records, one per 100-byte segment after the first.
        for i in 0..5u8 {
            sp.append(&[b'a' + i; 40]).unwrap();
        }
        sp.sync().unwrap();
        let mut r = sp.reader();
        let got = drain(&sp, &mut r);
        assert_eq!(got.len(), 5);
        assert_eq!(got[4].0, vec![b'e'; 40]);
        assert_eq!(sp.pending_bytes(), 5 * 52);
        // Ack the first three: their segments go away.
        sp.ack(got[2].1).unwrap();
        assert_eq!(sp.pending_bytes(), 2 * 52);
        let segs = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("seg-")
            })
            .count();
        assert_eq!(segs, 2);
        drop(sp);
        // Reopen: the two unacknowledged records are pending and read again.
        let (sp, rec) = Spool::open(dir.path(), 100).unwrap();
        assert_eq!(rec.pending_records, 2);
        let mut r = sp.reader();
        let again: Vec<Vec<u8>> = drain(&sp, &mut r).into_iter().map(|x| x.0).collect();
        assert_eq!(again, vec![vec![b'd'; 40], vec![b'e'; 40]]);
    }

    #[test]
    fn torn_tail_is_cut_and_writing_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let (mut sp, _) = Spool::open(dir.path(), 1 << 20).unwrap();
        sp.append(b"one").unwrap();
        sp.append(b"two").unwrap();
        drop(sp);
        // A crash mid-append: half a header and a few payload bytes of a third record.
        let seg = dir.path().join(seg_name(1));
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&MAGIC.to_le_bytes()).unwrap();
        f.write_all(&[50, 0]).unwrap();
        drop(f);
        let (mut sp, rec) = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(rec.pending_records, 2);
        assert_eq!(rec.truncated_bytes, 6);
        sp.append(b"three").unwrap();
        let mut r = sp.reader();
        let got: Vec<Vec<u8>> = drain(&sp, &mut r).into_iter().map(|x| x.0).collect();
        assert_eq!(
            got,
            vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]
        );
    }

    #[test]
    fn flipped_byte_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let (mut sp, _) = Spool::open(dir.path(), 1 << 20).unwrap();
        sp.append(b"first").unwrap();
        sp.append(b"second").unwrap();
        drop(sp);
        let seg = dir.path().join(seg_name(1));
        let mut bytes = std::fs::read(&seg).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01; // damage the second payload: its crc no longer matches
        std::fs::write(&seg, bytes).unwrap();
        let (sp, rec) = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(rec.pending_records, 1);
        assert_eq!(rec.truncated_bytes, 12 + 6);
        let mut r = sp.reader();
        assert_eq!(drain(&sp, &mut r).len(), 1);
    }

    #[test]
    fn corrupt_cursor_resends_everything() {
        let dir = tempfile::tempdir().unwrap();
        let (mut sp, _) = Spool::open(dir.path(), 1 << 20).unwrap();
        let p = sp.append(b"a").unwrap();
        sp.append(b"b").unwrap();
        sp.ack(p).unwrap();
        drop(sp);
        std::fs::write(
            dir.path().join("cursor"),
            "tocsin-spool-cursor v1 1 13 deadbeef\n",
        )
        .unwrap();
        let (_, rec) = Spool::open(dir.path(), 1 << 20).unwrap();
        assert!(rec.cursor_reset);
        assert_eq!(
            rec.pending_records, 2,
            "both records are resent; the correlator dedups"
        );
    }

    proptest! {
        #[test]
        fn any_truncation_recovers_a_prefix(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..20),
            cut_frac in 0.0f64..1.0,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let (mut sp, _) = Spool::open(dir.path(), 1 << 20).unwrap();
            for p in &payloads { sp.append(p).unwrap(); }
            drop(sp);
            let seg = dir.path().join(seg_name(1));
            let len = std::fs::metadata(&seg).unwrap().len();
            #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss, reason = "test arithmetic on small numbers")]
            let cut = (len as f64 * cut_frac) as u64;
            OpenOptions::new().write(true).open(&seg).unwrap().set_len(cut).unwrap();
            let (sp, _) = Spool::open(dir.path(), 1 << 20).unwrap();
            let mut r = sp.reader();
            let got: Vec<Vec<u8>> = drain(&sp, &mut r).into_iter().map(|x| x.0).collect();
            prop_assert!(got.len() <= payloads.len());
            prop_assert_eq!(&got[..], &payloads[..got.len()]);
        }
    }
}
