//! Streaming `gzip` / `deflate` body decoding with a hard output limit.
//!
//! Input: body bytes in arrival order (any chunking) and the `Content-Encoding` value.
//! Output: decoded bytes appended to the caller's buffer, never more than the caller's room.
//! Semantics: codings are undone in reverse order of the header (`gzip, deflate` is inflated
//! first, then gunzipped); `x-gzip`/`x-deflate` are aliases; `deflate` accepts both zlib-wrapped
//! and raw streams (browsers do; libhtp too); `identity` is ignored; an unknown coding
//! disables decoding (the body is kept as sent). When a stream turns out to be corrupt, the
//! decoder reports it once and passes the remaining bytes through unchanged, as libhtp does.
//! Invariants: output per call is bounded by the room given (so a compression bomb costs at
//! most `room` bytes and the CPU to produce them); gzip headers are parsed here, not trusted.
//! Caps: at most `max_layers` codings (Suricata's `decompress-layer-limit`, 2); a gzip header
//! (with name/comment/extra fields) of at most 64 KiB.

use flate2::{Decompress, FlushDecompress, Status};

/// A content coding this decoder undoes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// RFC 1952.
    Gzip,
    /// RFC 1950 (zlib) or raw RFC 1951.
    Deflate,
}

/// Why a `Content-Encoding` value is not decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodingError {
    /// More layers than allowed.
    TooManyLayers,
    /// A coding this decoder does not know.
    Unknown,
}

/// Parses a `Content-Encoding` value into the codings to undo, outermost first.
///
/// # Errors
/// [`CodingError`] when decoding should not be attempted.
pub fn parse_codings(value: &[u8], max_layers: usize) -> Result<Vec<Coding>, CodingError> {
    let mut out = Vec::new();
    for token in value.split(|&b| b == b',') {
        let t = super::parser::trim_by(token, super::parser::is_space).to_ascii_lowercase();
        let c = match t.as_slice() {
            b"gzip" | b"x-gzip" => Coding::Gzip,
            b"deflate" | b"x-deflate" => Coding::Deflate,
            b"identity" | b"" => continue,
            _ => return Err(CodingError::Unknown),
        };
        if out.len() >= max_layers {
            return Err(CodingError::TooManyLayers);
        }
        out.push(c);
    }
    out.reverse();
    Ok(out)
}

const MAX_GZIP_HEADER: usize = 64 * 1024;

#[derive(Debug)]
enum Stage {
    /// Collecting the first bytes (gzip header, or 2 bytes to tell zlib from raw deflate).
    Head(Vec<u8>),
    Inflate(Decompress),
    /// The stream ended; trailing bytes are ignored.
    Done,
    /// Corrupt stream: bytes go through unchanged.
    Passthrough,
}

#[derive(Debug)]
struct Layer {
    coding: Coding,
    stage: Stage,
}

/// Outcome of [`BodyDecoder::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PushResult {
    /// A layer found a corrupt stream during this call (reported once per layer).
    pub failed: bool,
    /// Output stopped because the room ran out.
    pub limit_reached: bool,
}

/// Length of a complete gzip header at the front of `h`, `Ok(None)` if more bytes are needed.
fn gzip_header_len(h: &[u8]) -> Result<Option<usize>, ()> {
    let Some(fixed) = h.first_chunk::<10>() else {
        return if h.iter().zip([0x1f, 0x8b, 8]).all(|(a, b)| *a == b) {
            Ok(None)
        } else {
            Err(())
        };
    };
    if fixed[0] != 0x1f || fixed[1] != 0x8b || fixed[2] != 8 {
        return Err(());
    }
    let flags = fixed[3];
    let mut pos = 10usize;
    if flags & 0x04 != 0 {
        let Some(x) = h.get(pos..).and_then(<[u8]>::first_chunk::<2>) else {
            return Ok(None);
        };
        pos += 2 + usize::from(u16::from_le_bytes(*x));
    }
    for bit in [0x08u8, 0x10] {
        if flags & bit != 0 {
            let Some(tail) = h.get(pos..) else {
                return Ok(None);
            };
            match memchr::memchr(0, tail) {
                Some(z) => pos += z + 1,
                None => return Ok(None),
            }
        }
    }
    if flags & 0x02 != 0 {
        pos += 2;
    }
    Ok((h.len() >= pos).then_some(pos))
}

