//! Basic behaviour of the table: pairs, races, refresh, remove, expiry,
//! lazy expiry, teardown, counters.

mod common;

use common::*;
use flow_entry::{
    Direction, FlowTable, FlowTableConfig, InsertError, Inserted, ReleaseReason, Timestamp,
};
use std::sync::Arc;

fn ts(s: u64) -> Timestamp {
    Timestamp::from_secs(s)
}

#[test]
fn pair_is_found_through_both_keys() {
    for shards in [1, 4, 64] {
        let (t, log) = table(cfg(shards, 1024));
        let Ok(Inserted::New(h)) = t.insert_pair(fwd(1), rev(1), 7, ts(30), ts(0)) else {
            panic!("not inserted");
        };
        assert_eq!(
            t.lookup_with(&fwd(1), ts(1), |e| (*e.value(), e.direction(), e.handle())),
            Some((7, Direction::Forward, h))
        );
        assert_eq!(
            t.lookup_with(&rev(1), ts(1), |e| (*e.value(), e.direction(), e.handle())),
            Some((7, Direction::Reverse, h))
        );
        assert_eq!(t.lookup(&fwd(2), ts(1)), None);
        assert_eq!(t.lookup(&fwd(1).reversed(), ts(1)), None);
        assert_eq!(t.len(), 1);
        assert!(released(&log).is_empty());
        assert!(t.remove(h, ReleaseReason::Removed));
        assert!(
            !t.remove(h, ReleaseReason::Removed),
            "second remove is a no-op"
        );
        assert_eq!(t.lookup(&fwd(1), ts(1)), None);
        assert_eq!(t.lookup(&rev(1), ts(1)), None);
        assert_eq!(released(&log), vec![(7, ReleaseReason::Removed)]);
        assert_eq!(t.len(), 0);
    }
}

#[test]
fn value_is_mutable_and_keys_are_reported() {
    let (t, _log) = table(cfg(8, 64));
    t.insert_pair(fwd(3), rev(3), 1, ts(10), ts(0)).unwrap();
    t.lookup_with(&rev(3), ts(1), |e| {
        *e.value_mut() += 41;
        assert_eq!(e.forward_key(), fwd(3));
        assert_eq!(e.reverse_key(), Some(rev(3)));
        assert!(!e.is_confirmed());
        e.confirm();
    });
    assert_eq!(t.get(&fwd(3), ts(2)), Some(42));
    assert!(t.lookup_with(&fwd(3), ts(2), |e| e.is_confirmed()).unwrap());
    assert_eq!(t.stats().embryonic, 0);
}

#[test]
fn racing_creator_gets_the_winner_and_its_value_back() {
    let (t, log) = table(cfg(4, 64));
    let Ok(Inserted::New(h)) = t.insert_pair(fwd(1), rev(1), 1, ts(30), ts(0)) else {
        panic!()
    };
    // Same forward key, another reverse key (another NAT port): loser.
    assert_eq!(
        t.insert_pair(fwd(1), rev(2), 2, ts(30), ts(0)),
        Ok(Inserted::Existing(h, 2))
    );
    // The reverse key of a live session is taken.
    assert_eq!(
        t.insert_pair(fwd(9), rev(1), 3, ts(30), ts(0)),
        Err(InsertError::Conflict)
    );
    let Err((InsertError::Conflict, v)) = t.try_insert_pair(fwd(9), rev(1), 4, ts(30), ts(0))
    else {
        panic!()
    };
    assert_eq!(v, 4);
    assert_eq!(t.len(), 1);
    assert!(released(&log).is_empty(), "losers never reach the hook");
    let st = t.stats();
    assert_eq!((st.existing, st.conflicts, st.inserted), (1, 2, 1));
    // rev(2) was not inserted by the loser.
    assert_eq!(t.lookup(&rev(2), ts(1)), None);
}

#[test]
fn timer_expiry_releases_both_keys_once() {
    let (t, log) = table(cfg(16, 1024));
    for i in 0..100 {
        t.insert_pair(fwd(i), rev(i), i, ts(10 + u64::from(i % 5)), ts(0))
            .unwrap();
    }
    assert_eq!(t.poll(ts(9), 1000), 0);
    assert_eq!(t.poll(ts(10), 1000), 20);
    assert_eq!(t.len(), 80);
    assert_eq!(t.poll(ts(100), 1000), 80);
    assert!(t.is_empty());
    let mut got: Vec<u32> = released(&log).iter().map(|(v, _)| *v).collect();
    assert!(
        released(&log)
            .iter()
            .all(|(_, r)| *r == ReleaseReason::Expired)
    );
    got.sort();
    assert_eq!(got, (0..100).collect::<Vec<_>>());
    for i in 0..100 {
        assert_eq!(t.lookup(&fwd(i), ts(100)), None);
        assert_eq!(t.lookup(&rev(i), ts(100)), None);
    }
    assert_eq!(t.stats().released(ReleaseReason::Expired), 100);
}

