//! External port allocator (RFC 4787 REQ-2/3/4, RFC 6888 REQ-4/8).
//!
//! Design:
//! - **Paired pooling** (RFC 4787 REQ-2): an inside host is paired with one
//!   external address, chosen by a keyed hash of (seed, host) — deterministic
//!   for a given seed, unpredictable without it. While the host holds any
//!   port it stays on that address; only when that address has no free port
//!   in the needed range does allocation fall back to the next addresses
//!   (counted as `fallback_address`).
//! - **Port preservation** (REQ-3): the inside source port is used when it is
//!   free and in range. Ports 0–1023 and 1024+ are kept apart: a source port
//!   ≥ 1024 never gets a low port; a source port < 1024 gets a `low_ports`
//!   port when that range is configured (else a port from `ports`).
//! - **Parity** (REQ-4): otherwise a port with the source port's parity is
//!   preferred, starting from a seeded pseudo-random point (hard to guess,
//!   but reproducible for a given seed and operation sequence).
//! - **Cost**: each (address, protocol, range) is a bitmap of `u64` words
//!   (bit set = free) with a summary bitmap (bit set = word has a free port),
//!   so a free port is found with a bounded number of word operations even
//!   when the range is 99 % full: O(1) expected, O(range/4096) worst case.
//! - **Quota** (RFC 6888 REQ-4): ports held per inside host are counted; at
//!   the quota allocation fails with [`AllocError::QuotaExceeded`].
//! - **Hold-down** (RFC 6888 REQ-8, optional): a freed port is parked for a
//!   configured time before it can be handed out again.
//!
//! The allocator is a plain (non-thread-safe) structure; `Nat` keeps it behind
//! a mutex together with the mapping table (slow path only).

use std::collections::VecDeque;

use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

use crate::FastMap as HashMap;

use core::net::Ipv4Addr;

use serde::Serialize;

use crate::config::{NatConfig, PortRange};
use std::sync::Arc;

use crate::blocks::PortBlocks;
use crate::portset::{BLOCK_PORTS, PortSet};

/// Protocols with their own port space.
pub const PROTOS: [u8; 3] = [6, 17, 1];

#[inline]
fn proto_index(proto: u8) -> Option<usize> {
    // The index of `proto` in `PROTOS`.
    match proto {
        6 => Some(0),
        17 => Some(1),
        1 => Some(2),
        _ => None,
    }
}

/// splitmix64 step: a small, fast, seedable PRNG (not cryptographic; the
/// unpredictability comes from the secret seed).
#[must_use]
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Odd constants (digits of pi) mixed into [`hash_words`].
const P: [u64; 4] = [
    0x243f_6a88_85a3_08d3,
    0x1319_8a2e_0370_7345,
    0xa409_3822_299f_31d1,
    0x082e_fa98_ec4e_6c89,
];

/// The 128-bit product of `x` and `y`, high half XOR low half.
#[inline(always)]
fn fold_mul(x: u64, y: u64) -> u64 {
    let p = u128::from(x) * u128::from(y);
    (p as u64) ^ ((p >> 64) as u64)
}

/// Keyed hash of two words for the NAT's hash tables (mappings, hosts):
/// two folded multiplies (as flow-entry's compact key hash), both halves
/// spread. `b` must stay below 2^56 (the words the NAT packs do). Not for
/// allocation choices: those use [`keyed_hash`] with the configured seed;
/// this one's seed is random per table and only decides where a record
/// sits, never what the NAT does.
#[inline(always)]
pub(crate) fn hash_words(seed: u64, a: u64, b: u64) -> u64 {
    let x = fold_mul(a ^ seed ^ P[0], b ^ P[1]);
    fold_mul(x ^ P[2], (seed ^ P[3]) | 1)
}

/// A random seed for [`hash_words`] (per call: each table its own).
pub(crate) fn random_seed() -> u64 {
    use core::hash::BuildHasher;
    foldhash::fast::RandomState::default().hash_one(0x006e_6174_5f6d_6170_u64)
}

