//! `Shard`: the single-writer flow table shard. A model-based property test
//! against a plain map of live entries, and unit tests for expiry, refresh,
//! lazy cleanup, draining, hard capacity, stale ids, long deadlines, seed
//! independence, reverse keys and memory. Time is always an argument.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::time::Duration;

use flow_entry::{
    ConfigError, Direction, EntryId, FlowKey, FlowTableConfig, ReleaseReason, Shard,
    ShardInsertError, Timestamp,
};
use proptest::prelude::*;

type Log = Vec<(u64, ReleaseReason)>;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn ms(x: u64) -> Timestamp {
    Timestamp::from_millis(x)
}

fn secs(x: u64) -> Timestamp {
    Timestamp::from_secs(x)
}

fn config(tick: Duration) -> FlowTableConfig {
    FlowTableConfig {
        tick,
        hash_seed: Some(42),
        ..FlowTableConfig::default()
    }
}

/// Key `i` of a small universe (spread over both halves of the `u128`).
fn key(i: u64) -> u128 {
    u128::from(i) << 64 | u128::from(i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// A shard of `u128` keys and `u64` values with its release log.
struct T {
    s: Shard<u128, u64>,
    log: Log,
}

impl T {
    fn new(capacity: usize, cfg: &FlowTableConfig, base: Timestamp) -> Self {
        Self {
            s: Shard::new(capacity, cfg, base).expect("valid config"),
            log: Vec::new(),
        }
    }
    fn insert(
        &mut self,
        f: u128,
        r: Option<u128>,
        v: u64,
        exp: Timestamp,
        now: Timestamp,
    ) -> Result<EntryId, ShardInsertError<u64>> {
        let log = &mut self.log;
        self.s
            .insert(f, r, v, exp, now, &mut |v, r| log.push((v, r)))
    }
    fn ins(&mut self, i: u64, exp: Timestamp, now: Timestamp) -> EntryId {
        self.insert(key(i), Some(key(1000 + i)), i, exp, now)
            .expect("inserted")
    }
    fn lookup(&mut self, k: u128, now: Timestamp) -> Option<(EntryId, Direction)> {
        let h = self.s.hash(&k);
        let log = &mut self.log;
        self.s.lookup(&k, h, now, &mut |v, r| log.push((v, r)))
    }
    fn poll(&mut self, now: Timestamp, budget: usize) -> usize {
        let log = &mut self.log;
        self.s.poll(now, budget, &mut |v, r| log.push((v, r)))
    }
    fn remove(&mut self, id: EntryId, reason: ReleaseReason) -> bool {
        let log = &mut self.log;
        self.s.remove(id, reason, &mut |v, r| log.push((v, r)))
    }
    fn clear(&mut self) -> usize {
        let log = &mut self.log;
        self.s.clear(&mut |v, r| log.push((v, r)))
    }
    fn take(&mut self) -> Log {
        std::mem::take(&mut self.log)
    }
}

// ---------------------------------------------------------------- model test

#[derive(Debug, Clone)]
enum Op {
    Insert { f: u8, r: Option<u8>, ttl: u16 },
    Lookup { k: u8 },
    SetExpires { id: u8, ttl: u16 },
    Remove { id: u8 },
    Confirm { id: u8 },
    Poll { budget: u8 },
    Advance { dt: u16 },
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0u8..16, proptest::option::weighted(0.8, 0u8..16), 0u16..300)
            .prop_map(|(f, r, ttl)| Op::Insert { f, r, ttl }),
        4 => (0u8..16).prop_map(|k| Op::Lookup { k }),
        2 => (any::<u8>(), 0u16..300).prop_map(|(id, ttl)| Op::SetExpires { id, ttl }),
        1 => any::<u8>().prop_map(|id| Op::Remove { id }),
        2 => any::<u8>().prop_map(|id| Op::Confirm { id }),
        2 => (0u8..6).prop_map(|budget| Op::Poll { budget }),
        3 => (0u16..120).prop_map(|dt| Op::Advance { dt }),
    ]
}

#[derive(Debug, Clone, Copy)]
struct Shape {
    capacity: usize,
    high: f64,
    low: f64,
    drain_budget: usize,
    evict_scan: usize,
    seed: u64,
}

fn arb_shape() -> impl Strategy<Value = Shape> {
    (
        1usize..=12,
        prop_oneof![Just(0.5), Just(0.75), Just(1.0)],
        prop_oneof![Just(0.25), Just(0.4)],
        0usize..=3,
        prop_oneof![Just(1usize), Just(3), Just(64)],
        any::<u64>(),
    )
        .prop_map(
            |(capacity, high, low, drain_budget, evict_scan, seed)| Shape {
                capacity,
                high,
                low,
                drain_budget,
                evict_scan,
                seed,
            },
        )
}

#[derive(Debug, Clone)]
struct ModelEntry {
    id: EntryId,
    fwd: u128,
    rev: Option<u128>,
    /// Rounded deadline (ns).
    deadline: u64,
    confirmed: bool,
}

#[derive(Default)]
struct Model {
    live: BTreeMap<u64, ModelEntry>,
}

impl Model {
    fn owner(&self, k: u128) -> Option<(u64, Direction)> {
        let mut found = self.live.iter().filter_map(|(v, e)| {
            if e.fwd == k {
                Some((*v, Direction::Forward))
            } else if e.rev == Some(k) {
                Some((*v, Direction::Reverse))
            } else {
                None
            }
        });
        let first = found.next();
        assert!(found.next().is_none(), "key {k} indexed twice in the model");
        first
    }
    fn by_id(&self, id: EntryId) -> Option<u64> {
        self.live.iter().find(|(_, e)| e.id == id).map(|(v, _)| *v)
    }
}

