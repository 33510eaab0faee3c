//! The pipeline's clock type.
//!
//! WORKAROUND: the contract names `flow_entry::Timestamp`; until the
//! `flow-entry` crate exports it this is a local newtype with the same API
//! (u64 nanoseconds since an arbitrary epoch). It becomes a re-export as soon
//! as `flow_entry::Timestamp` exists.

use core::time::Duration;

/// Nanoseconds since an arbitrary epoch. Drivers own clocks: replay uses
/// capture timestamps, DPDK a monotonic clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(u64);

impl Timestamp {
    pub const fn from_nanos(n: u64) -> Self {
        Timestamp(n)
    }
    pub const fn from_secs(s: u64) -> Self {
        Timestamp(s.saturating_mul(1_000_000_000))
    }
    pub const fn as_nanos(self) -> u64 {
        self.0
    }
    pub fn saturating_duration_since(self, earlier: Timestamp) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl core::ops::Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, d: Duration) -> Timestamp {
        Timestamp(
            self.0
                .saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        )
    }
}
