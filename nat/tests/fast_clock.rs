//! `Nat::fast_clock_after` (a burst's clock from the last burst's, no
//! division within a tick) equals `Nat::fast_clock` at every time: across
//! tick edges, at a tick's first nanosecond, backwards, and from another
//! NAT's clock.

mod common;

use common::{base_config, nat};
use nat::Timestamp;

#[test]
fn fast_clock_after_is_fast_clock() {
    let n = nat(base_config());
    let tick = 1_000_000_000u64; // the table's default tick
    let t0 = 5 * tick + 17;
    let mut prev = n.fast_clock(Timestamp::from_nanos(t0));
    let mut times = vec![
        t0 + 1,
        t0 + 2,
        6 * tick - 1,
        6 * tick,
        6 * tick + 1,
        6 * tick + 5,
    ];
    times.extend([
        7 * tick + 3,
        7 * tick + 2,
        3 * tick + 9,
        3 * tick + 10,
        90 * tick,
    ]);
    let mut x = 0x9e37_79b9_u64;
    for _ in 0..2_000 {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let last = *times.last().unwrap();
        times.push(last + (x >> 40) % (2 * tick));
    }
    for &t in &times {
        let now = Timestamp::from_nanos(t);
        let want = n.fast_clock(now);
        let got = n.fast_clock_after(&prev, now);
        assert_eq!(got, want, "at {t}");
        prev = got;
    }
    // Another NAT's clock (another time base) is not reused.
    let other = nat(base_config());
    let theirs = other.fast_clock(Timestamp::from_nanos(t0 + 500_000_000));
    let now = Timestamp::from_nanos(t0 + 500_000_001);
    assert_eq!(n.fast_clock_after(&theirs, now), n.fast_clock(now));
}
