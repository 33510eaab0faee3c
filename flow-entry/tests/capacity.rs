//! Watermarks, draining hysteresis, hard capacity, eviction policy
//! (pitfalls 1 and 5).

mod common;

use common::*;
use flow_entry::{FlowTableConfig, InsertError, Inserted, ReleaseReason, Timestamp};

fn ts(s: u64) -> Timestamp {
    Timestamp::from_secs(s)
}

fn one_shard(capacity: usize, high: f64, low: f64) -> FlowTableConfig {
    FlowTableConfig {
        high_watermark: high,
        low_watermark: low,
        drain_budget: 2,
        ..cfg(1, capacity)
    }
}

fn confirm(t: &flow_entry::FlowTable<u32>, i: u32) {
    t.lookup_with(&fwd(i), ts(0), |e| e.confirm()).unwrap();
}

#[test]
fn draining_starts_above_high_and_stops_at_low() {
    let (t, log) = table(one_shard(100, 0.9, 0.75));
    for i in 0..90 {
        t.insert_pair(fwd(i), rev(i), i, ts(1000 + u64::from(i)), ts(0))
            .unwrap();
        // Half confirmed: the others are embryonic and go first.
        if i % 2 == 0 {
            confirm(&t, i);
        }
    }
    assert!(!t.is_draining(0));
    assert_eq!(t.stats().draining_entered, 0);
    // 91st insert crosses the high watermark: draining, 2 evictions.
    t.insert_pair(fwd(90), rev(90), 90, ts(2000), ts(0))
        .unwrap();
    assert!(t.is_draining(0));
    assert_eq!(t.len(), 89);
    let st = t.stats();
    assert_eq!((st.draining_entered, st.draining_left), (1, 0));
    // Keep inserting: each insert sheds 2, so occupancy falls by 1 per
    // insert until the low watermark (75), where draining stops.
    let mut i = 91;
    while t.is_draining(0) {
        t.insert_pair(fwd(i), rev(i), i, ts(2000), ts(0)).unwrap();
        i += 1;
        assert!(i < 200, "draining never stopped");
    }
    assert_eq!(t.len(), 75);
    let st = t.stats();
    assert_eq!((st.draining_entered, st.draining_left), (1, 1));
    let drained: Vec<u32> = released(&log)
        .iter()
        .filter(|(_, r)| *r == ReleaseReason::Drained)
        .map(|(v, _)| *v)
        .collect();
    assert_eq!(drained.len() as u64, st.released(ReleaseReason::Drained));
    assert_eq!(drained.len(), 90 + (i as usize - 90) - 75);
    // Embryonic (odd) entries first.
    assert!(drained.iter().take(10).all(|v| v % 2 == 1), "{drained:?}");
    // Below the low watermark again: no draining on the next insert.
    t.insert_pair(fwd(500), rev(500), 500, ts(2000), ts(0))
        .unwrap();
    assert_eq!(t.len(), 76);
    assert!(!t.is_draining(0));
    // Everything still accounted for.
    assert_eq!(t.len() + released(&log).len(), t.stats().inserted as usize);
}

#[test]
fn draining_takes_due_entries_first_and_spares_the_new_entry() {
    // capacity 10: high 5, low 2.
    let (t, log) = table(one_shard(10, 0.5, 0.2));
    for i in 0..4 {
        t.insert_pair(fwd(i), rev(i), i, ts(100), ts(0)).unwrap();
        confirm(&t, i);
    }
    t.insert_pair(fwd(4), rev(4), 4, ts(5), ts(0)).unwrap();
    confirm(&t, 4);
    // At t=6 entry 4 is due: the draining insert collects it first
    // (Expired), then the soonest-due confirmed entry (no embryonic one but
    // the new entry, which is spared).
    let Ok(Inserted::New(h)) = t.insert_pair(fwd(5), rev(5), 5, ts(100), ts(6)) else {
        panic!()
    };
    assert_eq!(
        released(&log),
        vec![(4, ReleaseReason::Expired), (0, ReleaseReason::Drained)]
    );
    assert!(t.with_handle(h, |_| ()).is_some(), "new entry survives");
    assert_eq!(t.len(), 4);
}

