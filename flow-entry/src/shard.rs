//! [`Shard`]: a flow table shard with a single writer (the design is
//! documented on the type, where rustdoc shows it).

use core::fmt;
use core::time::Duration;
use std::hash::BuildHasher;

use crate::config::{ConfigError, FlowTableConfig};
use crate::release::prefetch;
use crate::release::{Direction, ReleaseReason};
use crate::time::Timestamp;
use crate::wheel::{self, Link, Store, Wheel};

mod key;
mod types;

use crate::index::TagIndex;

/// An entry's index payload: its slot and which of its keys.
#[inline(always)]
fn pack(slot: u32, rev: bool) -> u32 {
    slot << 1 | u32::from(rev)
}

/// The inverse of [`pack`].
#[inline(always)]
fn unpack(p: u32) -> (u32, bool) {
    (p >> 1, p & 1 != 0)
}
pub use key::ShardKey;
use key::spread;
pub use types::{EntryId, ShardInsertError, ShardStats};

// ---------------------------------------------------------------- slab

/// The entry was confirmed (not embryonic). In the link's caller byte.
const F_CONFIRMED: u8 = 1;
/// The entry has a reverse key. In the link's caller byte.
const F_REV: u8 = 2;

/// Most entries one eviction search examines.
const MAX_SCAN: usize = 64;

/// Bytes of one wheel level: occupancy word, head and tail per slot.
const WHEEL_LEVEL_BYTES: usize = 8 + 2 * wheel::SLOTS * core::mem::size_of::<u32>();

/// One slab entry. `repr(C)` so the fields a lookup reads come first:
/// deadline and generation, then the forward and reverse keys; the value
/// (read after a hit) last.
#[repr(C)]
struct Entry<K, V> {
    /// Rounded deadline in nanoseconds (see "Time" on [`Shard`]).
    deadline: u64,
    /// Bumped at every release; ids carry the one they were issued with.
    generation: u32,
    /// Wheel links; the caller byte holds `F_*` flags. While the slot is
    /// free its spare field links the free list.
    link: Link,
    fwd: K,
    /// The reverse key if `F_REV`, else a copy of `fwd` (never indexed).
    rev: K,
    /// `Some` exactly while the entry is live.
    value: Option<V>,
}

/// The wheel's view of the slab: links, and deadlines in ticks.
struct Slab<'a, K, V> {
    entries: &'a mut [Entry<K, V>],
    base: u64,
    tick_ns: u64,
}

impl<K, V> Store for Slab<'_, K, V> {
    #[inline]
    fn link(&self, i: u32) -> Link {
        self.entries[i as usize].link
    }
    #[inline]
    fn link_mut(&mut self, i: u32) -> &mut Link {
        &mut self.entries[i as usize].link
    }
    #[inline]
    fn deadline(&self, i: u32) -> u64 {
        // Exact for a rounded deadline; `u64::MAX` off the grid gets the
        // tick after the last one any `now` reaches, so it never fires.
        (self.entries[i as usize].deadline - self.base).div_ceil(self.tick_ns)
    }
}

// ---------------------------------------------------------------- shard