const TICK_MS: u64 = 10;
const BASE_MS: u64 = 1_000;

/// A time rounded up to the 10 ms grid from the base (the model's deadline).
fn round_up(t_ns: u64) -> u64 {
    let base = BASE_MS * 1_000_000;
    let tick = TICK_MS * 1_000_000;
    base + (t_ns - base).div_ceil(tick) * tick
}

fn run_model(shape: Shape, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let cfg = FlowTableConfig {
        tick: Duration::from_millis(TICK_MS),
        high_watermark: shape.high,
        low_watermark: shape.low,
        drain_budget: shape.drain_budget,
        evict_scan: shape.evict_scan,
        hash_seed: Some(shape.seed),
        ..FlowTableConfig::default()
    };
    let cap = shape.capacity;
    let high = ((cap as f64 * shape.high).floor() as usize).max(1);
    let low = ((cap as f64 * shape.low).floor() as usize).min(high - 1);
    let mut t = T::new(cap, &cfg, ms(BASE_MS));
    let mut m = Model::default();
    let mut ids: Vec<EntryId> = Vec::new();
    // Every value the shard accepted, and how often each was released.
    let mut accepted: BTreeSet<u64> = BTreeSet::new();
    let mut released: BTreeMap<u64, u32> = BTreeMap::new();
    let (mut n_full, mut n_exists) = (0u64, 0u64);
    let mut now = BASE_MS * 1_000_000;
    let mut next_val = 0u64;

    // Applies a release to the model (checks it was live, once).
    let mut apply = |m: &mut Model, v: u64| -> Result<ModelEntry, TestCaseError> {
        *released.entry(v).or_default() += 1;
        m.live
            .remove(&v)
            .ok_or_else(|| TestCaseError::fail(format!("released {v}: not live (twice?)")))
    };

    for op in ops {
        match op {
            Op::Insert { f, r, ttl } => {
                let fwd = key(u64::from(f));
                // The shard gets the raw reverse key: one equal to the
                // forward key means a single-key entry.
                let raw_rev = r.map(|r| key(u64::from(r)));
                let rev = raw_rev.filter(|r| *r != fwd);
                let val = next_val;
                next_val += 1;
                let exp = now + u64::from(ttl) * 1_000_000;
                // Model: due owners of the keys are released lazily, in
                // key order; a live owner refuses the insert.
                let mut want_lazy = vec![];
                let mut exists = false;
                let mut shadow = m.live.clone();
                for k in std::iter::once(fwd).chain(rev) {
                    let mm = Model {
                        live: shadow.clone(),
                    };
                    if let Some((v, _)) = mm.owner(k) {
                        if shadow[&v].deadline <= now {
                            want_lazy.push(v);
                            shadow.remove(&v);
                        } else {
                            exists = true;
                            break;
                        }
                    }
                }
                let len_after_lazy = shadow.len();
                let got = t.insert(
                    fwd,
                    raw_rev,
                    val,
                    Timestamp::from_nanos(exp),
                    Timestamp::from_nanos(now),
                );
                let log = t.take();
                prop_assert!(log.len() >= want_lazy.len(), "insert log {:?}", log);
                for (i, &v) in want_lazy.iter().enumerate() {
                    prop_assert_eq!(log[i], (v, ReleaseReason::LazyExpired));
                    apply(&mut m, v)?;
                }
                let rest = &log[want_lazy.len()..];
                match got {
                    Err(ShardInsertError::KeyExists(v)) => {
                        prop_assert!(exists, "unexpected KeyExists");
                        prop_assert_eq!(v, val, "value handed back");
                        prop_assert!(rest.is_empty(), "{:?}", rest);
                        n_exists += 1;
                    }
                    Err(ShardInsertError::Full(v)) => {
                        prop_assert!(!exists, "Full where the key exists");
                        prop_assert_eq!(v, val, "value handed back");
                        prop_assert!(rest.is_empty(), "{:?}", rest);
                        prop_assert_eq!(len_after_lazy, cap, "Full below capacity");
                        if shape.evict_scan >= cap {
                            // The scan saw every entry: none due, none embryonic.
                            for e in m.live.values() {
                                prop_assert!(e.confirmed && e.deadline > now, "evictable {:?}", e);
                            }
                        }
                        n_full += 1;
                    }
                    Ok(id) => {
                        prop_assert!(!exists, "inserted over a live key");
                        // Room made at capacity (at most one), then drains.
                        let limit = usize::from(len_after_lazy >= cap) + shape.drain_budget;
                        prop_assert!(rest.len() <= limit, "{} releases > {}", rest.len(), limit);
                        for &(v, why) in rest {
                            prop_assert!(v != val, "the new entry was a victim");
                            let e = apply(&mut m, v)?;
                            match why {
                                ReleaseReason::Expired => prop_assert!(e.deadline <= now),
                                ReleaseReason::Evicted => prop_assert!(!e.confirmed),
                                ReleaseReason::Drained => {}
                                other => prop_assert!(false, "reason {:?} on insert", other),
                            }
                        }
                        let dl = round_up(exp);
                        prop_assert_eq!(t.s.expires_at(id), Some(Timestamp::from_nanos(dl)));
                        prop_assert!(!ids.contains(&id), "id {:?} issued twice", id);
                        ids.push(id);
                        accepted.insert(val);
                        m.live.insert(
                            val,
                            ModelEntry {
                                id,
                                fwd,
                                rev,
                                deadline: dl,
                                confirmed: false,
                            },
                        );
                    }
                }
            }
            Op::Lookup { k } => {
                let k = key(u64::from(k));
                let got = t.lookup(k, Timestamp::from_nanos(now));
                let log = t.take();
                match m.owner(k) {
                    None => {
                        prop_assert_eq!(got, None);
                        prop_assert!(log.is_empty());
                    }
                    Some((v, _)) if m.live[&v].deadline <= now => {
                        prop_assert_eq!(got, None, "past its deadline is a miss");
                        prop_assert_eq!(log, vec![(v, ReleaseReason::LazyExpired)]);
                        apply(&mut m, v)?;
                    }
                    Some((v, dir)) => {
                        prop_assert_eq!(got, Some((m.live[&v].id, dir)));
                        prop_assert!(log.is_empty());
                        prop_assert_eq!(t.s.get(m.live[&v].id), Some(&v));
                    }
                }
            }
            Op::SetExpires { id, ttl } => {
                if ids.is_empty() {
                    continue;
                }
                let id = ids[usize::from(id) % ids.len()];
                let exp = now + u64::from(ttl) * 1_000_000;
                let got = t.s.set_expires_at(id, Timestamp::from_nanos(exp));
                match m.by_id(id) {
                    Some(v) => {
                        prop_assert!(got);
                        m.live.get_mut(&v).unwrap().deadline = round_up(exp);
                    }
                    None => prop_assert!(!got, "stale id refreshed"),
                }
            }
            Op::Remove { id } => {
                if ids.is_empty() {
                    continue;
                }
                let id = ids[usize::from(id) % ids.len()];
                let got = t.remove(id, ReleaseReason::Removed);
                let log = t.take();
                match m.by_id(id) {
                    Some(v) => {
                        prop_assert!(got);
                        prop_assert_eq!(log, vec![(v, ReleaseReason::Removed)]);
                        apply(&mut m, v)?;
                    }
                    None => {
                        prop_assert!(!got, "stale id removed");
                        prop_assert!(log.is_empty());
                    }
                }
            }
            Op::Confirm { id } => {
                if ids.is_empty() {
                    continue;
                }
                let id = ids[usize::from(id) % ids.len()];
                t.s.confirm(id);
                let live = m.by_id(id);
                if let Some(v) = live {
                    m.live.get_mut(&v).unwrap().confirmed = true;
                }
                prop_assert_eq!(t.s.is_confirmed(id), live.is_some());
            }
            Op::Poll { budget } => {
                let due: BTreeSet<u64> = m
                    .live
                    .iter()
                    .filter(|(_, e)| e.deadline <= now)
                    .map(|(v, _)| *v)
                    .collect();
                let n = t.poll(Timestamp::from_nanos(now), usize::from(budget));
                let log = t.take();
                prop_assert_eq!(n, due.len().min(usize::from(budget)));
                prop_assert_eq!(log.len(), n);
                for (v, why) in log {
                    prop_assert_eq!(why, ReleaseReason::Expired);
                    prop_assert!(due.contains(&v), "{} released before its deadline", v);
                    apply(&mut m, v)?;
                }
            }
            Op::Advance { dt } => now += u64::from(dt) * 1_000_000,
        }
        // Invariants after every operation.
        prop_assert_eq!(t.s.len(), m.live.len());
        prop_assert!(t.s.len() <= cap);
        let st = t.s.stats();
        prop_assert_eq!(
            st.embryonic,
            m.live.values().filter(|e| !e.confirmed).count()
        );
        prop_assert_eq!(
            st.drain_entered - st.drain_left,
            u64::from(t.s.is_draining())
        );
        if t.s.is_draining() {
            prop_assert!(t.s.len() > low, "draining at {} <= low {}", t.s.len(), low);
        } else {
            prop_assert!(
                t.s.len() <= high,
                "not draining at {} > high {}",
                t.s.len(),
                high
            );
        }
        for (v, e) in &m.live {
            prop_assert_eq!(t.s.get(e.id), Some(v));
            prop_assert_eq!(
                t.s.expires_at(e.id),
                Some(Timestamp::from_nanos(e.deadline))
            );
            prop_assert_eq!(t.s.keys(e.id), Some((e.fwd, e.rev)));
        }
        let listed: BTreeSet<u64> = t.s.iter().map(|(_, _, _, v, _)| *v).collect();
        prop_assert_eq!(&listed, &m.live.keys().copied().collect::<BTreeSet<_>>());
    }
    // Teardown: everything left goes once, with Teardown.
    let left = m.live.len();
    prop_assert_eq!(t.clear(), left);
    for (v, why) in t.take() {
        prop_assert_eq!(why, ReleaseReason::Teardown);
        apply(&mut m, v)?;
    }
    prop_assert!(m.live.is_empty() && t.s.is_empty());
    for id in &ids {
        prop_assert_eq!(t.s.get(*id), None, "stale id resolves");
    }
    for k in 0..16 {
        prop_assert_eq!(t.lookup(key(k), Timestamp::from_nanos(now)), None);
    }
    // Exactly once, by value.
    prop_assert_eq!(
        released.keys().copied().collect::<BTreeSet<_>>(),
        accepted.clone()
    );
    prop_assert!(
        released.values().all(|&n| n == 1),
        "released twice: {:?}",
        released
    );
    let st = t.s.stats();
    prop_assert_eq!(st.inserted, accepted.len() as u64);
    prop_assert_eq!(st.released.iter().sum::<u64>(), accepted.len() as u64);
    prop_assert_eq!((st.full, st.key_exists), (n_full, n_exists));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// Random operations against a map of live entries: results, releases
    /// (who, why, exactly once), `len`, draining bounds, Full only when
    /// nothing may be evicted, KeyExists exactly when a key is live.
    #[test]
    fn shard_matches_model(shape in arb_shape(), ops in proptest::collection::vec(arb_op(), 1..200)) {
        run_model(shape, ops)?;
    }
}

