//! Time for NAT: `flow_entry::Timestamp` when the shared crate exports it.
//!
//! NOTE: local stand-in with the contract's shape (u64 ns since an arbitrary
//! epoch; `from_nanos`, `from_secs`, `as_nanos`, `+ Duration`), used while
//! `flow-entry` does not yet export its `Timestamp`.

use core::ops::Add;
use core::time::Duration;

/// A point in time: nanoseconds since an arbitrary epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(u64);

impl Timestamp {
    #[must_use]
    pub const fn from_nanos(ns: u64) -> Self {
        Self(ns)
    }
    #[must_use]
    pub const fn from_secs(s: u64) -> Self {
        Self(s.saturating_mul(1_000_000_000))
    }
    #[must_use]
    pub const fn as_nanos(self) -> u64 {
        self.0
    }
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, d: Duration) -> Timestamp {
        Timestamp(
            self.0
                .saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        )
    }
}