/// Keyed mix of `x` with `seed` (deterministic, hard to predict without seed).
#[must_use]
pub fn keyed_hash(seed: u64, x: u64) -> u64 {
    let mut s = seed ^ x.wrapping_mul(0xA076_1D64_78BD_642F);
    let _ = splitmix64(&mut s);
    splitmix64(&mut s)
}

/// How an allocation was satisfied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllocOutcome {
    /// The inside source port itself.
    Preserved,
    /// Another port with the same parity.
    ParityKept,
    /// Another port, parity not kept.
    Other,
}

/// Why an allocation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AllocError {
    #[error("the inside host reached its port quota")]
    QuotaExceeded,
    #[error("no free external port in the pool")]
    Exhausted,
    #[error("protocol {0} has no port space")]
    Protocol(u8),
}

/// Allocator counters (plain; the allocator lives behind a lock).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AllocStats {
    pub preserved: u64,
    pub parity_kept: u64,
    pub other: u64,
    /// Allocations served by an address other than the host's paired one.
    pub fallback_address: u64,
    /// Low source port (< 1024) served from the high range (no `low_ports`
    /// or low range full is *not* a fallback: low-port requests never leave
    /// the low range when it is configured).
    pub low_in_high_range: u64,
    pub quota_exceeded: u64,
    pub exhausted: u64,
    pub freed: u64,
    /// Release of a port that was not allocated (a bug elsewhere): counted, ignored.
    pub double_free: u64,
    pub held_down: u64,
    /// Ports currently allocated (not counting held-down ones).
    pub in_use: u64,
    /// Ports currently parked by the hold-down.
    pub holding: u64,
    /// Inside hosts holding at least one port.
    pub hosts: u64,
}

#[derive(Debug)]
struct AddrSets {
    high: PortSet,
    low: Option<PortSet>,
}

/// An inside host holding ports: its paired address and how many ports.
#[derive(Debug, Clone, Copy)]
struct HostState {
    host: Ipv4Addr,
    addr: u32,
    ports: u32,
}

/// The address index (of `n`) a host holding no port is paired with.
#[inline]
fn pairing(seed: u64, host: Ipv4Addr, n: usize) -> usize {
    (keyed_hash(seed, u64::from(u32::from(host))) % n as u64) as usize
}

#[inline(always)]
fn host_hash(seed: u64, host: Ipv4Addr) -> u64 {
    hash_words(seed, u64::from(u32::from(host)), 0)
}

/// The port sets of (address `ai`, protocol `pi`), created on first use
/// (ports reserved for port forwards taken out).
#[inline(always)]
fn sets_of<'a>(
    sets: &'a mut [[Option<Box<AddrSets>>; 3]],
    ranges: &[(PortRange, Option<PortRange>)],
    reserved: &[(usize, usize, u16)],
    granted: bool,
    ai: usize,
    pi: usize,
) -> &'a mut AddrSets {
    let slot = &mut sets[ai][pi];
    if slot.is_none() {
        *slot = Some(new_sets(ranges[ai], reserved, granted, ai, pi));
    }
    slot.as_mut().expect("just created")
}

#[cold]
#[inline(never)]
fn new_sets(
    (hi, lo): (PortRange, Option<PortRange>),
    reserved: &[(usize, usize, u16)],
    granted: bool,
    ai: usize,
    pi: usize,
) -> Box<AddrSets> {
    if granted {
        // Blocks holding a forwarded port are never granted.
        return Box::new(AddrSets {
            high: PortSet::granted(hi),
            low: lo.map(PortSet::granted),
        });
    }
    let mut s = AddrSets {
        high: PortSet::new(hi),
        low: lo.map(PortSet::new),
    };
    for &(rp, ra, port) in reserved {
        if rp == pi && ra == ai {
            s.high.take(port);
            if let Some(l) = s.low.as_mut() {
                l.take(port);
            }
        }
    }
    Box::new(s)
}

