//! Live capture from a network interface through libpcap (Linux: `AF_PACKET` with a
//! memory-mapped ring).
//!
//! Input: a [`LiveConfig`] (`[capture]` in the sensor config). Output: [`Frame`]s borrowing
//! libpcap's ring until the next call, in arrival order, plus kernel counters
//! ([`LiveStats`]: received, dropped for lack of buffer space, dropped by the interface).
//!
//! Invariants:
//! - [`LiveCapture::next_frame`] never blocks longer than `poll_ms`: `Ok(None)` means "no
//!   packet now", so the caller can check its shutdown flag and call again. The handle is
//!   non-blocking and waits with `poll(2)` on libpcap's descriptor only after libpcap has
//!   reported its buffer empty; an idle link or a filter that rejects everything therefore
//!   cannot hang the caller (a blocking libpcap read on `TPACKET_V3` can).
//! - An interface that goes down or disappears ends the capture with
//!   [`LiveError::Closed`]; frames returned before it are good.
//! - libpcap's counters are 32-bit and wrap; [`LiveCapture::stats`] widens them to 64
//!   bits by adding wrapping deltas, which is exact as long as it is called at least once
//!   per 2^32 packets (the stats interval does that).
//!
//! Caps: `snaplen` ≤ 262,144 bytes (libpcap's maximum; `lo` frames reach 65,549 bytes, so
//! 65,535 would cut them), kernel buffer between 64 KiB and 2 GiB − 1 (libpcap takes an
//! `int`), `poll_ms` between 1 and 10,000.

use std::os::fd::AsRawFd as _;

use serde::Deserialize;

use super::Frame;
use crate::Timestamp;
use crate::decode::LinkType;

/// Largest snaplen libpcap accepts (`MAXIMUM_SNAPLEN`).
pub const MAX_SNAPLEN: u32 = 262_144;

/// Smallest accepted snaplen: Ethernet + IPv6 + TCP headers with room to spare.
pub const MIN_SNAPLEN: u32 = 128;

/// Kernel buffer bounds in bytes.
const MIN_BUFFER_BYTES: u64 = 64 << 10;
const MAX_BUFFER_BYTES: u64 = i32::MAX as u64;

/// `[capture]`: which interface to read and how.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LiveConfig {
    /// Interface name (`eth0`, `ens1f0`, `lo`). Required for live capture.
    pub interface: String,
    /// Bytes kept per frame; longer frames are cut (their wire length is kept).
    pub snaplen: u32,
    /// Kernel ring buffer size in bytes. Bigger absorbs longer bursts before drops.
    pub buffer_bytes: u64,
    /// Put the interface in promiscuous mode (see frames not addressed to this host).
    pub promiscuous: bool,
    /// BPF filter expression (`tcpdump` syntax); empty captures everything.
    pub bpf_filter: String,
    /// Deliver each packet as soon as it arrives instead of in ring blocks (lower latency,
    /// more wakeups; off suits a busy tap).
    pub immediate: bool,
    /// Longest wait inside one [`LiveCapture::next_frame`] call, and libpcap's block timeout
    /// (how long a partly filled ring block waits before delivery), in milliseconds.
    pub poll_ms: u32,
}

impl Default for LiveConfig {
    fn default() -> Self {
        Self {
            interface: String::new(),
            snaplen: MAX_SNAPLEN,
            buffer_bytes: 64 << 20,
            promiscuous: true,
            bpf_filter: String::new(),
            immediate: false,
            poll_ms: 100,
        }
    }
}

impl LiveConfig {
    /// A default config for `interface`.
    #[must_use]
    pub fn for_interface(interface: &str) -> Self {
        Self {
            interface: interface.to_owned(),
            ..Self::default()
        }
    }

    /// Checks every value against its cap.
    ///
    /// # Errors
    /// [`LiveError::Config`] naming the field and the accepted range.
    pub fn validate(&self) -> Result<(), LiveError> {
        let bad = |msg: String| Err(LiveError::Config(msg));
        // IFNAMSIZ is 16 including the terminating NUL.
        if self.interface.is_empty() {
            return bad("capture.interface is empty".to_owned());
        }
        if self.interface.len() > 15
            || self
                .interface
                .bytes()
                .any(|b| b == 0 || b == b'/' || b.is_ascii_whitespace())
        {
            return bad(format!(
                "capture.interface '{}' is not an interface name (at most 15 bytes, no '/', NUL or spaces)",
                self.interface.escape_debug()
            ));
        }
        if !(MIN_SNAPLEN..=MAX_SNAPLEN).contains(&self.snaplen) {
            return bad(format!(
                "capture.snaplen {} is outside {MIN_SNAPLEN}..={MAX_SNAPLEN}",
                self.snaplen
            ));
        }
        if !(MIN_BUFFER_BYTES..=MAX_BUFFER_BYTES).contains(&self.buffer_bytes) {
            return bad(format!(
                "capture.buffer_bytes {} is outside {MIN_BUFFER_BYTES}..={MAX_BUFFER_BYTES}",
                self.buffer_bytes
            ));
        }
        if !(1..=10_000).contains(&self.poll_ms) {
            return bad(format!(
                "capture.poll_ms {} is outside 1..=10000",
                self.poll_ms
            ));
        }
        if self.bpf_filter.contains('\0') {
            return bad("capture.bpf_filter contains a NUL byte".to_owned());
        }
        Ok(())
    }
}

