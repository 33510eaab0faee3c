//! NAT's session store: a sharded two-key table with deadline expiry.
//!
//! NOTE: this is a local stand-in for `flow_entry::FlowTable`, written to the
//! team contract (two keys per entry, `lookup_with` closure under the shard
//! lock, `set_expires_at` later = store / earlier = eager re-arm, a release
//! hook run exactly once per entry whatever removes it, bounded `poll`).
//! `flow-entry` had no table when this crate was written; switching is
//! confined to this module.
//!
//! Both keys of a session live in the **same shard**: the shard is chosen by
//! the caller from the remote endpoint, which source NAT and port forwarding
//! both leave untouched (see `Nat::shard_hint`). One lock therefore covers a
//! whole session: insert, refresh, expiry and removal of the two keys are
//! atomic together (pitfalls §7), and removal happens under the same lock
//! that decided it (pitfalls §2).
//!
//! Expiry: a per-shard binary heap of (deadline, slot, generation). A
//! refresh stores a later deadline in the entry only; when the heap record
//! fires and the deadline moved, the entry is re-armed. An earlier deadline
//! (TCP RST / both FINs) pushes a new record at once (eager re-arm) and
//! marks older records stale. O(log n) per arm; `poll` does work
//! proportional to what fires, bounded by its budget.
//!
//! At capacity (a table-wide count) an insert evicts the live entry nearest
//! to expiry in the shard it inserts into (counted through the release hook
//! with `Evicted`); it never fails silently. (If that shard is empty the
//! table overshoots capacity by at most one entry per concurrent inserter.)
//!
//! Known weakness: sharding by the remote endpoint concentrates all
//! sessions towards one popular remote (a DNS resolver) in one shard, so
//! that shard's lock is hotter than the others.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hash::{BuildHasher, Hasher};

use hashbrown::HashMap;

use crate::pkt::Tuple;
use crate::sync::{AtomicU64, Mutex, Ordering, lock};

/// Why an entry left the table (passed to the release hook).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum ReleaseReason {
    /// Its deadline fired in `poll`.
    Expired,
    /// A lookup found it past its deadline and removed it.
    LazyExpired,
    /// Evicted to make room at capacity.
    Evicted,
    /// Removed explicitly.
    Removed,
    /// The table was dropped.
    Teardown,
}

/// Outcome of `insert_pair`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// The entry was inserted.
    New,
    /// A live entry already holds the forward key (a racing creator won);
    /// the caller's value was dropped and the caller must release what it
    /// allocated.
    Existing,
}

/// Why `insert_pair` failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InsertError {
    /// The reverse key is held by a different live entry.
    #[error("reverse key held by another session")]
    KeyConflict,
}

/// Small fast hasher for tuples (multiply-rotate); keys are not attacker-
/// controlled in a way that matters more than for a NIC RSS hash, and the
/// per-table seed randomises bucket placement.
#[derive(Clone, Copy)]
pub struct TupleHasherBuilder(u64);
/// See [`TupleHasherBuilder`].
pub struct TupleHasher(u64);

impl Hasher for TupleHasher {
    fn finish(&self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 32)).wrapping_mul(0xD6E8_FEB8_6659_FD93);
        z ^ (z >> 32)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }
    fn write_u16(&mut self, i: u16) {
        self.write_u64(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x517C_C1B7_2722_0A95);
    }
}

impl BuildHasher for TupleHasherBuilder {
    type Hasher = TupleHasher;
    fn build_hasher(&self) -> TupleHasher {
        TupleHasher(self.0)
    }
}

/// Hash of a tuple's fields, cheap.
#[must_use]
pub fn tuple_hash(seed: u64, t: &Tuple) -> u64 {
    let mut h = TupleHasher(seed);
    h.write_u32(u32::from(t.src));
    h.write_u32(u32::from(t.dst));
    h.write_u64(u64::from(t.proto) << 32 | u64::from(t.sport) << 16 | u64::from(t.dport));
    h.finish()
}

impl core::hash::Hash for KeyRef {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let t = &self.0;
        state.write_u32(u32::from(t.src));
        state.write_u32(u32::from(t.dst));
        state.write_u64(u64::from(t.proto) << 32 | u64::from(t.sport) << 16 | u64::from(t.dport));
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct KeyRef(Tuple);

struct Slot<V> {
    value: V,
    fwd: Tuple,
    rev: Tuple,
    expires_at: u64,
    /// Deadline of the live heap record (older records are stale).
    armed_at: u64,
    generation: u32,
}

struct Shard<V> {
    map: HashMap<KeyRef, (u32, bool), TupleHasherBuilder>,
    slab: Vec<Option<Slot<V>>>,
    gens: Vec<u32>,
    free: Vec<u32>,
    heap: BinaryHeap<Reverse<(u64, u32, u32)>>,
    live: usize,
}

impl<V> Shard<V> {
    fn remove_slot(&mut self, idx: u32) -> Option<Slot<V>> {
        let s = self.slab.get_mut(idx as usize)?.take()?;
        self.map.remove(&KeyRef(s.fwd));
        self.map.remove(&KeyRef(s.rev));
        self.gens[idx as usize] = self.gens[idx as usize].wrapping_add(1);
        self.free.push(idx);
        self.live -= 1;
        Some(s)
    }
}

/// A hit inside `lookup_with`: the value, which key matched, the deadline.
pub struct Hit<'a, V> {
    value: &'a mut V,
    reverse: bool,
    expires_at: u64,
    new_expires: Option<u64>,
}