/// A flow table shard with a single writer.
///
/// A `Shard` belongs to one thread: every change takes `&mut self`, reads
/// take `&self`, and there is no lock, atomic or `Arc` (an owner that shares
/// one, like the IPv6 flow tracker, puts it behind its own mutex). Its
/// guarantees:
///
/// - **Index + slab.** Entries live in a slab (`Vec` reserved for the whole
///   capacity at construction, never reallocated, free slots on a LIFO
///   list). An open-addressing index maps each key to its entry's slot:
///   one `u64` per bucket (a tag from the key's hash, the slot, which key),
///   linear probing, deletion by backward shift (no tombstones), sized at
///   construction for two keys per entry at no more than three quarters
///   load and never resized. A probe compares tags in the index and keys
///   only in the slab. A session has a forward key and optionally a
///   reverse key, indexed and released together.
/// - **Timer wheel.** Every live entry is armed in a
///   [`wheel::Wheel`](crate::wheel::Wheel) at its deadline's tick. A later
///   deadline is a plain store (the wheel re-arms the entry when its slot
///   fires); an earlier one re-arms at once. [`Shard::poll`] releases due
///   entries up to a budget; the rest stay on the wheel's pending list and
///   come first next time.
/// - **Lazy cleanup.** A lookup (or an insert meeting one of its keys) that
///   finds an entry at or past its deadline releases it on the spot
///   ([`ReleaseReason::LazyExpired`]) and reports a miss.
/// - **Draining with hysteresis.** An insert that takes the shard above its
///   high watermark starts draining; while draining, each insert sheds up
///   to `drain_budget` other entries (due ones first, then embryonic ones,
///   then the soonest due); draining stops at the low watermark.
/// - **Typed full error.** At hard capacity an insert evicts one due or
///   embryonic entry; otherwise it fails with [`ShardInsertError::Full`],
///   counted, the value handed back.
/// - **Exactly-once release.** Every way out (expiry, lazy expiry, drain,
///   eviction, removal, [`Shard::clear`]) goes through one function that
///   unindexes both keys, disarms the entry, and passes the value *by value*
///   to the caller's release callback: a value is moved out once, so it is
///   released once. Dropping a `Shard` drops the values still held without
///   calling anything (call [`Shard::clear`] first to release them).
///
/// Time. Deadlines are rounded up to the tick grid that starts at the
/// shard's `base` and are stored as 64-bit nanoseconds (they never wrap).
/// An entry is due at `now` when its rounded deadline is `<= now`; lookups,
/// inserts, evictions and [`Shard::poll`] all use that one rule (the wheel
/// works in ticks, and a tick boundary is a rounded deadline). A deadline
/// too late to round (within one tick of [`Timestamp::MAX`]) is stored as
/// `Timestamp::MAX`, which only a lookup at exactly that time sees as due.
/// A `now` before `base`, or before a previous poll's, makes nothing due by
/// the wheel (the wheel never goes back).
///
/// Determinism. Which entries are released, and in which order, depends
/// only on the sequence of operations and their arguments, never on the
/// hash seed: poll order is the wheel's (slots in time order, FIFO within a
/// slot), victims come from the wheel's scan, [`Shard::remove_matching`]
/// and [`Shard::clear`] go in slab order, and slots are reused in release
/// order. The index is never iterated.
///
/// `K` is the key type ([`FlowKey`](crate::FlowKey), or a compact
/// `u128`); `V` the owner's per-session value. Cost of each operation: on
/// its method.
pub struct Shard<K, V> {
    entries: Vec<Entry<K, V>>,
    /// Head of the free-slot list (`wheel::NIL`: empty).
    free: u32,
    index: TagIndex,
    wheel: Wheel,
    levels: usize,
    seed: u64,
    /// Tick 0, in nanoseconds.
    base: u64,
    tick_ns: u64,
    capacity: usize,
    len: usize,
    high: usize,
    low: usize,
    draining: bool,
    drain_budget: usize,
    evict_scan: usize,
    draining_timeout: Option<Duration>,
    stats: ShardStats,
}

impl<K, V> fmt::Debug for Shard<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shard")
            .field("len", &self.len)
            .field("capacity", &self.capacity)
            .field("draining", &self.draining)
            .finish_non_exhaustive()
    }
}

impl<K: ShardKey, V> Shard<K, V> {
    /// Largest capacity: slot indices must fit the index's bucket encoding.
    pub const MAX_CAPACITY: usize = 1 << 28;

    /// Bytes of one slab entry (keys, deadline, generation, wheel links,
    /// value), for sizing.
    pub const ENTRY_BYTES: usize = core::mem::size_of::<Entry<K, V>>();

    /// A shard holding at most `capacity` entries. Watermarks, tick, range,
    /// `drain_budget`, `evict_scan`, `draining_timeout` and `hash_seed`
    /// come from `cfg` (its `shards` and `capacity` fields are ignored;
    /// watermarks are fractions of `capacity`). `base` is the time tick 0
    /// stands for (deadlines are rounded up to ticks counted from it).
    ///
    /// Allocates everything up front: the slab's reservation (pages the
    /// slab never reached stay untouched), the index for two keys per
    /// entry, the wheel. Nothing allocates afterwards.
    ///
    /// # Errors
    /// The [`FlowTableConfig::validate`] errors of the fields used, and
    /// [`ConfigError::Capacity`] for a capacity of 0 or above
    /// [`Shard::MAX_CAPACITY`].
    pub fn new(
        capacity: usize,
        cfg: &FlowTableConfig,
        base: Timestamp,
    ) -> Result<Self, ConfigError> {
        FlowTableConfig {
            shards: 1,
            capacity: 1,
            ..cfg.clone()
        }
        .validate()?;
        if capacity == 0 || capacity > Self::MAX_CAPACITY {
            return Err(ConfigError::Capacity {
                capacity,
                max: Self::MAX_CAPACITY,
            });
        }
        let seed = cfg
            .hash_seed
            .unwrap_or_else(|| foldhash::fast::RandomState::default().hash_one(0x5eed_5a4d_u64));
        let tick_ns = u64::try_from(cfg.tick.as_nanos()).unwrap_or(u64::MAX);
        let range_ticks =
            u64::try_from(cfg.range.as_nanos() / cfg.tick.as_nanos()).unwrap_or(u64::MAX);
        let levels = Wheel::levels_for_range(range_ticks);
        // Watermarks: fractions of the capacity, rounded down.
        let high = ((capacity as f64) * cfg.high_watermark).floor() as usize;
        let low = ((capacity as f64) * cfg.low_watermark).floor() as usize;
        Ok(Self {
            entries: Vec::with_capacity(capacity),
            free: wheel::NIL,
            index: TagIndex::new(2 * capacity),
            wheel: Wheel::new(levels),
            levels,
            seed: spread(seed),
            base: base.as_nanos(),
            tick_ns,
            capacity,
            len: 0,
            high: high.max(1),
            low: low.min(high.saturating_sub(1)),
            draining: false,
            drain_budget: cfg.drain_budget,
            evict_scan: cfg.evict_scan.min(MAX_SCAN),
            draining_timeout: cfg.draining_timeout,
            stats: ShardStats::default(),
        })
    }

