//! [`FlowTable`]: the sharded flow table. See the crate README for the design;
//! the short version:
//!
//! - An entry (a session) lives in the shard of its **forward** key: its value,
//!   status and wheel links in that shard's slab (under the shard mutex), its
//!   two keys, generation and deadline in that shard's *key store*.
//! - Each key's **index** entry (a `u32` tag: shard, slot, which key) lives in
//!   the shard of that key's hash. A reverse key may therefore index an entry
//!   of another shard.
//! - The key store is a chunked array of atomics readable without the owning
//!   shard's lock. That is what lets a probe in shard *r* compare a candidate
//!   whose entry lives in shard *f* holding only *r*'s lock. It is sound
//!   because keys are written before their index entries are published (both
//!   under the locks of both shards) and an index entry is removed (under its
//!   shard's lock) before its slot can be freed and reused: while a thread
//!   holds the lock of the shard whose index refers to a slot, that slot's
//!   keys cannot change. The atomics only make those reads data-race free;
//!   ordering comes from the mutexes, so `Relaxed` is enough.
//! - Operations that change both keys of a pair (insert, every removal) hold
//!   both shards' locks. Locks are taken in ascending shard order; a thread
//!   only ever *blocks* on a shard greater than every shard it holds, and
//!   uses `try_lock` otherwise (falling back to dropping everything and
//!   re-locking in order). No wait-for cycle can form, so no deadlock.
//!   Holding both locks means no thread ever sees half a pair.

use core::cmp::Reverse;
use core::fmt;
use core::hash::BuildHasher;
use std::collections::BinaryHeap;
use std::sync::OnceLock;
use std::sync::atomic::{
    AtomicU32, AtomicU64 as PlainAtomicU64, AtomicUsize as PlainAtomicUsize, Ordering as Mo,
    Ordering::Relaxed, fence,
};

use crossbeam_utils::CachePadded;
use hashbrown::HashTable;

use crate::config::{ConfigError, FlowTableConfig};
use crate::key::FlowKey;
use crate::sync::{AtomicUsize, Mutex, MutexGuard, Ordering};
use crate::time::Timestamp;
use crate::wheel::{self, Link, Wheel};

const CHUNK_BITS: u32 = 10;

/// `EntryMut::confirm` was called (not embryonic).
const F_CONFIRMED: u8 = 1;
/// In the shard's ready list (found due by `poll`, not released yet).
const F_READY: u8 = 4;

/// No candidate (a tag is at most `2^32 - 3`: slots per shard are capped
/// below `2^slot_bits - 1` by `FlowTableConfig::validate`).
const NO_TAG: u32 = u32::MAX;
/// An empty prefetch hint way.
const NO_HINT: u64 = u64::MAX;

/// A hint way: the tag, and the hash's high half to tell keys apart.
#[inline(always)]
fn hint_word(h: u64, tag: u32) -> u64 {
    (h >> 32) << 32 | u64::from(tag)
}

/// Keys per chunk of `lookup_batch`.
const BATCH: usize = 256;
/// More candidates than the batch keeps: use the plain probe.
const OVERFLOW_TAG: u32 = u32::MAX - 1;

/// Most entries examined per eviction search.
const MAX_SCAN: usize = 64;

/// Why an entry left the table (passed to the release hook; counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReleaseReason {
    /// Its deadline passed and [`FlowTable::poll`] (or an insert that found
    /// it due while making room) collected it.
    Expired,
    /// A lookup or insert found it past its deadline and removed it.
    LazyExpired,
    /// Shed by a shard draining above its high watermark.
    Drained,
    /// Evicted to make room in a full shard (due or embryonic entries only).
    Evicted,
    /// Removed by [`FlowTable::remove`] (or with the reason the caller gave).
    Removed,
    /// The table was dropped.
    Teardown,
}

impl ReleaseReason {
    /// All reasons, in counter order.
    pub const ALL: [ReleaseReason; 6] = [
        ReleaseReason::Expired,
        ReleaseReason::LazyExpired,
        ReleaseReason::Drained,
        ReleaseReason::Evicted,
        ReleaseReason::Removed,
        ReleaseReason::Teardown,
    ];
    /// Index into [`FlowTableStats::released`].
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// Which of an entry's keys a lookup matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The key the entry was created with (original direction).
    Forward,
    /// The entry's reverse (reply direction) key.
    Reverse,
}

/// A reference to one entry: shard, slot and generation. `Copy`; stale once
/// the entry leaves (operations on a stale handle do nothing and say so).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowHandle {
    shard: u32,
    slot: u32,
    gen_: u32,
}

/// A key's hash as [`FlowTable::prefetch`] computed it, for
/// [`FlowTable::prefetch_entry`] (only meaningful for the table that made it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowHash(u64);

impl FlowHandle {
    /// The shard holding the entry.
    pub fn shard(&self) -> usize {
        self.shard as usize
    }
}

/// A live entry as [`FlowTable::peek`] read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peek {
    /// The deadline (as [`EntryMut::expires_at`]).
    pub expires_at: Timestamp,
    /// The owner's word ([`EntryMut::set_aux`]; 0 until first set).
    pub aux: u32,
}

/// A [`FlowHandle`] with its key cell's address resolved
/// ([`FlowTable::locate`], [`EntryMut::located`]), so
/// [`FlowTable::peek_located`] reads the cell without the shard and chunk
/// lookups. Only meaningful for the table that made it: another table
/// answers `None` for it. `Copy`, `Send`, 24 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Located {
    handle: FlowHandle,
    table: u32,
    cell: core::ptr::NonNull<KeyCell>,
}

// SAFETY: `Located` is an address and two numbers; the address is only
// dereferenced by `FlowTable::peek_located` of the table whose id it
// carries, which is alive (borrowed) then and never frees key cells while
// it lives (`KeyStore`). Reading a cell from any thread is what `peek` does.
#[allow(unsafe_code)]
unsafe impl Send for Located {}
// SAFETY: as above (no interior state).
#[allow(unsafe_code)]
unsafe impl Sync for Located {}

impl Located {
    /// Starts loading the key cell it points at (for a later
    /// [`FlowTable::peek_located`] or [`FlowTable::peek_ticks`]). Only the
    /// address is used (a prefetch reads nothing a program can see), so it
    /// needs no table: a `Located` of another table prefetches a line that
    /// table's peek then refuses.
    #[inline(always)]
    pub fn prefetch(&self) {
        let at = self.cell.as_ptr().addr() + core::mem::offset_of!(KeyCell, gen_);
        prefetch_addr(at);
    }

    /// The handle it resolves.
    pub fn handle(&self) -> FlowHandle {
        self.handle
    }
}

/// Ids of live and past tables ([`Located`] carries its table's id).
static TABLE_IDS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

/// A time converted to one table's ticks by [`FlowTable::clock`], for
/// [`FlowTable::peek_located`]: convert once per burst, not once per peek (the
/// conversion divides). Only meaningful for the table that made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableClock {
    /// Ticks elapsed (floor).
    tick: u64,
    /// The table's time base and tick length, in nanoseconds.
    base: u64,
    tick_ns: u64,
}

impl TableClock {
    /// Whole ticks elapsed since the table's time base (0 before it).
    pub fn tick(&self) -> u64 {
        self.tick
    }
    /// The table's time base (ns; ticks count from it).
    pub fn base_ns(&self) -> u64 {
        self.base
    }
    /// The table's tick length (ns).
    pub fn tick_ns(&self) -> u64 {
        self.tick_ns
    }
}

/// What [`FlowTable::peek_ticks`] reads: a live entry's deadline as the
/// table stores it and its owner's word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeekTicks {
    /// The deadline in ticks from the table's base ([`Peek::expires_at`] is
    /// `base + deadline × tick` ns, saturating).
    pub deadline: u32,
    /// The owner's word ([`EntryMut::set_aux`]; 0 until first set).
    pub aux: u32,
}

/// What an insert did.
#[derive(Debug, PartialEq, Eq)]
pub enum Inserted<V> {
    /// The entry is new.
    New(FlowHandle),
    /// The forward key was already present (another worker won the race, or
    /// the key is the reply key of a live session): the handle of that
    /// winner, and the caller's value back, never stored, never passed to
    /// the release hook — the caller releases what it allocated for it.
    Existing(FlowHandle, V),
}

/// Why an insert failed. The value never entered the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InsertError {
    /// The forward key's shard is at hard capacity and no due or embryonic
    /// entry could be evicted (counted in [`FlowTableStats::full`]).
    #[error("flow table shard is full")]
    Full,
    /// The reverse key belongs to another live entry (counted in
    /// [`FlowTableStats::conflicts`]); e.g. a NAT port already in use.
    #[error("reverse key belongs to another flow")]
    Conflict,
}

/// The entry is no longer in the table (expired, removed, or reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("flow entry is gone")]
pub struct Gone;

/// A snapshot of the counters, summed over shards (each shard consistent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowTableStats {
    /// Entries held (including ones found due, not yet released).
    pub len: usize,
    /// `len - expired_pending`.
    pub active_len: usize,
    /// Entries the wheel found due that `poll` has not released yet.
    pub expired_pending: usize,
    /// Entries never confirmed ([`EntryMut::confirm`]).
    pub embryonic: usize,
    pub inserted: u64,
    /// Inserts that found the forward key present (race losers).
    pub existing: u64,
    pub conflicts: u64,
    /// Inserts refused with [`InsertError::Full`].
    pub full: u64,
    /// Releases per [`ReleaseReason`] (index with [`ReleaseReason::index`]).
    pub released: [u64; 6],
    pub draining_entered: u64,
    pub draining_left: u64,
    /// Shards draining now.
    pub draining_shards: usize,
}

impl FlowTableStats {
    pub fn released(&self, r: ReleaseReason) -> u64 {
        self.released[r.index()]
    }
}

/// The release hook: called exactly once per entry, whatever removes it,
/// while the entry's shard lock(s) are held. It must not call back into the
/// table (that would deadlock) and must not panic.
pub type ReleaseHook<V> = Box<dyn Fn(&V, ReleaseReason) + Send + Sync>;

// ---------------------------------------------------------------- prefetch

/// Hints the CPU to start loading the cache line of `p` (no effect on
/// program semantics; a no-op off x86-64 and under shuttle).
#[inline(always)]
#[allow(unsafe_code)]
fn prefetch_ptr(p: *const u8) {
    #[cfg(all(target_arch = "x86_64", not(feature = "shuttle")))]
    // SAFETY: `prefetcht0` is a hint: it never faults, reads no value into
    // the program and writes nothing, whatever the address (also a stale
    // or unmapped one); SSE, which provides it, is in the x86-64 baseline.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(all(target_arch = "x86_64", not(feature = "shuttle"))))]
    let _ = p;
}

/// Hints the CPU to start loading the cache line holding `*p` (no effect
/// on program semantics; a no-op off x86-64 and under shuttle). Public for
/// the dataplane's own per-worker tables.
#[inline(always)]
pub fn prefetch<T>(p: &T) {
    prefetch_ptr(core::ptr::from_ref(p).cast());
}

/// [`prefetch_ptr`] of both cache lines a slab slot may straddle.
#[inline(always)]
fn prefetch_slot<V>(x: &Slot<V>) {
    let a = core::ptr::from_ref(x).addr();
    prefetch_addr(a);
    prefetch_addr(a + core::mem::size_of::<Slot<V>>() - 1);
}

