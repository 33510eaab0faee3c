//! The floors' session table, shared by `replaybench` and `dpdkfloor`
//! (included with `#[path]`; not an example of its own).

use core::net::Ipv4Addr;

/// A flat-table key: (source, destination, protocol, source port,
/// destination port) packed into two words. The first word (the two
/// addresses) is never 0 for real traffic: 0 marks an empty slot.
pub fn key(a: Ipv4Addr, b: Ipv4Addr, proto: u8, p1: u16, p2: u16) -> (u64, u64) {
    (
        u64::from(u32::from(a)) << 32 | u64::from(u32::from(b)),
        u64::from(p1) << 24 | u64::from(p2) << 8 | u64::from(proto),
    )
}

/// The floor's session table: open addressing with linear probing, keys
/// and values inline (one cache line per probe), sized once; no deletion.
pub struct FlatTable {
    slots: Vec<(u64, u64, u32)>,
    mask: usize,
}

impl FlatTable {
    pub fn new(entries: usize) -> Self {
        let n = (entries * 2).next_power_of_two().max(1024);
        FlatTable {
            slots: vec![(0, 0, 0); n],
            mask: n - 1,
        }
    }
    pub fn index(&self, k: (u64, u64)) -> usize {
        let p = u128::from(k.0 ^ k.1.rotate_left(29)) * 0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835;
        ((p as u64) ^ ((p >> 64) as u64)) as usize & self.mask
    }
    /// Start loading the slot `k` probes first.
    #[allow(unsafe_code)]
    pub fn prefetch(&self, i: usize) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch is a hint; the address is inside `slots`.
        unsafe {
            use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            _mm_prefetch::<_MM_HINT_T0>(self.slots.as_ptr().add(i).cast());
        }
    }
    /// The value of `k` (see [`key`] for why a first word of 0 is free).
    pub fn get(&self, k: (u64, u64), mut i: usize) -> Option<u32> {
        loop {
            let (a, b, v) = self.slots[i];
            if (a, b) == k {
                return Some(v);
            }
            if a == 0 {
                return None;
            }
            i = (i + 1) & self.mask;
        }
    }
    /// Insert `k` unless present; `false` when full.
    pub fn insert(&mut self, k: (u64, u64), v: u32, mut i: usize) -> bool {
        for _ in 0..self.slots.len() {
            let (a, b, _) = self.slots[i];
            if (a, b) == k {
                return true;
            }
            if a == 0 {
                self.slots[i] = (k.0, k.1, v);
                return true;
            }
            i = (i + 1) & self.mask;
        }
        false
    }
}