    // ------------------------------------------------------------ helpers

    /// The key's hash with this shard's seed (what [`Shard::lookup`] and
    /// the prefetch stages take).
    #[inline]
    pub fn hash(&self, k: &K) -> u64 {
        ShardKey::hash(k, self.seed)
    }

    /// `t` rounded up to the tick grid from `base`, in nanoseconds;
    /// `u64::MAX` if the rounded value does not fit.
    #[inline]
    fn round_deadline(&self, t: Timestamp) -> u64 {
        let ticks = t
            .as_nanos()
            .saturating_sub(self.base)
            .div_ceil(self.tick_ns);
        ticks
            .checked_mul(self.tick_ns)
            .and_then(|d| d.checked_add(self.base))
            .unwrap_or(u64::MAX)
    }

    /// [`Shard::round_deadline`] of `t` and the wheel tick an entry with
    /// that deadline is armed at (what `Slab::deadline` computes from it),
    /// with one division.
    #[inline]
    fn round_deadline_ticks(&self, t: Timestamp) -> (u64, u64) {
        let ticks = t
            .as_nanos()
            .saturating_sub(self.base)
            .div_ceil(self.tick_ns);
        match ticks
            .checked_mul(self.tick_ns)
            .and_then(|d| d.checked_add(self.base))
        {
            // (d - base).div_ceil(tick) = ticks exactly.
            Some(d) => (d, ticks),
            None => (u64::MAX, (u64::MAX - self.base).div_ceil(self.tick_ns)),
        }
    }

    /// The wheel tick due entries are collected up to at `now`, or `None`
    /// if the wheel can find nothing due (`now` before `base` or before the
    /// wheel's time).
    #[inline]
    fn due_tick(&self, now: Timestamp) -> Option<u64> {
        let ns = now.as_nanos().checked_sub(self.base)?;
        let t = ns / self.tick_ns;
        (t >= self.wheel.elapsed()).then_some(t)
    }

    /// The slot of a live entry `id` names.
    #[inline]
    fn live(&self, id: EntryId) -> Option<usize> {
        let i = id.slot as usize;
        let e = self.entries.get(i)?;
        (e.generation == id.generation && e.value.is_some()).then_some(i)
    }

    /// The slot and direction of the entry indexing `k` (no time check).
    #[inline]
    fn find(&self, k: &K, hash: u64) -> Option<(u32, Direction)> {
        let entries = &self.entries;
        let (slot, rev) = unpack(self.index.find(hash, |p| {
            let (slot, rev) = unpack(p);
            let e = &entries[slot as usize];
            if rev { e.rev == *k } else { e.fwd == *k }
        })?);
        let dir = if rev {
            Direction::Reverse
        } else {
            Direction::Forward
        };
        Some((slot, dir))
    }

    /// Arms a live, unarmed entry at its deadline.
    fn arm(&mut self, slot: u32) {
        let when = Slab {
            entries: &mut self.entries,
            base: self.base,
            tick_ns: self.tick_ns,
        }
        .deadline(slot);
        self.arm_at(slot, when);
    }

    /// Arms a live, unarmed entry at tick `when` (its deadline's, as
    /// `Slab::deadline` computes it).
    #[inline]
    fn arm_at(&mut self, slot: u32, when: u64) {
        let Self {
            wheel,
            entries,
            base,
            tick_ns,
            ..
        } = self;
        let mut s = Slab {
            entries,
            base: *base,
            tick_ns: *tick_ns,
        };
        debug_assert_eq!(when, s.deadline(slot));
        wheel.arm(&mut s, slot, when);
    }

