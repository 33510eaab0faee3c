//! Long uptimes: sessions live and expire at the right time whatever the
//! clock reads, including past 2^32 table ticks (a `u32` tick count would
//! have wrapped: with `tick_ms = 1` every session created after 49.7 days
//! would be born expired) and centuries in, for every tick length the
//! dataplane's configuration allows (1 ms ..= 60 s). Virtual time only.

mod common;

use common::*;
use nat::{Side, Timestamp, Verdict};

/// A NAT with a table tick of `tick_ms`.
fn nat_with_tick(tick_ms: u64) -> nat::Nat {
    nat::Nat::new(
        base_config(),
        nat::FlowTableConfig {
            capacity: 1 << 10,
            tick: core::time::Duration::from_millis(tick_ms),
            ..Default::default()
        },
    )
    .unwrap()
}

fn at(ns: u64) -> Timestamp {
    Timestamp::from_nanos(ns)
}

/// One UDP session created at `t0`, refreshed by a reply 100 s later: alive
/// until the refreshed deadline, released by a poll one tick after it, its
/// port returned.
fn session_lives_and_expires(tick_ms: u64, t0: u64) {
    let s = 1_000_000_000u64;
    let tick = tick_ms * 1_000_000;
    let mut n = nat_with_tick(tick_ms);
    let udp_timeout = 300 * s;
    let mut out = udp("10.0.0.1", 5000, "192.0.2.1", 53, b"q");
    assert_eq!(
        run(&mut n, &mut out, Side::Inside, at(t0)),
        Verdict::Forward,
        "tick {tick_ms} ms, t0 {t0}: created"
    );
    let (ext, eport, ..) = addrs(&out);
    // Still alive just before its first deadline; the reply refreshes it.
    let mut reply = udp("192.0.2.1", 53, &ext.to_string(), eport, b"a");
    let t1 = t0 + 100 * s;
    assert_eq!(
        run(&mut n, &mut reply, Side::Outside, at(t1)),
        Verdict::Forward,
        "tick {tick_ms} ms, t0 {t0}: reply translated"
    );
    assert_eq!(addrs(&reply).2, ip("10.0.0.1"));
    let deadline = t1 + udp_timeout;
    n.poll(at(deadline - s), 1024);
    assert_eq!(
        n.stats().sessions_active,
        1,
        "tick {tick_ms} ms, t0 {t0}: alive a second before its deadline"
    );
    n.poll(at(deadline + tick), 1024);
    let st = n.stats();
    assert_eq!(
        (st.sessions_active, st.expired, st.ports_in_use),
        (0, 1, 0),
        "tick {tick_ms} ms, t0 {t0}: expired one tick after its deadline, port free"
    );
}

#[test]
fn sessions_expire_on_time_past_two_to_the_32_ticks() {
    let ms = 1_000_000u64;
    // 2^32 ticks of 1 ms (49.7 days), and a little past it.
    for t0 in [
        (1u64 << 32) * ms - 50_000 * ms,
        (1u64 << 32) * ms + 5_000 * ms,
    ] {
        session_lives_and_expires(1, t0);
    }
}

#[test]
fn sessions_expire_on_time_at_any_uptime_and_tick() {
    let s = 1_000_000_000u64;
    let year = 365 * 24 * 3600 * s;
    for tick_ms in [1, 100, 1000, 60_000] {
        for t0 in [0, 10 * year, 500 * year] {
            session_lives_and_expires(tick_ms, t0);
        }
    }
}