// ---------------------------------------------------------------- unit tests

#[test]
fn expiry_is_exact_not_before_the_deadline_and_at_it() {
    let mut t = T::new(16, &config(Duration::from_millis(100)), Timestamp::ZERO);
    let a = t.ins(1, secs(1), secs(0));
    // 1.05 s rounds up to the next tick, 1.1 s: never before the deadline.
    let b = t.ins(2, ms(1050), secs(0));
    assert_eq!(t.s.expires_at(a), Some(secs(1)));
    assert_eq!(t.s.expires_at(b), Some(ms(1100)));
    let just_before = Timestamp::from_nanos(secs(1).as_nanos() - 1);
    assert_eq!(t.poll(just_before, 100), 0);
    assert!(t.lookup(key(1), just_before).is_some());
    assert_eq!(t.poll(secs(1), 100), 1);
    assert_eq!(t.take(), vec![(1, ReleaseReason::Expired)]);
    assert_eq!(t.poll(ms(1099), 100), 0);
    assert!(t.lookup(key(1002), ms(1099)).is_some(), "reverse key");
    assert_eq!(t.poll(ms(1100), 100), 1);
    assert_eq!(t.take(), vec![(2, ReleaseReason::Expired)]);
    assert!(t.s.is_empty());
    // Through a lookup: a hit until the deadline, a miss at it.
    let c = t.ins(3, secs(5), secs(2));
    assert_eq!(
        t.lookup(key(3), Timestamp::from_nanos(secs(5).as_nanos() - 1))
            .map(|x| x.0),
        Some(c)
    );
    assert_eq!(t.lookup(key(3), secs(5)), None);
    assert_eq!(t.take(), vec![(3, ReleaseReason::LazyExpired)]);
}