/// A port of `set` for source port `src_port`: preserved if free, else
/// one of its parity near the pseudo-random point `r`, else any.
#[inline]
fn pick(set: &mut PortSet, src_port: u16, r: u64) -> Option<(u16, AllocOutcome)> {
    if set.take(src_port) {
        return Some((src_port, AllocOutcome::Preserved));
    }
    set.take_near(r, src_port & 1).map(|(p, par)| {
        (
            p,
            if par {
                AllocOutcome::ParityKept
            } else {
                AllocOutcome::Other
            },
        )
    })
}

/// The word of `set` covering block `block`, if the set's range touches it.
fn word_for_block(set: &PortSet, block: u16) -> Option<usize> {
    let w = usize::from(block.checked_sub(set.block_of_word(0))?);
    (w < set.words()).then_some(w)
}

/// [`pick`] among the blocks this worker owns: the source port's block
/// is claimed if it is free (port preservation wherever the block
/// allows), a new block (from a pseudo-random start) only when the owned
/// ones have no free port. A port taken from an idle block ends its idle
/// time.
fn pick_in_blocks(
    set: &mut PortSet,
    src_port: u16,
    r: u64,
    b: &mut Blocks,
    ai: usize,
    pi: usize,
) -> Option<(u16, AllocOutcome)> {
    if let Some(w) = set.word_of(src_port)
        && !set.is_granted(w)
        && set.word_mask(w) != 0
        && b.map.claim(ai, pi, set.block_of_word(w), b.worker)
    {
        set.grant(w);
    }
    let got = pick(set, src_port, r).or_else(|| {
        let nw = set.words();
        let start = ((r >> 32) % nw.max(1) as u64) as usize;
        let w = (0..nw).map(|k| (start + k) % nw).find(|&w| {
            !set.is_granted(w)
                && set.word_mask(w) != 0
                && b.map.claim(ai, pi, set.block_of_word(w), b.worker)
        })?;
        set.grant(w);
        pick(set, src_port, r)
    })?;
    let w = set.word_of(got.0)?;
    if set.word_bits(w) | (1 << (got.0 % BLOCK_PORTS)) == set.word_mask(w) {
        b.idle
            .remove(&(((ai * 3 + pi) as u32), set.block_of_word(w)));
    }
    Some(got)
}

/// The port allocator for all pools.
#[derive(Debug)]
pub struct Allocator {
    addrs: Vec<Ipv4Addr>,
    index: HashMap<Ipv4Addr, usize>,
    /// `sets[addr][proto]`, created lazily.
    sets: Vec<[Option<Box<AddrSets>>; 3]>,
    ranges: Vec<(PortRange, Option<PortRange>)>,
    /// Ports reserved for port forwards: (proto idx, addr idx, port).
    reserved: Vec<(usize, usize, u16)>,
    /// Hosts holding at least one port (never iterated: the table's
    /// order does not matter).
    hosts: HashTable<HostState>,
    /// Seed of `hosts`' hash ([`hash_words`]).
    host_seed: u64,
    quota: u32,
    seed: u64,
    rng: u64,
    hold_down_ns: Option<u64>,
    hold: VecDeque<(u64, usize, usize, u16)>,
    /// With several workers: the shared block map, this worker's index,
    /// and the blocks idle since (address, protocol, block) → ns, each
    /// given back `block_hold_ns` after it became idle (`block_hold`, in
    /// deadline order).
    blocks: Option<Blocks>,
    stats: AllocStats,
}

#[derive(Debug)]
struct Blocks {
    map: Arc<PortBlocks>,
    worker: usize,
    hold_ns: u64,
    idle: HashMap<(u32, u16), u64>,
    queue: VecDeque<(u64, usize, usize, u16)>,
}