#[test]
fn budgeted_poll_carries_backlog_in_deadline_order() {
    let (t, log) = table(cfg(8, 1024));
    for i in 0..50 {
        t.insert_pair(fwd(i), rev(i), i, ts(5 + u64::from(i % 3)), ts(0))
            .unwrap();
    }
    assert_eq!(t.poll(ts(100), 7), 7);
    assert_eq!(t.expired_pending(), 43);
    assert_eq!(t.active_len(), 0);
    assert_eq!(t.len(), 43);
    let mut total = 7;
    while total < 50 {
        let n = t.poll(ts(100), 7);
        assert!(n > 0);
        total += n;
    }
    assert_eq!(t.poll(ts(100), 7), 0);
    let vals: Vec<u32> = released(&log).iter().map(|(v, _)| *v).collect();
    // Non-decreasing deadline.
    let d: Vec<u64> = vals.iter().map(|i| 5 + u64::from(i % 3)).collect();
    assert!(d.windows(2).all(|w| w[0] <= w[1]), "{d:?}");
}

#[test]
fn refresh_extends_and_refresh_of_gone_says_so() {
    let (t, log) = table(cfg(4, 64));
    let Ok(Inserted::New(h)) = t.insert_pair(fwd(1), rev(1), 1, ts(10), ts(0)) else {
        panic!()
    };
    assert_eq!(t.refresh(h, ts(20), ts(5)), Ok(()));
    assert_eq!(t.poll(ts(15), 100), 0, "extended: re-armed, not expired");
    assert!(t.lookup(&rev(1), ts(15)).is_some());
    assert_eq!(t.poll(ts(20), 100), 1);
    assert_eq!(t.refresh(h, ts(40), ts(20)), Err(flow_entry::Gone));
    assert_eq!(t.lookup(&fwd(1), ts(21)), None, "no resurrection");
    assert_eq!(released(&log), vec![(1, ReleaseReason::Expired)]);
}

/// An entry past its deadline that nobody has collected yet is not
/// extended by a refresh (lookups already treat it as gone): the refresh
/// says `Gone` and the next poll releases it as expired.
#[test]
fn refresh_after_the_deadline_does_not_revive() {
    let (t, log) = table(cfg(4, 64));
    let Ok(Inserted::New(h)) = t.insert_pair(fwd(1), rev(1), 1, ts(10), ts(0)) else {
        panic!()
    };
    assert_eq!(t.refresh(h, ts(30), ts(12)), Err(flow_entry::Gone));
    assert_eq!(t.lookup(&fwd(1), ts(12)), None);
    assert_eq!(t.refresh(h, ts(30), ts(12)), Err(flow_entry::Gone));
    assert_eq!(t.poll(ts(13), 100), 0, "the lookup released it already");
    assert_eq!(released(&log), vec![(1, ReleaseReason::LazyExpired)]);

    let Ok(Inserted::New(h)) = t.insert_pair(fwd(2), rev(2), 2, ts(20), ts(13)) else {
        panic!()
    };
    assert_eq!(
        t.refresh(h, ts(50), ts(20)),
        Err(flow_entry::Gone),
        "at the deadline"
    );
    assert_eq!(t.poll(ts(21), 100), 1);
    assert_eq!(
        released(&log),
        vec![(1, ReleaseReason::LazyExpired), (2, ReleaseReason::Expired)]
    );
}

#[test]
fn earlier_deadline_rearms_eagerly() {
    let (t, log) = table(cfg(4, 64));
    t.insert_pair(fwd(1), rev(1), 1, ts(3600), ts(0)).unwrap();
    t.lookup_with(&fwd(1), ts(1), |e| e.set_expires_at(ts(5)));
    assert_eq!(
        t.lookup_with(&fwd(1), ts(1), |e| e.expires_at()),
        Some(ts(5))
    );
    assert_eq!(t.poll(ts(5), 100), 1);
    assert_eq!(released(&log), vec![(1, ReleaseReason::Expired)]);
}