#[test]
fn deadlines_round_on_the_grid_from_base() {
    // Base off the second: ticks of 1 s count from 0.5 s.
    let mut t = T::new(4, &config(Duration::from_secs(1)), ms(500));
    // A deadline before the base rounds to the base; a `now` before the
    // base makes nothing due, by the wheel or by a lookup.
    let b = t.ins(2, ms(100), ms(200));
    assert_eq!(t.s.expires_at(b), Some(ms(500)));
    assert_eq!(t.poll(ms(499), 10), 0);
    assert!(t.lookup(key(2), ms(499)).is_some());
    assert_eq!(t.poll(ms(500), 10), 1);
    let a = t.ins(1, ms(2000), ms(600));
    assert_eq!(t.s.expires_at(a), Some(ms(2500)));
    assert_eq!(t.poll(ms(2499), 10), 0);
    assert_eq!(t.poll(ms(2500), 10), 1);
    assert_eq!(
        t.take(),
        vec![(2, ReleaseReason::Expired), (1, ReleaseReason::Expired)]
    );
}

#[test]
fn a_later_deadline_set_before_firing_survives_the_first_slot() {
    let mut t = T::new(16, &config(Duration::from_secs(1)), Timestamp::ZERO);
    let a = t.ins(1, secs(10), secs(0));
    assert!(t.s.set_expires_at(a, secs(30)));
    assert_eq!(t.s.expires_at(a), Some(secs(30)));
    assert_eq!(t.poll(secs(10), 100), 0, "re-armed, not released");
    assert_eq!(t.s.len(), 1);
    assert!(t.lookup(key(1), secs(20)).is_some());
    assert_eq!(t.poll(secs(29), 100), 0);
    assert_eq!(t.poll(secs(30), 100), 1);
    assert_eq!(t.take(), vec![(1, ReleaseReason::Expired)]);
}

#[test]
fn an_earlier_deadline_rearms_eagerly() {
    let mut t = T::new(16, &config(Duration::from_secs(1)), Timestamp::ZERO);
    // Far enough out to sit in a high wheel level (its slot fires late).
    let a = t.ins(1, secs(100_000), secs(0));
    let b = t.ins(2, secs(100_000), secs(0));
    assert!(t.s.set_expires_at(a, secs(5)));
    assert!(t.s.set_expires_at(b, secs(7)));
    assert_eq!(t.poll(secs(4), 100), 0);
    assert_eq!(t.poll(secs(5), 100), 1);
    assert_eq!(t.poll(secs(7), 100), 1);
    assert_eq!(
        t.take(),
        vec![(1, ReleaseReason::Expired), (2, ReleaseReason::Expired)]
    );
}

#[test]
fn a_poll_budget_leaves_a_backlog_released_first_next_time() {
    let mut t = T::new(64, &config(Duration::from_secs(1)), Timestamp::ZERO);
    for i in 0..10 {
        t.ins(i, secs(5), secs(0));
    }
    t.ins(10, secs(6), secs(0));
    assert_eq!(t.poll(secs(7), 4), 4);
    let first: Vec<u64> = t.take().into_iter().map(|(v, _)| v).collect();
    assert_eq!(first, vec![0, 1, 2, 3], "FIFO within a slot");
    assert_eq!(t.s.len(), 7);
    // Inserted after the backlog formed, due at the same `now`.
    t.ins(11, secs(7), secs(7));
    assert_eq!(t.poll(secs(7), 100), 8);
    let rest: Vec<u64> = t.take().into_iter().map(|(v, _)| v).collect();
    assert_eq!(
        rest,
        vec![4, 5, 6, 7, 8, 9, 10, 11],
        "backlog first, then later slots"
    );
    assert!(t.s.is_empty());
    assert_eq!(t.s.stats().released(ReleaseReason::Expired), 12);
}