    /// For an insert: whether `k` (hash `h`) is free to index, releasing a
    /// due entry holding it (`LazyExpired`). `Ok(Some(at))`: free, and `at`
    /// is the empty index bucket its probe ended at (where it goes if the
    /// index does not change first); `Ok(None)`: freed by a release (index
    /// buckets moved); `Err(())`: held by a live entry.
    #[inline(always)]
    fn vacate(
        &mut self,
        k: &K,
        h: u64,
        now: u64,
        rel: &mut impl FnMut(V, ReleaseReason),
    ) -> Result<Option<usize>, ()> {
        let entries = &self.entries;
        let found = self.index.probe(h, |p| {
            let (slot, rev) = unpack(p);
            let e = &entries[slot as usize];
            if rev { e.rev == *k } else { e.fwd == *k }
        });
        match found.map(unpack) {
            Err(at) => Ok(Some(at)),
            Ok((slot, _)) if self.entries[slot as usize].deadline <= now => {
                self.release(slot, ReleaseReason::LazyExpired, rel);
                Ok(None)
            }
            Ok(_) => Err(()),
        }
    }

    /// Disarms an entry (no-op if unarmed).
    fn cancel(&mut self, slot: u32) {
        let Self {
            wheel,
            entries,
            base,
            tick_ns,
            ..
        } = self;
        wheel.cancel(
            &mut Slab {
                entries,
                base: *base,
                tick_ns: *tick_ns,
            },
            slot,
        );
    }

    /// The next entry due at `now` from the wheel (unarmed), if any.
    fn pop_due(&mut self, now: Timestamp) -> Option<u32> {
        let t = self.due_tick(now)?;
        let Self {
            wheel,
            entries,
            base,
            tick_ns,
            ..
        } = self;
        wheel.next_due(
            &mut Slab {
                entries,
                base: *base,
                tick_ns: *tick_ns,
            },
            t,
        )
    }

    /// The one release path: unindexes both keys, disarms, frees the slot
    /// (the generation moves on), updates counters and draining, then
    /// hands the value to `rel` (the shard is consistent by then).
    ///
    /// # Panics
    /// If `slot` is not live (internal bug: callers check).
    fn release(
        &mut self,
        slot: u32,
        reason: ReleaseReason,
        rel: &mut impl FnMut(V, ReleaseReason),
    ) {
        let (fwd, rev) = {
            let e = &self.entries[slot as usize];
            (e.fwd, (e.link.user & F_REV != 0).then_some(e.rev))
        };
        let found = self.index.remove(self.hash(&fwd), pack(slot, false));
        debug_assert!(found, "forward key not indexed");
        if let Some(r) = rev {
            let found = self.index.remove(self.hash(&r), pack(slot, true));
            debug_assert!(found, "reverse key not indexed");
        }
        self.cancel(slot);
        let e = &mut self.entries[slot as usize];
        let v = e
            .value
            .take()
            .expect("flow-entry bug: release of a free shard slot");
        let flags = e.link.user;
        e.link.user = 0;
        // A slot whose generation would wrap is retired (never reused), so
        // no id is ever issued twice.
        if e.generation != u32::MAX {
            e.generation += 1;
            e.link.set_spare(self.free);
            self.free = slot;
        }
        self.len -= 1;
        if flags & F_CONFIRMED == 0 {
            self.stats.embryonic -= 1;
        }
        self.stats.released[reason.index()] += 1;
        if self.draining && self.len <= self.low {
            self.draining = false;
            self.stats.drain_left += 1;
        }
        rel(v, reason);
    }

    /// Releases one entry to make room: one due entry first (reason
    /// `Expired`), else an embryonic entry among the first `evict_scan` in
    /// expiry order (`reason`), else, if `soonest`, the first of those.
    /// Never `protect`. Bounded: O(evict_scan).
    fn evict_one(
        &mut self,
        now: Timestamp,
        soonest: bool,
        reason: ReleaseReason,
        protect: u32,
        rel: &mut impl FnMut(V, ReleaseReason),
    ) -> bool {
        if let Some(slot) = self.pop_due(now) {
            if slot != protect {
                self.release(slot, ReleaseReason::Expired, rel);
                return true;
            }
            // The new entry is itself due: back on the wheel (due on the
            // next poll), and look for another victim.
            self.arm(slot);
        }
        let mut cand = [(wheel::NIL, false); MAX_SCAN];
        let mut n = 0;
        {
            let Self {
                wheel,
                entries,
                base,
                tick_ns,
                evict_scan,
                ..
            } = self;
            let s = Slab {
                entries,
                base: *base,
                tick_ns: *tick_ns,
            };
            wheel.scan(&s, *evict_scan, |i| {
                if i != protect {
                    cand[n] = (i, s.entries[i as usize].link.user & F_CONFIRMED == 0);
                    n += 1;
                }
                false
            });
        }
        let victim = cand[..n]
            .iter()
            .find(|(_, embryonic)| *embryonic)
            .or_else(|| cand[..n].first().filter(|_| soonest))
            .map(|(i, _)| *i);
        match victim {
            Some(slot) => {
                self.release(slot, reason, rel);
                true
            }
            None => false,
        }
    }

