//! [`ShardKey`]: what a [`Shard`](super::Shard) indexes, and its two
//! implementations (a [`FlowKey`], a compact `u128`).

use core::fmt;

use crate::key::FlowKey;

/// A key a shard can index: the two directions of a session are two keys.
pub trait ShardKey: Copy + Eq + fmt::Debug {
    /// A 64-bit keyed hash of the key. Both halves must be well spread:
    /// the index takes its tag and home position from the upper half.
    fn hash(&self, seed: u64) -> u64;
}

/// Arbitrary odd constants (digits of pi) that the key hashes mix in.
const P: [u64; 6] = [
    0x243f_6a88_85a3_08d3,
    0x1319_8a2e_0370_7345,
    0xa409_3822_299f_31d1,
    0x082e_fa98_ec4e_6c89,
    0x4528_21e6_38d0_1377,
    0xbe54_66cf_34e9_0c6d,
];

/// The 128-bit product of `x` and `y`, high half XOR low half.
#[inline(always)]
fn fold_mul(x: u64, y: u64) -> u64 {
    let p = u128::from(x) * u128::from(y);
    (p as u64) ^ ((p >> 64) as u64)
}

/// Three folded multiplies over the key's five words, with the seed mixed
/// into each.
impl ShardKey for FlowKey {
    #[inline(always)]
    fn hash(&self, seed: u64) -> u64 {
        let w = self.words();
        let a = fold_mul(w[0] ^ seed ^ P[0], w[1] ^ P[1]);
        let b = fold_mul(w[2] ^ seed ^ P[2], w[3] ^ P[3]);
        fold_mul(a ^ w[4] ^ P[4], b ^ seed ^ P[5])
    }
}

/// Compact keys (e.g. an IPv4 5-tuple and a zone packed into 128 bits):
/// two folded multiplies, the second by an odd (never zero) factor.
impl ShardKey for u128 {
    #[inline(always)]
    fn hash(&self, seed: u64) -> u64 {
        let lo = *self as u64;
        let hi = (*self >> 64) as u64;
        let a = fold_mul(lo ^ seed ^ P[0], hi ^ P[1]);
        fold_mul(a ^ P[2], (seed ^ P[3]) | 1)
    }
}

/// splitmix64's finaliser: spreads a (possibly small) configured seed.
pub(super) fn spread(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