#[test]
fn a_lookup_releases_an_entry_past_its_deadline_lazily() {
    let mut t = T::new(16, &config(Duration::from_secs(1)), Timestamp::ZERO);
    t.ins(1, secs(5), secs(0));
    assert_eq!(
        t.lookup(key(1001), secs(5)),
        None,
        "reverse key, at the deadline"
    );
    assert_eq!(t.take(), vec![(1, ReleaseReason::LazyExpired)]);
    assert_eq!(t.s.stats().released(ReleaseReason::LazyExpired), 1);
    assert!(t.s.is_empty());
    // Both keys went with it; the wheel has nothing left.
    assert_eq!(t.lookup(key(1), secs(5)), None);
    assert_eq!(t.poll(secs(100), 100), 0);
    assert!(t.take().is_empty());
    // The keys are free again.
    t.ins(1, secs(200), secs(100));
    assert_eq!(t.s.len(), 1);
}

#[test]
fn an_insert_frees_keys_of_expired_entries_and_refuses_live_ones() {
    let mut t = T::new(16, &config(Duration::from_secs(1)), Timestamp::ZERO);
    t.insert(key(1), Some(key(2)), 1, secs(5), secs(0)).unwrap();
    // Same reverse key, after the first entry's deadline: it goes first.
    let b = t
        .insert(key(3), Some(key(2)), 2, secs(50), secs(6))
        .unwrap();
    assert_eq!(t.take(), vec![(1, ReleaseReason::LazyExpired)]);
    // Forward key of a live entry, or a reverse key that is a live
    // entry's forward key: KeyExists, value back, counted.
    let e = t.insert(key(3), None, 3, secs(50), secs(6)).unwrap_err();
    assert!(matches!(e, ShardInsertError::KeyExists(3)));
    let e = t
        .insert(key(9), Some(key(3)), 4, secs(50), secs(6))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "a key of the session belongs to a live entry"
    );
    assert_eq!(e.into_value(), 4);
    assert_eq!(t.s.stats().key_exists, 2);
    assert!(t.take().is_empty());
    assert_eq!(t.s.len(), 1);
    assert_eq!(t.s.keys(b), Some((key(3), Some(key(2)))));
    // A reverse key equal to the forward key is one key.
    let c = t
        .insert(key(7), Some(key(7)), 5, secs(50), secs(6))
        .unwrap();
    assert_eq!(t.s.keys(c), Some((key(7), None)));
    assert_eq!(t.lookup(key(7), secs(6)), Some((c, Direction::Forward)));
}

fn drain_cfg(high: f64, low: f64) -> FlowTableConfig {
    FlowTableConfig {
        high_watermark: high,
        low_watermark: low,
        drain_budget: 2,
        ..config(Duration::from_secs(1))
    }
}

#[test]
fn draining_starts_above_high_sheds_per_insert_and_stops_at_low() {
    let mut t = T::new(100, &drain_cfg(0.9, 0.75), Timestamp::ZERO);
    for i in 0..90 {
        let id = t.ins(i, secs(1000 + i), secs(0));
        // Half confirmed: the others are embryonic and go first.
        if i % 2 == 0 {
            t.s.confirm(id);
        }
    }
    assert!(!t.s.is_draining());
    assert_eq!(t.s.stats().drain_entered, 0);
    // The 91st insert crosses the high watermark: draining, 2 shed.
    let new = t.ins(90, secs(2000), secs(0));
    assert!(t.s.is_draining());
    assert_eq!(t.s.len(), 89);
    assert!(t.s.get(new).is_some(), "the new entry is never a victim");
    assert_eq!((t.s.stats().drain_entered, t.s.stats().drain_left), (1, 0));
    // Each insert sheds 2: occupancy falls by 1 per insert down to low.
    let mut i = 91;
    while t.s.is_draining() {
        t.ins(i, secs(2000), secs(0));
        i += 1;
        assert!(i < 200, "draining never stopped");
    }
    assert_eq!(t.s.len(), 75);
    let st = t.s.stats().clone();
    assert_eq!((st.drain_entered, st.drain_left), (1, 1));
    let drained: Vec<u64> = t
        .log
        .iter()
        .filter(|(_, r)| *r == ReleaseReason::Drained)
        .map(|(v, _)| *v)
        .collect();
    assert_eq!(drained.len() as u64, st.released(ReleaseReason::Drained));
    assert_eq!(drained.len(), 90 + (i as usize - 90) - 75);
    assert!(
        drained.iter().take(10).all(|v| v % 2 == 1),
        "embryonic first: {drained:?}"
    );
    // Below the low watermark: the next insert sheds nothing.
    t.ins(500, secs(2000), secs(0));
    assert_eq!(t.s.len(), 76);
    assert!(!t.s.is_draining());
    assert_eq!(t.s.len() + t.log.len(), t.s.stats().inserted as usize);
}

#[test]
fn draining_takes_due_entries_first_and_can_cap_new_deadlines() {
    let cfg = FlowTableConfig {
        draining_timeout: Some(Duration::from_secs(5)),
        ..drain_cfg(0.5, 0.2)
    };
    // Capacity 10: high 5, low 2.
    let mut t = T::new(10, &cfg, Timestamp::ZERO);
    for i in 0..4 {
        let id = t.ins(i, secs(100), secs(0));
        t.s.confirm(id);
    }
    let id = t.ins(4, secs(5), secs(0));
    t.s.confirm(id);
    // At 6 s entry 4 is due: the draining insert collects it (Expired),
    // then the soonest-due confirmed entry (Drained), sparing the new one.
    let new = t.ins(5, secs(100), secs(6));
    assert_eq!(
        t.take(),
        vec![(4, ReleaseReason::Expired), (0, ReleaseReason::Drained)]
    );
    assert!(t.s.get(new).is_some());
    assert!(t.s.is_draining());
    // Inserted while draining: at most `now + draining_timeout`.
    let capped = t.ins(6, secs(100), secs(10));
    assert_eq!(t.s.expires_at(capped), Some(secs(15)));
}