    // ------------------------------------------------------------ prefetch

    /// Stage 1 of a burst: starts loading the index buckets a probe for
    /// `hash` reads first. No state change, nothing read into the program.
    #[inline]
    pub fn prefetch_index(&self, hash: u64) {
        self.index.prefetch(hash);
    }

    /// Stage 2 (after [`Shard::prefetch_index`] had time to land): reads the
    /// index buckets of `hash` (a plain read, no state change) and starts
    /// loading the entry of the first tag match: its header, the key a
    /// match compares, and the value. A colliding tag costs a useless
    /// prefetch, never a wrong result (lookups compare keys).
    #[inline]
    pub fn prefetch_entry(&self, hash: u64) {
        if let Some((slot, rev)) = self.index.first_candidate(hash).map(unpack)
            && let Some(e) = self.entries.get(slot as usize)
        {
            prefetch(e);
            if rev {
                prefetch(&e.rev);
            }
            prefetch(&e.value);
        }
    }

    /// Starts loading the slab slot the next [`Shard::insert`] fills when
    /// it reuses a freed one (its free-list link is read first): call it
    /// ahead of an insert so that miss overlaps other work. A hint: no
    /// state change.
    #[inline]
    pub fn prefetch_insert_slot(&self) {
        if let Some(e) = self.entries.get(self.free as usize) {
            prefetch(e);
            prefetch(&e.value);
        }
    }

    // ------------------------------------------------------------ lookups

    /// Looks `k` up at `now`; `hash` must be [`Shard::hash`] of `k`. An
    /// entry at or past its deadline is released on the spot (reason
    /// [`ReleaseReason::LazyExpired`], through `rel`) and reported as a
    /// miss. O(1) expected; no allocation.
    #[inline]
    pub fn lookup(
        &mut self,
        k: &K,
        hash: u64,
        now: Timestamp,
        rel: &mut impl FnMut(V, ReleaseReason),
    ) -> Option<(EntryId, Direction)> {
        debug_assert_eq!(hash, self.hash(k), "hash of another key or shard");
        let (slot, dir) = self.find(k, hash)?;
        let e = &self.entries[slot as usize];
        if e.deadline <= now.as_nanos() {
            self.release(slot, ReleaseReason::LazyExpired, rel);
            return None;
        }
        Some((
            EntryId {
                slot,
                generation: e.generation,
            },
            dir,
        ))
    }

    /// The value of a live entry (`None` for a stale id). No time check:
    /// an entry past its deadline that nothing has released yet is live.
    #[inline]
    pub fn get(&self, id: EntryId) -> Option<&V> {
        self.entries.get(self.live(id)?)?.value.as_ref()
    }

    /// The value of a live entry, mutably (`None` for a stale id).
    #[inline]
    pub fn get_mut(&mut self, id: EntryId) -> Option<&mut V> {
        let i = self.live(id)?;
        self.entries[i].value.as_mut()
    }

    /// The entry's deadline as stored: rounded up to the tick grid.
    #[inline]
    pub fn expires_at(&self, id: EntryId) -> Option<Timestamp> {
        Some(Timestamp::from_nanos(self.entries[self.live(id)?].deadline))
    }

    /// Whether [`Shard::confirm`] was called for the entry (`false` for a
    /// stale id).
    #[inline]
    pub fn is_confirmed(&self, id: EntryId) -> bool {
        self.live(id)
            .is_some_and(|i| self.entries[i].link.user & F_CONFIRMED != 0)
    }

    /// The entry's forward key and reverse key (if it has one).
    #[inline]
    pub fn keys(&self, id: EntryId) -> Option<(K, Option<K>)> {
        let e = &self.entries[self.live(id)?];
        Some((e.fwd, (e.link.user & F_REV != 0).then_some(e.rev)))
    }

    // ------------------------------------------------------------ updates

