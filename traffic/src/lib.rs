//! Synthetic traffic for Tocsin: a pcap writer, IPv4 packet builders with correct
//! checksums, TCP sessions (handshake, segmentation, reordering, overlaps, teardown),
//! DNS and TLS message builders, IPv4 fragmentation, and the demo's attack scenarios.
//!
//! Everything is deterministic: the same inputs give byte-identical pcaps, so tests can
//! assert exact alert counts and benches compare like with like.

pub mod packet;
pub mod pcap;
pub mod proto;
pub mod scenario;
pub mod tcp;

pub use packet::{Frame, Host};
pub use pcap::PcapWriter;
pub use scenario::{Scenario, ScenarioConfig};
pub use tcp::TcpSession;

/// A small deterministic PRNG (xorshift64*): reproducible traffic without a dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is replaced by a fixed non-zero value).
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        let i = usize::try_from(self.below(items.len() as u64)).unwrap_or(0);
        &items[i.min(items.len().saturating_sub(1))]
    }

    /// Lower-case alphanumeric text of length `n`.
    pub fn alnum(&mut self, n: usize) -> String {
        const A: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        (0..n).map(|_| char::from(*self.pick(A))).collect()
    }
}