#[test]
fn hard_capacity_evicts_embryonic_never_confirmed_and_is_a_typed_error() {
    // High watermark 1.0: never drains; capacity is the hard limit.
    let cfg = FlowTableConfig {
        evict_scan: 64,
        ..drain_cfg(1.0, 0.5)
    };
    let mut t = T::new(20, &cfg, Timestamp::ZERO);
    let mut ids = vec![];
    for i in 0..20 {
        let id = t.ins(i, secs(100), secs(0));
        t.s.confirm(id);
        ids.push(id);
    }
    let e = t.insert(key(20), None, 20, secs(100), secs(0)).unwrap_err();
    assert!(matches!(e, ShardInsertError::Full(_)));
    assert_eq!(format!("{e:?}"), "Full(..)");
    assert_eq!(e.to_string(), "flow shard is full");
    assert_eq!(e.into_value(), 20, "the value comes back");
    assert_eq!(t.s.stats().full, 1);
    assert_eq!(t.s.len(), 20);
    assert!(t.take().is_empty(), "nothing dropped, nothing evicted");
    // An embryonic entry is evicted to make room; confirmed ones are not.
    assert!(t.remove(ids[0], ReleaseReason::Removed));
    let emb = t.ins(31, secs(100), secs(0));
    let newer = t.ins(32, secs(100), secs(0));
    assert_eq!(
        t.take(),
        vec![(0, ReleaseReason::Removed), (31, ReleaseReason::Evicted)]
    );
    assert_eq!(t.s.get(emb), None);
    assert_eq!(t.s.get(newer), Some(&32));
    assert_eq!(t.s.stats().released(ReleaseReason::Evicted), 1);
    // The new entry is embryonic itself: the next insert takes it.
    t.s.confirm(newer);
    assert!(t.insert(key(33), None, 33, secs(100), secs(0)).is_err());
    // A due entry is collected (Expired) to make room.
    assert!(t.s.set_expires_at(ids[5], secs(10)));
    t.ins(34, secs(100), secs(10));
    assert_eq!(t.take(), vec![(5, ReleaseReason::Expired)]);
    assert_eq!(t.s.len(), 20);
    assert_eq!(t.s.stats().full, 2);
}

#[test]
fn a_stale_id_never_resolves_after_release_and_reuse() {
    let mut t = T::new(4, &config(Duration::from_secs(1)), Timestamp::ZERO);
    let a = t.ins(1, secs(100), secs(0));
    assert!(t.remove(a, ReleaseReason::Removed));
    assert!(!t.remove(a, ReleaseReason::Removed), "removed twice");
    let b = t.ins(2, secs(100), secs(0));
    assert_eq!(b.slot(), a.slot(), "the slot is reused");
    assert_ne!(a, b);
    assert_eq!(t.s.get(a), None);
    assert_eq!(t.s.get_mut(a), None);
    assert_eq!(t.s.expires_at(a), None);
    assert_eq!(t.s.keys(a), None);
    assert!(!t.s.set_expires_at(a, secs(5)));
    assert!(!t.remove(a, ReleaseReason::Removed));
    t.s.confirm(a);
    assert!(!t.s.is_confirmed(a));
    assert!(
        !t.s.is_confirmed(b),
        "confirm through a stale id touched the new entry"
    );
    assert_eq!(t.s.expires_at(b), Some(secs(100)));
    *t.s.get_mut(b).unwrap() = 22;
    assert_eq!(t.s.get(b), Some(&22));
    assert_eq!(t.take(), vec![(1, ReleaseReason::Removed)]);
    // Expired, then reused: same.
    assert_eq!(t.poll(secs(100), 10), 1);
    let c = t.ins(3, secs(200), secs(100));
    assert_eq!(c.slot(), b.slot());
    assert_eq!(t.s.get(b), None);
    assert_eq!(t.s.get(c), Some(&3));
}

#[test]
fn deadlines_beyond_two_to_the_32_ticks_do_not_wrap() {
    // 1 ms ticks: a 32-bit tick count wraps after 49.7 days.
    let mut t = T::new(8, &config(Duration::from_millis(1)), Timestamp::ZERO);
    let day = 86_400_000u64;
    // A deadline 60 days out from tick 0.
    t.ins(1, ms(60 * day), ms(0));
    for (now, v) in [(50 * day, 2), (3650 * day, 3)] {
        t.ins(v, ms(now + 10_000), ms(now));
        assert!(t.lookup(key(v), ms(now + 9_999)).is_some());
        assert_eq!(t.poll(ms(now + 9_999), 10), 0, "fired early at {now}");
        assert_eq!(t.poll(ms(now + 10_000), 10), 1);
        let log = t.take();
        assert_eq!(log, vec![(v, ReleaseReason::Expired)]);
        if now == 50 * day {
            assert!(t.lookup(key(1), ms(60 * day - 1)).is_some());
            assert_eq!(t.poll(ms(60 * day - 1), 10), 0);
            assert_eq!(t.poll(ms(60 * day), 10), 1);
            assert_eq!(t.take(), vec![(1, ReleaseReason::Expired)]);
        }
    }
    // A session that lives 10 years, refreshed past 2^32 ticks.
    let id = t.ins(4, ms(3650 * day + 20_000), ms(3650 * day));
    assert!(t.s.set_expires_at(id, ms(3700 * day)));
    assert_eq!(t.poll(ms(3700 * day - 1), 10), 0);
    assert_eq!(t.poll(ms(3700 * day), 10), 1);
}