    /// Stores a new deadline (rounded up to the tick) for a live entry.
    /// A later deadline is a plain store: the wheel is not touched and
    /// re-arms the entry when its old slot fires. An earlier one re-arms at
    /// once. There is no time check: an entry past its deadline that
    /// nothing has released yet is extended (hold ids across time only for
    /// entries a lookup returned at the current `now`). Returns `false`, and
    /// changes nothing, for a stale id. O(1).
    #[inline]
    pub fn set_expires_at(&mut self, id: EntryId, t: Timestamp) -> bool {
        let Some(i) = self.live(id) else {
            return false;
        };
        let new = self.round_deadline(t);
        let e = &mut self.entries[i];
        let old = e.deadline;
        e.deadline = new;
        if new < old {
            self.cancel(id.slot);
            self.arm(id.slot);
        }
        true
    }

    /// Marks a live entry confirmed (e.g. a reply was seen): draining and
    /// eviction take embryonic (unconfirmed) entries first, and eviction at
    /// hard capacity takes only those (or due ones). No-op for a stale id.
    #[inline]
    pub fn confirm(&mut self, id: EntryId) {
        if let Some(i) = self.live(id) {
            let e = &mut self.entries[i];
            if e.link.user & F_CONFIRMED == 0 {
                e.link.user |= F_CONFIRMED;
                self.stats.embryonic -= 1;
            }
        }
    }

    /// Inserts a session: its forward key, an optional reverse key (a
    /// reverse key equal to the forward key is ignored: one key), its value
    /// and deadline. Both keys are indexed together or not at all.
    ///
    /// In order: a key indexed by an entry past its deadline at `now` is
    /// released first (`LazyExpired`) so the key frees up; a key indexed by
    /// a live entry fails with [`ShardInsertError::KeyExists`]. At hard
    /// capacity one due entry (`Expired`) or embryonic entry (`Evicted`)
    /// among the first `evict_scan` in expiry order is released, else the
    /// insert fails with [`ShardInsertError::Full`]. While the shard drains,
    /// the new deadline is capped at `now + draining_timeout` (if set).
    /// After the insert, a shard above its high watermark starts draining,
    /// and a draining shard sheds up to `drain_budget` entries (due ones as
    /// `Expired`, then embryonic, then soonest due, as `Drained`). The entry
    /// being inserted is never a victim. Errors hand the value back.
    ///
    /// O(1) expected, plus O(drain_budget × evict_scan) while draining; no
    /// allocation.
    ///
    /// # Errors
    /// [`ShardInsertError::KeyExists`] or [`ShardInsertError::Full`] (both
    /// counted).
    #[inline]
    pub fn insert(
        &mut self,
        fwd: K,
        rev: Option<K>,
        v: V,
        expires_at: Timestamp,
        now: Timestamp,
        rel: &mut impl FnMut(V, ReleaseReason),
    ) -> Result<EntryId, ShardInsertError<V>> {
        let fwd = (fwd, self.hash(&fwd));
        let rev = rev.map(|r| (r, self.hash(&r)));
        self.insert_hashed(fwd, rev, v, expires_at, now, rel)
    }

