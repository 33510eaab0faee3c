//! Model-based property test: random operation sequences against a plain
//! reference model (a `BTreeMap` with deadlines); every result, the release
//! log (values, reasons, order) and `len` must match.

mod common;

use common::*;
use flow_entry::{Direction, FlowHandle, FlowKey, Gone, Inserted, ReleaseReason, Timestamp};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

#[derive(Debug, Clone)]
enum Op {
    Insert { f: u8, r: u8, ttl: u8 },
    Lookup { k: u8 },
    SetExpires { k: u8, ttl: u8 },
    Refresh { h: u8, ttl: u8 },
    Remove { h: u8 },
    Advance { dt: u8 },
    Poll { budget: u8 },
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..12, 0u8..12, 0u8..40).prop_map(|(f, r, ttl)| Op::Insert { f, r, ttl }),
        4 => (0u8..12).prop_map(|k| Op::Lookup { k }),
        1 => (0u8..12, 0u8..40).prop_map(|(k, ttl)| Op::SetExpires { k, ttl }),
        2 => (any::<u8>(), 0u8..40).prop_map(|(h, ttl)| Op::Refresh { h, ttl }),
        1 => any::<u8>().prop_map(|h| Op::Remove { h }),
        3 => (0u8..15).prop_map(|dt| Op::Advance { dt }),
        2 => (0u8..6).prop_map(|budget| Op::Poll { budget }),
    ]
}

/// Twelve keys: pairs among them collide in every way (fwd = another's
/// rev, rev = another's rev, fwd == rev).
fn pool(i: u8) -> FlowKey {
    let a = Ipv4Addr::new(10, 0, 0, i % 4);
    let b = Ipv4Addr::new(192, 0, 2, i % 3);
    FlowKey::v4(a, b, 6, 1000 + u16::from(i % 2), 80, 0)
}

#[derive(Debug)]
struct E {
    fwd: FlowKey,
    rev: Option<FlowKey>,
    deadline: u64,
    handle: FlowHandle,
}

#[derive(Default)]
struct Model {
    entries: BTreeMap<u32, E>,
    keys: BTreeMap<FlowKey, (u32, Direction)>,
    log: Vec<(u32, ReleaseReason)>,
}

impl Model {
    fn release(&mut self, id: u32, r: ReleaseReason) {
        let e = self.entries.remove(&id).unwrap();
        self.keys.remove(&e.fwd);
        if let Some(k) = e.rev {
            self.keys.remove(&k);
        }
        self.log.push((id, r));
    }
    fn by_handle(&self, h: FlowHandle) -> Option<u32> {
        self.entries
            .iter()
            .find(|(_, e)| e.handle == h)
            .map(|(id, _)| *id)
    }
}

