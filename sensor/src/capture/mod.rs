//! Capture: frames from a pcap file (libpcap, through the `pcap` crate).
//!
//! Output: [`Frame`]s borrowing libpcap's buffer until the next call, in file order, with
//! their timestamp converted to [`Timestamp`] once. A truncated file ends the stream with
//! [`CaptureError::Truncated`] after the last whole packet, so callers keep what was read.
//! Live capture from an interface: [`live`].

pub mod live;

use std::path::{Path, PathBuf};

use crate::Timestamp;
use crate::decode::LinkType;

/// One captured frame.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// Capture time.
    pub ts: Timestamp,
    /// The captured bytes (possibly cut by the snaplen).
    pub data: &'a [u8],
    /// The frame's length on the wire.
    pub wire_len: u32,
}

/// Why a capture could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The file does not exist or cannot be read.
    #[error("{path}: cannot open: {reason}")]
    Open {
        /// The file.
        path: PathBuf,
        /// libpcap's message.
        reason: String,
    },
    /// libpcap could not read the file as pcap or pcapng.
    #[error("{path}: not a pcap/pcapng file: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// libpcap's message.
        reason: String,
    },
    /// The file ends in the middle of a packet record.
    #[error("{path}: truncated after packet {packets}: {reason}")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Whole packets read before the damage.
        packets: u64,
        /// libpcap's message.
        reason: String,
    },
    /// The capture's link type is one the decoder does not know.
    #[error("{path}: unsupported link type {linktype}")]
    UnsupportedLinkType {
        /// The file.
        path: PathBuf,
        /// The pcap LINKTYPE number.
        linktype: u32,
    },
}

/// A pcap or pcapng file opened for reading.
pub struct PcapFile {
    cap: pcap::Capture<pcap::Offline>,
    path: PathBuf,
    linktype: LinkType,
    file_len: u64,
    bytes_read: u64,
    packets: u64,
}

impl std::fmt::Debug for PcapFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcapFile")
            .field("path", &self.path)
            .field("linktype", &self.linktype)
            .field("packets", &self.packets)
            .finish_non_exhaustive()
    }
}

impl PcapFile {
    /// Opens `path`.
    ///
    /// # Errors
    /// [`CaptureError::Open`] when the file is missing or unreadable,
    /// [`CaptureError::Format`] when it is not pcap/pcapng,
    /// [`CaptureError::UnsupportedLinkType`] when the decoder cannot handle its link type.
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        let meta = std::fs::metadata(path).map_err(|e| CaptureError::Open {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        if meta.is_dir() {
            return Err(CaptureError::Open {
                path: path.to_owned(),
                reason: "is a directory".to_owned(),
            });
        }
        let cap = pcap::Capture::from_file(path).map_err(|e| CaptureError::Format {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let raw = u32::try_from(cap.get_datalink().0).unwrap_or(u32::MAX);
        let linktype = LinkType::from_pcap(raw);
        if !linktype.is_supported() {
            return Err(CaptureError::UnsupportedLinkType {
                path: path.to_owned(),
                linktype: raw,
            });
        }
        Ok(Self {
            cap,
            path: path.to_owned(),
            linktype,
            file_len: meta.len(),
            bytes_read: 24,
            packets: 0,
        })
    }

    /// The capture's link type.
    #[must_use]
    pub fn linktype(&self) -> LinkType {
        self.linktype
    }

    /// File size in bytes (for progress).
    #[must_use]
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// Approximate bytes of the file consumed so far (record headers + captured bytes).
    #[must_use]
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// The next frame, `None` at the end of the file.
    ///
    /// # Errors
    /// [`CaptureError::Truncated`] when the file ends inside a record; frames returned
    /// before it are good.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        match self.cap.next_packet() {
            Ok(pkt) => {
                self.packets += 1;
                let caplen = u64::from(pkt.header.caplen);
                self.bytes_read = self.bytes_read.saturating_add(16 + caplen);
                let ts = Timestamp::from_secs_micros(pkt.header.ts.tv_sec, pkt.header.ts.tv_usec);
                Ok(Some(Frame {
                    ts,
                    data: pkt.data,
                    wire_len: pkt.header.len,
                }))
            }
            Err(pcap::Error::NoMorePackets) => Ok(None),
            Err(e) => Err(CaptureError::Truncated {
                path: self.path.clone(),
                packets: self.packets,
                reason: e.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A classic pcap: global header (LINKTYPE_RAW) and one 28-byte IPv4/UDP record.
    fn tiny_pcap() -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        f.extend_from_slice(&2u16.to_le_bytes());
        f.extend_from_slice(&4u16.to_le_bytes());
        f.extend_from_slice(&0i32.to_le_bytes());
        f.extend_from_slice(&0u32.to_le_bytes());
        f.extend_from_slice(&65535u32.to_le_bytes());
        f.extend_from_slice(&101u32.to_le_bytes());
        let pkt: [u8; 28] = [
            0x45, 0, 0, 28, 0, 1, 0, 0, 64, 17, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 0, 53, 0, 53, 0, 8,
            0, 0,
        ];
        f.extend_from_slice(&1_279_129_243u32.to_le_bytes());
        f.extend_from_slice(&727_475u32.to_le_bytes());
        f.extend_from_slice(&28u32.to_le_bytes());
        f.extend_from_slice(&28u32.to_le_bytes());
        f.extend_from_slice(&pkt);
        f
    }

    #[test]
    fn reads_frames_and_converts_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("one.pcap");
        std::fs::write(&path, tiny_pcap()).unwrap();
        let mut file = PcapFile::open(&path).unwrap();
        assert_eq!(file.linktype(), LinkType::Raw);
        let frame = file.next_frame().unwrap().unwrap();
        assert_eq!(frame.data.len(), 28);
        assert_eq!(frame.ts.to_string(), "2010-07-14T17:40:43.727475+0000");
        assert!(file.next_frame().unwrap().is_none());
    }

    #[test]
    fn truncated_file_keeps_earlier_packets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cut.pcap");
        let mut bytes = tiny_pcap();
        bytes.extend_from_slice(&tiny_pcap()[24..24 + 16 + 10]); // second record cut short
        std::fs::write(&path, bytes).unwrap();
        let mut file = PcapFile::open(&path).unwrap();
        assert!(file.next_frame().unwrap().is_some());
        let err = file.next_frame().unwrap_err();
        assert!(
            matches!(err, CaptureError::Truncated { packets: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn clear_errors_for_missing_and_garbage_files() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pcap");
        assert!(matches!(
            PcapFile::open(&missing),
            Err(CaptureError::Open { .. })
        ));
        let garbage = dir.path().join("garbage.pcap");
        std::fs::write(&garbage, b"this is not a capture file at all").unwrap();
        let err = PcapFile::open(&garbage).unwrap_err();
        assert!(matches!(err, CaptureError::Format { .. }), "{err}");
        assert!(err.to_string().contains("garbage.pcap"));
    }
}
