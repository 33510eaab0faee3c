//! Port blocks and session ownership across workers.
//!
//! With several workers, every NAT session has one owner worker, and both
//! of its keys live in that worker's [`crate::Nat`]. The owner is
//! computable from a frame of either direction ([`PortBlocks::owner_of`]):
//! - inside → outside: a keyed hash of the inside host's address, so a
//!   host's mappings (EIM), quota and paired address stay on one worker;
//! - outside → inside: the external (address, protocol, port): external
//!   ports belong to workers 64 at a time (a *block*), and a lock-free
//!   block → owner map names the worker;
//! - port forwards: the owner of the rule's inside address (a block holding
//!   a forwarded port is never handed to a worker; the rules decide).
//!
//! Blocks are claimed by a worker's allocator when it needs a port there
//! (one compare-and-swap per block, not per session) and given back when
//! every port of the block has been free for the hold-down
//! (`port_block_hold_down`). The map is one byte per (address, protocol,
//! block): `FREE`, `FORWARDS` or the owner worker + 1. Reading it is a
//! plain atomic load, so every worker can dispatch without a lock.

use core::net::Ipv4Addr;

use net::{Classified, L3Kind, L4Kind, icmpv4, ipv4};

use crate::FastMap as HashMap;
use crate::alloc::keyed_hash;
use crate::config::NatConfig;
use crate::portset::BLOCK_PORTS;
use crate::sync::{AtomicU8, AtomicU64, Ordering};

/// Blocks per (address, protocol): 65 536 ports / 64.
pub const BLOCKS: usize = 1024;
/// Most workers a block map can name.
pub const MAX_WORKERS: usize = 250;

const FREE: u8 = 0;
const FORWARDS: u8 = u8::MAX;

/// Who owns a block, as read from the map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockOwner {
    /// No worker: no session can use a port of it.
    Free,
    /// Holds a forwarded port: the port-forward rules decide.
    Forwards,
    Worker(usize),
}

/// Counters of the block map (for stats).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct BlockStats {
    /// Blocks owned by a worker now.
    pub owned: u64,
    /// Claims that succeeded since start.
    pub claimed: u64,
    /// Blocks given back since start.
    pub released: u64,
}

/// The shared block → owner map of one NAT configuration, for `workers`
/// workers. Built once; only the owner bytes change.
#[derive(Debug)]
pub struct PortBlocks {
    owners: Box<[AtomicU8]>,
    /// Pool address → address index (the allocator's order).
    index: HashMap<Ipv4Addr, usize>,
    workers: usize,
    /// Seed of the inside-host → worker hash.
    seed: u64,
    inside: crate::config::InsideSet,
    forwards: Box<[Forward]>,
    claimed: AtomicU64,
    released: AtomicU64,
}

/// A port forward as dispatch needs it: (protocol, external address,
/// first port, last port, inside address).
type Forward = (u8, Ipv4Addr, u16, u16, Ipv4Addr);

#[inline]
fn proto_slot(proto: u8) -> Option<usize> {
    match proto {
        6 => Some(0),
        17 => Some(1),
        1 => Some(2),
        _ => None,
    }
}

impl PortBlocks {
    /// The map for `cfg` (validated) and `workers` workers (1..=
    /// [`MAX_WORKERS`], clamped): every block free except those holding
    /// a forwarded port. Cost O(addresses × 3 072) bytes.
    #[must_use]
    pub fn new(cfg: &NatConfig, workers: usize) -> Self {
        let addrs = crate::alloc::pool_addresses(cfg);
        let index: HashMap<Ipv4Addr, usize> = addrs
            .iter()
            .enumerate()
            .map(|(i, (a, _))| (*a, i))
            .collect();
        let owners = (0..addrs.len() * 3 * BLOCKS)
            .map(|_| AtomicU8::new(FREE))
            .collect::<Box<[_]>>();
        let mut forwards = Vec::new();
        for r in &cfg.port_forwards {
            let proto = r.protocol.number();
            forwards.push((
                proto,
                r.external,
                r.external_ports.first,
                r.external_ports.last,
                r.inside,
            ));
            if let (Some(&ai), Some(pi)) = (index.get(&r.external), proto_slot(proto)) {
                let (a, b) = (
                    r.external_ports.first / BLOCK_PORTS,
                    r.external_ports.last / BLOCK_PORTS,
                );
                for blk in a..=b {
                    owners[(ai * 3 + pi) * BLOCKS + usize::from(blk)]
                        .store(FORWARDS, Ordering::Relaxed);
                }
            }
        }
        Self {
            owners,
            index,
            workers: workers.clamp(1, MAX_WORKERS),
            seed: keyed_hash(cfg.seed, 0x006f_776e_6572),
            inside: cfg.inside_set(),
            forwards: forwards.into_boxed_slice(),
            claimed: AtomicU64::new(0),
            released: AtomicU64::new(0),
        }
    }

    /// Number of workers.
    #[must_use]
    pub fn workers(&self) -> usize {
        self.workers
    }

    fn slot(&self, ai: usize, pi: usize, block: u16) -> Option<&AtomicU8> {
        self.owners.get((ai * 3 + pi) * BLOCKS + usize::from(block))
    }