#[test]
fn lazy_expiry_on_lookup_removes_the_whole_pair() {
    let (t, log) = table(cfg(16, 64));
    t.insert_pair(fwd(1), rev(1), 1, ts(10), ts(0)).unwrap();
    t.insert_pair(fwd(2), rev(2), 2, ts(10), ts(0)).unwrap();
    assert_eq!(t.lookup(&rev(1), ts(10)), None);
    assert_eq!(t.lookup(&fwd(2), ts(11)), None);
    assert_eq!(t.len(), 0);
    assert_eq!(
        released(&log),
        vec![
            (1, ReleaseReason::LazyExpired),
            (2, ReleaseReason::LazyExpired)
        ]
    );
    // Neither key of either pair is left behind: re-inserting works.
    assert!(matches!(
        t.insert_pair(fwd(1), rev(1), 3, ts(30), ts(11)),
        Ok(Inserted::New(_))
    ));
    assert_eq!(t.poll(ts(11), 100), 0, "the wheel forgot the old entries");
    assert_eq!(t.len(), 1);
}

#[test]
fn insert_over_an_expired_entry_collects_it_first() {
    let (t, log) = table(cfg(4, 64));
    t.insert_pair(fwd(1), rev(1), 1, ts(10), ts(0)).unwrap();
    assert!(matches!(
        t.insert_pair(fwd(1), rev(2), 2, ts(40), ts(10)),
        Ok(Inserted::New(_))
    ));
    t.insert_pair(fwd(3), rev(3), 3, ts(10), ts(0)).unwrap();
    // rev(3) is held by an expired entry: not a conflict.
    assert!(matches!(
        t.insert_pair(fwd(4), rev(3), 4, ts(40), ts(10)),
        Ok(Inserted::New(_))
    ));
    assert_eq!(
        released(&log),
        vec![
            (1, ReleaseReason::LazyExpired),
            (3, ReleaseReason::LazyExpired)
        ]
    );
    assert_eq!(t.len(), 2);
}

#[test]
fn single_key_entries_and_self_reverse_pairs() {
    let (t, _log) = table(cfg(4, 64));
    t.insert(fwd(1), 1, ts(10), ts(0)).unwrap();
    assert_eq!(
        t.lookup_with(&fwd(1), ts(1), |e| e.reverse_key()),
        Some(None)
    );
    // fwd == rev is a single-key entry.
    t.insert_pair(fwd(2), fwd(2), 2, ts(10), ts(0)).unwrap();
    assert_eq!(t.len(), 2);
    assert_eq!(t.poll(ts(10), 10), 2);
}

#[test]
fn past_deadline_at_insert_fires_on_next_poll() {
    let (t, log) = table(cfg(4, 64));
    t.poll(ts(100), 10);
    t.insert_pair(fwd(1), rev(1), 1, ts(50), ts(100)).unwrap();
    assert_eq!(t.poll(ts(100), 10), 1);
    assert_eq!(released(&log), vec![(1, ReleaseReason::Expired)]);
}

#[test]
fn teardown_releases_everything_once() {
    let (t, log) = table(cfg(8, 256));
    for i in 0..100 {
        t.insert_pair(fwd(i), rev(i), i, ts(10), ts(0)).unwrap();
    }
    t.poll(ts(10), 30);
    assert_eq!(released(&log).len(), 30);
    drop(t);
    let r = released(&log);
    assert_eq!(r.len(), 100);
    let mut vals: Vec<u32> = r.iter().map(|(v, _)| *v).collect();
    vals.sort();
    vals.dedup();
    assert_eq!(vals.len(), 100, "exactly once each");
    assert_eq!(
        r.iter()
            .filter(|(_, x)| *x == ReleaseReason::Teardown)
            .count(),
        70
    );
}