/// [`prefetch_ptr`] of a bare address (never dereferenced).
#[inline(always)]
fn prefetch_addr(a: usize) {
    prefetch_ptr(core::ptr::without_provenance(a));
}

// ---------------------------------------------------------------- key store

/// Keys, generation and deadline of one slot, readable without the shard
/// lock (see the module doc for why that is sound).
/// `repr(C)`, generation, deadline and aux between the two keys: a
/// forward-key match and the deadline check that follows read bytes 0..48,
/// a reverse-key match and its deadline check bytes 40..96 (48 or 56
/// contiguous bytes, at most two cache lines, usually one).
#[repr(C)]
struct KeyCell {
    /// Forward key words.
    fw: [PlainAtomicU64; 5],
    gen_: AtomicU32,
    /// Deadline in ticks from the table's base.
    deadline: AtomicU32,
    /// The owner's word ([`EntryMut::set_aux`]), 0 for a new entry:
    /// state it publishes for lock-free readers ([`FlowTable::peek`]).
    aux: AtomicU32,
    /// Reverse key words (all zero: no reverse key; a real key always has
    /// a non-zero family byte).
    rw: [PlainAtomicU64; 5],
}

impl KeyCell {
    fn new() -> Self {
        Self {
            fw: Default::default(),
            gen_: AtomicU32::new(0),
            deadline: AtomicU32::new(0),
            aux: AtomicU32::new(0),
            rw: Default::default(),
        }
    }
    #[inline(always)]
    fn words(&self, dir: Direction) -> &[PlainAtomicU64; 5] {
        if dir == Direction::Forward {
            &self.fw
        } else {
            &self.rw
        }
    }
    /// Starts loading the part of the cell that a `dir` match and the
    /// deadline check read (first and last byte of those 48 bytes).
    #[inline(always)]
    fn prefetch(&self, dir: Direction) {
        if dir == Direction::Forward {
            prefetch(&self.fw[0]);
            prefetch(&self.deadline);
        } else {
            prefetch(&self.gen_);
            prefetch(&self.rw[4]);
        }
    }
    #[inline(always)]
    fn matches(&self, dir: Direction, k: &FlowKey) -> bool {
        let w = self.words(dir);
        let kw = k.words();
        // Last word first: ports/proto/zone differ most often.
        w[4].load(Relaxed) == kw[4]
            && w[0].load(Relaxed) == kw[0]
            && w[2].load(Relaxed) == kw[2]
            && w[1].load(Relaxed) == kw[1]
            && w[3].load(Relaxed) == kw[3]
    }
    #[inline]
    fn key(&self, dir: Direction) -> FlowKey {
        let w = self.words(dir);
        FlowKey::from_words(core::array::from_fn(|i| w[i].load(Relaxed)))
    }
    #[inline]
    fn rev(&self) -> Option<FlowKey> {
        if self.rw[4].load(Relaxed) == 0 {
            None
        } else {
            Some(self.key(Direction::Reverse))
        }
    }
    fn set(&self, fwd: &FlowKey, rev: Option<&FlowKey>, deadline: u32) {
        // A lock-free reader ([`FlowTable::peek`]) that sees any of these
        // stores also sees the generation bump of the release that freed
        // the slot (it re-reads the generation after an acquire fence).
        fence(Mo::Release);
        self.aux.store(0, Relaxed);
        for (i, w) in fwd.words().into_iter().enumerate() {
            self.fw[i].store(w, Relaxed);
        }
        let rw = rev.map_or([0; 5], FlowKey::words);
        for (i, w) in rw.into_iter().enumerate() {
            self.rw[i].store(w, Relaxed);
        }
        self.deadline.store(deadline, Relaxed);
    }
    #[inline]
    fn gen_(&self) -> u32 {
        self.gen_.load(Relaxed)
    }
    #[inline]
    fn deadline(&self) -> u64 {
        u64::from(self.deadline.load(Relaxed))
    }
}

/// Chunks of key cells, allocated on demand (under the shard lock) and never
/// moved, so other shards can read them without that lock. Chunks hold
/// 1024 cells (90 KB), fewer for small shards (down to 64) so a small
/// table does not pay for a large chunk per shard.
struct KeyStore {
    chunks: Box<[OnceLock<Box<[KeyCell]>>]>,
    bits: u32,
}

impl KeyStore {
    fn new(capacity: usize) -> Self {
        // About an eighth of the shard per chunk, between 64 and 1024 cells.
        let bits = (capacity / 8)
            .max(1)
            .next_power_of_two()
            .trailing_zeros()
            .clamp(6, CHUNK_BITS);
        Self {
            chunks: (0..capacity.div_ceil(1 << bits))
                .map(|_| OnceLock::new())
                .collect(),
            bits,
        }
    }
    #[inline(always)]
    fn try_cell(&self, slot: u32) -> Option<&KeyCell> {
        let c = self.chunks.get((slot >> self.bits) as usize)?.get()?;
        c.get(slot as usize & ((1 << self.bits) - 1))
    }
    /// # Panics
    /// If `slot`'s chunk was never allocated: a slot index only reaches here
    /// after its chunk was allocated, so this is an internal bug.
    #[inline(always)]
    fn cell(&self, slot: u32) -> &KeyCell {
        self.try_cell(slot)
            .expect("flow-entry bug: key cell of an unallocated slot")
    }
    fn ensure(&self, slot: u32) {
        if let Some(c) = self.chunks.get((slot >> self.bits) as usize) {
            c.get_or_init(|| (0..1usize << self.bits).map(|_| KeyCell::new()).collect());
        }
    }
    fn allocated_bytes(&self) -> usize {
        self.chunks.iter().filter(|c| c.get().is_some()).count()
            * (1 << self.bits)
            * core::mem::size_of::<KeyCell>()
    }
}

// ---------------------------------------------------------------- shards

/// Value, wheel links and flags (the flags live in the link's spare byte).
struct Slot<V> {
    value: Option<V>,
    link: Link,
}

impl<V> Slot<V> {
    #[inline]
    fn flags(&self) -> u8 {
        self.link.user
    }
    #[inline]
    fn flags_mut(&mut self) -> &mut u8 {
        &mut self.link.user
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    inserted: u64,
    existing: u64,
    conflicts: u64,
    full: u64,
    released: [u64; 6],
    drain_entered: u64,
    drain_left: u64,
}

struct Inner<V> {
    index: HashTable<u32>,
    slots: Vec<Slot<V>>,
    free: u32,
    wheel: Wheel,
    /// (slot, generation) of entries found due, not yet released.
    ready: Vec<(u32, u32)>,
    ready_sorted: bool,
    len: usize,
    embryonic: usize,
    pending: usize,
    draining: bool,
    c: Counters,
}

struct Shard<V> {
    inner: Mutex<Inner<V>>,
    keys: KeyStore,
    len: AtomicUsize,
    pending: AtomicUsize,
    /// Where the index's control bytes start (0: not known yet) and its
    /// bucket mask, noted under the lock at each index insert, read without
    /// it only to prefetch (a stale value costs a useless prefetch, never a
    /// wrong result: nothing is read through it).
    ix_ctrl: PlainAtomicUsize,
    ix_mask: PlainAtomicUsize,
    /// Where the slab's slots start (0: none yet), noted under the lock
    /// whenever the slab may have moved, read without it only to prefetch
    /// (same rule as `ix_ctrl`).
    slots_at: PlainAtomicUsize,
    /// Prefetch hints, two ways per bucket `hash & (buckets - 1)`, each
    /// `tag | (hash >> 32) << 32`: written under the lock at each index
    /// insert and removal, read without it by `prefetch_entry` (a stale,
    /// colliding or missing hint costs a useless or skipped prefetch, never
    /// a wrong result: lookups never read hints). 16 bytes per entry of the
    /// shard's capacity (rounded up to a power of two).
    hints: Box<[PlainAtomicU64]>,
}

/// The wheel's view of a shard's slab.
struct Ws<'a, V> {
    slots: &'a mut [Slot<V>],
    keys: &'a KeyStore,
}

impl<V> wheel::Store for Ws<'_, V> {
    #[inline]
    fn link(&self, i: u32) -> Link {
        self.slots[i as usize].link
    }
    #[inline]
    fn link_mut(&mut self, i: u32) -> &mut Link {
        &mut self.slots[i as usize].link
    }
    #[inline]
    fn deadline(&self, i: u32) -> u64 {
        self.keys.cell(i).deadline()
    }
}

/// Read-only store for scans.
struct Wr<'a, V> {
    slots: &'a [Slot<V>],
}

impl<V> wheel::Store for Wr<'_, V> {
    fn link(&self, i: u32) -> Link {
        self.slots[i as usize].link
    }
    fn link_mut(&mut self, _: u32) -> &mut Link {
        unreachable!("scan store is read-only")
    }
    fn deadline(&self, _: u32) -> u64 {
        0
    }
}

// ---------------------------------------------------------------- time

struct TimeBase {
    base: OnceLock<u64>,
    tick_ns: u64,
}

impl TimeBase {
    #[inline]
    fn base(&self, now: Timestamp) -> u64 {
        *self
            .base
            .get_or_init(|| now.as_nanos() - now.as_nanos() % self.tick_ns)
    }
    /// Ticks elapsed at `now` (floor).
    #[inline]
    fn now_tick(&self, now: Timestamp) -> u64 {
        now.as_nanos().saturating_sub(self.base(now)) / self.tick_ns
    }
    /// Deadline tick of `t` (ceil), clamped to `u32`.
    #[inline]
    fn deadline_tick(&self, t: Timestamp) -> u32 {
        let base = self.base.get().copied().unwrap_or(0);
        let d = t.as_nanos().saturating_sub(base).div_ceil(self.tick_ns);
        u32::try_from(d).unwrap_or(u32::MAX)
    }
    #[inline]
    fn to_timestamp(&self, tick: u64) -> Timestamp {
        let base = self.base.get().copied().unwrap_or(0);
        Timestamp::from_nanos(base.saturating_add(tick.saturating_mul(self.tick_ns)))
    }
}

// ---------------------------------------------------------------- locks

type Guard<'a, V> = MutexGuard<'a, Inner<V>>;