/// Every pool address of `cfg`, in configuration order (the allocator's
/// and the block map's address index), each with its pool's port ranges (high, low).
pub(crate) fn pool_addresses(cfg: &NatConfig) -> Vec<(Ipv4Addr, (PortRange, Option<PortRange>))> {
    let mut addrs = Vec::new();
    for pool in &cfg.pools {
        for p in &pool.addresses {
            let base = u32::from(p.addr);
            for k in 0..p.size() {
                addrs.push((
                    Ipv4Addr::from(base.wrapping_add(k as u32)),
                    (pool.ports, pool.low_ports),
                ));
            }
        }
    }
    addrs
}

impl Allocator {
    /// Build from a validated config: every pool address, port-forward
    /// external ports on pool addresses reserved. Cost O(addresses).
    #[must_use]
    pub fn new(cfg: &NatConfig) -> Self {
        let (addrs, ranges): (Vec<_>, Vec<_>) = pool_addresses(cfg).into_iter().unzip();
        let index = addrs
            .iter()
            .enumerate()
            .map(|(i, a)| (*a, i))
            .collect::<HashMap<_, _>>();
        let sets = (0..addrs.len()).map(|_| [None, None, None]).collect();
        let mut a = Self {
            addrs,
            index,
            sets,
            ranges,
            reserved: Vec::new(),
            hosts: HashTable::new(),
            host_seed: random_seed(),
            quota: cfg.per_host_port_quota,
            seed: cfg.seed,
            rng: cfg.seed ^ 0x5eed,
            hold_down_ns: cfg
                .port_reuse_hold_down
                .map(|s| s.saturating_mul(1_000_000_000)),
            hold: VecDeque::new(),
            blocks: None,
            stats: AllocStats::default(),
        };
        for r in &cfg.port_forwards {
            if let (Some(&ai), Some(pi)) =
                (a.index.get(&r.external), proto_index(r.protocol.number()))
            {
                for port in r.external_ports.first..=r.external_ports.last {
                    a.reserved.push((pi, ai, port));
                }
            }
        }
        a
    }

    /// The allocator of worker `worker` of `map.workers()`: ports only from
    /// blocks this worker owns, claimed from `map` when needed and given
    /// back `port_block_hold_down` after their last port is freed.
    #[must_use]
    pub fn for_worker(cfg: &NatConfig, map: Arc<PortBlocks>, worker: usize) -> Self {
        let mut a = Self::new(cfg);
        a.rng ^= keyed_hash(cfg.seed, worker as u64);
        a.blocks = Some(Blocks {
            map,
            worker,
            hold_ns: cfg.port_block_hold_down.saturating_mul(1_000_000_000),
            idle: HashMap::default(),
            queue: VecDeque::new(),
        });
        a
    }

    /// Whether `ip` is one of the pool addresses. O(1).
    #[must_use]
    pub fn is_pool_address(&self, ip: Ipv4Addr) -> bool {
        self.index.contains_key(&ip)
    }

    /// Pool addresses, in configuration order.
    #[must_use]
    pub fn addresses(&self) -> &[Ipv4Addr] {
        &self.addrs
    }

    fn sets_mut(&mut self, ai: usize, pi: usize) -> &mut AddrSets {
        let granted = self.blocks.is_some();
        sets_of(
            &mut self.sets,
            &self.ranges,
            &self.reserved,
            granted,
            ai,
            pi,
        )
    }

    #[inline(always)]
    fn host_hash(&self, host: Ipv4Addr) -> u64 {
        host_hash(self.host_seed, host)
    }

    /// The address a host is paired with (existing pairing, else keyed hash).
    #[must_use]
    pub fn paired_address(&self, host: Ipv4Addr) -> Ipv4Addr {
        let h = self.host_hash(host);
        let ai = match self.hosts.find(h, |s| s.host == host) {
            Some(s) => s.addr as usize,
            None => self.new_pairing(host),
        };
        self.addrs[ai]
    }

    /// The address index a host holding no port is paired with.
    #[inline]
    fn new_pairing(&self, host: Ipv4Addr) -> usize {
        pairing(self.seed, host, self.addrs.len())
    }