impl<V> Hit<'_, V> {
    /// The session, mutable (under the shard lock).
    pub fn value(&mut self) -> &mut V {
        self.value
    }
    /// Whether the reverse (reply) key matched.
    #[must_use]
    pub fn is_reverse(&self) -> bool {
        self.reverse
    }
    /// Current deadline (ns).
    #[must_use]
    pub fn expires_at(&self) -> u64 {
        self.new_expires.unwrap_or(self.expires_at)
    }
    /// Store a new deadline: later = plain store; earlier = eager re-arm.
    pub fn set_expires_at(&mut self, t: u64) {
        self.new_expires = Some(t);
    }
}

type ReleaseFn<V> = Box<dyn Fn(&V, ReleaseReason) + Send + Sync>;

/// The sharded two-key session table. Shared by reference (`Nat` is shared
/// via `Arc`).
pub struct SessionTable<V> {
    shards: Vec<Mutex<Shard<V>>>,
    capacity: usize,
    release: ReleaseFn<V>,
    len: AtomicU64,
    poll_cursor: AtomicU64,
}

impl<V> SessionTable<V> {
    /// `shards` (rounded up to a power of two) sharing `capacity` entries.
    pub fn new(shards: usize, capacity: usize, seed: u64, release: ReleaseFn<V>) -> Self {
        let n = shards.max(1).next_power_of_two();
        let per = capacity.div_ceil(n).max(1);
        let shards = (0..n)
            .map(|i| {
                Mutex::new(Shard {
                    map: HashMap::with_capacity_and_hasher(
                        per.min(1 << 16) * 2,
                        TupleHasherBuilder(seed ^ i as u64),
                    ),
                    slab: Vec::new(),
                    gens: Vec::new(),
                    free: Vec::new(),
                    heap: BinaryHeap::new(),
                    live: 0,
                })
            })
            .collect();
        Self {
            shards,
            capacity: capacity.max(1),
            release,
            len: AtomicU64::new(0),
            poll_cursor: AtomicU64::new(0),
        }
    }

    fn shard(&self, hint: u64) -> &Mutex<Shard<V>> {
        &self.shards[(hint as usize) & (self.shards.len() - 1)]
    }

