//! Buffer transforms (`dotprefix`, `to_lowercase`, `url_decode`, ...), applied in rule
//! order to a sticky buffer before its match list runs. Each produces a new buffer; the
//! engine caches the result per (buffer, transform chain) for one inspection round.

use md5::Digest as _;

use super::rule::ast::Transform;

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Applies `transforms` to `input`.
#[must_use]
pub fn apply(transforms: &[Transform], input: &[u8]) -> Vec<u8> {
    let mut buf = input.to_vec();
    for t in transforms {
        buf = apply_one(t, &buf);
    }
    buf
}

fn apply_one(t: &Transform, b: &[u8]) -> Vec<u8> {
    match t {
        Transform::DotPrefix => {
            let mut out = Vec::with_capacity(b.len() + 1);
            out.push(b'.');
            out.extend_from_slice(b);
            out
        }
        Transform::ToLowercase => b.to_ascii_lowercase(),
        Transform::ToUppercase => b.to_ascii_uppercase(),
        Transform::StripWhitespace => b.iter().copied().filter(|&c| !is_space(c)).collect(),
        Transform::CompressWhitespace => {
            let mut out = Vec::with_capacity(b.len());
            let mut prev_space = false;
            for &c in b {
                if is_space(c) {
                    if !prev_space {
                        out.push(b' ');
                    }
                    prev_space = true;
                } else {
                    out.push(c);
                    prev_space = false;
                }
            }
            out
        }
        Transform::UrlDecode => url_decode(b),
        Transform::ToMd5 => md5::Md5::digest(b).to_vec(),
        Transform::ToSha1 => sha1::Sha1::digest(b).to_vec(),
        Transform::ToSha256 => sha2::Sha256::digest(b).to_vec(),
        Transform::HeaderLowercase => header_lowercase(b),
        Transform::StripPseudoHeaders => {
            let mut out = Vec::with_capacity(b.len());
            for line in b.split_inclusive(|&c| c == b'\n') {
                if !line.starts_with(b":") {
                    out.extend_from_slice(line);
                }
            }
            out
        }
        Transform::Xor(key) => b
            .iter()
            .zip(key.iter().cycle())
            .map(|(x, k)| x ^ k)
            .collect(),
    }
}

/// `%HH` to the byte, `+` to a space; malformed escapes stay as they are.
fn url_decode(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hex = b.get(i + 1..i + 3).and_then(|h| {
                    let s = std::str::from_utf8(h).ok()?;
                    u8::from_str_radix(s, 16).ok()
                });
                if let Some(v) = hex {
                    out.push(v);
                    i += 3;
                } else {
                    out.push(c);
                    i += 1;
                }
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Lower-cases header names (up to the first `:` of each line), values untouched.
fn header_lowercase(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut in_name = true;
    for &c in b {
        if in_name {
            if c == b':' {
                in_name = false;
            }
            out.push(c.to_ascii_lowercase());
        } else {
            if c == b'\n' {
                in_name = true;
            }
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases: &[(&[Transform], &[u8], &[u8])] = &[
            (&[Transform::DotPrefix], b"evil.com", b".evil.com"),
            (&[Transform::ToLowercase], b"AbC", b"abc"),
            (&[Transform::ToUppercase], b"AbC", b"ABC"),
            (&[Transform::StripWhitespace], b" a b\t\r\nc ", b"abc"),
            (&[Transform::CompressWhitespace], b"a  b\t\t c", b"a b c"),
            (&[Transform::UrlDecode], b"a%20b+c%zz%4", b"a b c%zz%4"),
            (
                &[Transform::HeaderLowercase],
                b"Host: EX.com\r\nUser-Agent: X\r\n",
                b"host: EX.com\r\nuser-agent: X\r\n",
            ),
            (
                &[Transform::StripPseudoHeaders],
                b":method: GET\r\nhost: x\r\n",
                b"host: x\r\n",
            ),
            (
                &[Transform::Xor(vec![0x01, 0x02])],
                b"\x00\x00\x03",
                b"\x01\x02\x02",
            ),
            (
                &[Transform::ToLowercase, Transform::DotPrefix],
                b"A.B",
                b".a.b",
            ),
        ];
        for (ts, input, want) in cases {
            assert_eq!(apply(ts, input), *want, "{ts:?}");
        }
    }

    #[test]
    fn digests() {
        // RFC 1321 / FIPS 180 test vectors for "abc".
        assert_eq!(
            hex::encode(apply(&[Transform::ToMd5], b"abc")),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(
            hex::encode(apply(&[Transform::ToSha1], b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex::encode(apply(&[Transform::ToSha256], b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