    /// Return parked ports whose hold-down ended by `now_ns`. O(released).
    #[inline]
    pub fn expire_holds(&mut self, now_ns: u64) {
        if self.hold.front().is_some_and(|&(t, ..)| t <= now_ns) {
            self.expire_holds_slow(now_ns);
        }
        if self
            .blocks
            .as_ref()
            .and_then(|b| b.queue.front())
            .is_some_and(|&(t, ..)| t <= now_ns)
        {
            self.release_idle_blocks(now_ns);
        }
    }

    /// Give back the blocks idle for the hold-down by `now_ns`.
    #[cold]
    #[inline(never)]
    fn release_idle_blocks(&mut self, now_ns: u64) {
        let Some(b) = self.blocks.as_mut() else {
            return;
        };
        while let Some(&(t, ai, pi, block)) = b.queue.front() {
            if t > now_ns {
                break;
            }
            b.queue.pop_front();
            let k = ((ai * 3 + pi) as u32, block);
            // A block used again since (or already given back) has no
            // idle record, or a later one with its own queue entry.
            if b.idle
                .get(&k)
                .is_none_or(|&since| since.saturating_add(b.hold_ns) > now_ns)
            {
                continue;
            }
            let Some(sets) = self.sets[ai][pi].as_mut() else {
                continue;
            };
            let idle = |s: &PortSet| {
                word_for_block(s, block).is_none_or(|w| !s.is_granted(w) || s.is_idle(w))
            };
            if !idle(&sets.high) || !sets.low.as_ref().is_none_or(idle) {
                continue;
            }
            b.idle.remove(&k);
            for s in core::iter::once(&mut sets.high).chain(sets.low.as_mut()) {
                if let Some(w) = word_for_block(s, block) {
                    s.revoke(w);
                }
            }
            b.map.release(ai, pi, block, b.worker);
        }
    }

    #[cold]
    #[inline(never)]
    fn expire_holds_slow(&mut self, now_ns: u64) {
        while let Some(&(t, ai, pi, port)) = self.hold.front() {
            if t > now_ns {
                break;
            }
            self.hold.pop_front();
            self.stats.holding -= 1;
            self.put_port(ai, pi, port, t);
        }
    }

    fn put_port(&mut self, ai: usize, pi: usize, port: u16, now_ns: u64) {
        let s = self.sets_mut(ai, pi);
        let ok = s.high.put(port) || s.low.as_mut().is_some_and(|l| l.put(port));
        if !ok {
            self.stats.double_free += 1;
            return;
        }
        let idle = [Some(&s.high), s.low.as_ref()]
            .into_iter()
            .flatten()
            .any(|s| s.word_of(port).is_some_and(|w| s.is_idle(w)));
        if idle && let Some(b) = self.blocks.as_mut() {
            let block = port / BLOCK_PORTS;
            b.idle.insert(((ai * 3 + pi) as u32, block), now_ns);
            b.queue
                .push_back((now_ns.saturating_add(b.hold_ns), ai, pi, block));
        }
    }

