//! What a [`Shard`](crate::Shard) tells its owner about an entry: why it
//! left ([`ReleaseReason`], passed to the release callback and counted),
//! which of its keys a lookup matched ([`Direction`]), and the cache
//! [`prefetch`] hint its prefetch stages (and the NAT's own tables) use.

/// Why an entry left its shard (passed to the release callback; counted in
/// [`ShardStats::released`](crate::ShardStats::released)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReleaseReason {
    /// Its deadline passed and [`Shard::poll`](crate::Shard::poll) (or an
    /// insert that found it due while making room) collected it.
    Expired,
    /// A lookup or insert found it past its deadline and removed it.
    LazyExpired,
    /// Shed by a shard draining above its high watermark.
    Drained,
    /// Evicted to make room in a full shard (due or embryonic entries only).
    Evicted,
    /// Removed by [`Shard::remove`](crate::Shard::remove) or
    /// [`Shard::remove_matching`](crate::Shard::remove_matching) (with the
    /// reason the caller gave, usually this one).
    Removed,
    /// Released by [`Shard::clear`](crate::Shard::clear) (the owner tears
    /// the shard down).
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
    /// Index into [`ShardStats::released`](crate::ShardStats::released)
    /// (and any per-reason array ordered like [`ReleaseReason::ALL`]).
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

/// Hints the CPU to start loading the cache line holding `*p` (no effect
/// on program semantics; a no-op off x86-64). Public for the NAT's own
/// tables.
#[inline(always)]
#[allow(unsafe_code)]
pub fn prefetch<T>(p: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetcht0` is a hint: it never faults, reads no value into
    // the program and writes nothing, whatever the address (also a stale
    // or unmapped one); SSE, which provides it, is in the x86-64 baseline.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
            core::ptr::from_ref(p).cast(),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