    /// [`Shard::insert`] with each key's hash given (`(key, hash)`, the
    /// hash [`Shard::hash`] of the key: e.g. from the lookup that missed,
    /// or computed early to prefetch the key's index bucket).
    ///
    /// # Errors
    /// As [`Shard::insert`].
    pub fn insert_hashed(
        &mut self,
        (fwd, hf): (K, u64),
        rev: Option<(K, u64)>,
        v: V,
        expires_at: Timestamp,
        now: Timestamp,
        rel: &mut impl FnMut(V, ReleaseReason),
    ) -> Result<EntryId, ShardInsertError<V>> {
        debug_assert_eq!(hf, self.hash(&fwd), "hash of another key or shard");
        debug_assert!(
            rev.is_none_or(|(r, h)| h == self.hash(&r)),
            "hash of another key or shard"
        );
        let (rev, hr) = match rev.filter(|(r, _)| *r != fwd) {
            Some((r, h)) => (Some(r), Some(h)),
            None => (None, None),
        };
        let now_ns = now.as_nanos();
        // 1. Keys: free the ones held by due entries, refuse live ones.
        // Each free key's probe ends at the empty bucket it goes to; those
        // positions hold while nothing is released (a release shifts
        // buckets back), so any release drops them (plain inserts then).
        let Ok(mut at_f) = self.vacate(&fwd, hf, now_ns, rel) else {
            self.stats.key_exists += 1;
            return Err(ShardInsertError::KeyExists(v));
        };
        let mut at_r = None;
        if let (Some(r), Some(h)) = (rev, hr) {
            match self.vacate(&r, h, now_ns, rel) {
                Ok(Some(at)) => at_r = Some(at),
                Ok(None) => at_f = None,
                Err(()) => {
                    self.stats.key_exists += 1;
                    return Err(ShardInsertError::KeyExists(v));
                }
            }
        }
        // 2. Hard capacity: make room by policy (due, then embryonic).
        if self.len >= self.capacity {
            (at_f, at_r) = (None, None);
            if !self.evict_one(now, false, ReleaseReason::Evicted, wheel::NIL, rel) {
                self.stats.full += 1;
                return Err(ShardInsertError::Full(v));
            }
        }
        // 3. The entry.
        let (mut deadline, mut when) = self.round_deadline_ticks(expires_at);
        if self.draining
            && let Some(d) = self.draining_timeout
        {
            let (dd, dw) = self.round_deadline_ticks(now + d);
            if dd < deadline {
                (deadline, when) = (dd, dw);
            }
        }
        let flags = if rev.is_some() { F_REV } else { 0 };
        let slot = if self.free != wheel::NIL {
            let slot = self.free;
            let e = &mut self.entries[slot as usize];
            self.free = e.link.spare();
            e.deadline = deadline;
            e.link = Link::UNLINKED;
            e.link.user = flags;
            e.fwd = fwd;
            e.rev = rev.unwrap_or(fwd);
            e.value = Some(v);
            slot
        } else if self.entries.len() < self.capacity {
            let slot = self.entries.len() as u32;
            let mut link = Link::UNLINKED;
            link.user = flags;
            self.entries.push(Entry {
                deadline,
                generation: 0,
                link,
                fwd,
                rev: rev.unwrap_or(fwd),
                value: Some(v),
            });
            slot
        } else {
            // Only when slots were retired (generation exhausted).
            self.stats.full += 1;
            return Err(ShardInsertError::Full(v));
        };
        // The same buckets a probe from each key's home would take. A
        // position a probe returned holds while nothing was released since
        // (else it is `None`); the forward key's bucket is the only one it
        // takes, and it lies on the reverse key's probe only if it is the
        // very bucket that probe ended at (it was empty then).
        let at_fwd = match at_f {
            Some(at) => {
                self.index.put(at, hf, pack(slot, false));
                at
            }
            None => self.index.insert(hf, pack(slot, false)),
        };
        if let Some(h) = hr {
            match at_r {
                Some(at) if at != at_fwd => self.index.put(at, h, pack(slot, true)),
                _ => {
                    self.index.insert(h, pack(slot, true));
                }
            }
        }
        self.arm_at(slot, when);
        self.len += 1;
        self.stats.embryonic += 1;
        self.stats.inserted += 1;
        let id = EntryId {
            slot,
            generation: self.entries[slot as usize].generation,
        };
        // 4. Draining: bounded work per insert, hysteresis.
        if !self.draining && self.len > self.high {
            self.draining = true;
            self.stats.drain_entered += 1;
        }
        if self.draining {
            for _ in 0..self.drain_budget {
                if !self.draining || !self.evict_one(now, true, ReleaseReason::Drained, slot, rel) {
                    break;
                }
            }
        }
        Ok(id)
    }

    /// Releases a live entry with `reason` (both keys). Returns `false`, and
    /// does nothing, for a stale id. O(1).
    pub fn remove(
        &mut self,
        id: EntryId,
        reason: ReleaseReason,
        rel: &mut impl FnMut(V, ReleaseReason),
    ) -> bool {
        match self.live(id) {
            Some(i) => {
                self.release(i as u32, reason, rel);
                true
            }
            None => false,
        }
    }

    // ------------------------------------------------------------ expiry

    /// Releases up to `budget` entries due at `now` (reason
    /// [`ReleaseReason::Expired`]) in the wheel's order: slots in time
    /// order, FIFO within a slot. Entries found due beyond the budget stay
    /// on the wheel's pending list and come first on the next call; an
    /// entry whose deadline moved later is re-armed, not released. Returns
    /// how many were released. Amortised O(1) per released or re-armed
    /// entry; no allocation.
    pub fn poll(
        &mut self,
        now: Timestamp,
        budget: usize,
        rel: &mut impl FnMut(V, ReleaseReason),
    ) -> usize {
        let mut n = 0;
        while n < budget {
            let Some(slot) = self.pop_due(now) else {
                break;
            };
            self.release(slot, ReleaseReason::Expired, rel);
            n += 1;
        }
        n
    }