/// One fixed operation sequence (inserts with colliding keys, lookups,
/// refreshes, removals, polls with budgets, drains, evictions, clear).
fn scripted_release_order(seed: u64, high_watermark: f64) -> (Log, Vec<Option<EntryId>>) {
    let cfg = FlowTableConfig {
        hash_seed: Some(seed),
        high_watermark,
        low_watermark: 0.5,
        ..config(Duration::from_millis(100))
    };
    let mut t = T::new(48, &cfg, Timestamp::ZERO);
    let mut x: u64 = 0x1234_5678;
    let mut rnd = move |m: u64| {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) % m
    };
    let mut ids: Vec<EntryId> = vec![];
    let mut results = vec![];
    let mut now = 0u64;
    for v in 0..5000u64 {
        match rnd(8) {
            0..=2 => {
                let f = key(rnd(300));
                let r = (rnd(4) != 0).then(|| key(rnd(300)));
                let got = t.insert(f, r, v, ms(now + rnd(20_000)), ms(now)).ok();
                if let Some(id) = got {
                    ids.push(id);
                    if rnd(2) == 0 {
                        t.s.confirm(id);
                    }
                }
                results.push(got);
            }
            3 => results.push(t.lookup(key(rnd(300)), ms(now)).map(|x| x.0)),
            4 if !ids.is_empty() => {
                let id = ids[rnd(ids.len() as u64) as usize];
                t.s.set_expires_at(id, ms(now + rnd(20_000)));
            }
            5 if !ids.is_empty() => {
                let id = ids[rnd(ids.len() as u64) as usize];
                t.remove(id, ReleaseReason::Removed);
            }
            6 => {
                t.poll(ms(now), rnd(5) as usize);
            }
            _ => now += rnd(700),
        }
    }
    t.clear();
    (t.take(), results)
}

#[test]
fn release_order_is_independent_of_the_hash_seed() {
    // Draining (high watermark 0.75), and hard capacity (1.0: evictions).
    for (high, reasons) in [
        (
            0.75,
            &[
                ReleaseReason::Expired,
                ReleaseReason::LazyExpired,
                ReleaseReason::Drained,
            ][..],
        ),
        (
            1.0,
            &[
                ReleaseReason::Expired,
                ReleaseReason::LazyExpired,
                ReleaseReason::Evicted,
            ][..],
        ),
    ] {
        let (log, results) = scripted_release_order(1, high);
        assert!(log.len() > 1000, "{} releases", log.len());
        for r in reasons
            .iter()
            .chain(&[ReleaseReason::Removed, ReleaseReason::Teardown])
        {
            assert!(
                log.iter().any(|(_, why)| why == r),
                "no {r:?} in the script"
            );
        }
        for seed in [0xdead_beef, u64::MAX] {
            let (l2, r2) = scripted_release_order(seed, high);
            assert!(l2 == log, "release log differs with seed {seed:#x}");
            assert!(r2 == results, "results differ with seed {seed:#x}");
        }
    }
}

fn fk(i: u32) -> FlowKey {
    FlowKey::v4(
        Ipv4Addr::from(0x0a00_0000 | i),
        Ipv4Addr::new(8, 8, 8, 8),
        17,
        1000,
        53,
        0,
    )
}

/// The reply key as a NAT makes it (remote -> pool address and port).
fn fk_reply(i: u32) -> FlowKey {
    FlowKey::v4(
        Ipv4Addr::new(8, 8, 8, 8),
        Ipv4Addr::new(203, 0, 113, 1),
        17,
        53,
        i as u16,
        0,
    )
}

#[test]
fn a_reverse_key_lookup_returns_reverse() {
    let mut s: Shard<FlowKey, u32> =
        Shard::new(64, &config(Duration::from_secs(1)), Timestamp::ZERO).unwrap();
    let mut rel = |_: u32, _: ReleaseReason| panic!("nothing is released here");
    let mut ids = vec![];
    for i in 0..40 {
        ids.push(
            s.insert(fk(i), Some(fk_reply(i)), i, secs(100), secs(0), &mut rel)
                .unwrap(),
        );
    }
    let single = s
        .insert(fk(99), None, 99, secs(100), secs(0), &mut rel)
        .unwrap();
    for i in 0..40u32 {
        let (f, r) = (fk(i), fk_reply(i));
        let (hf, hr) = (s.hash(&f), s.hash(&r));
        assert_eq!(
            s.lookup(&f, hf, secs(1), &mut rel),
            Some((ids[i as usize], Direction::Forward))
        );
        assert_eq!(
            s.lookup(&r, hr, secs(1), &mut rel),
            Some((ids[i as usize], Direction::Reverse))
        );
        assert_eq!(s.keys(ids[i as usize]), Some((f, Some(r))));
    }
    let h = s.hash(&fk(99));
    assert_eq!(
        s.lookup(&fk(99), h, secs(1), &mut rel),
        Some((single, Direction::Forward))
    );
    let h = s.hash(&fk_reply(99));
    assert_eq!(
        s.lookup(&fk_reply(99), h, secs(1), &mut rel),
        None,
        "no reverse key"
    );
}

