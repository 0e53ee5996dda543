//! Test support: a veth pair whose far end sits in a network namespace the test creates,
//! and `tcpreplay` inside that namespace. Shared by the live capture unit tests and the
//! CLI-level live test (`tests/sensor/live.rs` includes this file by path), so both set up
//! the link the same way. Only `std` and the `ip`/`tcpreplay` commands are used.

#![allow(
    dead_code,
    reason = "each including test module uses a different subset"
)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test support: a failure is a test failure"
)]

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// A network namespace holding `peer`, one end of a veth pair whose other end, `host`,
/// stays in the test's own namespace. Both ends are up with MTU 65535. Deleting the
/// namespace (on drop) destroys the pair.
pub struct VethNs {
    /// The namespace.
    pub ns: String,
    /// The end in the test's namespace (capture here).
    pub host: String,
    /// The end inside the namespace (replay from here).
    pub peer: String,
}

pub fn run(cmd: &mut Command) -> Result<Output, String> {
    let shown = format!("{cmd:?}");
    let out = cmd.output().map_err(|e| format!("{shown}: {e}"))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!(
            "{shown}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl VethNs {
    /// Creates the namespace and the pair, or says why it cannot.
    pub fn create() -> Result<Self, String> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{}{n}", std::process::id() % 1_000_000);
        let me = Self {
            ns: format!("tocsin-live-{tag}"),
            host: format!("tl{tag}h"),
            peer: format!("tl{tag}p"),
        };
        run(Command::new("ip").args(["netns", "add", &me.ns]))?;
        // From here on, dropping `me` cleans up.
        run(Command::new("ip").args([
            "link", "add", &me.host, "type", "veth", "peer", "name", &me.peer, "netns", &me.ns,
        ]))?;
        // The host end must not send anything of its own (IPv6 router solicitations).
        let _ = std::fs::write(
            format!("/proc/sys/net/ipv6/conf/{}/disable_ipv6", me.host),
            "1",
        );
        run(Command::new("ip").args(["link", "set", &me.host, "mtu", "65535", "up"]))?;
        run(Command::new("ip").args(["-n", &me.ns, "link", "set", &me.peer, "mtu", "65535", "up"]))?;
        Ok(me)
    }

    /// Sends `pcap` out of the namespace end with tcpreplay, as fast as possible.
    pub fn replay(&self, pcap: &Path) -> Result<String, String> {
        let out = run(Command::new("ip").args([
            "netns",
            "exec",
            &self.ns,
            "tcpreplay",
            "--topspeed",
            "-i",
            &self.peer,
            &pcap.to_string_lossy(),
        ]))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for VethNs {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
    }
}

/// A veth pair in a fresh namespace, or `None` after printing why the test is skipped.
pub fn veth_or_skip(test: &str) -> Option<VethNs> {
    if Command::new("tcpreplay").arg("--version").output().is_err() {
        eprintln!("SKIP {test}: tcpreplay is not installed");
        return None;
    }
    match VethNs::create() {
        Ok(v) => Some(v),
        Err(e) => {
            eprintln!("SKIP {test}: network namespaces not permitted here ({e})");
            None
        }
    }
}