    /// Releases every live entry whose value satisfies `pred`, with
    /// `reason`, in slab order. Returns how many. O(capacity reached): for
    /// the control plane.
    pub fn remove_matching(
        &mut self,
        mut pred: impl FnMut(&V) -> bool,
        reason: ReleaseReason,
        rel: &mut impl FnMut(V, ReleaseReason),
    ) -> usize {
        let mut n = 0;
        for slot in 0..self.entries.len() {
            if self.entries[slot].value.as_ref().is_some_and(&mut pred) {
                self.release(slot as u32, reason, rel);
                n += 1;
            }
        }
        n
    }

    /// Releases every entry (reason [`ReleaseReason::Teardown`]), in slab
    /// order. Returns how many. Call it before dropping a shard whose
    /// values own resources: `Drop` drops them without calling anything.
    pub fn clear(&mut self, rel: &mut impl FnMut(V, ReleaseReason)) -> usize {
        self.remove_matching(|_| true, ReleaseReason::Teardown, rel)
    }

    // ------------------------------------------------------------ reads

    /// Every live entry in slab order: id, forward key, reverse key, value,
    /// rounded deadline. O(capacity reached).
    pub fn iter(&self) -> impl Iterator<Item = (EntryId, &K, Option<&K>, &V, Timestamp)> {
        self.entries.iter().enumerate().filter_map(|(i, e)| {
            let v = e.value.as_ref()?;
            let id = EntryId {
                slot: i as u32,
                generation: e.generation,
            };
            let rev = (e.link.user & F_REV != 0).then_some(&e.rev);
            Some((id, &e.fwd, rev, v, Timestamp::from_nanos(e.deadline)))
        })
    }

    /// Entries held (live, including ones past their deadline that nothing
    /// has released yet). O(1).
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no entry is held. O(1).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The hard capacity in entries.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Whether the shard is draining (between crossing the high watermark
    /// and falling to the low one).
    #[inline]
    pub fn is_draining(&self) -> bool {
        self.draining
    }

    /// The counters.
    #[inline]
    pub fn stats(&self) -> &ShardStats {
        &self.stats
    }

    /// Bytes this shard allocated: the slab's reservation, the index, the
    /// wheel's levels and the shard itself (not what values own on the
    /// heap). The slab is reserved for the whole capacity up front; pages
    /// it never reached are not resident.
    pub fn memory_bytes(&self) -> usize {
        core::mem::size_of::<Self>()
            + self.entries.capacity() * Self::ENTRY_BYTES
            + self.index.bytes()
            + self.levels * WHEEL_LEVEL_BYTES
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::FlowKey;

    /// An insert whose forward key frees a due entry (so its index
    /// position is re-probed) and whose reverse key's probe ended at the
    /// bucket the forward key then takes: both keys must stay findable.
    /// (The shrunk case `tests/shard.rs`'s model test found.)
    #[test]
    fn insert_reprobes_after_a_lazy_release() {
        let cfg = FlowTableConfig {
            tick: Duration::from_millis(10),
            high_watermark: 1.0,
            low_watermark: 0.25,
            drain_budget: 0,
            evict_scan: 1,
            hash_seed: Some(2_508_862_561_989_435_257),
            ..FlowTableConfig::default()
        };
        let key = |i: u64| u128::from(i) << 64 | u128::from(i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let now = Timestamp::from_millis(1_000);
        let mut s: Shard<u128, u64> = Shard::new(5, &cfg, now).unwrap();
        let mut log = Vec::new();
        let mut rel = |v, r| log.push((v, r));
        // Every entry is due at once (deadline `now`): each insert meeting
        // one of its keys releases the holder first.
        for (v, (f, r)) in [
            (0, None),
            (0, None),
            (0, Some(11)),
            (7, None),
            (5, None),
            (11, Some(6)),
            (7, None),
        ]
        .into_iter()
        .enumerate()
        {
            s.insert(key(f), r.map(key), v as u64, now, now, &mut rel)
                .unwrap();
        }
        for k in [11, 6, 7, 5] {
            let h = s.hash(&key(k));
            assert!(s.find(&key(k), h).is_some(), "key {k} lost");
        }
        let h = s.hash(&key(11));
        assert_eq!(s.lookup(&key(11), h, now, &mut rel), None);
        assert_eq!(log.last(), Some(&(5, ReleaseReason::LazyExpired)));
    }

    #[test]
    fn entry_layout() {
        assert_eq!(core::mem::size_of::<Entry<u128, [u8; 24]>>(), 96);
        assert_eq!(core::mem::offset_of!(Entry<u128, [u8; 24]>, fwd), 32);
        assert_eq!(core::mem::size_of::<Entry<FlowKey, [u8; 24]>>(), 136);
    }
}
