//! [`TagIndex`]: the key index of a [`Shard`](crate::Shard) (and of the
//! NAT's mapping tables): open addressing with linear probing, deletion by
//! backward shift (no tombstones), sized once and never resized. It maps a
//! key's 64-bit hash to a caller's 31-bit *payload* (a slab slot, say);
//! keys themselves live with the caller, who compares them on a tag match.
//!
//! A bucket is one `u64`: the upper half is the *tag* (the key hash's upper
//! half), the lower half is `OCCUPIED | payload`. Zero is an
//! empty bucket, so a new index is zeroed memory (the allocator may hand it
//! out without touching it). A bucket's home position is derived from its
//! tag alone (`fastrange`: `tag * buckets >> 32`), so a deletion can move
//! buckets back without reading or re-hashing any key, and the bucket count
//! need not be a power of two. A lookup compares tags in the index and only
//! on a tag match asks the caller to compare the key stored in the slab.
//!
//! Capacity: the index holds at most `max_keys` keys in at least
//! `4/3 * max_keys` buckets, so the load never exceeds three quarters and
//! an empty bucket always ends a probe.

use crate::release::prefetch;

/// Set in every occupied bucket (payloads stay below it): an occupied
/// bucket is never zero.
const OCCUPIED: u64 = 1 << 31;
/// Payloads are below this.
const MAX_PAYLOAD: u32 = (1 << 31) - 1;
/// Buckets per 64-byte cache line (the rounding unit of the bucket count).
const LINE: usize = 8;
/// Buckets `TagIndex::first_candidate` looks at (the prefetch stage never
/// walks a long cluster).
const HINT_PROBE: usize = LINE;

/// See the module doc. Payloads are below 2^31 (one bit of the bucket
/// marks it occupied).
pub struct TagIndex {
    buckets: Box<[u64]>,
    len: usize,
}

#[inline(always)]
fn encode(hash: u64, payload: u32) -> u64 {
    debug_assert!(payload <= MAX_PAYLOAD);
    (hash >> 32) << 32 | OCCUPIED | u64::from(payload)
}

#[inline(always)]
fn decode(b: u64) -> u32 {
    (b & !OCCUPIED) as u32
}

impl TagIndex {
    /// An index for at most `max_keys` keys (`max_keys <= 2^29`).
    pub fn new(max_keys: usize) -> Self {
        let n = max_keys
            .saturating_mul(4)
            .div_ceil(3)
            .max(1)
            .next_multiple_of(LINE);
        debug_assert!(n > max_keys && (n as u64) < 1 << 32);
        Self {
            buckets: vec![0; n].into_boxed_slice(),
            len: 0,
        }
    }

    /// Keys held. O(1).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes of the bucket array.
    pub fn bytes(&self) -> usize {
        self.buckets.len() * core::mem::size_of::<u64>()
    }

    /// The home position of a tag (the upper half of a hash or bucket).
    #[inline(always)]
    fn home(&self, tag: u64) -> usize {
        ((tag * self.buckets.len() as u64) >> 32) as usize
    }

    #[inline(always)]
    fn next(&self, i: usize) -> usize {
        if i + 1 == self.buckets.len() {
            0
        } else {
            i + 1
        }
    }

    /// The payload of the first bucket, in probe order from `hash`'s home,
    /// whose tag is `hash`'s and whose payload the caller accepts (the
    /// caller compares its key). `None` at the first empty bucket.
    #[inline(always)]
    pub fn find(&self, hash: u64, mut accept: impl FnMut(u32) -> bool) -> Option<u32> {
        let tag = hash >> 32;
        let mut i = self.home(tag);
        loop {
            let b = self.buckets[i];
            if b == 0 {
                return None;
            }
            if b >> 32 == tag && accept(decode(b)) {
                return Some(decode(b));
            }
            i = self.next(i);
        }
    }

    /// As [`TagIndex::find`], but a miss returns the empty bucket that
    /// ended the probe: where the key goes ([`TagIndex::put`]) if the index
    /// does not change first.
    #[inline(always)]
    pub fn probe(&self, hash: u64, mut accept: impl FnMut(u32) -> bool) -> Result<u32, usize> {
        let tag = hash >> 32;
        let mut i = self.home(tag);
        loop {
            let b = self.buckets[i];
            if b == 0 {
                return Err(i);
            }
            if b >> 32 == tag && accept(decode(b)) {
                return Ok(decode(b));
            }
            i = self.next(i);
        }
    }

    /// Adds a key at bucket `at`: the empty bucket [`TagIndex::probe`]
    /// returned for `hash` with no change to the index since, so exactly
    /// the bucket [`TagIndex::insert`] would take. The caller has checked
    /// that the key is not present.
    #[inline(always)]
    pub fn put(&mut self, at: usize, hash: u64, payload: u32) {
        debug_assert!(self.len + 1 < self.buckets.len(), "index overfull");
        debug_assert_eq!(self.buckets[at], 0, "bucket taken");
        self.buckets[at] = encode(hash, payload);
        self.len += 1;
    }