#[test]
fn shared_by_threads() {
    let (t, log) = table(cfg(16, 1 << 14));
    let t = Arc::new(t);
    let hs: Vec<_> = (0..4u32)
        .map(|w| {
            let t = t.clone();
            std::thread::spawn(move || {
                for i in 0..2000u32 {
                    let id = i % 1000;
                    match t.insert_pair(fwd(id), rev(id), w, ts(60), ts(0)) {
                        Ok(Inserted::New(_) | Inserted::Existing(..)) => {}
                        Err(e) => panic!("{e}"),
                    }
                    assert!(t.lookup(&rev(id), ts(1)).is_some());
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(t.len(), 1000);
    assert_eq!(t.stats().inserted, 1000);
    assert_eq!(t.poll(ts(60), usize::MAX), 1000);
    assert_eq!(released(&log).len(), 1000);
}

#[test]
fn bad_config_is_a_typed_error() {
    let r = FlowTable::<u32>::new(
        FlowTableConfig {
            shards: 6,
            ..FlowTableConfig::default()
        },
        |_, _| {},
    );
    assert!(matches!(r, Err(flow_entry::ConfigError::Shards(6))));
}

#[test]
fn batch_lookup_matches_single_lookups() {
    for shards in [1, 8, 64] {
        let (t, log) = table(cfg(shards, 4096));
        for i in 0..500 {
            t.insert_pair(fwd(i), rev(i), i, ts(10 + u64::from(i % 2) * 100), ts(0))
                .unwrap();
        }
        // Hits (both directions), misses, and expired entries (even i at 50).
        let keys: Vec<_> = (0..700)
            .flat_map(|i| [fwd(i), rev(i), fwd(i).reversed()])
            .collect();
        let mut got = vec![None; keys.len()];
        let mut calls = 0;
        t.lookup_batch(&keys, ts(50), |i, e| {
            calls += 1;
            got[i] = e.map(|e| (*e.value(), e.direction(), e.handle()));
        });
        assert_eq!(calls, keys.len());
        for (i, k) in keys.iter().enumerate() {
            let want = t.lookup_with(k, ts(50), |e| (*e.value(), e.direction(), e.handle()));
            assert_eq!(got[i], want, "key {i}");
        }
        assert_eq!(t.len(), 250);
        assert_eq!(released(&log).len(), 250);
        assert!(
            released(&log)
                .iter()
                .all(|(v, r)| v % 2 == 0 && *r == ReleaseReason::LazyExpired)
        );
    }
}

#[test]
fn short_batches_match_single_lookups() {
    // Bursts of every size class (1 key, <= 16, <= 64, larger).
    for n in [1, 3, 16, 17, 64, 65, 300] {
        let (t, log) = table(cfg(8, 4096));
        for i in 0..200 {
            t.insert_pair(fwd(i), rev(i), i, ts(10 + u64::from(i % 2) * 100), ts(0))
                .unwrap();
        }
        let keys: Vec<_> = (0..300)
            .flat_map(|i| [fwd(i), rev(i), fwd(i).reversed()])
            .collect();
        let mut got = vec![None; keys.len()];
        let mut calls = 0;
        for (c, chunk) in keys.chunks(n).enumerate() {
            t.lookup_batch(chunk, ts(50), |i, e| {
                calls += 1;
                got[c * n + i] = e.map(|e| (*e.value(), e.direction(), e.handle()));
            });
        }
        assert_eq!(calls, keys.len(), "burst {n}");
        for (i, k) in keys.iter().enumerate() {
            let want = t.lookup_with(k, ts(50), |e| (*e.value(), e.direction(), e.handle()));
            assert_eq!(got[i], want, "burst {n}, key {i}");
        }
        assert_eq!(t.len(), 100, "burst {n}");
        assert_eq!(released(&log).len(), 100, "burst {n}");
    }
}

#[test]
fn an_older_now_from_another_worker_is_tolerated() {
    let (t, log) = table(cfg(4, 64));
    t.insert_pair(fwd(1), rev(1), 1, ts(10), ts(0)).unwrap();
    assert_eq!(t.poll(ts(20), 10), 1);
    // A worker whose clock lags: no panic, deadlines in its past are due.
    t.insert_pair(fwd(2), rev(2), 2, ts(15), ts(12)).unwrap();
    assert!(
        t.lookup(&fwd(2), ts(12)).is_some(),
        "not due at the worker's now"
    );
    // The wheel is already at 20; the entry is not released before its own
    // deadline by the lagging clock, and is once a clock reaches it.
    assert_eq!(t.poll(ts(12), 10), 0);
    assert_eq!(t.poll(ts(5), 10), 0);
    assert_eq!(t.len(), 1);
    assert_eq!(t.poll(ts(15), 10), 1);
    assert_eq!(
        released(&log),
        vec![(1, ReleaseReason::Expired), (2, ReleaseReason::Expired)]
    );
}

#[test]
fn deadlines_beyond_the_wheel_range_are_clamped_and_rearmed() {
    // 1 s tick, 30 s range: one level (64 ticks); a 1000 s deadline is far
    // beyond it and must fire neither early nor late.
    let (t, log) = table(FlowTableConfig {
        range: std::time::Duration::from_secs(30),
        ..cfg(2, 64)
    });
    t.insert_pair(fwd(1), rev(1), 1, ts(1000), ts(0)).unwrap();
    t.insert_pair(fwd(2), rev(2), 2, ts(70), ts(0)).unwrap();
    let mut now = 0;
    while now < 999 {
        now += 7;
        let n = t.poll(ts(now.min(999)), 10);
        assert_eq!(n, usize::from((70..77).contains(&now)), "at {now}");
    }
    assert_eq!(t.len(), 1);
    assert_eq!(t.poll(ts(1000), 10), 1);
    assert_eq!(
        released(&log),
        vec![(2, ReleaseReason::Expired), (1, ReleaseReason::Expired)]
    );
}

/// `poll_owned`: each worker expires only the shards it owns (shard `s` by
/// worker `s % workers`); together they expire what `poll` would, each
/// entry once, and nothing before its deadline.
#[test]
fn poll_owned_expires_only_the_workers_shards() {
    let (t, log) = table(cfg(8, 1024));
    let n = 200u32;
    for i in 0..n {
        let dl = ts(10 + u64::from(i % 5));
        assert!(matches!(
            t.insert_pair(fwd(i), rev(i), i, dl, ts(0)),
            Ok(Inserted::New(_))
        ));
    }
    let shard_of = |i: u32| t.shard_for(&fwd(i));
    assert_eq!(t.poll_owned(ts(9), usize::MAX, 0, 3), 0, "nothing due yet");
    let mut seen = std::collections::BTreeSet::new();
    for w in 0..3 {
        let before = released(&log).len();
        let k = t.poll_owned(ts(20), usize::MAX, w, 3);
        let now_released: Vec<_> = released(&log)[before..].to_vec();
        assert_eq!(k, now_released.len());
        for (v, r) in now_released {
            assert_eq!(r, ReleaseReason::Expired);
            assert_eq!(
                shard_of(v) % 3,
                w,
                "worker {w} released entry {v} of another worker"
            );
            assert!(seen.insert(v), "entry {v} released twice");
        }
        // The other workers' entries are still there.
        for i in 0..n {
            let owner = shard_of(i) % 3;
            assert_eq!(
                t.get(&fwd(i), ts(5)).is_some(),
                owner > w,
                "entry {i} (owner {owner}) after worker {w}"
            );
        }
    }
    assert_eq!(seen.len(), n as usize);
    assert!(t.is_empty());
}

/// `remove_matching` removes exactly the entries whose value matches, both
/// keys, each released once with `Removed`; a slot reused by an entry that
/// does not match (inserted after the removal) is untouched.
#[test]
fn remove_matching_removes_exactly_the_matching_pairs() {
    let (t, log) = table(cfg(4, 256));
    for i in 0..40u32 {
        t.insert_pair(fwd(i), rev(i), i, ts(100), ts(0)).unwrap();
    }
    assert_eq!(t.remove_matching(|v| v % 4 == 0), 10);
    let mut rel = released(&log);
    rel.sort_unstable();
    let want: Vec<_> = (0..40)
        .filter(|v| v % 4 == 0)
        .map(|v| (v, ReleaseReason::Removed))
        .collect();
    assert_eq!(rel, want);
    for i in 0..40u32 {
        let gone = i % 4 == 0;
        assert_eq!(t.get(&fwd(i), ts(1)).is_none(), gone, "fwd {i}");
        assert_eq!(t.get(&rev(i), ts(1)).is_none(), gone, "rev {i}");
    }
    assert_eq!(t.len(), 30);
    assert_eq!(t.stats().released[ReleaseReason::Removed.index()], 10);
    // Nothing matches any more: a second call is a no-op.
    assert_eq!(t.remove_matching(|v| v % 4 == 0), 0);
    // Freed slots are reused by new entries; those are not removed by a
    // predicate they do not satisfy.
    t.insert_pair(fwd(100), rev(100), 101, ts(100), ts(1))
        .unwrap();
    assert_eq!(t.remove_matching(|v| *v == 100), 0);
    assert_eq!(t.get(&fwd(100), ts(1)), Some(101));
    // Expiry later releases the rest once each.
    t.poll(ts(200), usize::MAX);
    assert_eq!(released(&log).len(), 41);
    assert_eq!(t.len(), 0);
}
