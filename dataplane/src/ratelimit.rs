//! A token bucket on the virtual clock: the rate limit on generated ICMP
//! errors (RFC 1812 §4.3.2.8: "a router MUST be able to limit the rate at
//! which it generates ICMP error messages", and SHOULD use a token bucket or
//! similar that permits bursts). One bucket per port (`[icmp_rate]`,
//! docs/config.md).
//!
//! Exact integer arithmetic: the level is kept in nano-tokens (one token =
//! 10^9), refilled by `elapsed_ns × per_sec`, capped at `burst` tokens. Time
//! is an argument; a `now` earlier than the last one (two workers' clocks)
//! refills nothing. O(1), no allocation.

use crate::Timestamp;

const NANO: u128 = 1_000_000_000;

/// A token bucket: `burst` tokens at most, `per_sec` added per second;
/// starts full.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    per_sec: u128,
    /// Capacity in nano-tokens.
    cap: u128,
    /// Level in nano-tokens.
    level: u128,
    last: Option<Timestamp>,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens refilled at `per_sec` per second.
    pub fn new(per_sec: u32, burst: u32) -> TokenBucket {
        let cap = u128::from(burst) * NANO;
        TokenBucket {
            per_sec: u128::from(per_sec),
            cap,
            level: cap,
            last: None,
        }
    }

    /// Takes one token at `now` if there is one (refilling first): `true`
    /// when the caller may send.
    #[must_use]
    pub fn try_take(&mut self, now: Timestamp) -> bool {
        if let Some(last) = self.last {
            let elapsed = now.saturating_duration_since(last).as_nanos();
            self.level = (self.level + elapsed * self.per_sec).min(self.cap);
        }
        if self.last.is_none_or(|l| now > l) {
            self.last = Some(now);
        }
        if self.level >= NANO {
            self.level -= NANO;
            true
        } else {
            false
        }
    }

    /// Whole tokens left (for tests and diagnostics).
    pub fn tokens(&self) -> u64 {
        (self.level / NANO) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Timestamp {
        Timestamp::from_nanos(n * 1_000_000)
    }

    #[test]
    fn burst_then_refill_at_the_rate() {
        let mut b = TokenBucket::new(1000, 50);
        for i in 0..50 {
            assert!(b.try_take(ms(10)), "token {i}");
        }
        assert!(!b.try_take(ms(10)), "the 51st in the same instant");
        // 1 per ms: half a millisecond is not enough, one is.
        assert!(!b.try_take(Timestamp::from_nanos(10_500_000)));
        assert!(b.try_take(ms(11)));
        assert!(!b.try_take(ms(11)));
        // A long pause refills to the burst, no more.
        assert!(b.try_take(ms(10_000)));
        assert_eq!(b.tokens(), 49);
    }

    #[test]
    fn time_going_backwards_refills_nothing_and_never_panics() {
        let mut b = TokenBucket::new(1, 1);
        assert!(b.try_take(ms(5000)));
        assert!(!b.try_take(ms(1000)));
        assert!(!b.try_take(ms(5999)));
        assert!(b.try_take(ms(6000)));
    }

    #[test]
    fn huge_rates_and_gaps_do_not_overflow() {
        let mut b = TokenBucket::new(u32::MAX, u32::MAX);
        assert!(b.try_take(Timestamp::from_nanos(0)));
        assert!(b.try_take(Timestamp::from_nanos(u64::MAX)));
        assert_eq!(b.tokens(), u64::from(u32::MAX) - 1);
    }
}