/// Runs `d` over `input`, appending at most `*room` bytes to `out`. Returns true at stream
/// end.
fn inflate(
    d: &mut Decompress,
    mut input: &[u8],
    out: &mut Vec<u8>,
    room: &mut usize,
) -> Result<bool, ()> {
    let mut buf = [0u8; 8192];
    loop {
        if *room == 0 {
            return Ok(false);
        }
        let want = buf.len().min(*room);
        let Some(window) = buf.get_mut(..want) else {
            return Err(());
        };
        let (in0, out0) = (d.total_in(), d.total_out());
        let status = d
            .decompress(input, window, FlushDecompress::None)
            .map_err(|_| ())?;
        let consumed = usize::try_from(d.total_in() - in0).unwrap_or(usize::MAX);
        let produced = usize::try_from(d.total_out() - out0).unwrap_or(0);
        out.extend_from_slice(window.get(..produced).unwrap_or_default());
        *room = room.saturating_sub(produced);
        input = input.get(consumed..).unwrap_or_default();
        if status == Status::StreamEnd {
            return Ok(true);
        }
        if consumed == 0 && produced == 0 {
            return Ok(false);
        }
    }
}

impl Layer {
    /// Decodes `input` into `out` (at most `*room` bytes). Returns true if the stream was found
    /// corrupt during this call.
    fn push(&mut self, input: &[u8], out: &mut Vec<u8>, room: &mut usize) -> bool {
        let mut input = input;
        let head_buf;
        if let Stage::Head(h) = &mut self.stage {
            h.extend_from_slice(input);
            let decided = match self.coding {
                Coding::Gzip => match gzip_header_len(h) {
                    Ok(Some(n)) => Some(Ok((Decompress::new(false), n))),
                    Ok(None) if h.len() <= MAX_GZIP_HEADER => None,
                    _ => Some(Err(())),
                },
                Coding::Deflate => match h.first_chunk::<2>() {
                    Some(&[cmf, flg]) => {
                        let zlib =
                            cmf & 0x0f == 8 && (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0;
                        Some(Ok((Decompress::new(zlib), 0)))
                    }
                    None => None,
                },
            };
            match decided {
                None => return false,
                Some(Err(())) => {
                    head_buf = std::mem::take(h);
                    self.stage = Stage::Passthrough;
                    pass(&head_buf, out, room);
                    return true;
                }
                Some(Ok((d, skip))) => {
                    head_buf = std::mem::take(h);
                    self.stage = Stage::Inflate(d);
                    input = head_buf.get(skip..).unwrap_or_default();
                }
            }
        }
        match &mut self.stage {
            Stage::Inflate(d) => match inflate(d, input, out, room) {
                Ok(true) => {
                    self.stage = Stage::Done;
                    false
                }
                Ok(false) => false,
                Err(()) => {
                    self.stage = Stage::Passthrough;
                    pass(input, out, room);
                    true
                }
            },
            Stage::Passthrough => {
                pass(input, out, room);
                false
            }
            Stage::Done | Stage::Head(_) => false,
        }
    }
}

fn pass(input: &[u8], out: &mut Vec<u8>, room: &mut usize) {
    let n = input.len().min(*room);
    out.extend_from_slice(input.get(..n).unwrap_or_default());
    *room -= n;
}

/// A chain of decoders for one message body.
#[derive(Debug)]
pub struct BodyDecoder {
    layers: Vec<Layer>,
}

impl BodyDecoder {
    /// A decoder undoing `codings` (outermost first, as [`parse_codings`] returns them).
    #[must_use]
    pub fn new(codings: &[Coding]) -> Self {
        Self {
            layers: codings
                .iter()
                .map(|&coding| Layer {
                    coding,
                    stage: Stage::Head(Vec::new()),
                })
                .collect(),
        }
    }

