//! The header table of one HTTP message and the rule buffers derived from it.
//!
//! Input: parsed header lines (name, value) in arrival order.
//! Output: a table with libhtp's merge rules (a repeated name appends `, value` to the first
//! occurrence, except `Content-Length`, whose first value is kept), case-insensitive lookup,
//! and the Suricata 7 buffer forms: `http.header` (`Name: value\r\n` per field, without
//! `Cookie` for requests / `Set-Cookie` for responses), `http.header_names`
//! (`\r\nName1\r\nName2\r\n\r\n`), `http.start` (line, `\r\n`, every field, `\r\n`).
//! Invariants: names and values live in one arena per message (no allocation per header).
//! Caps: the caller limits the number of fields; merged values are bounded by the caller's
//! line-length cap times the number of lines.

use std::ops::Range;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Field {
    name: Range<usize>,
    value: Range<usize>,
}

/// Several byte buffers stored back to back (a multi-buffer such as `http.request_header`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultiBuf {
    data: Vec<u8>,
    ranges: Vec<Range<usize>>,
}

impl MultiBuf {
    /// The `i`-th buffer, `None` past the end.
    #[must_use]
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        self.ranges.get(i).and_then(|r| self.data.get(r.clone()))
    }
    /// Number of buffers.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ranges.len()
    }
    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

/// What [`HeaderTable::add`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// A new field.
    New,
    /// Appended to an existing field of the same name.
    Merged,
    /// A repeated `Content-Length`; the first value is kept. `true` when the values differ.
    DuplicateContentLength(bool),
}

/// Header fields of one message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeaderTable {
    arena: Vec<u8>,
    fields: Vec<Field>,
}

impl HeaderTable {
    fn slice(&self, r: &Range<usize>) -> &[u8] {
        self.arena.get(r.clone()).unwrap_or_default()
    }

    fn push(&mut self, bytes: &[u8]) -> Range<usize> {
        let start = self.arena.len();
        self.arena.extend_from_slice(bytes);
        start..self.arena.len()
    }

    fn find(&self, name: &[u8]) -> Option<usize> {
        self.fields
            .iter()
            .position(|f| self.slice(&f.name).eq_ignore_ascii_case(name))
    }

    /// Adds a field, merging it into an earlier one of the same name.
    pub fn add(&mut self, name: &[u8], value: &[u8]) -> Added {
        match self.find(name) {
            Some(i) => {
                let Some(old) = self.fields.get(i).map(|f| f.value.clone()) else {
                    return Added::New;
                };
                if name.eq_ignore_ascii_case(b"content-length") {
                    return Added::DuplicateContentLength(self.slice(&old) != value);
                }
                let start = self.arena.len();
                self.arena.extend_from_within(old);
                self.arena.extend_from_slice(b", ");
                self.arena.extend_from_slice(value);
                let merged = start..self.arena.len();
                if let Some(f) = self.fields.get_mut(i) {
                    f.value = merged;
                }
                Added::Merged
            }
            None => {
                let name = self.push(name);
                let value = self.push(value);
                self.fields.push(Field { name, value });
                Added::New
            }
        }
    }

    /// The value of `name` (case-insensitive).
    #[must_use]
    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        self.find(name)
            .and_then(|i| self.fields.get(i))
            .map(|f| self.slice(&f.value))
    }

    /// Number of distinct fields.
    #[must_use]
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether the table is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Fields in first-seen order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.fields
            .iter()
            .map(|f| (self.slice(&f.name), self.slice(&f.value)))
    }

    /// Every field as `Name: value` (the `http.request_header` / `http.response_header`
    /// multi-buffer form).
    #[must_use]
    pub fn field_lines(&self) -> MultiBuf {
        let mut m = MultiBuf::default();
        for (n, v) in self.iter() {
            let start = m.data.len();
            m.data.extend_from_slice(n);
            m.data.extend_from_slice(b": ");
            m.data.extend_from_slice(v);
            m.ranges.push(start..m.data.len());
        }
        m
    }

    /// `http.header`: every field but `skip` as `Name: value\r\n`.
    #[must_use]
    pub fn normalized(&self, skip: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for (n, v) in self.iter() {
            if n.eq_ignore_ascii_case(skip) {
                continue;
            }
            out.extend_from_slice(n);
            out.extend_from_slice(b": ");
            out.extend_from_slice(v);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    /// `http.header_names`: `\r\n`, each name followed by `\r\n`, then `\r\n`.
    #[must_use]
    pub fn names(&self) -> Vec<u8> {
        let mut out = b"\r\n".to_vec();
        for (n, _) in self.iter() {
            out.extend_from_slice(n);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    /// `http.start`: the start line, `\r\n`, every field as `Name: value\r\n`, `\r\n`.
    #[must_use]
    pub fn start(&self, line: &[u8]) -> Vec<u8> {
        let mut out = line.to_vec();
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.normalized(b"\0none"));
        out.extend_from_slice(b"\r\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::{Added, HeaderTable};

    /// Expected forms come from Suricata 7.0.10 on a request with these headers (checked with
    /// `bsize`-exact rules): duplicates merge with ", ", names appear once, Cookie is left
    /// out of `http.header` only.
    #[test]
    fn merge_and_buffers() {
        let mut t = HeaderTable::default();
        assert_eq!(t.add(b"Host", b"WWW.Example.COM:8080"), Added::New);
        assert_eq!(t.add(b"User-Agent", b"UA/1"), Added::New);
        assert_eq!(t.add(b"Cookie", b"a=b"), Added::New);
        assert_eq!(t.add(b"X-Dup", b"1"), Added::New);
        assert_eq!(t.add(b"x-dup", b"2"), Added::Merged);
        assert_eq!(t.add(b"X-Fold", b"a\t b"), Added::New);
        assert_eq!(t.add(b"Accept", b"*/*"), Added::New);
        assert_eq!(t.get(b"X-DUP"), Some(&b"1, 2"[..]));
        assert_eq!(
            t.normalized(b"cookie"),
            b"Host: WWW.Example.COM:8080\r\nUser-Agent: UA/1\r\nX-Dup: 1, 2\r\nX-Fold: a\t b\r\nAccept: */*\r\n"
                .to_vec()
        );
        assert_eq!(
            t.names(),
            b"\r\nHost\r\nUser-Agent\r\nCookie\r\nX-Dup\r\nX-Fold\r\nAccept\r\n\r\n".to_vec()
        );
        assert_eq!(
            t.start(b"GET /x HTTP/1.1"),
            b"GET /x HTTP/1.1\r\nHost: WWW.Example.COM:8080\r\nUser-Agent: UA/1\r\nCookie: a=b\r\nX-Dup: 1, 2\r\nX-Fold: a\t b\r\nAccept: */*\r\n\r\n".to_vec()
        );
        let lines = t.field_lines();
        assert_eq!(lines.len(), 6);
        assert_eq!(lines.get(3), Some(&b"X-Dup: 1, 2"[..]));
        assert_eq!(lines.get(2), Some(&b"Cookie: a=b"[..]));
        assert_eq!(lines.get(6), None);
    }

    #[test]
    fn content_length_keeps_first() {
        let mut t = HeaderTable::default();
        t.add(b"Content-Length", b"5");
        assert_eq!(
            t.add(b"content-length", b"5"),
            Added::DuplicateContentLength(false)
        );
        assert_eq!(
            t.add(b"Content-Length", b"7"),
            Added::DuplicateContentLength(true)
        );
        assert_eq!(t.get(b"content-length"), Some(&b"5"[..]));
    }
}
