//! Shuttle model checking of the table's concurrency (random and PCT
//! schedulers). Iterations: `SHUTTLE_ITERATIONS` (default 200).
//! Only built with `--features shuttle`; every test name contains "shuttle".
#![cfg(feature = "shuttle")]

mod common;

use common::{fwd, rev};
use flow_entry::sync::thread;
use flow_entry::{
    FlowHandle, FlowKey, FlowTable, FlowTableConfig, Inserted, ReleaseReason, Timestamp,
};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Log = Arc<Mutex<Vec<(u32, ReleaseReason)>>>;

fn iterations() -> usize {
    std::env::var("SHUTTLE_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

fn ts(s: u64) -> Timestamp {
    Timestamp::from_secs(s)
}

fn cfg(shards: usize, capacity: usize) -> FlowTableConfig {
    FlowTableConfig {
        shards,
        capacity,
        tick: Duration::from_secs(1),
        hash_seed: Some(7),
        ..FlowTableConfig::default()
    }
}

fn table(c: FlowTableConfig) -> (Arc<FlowTable<u32>>, Log) {
    let log: Log = Arc::default();
    let l2 = log.clone();
    let t = FlowTable::new(c, move |v: &u32, r| l2.lock().unwrap().push((*v, r))).unwrap();
    (Arc::new(t), log)
}

/// Sessions whose two keys live in different shards: one with
/// shard(fwd) < shard(rev) and one with shard(fwd) > shard(rev), so two
/// threads working on them take the same two locks in opposite "natural"
/// orders.
fn cross_pairs(t: &FlowTable<u32>) -> (u32, u32) {
    let mut lo = None;
    let mut hi = None;
    for i in 0..10_000 {
        let (a, b) = (t.shard_for(&fwd(i)), t.shard_for(&rev(i)));
        if a < b && lo.is_none() {
            lo = Some((i, a, b));
        }
        if a > b && hi.is_none() {
            hi = Some((i, a, b));
        }
    }
    // Prefer two sessions over the same two shards (a lock-order cycle if
    // the table got it wrong).
    let (i, a, b) = lo.unwrap();
    for j in 0..10_000 {
        if t.shard_for(&fwd(j)) == b && t.shard_for(&rev(j)) == a {
            return (i, j);
        }
    }
    (i, hi.unwrap().0)
}

/// Invariants after all threads joined: counters equal contents; every
/// released value released once; released + held == created.
fn check_invariants(t: &FlowTable<u32>, log: &Log, created: &[u32]) {
    let st = t.stats();
    let mut held = vec![];
    t.scan(|_, _, v, _| held.push(*v));
    assert_eq!(st.len, held.len(), "len counter vs contents");
    assert_eq!(t.len(), held.len());
    let rel: Vec<u32> = log.lock().unwrap().iter().map(|(v, _)| *v).collect();
    let mut all: Vec<u32> = rel.iter().chain(held.iter()).copied().collect();
    all.sort();
    let n = all.len();
    all.dedup();
    assert_eq!(all.len(), n, "released twice, or released and still held");
    let mut c = created.to_vec();
    c.sort();
    assert_eq!(all, c, "released + held == created");
    let released_count: u64 = st.released.iter().sum();
    assert_eq!(released_count as usize, rel.len(), "per-reason counters");
}

fn both(f: impl Fn() + Send + Sync + 'static + Clone) {
    shuttle::check_random(f.clone(), iterations());
    shuttle::check_pct(f, iterations(), 3);
}

// ------------------------------------------------------------------ tests

fn insert_race() {
    let (t, log) = table(cfg(4, 64));
    let hs: Vec<_> = (0..3u32)
        .map(|w| {
            let t = t.clone();
            thread::spawn(move || {
                // Same forward key, each its own reverse key (its own port).
                t.insert_pair(fwd(1), rev(100 + w), w, ts(30), ts(0))
            })
        })
        .collect();
    let res: Vec<_> = hs.into_iter().map(|h| h.join().unwrap()).collect();
    let winners: Vec<FlowHandle> = res
        .iter()
        .filter_map(|r| match r {
            Ok(Inserted::New(h)) => Some(*h),
            _ => None,
        })
        .collect();
    assert_eq!(winners.len(), 1, "exactly one winner: {res:?}");
    let mut winner_val = None;
    for (w, r) in res.iter().enumerate() {
        match r {
            Ok(Inserted::New(_)) => winner_val = Some(w as u32),
            Ok(Inserted::Existing(h, v)) => {
                assert_eq!(*h, winners[0], "loser adopts the winner");
                assert_eq!(*v, w as u32, "loser gets its own value back");
            }
            Err(e) => panic!("{e}"),
        }
    }
    let wv = winner_val.unwrap();
    // Only the winner's reverse key exists.
    for w in 0..3 {
        assert_eq!(t.lookup(&rev(100 + w), ts(1)).is_some(), w == wv);
    }
    check_invariants(&t, &log, &[wv]);
    assert!(
        log.lock().unwrap().is_empty(),
        "losers never reach the hook"
    );
    drop(t);
    assert_eq!(*log.lock().unwrap(), vec![(wv, ReleaseReason::Teardown)]);
}

#[test]
fn shuttle_insert_race_one_winner() {
    both(insert_race);
}

fn refresh_vs_expiry() {
    let (t, log) = table(cfg(4, 64));
    let Ok(Inserted::New(h)) = t.insert_pair(fwd(1), rev(1), 1, ts(10), ts(0)) else {
        panic!()
    };
    let t1 = t.clone();
    let a = thread::spawn(move || t1.poll(ts(10), 10));
    let t2 = t.clone();
    let b = thread::spawn(move || t2.refresh(h, ts(20), ts(9)));
    let t3 = t.clone();
    let c = thread::spawn(move || t3.lookup(&rev(1), ts(9)).is_some());
    let polled = a.join().unwrap();
    let refreshed = b.join().unwrap();
    let _seen = c.join().unwrap();
    let present = t.lookup(&fwd(1), ts(10)).is_some();
    if refreshed.is_ok() {
        // Extended before it was collected: it must survive (no loss) ...
        assert!(present, "refreshed entry lost");
        assert_eq!(polled, 0);
        check_invariants(&t, &log, &[1]);
    } else {
        // ... or it was gone and stays gone (no resurrection).
        assert!(!present, "resurrected");
        assert_eq!(polled, 1);
        assert_eq!(*log.lock().unwrap(), vec![(1, ReleaseReason::Expired)]);
    }
}

#[test]
fn shuttle_refresh_vs_expiry_no_resurrection() {
    both(refresh_vs_expiry);
}

fn remove_vs_lookup() {
    let (t, log) = table(cfg(4, 64));
    let Ok(Inserted::New(h1)) = t.insert_pair(fwd(1), rev(1), 1, ts(100), ts(0)) else {
        panic!()
    };
    let t1 = t.clone();
    let a = thread::spawn(move || {
        let ra = t1.remove(h1, ReleaseReason::Removed);
        match t1.insert_pair(fwd(1), rev(1), 2, ts(100), ts(0)) {
            Ok(Inserted::New(h2)) => (ra, h2),
            r => panic!("{r:?}"),
        }
    });
    let t2 = t.clone();
    let b = thread::spawn(move || {
        // Inspect now, remove later by handle: must never hit a newer entry.
        let seen = t2.lookup(&rev(1), ts(1));
        seen.map(|h| (h, t2.remove(h, ReleaseReason::Removed)))
    });
    let (ra, h2) = a.join().unwrap();
    let b = b.join().unwrap();
    assert_ne!(h1, h2, "a reused slot gets a new generation");
    let present2 = t.lookup(&fwd(1), ts(1)).is_some();
    match b {
        Some((h, rb)) if h == h1 => {
            assert!(ra ^ rb, "h1 removed exactly once (a: {ra}, b: {rb})");
            assert!(present2, "stale handle removed the new entry (ABA)");
        }
        Some((h, rb)) => {
            assert_eq!(h, h2);
            assert!(ra && rb);
            assert!(!present2);
        }
        None => {
            assert!(ra);
            assert!(present2);
        }
    }
    check_invariants(&t, &log, &[1, 2]);
}

#[test]
fn shuttle_remove_vs_lookup_no_aba() {
    both(remove_vs_lookup);
}

/// `remove_matching` (clearing by value) racing with a worker that removes
/// the matching entry and inserts a non-matching one under the same keys
/// (likely in the freed slot): the new entry always survives, the old one
/// is released exactly once, whoever removed it.
fn clear_vs_reinsert() {
    let (t, log) = table(cfg(4, 64));
    let Ok(Inserted::New(h1)) = t.insert_pair(fwd(1), rev(1), 1, ts(100), ts(0)) else {
        panic!()
    };
    t.insert_pair(fwd(3), rev(3), 3, ts(100), ts(0)).unwrap();
    let t1 = t.clone();
    let a = thread::spawn(move || {
        let ra = t1.remove(h1, ReleaseReason::Removed);
        let r = t1.insert_pair(fwd(1), rev(1), 2, ts(100), ts(0));
        assert!(matches!(r, Ok(Inserted::New(_))), "{r:?}");
        ra
    });
    let t2 = t.clone();
    let b = thread::spawn(move || t2.remove_matching(|v| *v == 1 || *v == 3));
    let ra = a.join().unwrap();
    let nb = b.join().unwrap();
    assert_eq!(t.get(&fwd(1), ts(1)), Some(2), "the new entry survived");
    assert_eq!(t.get(&fwd(3), ts(1)), None);
    assert_eq!(nb, if ra { 1 } else { 2 }, "value 1 removed exactly once");
    check_invariants(&t, &log, &[1, 2, 3]);
}

/// `peek` (lock-free) of a handle racing with its removal and a new entry
/// under the same keys (likely in the freed slot, aux word set under the
/// lock): the reader sees the old entry's aux or nothing, and once nothing,
/// nothing again — never the new entry's word under the old handle.
fn peek_vs_reinsert() {
    let (t, log) = table(cfg(4, 64));
    let Ok(Inserted::New(h1)) = t.insert_pair(fwd(1), rev(1), 1, ts(100), ts(0)) else {
        panic!()
    };
    t.lookup_with(&fwd(1), ts(0), |e| e.set_aux(11));
    let t1 = t.clone();
    let a = thread::spawn(move || {
        assert!(t1.remove(h1, ReleaseReason::Removed));
        let Ok(Inserted::New(h2)) = t1.insert_pair(fwd(1), rev(1), 2, ts(100), ts(0)) else {
            panic!()
        };
        t1.lookup_with(&rev(1), ts(0), |e| e.set_aux(22));
        h2
    });
    let t2 = t.clone();
    let b = thread::spawn(move || {
        let mut seen = vec![];
        for _ in 0..4 {
            seen.push(t2.peek(h1, ts(1)).map(|p| p.aux));
            thread::yield_now();
        }
        seen
    });
    let h2 = a.join().unwrap();
    let seen = b.join().unwrap();
    let gone = seen.iter().position(Option::is_none).unwrap_or(seen.len());
    assert!(seen[..gone].iter().all(|s| *s == Some(11)), "{seen:?}");
    assert!(seen[gone..].iter().all(Option::is_none), "{seen:?}");
    assert_eq!(t.peek(h1, ts(1)), None);
    assert_eq!(t.peek(h2, ts(1)).map(|p| p.aux), Some(22));
    assert_eq!(t.peek(h2, ts(100)), None, "past its deadline");
    check_invariants(&t, &log, &[1, 2]);
}

#[test]
fn shuttle_peek_vs_reinsert_no_aba() {
    both(peek_vs_reinsert);
}

#[test]
fn shuttle_clear_vs_reinsert_no_aba() {
    both(clear_vs_reinsert);
}

fn pair_across_shards() {
    let (t, log) = table(cfg(4, 64));
    let (i, j) = cross_pairs(&t);
    assert_ne!(t.shard_for(&fwd(i)), t.shard_for(&rev(i)));
    // Two writers on sessions with opposite shard orders, one reader.
    let writer = |t: Arc<FlowTable<u32>>, s: u32| {
        thread::spawn(move || {
            let Ok(Inserted::New(h)) = t.insert_pair(fwd(s), rev(s), s, ts(100), ts(0)) else {
                panic!()
            };
            t.lookup_with(&rev(s), ts(1), |e| e.confirm());
            assert!(t.remove(h, ReleaseReason::Removed));
        })
    };
    let a = writer(t.clone(), i);
    let b = writer(t.clone(), j);
    let t3 = t.clone();
    let c = thread::spawn(move || {
        // Observations in program order, alternating keys.
        let mut seen = vec![];
        for k in 0..6 {
            let key: FlowKey = if k % 2 == 0 { fwd(i) } else { rev(i) };
            seen.push(t3.lookup(&key, ts(1)).is_some());
        }
        seen
    });
    a.join().unwrap();
    b.join().unwrap();
    let seen = c.join().unwrap();
    // The pair exists during one interval: absent* present* absent*,
    // whichever key is asked. A half pair would break the pattern.
    let mut phase = 0;
    for &p in &seen {
        match (phase, p) {
            (0, true) => phase = 1,
            (1, false) => phase = 2,
            (2, true) => panic!("pair seen half present: {seen:?}"),
            _ => {}
        }
    }
    check_invariants(&t, &log, &[i, j]);
    assert!(t.is_empty());
    assert!(
        log.lock()
            .unwrap()
            .iter()
            .all(|(_, r)| *r == ReleaseReason::Removed)
    );
}

#[test]
fn shuttle_pair_across_shards_no_half_pair_no_deadlock() {
    both(pair_across_shards);
}

fn expiry_across_shards() {
    // Poll expiring cross-shard pairs while lookups lazily expire them.
    let (t, log) = table(cfg(4, 64));
    let (i, j) = cross_pairs(&t);
    for s in [i, j] {
        t.insert_pair(fwd(s), rev(s), s, ts(5), ts(0)).unwrap();
    }
    let t1 = t.clone();
    let a = thread::spawn(move || t1.poll(ts(5), 10));
    let t2 = t.clone();
    let b = thread::spawn(move || {
        (
            t2.lookup(&rev(i), ts(6)).is_some(),
            t2.lookup(&fwd(j), ts(6)).is_some(),
        )
    });
    a.join().unwrap();
    assert_eq!(b.join().unwrap(), (false, false));
    assert!(t.is_empty());
    check_invariants(&t, &log, &[i, j]);
}

#[test]
fn shuttle_expiry_vs_lazy_expiry_across_shards() {
    both(expiry_across_shards);
}

fn drain_vs_insert() {
    // 2 shards of 4: draining above 2, hard limit 4.
    let c = FlowTableConfig {
        high_watermark: 0.5,
        low_watermark: 0.25,
        drain_budget: 2,
        ..cfg(2, 8)
    };
    let (t, log) = table(c);
    let hs: Vec<_> = (0..2u32)
        .map(|w| {
            let t = t.clone();
            thread::spawn(move || {
                let mut created = vec![];
                for k in 0..4 {
                    let s = w * 100 + k;
                    match t.insert_pair(fwd(s), rev(s), s, ts(10 + u64::from(k)), ts(u64::from(k)))
                    {
                        Ok(Inserted::New(_)) => created.push(s),
                        Ok(Inserted::Existing(..)) => panic!("distinct keys"),
                        Err(_) => {}
                    }
                }
                created
            })
        })
        .collect();
    let t3 = t.clone();
    let p = thread::spawn(move || t3.poll(ts(11), 2));
    let mut created = vec![];
    for h in hs {
        created.extend(h.join().unwrap());
    }
    p.join().unwrap();
    check_invariants(&t, &log, &created);
    for sh in 0..t.shard_count() {
        assert!(t.shard_len(sh) <= t.shard_capacity());
    }
    let st = t.stats();
    assert_eq!(st.inserted as usize, created.len());
    drop(t);
    let mut rel: Vec<u32> = log.lock().unwrap().iter().map(|(v, _)| *v).collect();
    rel.sort();
    created.sort();
    assert_eq!(rel, created, "every created entry released exactly once");
}

#[test]
fn shuttle_drain_vs_insert() {
    both(drain_vs_insert);
}