    /// Decodes `input`, appending at most `room` bytes to `out`.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>, room: usize) -> PushResult {
        let mut res = PushResult::default();
        let Some((first, rest)) = self.layers.split_first_mut() else {
            let mut r = room;
            pass(input, out, &mut r);
            return res;
        };
        if rest.is_empty() {
            let mut r = room;
            res.failed = first.push(input, out, &mut r);
            res.limit_reached = r == 0;
            return res;
        }
        // Inner layers see the outer layer's output; every stage is bounded by `room`.
        let mut r = room;
        let mut data = Vec::new();
        res.failed |= first.push(input, &mut data, &mut r);
        res.limit_reached |= r == 0;
        for layer in rest {
            let mut next = Vec::new();
            let mut r = room;
            res.failed |= layer.push(&data, &mut next, &mut r);
            res.limit_reached |= r == 0;
            data = next;
        }
        let take = data.len().min(room);
        out.extend_from_slice(data.get(..take).unwrap_or_default());
        res
    }
}

#[cfg(test)]
mod tests {
    use super::{BodyDecoder, Coding, CodingError, parse_codings};
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn zl(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn raw(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn decode(codings: &[Coding], body: &[u8], step: usize, room: usize) -> Vec<u8> {
        let mut d = BodyDecoder::new(codings);
        let mut out = Vec::new();
        for c in body.chunks(step.max(1)) {
            let left = room - out.len();
            d.push(c, &mut out, left);
        }
        out
    }

    #[test]
    fn codings() {
        assert_eq!(parse_codings(b"gzip", 2), Ok(vec![Coding::Gzip]));
        assert_eq!(parse_codings(b"X-Gzip", 2), Ok(vec![Coding::Gzip]));
        assert_eq!(
            parse_codings(b"gzip, deflate", 2),
            Ok(vec![Coding::Deflate, Coding::Gzip])
        );
        assert_eq!(parse_codings(b"identity", 2), Ok(vec![]));
        assert_eq!(parse_codings(b"br", 2), Err(CodingError::Unknown));
        assert_eq!(
            parse_codings(b"gzip,gzip,gzip", 2),
            Err(CodingError::TooManyLayers)
        );
    }

    #[test]
    fn all_formats_any_chunking() {
        let text = b"hello gzip world ".repeat(50);
        for (coding, body) in [
            (Coding::Gzip, gz(&text)),
            (Coding::Deflate, zl(&text)),
            (Coding::Deflate, raw(&text)),
        ] {
            for step in [1, 3, 7, 64, 100_000] {
                assert_eq!(
                    decode(&[coding], &body, step, 1 << 20),
                    text,
                    "{coding:?} step {step}"
                );
            }
        }
        let double = zl(&gz(&text));
        assert_eq!(
            decode(
                &parse_codings(b"gzip, deflate", 2).unwrap(),
                &double,
                5,
                1 << 20
            ),
            text
        );
    }

    #[test]
    fn bomb_is_capped() {
        let zeros = vec![0u8; 10 << 20];
        let body = gz(&zeros);
        assert!(body.len() < 20_000);
        let out = decode(&[Coding::Gzip], &body, 4096, 100_000);
        assert_eq!(out.len(), 100_000);
    }

    #[test]
    fn corrupt_stream_passes_through() {
        let mut d = BodyDecoder::new(&[Coding::Gzip]);
        let mut out = Vec::new();
        let r = d.push(b"not gzip at all", &mut out, 1000);
        assert!(r.failed);
        assert_eq!(out, b"not gzip at all".to_vec());
        let r = d.push(b" more", &mut out, 1000);
        assert!(!r.failed);
        assert_eq!(out, b"not gzip at all more".to_vec());
    }
}
