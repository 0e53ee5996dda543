//! Request body decoding: `Content-Encoding` identity, gzip or zstd, with a cap on the
//! decoded size enforced while inflating (a 1 KiB zstd bomb cannot allocate 10 GiB).

use std::io::Read;

/// A supported `Content-Encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// No compression.
    Identity,
    /// RFC 1952 gzip.
    Gzip,
    /// RFC 8878 zstd.
    Zstd,
}

impl Encoding {
    /// Maps a `Content-Encoding` header value (absent = identity).
    ///
    /// # Errors
    /// [`BodyError::UnsupportedEncoding`] for anything else (`br`, `deflate`, lists).
    pub fn from_header(value: Option<&str>) -> Result<Self, BodyError> {
        match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("" | "identity") => Ok(Self::Identity),
            Some("gzip" | "x-gzip") => Ok(Self::Gzip),
            Some("zstd") => Ok(Self::Zstd),
            Some(other) => Err(BodyError::UnsupportedEncoding(
                other.chars().take(40).collect(),
            )),
        }
    }
}

/// Why a body could not be decoded as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// `Content-Encoding` other than identity, gzip or zstd.
    #[error("unsupported Content-Encoding '{0}' (use gzip, zstd or none)")]
    UnsupportedEncoding(String),
    /// The compressed stream is corrupt or truncated.
    #[error("body is not valid {encoding}: {message}")]
    Corrupt {
        /// `gzip` or `zstd`.
        encoding: &'static str,
        /// The decoder's message.
        message: String,
    },
    /// The decoded body is larger than allowed.
    #[error("decoded body exceeds {max} bytes")]
    TooLarge {
        /// The limit.
        max: usize,
    },
}

/// Decodes `body` per `encoding`, failing once more than `max_decoded` bytes come out.
///
/// # Errors
/// [`BodyError::Corrupt`] or [`BodyError::TooLarge`].
pub fn decode_body(
    body: &[u8],
    encoding: Encoding,
    max_decoded: usize,
) -> Result<Vec<u8>, BodyError> {
    match encoding {
        Encoding::Identity => {
            if body.len() > max_decoded {
                return Err(BodyError::TooLarge { max: max_decoded });
            }
            Ok(body.to_vec())
        }
        Encoding::Gzip => read_capped(flate2::read::MultiGzDecoder::new(body), "gzip", max_decoded),
        Encoding::Zstd => {
            let dec = zstd::stream::read::Decoder::new(body).map_err(|e| BodyError::Corrupt {
                encoding: "zstd",
                message: e.to_string(),
            })?;
            read_capped(dec, "zstd", max_decoded)
        }
    }
}

fn read_capped(
    reader: impl Read,
    encoding: &'static str,
    max: usize,
) -> Result<Vec<u8>, BodyError> {
    let mut out = Vec::new();
    // Read one byte past the cap to tell "exactly max" from "more".
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    reader
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| BodyError::Corrupt {
            encoding,
            message: e.to_string(),
        })?;
    if out.len() > max {
        return Err(BodyError::TooLarge { max });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn encodings_round_trip_and_cap() {
        let text = b"line one\nline two\n".repeat(100);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&text).unwrap();
        let gz = gz.finish().unwrap();
        let zs = zstd::encode_all(&text[..], 3).unwrap();
        for (enc, data) in [
            (Encoding::Identity, text.clone()),
            (Encoding::Gzip, gz.clone()),
            (Encoding::Zstd, zs.clone()),
        ] {
            assert_eq!(decode_body(&data, enc, text.len()).unwrap(), text);
            assert_eq!(
                decode_body(&data, enc, text.len() - 1),
                Err(BodyError::TooLarge {
                    max: text.len() - 1
                })
            );
        }
        assert!(matches!(
            decode_body(&gz[..gz.len() / 2], Encoding::Gzip, 1 << 20),
            Err(BodyError::Corrupt {
                encoding: "gzip",
                ..
            })
        ));
        assert!(matches!(
            decode_body(b"not zstd", Encoding::Zstd, 1 << 20),
            Err(BodyError::Corrupt {
                encoding: "zstd",
                ..
            })
        ));
    }

    #[test]
    fn bomb_is_stopped_at_the_cap() {
        // 64 MiB of zeros compress to a few KiB; the cap stops decoding at 1 MiB + 1.
        let zeros = vec![0u8; 64 << 20];
        let zs = zstd::encode_all(&zeros[..], 3).unwrap();
        assert!(zs.len() < 64 << 10);
        assert_eq!(
            decode_body(&zs, Encoding::Zstd, 1 << 20),
            Err(BodyError::TooLarge { max: 1 << 20 })
        );
    }

    #[test]
    fn header_values() {
        assert_eq!(Encoding::from_header(None), Ok(Encoding::Identity));
        assert_eq!(Encoding::from_header(Some("GZIP")), Ok(Encoding::Gzip));
        assert_eq!(Encoding::from_header(Some("zstd")), Ok(Encoding::Zstd));
        assert!(Encoding::from_header(Some("br")).is_err());
    }
}
