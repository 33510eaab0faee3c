//! Time as an argument: [`Timestamp`] (nanoseconds since an arbitrary epoch),
//! the [`Clock`] trait drivers implement, and [`VirtualClock`] for tests.
//!
//! Nothing in this crate reads a clock: every operation takes `now`.

use core::ops::{Add, Sub};
use core::time::Duration;
use std::sync::atomic::{AtomicU64, Ordering};

/// A point in time: nanoseconds since an arbitrary, caller-chosen epoch
/// (e.g. `CLOCK_MONOTONIC`, a pcap's first packet, or 0 in tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The epoch itself.
    pub const ZERO: Timestamp = Timestamp(0);
    /// The latest representable time.
    pub const MAX: Timestamp = Timestamp(u64::MAX);

    #[inline]
    pub const fn from_nanos(ns: u64) -> Self {
        Self(ns)
    }
    #[inline]
    pub const fn from_micros(us: u64) -> Self {
        Self(us.saturating_mul(1_000))
    }
    #[inline]
    pub const fn from_millis(ms: u64) -> Self {
        Self(ms.saturating_mul(1_000_000))
    }
    #[inline]
    pub const fn from_secs(s: u64) -> Self {
        Self(s.saturating_mul(1_000_000_000))
    }
    #[inline]
    pub const fn as_nanos(self) -> u64 {
        self.0
    }
    /// Time elapsed from `earlier` to `self`, or zero if `earlier` is later.
    #[inline]
    pub const fn saturating_duration_since(self, earlier: Timestamp) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
    /// `self + d`, saturating at [`Timestamp::MAX`].
    #[inline]
    pub fn saturating_add(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(duration_nanos(d)))
    }
    /// `self - d`, saturating at [`Timestamp::ZERO`].
    #[inline]
    pub fn saturating_sub(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_sub(duration_nanos(d)))
    }
}

#[inline]
fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Saturating: a timestamp never wraps.
impl Add<Duration> for Timestamp {
    type Output = Timestamp;
    #[inline]
    fn add(self, d: Duration) -> Timestamp {
        self.saturating_add(d)
    }
}

/// Saturating at the epoch.
impl Sub<Duration> for Timestamp {
    type Output = Timestamp;
    #[inline]
    fn sub(self, d: Duration) -> Timestamp {
        self.saturating_sub(d)
    }
}

/// A source of `now` for drivers. Only drivers call it; the table never does.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// A clock that only moves when told to: tests and replay.
#[derive(Debug, Default)]
pub struct VirtualClock(AtomicU64);

impl VirtualClock {
    pub fn new(start: Timestamp) -> Self {
        Self(AtomicU64::new(start.0))
    }
    /// Moves the clock forward by `d` and returns the new time.
    pub fn advance(&self, d: Duration) -> Timestamp {
        let add = duration_nanos(d);
        let prev = self.0.fetch_add(add, Ordering::SeqCst);
        Timestamp(prev.saturating_add(add))
    }
    /// Sets the clock.
    ///
    /// # Panics
    /// If `t` is earlier than the current time: time never goes backwards.
    pub fn set(&self, t: Timestamp) {
        let prev = self.0.swap(t.0, Ordering::SeqCst);
        assert!(prev <= t.0, "VirtualClock moved backwards");
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_and_arithmetic() {
        assert_eq!(Timestamp::from_secs(2).as_nanos(), 2_000_000_000);
        assert_eq!(Timestamp::from_millis(3).as_nanos(), 3_000_000);
        let t = Timestamp::from_secs(1) + Duration::from_millis(500);
        assert_eq!(t.as_nanos(), 1_500_000_000);
        assert_eq!(
            t.saturating_duration_since(Timestamp::from_secs(1)),
            Duration::from_millis(500)
        );
        assert_eq!(
            Timestamp::from_secs(1).saturating_duration_since(t),
            Duration::ZERO
        );
        assert_eq!(Timestamp::MAX + Duration::from_secs(1), Timestamp::MAX);
        assert_eq!(Timestamp::ZERO - Duration::from_secs(1), Timestamp::ZERO);
    }

    #[test]
    fn virtual_clock_advances() {
        let c = VirtualClock::new(Timestamp::from_secs(10));
        assert_eq!(c.advance(Duration::from_secs(5)), Timestamp::from_secs(15));
        assert_eq!(c.now(), Timestamp::from_secs(15));
        c.set(Timestamp::from_secs(20));
        assert_eq!(c.now(), Timestamp::from_secs(20));
    }
}
