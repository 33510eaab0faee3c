//! The pipeline's clock type: `flow_entry::Timestamp` (u64 nanoseconds since
//! an arbitrary epoch). Drivers own clocks: replay uses capture timestamps,
//! DPDK a monotonic clock read through [`CycleClock`].

pub use flow_entry::Timestamp;

/// A monotonic nanosecond clock read through a cycle counter (the TSC)
/// and re-anchored to a reference clock (the OS monotonic clock) whenever
/// [`CycleClock::period_ns`] has passed since the last anchor: a reading
/// is a counter read, a subtraction and a multiply, not a system clock
/// call, and its error is bounded by the counter's rate error over one
/// period (the scale comes from the counter's nominal frequency), never
/// accumulated. Readings never decrease: one that would (a re-anchor that
/// lands behind the extrapolation) repeats the last one. Counter values
/// and reference times are arguments, so tests drive both.
///
/// Without a usable frequency (`hz` 0) every reading re-anchors: the
/// reference clock itself.
#[derive(Debug, Clone)]
pub struct CycleClock {
    anchor_ns: u64,
    anchor_cycles: u64,
    /// Nanoseconds per cycle, 32.32 fixed point.
    scale: u64,
    /// Cycles per period: readings this far past the anchor re-anchor.
    span: u64,
    last: u64,
}

impl CycleClock {
    /// How long an anchor is extrapolated (1 ms).
    pub const PERIOD_NS: u64 = 1_000_000;

    /// A clock for a counter ticking `hz` times a second (`0`: unknown).
    pub fn new(hz: u64) -> CycleClock {
        // hz below 1 kHz is not a TSC: treated as unknown (and it keeps the
        // products below in range: span × scale ≤ 1e6 × 2^32).
        let (scale, span) = if hz >= 1_000 {
            (
                u64::try_from((1_000_000_000u128 << 32) / u128::from(hz)).unwrap_or(0),
                hz / (1_000_000_000 / Self::PERIOD_NS),
            )
        } else {
            (0, 0)
        };
        CycleClock {
            anchor_ns: 0,
            anchor_cycles: 0,
            scale,
            span,
            last: 0,
        }
    }

    /// The period after which a reading re-anchors, in nanoseconds.
    pub fn period_ns(&self) -> u64 {
        Self::PERIOD_NS
    }

    /// The time at counter value `cycles`; `reference` (the reference
    /// clock, nanoseconds) is called only to re-anchor: when the period is
    /// over, at the first reading, or when the counter went backwards.
    #[inline]
    pub fn read(&mut self, cycles: u64, reference: impl FnOnce() -> u64) -> u64 {
        let d = cycles.wrapping_sub(self.anchor_cycles);
        let ns = if d < self.span && self.anchor_cycles != 0 {
            // d < span: d × scale < 1e6 × 2^32, no overflow.
            self.anchor_ns.saturating_add((d * self.scale) >> 32)
        } else {
            let ns = reference();
            self.anchor_ns = ns;
            self.anchor_cycles = cycles.max(1);
            ns
        };
        let ns = ns.max(self.last);
        self.last = ns;
        ns
    }
}

#[cfg(test)]
mod tests {
    use super::CycleClock;

    /// A reading at `c` cycles whose reference clock must not be asked.
    fn extrapolated(k: &mut CycleClock, c: u64) -> u64 {
        k.read(c, || panic!("re-anchored at {c}"))
    }

    #[test]
    fn extrapolates_within_a_period_and_reanchors_after() {
        // 2 GHz: 2 cycles per ns, 2 000 000 cycles per period.
        let mut k = CycleClock::new(2_000_000_000);
        assert_eq!(k.read(1_000, || 5_000), 5_000, "first reading anchors");
        assert_eq!(extrapolated(&mut k, 1_000), 5_000);
        assert_eq!(extrapolated(&mut k, 3_000), 6_000);
        assert_eq!(extrapolated(&mut k, 1_000 + 1_999_998), 5_000 + 999_999);
        // A period on: the reference clock decides (it ran 1 % fast).
        assert_eq!(k.read(1_000 + 2_000_000, || 5_000 + 1_010_000), 1_015_000);
        assert_eq!(extrapolated(&mut k, 2_001_000 + 200), 1_015_100);
    }

    #[test]
    fn never_goes_backwards() {
        let mut k = CycleClock::new(1_000_000_000);
        assert_eq!(k.read(10, || 100), 100);
        assert_eq!(extrapolated(&mut k, 999_999 + 10), 1_000_099);
        // The reference is behind the extrapolation at the re-anchor: the
        // last reading repeats until the clock passes it.
        assert_eq!(k.read(1_000_010, || 1_000_000), 1_000_099);
        assert_eq!(extrapolated(&mut k, 1_000_060), 1_000_099);
        assert_eq!(extrapolated(&mut k, 1_000_110), 1_000_100);
        // A counter that went backwards re-anchors.
        assert_eq!(k.read(5, || 2_000_000), 2_000_000);
    }

    #[test]
    fn without_a_frequency_every_reading_is_the_reference() {
        for hz in [0, 999] {
            let mut k = CycleClock::new(hz);
            assert_eq!(k.read(1, || 7), 7);
            assert_eq!(k.read(2, || 9), 9);
            assert_eq!(k.read(2, || 8), 9, "monotonic");
        }
    }

    #[test]
    fn no_overflow_at_extreme_frequencies() {
        for hz in [1_000u64, 1_000_000, 3_000_000_000, 10_000_000_000_000] {
            let mut k = CycleClock::new(hz);
            k.read(1, || 0);
            // One cycle short of a period: the largest product.
            let span = hz / 1_000;
            let t = extrapolated(&mut k, span);
            let want =
                u64::try_from(u128::from(span - 1) * 1_000_000_000 / u128::from(hz)).unwrap();
            assert!(
                t.abs_diff(want) <= want / 100_000 + 2,
                "{hz} Hz: {t} vs {want}"
            );
            // Near the end of time: saturates, never wraps.
            let mut k = CycleClock::new(hz);
            k.read(1, || u64::MAX - 10);
            let want = if span > 1 { u64::MAX } else { u64::MAX - 10 };
            assert_eq!(extrapolated(&mut k, span), want, "{hz} Hz");
        }
    }
}
