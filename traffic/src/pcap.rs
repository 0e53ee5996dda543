//! Classic pcap (not pcapng) writing: microsecond timestamps, LINKTYPE_ETHERNET.

use std::io::{self, Write};

use crate::packet::Frame;

/// Writes frames to a classic pcap stream.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    /// Frames written.
    pub frames: u64,
    /// Bytes of frame data written.
    pub bytes: u64,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header (version 2.4, snaplen 262144, Ethernet).
    ///
    /// # Errors
    /// The I/O error from `out`.
    pub fn new(mut out: W) -> io::Result<Self> {
        out.write_all(&0xa1b2_c3d4_u32.to_le_bytes())?;
        out.write_all(&2u16.to_le_bytes())?;
        out.write_all(&4u16.to_le_bytes())?;
        out.write_all(&0i32.to_le_bytes())?;
        out.write_all(&0u32.to_le_bytes())?;
        out.write_all(&262_144u32.to_le_bytes())?;
        out.write_all(&1u32.to_le_bytes())?;
        Ok(Self {
            out,
            frames: 0,
            bytes: 0,
        })
    }

    /// Appends one frame.
    ///
    /// # Errors
    /// The I/O error from the underlying writer, or `InvalidInput` for a frame over 4 GiB.
    pub fn write(&mut self, frame: &Frame) -> io::Result<()> {
        let secs = frame.ts_micros.div_euclid(1_000_000);
        let micros = frame.ts_micros.rem_euclid(1_000_000);
        let len = u32::try_from(frame.data.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
        let secs = u32::try_from(secs).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, "timestamp outside pcap range")
        })?;
        self.out.write_all(&secs.to_le_bytes())?;
        self.out
            .write_all(&u32::try_from(micros).unwrap_or(0).to_le_bytes())?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(&frame.data)?;
        self.frames += 1;
        self.bytes += u64::from(len);
        Ok(())
    }

    /// Flushes and returns the writer.
    ///
    /// # Errors
    /// The I/O error from flushing.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}
