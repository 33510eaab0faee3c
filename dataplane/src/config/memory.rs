//! What a configuration's tables take: the estimate `check-config` prints
//! and the memory check refuses a configuration by.

use serde::Serialize;

/// What the configuration's tables take, in bytes (estimated from the
/// tables' layout: see [`super::Config::memory_estimate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MemoryEstimate {
    /// The NAT's session shard (0 without `[nat]`).
    pub nat_sessions: u64,
    /// The IPv6 flow tracker's shard.
    pub ipv6_flows: u64,
}

impl MemoryEstimate {
    pub fn total(&self) -> u64 {
        self.nat_sessions + self.ipv6_flows
    }
}

/// Bytes a `flow_entry::Shard<K, V>` of `capacity` entries allocates at
/// construction (what its `memory_bytes` reports): the slab reservation
/// (`capacity * ENTRY_BYTES`), the key index (two keys per entry at no more
/// than 3/4 load, one `u64` per bucket, rounded up to 8-bucket cache lines:
/// flow-entry's `shard/index.rs`, whose sizing is private and repeated
/// here), the timer wheel's levels and the shard itself.
pub fn shard_bytes<K: flow_entry::ShardKey, V>(capacity: usize, wheel_levels: usize) -> u64 {
    let slab = capacity as u64 * flow_entry::Shard::<K, V>::ENTRY_BYTES as u64;
    let buckets = (capacity as u64 * 2 * 4)
        .div_ceil(3)
        .max(1)
        .next_multiple_of(8);
    let level = 8 + 2 * flow_entry::wheel::SLOTS as u64 * 4;
    slab + buckets * 8
        + wheel_levels as u64 * level
        + core::mem::size_of::<flow_entry::Shard<K, V>>() as u64
}

/// The machine's memory in bytes (`MemTotal` in `/proc/meminfo`); `None`
/// when it cannot be read (the memory check is then skipped).
pub fn machine_memory() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = s.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// `bytes` for people: `664.0 MiB`, `1.5 GiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