    /// Adds a key (its hash and payload); returns the bucket it took. The
    /// caller has checked that the key is not present.
    ///
    /// # Panics
    /// In debug builds, if the index is already full (internal bug: the
    /// shard never holds more keys than it was sized for).
    #[inline]
    pub fn insert(&mut self, hash: u64, payload: u32) -> usize {
        debug_assert!(self.len + 1 < self.buckets.len(), "index overfull");
        let mut i = self.home(hash >> 32);
        while self.buckets[i] != 0 {
            i = self.next(i);
        }
        self.buckets[i] = encode(hash, payload);
        self.len += 1;
        i
    }

    /// Removes the bucket of exactly `(hash, payload)`, then shifts the
    /// rest of its cluster back so no probe ever meets a hole it should have
    /// passed. Returns whether the bucket was there.
    pub fn remove(&mut self, hash: u64, payload: u32) -> bool {
        let v = encode(hash, payload);
        let mut hole = self.home(hash >> 32);
        loop {
            let b = self.buckets[hole];
            if b == 0 {
                return false;
            }
            if b == v {
                break;
            }
            hole = self.next(hole);
        }
        // Backward shift: a later bucket of the cluster moves into the hole
        // unless its home lies cyclically in (hole, j] (then it must stay:
        // moving it before its home would hide it from its own probe).
        let mut j = hole;
        loop {
            j = self.next(j);
            let b = self.buckets[j];
            if b == 0 {
                break;
            }
            let h = self.home(b >> 32);
            let stays = if hole <= j {
                hole < h && h <= j
            } else {
                hole < h || h <= j
            };
            if !stays {
                self.buckets[hole] = b;
                hole = j;
            }
        }
        self.buckets[hole] = 0;
        self.len -= 1;
        true
    }

    /// The first tag match of `hash` within the first few buckets of its
    /// probe (no key comparison): what the prefetch stage loads. A plain
    /// read; may name another key's entry (a wasted prefetch, nothing else).
    #[inline(always)]
    pub fn first_candidate(&self, hash: u64) -> Option<u32> {
        let tag = hash >> 32;
        let mut i = self.home(tag);
        for _ in 0..HINT_PROBE {
            let b = self.buckets[i];
            if b == 0 {
                return None;
            }
            if b >> 32 == tag {
                return Some(decode(b));
            }
            i = self.next(i);
        }
        None
    }

    /// Starts loading the buckets a probe for `hash` reads first (its home
    /// and the next few, which may lie on the following cache line).
    #[inline(always)]
    pub fn prefetch(&self, hash: u64) {
        let h = self.home(hash >> 32);
        prefetch(&self.buckets[h]);
        let k = h + 3;
        prefetch(
            &self.buckets[if k < self.buckets.len() {
                k
            } else {
                k - self.buckets.len()
            }],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Random inserts and removes against a set, with hashes drawn from a
    /// few tags (equal tags, equal homes, clusters that wrap around the end)
    /// in a tiny index: every present key is found, every absent one is
    /// not, and the bucket count matches.
    #[test]
    fn random_ops_against_a_set() {
        let mut x: u64 = 0x9e37_79b9;
        let mut rnd = move |m: u64| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) % m
        };
        // Tags near the top map to the last buckets: clusters wrap.
        let tags = [
            0u64,
            1,
            7,
            0xffff_fff0,
            0xffff_ffff,
            0x8000_0000,
            0x1234_5678,
        ];
        for max_keys in [1usize, 5, 12, 40] {
            let mut ix = TagIndex::new(max_keys);
            let mut present: BTreeSet<(u64, u32, bool)> = BTreeSet::new();
            let mut slot_used: BTreeSet<(u32, bool)> = BTreeSet::new();
            for _ in 0..20_000 {
                let tag = tags[rnd(tags.len() as u64) as usize];
                let hash = tag << 32 | rnd(1 << 32);
                let slot = rnd(max_keys as u64) as u32;
                let rev = rnd(2) == 1;
                if rnd(2) == 0 && present.len() < max_keys && !slot_used.contains(&(slot, rev)) {
                    ix.insert(hash, slot << 1 | u32::from(rev));
                    present.insert((hash, slot, rev));
                    slot_used.insert((slot, rev));
                } else if let Some(&(h, s, r)) = present
                    .iter()
                    .nth(rnd(present.len().max(1) as u64) as usize)
                {
                    let p = s << 1 | u32::from(r);
                    assert!(ix.remove(h, p));
                    present.remove(&(h, s, r));
                    slot_used.remove(&(s, r));
                    assert!(!ix.remove(h, p), "removed twice");
                }
                assert_eq!(ix.len(), present.len());
                assert_eq!(
                    ix.buckets.iter().filter(|&&b| b != 0).count(),
                    present.len()
                );
                for &(h, s, r) in &present {
                    let p = s << 1 | u32::from(r);
                    assert_eq!(ix.find(h, |a| a == p), Some(p));
                }
                let absent = (tags[0] << 32 | 5, (max_keys as u32 + 1) << 1);
                assert_eq!(ix.find(absent.0, |a| a == absent.1), None);
            }
        }
    }

    #[test]
    fn sized_for_three_quarters_load_in_whole_lines() {
        for n in [1usize, 2, 3, 6, 7, 1000, 2_000_000] {
            let ix = TagIndex::new(n);
            assert!(ix.buckets.len() * 3 >= n * 4);
            assert_eq!(ix.buckets.len() % LINE, 0);
            assert!(ix.buckets.len() < n * 4 / 3 + 2 * LINE);
        }
    }
}
