//! The shard's public value types: ids, the insert error, counters.

use core::fmt;

use crate::release::ReleaseReason;

/// A reference to one entry of one shard: its slot and the slot's
/// generation. `Copy`. Once the entry is released the id is stale for good:
/// the slot's generation moves on (a slot whose generation would wrap is
/// retired, never reused), so a stale id never resolves to a later entry.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct EntryId {
    pub(super) slot: u32,
    pub(super) generation: u32,
}

impl EntryId {
    /// The slab slot (below the shard's capacity), e.g. to index an array
    /// the owner keeps beside the shard. Later entries reuse a slot; only
    /// the whole id tells them apart.
    #[inline]
    pub fn slot(&self) -> usize {
        self.slot as usize
    }
}

/// Why [`Shard::insert`](super::Shard::insert) refused an entry. The value never entered the
/// shard and is handed back (it never reaches the release callback).
#[derive(Clone, PartialEq, Eq)]
pub enum ShardInsertError<V> {
    /// At hard capacity, and no due or embryonic entry could be evicted
    /// (counted in [`ShardStats::full`]).
    Full(V),
    /// The forward or the reverse key is indexed by a live entry (counted
    /// in [`ShardStats::key_exists`]).
    KeyExists(V),
}

impl<V> ShardInsertError<V> {
    /// The value the insert handed back.
    pub fn into_value(self) -> V {
        match self {
            Self::Full(v) | Self::KeyExists(v) => v,
        }
    }
}

/// Names the variant only (the value need not be `Debug`).
impl<V> fmt::Debug for ShardInsertError<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("Full(..)"),
            Self::KeyExists(_) => f.write_str("KeyExists(..)"),
        }
    }
}

impl<V> fmt::Display for ShardInsertError<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("flow shard is full"),
            Self::KeyExists(_) => f.write_str("a key of the session belongs to a live entry"),
        }
    }
}

impl<V> std::error::Error for ShardInsertError<V> {}

/// A shard's counters (and one gauge, `embryonic`).
#[derive(Default, Clone, Debug, PartialEq, Eq)]
pub struct ShardStats {
    /// Entries inserted.
    pub inserted: u64,
    /// Inserts refused with [`ShardInsertError::KeyExists`].
    pub key_exists: u64,
    /// Inserts refused with [`ShardInsertError::Full`].
    pub full: u64,
    /// Releases per [`ReleaseReason`] (index with [`ReleaseReason::index`];
    /// lazy expiries are `released[LazyExpired]`).
    pub released: [u64; ReleaseReason::ALL.len()],
    /// Times the shard started draining.
    pub drain_entered: u64,
    /// Times the shard stopped draining.
    pub drain_left: u64,
    /// Live entries never confirmed ([`Shard::confirm`](super::Shard::confirm)).
    pub embryonic: usize,
}

impl ShardStats {
    /// Releases with reason `r`.
    pub fn released(&self, r: ReleaseReason) -> u64 {
        self.released[r.index()]
    }
}