    /// Owner of block `block` of (address index `ai`, protocol slot `pi`).
    #[must_use]
    pub(crate) fn owner_at(&self, ai: usize, pi: usize, block: u16) -> BlockOwner {
        match self.slot(ai, pi, block).map(|s| s.load(Ordering::Acquire)) {
            None | Some(FREE) => BlockOwner::Free,
            Some(FORWARDS) => BlockOwner::Forwards,
            Some(w) => BlockOwner::Worker(usize::from(w - 1)),
        }
    }

    /// Owner of the block holding (`proto`, `addr`, `port`); `Free` for
    /// an address outside the pool.
    #[must_use]
    pub fn owner(&self, proto: u8, addr: Ipv4Addr, port: u16) -> BlockOwner {
        match (self.index.get(&addr), proto_slot(proto)) {
            (Some(&ai), Some(pi)) => self.owner_at(ai, pi, port / BLOCK_PORTS),
            _ => BlockOwner::Free,
        }
    }

    /// Claim a block for `worker`: true if it was free (now the worker's)
    /// or is the worker's already. One compare-and-swap.
    pub(crate) fn claim(&self, ai: usize, pi: usize, block: u16, worker: usize) -> bool {
        let Some(s) = self.slot(ai, pi, block) else {
            return false;
        };
        let me = (worker + 1) as u8;
        match s.compare_exchange(FREE, me, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => {
                self.claimed.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(cur) => cur == me,
        }
    }

    /// Give a block of `worker` back. False (nothing changed) if the
    /// worker does not own it.
    pub(crate) fn release(&self, ai: usize, pi: usize, block: u16, worker: usize) -> bool {
        let Some(s) = self.slot(ai, pi, block) else {
            return false;
        };
        let me = (worker + 1) as u8;
        let ok = s
            .compare_exchange(me, FREE, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if ok {
            self.released.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    /// Claim and release counts. O(1).
    #[must_use]
    pub fn stats(&self) -> BlockStats {
        let claimed = self.claimed.load(Ordering::Relaxed);
        let released = self.released.load(Ordering::Relaxed);
        BlockStats {
            owned: claimed.saturating_sub(released),
            claimed,
            released,
        }
    }

    fn is_inside(&self, ip: Ipv4Addr) -> bool {
        self.inside.contains(ip)
    }

    /// The worker that owns the sessions of inside host `host`.
    #[must_use]
    pub fn host_owner(&self, host: Ipv4Addr) -> usize {
        let h = keyed_hash(self.seed, u64::from(u32::from(host)));
        ((u128::from(h) * self.workers as u128) >> 64) as usize
    }

    /// The owner of an external endpoint: its block's worker, the rule's
    /// inside host's worker for a forwarded port, `None` when no worker
    /// owns it (no session can match: any worker may answer).
    #[must_use]
    pub fn external_owner(&self, proto: u8, addr: Ipv4Addr, port: u16) -> Option<usize> {
        let forwards = || {
            self.forwards
                .iter()
                .find(|f| f.0 == proto && f.1 == addr && (f.2..=f.3).contains(&port))
                .map(|f| self.host_owner(f.4))
        };
        match self.owner(proto, addr, port) {
            BlockOwner::Worker(w) => Some(w),
            BlockOwner::Forwards => forwards(),
            BlockOwner::Free if !self.index.contains_key(&addr) => forwards(),
            BlockOwner::Free => None,
        }
    }

    /// The worker that owns the session of IPv4 frame `frame` (classified
    /// as `cls`) arriving from `inside` (true) or outside; `None` when no
    /// session is involved or none can match (the receiving worker
    /// decides: untouched traffic, an unowned port, a non-first fragment
    /// from outside). Reads the headers only. O(forward rules) at worst.
    #[must_use]
    pub fn owner_of(&self, frame: &[u8], cls: &Classified, inside: bool) -> Option<usize> {
        if cls.l3 != L3Kind::Ipv4 || self.workers == 1 {
            return None;
        }
        let l3 = usize::from(cls.l3_offset);
        let ip = ipv4::Packet::new_unchecked(frame.get(l3..l3 + 20)?);
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        let icmp_error = cls.l4 == L4Kind::Icmpv4
            && cls.icmp_type_code.is_some_and(|(t, _)| icmpv4::is_error(t));
        if icmp_error {
            // By the quoted packet: ours going out (outside: its source is
            // the external endpoint) or coming in (inside: its destination
            // is the inside host).
            let t = net::rewrite::icmpv4_embedded_tuple(frame, cls).ok()?;
            let t = crate::Tuple::from_five(&t)?;
            return if inside {
                self.is_inside(t.dst).then(|| self.host_owner(t.dst))
            } else {
                self.external_owner(t.proto, t.src, t.sport)
            };
        }
        if inside {
            return self.is_inside(src).then(|| self.host_owner(src));
        }
        let port = match (cls.l4, cls.tuple) {
            (L4Kind::Tcp | L4Kind::Udp, Some(t)) => t.dst_port,
            (L4Kind::Icmpv4, _) => {
                let l4 = usize::from(cls.l4_offset);
                let end = usize::from(cls.l3_end).min(frame.len());
                if end < l4 + 8 {
                    return None;
                }
                icmpv4::Packet::new_unchecked(&frame[l4..end]).echo_ident()
            }
            _ => return None,
        };
        self.external_owner(ip.protocol(), dst, port)
    }
}