/// Why a live capture could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// A config value is out of range.
    #[error("{0}")]
    Config(String),
    /// libpcap could not open or activate the interface (missing, down, no permission).
    #[error("{iface}: cannot capture: {reason}")]
    Open {
        /// The interface.
        iface: String,
        /// libpcap's message.
        reason: String,
    },
    /// The BPF filter does not compile for this interface.
    #[error("{iface}: bad BPF filter '{filter}': {reason}")]
    Filter {
        /// The interface.
        iface: String,
        /// The filter expression.
        filter: String,
        /// libpcap's message.
        reason: String,
    },
    /// The interface's link type is one the decoder does not know.
    #[error("{iface}: unsupported link type {linktype}")]
    UnsupportedLinkType {
        /// The interface.
        iface: String,
        /// The pcap LINKTYPE number.
        linktype: u32,
    },
    /// The capture ended: the interface went down or disappeared, or reading failed.
    #[error("{iface}: capture ended after {packets} packets: {reason}")]
    Closed {
        /// The interface.
        iface: String,
        /// Frames returned before the end.
        packets: u64,
        /// libpcap's or the kernel's message.
        reason: String,
    },
    /// libpcap could not report its counters.
    #[error("{iface}: reading capture statistics failed: {reason}")]
    Stats {
        /// The interface.
        iface: String,
        /// libpcap's message.
        reason: String,
    },
}

/// Counters of a live capture, 64-bit and cumulative since [`LiveCapture::open`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveStats {
    /// Packets the kernel accepted for this capture (passed the filter), including those
    /// it then had to drop (libpcap `ps_recv`).
    pub received: u64,
    /// Packets dropped because the ring buffer was full: the sensor did not keep up
    /// (`ps_drop`).
    pub dropped: u64,
    /// Packets dropped by the interface or its driver (`ps_ifdrop`; on Linux the
    /// interface's whole rx-dropped count since open).
    pub if_dropped: u64,
    /// Frames returned by [`LiveCapture::next_frame`].
    pub captured: u64,
    /// Captured bytes of those frames.
    pub captured_bytes: u64,
}

/// Widens a wrapping 32-bit counter.
#[derive(Debug, Clone, Copy, Default)]
struct Wide {
    last: u32,
    total: u64,
}

impl Wide {
    fn update(&mut self, now: u32) -> u64 {
        self.total = self
            .total
            .saturating_add(u64::from(now.wrapping_sub(self.last)));
        self.last = now;
        self.total
    }
}

/// An interface opened for capture.
pub struct LiveCapture {
    cap: pcap::Capture<pcap::Active>,
    iface: String,
    linktype: LinkType,
    poll_ms: i32,
    /// libpcap reported its buffer empty on the last read: wait before reading again.
    drained: bool,
    received: Wide,
    dropped: Wide,
    if_dropped: Wide,
    captured: u64,
    captured_bytes: u64,
}

impl std::fmt::Debug for LiveCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveCapture")
            .field("iface", &self.iface)
            .field("linktype", &self.linktype)
            .field("captured", &self.captured)
            .finish_non_exhaustive()
    }
}

/// What waiting on the capture descriptor found.
enum Ready {
    /// Something to read (or an error condition libpcap will report).
    Readable,
    /// Nothing before the timeout (or a signal interrupted the wait).
    Idle,
}

