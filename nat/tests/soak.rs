//! Soak in the virtual clock: many sessions created and expired; no port
//! leaked, table empty. `NAT_SOAK_SESSIONS` sets the count (default 1M).

mod common;

use common::*;
use nat::{Side, Verdict};

#[test]
fn soak_sessions_created_and_expired_no_port_leak() {
    let n_sessions: u64 = std::env::var("NAT_SOAK_SESSIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let mut c = base_config();
    c.per_host_port_quota = 0;
    let mut n = nat::Nat::new(
        c,
        nat::FlowTableConfig {
            shards: 64,
            capacity: 1 << 20,
            ..Default::default()
        },
    )
    .unwrap();
    let template = udp("10.0.0.1", 1000, "192.0.2.1", 53, b"soak");
    let cls = classify(&template);
    let mut frame = template.clone();
    let per_sec = 500u64;
    let mut peak = 0;
    for i in 0..n_sessions {
        frame.copy_from_slice(&template);
        let host = 0x0a00_0000u32 | (i as u32 % 50_000);
        let sport = 1024 + (i / 50_000) as u16 % 60_000;
        frame[26..30].copy_from_slice(&host.to_be_bytes());
        frame[34..36].copy_from_slice(&sport.to_be_bytes());
        let mut c = cls;
        if let Some(t) = c.tuple.as_mut() {
            t.src = core::net::IpAddr::V4(host.into());
            t.src_port = sport;
        }
        let now = nat::Timestamp::from_nanos(i * 1_000_000_000 / per_sec);
        assert_eq!(
            n.process(&mut frame, &c, Side::Inside, now),
            Verdict::Forward,
            "session {i}"
        );
        if i % 1000 == 0 {
            n.poll(now, usize::MAX);
            peak = peak.max(n.stats().sessions_active);
        }
    }
    let end = nat::Timestamp::from_secs(n_sessions / per_sec + 10_000);
    while n.poll(end, 100_000) > 0 {}
    let st = n.stats();
    assert_eq!(st.created, n_sessions);
    assert_eq!(st.sessions_active, 0, "table empty");
    assert_eq!(st.ports_in_use, 0, "no port leaked");
    assert_eq!(st.mappings, 0);
    assert_eq!(st.alloc.double_free, 0);
    assert_eq!(st.alloc.freed, n_sessions);
    assert!(peak > 100_000 || n_sessions < 200_000, "peak {peak}");
}