#[test]
fn prefetching_changes_nothing() {
    let mut t = T::new(256, &config(Duration::from_secs(1)), Timestamp::ZERO);
    for i in 0..200 {
        t.ins(i, secs(100), secs(0));
    }
    for i in 0..400u64 {
        for k in [key(i), key(1000 + i)] {
            let h = t.s.hash(&k);
            t.s.prefetch_index(h);
            t.s.prefetch_entry(h);
            let hit = t.lookup(k, secs(1));
            assert_eq!(hit.is_some(), i < 200, "key {i}");
            if let Some((id, _)) = hit {
                assert_eq!(t.s.get(id), Some(&i));
            }
        }
    }
    assert!(t.take().is_empty());
    assert_eq!(t.s.len(), 200);
}

#[test]
fn iter_remove_matching_and_clear_release_each_once() {
    let mut t = T::new(64, &config(Duration::from_secs(1)), Timestamp::ZERO);
    for i in 0..50 {
        t.ins(i, secs(100 + i), secs(0));
    }
    let listed: Vec<(u64, u128, Option<u128>, Timestamp)> =
        t.s.iter()
            .map(|(id, f, r, v, d)| {
                assert_eq!(t.s.get(id), Some(v));
                (*v, *f, r.copied(), d)
            })
            .collect();
    assert_eq!(listed.len(), 50);
    for (v, f, r, d) in &listed {
        assert_eq!((*f, *r, *d), (key(*v), Some(key(1000 + v)), secs(100 + v)));
    }
    let log = &mut t.log;
    let n =
        t.s.remove_matching(|v| v % 3 == 0, ReleaseReason::Removed, &mut |v, r| {
            log.push((v, r))
        });
    assert_eq!(n, 17);
    assert!(
        t.log
            .iter()
            .all(|(v, r)| v % 3 == 0 && *r == ReleaseReason::Removed)
    );
    assert_eq!(t.lookup(key(3), secs(1)), None);
    assert_eq!(t.lookup(key(1003), secs(1)), None);
    assert_eq!(t.clear(), 33);
    assert!(t.s.is_empty());
    let mut seen: Vec<u64> = t.log.iter().map(|(v, _)| *v).collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..50).collect::<Vec<_>>(), "each value exactly once");
    assert_eq!(t.s.stats().released(ReleaseReason::Teardown), 33);
    assert_eq!(t.poll(secs(1000), 100), 0, "nothing left on the wheel");
    // Usable again after clear.
    t.ins(7, secs(2000), secs(1000));
    assert_eq!(t.s.len(), 1);
}

#[test]
fn dropping_a_shard_drops_its_values_without_a_release() {
    let token = std::rc::Rc::new(());
    let mut s: Shard<u128, std::rc::Rc<()>> =
        Shard::new(8, &config(Duration::from_secs(1)), Timestamp::ZERO).unwrap();
    let mut rel = |_: std::rc::Rc<()>, _: ReleaseReason| panic!("no release on drop");
    for i in 0..5 {
        s.insert(key(i), None, token.clone(), secs(10), secs(0), &mut rel)
            .unwrap();
    }
    assert_eq!(std::rc::Rc::strong_count(&token), 6);
    drop(s);
    assert_eq!(
        std::rc::Rc::strong_count(&token),
        1,
        "values dropped, not leaked"
    );
}

#[test]
fn config_errors() {
    let cfg = config(Duration::from_secs(1));
    let base = Timestamp::ZERO;
    assert!(matches!(
        Shard::<u128, u8>::new(0, &cfg, base),
        Err(ConfigError::Capacity { capacity: 0, .. })
    ));
    assert!(matches!(
        Shard::<u128, u8>::new((1 << 28) + 1, &cfg, base),
        Err(ConfigError::Capacity { max, .. }) if max == 1 << 28
    ));
    let bad = FlowTableConfig {
        low_watermark: 0.95,
        ..cfg.clone()
    };
    assert!(matches!(
        Shard::<u128, u8>::new(8, &bad, base),
        Err(ConfigError::Watermarks { .. })
    ));
    let bad = FlowTableConfig {
        tick: Duration::ZERO,
        ..cfg.clone()
    };
    assert!(matches!(
        Shard::<u128, u8>::new(8, &bad, base),
        Err(ConfigError::Tick(_))
    ));
    // `shards` and `capacity` of the config are ignored.
    let other = FlowTableConfig {
        shards: 3,
        capacity: 0,
        ..cfg
    };
    assert_eq!(
        Shard::<u128, u8>::new(8, &other, base).unwrap().capacity(),
        8
    );
}

#[test]
fn memory_per_entry_at_one_million_full() {
    const N: usize = 1_000_000;
    let cfg = FlowTableConfig {
        high_watermark: 1.0,
        low_watermark: 0.9,
        ..config(Duration::from_millis(100))
    };
    let mut s: Shard<u128, [u8; 24]> = Shard::new(N, &cfg, Timestamp::ZERO).unwrap();
    let mut rel = |_: [u8; 24], _: ReleaseReason| panic!("nothing is released here");
    for i in 0..N as u64 {
        let v = [i as u8; 24];
        s.insert(
            key(i),
            Some(key(i + (1 << 40))),
            v,
            secs(1000 + i % 3600),
            secs(0),
            &mut rel,
        )
        .unwrap();
    }
    assert_eq!(s.len(), N);
    let entry = Shard::<u128, [u8; 24]>::ENTRY_BYTES;
    let total = s.memory_bytes();
    let index = total - N * entry;
    eprintln!(
        "entry {entry} B, index and fixed parts {:.1} B per entry, total {:.1} B per entry",
        index as f64 / N as f64,
        total as f64 / N as f64
    );
    assert_eq!(entry, 96);
    assert!(
        total / s.len() <= 128,
        "{} bytes per entry",
        total / s.len()
    );
}
