//! JA3 and JA3S TLS fingerprints, as defined by their authors (Salesforce, 2017).
//!
//! Input: a parsed [`ClientHello`] or [`ServerHello`].
//! Output: the JA3 string `SSLVersion,Ciphers,Extensions,EllipticCurves,EllipticCurvePointFormats`
//! (decimal values, `-` inside a field, `,` between fields) and its MD5 as 32 lowercase hex
//! digits; JA3S is `SSLVersion,Cipher,Extensions` for the ServerHello.
//! Invariants: GREASE values (RFC 8701: `0x?a?a` with equal bytes) are left out of every list;
//! the version is the hello's `legacy_version` field; empty lists give empty fields.

use std::fmt::Write as _;

use md5::{Digest, Md5};

use super::parser::{ClientHello, ServerHello, parse_u8_list, parse_u16_list};

/// RFC 8701 GREASE value: both bytes equal, low nibble of each 0xa.
#[must_use]
pub fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

fn join<T: std::fmt::Display>(out: &mut String, items: impl Iterator<Item = T>) {
    for (i, v) in items.enumerate() {
        if i > 0 {
            out.push('-');
        }
        // Writing into a String cannot fail.
        let _ = write!(out, "{v}");
    }
}

/// The JA3 string of a ClientHello.
#[must_use]
pub fn ja3_string(ch: &ClientHello<'_>) -> String {
    let mut s = String::with_capacity(128);
    let _ = write!(s, "{},", ch.version);
    join(&mut s, ch.ciphers.iter().filter(|c| !is_grease(**c)));
    s.push(',');
    join(
        &mut s,
        ch.extensions
            .iter()
            .map(|e| e.ext_type)
            .filter(|t| !is_grease(*t)),
    );
    s.push(',');
    let curves = ch
        .extensions
        .iter()
        .find(|e| e.ext_type == 10)
        .map(|e| parse_u16_list(e.data))
        .unwrap_or_default();
    join(&mut s, curves.iter().filter(|c| !is_grease(**c)));
    s.push(',');
    let formats = ch
        .extensions
        .iter()
        .find(|e| e.ext_type == 11)
        .map(|e| parse_u8_list(e.data))
        .unwrap_or_default();
    join(&mut s, formats.iter());
    s
}

/// The JA3S string of a ServerHello.
#[must_use]
pub fn ja3s_string(sh: &ServerHello<'_>) -> String {
    let mut s = String::with_capacity(64);
    let _ = write!(s, "{},{},", sh.version, sh.cipher);
    join(
        &mut s,
        sh.extensions
            .iter()
            .map(|e| e.ext_type)
            .filter(|t| !is_grease(*t)),
    );
    s
}

/// MD5 of `s` as 32 lowercase hex digits.
#[must_use]
pub fn md5_hex(s: &str) -> String {
    hex::encode(Md5::digest(s.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::{is_grease, ja3_string, ja3s_string, md5_hex};
    use crate::applayer::tls::parser::{ClientHello, Extension, ServerHello};

    #[test]
    fn grease_values() {
        for v in [0x0a0a, 0x1a1a, 0x2a2a, 0xfafa] {
            assert!(is_grease(v), "{v:#x}");
        }
        for v in [0x0a1a, 0x0303, 0xc02f, 0x000a, 0x0a0b] {
            assert!(!is_grease(v), "{v:#x}");
        }
    }

    #[test]
    fn md5_known_vector() {
        // RFC 1321 test suite: MD5("abc").
        assert_eq!(md5_hex("abc"), "900150983cd24fb0d6963f7d28e17f72");
    }

    #[test]
    fn ja3_drops_grease_and_keeps_order() {
        let groups = [0x00, 0x06, 0x2a, 0x2a, 0x00, 0x17, 0x00, 0x18]; // len 6: GREASE, 23, 24
        let formats = [0x01, 0x00]; // len 1: uncompressed
        let ch = ClientHello {
            version: 0x0303,
            session_id: &[],
            ciphers: vec![0x1a1a, 0xc02b, 0x002f],
            extensions: vec![
                Extension {
                    ext_type: 0x3a3a,
                    data: &[],
                },
                Extension {
                    ext_type: 0,
                    data: &[],
                },
                Extension {
                    ext_type: 10,
                    data: &groups,
                },
                Extension {
                    ext_type: 11,
                    data: &formats,
                },
            ],
        };
        assert_eq!(ja3_string(&ch), "771,49195-47,0-10-11,23-24,0");
        let empty = ClientHello {
            version: 0x0301,
            ..ClientHello::default()
        };
        assert_eq!(ja3_string(&empty), "769,,,,");
        let sh = ServerHello {
            version: 0x0303,
            random: &[],
            session_id: &[],
            cipher: 0xc02f,
            extensions: vec![
                Extension {
                    ext_type: 0xff01,
                    data: &[],
                },
                Extension {
                    ext_type: 0,
                    data: &[],
                },
            ],
        };
        assert_eq!(ja3s_string(&sh), "771,49199,65281-0");
    }
}