/// Up to three shard guards, acquired in ascending order (or by try_lock).
struct Locked<'a, V> {
    g: [Option<(usize, Guard<'a, V>)>; 3],
}

impl<'a, V> Locked<'a, V> {
    fn holds(&self, s: usize) -> bool {
        self.g.iter().flatten().any(|(i, _)| *i == s)
    }
    fn max_held(&self) -> Option<usize> {
        self.g.iter().flatten().map(|(i, _)| *i).max()
    }
    /// # Panics
    /// If `s` is not held (internal bug).
    fn get(&mut self, s: usize) -> &mut Inner<V> {
        for (i, g) in self.g.iter_mut().flatten() {
            if *i == s {
                return g;
            }
        }
        panic!("flow-entry bug: shard {s} not locked")
    }
    /// Two distinct held shards, mutably. `b == a` gives `None` for b.
    fn pair(&mut self, a: usize, b: usize) -> (&mut Inner<V>, Option<&mut Inner<V>>) {
        let mut ga = None;
        let mut gb = None;
        for (i, g) in self.g.iter_mut().flatten() {
            if *i == a {
                ga = Some(&mut **g);
            } else if *i == b {
                gb = Some(&mut **g);
            }
        }
        (
            ga.expect("flow-entry bug: shard not locked"),
            if a == b {
                None
            } else {
                Some(gb.expect("flow-entry bug: pair shard not locked"))
            },
        )
    }
    fn push(&mut self, s: usize, g: Guard<'a, V>) -> bool {
        for e in &mut self.g {
            if e.is_none() {
                *e = Some((s, g));
                return true;
            }
        }
        false
    }
    /// Releases every guard but `keep`.
    fn keep_only(&mut self, keep: usize) {
        for e in &mut self.g {
            if e.as_ref().is_some_and(|(i, _)| *i != keep) {
                *e = None;
            }
        }
    }
}

// ---------------------------------------------------------------- table

/// The sharded flow table. Share it with `Arc`; every method takes `&self`.
///
/// Values `V` are the caller's per-session state (small: a NAT session's
/// flags; choose a type with a niche, e.g. containing a `NonZeroU16`, and
/// `Option<V>` in the slab costs nothing extra).
pub struct FlowTable<V> {
    /// Unique per table, checked by `peek_located`; 0 (never matches) once
    /// a process has made 2^32 - 1 tables: ids are never reused.
    id: u32,
    shards: Box<[CachePadded<Shard<V>>]>,
    hasher: KeyHasher,
    shard_mask: usize,
    slot_bits: u32,
    shard_cap: usize,
    high: usize,
    low: usize,
    time: TimeBase,
    drain_budget: usize,
    evict_scan: usize,
    draining_timeout: Option<core::time::Duration>,
    hook: ReleaseHook<V>,
}

impl<V> fmt::Debug for FlowTable<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlowTable")
            .field("shards", &self.shards.len())
            .field("shard_capacity", &self.shard_cap)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

/// The table's key hash: three folded multiplies (128-bit product, high
/// half XOR low half) over the key's five words, each word XORed with a
/// secret derived from the table's seed (random unless configured). Same
/// family as foldhash's long-input path, specialised to the fixed 40-byte
/// key instead of hashing it as a byte slice with a length prefix.
#[derive(Debug, Clone)]
struct KeyHasher {
    s: [u64; 6],
}

#[inline(always)]
fn fold_mul(x: u64, y: u64) -> u64 {
    let p = u128::from(x) * u128::from(y);
    (p as u64) ^ ((p >> 64) as u64)
}

impl KeyHasher {
    fn new(seed: u64) -> Self {
        // splitmix64 to spread one seed over six secrets.
        let mut x = seed;
        let s = core::array::from_fn(|_| {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        });
        Self { s }
    }
    #[inline(always)]
    fn hash(&self, k: &FlowKey) -> u64 {
        let w = k.words();
        let s = &self.s;
        let a = fold_mul(w[0] ^ s[0], w[1] ^ s[1]);
        let b = fold_mul(w[2] ^ s[2], w[3] ^ s[3]);
        fold_mul(a ^ w[4] ^ s[4], b ^ s[5])
    }
}

/// Removes the index entry holding exactly `tag` (no key comparison).
#[inline]
fn unindex(index: &mut HashTable<u32>, h: u64, tag: u32) {
    if let Ok(e) = index.find_entry(h, |&t| t == tag) {
        e.remove();
    }
}

enum Probe {
    Miss,
    /// (entry shard, slot, which key)
    Hit(usize, u32, Direction),
}

impl<V> FlowTable<V> {
    /// Builds a table; `hook` runs exactly once for every entry that leaves.
    /// Pre-sizes each shard's index for its capacity; slab and key store
    /// grow in chunks of 1024 entries up to that capacity.
    ///
    /// # Errors
    /// [`ConfigError`] if `cfg` does not validate.
    pub fn new(
        cfg: FlowTableConfig,
        hook: impl Fn(&V, ReleaseReason) + Send + Sync + 'static,
    ) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let seed = cfg
            .hash_seed
            .unwrap_or_else(|| foldhash::fast::RandomState::default().hash_one(0x5eed_f10e_u64));
        let shard_cap = cfg.shard_capacity();
        let tick_ns = u64::try_from(cfg.tick.as_nanos()).unwrap_or(u64::MAX);
        let range_ticks =
            u64::try_from(cfg.range.as_nanos() / cfg.tick.as_nanos()).unwrap_or(u64::MAX);
        let levels = Wheel::levels_for_range(range_ticks);
        let shards = (0..cfg.shards)
            .map(|_| {
                CachePadded::new(Shard {
                    inner: Mutex::new(Inner {
                        index: HashTable::with_capacity(2 * shard_cap),
                        slots: Vec::new(),
                        free: wheel::NIL,
                        wheel: Wheel::new(levels),
                        ready: Vec::new(),
                        ready_sorted: true,
                        len: 0,
                        embryonic: 0,
                        pending: 0,
                        draining: false,
                        c: Counters::default(),
                    }),
                    keys: KeyStore::new(shard_cap),
                    len: AtomicUsize::new(0),
                    pending: AtomicUsize::new(0),
                    ix_ctrl: PlainAtomicUsize::new(0),
                    ix_mask: PlainAtomicUsize::new(0),
                    slots_at: PlainAtomicUsize::new(0),
                    hints: (0..2 * shard_cap.next_power_of_two().max(32))
                        .map(|_| PlainAtomicU64::new(NO_HINT))
                        .collect(),
                })
            })
            .collect();
        // Watermarks in entries; high at least 1 below... capacity itself is
        // the hard limit.
        let high = ((shard_cap as f64) * cfg.high_watermark).floor() as usize;
        let low = ((shard_cap as f64) * cfg.low_watermark).floor() as usize;
        Ok(Self {
            id: TABLE_IDS
                .fetch_update(Relaxed, Relaxed, |i| i.checked_add(1))
                .unwrap_or(0),
            shards,
            hasher: KeyHasher::new(seed),
            shard_mask: cfg.shards - 1,
            slot_bits: 31 - cfg.shards.trailing_zeros(),
            shard_cap,
            high: high.max(1),
            low: low.min(high.saturating_sub(1)),
            time: TimeBase {
                base: OnceLock::new(),
                tick_ns,
            },
            drain_budget: cfg.drain_budget,
            evict_scan: cfg.evict_scan.min(MAX_SCAN),
            draining_timeout: cfg.draining_timeout,
            hook: Box::new(hook),
        })
    }

    // ------------------------------------------------------------ helpers

    #[inline(always)]
    fn hash(&self, k: &FlowKey) -> u64 {
        self.hasher.hash(k)
    }
    #[inline(always)]
    fn shard_of(&self, h: u64) -> usize {
        ((h >> 40) as usize) & self.shard_mask
    }
    #[inline]
    fn tag(&self, shard: usize, slot: u32, dir: Direction) -> u32 {
        let gid = ((shard as u32) << self.slot_bits) | slot;
        (gid << 1) | u32::from(dir == Direction::Reverse)
    }
    #[inline(always)]
    fn untag(&self, tag: u32) -> (usize, u32, Direction) {
        let gid = tag >> 1;
        let dir = if tag & 1 == 1 {
            Direction::Reverse
        } else {
            Direction::Forward
        };
        (
            (gid >> self.slot_bits) as usize,
            gid & ((1 << self.slot_bits) - 1),
            dir,
        )
    }
    #[inline(always)]
    fn cell(&self, shard: usize, slot: u32) -> &KeyCell {
        self.shards[shard].keys.cell(slot)
    }
    #[inline]
    fn tag_key(&self, tag: u32) -> FlowKey {
        let (s, slot, dir) = self.untag(tag);
        self.cell(s, slot).key(dir)
    }
    #[inline(always)]
    fn probe(&self, inner: &Inner<V>, h: u64, key: &FlowKey) -> Probe {
        match inner.index.find(h, |&tag| {
            let (s, slot, dir) = self.untag(tag);
            self.cell(s, slot).matches(dir, key)
        }) {
            Some(&tag) => {
                let (s, slot, dir) = self.untag(tag);
                Probe::Hit(s, slot, dir)
            }
            None => Probe::Miss,
        }
    }
    /// The shard of the entry's reverse key (its own shard if it has none).
    #[inline]
    fn rev_shard(&self, shard: usize, slot: u32) -> usize {
        match self.cell(shard, slot).rev() {
            Some(r) => self.shard_of(self.hash(&r)),
            None => shard,
        }
    }

    /// Starts loading the index group where a probe for hash `h` in shard
    /// `s` begins: hashbrown's control bytes at `ctrl + pos` and the
    /// buckets of that group, stored downwards from `ctrl` (4 bytes each).
    /// Reads only the noted address (no lock); see `Shard::ix_ctrl`.
    #[inline(always)]
    fn prefetch_index(&self, s: usize, h: u64) {
        let sh = &self.shards[s];
        let ctrl = sh.ix_ctrl.load(Relaxed);
        if ctrl != 0 {
            let pos = (h as usize) & sh.ix_mask.load(Relaxed);
            prefetch_addr(ctrl.wrapping_add(pos));
            prefetch_addr(ctrl.wrapping_sub(4 * (pos + 1)));
            prefetch_addr(ctrl.wrapping_sub(4 * (pos + 16)));
        }
    }
    /// The two hint ways of hash `h` in shard `s` (same 16-byte block).
    #[inline(always)]
    fn hints(&self, s: usize, h: u64) -> &[PlainAtomicU64] {
        let hints = &self.shards[s].hints;
        let b = (h as usize) & (hints.len() / 2 - 1);
        &hints[2 * b..2 * b + 2]
    }
    /// Notes `tag` as the prefetch hint for hash `h` in shard `s` (under
    /// its lock): a free way, else the way the hash's bit 32 picks.
    #[inline]
    fn note_hint(&self, s: usize, h: u64, tag: u32) {
        let w = self.hints(s, h);
        let v = hint_word(h, tag);
        let i = if w[0].load(Relaxed) == NO_HINT {
            0
        } else if w[1].load(Relaxed) == NO_HINT {
            1
        } else {
            ((h >> 32) & 1) as usize
        };
        w[i].store(v, Relaxed);
    }
    /// The entry hash `h`'s hint names (read without a lock; may be stale).
    #[inline(always)]
    fn hinted(&self, h: u64) -> Option<(usize, u32, Direction)> {
        let check = h >> 32;
        self.hints(self.shard_of(h), h)
            .iter()
            .map(|w| w.load(Relaxed))
            .find(|&v| v != NO_HINT && v >> 32 == check)
            .map(|v| self.untag(v as u32))
    }
    /// Clears the hint of `tag` (index entry removed, under the lock).
    #[inline]
    fn unhint(&self, s: usize, h: u64, tag: u32) {
        let v = hint_word(h, tag);
        for w in self.hints(s, h) {
            if w.load(Relaxed) == v {
                w.store(NO_HINT, Relaxed);
            }
        }
    }

    /// Notes where shard `s`'s index lives, from the entry just inserted.
    #[inline]
    fn note_index(&self, s: usize, e: hashbrown::hash_table::OccupiedEntry<'_, u32>) {
        let b = e.bucket_index();
        let at = core::ptr::from_ref(e.get()).addr();
        let mask = e.into_table().num_buckets() - 1;
        let ctrl = at + 4 * (b + 1);
        let sh = &self.shards[s];
        if sh.ix_ctrl.load(Relaxed) != ctrl || sh.ix_mask.load(Relaxed) != mask {
            sh.ix_ctrl.store(ctrl, Relaxed);
            sh.ix_mask.store(mask, Relaxed);
        }
    }

    fn lock1(&self, s: usize) -> Locked<'_, V> {
        Locked {
            g: [Some((s, self.shards[s].inner.lock())), None, None],
        }
    }
    /// Locks `a` and `b` in ascending order (one lock if equal).
    fn lock2(&self, a: usize, b: usize) -> Locked<'_, V> {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let mut l = self.lock1(lo);
        if hi != lo {
            l.push(hi, self.shards[hi].inner.lock());
        }
        l
    }
    /// Adds shard `s` to `l`: blocking only if `s` is above every held
    /// shard, else `try_lock`. `false`: not acquired (the caller drops `l`
    /// and re-locks in order).
    fn try_add<'a>(&'a self, l: &mut Locked<'a, V>, s: usize) -> bool {
        if l.holds(s) {
            return true;
        }
        let g = if l.max_held().is_none_or(|m| s > m) {
            Some(self.shards[s].inner.lock())
        } else {
            self.shards[s].inner.try_lock()
        };
        match g {
            Some(g) => l.push(s, g),
            None => false,
        }
    }

    /// Removes the live entry `slot` of shard `f` (both index entries, wheel
    /// links), runs the hook once, frees the slot. `ri` is the reverse
    /// key's shard when that differs from `f`.
    ///
    /// # Panics
    /// If the reverse key's shard differs from `f` and `ri` is `None`
    /// (internal bug: the caller must hold both locks).
    fn release(
        &self,
        f: usize,
        fi: &mut Inner<V>,
        ri: Option<&mut Inner<V>>,
        slot: u32,
        reason: ReleaseReason,
    ) {
        let cell = self.cell(f, slot);
        let fwd = cell.key(Direction::Forward);
        let hf = self.hash(&fwd);
        let ftag = self.tag(f, slot, Direction::Forward);
        unindex(&mut fi.index, hf, ftag);
        self.unhint(f, hf, ftag);
        if let Some(rev) = cell.rev() {
            let h = self.hash(&rev);
            let r = self.shard_of(h);
            let rtag = self.tag(f, slot, Direction::Reverse);
            let index = if r == f {
                &mut fi.index
            } else {
                &mut ri
                    .expect("flow-entry bug: reverse shard not locked on release")
                    .index
            };
            unindex(index, h, rtag);
            self.unhint(r, h, rtag);
        }
        self.finish_release(f, fi, slot, reason);
    }

    /// The part of a release after both index entries are gone: wheel
    /// links, the hook (once), generation, free list, counters.
    fn finish_release(&self, f: usize, fi: &mut Inner<V>, slot: u32, reason: ReleaseReason) {
        let keys = &self.shards[f].keys;
        let cell = keys.cell(slot);
        {
            let Inner { wheel, slots, .. } = &mut *fi;
            wheel.cancel(&mut Ws { slots, keys }, slot);
        }
        let free = fi.free;
        let s = &mut fi.slots[slot as usize];
        let flags = s.flags();
        if let Some(v) = s.value.take() {
            (self.hook)(&v, reason);
        }
        *s.flags_mut() = 0;
        s.link.set_spare(free);
        fi.free = slot;
        cell.gen_.store(cell.gen_().wrapping_add(1), Relaxed);
        fi.c.released[reason.index()] += 1;
        fi.len -= 1;
        if flags & F_CONFIRMED == 0 {
            fi.embryonic -= 1;
        }
        if flags & F_READY != 0 {
            fi.pending -= 1;
            self.shards[f].pending.store(fi.pending, Ordering::Relaxed);
        }
        if fi.draining && fi.len <= self.low {
            fi.draining = false;
            fi.c.drain_left += 1;
        }
        self.shards[f].len.store(fi.len, Ordering::Relaxed);
    }

    /// Removes entry (shard, slot) if it still has generation `gen_` and
    /// `cond` holds under both locks. Returns whether it was removed.
    fn remove_checked(
        &self,
        shard: usize,
        slot: u32,
        gen_: u32,
        reason: ReleaseReason,
        cond: impl Fn(&KeyCell, &V) -> bool,
    ) -> bool {
        let Some(cell) = self.shards.get(shard).and_then(|s| s.keys.try_cell(slot)) else {
            return false;
        };
        if cell.gen_() != gen_ {
            return false;
        }
        // The reverse key read here is the one of generation `gen_` if the
        // generation still matches once locked (a reuse bumps it first).
        let r = self.rev_shard(shard, slot);
        let mut l = self.lock2(shard, r);
        let keep = match l.get(shard).slots.get(slot as usize) {
            Some(Slot { value: Some(v), .. }) => cell.gen_() != gen_ || !cond(cell, v),
            _ => true,
        };
        if keep {
            return false;
        }
        let (fi, ri) = l.pair(shard, r);
        self.release(shard, fi, ri, slot, reason);
        true
    }

    fn alloc_slot(&self, f: usize, fi: &mut Inner<V>) -> Option<u32> {
        if fi.free != wheel::NIL {
            let s = fi.free;
            fi.free = fi.slots[s as usize].link.spare();
            return Some(s);
        }
        let n = fi.slots.len();
        if n >= self.shard_cap {
            return None;
        }
        if n == fi.slots.capacity() {
            // Grow by 1/8 (at least 64): memory follows the high-water mark.
            let add = (n / 8).max(64).min(self.shard_cap - n);
            fi.slots.reserve_exact(add);
        }
        let slot = n as u32;
        self.shards[f].keys.ensure(slot);
        fi.slots.push(Slot {
            value: None,
            link: Link::UNLINKED,
        });
        let at = fi.slots.as_ptr().addr();
        let sh = &self.shards[f];
        if sh.slots_at.load(Relaxed) != at {
            sh.slots_at.store(at, Relaxed);
        }
        Some(slot)
    }

    /// Pops the next due item of shard `f`'s wheel or ready list (unarmed,
    /// not READY any more). Returns `None` if nothing is due.
    fn pop_due(&self, f: usize, fi: &mut Inner<V>, now_t: u64) -> Option<u32> {
        while let Some((slot, g)) = fi.ready.pop() {
            let s = &mut fi.slots[slot as usize];
            if s.value.is_some() && s.flags() & F_READY != 0 && self.cell(f, slot).gen_() == g {
                *s.flags_mut() &= !F_READY;
                fi.pending -= 1;
                self.shards[f].pending.store(fi.pending, Ordering::Relaxed);
                return Some(slot);
            }
        }
        let Inner { wheel, slots, .. } = fi;
        let t = now_t.max(wheel.elapsed());
        wheel.next_due(
            &mut Ws {
                slots,
                keys: &self.shards[f].keys,
            },
            t,
        )
    }

    /// Puts a popped due item back (armed overdue: due on the next poll).
    fn unpop_due(&self, f: usize, fi: &mut Inner<V>, slot: u32) {
        let Inner { wheel, slots, .. } = fi;
        let keys = &self.shards[f].keys;
        let d = keys.cell(slot).deadline();
        wheel.arm(&mut Ws { slots, keys }, slot, d);
    }

    /// Evicts one entry of shard `f` (held in `l`): something already due
    /// first (reason Expired), then an embryonic entry within the scan window,
    /// then — only if `soonest` — the first scanned (soonest-due) entry.
    /// Victims whose reverse shard cannot be locked without blocking out of
    /// order are skipped. Bounded: O(evict_scan).
    fn evict_one<'a>(
        &'a self,
        l: &mut Locked<'a, V>,
        f: usize,
        now_t: u64,
        soonest: bool,
        reason: ReleaseReason,
        protect: u32,
    ) -> bool {
        if let Some(slot) = self.pop_due(f, l.get(f), now_t) {
            let r = self.rev_shard(f, slot);
            if self.try_add(l, r) {
                let (fi, ri) = l.pair(f, r);
                self.release(f, fi, ri, slot, ReleaseReason::Expired);
                return true;
            }
            self.unpop_due(f, l.get(f), slot);
        }
        let mut cand = [(wheel::NIL, false); MAX_SCAN];
        let mut n = 0;
        {
            let fi = l.get(f);
            let slots = &fi.slots;
            fi.wheel.scan(&Wr { slots }, self.evict_scan, |i| {
                if i != protect {
                    cand[n] = (i, slots[i as usize].flags() & F_CONFIRMED == 0);
                    n += 1;
                }
                false
            });
        }
        let pick = |want_embryonic: bool| {
            cand[..n]
                .iter()
                .filter(move |(_, e)| !want_embryonic || *e)
                .map(|(i, _)| *i)
        };
        let passes: &[bool] = if soonest { &[true, false] } else { &[true] };
        for &emb in passes {
            for slot in pick(emb) {
                let r = self.rev_shard(f, slot);
                if self.try_add(l, r) {
                    let (fi, ri) = l.pair(f, r);
                    self.release(f, fi, ri, slot, reason);
                    return true;
                }
            }
        }
        false
    }

    // ------------------------------------------------------------ inserts

    /// Inserts a session with its forward and reverse keys, atomically: both
    /// keys appear together or not at all. If `rev == fwd` the entry has one
    /// key. A present entry past its deadline is collected first
    /// (LazyExpired). Cost: O(1) expected, 1–2 shard locks; while the shard
    /// drains, plus up to `drain_budget` evictions.
    ///
    /// # Errors
    /// [`InsertError::Full`] or [`InsertError::Conflict`]; the value is
    /// dropped (use [`FlowTable::try_insert_pair`] to get it back).
    pub fn insert_pair(
        &self,
        fwd: FlowKey,
        rev: FlowKey,
        value: V,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<Inserted<V>, InsertError> {
        self.try_insert_pair(fwd, rev, value, expires_at, now)
            .map_err(|(e, _)| e)
    }

    /// [`FlowTable::insert_pair`], returning the value with the error.
    ///
    /// # Errors
    /// As [`FlowTable::insert_pair`].
    pub fn try_insert_pair(
        &self,
        fwd: FlowKey,
        rev: FlowKey,
        value: V,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<Inserted<V>, (InsertError, V)> {
        let rev = (rev != fwd).then_some(rev);
        self.insert_inner(fwd, rev, value, expires_at, now)
    }

    /// Inserts an entry with a single key. See [`FlowTable::insert_pair`].
    ///
    /// # Errors
    /// [`InsertError::Full`]; the value is dropped.
    pub fn insert(
        &self,
        key: FlowKey,
        value: V,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<Inserted<V>, InsertError> {
        self.insert_inner(key, None, value, expires_at, now)
            .map_err(|(e, _)| e)
    }

    fn insert_inner(
        &self,
        fwd: FlowKey,
        rev: Option<FlowKey>,
        value: V,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<Inserted<V>, (InsertError, V)> {
        let now_t = self.time.now_tick(now);
        let dl = self.time.deadline_tick(expires_at);
        let hf = self.hash(&fwd);
        let f = self.shard_of(hf);
        let (hr, r) = match &rev {
            Some(k) => {
                let h = self.hash(k);
                (h, self.shard_of(h))
            }
            None => (0, f),
        };
        loop {
            let mut l = self.lock2(f, r);
            // 1. The forward key: present and live -> the existing winner.
            if let Probe::Hit(es, slot, _) = self.probe(l.get(f), hf, &fwd) {
                let cell = self.cell(es, slot);
                let g = cell.gen_();
                if cell.deadline() > now_t {
                    l.get(f).c.existing += 1;
                    let h = FlowHandle {
                        shard: es as u32,
                        slot,
                        gen_: g,
                    };
                    return Ok(Inserted::Existing(h, value));
                }
                drop(l);
                self.remove_checked(es, slot, g, ReleaseReason::LazyExpired, |c, _| {
                    c.deadline() <= now_t
                });
                continue;
            }
            // 2. The reverse key: taken by a live entry -> conflict.
            if let Some(rk) = &rev
                && let Probe::Hit(es, slot, _) = self.probe(l.get(r), hr, rk)
            {
                let cell = self.cell(es, slot);
                let g = cell.gen_();
                if cell.deadline() > now_t {
                    l.get(f).c.conflicts += 1;
                    return Err((InsertError::Conflict, value));
                }
                drop(l);
                self.remove_checked(es, slot, g, ReleaseReason::LazyExpired, |c, _| {
                    c.deadline() <= now_t
                });
                continue;
            }
            // 3. Hard capacity: make room by policy (due, then embryonic).
            if l.get(f).len >= self.shard_cap
                && !self.evict_one(&mut l, f, now_t, false, ReleaseReason::Evicted, wheel::NIL)
            {
                l.get(f).c.full += 1;
                return Err((InsertError::Full, value));
            }
            // 4. Insert (a draining shard may shorten the new deadline).
            let dl = match self.draining_timeout {
                Some(d) if l.get(f).draining => dl.min(self.time.deadline_tick(now + d)),
                _ => dl,
            };
            let (fi, ri) = l.pair(f, r);
            let Some(slot) = self.alloc_slot(f, fi) else {
                fi.c.full += 1;
                return Err((InsertError::Full, value));
            };
            let keys = &self.shards[f].keys;
            let cell = keys.cell(slot);
            cell.set(&fwd, rev.as_ref(), dl);
            let g = cell.gen_();
            {
                let s = &mut fi.slots[slot as usize];
                s.value = Some(value);
                *s.flags_mut() = 0;
            }
            let hasher = |t: &u32| self.hash(&self.tag_key(*t));
            let e = fi
                .index
                .insert_unique(hf, self.tag(f, slot, Direction::Forward), hasher);
            self.note_index(f, e);
            self.note_hint(f, hf, self.tag(f, slot, Direction::Forward));
            if rev.is_some() {
                let rindex = match ri {
                    Some(ri) => &mut ri.index,
                    None => &mut fi.index,
                };
                let e = rindex.insert_unique(hr, self.tag(f, slot, Direction::Reverse), hasher);
                self.note_index(r, e);
                self.note_hint(r, hr, self.tag(f, slot, Direction::Reverse));
            }
            {
                let Inner { wheel, slots, .. } = &mut *fi;
                wheel.arm(&mut Ws { slots, keys }, slot, u64::from(dl));
            }
            fi.len += 1;
            fi.embryonic += 1;
            fi.c.inserted += 1;
            self.shards[f].len.store(fi.len, Ordering::Relaxed);
            if !fi.draining && fi.len > self.high {
                fi.draining = true;
                fi.c.drain_entered += 1;
            }
            let handle = FlowHandle {
                shard: f as u32,
                slot,
                gen_: g,
            };
            // 5. Draining: bounded work per insert.
            if fi.draining {
                l.keep_only(f);
                for _ in 0..self.drain_budget {
                    if !l.get(f).draining {
                        break;
                    }
                    // The entry just inserted is never its own victim.
                    if !self.evict_one(&mut l, f, now_t, true, ReleaseReason::Drained, slot) {
                        break;
                    }
                    l.keep_only(f);
                }
            }
            return Ok(Inserted::New(handle));
        }
    }

    // ------------------------------------------------------------ lookups

    /// First stage of a software-pipelined lookup: hashes `key` and starts
    /// loading its shard's index group (control bytes and buckets), without
    /// a lock and without reading anything through the noted addresses.
    /// Returns the hash for [`FlowTable::prefetch_entry`]. A hint only: it
    /// never changes what any operation returns. Cost: one hash, up to three
    /// prefetch instructions.
    ///
    /// Use: a caller that knows its next keys (a replay reading ahead, a
    /// received burst) calls this some packets before the lookup and
    /// `prefetch_entry` about half as far ahead, so the dependent cache
    /// misses of a lookup (index → key cell → slot) overlap with the work on
    /// the packets in between instead of stalling it.
    #[inline]
    pub fn prefetch(&self, key: &FlowKey) -> FlowHash {
        let h = self.hash(key);
        let s = self.shard_of(h);
        self.prefetch_index(s, h);
        prefetch(&self.hints(s, h)[0]);
        FlowHash(h)
    }

    /// Second stage (see [`FlowTable::prefetch`]): reads the hint noted
    /// for the hash (loaded by then; no lock) and starts loading that
    /// entry's key cell and slot. A hint only: when another key was indexed
    /// at the same hint position since, the prefetch is wasted, nothing
    /// else. Cost: one relaxed load, up to four prefetch instructions.
    #[inline]
    pub fn prefetch_entry(&self, h: FlowHash) {
        let Some((es, slot, dir)) = self.hinted(h.0) else {
            return;
        };
        let Some(sh) = self.shards.get(es) else {
            return;
        };
        if let Some(c) = sh.keys.try_cell(slot) {
            c.prefetch(dir);
        }
        let at = sh.slots_at.load(Relaxed);
        if at != 0 {
            // A slot may straddle two cache lines: its first and last byte.
            let size = core::mem::size_of::<Slot<V>>();
            let a = at.wrapping_add(slot as usize * size);
            prefetch_addr(a);
            prefetch_addr(a.wrapping_add(size.saturating_sub(1)));
        }
    }

    /// Looks `key` up at `now` and runs `f` on the entry under its shard lock
    /// (never a reference that outlives the lock). An entry past its deadline
    /// is removed on the spot (LazyExpired, same release path) and reported
    /// as absent. Cost: one lock (forward key, or a reverse key in the same
    /// shard), two for a reverse key of another shard; O(1) expected.
    pub fn lookup_with<R>(
        &self,
        key: &FlowKey,
        now: Timestamp,
        f: impl FnOnce(&mut EntryMut<'_, V>) -> R,
    ) -> Option<R> {
        let now_t = self.time.now_tick(now);
        let h = self.hash(key);
        let s = self.shard_of(h);
        // Hinted fast path: the hint names a candidate entry; under the lock
        // of the candidate's own shard, a live slot whose cell holds `key`
        // (in the hinted direction) *is* the entry the index maps `key` to
        // — a key is indexed at most once, a slot's keys change only while
        // its shard is locked, and a released slot is not live. So one lock
        // (not two for a reply key indexed in another shard) and no index
        // probe. Anything else (no hint, stale hint, past its deadline) takes
        // the indexed path below, which gives the same result.
        if let Some((es, slot, dir)) = self.hinted(h)
            && let Some(cell) = self.shards.get(es).and_then(|sh| sh.keys.try_cell(slot))
        {
            // One guard, not a `Locked` set: nothing else is locked here.
            let mut g = self.shards[es].inner.lock();
            let fi = &mut *g;
            let live = fi
                .slots
                .get(slot as usize)
                .is_some_and(|x| x.value.is_some());
            if live && cell.matches(dir, key) && cell.deadline() > now_t {
                return Some(f(&mut self.entry(fi, es, slot, cell.gen_(), dir)));
            }
        }
        // The index misses start before (and overlap) the lock.
        self.prefetch_index(s, h);
        let mut l = self.lock1(s);
        loop {
            let Probe::Hit(es, slot, dir) = self.probe(l.get(s), h, key) else {
                return None;
            };
            if es == s {
                // The slot's miss overlaps the deadline check.
                if let Some(x) = l.get(s).slots.get(slot as usize) {
                    prefetch_slot(x);
                }
            }
            if !self.try_add(&mut l, es) {
                drop(l);
                l = self.lock2(s, es);
                continue;
            }
            let cell = self.cell(es, slot);
            if cell.deadline() <= now_t {
                let r = self.rev_shard(es, slot);
                if !self.try_add(&mut l, r) {
                    drop(l);
                    l = self.lock2(es, r);
                    continue;
                }
                let (fi, ri) = l.pair(es, r);
                self.release(es, fi, ri, slot, ReleaseReason::LazyExpired);
                return None;
            }
            let g = cell.gen_();
            return Some(f(&mut self.entry(l.get(es), es, slot, g, dir)));
        }
    }

    /// The caller's view of a live entry whose shard `shard` is locked
    /// (`inner` is that shard's state).
    #[inline(always)]
    fn entry<'a>(
        &'a self,
        inner: &'a mut Inner<V>,
        shard: usize,
        slot: u32,
        gen_: u32,
        dir: Direction,
    ) -> EntryMut<'a, V> {
        EntryMut {
            inner,
            table: self,
            shard,
            slot,
            gen_,
            dir,
        }
    }

    /// Looks up a burst of keys with one lock acquisition per shard touched
    /// (instead of one per key): keys are grouped by shard, each group is
    /// probed under one lock; hits whose entry lives in another shard (a
    /// reverse key) are grouped again by that shard and validated by
    /// generation under its lock. `f(i, hit)` is called once per key `i` of
    /// `keys`, under the lock, **not** in input order. Expired entries and
    /// entries that changed in between go through [`FlowTable::lookup_with`]
    /// (same results as calling it per key). Cost per key: O(1) expected
    /// plus the sort of at most 256 (shard, index) pairs per 256 keys.
    pub fn lookup_batch(
        &self,
        keys: &[FlowKey],
        now: Timestamp,
        mut f: impl FnMut(usize, Option<&mut EntryMut<'_, V>>),
    ) {
        let now_t = self.time.now_tick(now);
        // Scratch arrays sized for the input: a short burst does not
        // initialise 256-entry arrays (kilobytes per call).
        if let [k] = keys {
            let mut called = false;
            self.lookup_with(k, now, |e| {
                called = true;
                f(0, Some(e));
            });
            if !called {
                f(0, None);
            }
        } else if keys.len() <= 16 {
            self.lookup_chunk::<16>(keys, 0, now, now_t, &mut f);
        } else if keys.len() <= 64 {
            self.lookup_chunk::<64>(keys, 0, now, now_t, &mut f);
        } else {
            for (c, chunk) in keys.chunks(BATCH).enumerate() {
                self.lookup_chunk::<BATCH>(chunk, c * BATCH, now, now_t, &mut f);
            }
        }
    }

    /// One chunk (at most `B` keys, indices `base..`) of [`Self::lookup_batch`].
    #[inline]
    fn lookup_chunk<const B: usize>(
        &self,
        chunk: &[FlowKey],
        base: usize,
        now: Timestamp,
        now_t: u64,
        f: &mut impl FnMut(usize, Option<&mut EntryMut<'_, V>>),
    ) {
        debug_assert!(chunk.len() <= B);
        {
            // (shard, index in chunk) sorted by shard; hashes alongside.
            let mut order = [(0u32, 0u32); B];
            let mut hashes = [0u64; B];
            for (i, k) in chunk.iter().enumerate() {
                let h = self.hash(k);
                hashes[i] = h;
                let s = self.shard_of(h);
                // The index misses of the whole chunk start now and overlap
                // the sort, the locking and each other.
                self.prefetch_index(s, h);
                order[i] = (s as u32, i as u32);
            }
            let order = &mut order[..chunk.len()];
            order.sort_unstable();
            // Second round: (entry shard, index, slot, generation).
            let mut foreign = [(0u32, 0u32, 0u32, 0u32); B];
            let mut nf = 0;
            let mut slow = [0u32; B];
            let mut ns = 0;
            // Per group (initialised once per chunk, not per group): local
            // hits, delivered after the group's probes so the loads of their
            // slots overlap instead of serialising; candidate tags.
            let mut local = [(0u32, 0u32, 0u32, Direction::Forward); B];
            let mut cands = [[NO_TAG; 2]; B];
            let mut at = 0;
            while at < order.len() {
                let s = order[at].0 as usize;
                let mut l = self.lock1(s);
                let mut nl = 0;
                // The probe chain (control bytes -> tag -> key cell) is
                // split into passes over the group, so the cache misses of
                // different keys overlap instead of queueing behind each
                // other. Pass 1: candidate tags (at most 2 per key, else the
                // plain probe).
                let g0 = at;
                while at < order.len() && order[at].0 as usize == s {
                    at += 1;
                }
                let group = &order[g0..at];
                {
                    let fi = l.get(s);
                    for (j, &(_, i)) in group.iter().enumerate() {
                        let mut it = fi.index.iter_hash(hashes[i as usize]);
                        let c = &mut cands[j];
                        c[0] = it.next().copied().unwrap_or(NO_TAG);
                        if c[0] != NO_TAG {
                            c[1] = it.next().copied().unwrap_or(NO_TAG);
                            if c[1] != NO_TAG && it.next().is_some() {
                                c[0] = OVERFLOW_TAG;
                            }
                        }
                        // Start the key cells' misses now; pass 2 reads them.
                        for &tag in c.iter().take_while(|t| **t < OVERFLOW_TAG) {
                            let (es, slot, dir) = self.untag(tag);
                            self.cell(es, slot).prefetch(dir);
                        }
                    }
                }
                // Pass 2: compare keys through the key cells.
                for (j, &(_, i)) in group.iter().enumerate() {
                    let i = i as usize;
                    let c = cands[j];
                    let probe = if c[0] == OVERFLOW_TAG {
                        self.probe(l.get(s), hashes[i], &chunk[i])
                    } else {
                        let mut p = Probe::Miss;
                        for &tag in c.iter().take_while(|t| **t != NO_TAG) {
                            let (es, slot, dir) = self.untag(tag);
                            if self.cell(es, slot).matches(dir, &chunk[i]) {
                                p = Probe::Hit(es, slot, dir);
                                break;
                            }
                        }
                        p
                    };
                    match probe {
                        Probe::Miss => f(base + i, None),
                        Probe::Hit(es, slot, dir) => {
                            let cell = self.cell(es, slot);
                            if cell.deadline() <= now_t {
                                slow[ns] = i as u32;
                                ns += 1;
                            } else if es == s {
                                // Start the slot's cache miss now.
                                prefetch_slot(&l.get(s).slots[slot as usize]);
                                local[nl] = (i as u32, slot, cell.gen_(), dir);
                                nl += 1;
                            } else {
                                foreign[nf] = (es as u32, i as u32, slot, cell.gen_());
                                nf += 1;
                            }
                        }
                    }
                }
                let fi = l.get(s);
                for &(i, slot, g, dir) in &local[..nl] {
                    let mut e = self.entry(&mut *fi, s, slot, g, dir);
                    f(base + i as usize, Some(&mut e));
                }
            }
            let foreign = &mut foreign[..nf];
            foreign.sort_unstable();
            let mut at = 0;
            while at < foreign.len() {
                let es = foreign[at].0 as usize;
                let mut l = self.lock1(es);
                // Touch the group's slots first (their misses overlap).
                for &(_, _, slot, _) in foreign[at..].iter().take_while(|x| x.0 as usize == es) {
                    prefetch_slot(&l.get(es).slots[slot as usize]);
                }
                while at < foreign.len() && foreign[at].0 as usize == es {
                    let (_, i, slot, g) = foreign[at];
                    at += 1;
                    let cell = self.cell(es, slot);
                    let fi = l.get(es);
                    // Same generation: never freed since the probe, so this
                    // is still the entry the key indexed.
                    let same = cell.gen_() == g && cell.deadline() > now_t;
                    if !same {
                        slow[ns] = i;
                        ns += 1;
                        continue;
                    }
                    let mut e = self.entry(fi, es, slot, g, Direction::Reverse);
                    f(base + i as usize, Some(&mut e));
                }
            }
            for &i in &slow[..ns] {
                let i = i as usize;
                let mut called = false;
                self.lookup_with(&chunk[i], now, |e| {
                    called = true;
                    f(base + i, Some(e));
                });
                if !called {
                    f(base + i, None);
                }
            }
        }
    }

    /// The handle of `key`'s entry at `now`, if live (lazy expiry applies).
    pub fn lookup(&self, key: &FlowKey, now: Timestamp) -> Option<FlowHandle> {
        self.lookup_with(key, now, |e| e.handle())
    }

    /// A copy of `key`'s value at `now`, if live.
    pub fn get(&self, key: &FlowKey, now: Timestamp) -> Option<V>
    where
        V: Clone,
    {
        self.lookup_with(key, now, |e| e.value().clone())
    }

    /// Runs `f` on the entry of `handle` if it is still the same entry
    /// (generation check). No lazy expiry (there is no `now`).
    pub fn with_handle<R>(
        &self,
        handle: FlowHandle,
        f: impl FnOnce(&mut EntryMut<'_, V>) -> R,
    ) -> Option<R> {
        let s = handle.shard as usize;
        let cell = self.shards.get(s)?.keys.try_cell(handle.slot)?;
        let mut l = self.lock1(s);
        let fi = l.get(s);
        let live = fi
            .slots
            .get(handle.slot as usize)
            .is_some_and(|x| x.value.is_some());
        if !live || cell.gen_() != handle.gen_ {
            return None;
        }
        Some(f(&mut self.entry(
            fi,
            s,
            handle.slot,
            handle.gen_,
            Direction::Forward,
        )))
    }

    /// What a lookup that finds `handle`'s entry at `now` would see of it,
    /// read **without any lock**: `None` unless the entry is still the one
    /// `handle` names (same generation: a released slot's generation moves
    /// on, so this also means it is live) and its deadline is after `now`
    /// (the test [`FlowTable::lookup_with`] applies; an entry past it is
    /// left for the lookup or `poll` to release). For a per-worker cache of
    /// established sessions that must notice expiry and removal without
    /// taking a shard lock per packet.
    ///
    /// Sound without the lock: the cell's fields are atomics in memory that
    /// is never moved or freed while the table lives; the generation is read
    /// before (acquire) and after (behind an acquire fence) the deadline and
    /// the aux word, and a slot is reused only after the release that bumps
    /// its generation, whose new keys are stored behind a release fence — so
    /// values of a later entry of the slot are never returned as this one's.
    /// A deadline or aux word changed concurrently under the lock (a
    /// refresh) may be seen before or after the change. Cost: one or two
    /// cache lines, no writes.
    #[inline]
    pub fn peek(&self, handle: FlowHandle, now: Timestamp) -> Option<Peek> {
        self.peek_located(&self.locate(handle)?, &self.clock(now))
    }

    /// `now` in this table's ticks, for [`FlowTable::peek_located`].
    #[inline]
    pub fn clock(&self, now: Timestamp) -> TableClock {
        TableClock {
            tick: self.time.now_tick(now),
            base: self.time.base.get().copied().unwrap_or(0),
            tick_ns: self.time.tick_ns,
        }
    }

    /// Whether `c` is a [`TableClock`] of this table's time base and tick
    /// (its time base is set by the first `clock` and never changes): then
    /// `clock(now)` for a `now` in `c`'s tick differs from `c` in nothing.
    #[inline]
    pub fn clock_matches(&self, c: &TableClock) -> bool {
        c.tick_ns == self.time.tick_ns && self.time.base.get() == Some(&c.base)
    }

    /// `handle` with its key cell's address, if the handle names a slot of
    /// this table (live or not: [`FlowTable::peek_located`] checks).
    #[inline]
    pub fn locate(&self, handle: FlowHandle) -> Option<Located> {
        let cell = self
            .shards
            .get(handle.shard as usize)?
            .keys
            .try_cell(handle.slot)?;
        Some(Located {
            handle,
            table: self.id,
            cell: core::ptr::NonNull::from(cell),
        })
    }

    /// [`FlowTable::peek`] of a located handle at a time
    /// [`FlowTable::clock`] converted: the same answer, without the shard,
    /// chunk and slot lookups or a division. `None` for a [`Located`] of
    /// another table.
    #[inline]
    pub fn peek_located(&self, l: &Located, now: &TableClock) -> Option<Peek> {
        Self::peek_cell(self.located_cell(l)?, l.handle, now)
    }

    /// [`FlowTable::peek_located`] in ticks: the same entries are live (same
    /// generation, deadline past `now`'s tick), their deadline left as the
    /// stored tick count (no conversion to a time) for a caller comparing
    /// it with tick windows it computed once per burst.
    #[inline(always)]
    pub fn peek_ticks(&self, l: &Located, now: &TableClock) -> Option<PeekTicks> {
        let cell = self.located_cell(l)?;
        let gen_ = l.handle.gen_;
        if cell.gen_.load(Mo::Acquire) != gen_ {
            return None;
        }
        let deadline = cell.deadline.load(Relaxed);
        let aux = cell.aux.load(Relaxed);
        fence(Mo::Acquire);
        if cell.gen_.load(Relaxed) != gen_ || u64::from(deadline) <= now.tick {
            return None;
        }
        Some(PeekTicks { deadline, aux })
    }

    #[inline(always)]
    fn located_cell(&self, l: &Located) -> Option<&KeyCell> {
        if l.table != self.id || self.id == 0 {
            return None;
        }
        // SAFETY: `l` was made by this table (same id; ids are unique) from
        // a reference to one of its key cells, and key cells are never
        // freed or moved while the table lives (`KeyStore`: chunks are
        // allocated once and kept); `&self` keeps the table alive for the
        // returned lifetime.
        #[allow(unsafe_code)]
        Some(unsafe { l.cell.as_ref() })
    }

    #[inline(always)]
    fn peek_cell(cell: &KeyCell, handle: FlowHandle, now: &TableClock) -> Option<Peek> {
        if cell.gen_.load(Mo::Acquire) != handle.gen_ {
            return None;
        }
        let deadline = cell.deadline();
        let aux = cell.aux.load(Relaxed);
        fence(Mo::Acquire);
        if cell.gen_.load(Relaxed) != handle.gen_ || deadline <= now.tick {
            return None;
        }
        Some(Peek {
            expires_at: Timestamp::from_nanos(
                now.base
                    .saturating_add(deadline.saturating_mul(now.tick_ns)),
            ),
            aux,
        })
    }

    // ------------------------------------------------------------ updates

    /// Stores a new deadline for `handle`'s entry, if it is still live at
    /// `now` (conditional: never re-creates an entry, and never extends one
    /// whose deadline has passed — lookups already treat that one as gone,
    /// and `poll` or the next lookup will release it). A later deadline is a
    /// plain store (the wheel re-arms when the old slot fires); an earlier
    /// one re-arms at once. One lock, O(1).
    ///
    /// # Errors
    /// [`Gone`] if the entry left (or the handle is from another entry), or
    /// its deadline is at or before `now`.
    pub fn refresh(
        &self,
        handle: FlowHandle,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), Gone> {
        let now_t = self.time.now_tick(now);
        self.with_handle(handle, |e| {
            if e.cell().deadline() <= now_t {
                return Err(Gone);
            }
            e.set_expires_at(expires_at);
            Ok(())
        })
        .unwrap_or(Err(Gone))
    }

    /// Removes `handle`'s entry if it is still the same entry (generation
    /// check: no ABA), running the hook with `reason`. Returns whether it
    /// removed it. Locks both shards of the pair; O(1).
    pub fn remove(&self, handle: FlowHandle, reason: ReleaseReason) -> bool {
        self.remove_checked(
            handle.shard as usize,
            handle.slot,
            handle.gen_,
            reason,
            |_, _| true,
        )
    }

    /// Removes every live entry whose value satisfies `pred` (reason
    /// [`ReleaseReason::Removed`], through the release hook, both keys).
    /// A scan: O(n). Each shard is locked while its matches are listed;
    /// then each is removed under its pair's locks only if its slot still
    /// holds the same entry (generation) and it still matches, so an entry
    /// inserted meanwhile is never touched (no ABA). Returns how many it
    /// removed. For the control plane (e.g. clearing sessions).
    pub fn remove_matching(&self, pred: impl Fn(&V) -> bool) -> usize {
        let mut n = 0;
        for s in 0..self.shards.len() {
            let found: Vec<(u32, u32)> = {
                let mut l = self.lock1(s);
                let fi = l.get(s);
                fi.slots
                    .iter()
                    .enumerate()
                    .filter(|(_, sl)| sl.value.as_ref().is_some_and(&pred))
                    .map(|(i, _)| (i as u32, self.cell(s, i as u32).gen_()))
                    .collect()
            };
            for (slot, g) in found {
                if self.remove_checked(s, slot, g, ReleaseReason::Removed, |_, v| pred(v)) {
                    n += 1;
                }
            }
        }
        n
    }

    // ------------------------------------------------------------ expiry

    /// Advances every shard's wheel to `now` and releases up to `budget`
    /// due entries (reason Expired), in (deadline tick, forward key) order
    /// across all shards — independent of the hash seed. Entries found due
    /// beyond the budget stay pending (counted in `expired_pending`) and go
    /// first next time. An entry whose deadline moved later is re-armed, not
    /// released. Returns the number released.
    ///
    /// Cost: O(shards) locks, plus amortised O(1) per due or cascaded entry,
    /// plus O(p log p) to order the p pending entries of a shard when new
    /// ones arrive, plus O(log shards) per release. Releases happen in
    /// chunks of 1024 with every shard locked (in ascending order), so a
    /// poll stalls workers for at most one chunk at a time.
    pub fn poll(&self, now: Timestamp, budget: usize) -> usize {
        self.poll_where(now, budget, |_| true)
    }

    /// [`FlowTable::poll`] for the shards worker `worker` of `workers` owns
    /// (shard `s` is owned by worker `s % workers`): each worker of a
    /// multi-worker driver advances and expires only its own shards' wheels,
    /// so workers do not repeat each other's timer work. Releases still lock
    /// every shard per chunk (a release needs its reverse key's shard).
    /// The union over all workers is what `poll` does; within one call the
    /// order is (deadline tick, forward key) over the owned shards.
    pub fn poll_owned(
        &self,
        now: Timestamp,
        budget: usize,
        worker: usize,
        workers: usize,
    ) -> usize {
        let workers = workers.max(1);
        self.poll_where(now, budget, |s| s % workers == worker % workers)
    }

    fn poll_where(&self, now: Timestamp, budget: usize, owned: impl Fn(usize) -> bool) -> usize {
        let now_t = self.time.now_tick(now);
        // Phase A: wheel -> ready lists, sorted.
        let mut any_ready = false;
        for s in (0..self.shards.len()).filter(|&s| owned(s)) {
            let mut l = self.lock1(s);
            let fi = l.get(s);
            let keys = &self.shards[s].keys;
            {
                let Inner {
                    wheel,
                    slots,
                    ready,
                    pending,
                    ready_sorted,
                    ..
                } = &mut *fi;
                if ready.is_empty() && ready.capacity() > 1024 {
                    // Give back what a past burst of expiries left behind.
                    ready.shrink_to(1024);
                }
                // The wheel never goes back: a `now` older than this shard
                // has seen (another worker's clock) advances nothing; what
                // is released is still judged against the caller's `now`.
                let t = now_t.max(wheel.elapsed());
                let mut ws = Ws { slots, keys };
                while let Some(i) = wheel.next_due(&mut ws, t) {
                    *ws.slots[i as usize].flags_mut() |= F_READY;
                    *pending += 1;
                    ready.push((i, keys.cell(i).gen_()));
                    *ready_sorted = false;
                }
            }
            if !fi.ready_sorted {
                let slots = &fi.slots;
                fi.ready.retain(|&(i, g)| {
                    let sl = &slots[i as usize];
                    sl.value.is_some() && sl.flags() & F_READY != 0 && keys.cell(i).gen_() == g
                });
                // Descending, so pop() yields the smallest.
                fi.ready.sort_by_cached_key(|&(i, _)| {
                    let c = keys.cell(i);
                    Reverse((c.deadline(), c.key(Direction::Forward)))
                });
                fi.ready_sorted = true;
            }
            self.shards[s].pending.store(fi.pending, Ordering::Relaxed);
            any_ready |= !fi.ready.is_empty();
        }
        if !any_ready {
            return 0;
        }
        // Phase B: merge across shards, in chunks. Each chunk locks every
        // shard in ascending order (deadlock-free), so a release needs no
        // further lock operation; between chunks the locks are dropped so
        // workers are stalled for at most one chunk.
        const CHUNK_RELEASES: usize = 1024;
        let mut done = 0;
        while done < budget {
            let mut guards: Vec<Guard<'_, V>> =
                self.shards.iter().map(|s| s.inner.lock()).collect();
            let mut heap: BinaryHeap<Reverse<(u64, FlowKey, usize)>> = BinaryHeap::new();
            for (s, g) in guards.iter_mut().enumerate().filter(|(s, _)| owned(*s)) {
                if let Some(h) = self.ready_head(s, g) {
                    heap.push(Reverse((h.0, h.1, s)));
                }
            }
            if heap.is_empty() {
                break;
            }
            let stop = done.saturating_add(CHUNK_RELEASES).min(budget);
            // Select the chunk in (deadline, key) order.
            let mut batch: Vec<(usize, u32)> = Vec::with_capacity(stop - done);
            while done + batch.len() < stop {
                let Some(Reverse((_, _, s))) = heap.pop() else {
                    break;
                };
                let Some((slot, _)) = self.ready_head_valid(s, &mut guards[s]) else {
                    continue;
                };
                let fi = &mut *guards[s];
                fi.ready.pop();
                if self.cell(s, slot).deadline() > now_t {
                    // Refreshed after it was found due: re-arm.
                    *fi.slots[slot as usize].flags_mut() &= !F_READY;
                    fi.pending -= 1;
                    self.shards[s].pending.store(fi.pending, Ordering::Relaxed);
                    self.unpop_due(s, fi, slot);
                } else {
                    batch.push((s, slot));
                }
                if let Some(h) = self.ready_head(s, &mut guards[s]) {
                    heap.push(Reverse((h.0, h.1, s)));
                }
            }
            // Release it in passes (key hashes, forward index entries,
            // reverse index entries, the rest in order): the cache misses of
            // different entries overlap instead of queueing.
            let work: Vec<(u64, u64, usize)> = batch
                .iter()
                .map(|&(s, slot)| {
                    let c = self.cell(s, slot);
                    let hf = self.hash(&c.key(Direction::Forward));
                    match c.rev() {
                        Some(r) => {
                            let hr = self.hash(&r);
                            (hf, hr, self.shard_of(hr))
                        }
                        None => (hf, 0, usize::MAX),
                    }
                })
                .collect();
            for (&(s, slot), &(hf, _, _)) in batch.iter().zip(&work) {
                let tag = self.tag(s, slot, Direction::Forward);
                unindex(&mut guards[s].index, hf, tag);
                self.unhint(s, hf, tag);
            }
            for (&(s, slot), &(_, hr, r)) in batch.iter().zip(&work) {
                if r != usize::MAX {
                    let tag = self.tag(s, slot, Direction::Reverse);
                    unindex(&mut guards[r].index, hr, tag);
                    self.unhint(r, hr, tag);
                }
            }
            for &(s, slot) in &batch {
                self.finish_release(s, &mut guards[s], slot, ReleaseReason::Expired);
            }
            done += batch.len();
            if heap.is_empty() {
                break;
            }
        }
        done
    }

    /// Drops stale ready entries from the back; returns the valid head.
    fn ready_head_valid(&self, s: usize, fi: &mut Inner<V>) -> Option<(u32, u32)> {
        while let Some(&(slot, g)) = fi.ready.last() {
            let sl = &fi.slots[slot as usize];
            if sl.value.is_some() && sl.flags() & F_READY != 0 && self.cell(s, slot).gen_() == g {
                return Some((slot, g));
            }
            fi.ready.pop();
        }
        None
    }

    fn ready_head(&self, s: usize, fi: &mut Inner<V>) -> Option<(u64, FlowKey)> {
        let (slot, _) = self.ready_head_valid(s, fi)?;
        let c = self.cell(s, slot);
        Some((c.deadline(), c.key(Direction::Forward)))
    }

    // ------------------------------------------------------------ counters

    /// Entries held. O(shards), lock-free (per-shard counters).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.len.load(Ordering::Relaxed))
            .sum()
    }
    /// `true` if no entry is held. O(shards), lock-free.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Entries held minus those found due and not released yet. O(shards).
    pub fn active_len(&self) -> usize {
        self.len().saturating_sub(self.expired_pending())
    }
    /// Entries found due by `poll`, not released yet. O(shards), lock-free.
    pub fn expired_pending(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.pending.load(Ordering::Relaxed))
            .sum()
    }
    /// Entries held by one shard. O(1).
    pub fn shard_len(&self, shard: usize) -> usize {
        self.shards
            .get(shard)
            .map_or(0, |s| s.len.load(Ordering::Relaxed))
    }
    /// Number of shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }
    /// Hard capacity of each shard.
    pub fn shard_capacity(&self) -> usize {
        self.shard_cap
    }
    /// The shard a key's index entry lives in (and, for a forward key, its
    /// entry).
    pub fn shard_for(&self, key: &FlowKey) -> usize {
        self.shard_of(self.hash(key))
    }
    /// Whether a shard is draining. Locks it.
    pub fn is_draining(&self, shard: usize) -> bool {
        shard < self.shards.len() && self.lock1(shard).get(shard).draining
    }
    /// Bytes held by the table's own allocations (index, slabs, key stores),
    /// excluding the values' own heap data. Locks each shard. O(shards).
    pub fn memory_bytes(&self) -> usize {
        let mut total = core::mem::size_of::<Self>()
            + self.shards.len() * core::mem::size_of::<CachePadded<Shard<V>>>();
        for (s, sh) in self.shards.iter().enumerate() {
            let mut l = self.lock1(s);
            let fi = l.get(s);
            total += fi.index.capacity() * 5
                + fi.slots.capacity() * core::mem::size_of::<Slot<V>>()
                + fi.ready.capacity() * 8
                + sh.keys.allocated_bytes()
                + sh.keys.chunks.len() * core::mem::size_of::<OnceLock<Box<[KeyCell]>>>();
        }
        total
    }

    /// Sums every shard's counters (locks each shard in turn). O(shards).
    pub fn stats(&self) -> FlowTableStats {
        let mut st = FlowTableStats::default();
        for s in 0..self.shards.len() {
            let mut l = self.lock1(s);
            let fi = l.get(s);
            st.len += fi.len;
            st.expired_pending += fi.pending;
            st.embryonic += fi.embryonic;
            st.inserted += fi.c.inserted;
            st.existing += fi.c.existing;
            st.conflicts += fi.c.conflicts;
            st.full += fi.c.full;
            for (a, b) in st.released.iter_mut().zip(fi.c.released) {
                *a += b;
            }
            st.draining_entered += fi.c.drain_entered;
            st.draining_left += fi.c.drain_left;
            st.draining_shards += usize::from(fi.draining);
        }
        st.active_len = st.len - st.expired_pending;
        st
    }

    /// Calls `f` on every live entry (keys, value, deadline). A scan: O(n),
    /// locks one shard at a time; for control-plane listings only.
    pub fn scan(&self, mut f: impl FnMut(&FlowKey, Option<&FlowKey>, &V, Timestamp)) {
        for s in 0..self.shards.len() {
            let mut l = self.lock1(s);
            let fi = l.get(s);
            for (i, sl) in fi.slots.iter().enumerate() {
                if let Some(v) = &sl.value {
                    let c = self.cell(s, i as u32);
                    let fwd = c.key(Direction::Forward);
                    let rev = c.rev();
                    f(&fwd, rev.as_ref(), v, self.time.to_timestamp(c.deadline()));
                }
            }
        }
    }
}

impl<V> Drop for FlowTable<V> {
    /// Releases every entry still held with [`ReleaseReason::Teardown`].
    fn drop(&mut self) {
        for sh in self.shards.iter_mut() {
            let fi = sh.inner.get_mut();
            for sl in &mut fi.slots {
                if let Some(v) = sl.value.take() {
                    (self.hook)(&v, ReleaseReason::Teardown);
                    fi.c.released[ReleaseReason::Teardown.index()] += 1;
                }
            }
        }
    }
}

// ---------------------------------------------------------------- EntryMut

/// A live entry, borrowed under its shard lock for the duration of a
/// [`FlowTable::lookup_with`] closure.
pub struct EntryMut<'a, V> {
    inner: &'a mut Inner<V>,
    table: &'a FlowTable<V>,
    shard: usize,
    slot: u32,
    gen_: u32,
    dir: Direction,
}

impl<V> EntryMut<'_, V> {
    #[inline]
    fn slot(&self) -> &Slot<V> {
        &self.inner.slots[self.slot as usize]
    }
    #[inline]
    fn cell(&self) -> &KeyCell {
        self.table.cell(self.shard, self.slot)
    }
    /// The value.
    ///
    /// # Panics
    /// Never for a live entry (an `EntryMut` only exists for one).
    pub fn value(&self) -> &V {
        self.slot()
            .value
            .as_ref()
            .expect("flow-entry bug: EntryMut of a free slot")
    }
    /// The value, mutably.
    ///
    /// # Panics
    /// Never for a live entry.
    pub fn value_mut(&mut self) -> &mut V {
        self.inner.slots[self.slot as usize]
            .value
            .as_mut()
            .expect("flow-entry bug: EntryMut of a free slot")
    }
    /// Which key matched.
    pub fn direction(&self) -> Direction {
        self.dir
    }
    /// [`EntryMut::handle`] with its key cell's address (for
    /// [`FlowTable::peek_located`]).
    pub fn located(&self) -> Located {
        Located {
            handle: self.handle(),
            table: self.table.id,
            cell: core::ptr::NonNull::from(self.cell()),
        }
    }
    /// A handle for later [`FlowTable::refresh`] / [`FlowTable::remove`].
    pub fn handle(&self) -> FlowHandle {
        FlowHandle {
            shard: self.shard as u32,
            slot: self.slot,
            gen_: self.gen_,
        }
    }
    /// The forward key.
    pub fn forward_key(&self) -> FlowKey {
        self.cell().key(Direction::Forward)
    }
    /// The reverse key, if the entry has one.
    pub fn reverse_key(&self) -> Option<FlowKey> {
        self.cell().rev()
    }
    /// The deadline (rounded up to the table's tick).
    pub fn expires_at(&self) -> Timestamp {
        self.table.time.to_timestamp(self.cell().deadline())
    }
    /// Stores a new deadline. Later: a plain store (re-armed lazily when its
    /// wheel slot fires). Earlier: re-armed now (O(1)). A deadline not after
    /// `now` makes the entry collectable by the next poll or lookup.
    pub fn set_expires_at(&mut self, t: Timestamp) {
        let new = self.table.time.deadline_tick(t);
        let cell = self.table.cell(self.shard, self.slot);
        let old = cell.deadline.load(Relaxed);
        cell.deadline.store(new, Relaxed);
        if self.inner.slots[self.slot as usize].flags() & F_READY != 0 {
            // Found due, waiting in the ready list: its order key changed.
            self.inner.ready_sorted = false;
        } else if new < old {
            let keys = &self.table.shards[self.shard].keys;
            let Inner { wheel, slots, .. } = &mut *self.inner;
            let mut ws = Ws { slots, keys };
            if ws.slots[self.slot as usize].link.is_armed() {
                wheel.cancel(&mut ws, self.slot);
                wheel.arm(&mut ws, self.slot, u64::from(new));
            }
        }
    }
    /// The owner's word: 0 for a new entry, then what
    /// [`EntryMut::set_aux`] stored.
    pub fn aux(&self) -> u32 {
        self.cell().aux.load(Relaxed)
    }
    /// Publishes a word of the owner's state (e.g. a protocol state the
    /// value also holds) in the entry's key cell, where
    /// [`FlowTable::peek`] reads it without the lock. Reset to 0 when the
    /// slot is reused.
    pub fn set_aux(&mut self, aux: u32) {
        self.cell().aux.store(aux, Relaxed);
    }
    /// Marks the entry confirmed (e.g. a reply was seen): draining and
    /// eviction prefer unconfirmed (embryonic) entries.
    pub fn confirm(&mut self) {
        let s = &mut self.inner.slots[self.slot as usize];
        if s.flags() & F_CONFIRMED == 0 {
            *s.flags_mut() |= F_CONFIRMED;
            self.inner.embryonic -= 1;
        }
    }
    /// Whether [`EntryMut::confirm`] was called.
    pub fn is_confirmed(&self) -> bool {
        self.slot().flags() & F_CONFIRMED != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_sizes() {
        assert_eq!(core::mem::size_of::<KeyCell>(), 96);
        assert_eq!(
            core::mem::size_of::<Slot<core::num::NonZeroU32>>(),
            16,
            "value slot with a niche + wheel link + flags"
        );
    }

    fn key(i: u32) -> FlowKey {
        let a = core::net::Ipv4Addr::from(0x0a00_0000 | i);
        let b = core::net::Ipv4Addr::new(198, 51, 100, 1);
        FlowKey::v4(a, b, 17, 1000 + (i % 5000) as u16, 53, 0)
    }

    /// A located handle peeks exactly like its handle (deadline, aux,
    /// expiry, removal, slot reuse), and another table's is refused.
    #[test]
    fn located_peeks_like_its_handle() {
        let cfg = FlowTableConfig {
            shards: 2,
            capacity: 256,
            ..FlowTableConfig::default()
        };
        let t: FlowTable<u32> = FlowTable::new(cfg.clone(), |_, _| {}).unwrap();
        let other: FlowTable<u32> = FlowTable::new(cfg, |_, _| {}).unwrap();
        let now = Timestamp::from_secs(1);
        let later = Timestamp::from_secs(100);
        t.insert_pair(key(1), key(1).reversed(), 1, later, now)
            .unwrap();
        let (h, l) = t
            .lookup_with(&key(1), now, |e| {
                e.set_aux(7);
                (e.handle(), e.located())
            })
            .expect("present");
        assert_eq!(t.locate(h), Some(l));
        assert_eq!(l.handle(), h);
        for s in [1, 50, 99, 100, 101] {
            let c = t.clock(Timestamp::from_secs(s));
            assert_eq!(
                t.peek_located(&l, &c),
                t.peek(h, Timestamp::from_secs(s)),
                "at {s} s"
            );
        }
        assert_eq!(t.peek_located(&l, &t.clock(now)).map(|p| p.aux), Some(7));
        assert_eq!(
            other.peek_located(&l, &other.clock(now)),
            None,
            "another table's"
        );
        assert!(t.remove(h, ReleaseReason::Removed));
        assert_eq!(t.peek_located(&l, &t.clock(now)), None, "removed");
        // The slot reused by a new entry: the old located handle is stale.
        t.insert_pair(key(2), key(2).reversed(), 2, later, now)
            .unwrap();
        let h2 = t
            .lookup_with(&key(2), now, |e| e.handle())
            .expect("present");
        assert!(t.peek(h2, now).is_some());
        assert_eq!(t.peek_located(&l, &t.clock(now)), None, "reused slot");
    }

    /// Prefetch hints name the entry a lookup finds for nearly every key
    /// (two ways per bucket; a third colliding key may displace one), are
    /// cleared when entries leave, and prefetching never changes a lookup.
    #[test]
    fn prefetch_hints_follow_the_index() {
        let cfg = FlowTableConfig {
            shards: 4,
            capacity: 4096,
            ..FlowTableConfig::default()
        };
        let t: FlowTable<u32> = FlowTable::new(cfg, |_, _| {}).unwrap();
        let now = Timestamp::from_secs(1);
        let later = Timestamp::from_secs(100);
        let n = 1500;
        for i in 0..n {
            t.insert_pair(key(i), key(i).reversed(), i, later, now)
                .unwrap();
        }
        let mut right = 0;
        for i in 0..n {
            for k in [key(i), key(i).reversed()] {
                let h = t.prefetch(&k);
                t.prefetch_entry(h);
                let found = t.lookup_with(&k, now, |e| (e.shard, e.slot, e.dir, *e.value()));
                let (s, slot, dir, v) = found.expect("present");
                assert_eq!(v, i);
                if t.hinted(h.0) == Some((s, slot, dir)) {
                    right += 1;
                }
            }
        }
        assert!(
            right * 100 >= 2 * n * 90,
            "hints right for {right} of {}",
            2 * n
        );
        // Absent keys: a prefetch is harmless and the lookup still misses.
        let absent = key(n + 7);
        t.prefetch_entry(t.prefetch(&absent));
        assert!(t.lookup(&absent, now).is_none());
        for i in 0..n {
            let h = t.lookup(&key(i), now).unwrap();
            assert!(t.remove(h, ReleaseReason::Removed));
        }
        for i in 0..n {
            for k in [key(i), key(i).reversed()] {
                assert_eq!(t.hinted(t.hash(&k)), None, "hint left behind for {k:?}");
            }
        }
    }
}
