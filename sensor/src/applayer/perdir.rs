//! [`PerDir`]: one value per direction, indexed by [`Direction`] without slice indexing.
//!
//! Input/output: plain storage. Invariant: access is by `match`, so it cannot panic.

use crate::Direction;

/// A value for each direction of a flow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PerDir<T> {
    /// To-server value.
    pub ts: T,
    /// To-client value.
    pub tc: T,
}

impl<T> PerDir<T> {
    /// Both values.
    pub fn new(ts: T, tc: T) -> Self {
        Self { ts, tc }
    }
    /// The value for `dir`.
    pub fn get(&self, dir: Direction) -> &T {
        match dir {
            Direction::ToServer => &self.ts,
            Direction::ToClient => &self.tc,
        }
    }
    /// The value for `dir`, mutable.
    pub fn get_mut(&mut self, dir: Direction) -> &mut T {
        match dir {
            Direction::ToServer => &mut self.ts,
            Direction::ToClient => &mut self.tc,
        }
    }
}