#[test]
fn hard_capacity_is_a_typed_error_and_counted() {
    // high = 1.0: never drains; capacity is the hard limit.
    let (t, log) = table(FlowTableConfig {
        evict_scan: 64,
        ..one_shard(20, 1.0, 0.5)
    });
    for i in 0..20 {
        t.insert_pair(fwd(i), rev(i), i, ts(100), ts(0)).unwrap();
        confirm(&t, i);
    }
    assert_eq!(
        t.insert_pair(fwd(20), rev(20), 20, ts(100), ts(0)),
        Err(InsertError::Full)
    );
    let Err((InsertError::Full, v)) = t.try_insert_pair(fwd(21), rev(21), 21, ts(100), ts(0))
    else {
        panic!()
    };
    assert_eq!(v, 21, "the value comes back to the caller");
    let st = t.stats();
    assert_eq!(st.full, 2);
    assert_eq!(st.len, 20);
    assert!(released(&log).is_empty(), "nothing dropped silently");
    // An embryonic entry is evicted to make room.
    t.insert_pair(fwd(30), rev(30), 30, ts(100), ts(0))
        .unwrap_err();
    t.remove(t.lookup(&fwd(0), ts(0)).unwrap(), ReleaseReason::Removed);
    t.insert_pair(fwd(31), rev(31), 31, ts(100), ts(0)).unwrap(); // embryonic, fills
    assert!(matches!(
        t.insert_pair(fwd(32), rev(32), 32, ts(100), ts(0)),
        Ok(Inserted::New(_))
    ));
    assert_eq!(
        released(&log),
        vec![(0, ReleaseReason::Removed), (31, ReleaseReason::Evicted)]
    );
    // A due entry is collected (Expired) to make room.
    confirm(&t, 32);
    t.lookup_with(&fwd(5), ts(0), |e| e.set_expires_at(ts(10)));
    assert!(matches!(
        t.insert_pair(fwd(33), rev(33), 33, ts(100), ts(10)),
        Ok(Inserted::New(_))
    ));
    assert_eq!(released(&log)[2], (5, ReleaseReason::Expired));
    assert_eq!(t.stats().released(ReleaseReason::Evicted), 1);
    assert_eq!(t.len(), 20);
}

#[test]
fn after_everything_expires_the_table_is_empty_and_all_released() {
    // Pitfall 1's invariant: after all flows expire, every resource is back.
    let (t, log) = table(cfg(8, 4096));
    let mut ports_in_use = std::collections::BTreeSet::new();
    for i in 0..3000u32 {
        if let Ok(Inserted::New(_)) =
            t.insert_pair(fwd(i), rev(i), i, ts(10 + u64::from(i % 50)), ts(0))
        {
            ports_in_use.insert(i);
        }
    }
    let mut now = 0;
    while !t.is_empty() {
        now += 3;
        t.poll(ts(now), 100);
        assert!(now < 10_000);
    }
    for (v, _) in released(&log) {
        assert!(
            ports_in_use.remove(&v),
            "released twice or never inserted: {v}"
        );
    }
    assert!(ports_in_use.is_empty());
    assert_eq!(t.stats().len, 0);
    assert_eq!(t.expired_pending(), 0);
}

#[test]
fn draining_shortens_new_deadlines_when_configured() {
    let (t, _log) = table(FlowTableConfig {
        draining_timeout: Some(std::time::Duration::from_secs(5)),
        ..one_shard(10, 0.5, 0.2)
    });
    for i in 0..6 {
        t.insert_pair(fwd(i), rev(i), i, ts(1000), ts(0)).unwrap();
        confirm(&t, i);
    }
    assert!(t.is_draining(0));
    // Not draining when entry 0..5 went in: full deadline.
    let kept: Vec<u32> = (0..6)
        .filter(|&i| t.lookup(&fwd(i), ts(0)).is_some())
        .collect();
    for &i in &kept {
        assert_eq!(
            t.lookup_with(&fwd(i), ts(0), |e| e.expires_at()),
            Some(ts(1000))
        );
    }
    // Draining now: a new entry gets at most 5 s.
    t.insert_pair(fwd(50), rev(50), 50, ts(1000), ts(10))
        .unwrap();
    assert_eq!(
        t.lookup_with(&fwd(50), ts(10), |e| e.expires_at()),
        Some(ts(15))
    );
}