    /// Allocate an external (address, port) for `host`'s source port `src_port`.
    ///
    /// Cost: one hash-table probe for the host, then O(1) expected bitmap
    /// work on the paired address (more addresses only when it is full).
    ///
    /// # Errors
    /// `QuotaExceeded` when the host holds its quota; `Exhausted` when no
    /// address has a free port in the needed range; `Protocol` for a protocol
    /// other than TCP, UDP or ICMP. Each is counted.
    pub fn allocate(
        &mut self,
        proto: u8,
        host: Ipv4Addr,
        src_port: u16,
        now_ns: u64,
    ) -> Result<(Ipv4Addr, u16, AllocOutcome), AllocError> {
        let pi = proto_index(proto).ok_or(AllocError::Protocol(proto))?;
        self.expire_holds(now_ns);
        let hh = self.host_hash(host);
        let Self {
            addrs,
            sets,
            ranges,
            reserved,
            hosts,
            host_seed,
            quota,
            seed,
            rng,
            stats,
            blocks,
            ..
        } = self;
        // One probe for the host: its entry (held ports, paired address)
        // or the slot a new one goes to (inserted only on success).
        let entry = hosts.entry(hh, |s| s.host == host, |s| host_hash(*host_seed, s.host));
        let (held, home) = match &entry {
            Entry::Occupied(o) => (o.get().ports, o.get().addr as usize),
            Entry::Vacant(_) => (0, pairing(*seed, host, addrs.len())),
        };
        if *quota != 0 && held >= *quota {
            stats.quota_exceeded += 1;
            return Err(AllocError::QuotaExceeded);
        }
        let n = addrs.len();
        let r = splitmix64(rng);
        let low = src_port < 1024;
        for k in 0..n {
            // (home + k) % n, home < n.
            let ai = if home + k >= n {
                home + k - n
            } else {
                home + k
            };
            let sets = sets_of(sets, ranges, reserved, blocks.is_some(), ai, pi);
            let (set, low_in_high) = match (low, sets.low.as_mut()) {
                (true, Some(l)) => (l, false),
                (true, None) => (&mut sets.high, true),
                (false, _) => (&mut sets.high, false),
            };
            let got = match blocks {
                None => pick(set, src_port, r),
                Some(b) => pick_in_blocks(set, src_port, r, b, ai, pi),
            };
            if let Some((port, outcome)) = got {
                let st = &mut *stats;
                match outcome {
                    AllocOutcome::Preserved => st.preserved += 1,
                    AllocOutcome::ParityKept => st.parity_kept += 1,
                    AllocOutcome::Other => st.other += 1,
                }
                if k != 0 {
                    st.fallback_address += 1;
                }
                if low_in_high {
                    st.low_in_high_range += 1;
                }
                st.in_use += 1;
                match entry {
                    Entry::Occupied(mut o) => o.get_mut().ports += 1,
                    Entry::Vacant(v) => {
                        st.hosts += 1;
                        v.insert(HostState {
                            host,
                            addr: home as u32,
                            ports: 1,
                        });
                    }
                }
                return Ok((addrs[ai], port, outcome));
            }
        }
        stats.exhausted += 1;
        Err(AllocError::Exhausted)
    }

    /// Give back a port allocated to `host`. With a hold-down the port is
    /// parked until `now_ns + hold_down`. O(1).
    pub fn release(&mut self, proto: u8, host: Ipv4Addr, ext: Ipv4Addr, port: u16, now_ns: u64) {
        let (Some(pi), Some(&ai)) = (proto_index(proto), self.index.get(&ext)) else {
            self.stats.double_free += 1;
            return;
        };
        if self.is_free(proto, ext, port) {
            self.stats.double_free += 1;
            return;
        }
        let hh = self.host_hash(host);
        match self.hosts.find_entry(hh, |s| s.host == host) {
            Ok(mut o) if o.get().ports > 0 => {
                o.get_mut().ports -= 1;
                if o.get().ports == 0 {
                    o.remove();
                    self.stats.hosts -= 1;
                }
            }
            _ => {
                self.stats.double_free += 1;
                return;
            }
        }
        self.stats.in_use -= 1;
        self.stats.freed += 1;
        match self.hold_down_ns {
            Some(d) if d > 0 => {
                self.stats.held_down += 1;
                self.stats.holding += 1;
                self.hold
                    .push_back((now_ns.saturating_add(d), ai, pi, port));
            }
            _ => self.put_port(ai, pi, port, now_ns),
        }
    }

    /// Ports currently held by `host`. O(1).
    #[must_use]
    pub fn host_ports(&self, host: Ipv4Addr) -> u32 {
        self.hosts
            .find(self.host_hash(host), |s| s.host == host)
            .map_or(0, |h| h.ports)
    }

