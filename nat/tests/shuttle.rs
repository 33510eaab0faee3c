//! Shuttle model test (feature `shuttle`): workers create, refresh and
//! expire sessions over a small pool, two of them racing to create the same
//! session. Invariants: ports in use = sessions alive (one mapping per
//! session here); after everything expires every port is free.
#![cfg(feature = "shuttle")]

mod common;

use std::sync::Arc;

use common::*;
use nat::{MappingBehavior, PortRange, Side};

/// Races lost over all explored schedules (the loser-releases path ran).
static RACES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn iterations() -> usize {
    std::env::var("SHUTTLE_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200)
}

#[test]
fn shuttle_sessions_ports_consistent_and_all_freed() {
    shuttle::check_random(
        || {
            let mut c = base_config();
            c.pools[0].addresses = vec!["203.0.113.1".parse().unwrap()];
            c.pools[0].ports = PortRange::new(2000, 2005);
            c.pools[0].low_ports = None;
            c.per_host_port_quota = 0;
            c.mapping = MappingBehavior::AddressAndPortDependent;
            c.timeouts.allow_below_rfc_minimum = true;
            c.timeouts.udp = 100;
            let n = Arc::new(
                nat::Nat::new(
                    c,
                    nat::FlowTableConfig {
                        shards: 2,
                        capacity: 64,
                        ..Default::default()
                    },
                )
                .unwrap(),
            );
            let mut hs = Vec::new();
            for w in 0..3u16 {
                let n = Arc::clone(&n);
                hs.push(shuttle::thread::spawn(move || {
                    for k in 0..3u16 {
                        // Workers 0 and 1 race on the same flows.
                        let host = format!("10.0.0.{}", 1 + w / 2);
                        let t = u64::from(k) * 100 + u64::from(w);
                        let mut f = udp(&host, 5000 + k, "192.0.2.1", 53, b"x");
                        let _ = run(&n, &mut f, Side::Inside, secs(t));
                        // Refresh.
                        let mut f = udp(&host, 5000 + k, "192.0.2.1", 53, b"y");
                        let _ = run(&n, &mut f, Side::Inside, secs(t + 1));
                        if w == 2 {
                            n.poll(secs(t + 250), 4);
                        }
                    }
                }));
            }
            for h in hs {
                h.join().unwrap();
            }
            let st = n.stats();
            assert_eq!(
                st.ports_in_use, st.sessions_active,
                "ports in use = sessions alive"
            );
            assert_eq!(st.mappings, st.sessions_active);
            assert_eq!(st.alloc.double_free, 0);
            RACES.fetch_add(st.race_lost, std::sync::atomic::Ordering::Relaxed);
            while n.poll(secs(100_000), 8) > 0 {}
            let st = n.stats();
            assert_eq!(
                (st.sessions_active, st.ports_in_use, st.mappings),
                (0, 0, 0),
                "all freed"
            );
            // Every created session was released exactly once.
            assert_eq!(st.created, st.expired + st.lazily_expired + st.evicted);
            assert_eq!(st.alloc.double_free, 0);
        },
        iterations(),
    );
    if iterations() >= 50 {
        assert!(
            RACES.load(std::sync::atomic::Ordering::Relaxed) > 0,
            "no schedule exercised a lost creation race"
        );
    }
}