    /// Entries (sessions) in the table. O(1).
    #[must_use]
    pub fn len(&self) -> u64 {
        self.len.load(Ordering::Relaxed)
    }
    /// Whether the table is empty. O(1).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Total capacity.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Insert a session under both keys, in the shard chosen by `hint`.
    ///
    /// # Errors
    /// `KeyConflict` if `rev` is held by another live entry (value dropped,
    /// release hook *not* called: nothing was inserted).
    pub fn insert_pair(
        &self,
        hint: u64,
        fwd: Tuple,
        rev: Tuple,
        value: V,
        expires_at: u64,
        now: u64,
    ) -> Result<Inserted, InsertError> {
        let mut evicted = None;
        let mut lazily = Vec::new();
        let r = {
            let mut g = lock(self.shard(hint));
            let sh = &mut *g;
            // A stale (expired) holder of either key is removed first.
            for k in [fwd, rev] {
                if let Some(&(idx, _)) = sh.map.get(&KeyRef(k))
                    && sh.slab[idx as usize]
                        .as_ref()
                        .is_some_and(|s| s.expires_at <= now)
                    && let Some(s) = sh.remove_slot(idx)
                {
                    lazily.push(s);
                }
            }
            if sh.map.contains_key(&KeyRef(fwd)) {
                Ok(Inserted::Existing)
            } else if sh.map.contains_key(&KeyRef(rev)) {
                Err(InsertError::KeyConflict)
            } else {
                if self.len.load(Ordering::Relaxed) >= self.capacity as u64 && sh.live > 0 {
                    // Evict the entry nearest to expiry (skipping stale records).
                    while let Some(Reverse((t, idx, generation))) = sh.heap.pop() {
                        let live = sh.slab[idx as usize]
                            .as_ref()
                            .is_some_and(|s| s.generation == generation && s.armed_at == t);
                        if live {
                            evicted = sh.remove_slot(idx);
                            break;
                        }
                    }
                }
                let idx = match sh.free.pop() {
                    Some(i) => i,
                    None => {
                        sh.slab.push(None);
                        sh.gens.push(0);
                        (sh.slab.len() - 1) as u32
                    }
                };
                let generation = sh.gens[idx as usize];
                sh.slab[idx as usize] = Some(Slot {
                    value,
                    fwd,
                    rev,
                    expires_at,
                    armed_at: expires_at,
                    generation,
                });
                sh.map.insert(KeyRef(fwd), (idx, false));
                sh.map.insert(KeyRef(rev), (idx, true));
                sh.heap.push(Reverse((expires_at, idx, generation)));
                sh.live += 1;
                Ok(Inserted::New)
            }
        };
        // Release hooks run after the shard lock is dropped.
        for s in &lazily {
            self.len.fetch_sub(1, Ordering::Relaxed);
            (self.release)(&s.value, ReleaseReason::LazyExpired);
        }
        if let Some(s) = &evicted {
            self.len.fetch_sub(1, Ordering::Relaxed);
            (self.release)(&s.value, ReleaseReason::Evicted);
        }
        if r == Ok(Inserted::New) {
            self.len.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    /// Find the entry holding `key` and run `f` on it under the shard lock.
    /// An entry past its deadline is removed (lazy expiry) and `None` returned.
    pub fn lookup_with<R>(
        &self,
        hint: u64,
        key: &Tuple,
        now: u64,
        f: impl FnOnce(&mut Hit<'_, V>) -> R,
    ) -> Option<R> {
        let gone = {
            let mut g = lock(self.shard(hint));
            let sh = &mut *g;
            let &(idx, reverse) = sh.map.get(&KeyRef(*key))?;
            let slot = sh.slab[idx as usize].as_mut()?;
            if slot.expires_at > now {
                let mut hit = Hit {
                    value: &mut slot.value,
                    reverse,
                    expires_at: slot.expires_at,
                    new_expires: None,
                };
                let r = f(&mut hit);
                if let Some(t) = hit.new_expires {
                    let earlier = t < slot.expires_at;
                    slot.expires_at = t;
                    if earlier && t < slot.armed_at {
                        slot.armed_at = t;
                        let generation = slot.generation;
                        sh.heap.push(Reverse((t, idx, generation)));
                    }
                }
                return Some(r);
            }
            sh.remove_slot(idx)
        };
        if let Some(s) = gone {
            self.len.fetch_sub(1, Ordering::Relaxed);
            (self.release)(&s.value, ReleaseReason::LazyExpired);
        }
        None
    }

    /// Expire entries whose deadline passed, at most `budget` removals.
    /// Returns how many were removed. Work is proportional to what fires.
    pub fn poll(&self, now: u64, budget: usize) -> usize {
        let n = self.shards.len();
        let start = self.poll_cursor.fetch_add(1, Ordering::Relaxed) as usize;
        let mut done = 0;
        let mut out = Vec::new();
        for k in 0..n {
            if done >= budget {
                break;
            }
            {
                let mut g = lock(&self.shards[(start + k) % n]);
                let sh = &mut *g;
                while done < budget {
                    let Some(&Reverse((t, idx, generation))) = sh.heap.peek() else {
                        break;
                    };
                    if t > now {
                        break;
                    }
                    sh.heap.pop();
                    let Some(slot) = sh.slab[idx as usize].as_mut() else {
                        continue;
                    };
                    if slot.generation != generation || slot.armed_at != t {
                        continue; // stale record
                    }
                    if slot.expires_at > now {
                        // Deadline moved (refresh): re-arm.
                        slot.armed_at = slot.expires_at;
                        let e = slot.expires_at;
                        sh.heap.push(Reverse((e, idx, generation)));
                        continue;
                    }
                    if let Some(s) = sh.remove_slot(idx) {
                        out.push(s);
                        done += 1;
                    }
                }
            }
            for s in out.drain(..) {
                self.len.fetch_sub(1, Ordering::Relaxed);
                (self.release)(&s.value, ReleaseReason::Expired);
            }
        }
        done
    }

    /// Visit every live entry (value, deadline). O(n): a scan, for control.
    pub fn scan(&self, mut f: impl FnMut(&V, u64) -> bool) {
        for s in &self.shards {
            let g = lock(s);
            for slot in g.slab.iter().flatten() {
                if !f(&slot.value, slot.expires_at) {
                    return;
                }
            }
        }
    }
}

impl<V> Drop for SessionTable<V> {
    fn drop(&mut self) {
        for s in &self.shards {
            let mut g = lock(s);
            let slots: Vec<Slot<V>> = g.slab.iter_mut().filter_map(Option::take).collect();
            g.map.clear();
            drop(g);
            for s in &slots {
                (self.release)(&s.value, ReleaseReason::Teardown);
            }
        }
    }
}