    /// Whether (proto, ext, port) is currently free for allocation.
    #[must_use]
    pub fn is_free(&self, proto: u8, ext: Ipv4Addr, port: u16) -> bool {
        let (Some(pi), Some(&ai)) = (proto_index(proto), self.index.get(&ext)) else {
            return false;
        };
        match &self.sets[ai][pi] {
            None => {
                let (hi, lo) = self.ranges[ai];
                (hi.contains(port) || lo.is_some_and(|l| l.contains(port)))
                    && !self
                        .reserved
                        .iter()
                        .any(|&(rp, ra, p)| rp == pi && ra == ai && p == port)
            }
            Some(s) => s.high.is_free(port) || s.low.as_ref().is_some_and(|l| l.is_free(port)),
        }
    }

    /// Counter snapshot. O(1).
    #[must_use]
    pub fn stats(&self) -> AllocStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Ipv4Prefix;

    fn cfg(pool: &str) -> NatConfig {
        NatConfig::masquerade(
            vec!["10.0.0.0/8".parse().unwrap()],
            vec![pool.parse::<Ipv4Prefix>().unwrap()],
        )
    }

    #[test]
    fn preserves_port_then_parity_and_pairs_address() {
        let mut a = Allocator::new(&cfg("203.0.113.0/29"));
        let h: Ipv4Addr = "10.0.0.7".parse().unwrap();
        let (e1, p1, o1) = a.allocate(17, h, 5000, 0).unwrap();
        assert_eq!((p1, o1), (5000, AllocOutcome::Preserved));
        let (e2, p2, o2) = a.allocate(17, h, 5000, 0).unwrap();
        assert_eq!(e1, e2, "paired pooling");
        assert_eq!(o2, AllocOutcome::ParityKept);
        assert_eq!(p2 % 2, 0);
        assert!(p2 >= 1024);
        let (_, p3, _) = a.allocate(6, h, 80, 0).unwrap();
        assert_eq!(p3, 80);
        assert_eq!(a.host_ports(h), 3);
        a.release(17, h, e1, 5000, 0);
        a.release(17, h, e1, 5000, 0);
        assert_eq!(a.stats().double_free, 1, "second release of a free port");
        assert_eq!(a.host_ports(h), 2);
        a.release(17, h, e1, p2, 0);
        a.release(6, h, e1, 80, 0);
        assert_eq!(a.host_ports(h), 0);
        a.release(6, h, e1, 80, 0);
        assert_eq!(a.stats().double_free, 2);
        assert_eq!(a.stats().in_use, 0);
    }