impl LiveCapture {
    /// Opens and activates `cfg.interface` with the configured snaplen, buffer, promiscuous
    /// and immediate modes, then installs the BPF filter. Needs `CAP_NET_RAW` (root).
    ///
    /// # Errors
    /// [`LiveError::Config`] for out-of-range values, [`LiveError::Open`] when libpcap
    /// cannot activate the interface, [`LiveError::Filter`] for a filter that does not
    /// compile, [`LiveError::UnsupportedLinkType`] when the decoder cannot read its frames.
    pub fn open(cfg: &LiveConfig) -> Result<Self, LiveError> {
        cfg.validate()?;
        let iface = cfg.interface.clone();
        let open_err = |e: pcap::Error| LiveError::Open {
            iface: iface.clone(),
            reason: e.to_string(),
        };
        // Ranges checked by validate(): both fit in i32.
        let snaplen = i32::try_from(cfg.snaplen).unwrap_or(i32::MAX);
        let buffer = i32::try_from(cfg.buffer_bytes).unwrap_or(i32::MAX);
        let poll_ms = i32::try_from(cfg.poll_ms).unwrap_or(100);
        let mut cap = pcap::Capture::from_device(iface.as_str())
            .map_err(open_err)?
            .snaplen(snaplen)
            .buffer_size(buffer)
            .promisc(cfg.promiscuous)
            .immediate_mode(cfg.immediate)
            .timeout(poll_ms)
            .open()
            .map_err(open_err)?
            .setnonblock()
            .map_err(open_err)?;
        let raw = u32::try_from(cap.get_datalink().0).unwrap_or(u32::MAX);
        let linktype = LinkType::from_pcap(raw);
        if !linktype.is_supported() {
            return Err(LiveError::UnsupportedLinkType {
                iface,
                linktype: raw,
            });
        }
        if !cfg.bpf_filter.trim().is_empty() {
            cap.filter(&cfg.bpf_filter, true)
                .map_err(|e| LiveError::Filter {
                    iface: iface.clone(),
                    filter: cfg.bpf_filter.clone(),
                    reason: e.to_string(),
                })?;
        }
        tracing::info!(
            iface = %iface,
            linktype = raw,
            snaplen = cfg.snaplen,
            buffer_bytes = cfg.buffer_bytes,
            filter = %cfg.bpf_filter,
            "live capture started"
        );
        Ok(Self {
            cap,
            iface,
            linktype,
            poll_ms,
            drained: false,
            received: Wide::default(),
            dropped: Wide::default(),
            if_dropped: Wide::default(),
            captured: 0,
            captured_bytes: 0,
        })
    }

    /// The interface's link type.
    #[must_use]
    pub fn linktype(&self) -> LinkType {
        self.linktype
    }

    /// The interface name.
    #[must_use]
    pub fn interface(&self) -> &str {
        &self.iface
    }

    /// The next frame, or `Ok(None)` when none arrived within `poll_ms` (or the buffer has
    /// just run empty): check for shutdown, then call again.
    ///
    /// # Errors
    /// [`LiveError::Closed`] when the interface went down or disappeared or libpcap failed;
    /// the capture is over.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, LiveError> {
        if self.drained {
            match self.wait()? {
                Ready::Idle => return Ok(None),
                Ready::Readable => self.drained = false,
            }
        }
        match self.cap.next_packet() {
            Ok(pkt) => {
                self.captured += 1;
                self.captured_bytes = self
                    .captured_bytes
                    .saturating_add(u64::from(pkt.header.caplen));
                let ts = Timestamp::from_secs_micros(pkt.header.ts.tv_sec, pkt.header.ts.tv_usec);
                Ok(Some(Frame {
                    ts,
                    data: pkt.data,
                    wire_len: pkt.header.len,
                }))
            }
            // Non-blocking: nothing buffered. Wait on the descriptor next time.
            Err(pcap::Error::TimeoutExpired) => {
                self.drained = true;
                Ok(None)
            }
            Err(e) => Err(LiveError::Closed {
                iface: self.iface.clone(),
                packets: self.captured,
                reason: e.to_string(),
            }),
        }
    }

    /// Waits up to `poll_ms` for libpcap's descriptor to become readable.
    #[expect(
        unsafe_code,
        reason = "poll(2) on libpcap's descriptor: std has no poll and the pcap crate offers no timed wait"
    )]
    fn wait(&self) -> Result<Ready, LiveError> {
        let mut fds = [libc::pollfd {
            fd: self.cap.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        // SAFETY: `fds` is a valid, initialized array of one pollfd that lives across the
        // call, and its length (1) is passed alongside; the descriptor belongs to
        // `self.cap`, which outlives the call. poll only writes `revents`.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 1, self.poll_ms) };
        if n < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::Interrupted {
                return Ok(Ready::Idle);
            }
            return Err(LiveError::Closed {
                iface: self.iface.clone(),
                packets: self.captured,
                reason: format!("poll: {err}"),
            });
        }
        // Readable, or POLLERR/POLLHUP: libpcap's next read reports what happened.
        Ok(if n == 0 { Ready::Idle } else { Ready::Readable })
    }

    /// Kernel and capture counters, cumulative since [`LiveCapture::open`].
    ///
    /// # Errors
    /// [`LiveError::Stats`] when libpcap cannot read the kernel counters.
    pub fn stats(&mut self) -> Result<LiveStats, LiveError> {
        let s = self.cap.stats().map_err(|e| LiveError::Stats {
            iface: self.iface.clone(),
            reason: e.to_string(),
        })?;
        Ok(LiveStats {
            received: self.received.update(s.received),
            dropped: self.dropped.update(s.dropped),
            if_dropped: self.if_dropped.update(s.if_dropped),
            captured: self.captured,
            captured_bytes: self.captured_bytes,
        })
    }
}

#[cfg(test)]
mod testnet;
#[cfg(test)]
mod tests;