fn run(ops: Vec<Op>, shards: usize) -> Result<(), TestCaseError> {
    let (t, log) = table(cfg(shards, 1 << 12));
    let mut m = Model::default();
    let mut handles: Vec<FlowHandle> = vec![];
    let mut now = 0u64;
    let mut next_val = 0u32;
    let ts = Timestamp::from_secs;
    for op in ops {
        match op {
            Op::Insert { f, r, ttl } => {
                let (fwd, rk) = (pool(f), pool(r));
                let rev = (fwd != rk).then_some(rk);
                let val = next_val;
                next_val += 1;
                let dl = now + u64::from(ttl);
                let got = t.insert_pair(fwd, rk, val, ts(dl), ts(now));
                // Model.
                let want = loop {
                    if let Some(&(id, _)) = m.keys.get(&fwd) {
                        if m.entries[&id].deadline > now {
                            break Ok(Some(m.entries[&id].handle));
                        }
                        m.release(id, ReleaseReason::LazyExpired);
                        continue;
                    }
                    if let Some(rk) = rev
                        && let Some(&(id, _)) = m.keys.get(&rk)
                    {
                        if m.entries[&id].deadline > now {
                            break Err(flow_entry::InsertError::Conflict);
                        }
                        m.release(id, ReleaseReason::LazyExpired);
                        continue;
                    }
                    break Ok(None);
                };
                match (got, want) {
                    (Ok(Inserted::New(h)), Ok(None)) => {
                        handles.push(h);
                        m.keys.insert(fwd, (val, Direction::Forward));
                        if let Some(rk) = rev {
                            m.keys.insert(rk, (val, Direction::Reverse));
                        }
                        m.entries.insert(
                            val,
                            E {
                                fwd,
                                rev,
                                deadline: dl,
                                handle: h,
                            },
                        );
                    }
                    (Ok(Inserted::Existing(h, v)), Ok(Some(wh))) => {
                        prop_assert_eq!(h, wh);
                        prop_assert_eq!(v, val);
                    }
                    (Err(e), Err(we)) => prop_assert_eq!(e, we),
                    (g, w) => prop_assert!(false, "insert: got {:?}, model {:?}", g, w),
                }
            }
            Op::Lookup { k } => {
                let key = pool(k);
                let got = t.lookup_with(&key, ts(now), |e| (*e.value(), e.direction()));
                let want = match m.keys.get(&key).copied() {
                    Some((id, _)) if m.entries[&id].deadline <= now => {
                        m.release(id, ReleaseReason::LazyExpired);
                        None
                    }
                    Some((id, d)) => Some((id, d)),
                    None => None,
                };
                prop_assert_eq!(got, want);
            }
            Op::SetExpires { k, ttl } => {
                let key = pool(k);
                let dl = now + u64::from(ttl);
                let got = t.lookup_with(&key, ts(now), |e| e.set_expires_at(ts(dl)));
                let want = match m.keys.get(&key).copied() {
                    Some((id, _)) if m.entries[&id].deadline <= now => {
                        m.release(id, ReleaseReason::LazyExpired);
                        None
                    }
                    Some((id, _)) => {
                        m.entries.get_mut(&id).unwrap().deadline = dl;
                        Some(())
                    }
                    None => None,
                };
                prop_assert_eq!(got, want);
            }
            Op::Refresh { h, ttl } => {
                if handles.is_empty() {
                    continue;
                }
                let h = handles[usize::from(h) % handles.len()];
                let dl = now + u64::from(ttl);
                let got = t.refresh(h, ts(dl), ts(now));
                let want = match m.by_handle(h) {
                    // Past its deadline: not extended (lookups see it gone).
                    Some(id) if m.entries[&id].deadline <= now => Err(Gone),
                    Some(id) => {
                        m.entries.get_mut(&id).unwrap().deadline = dl;
                        Ok(())
                    }
                    None => Err(Gone),
                };
                prop_assert_eq!(got, want);
            }
            Op::Remove { h } => {
                if handles.is_empty() {
                    continue;
                }
                let h = handles[usize::from(h) % handles.len()];
                let got = t.remove(h, ReleaseReason::Removed);
                let want = match m.by_handle(h) {
                    Some(id) => {
                        m.release(id, ReleaseReason::Removed);
                        true
                    }
                    None => false,
                };
                prop_assert_eq!(got, want);
            }
            Op::Advance { dt } => now += u64::from(dt),
            Op::Poll { budget } => {
                let got = t.poll(ts(now), usize::from(budget));
                let mut due: Vec<(u64, FlowKey, u32)> = m
                    .entries
                    .iter()
                    .filter(|(_, e)| e.deadline <= now)
                    .map(|(id, e)| (e.deadline, e.fwd, *id))
                    .collect();
                due.sort();
                due.truncate(usize::from(budget));
                for (_, _, id) in &due {
                    m.release(*id, ReleaseReason::Expired);
                }
                prop_assert_eq!(got, due.len());
            }
        }
        prop_assert_eq!(&released(&log), &m.log);
        prop_assert_eq!(t.len(), m.entries.len());
    }
    // Drain everything: every entry is released exactly once.
    t.poll(ts(now + 1000), usize::MAX);
    prop_assert!(t.is_empty());
    let mut vals: Vec<u32> = released(&log).iter().map(|(v, _)| *v).collect();
    let n = vals.len();
    vals.sort();
    vals.dedup();
    prop_assert_eq!(vals.len(), n, "a value was released twice");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn table_matches_model_one_shard(ops in proptest::collection::vec(arb_op(), 1..120)) {
        run(ops, 1)?;
    }

    #[test]
    fn table_matches_model_many_shards(ops in proptest::collection::vec(arb_op(), 1..120)) {
        run(ops, 8)?;
    }
}

/// The same operations on two tables with different hash seeds release the
/// same entries in the same order (nothing observable depends on the seed).
#[test]
fn release_order_does_not_depend_on_the_seed() {
    let mut logs = vec![];
    for seed in [1u64, 0xdead_beef, 77] {
        let (t, log) = table(flow_entry::FlowTableConfig {
            hash_seed: Some(seed),
            ..cfg(16, 1 << 14)
        });
        let ts = Timestamp::from_secs;
        for i in 0..3000u32 {
            let now = u64::from(i / 100);
            t.insert_pair(
                fwd(i),
                rev(i),
                i,
                ts(now + 5 + u64::from(i * 7 % 13)),
                ts(now),
            )
            .unwrap();
            if i % 17 == 0 {
                t.lookup(&rev(i / 2), ts(now));
            }
            if i % 50 == 0 {
                t.poll(ts(now), 40);
            }
        }
        let mut now = 30;
        while !t.is_empty() {
            now += 1;
            t.poll(ts(now), 25);
        }
        logs.push(released(&log));
    }
    assert_eq!(logs[0].len(), 3000);
    assert_eq!(logs[0], logs[1]);
    assert_eq!(logs[0], logs[2]);
}