    #[test]
    fn deterministic_for_a_seed() {
        let run = |seed| {
            let mut c = cfg("203.0.113.0/28");
            c.seed = seed;
            let mut a = Allocator::new(&c);
            (0..200u32)
                .map(|i| {
                    a.allocate(17, Ipv4Addr::from(0x0a00_0000 + i % 7), 40000, 0)
                        .unwrap()
                })
                .map(|(e, p, _)| (e, p))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }

    #[test]
    fn exhaustion_fallback_and_hold_down() {
        let mut c = cfg("203.0.113.0/31");
        c.pools[0].ports = PortRange::new(2000, 2009);
        c.pools[0].low_ports = None;
        c.per_host_port_quota = 0;
        c.port_reuse_hold_down = Some(10);
        let mut a = Allocator::new(&c);
        let h: Ipv4Addr = "10.0.0.1".parse().unwrap();
        let mut got = Vec::new();
        for _ in 0..20 {
            got.push(a.allocate(6, h, 3000, 0).unwrap());
        }
        assert_eq!(a.stats().fallback_address, 10);
        assert_eq!(a.allocate(6, h, 3000, 0), Err(AllocError::Exhausted));
        let (e, p, _) = got[0];
        a.release(6, h, e, p, 1_000_000_000);
        assert_eq!(
            a.allocate(6, h, 3000, 5_000_000_000),
            Err(AllocError::Exhausted),
            "held down"
        );
        let (e2, p2, _) = a.allocate(6, h, 3000, 11_000_000_000).unwrap();
        assert_eq!((e2, p2), (e, p));
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;
        use std::collections::HashMap;

        #[derive(Debug, Clone)]
        enum Op {
            Alloc { host: u8, sport: u16, proto: usize },
            Release(usize),
            Advance,
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                3 => (0u8..6, prop_oneof![0u16..1100, 2000u16..2100], 0usize..3)
                    .prop_map(|(host, sport, proto)| Op::Alloc { host, sport, proto }),
                2 => any::<usize>().prop_map(Op::Release),
                1 => Just(Op::Advance),
            ]
        }

        proptest! {
            /// Differential test against a plain model: no (proto, address,
            /// port) is handed out twice, counters match, 0–1023 stays apart,
            /// quota holds, hold-down delays reuse.
            #[test]
            fn allocator_matches_model(ops in proptest::collection::vec(op(), 1..300), hold in proptest::option::of(1u64..3)) {
                let mut c = cfg("203.0.113.0/31");
                c.pools[0].ports = PortRange::new(2000, 2040);
                c.pools[0].low_ports = Some(PortRange::new(1000, 1010));
                c.per_host_port_quota = 12;
                c.port_reuse_hold_down = hold;
                let mut a = Allocator::new(&c);
                let mut live: Vec<(u8, Ipv4Addr, Ipv4Addr, u16)> = Vec::new();
                let mut held: Vec<(u64, u8, Ipv4Addr, u16)> = Vec::new();
                let mut now = 0u64;
                for o in ops {
                    match o {
                        Op::Alloc { host, sport, proto } => {
                            let h = Ipv4Addr::new(10, 0, 0, host);
                            let p = PROTOS[proto];
                            let held_by_h = live.iter().filter(|l| l.1 == h).count() as u32;
                            match a.allocate(p, h, sport, now) {
                                Ok((e, port, _)) => {
                                    prop_assert!(held_by_h < 12, "quota");
                                    prop_assert!(!live.iter().any(|l| l.0 == p && l.2 == e && l.3 == port), "port handed out twice");
                                    prop_assert!(!held.iter().any(|x| x.1 == p && x.2 == e && x.3 == port && x.0 > now), "reused during hold-down");
                                    if sport < 1024 { prop_assert!((1000..=1010).contains(&port)); } else { prop_assert!((2000..=2040).contains(&port)); }
                                    live.push((p, h, e, port));
                                }
                                Err(AllocError::QuotaExceeded) => prop_assert_eq!(held_by_h, 12),
                                Err(e) => {
                                    prop_assert_eq!(e, AllocError::Exhausted);
                                    // Exhausted only when every port of the range on both
                                    // addresses is allocated or held down.
                                    let r = if sport < 1024 { 1000..=1010 } else { 2000..=2040 };
                                    let used = live.iter().filter(|l| l.0 == p && r.contains(&l.3)).count()
                                        + held.iter().filter(|x| x.1 == p && r.contains(&x.3) && x.0 > now).count();
                                    prop_assert_eq!(used, 2 * r.count());
                                }
                            }
                        }
                        Op::Release(i) if !live.is_empty() => {
                            let (p, h, e, port) = live.swap_remove(i % live.len());
                            a.release(p, h, e, port, now);
                            if let Some(d) = hold { held.push((now + d * 1_000_000_000, p, e, port)); }
                        }
                        Op::Release(_) => {}
                        Op::Advance => now += 1_000_000_000,
                    }
                    let st = a.stats();
                    prop_assert_eq!(st.in_use, live.len() as u64);
                    prop_assert_eq!(st.double_free, 0);
                    let mut per: HashMap<Ipv4Addr, u32> = HashMap::new();
                    for l in &live { *per.entry(l.1).or_default() += 1; }
                    for host in 0..6u8 {
                        let h = Ipv4Addr::new(10, 0, 0, host);
                        prop_assert_eq!(a.host_ports(h), per.get(&h).copied().unwrap_or(0));
                    }
                }
            }
        }
    }
}
