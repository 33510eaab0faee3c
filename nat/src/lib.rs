//! `nat`: masquerade (source NAT) and port forwarding (destination NAT).
//!
//! [`Nat::process`] takes a classified frame, the side it arrived on and
//! `now`, rewrites it in place and returns a [`Verdict`]. Sessions hold two
//! keys (original direction and reply direction) in one single-writer
//! session table ([`flow_entry::Shard`]) that the `Nat` owns. Masquerade
//! sessions share a refcounted **mapping** (inside ip:port → external
//! ip:port, the `mapping` module): the mapping and its port live while any
//! session uses it (endpoint-independent mapping, RFC 4787 REQ-1), and the
//! table's release hook drops the session's reference exactly once,
//! whatever removes the session; the last reference frees the port.
//!
//! One writer: every packet method takes `&mut self`; there is no lock and
//! no atomic read-modify-write inside. Cost: an established packet costs
//! one session lookup (index bucket, then the entry) plus an in-place
//! rewrite with incremental checksums; a hairpinned packet two lookups.
//!
//! See `nat/README.md` for the RFC requirement table.
#![deny(unsafe_code)]

pub mod alloc;
pub mod blocks;
pub mod config;
mod control;
mod create;
pub mod frag;
mod fragments;
mod icmp;
mod mapping;
pub mod pkt;
pub mod portset;
mod sync;
pub mod synhold;
pub mod tcp;
mod verdict;

pub use flow_entry::{FlowTableConfig, ReleaseReason, Timestamp};

/// Hash map with a fast keyed hasher (foldhash, per-process random seed).
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

use core::net::Ipv4Addr;

use net::rewrite as rw;
use net::{Classified, L3Kind, L4Kind, icmpv4, ip_protocol, ipv4};
use serde::Serialize;

pub use alloc::{AllocError, AllocStats, Allocator};
pub use config::{
    ConfigError, ConfigProblem, FilteringBehavior, ForwardProtocol, Ipv4Prefix, MappingBehavior,
    NatConfig, PortForward, PortRange, UnsolicitedSyn,
};
use flow_entry::{Direction, EntryId, Shard, ShardInsertError};
use std::sync::Arc;

use blocks::PortBlocks;
pub use control::{NatStats, SessionFilter, SessionInfo};
pub use frag::FragStats;
use frag::{FragKey, FragNext, FragTable, FragXlat};
pub use mapping::{MAPPING_EVENTS_MAX, MappingEvent, MappingEventKind};
use mapping::{MapKey, Pool};
pub use pkt::Tuple;
use tcp::{Dir, TcpTrack, TimeoutClass};
pub use verdict::{DropReason, Side, Verdict};

/// A NAT session (the flow table's value).
#[derive(Debug, Clone)]
pub struct Session {
    /// Tuple of the first packet as it arrived (forward key).
    pub orig: Tuple,
    /// Tuple after translation; `xlat.reversed()` is the reply key.
    pub xlat: Tuple,
    /// Side the forward key is looked up from.
    pub orig_side: Side,
    pub kind: SessionKind,
    tcp: TcpTrack,
    /// Holds a mapping reference (masquerade and inbound-EIF sessions); the
    /// mapping key is derived from `orig` (kept out of the session to keep
    /// the table's value small: 32 bytes).
    mapped: bool,
}

/// How a session was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SessionKind {
    /// Outbound source NAT.
    Masquerade,
    /// Inbound to a mapped port under endpoint-independent filtering.
    InboundFiltered,
    /// Port-forward (destination NAT) rule.
    PortForward,
}

/// ICMP port unreachable (type 3, code 3) for a held unsolicited SYN of
/// connection `k`, from the NAT address it was sent to, quoting it (RFC
/// 5382 REQ-4): an Ethernet frame with zero MACs for the dataplane to
/// route ([`Nat::take_originated`]).
fn syn_refused(k: &synhold::SynKey, quote: &[u8]) -> Vec<u8> {
    let (remote, _, nat_ip, _) = *k;
    net::build::ipv4_frame(
        &net::build::L2::default(),
        ipv4::Repr::new(nat_ip, remote, ip_protocol::ICMP, 0),
        net::build::L4::Icmpv4(icmpv4::Repr::DstUnreachable {
            code: 3,
            next_hop_mtu: 0,
            data: quote,
        }),
    )
}

/// The session-table key of a tuple: the IPv4 5-tuple packed into 104 bits
/// (a bijection of the fields, so equal keys are equal tuples).
#[inline(always)]
fn key(t: &Tuple) -> u128 {
    (u128::from(u32::from(t.src)) << 72)
        | (u128::from(u32::from(t.dst)) << 40)
        | (u128::from(t.sport) << 24)
        | (u128::from(t.dport) << 8)
        | u128::from(t.proto)
}

/// A session-table key and its hash ([`Shard::hash`]).
type KeyHash = (u128, u64);

/// The translated tuple of an outbound session of packet `t` on external
/// endpoint (`ip`, `port`) (an ICMP query's identifier is both ports).
#[inline(always)]
fn outbound_xlat(t: &Tuple, ip: Ipv4Addr, port: u16) -> Tuple {
    Tuple {
        src: ip,
        sport: port,
        dport: if t.proto == ip_protocol::ICMP {
            port
        } else {
            t.dport
        },
        ..*t
    }
}

const N_REL: usize = ReleaseReason::ALL.len();
const N_DROP: usize = DropReason::ALL.len();

/// Frames of a burst whose sessions are prefetched together.
const PREFETCH_CHUNK: usize = 64;

/// Per-NAT counters: plain integers (one writer; readers go through
/// whatever gives them the NAT, never concurrently with it).
#[derive(Default)]
struct Counters {
    drops: [u64; N_DROP],
    released: [u64; N_REL],
    created: u64,
    hairpinned: u64,
    icmp_errors: u64,
    fragments: u64,
    untouched: u64,
}

/// The release hook of the session table: counts the reason and drops the
/// session's mapping reference (the last one frees the port). Every way a
/// session leaves goes through it, exactly once (the table moves the value
/// out once).
fn releaser<'a>(
    pool: &'a mut Pool,
    released: &'a mut [u64; N_REL],
    apdm: bool,
    now: u64,
) -> impl FnMut(Session, ReleaseReason) + 'a {
    move |s: Session, why: ReleaseReason| {
        released[why.index()] += 1;
        if let Some(k) = &map_key(&s, apdm) {
            pool.unref(k, s.orig.dst, now);
        }
    }
}

/// The NAT of one worker: its sessions (a single-writer
/// [`flow_entry::Shard`]: forward and reply key of every session), its
/// mappings, port allocator, fragment records and counters. Every packet
/// method takes `&mut self`: no lock, no atomic read-modify-write. A
/// process with several workers shares one `Nat` behind the caller's lock
/// until sessions are owned per worker (see `docs/pipeline.md`).
pub struct Nat {
    cfg: NatConfig,
    table: Shard<u128, Session>,
    /// The table's tick (deadline granularity), ns.
    tick_ns: u64,
    /// Address-and-port-dependent mapping (mapping keys carry the remote).
    apdm: bool,
    pool: Pool,
    counters: Counters,
    frags: FragTable,
    /// Translated fragments released from the hold ([`Nat::take_released`]).
    released: Vec<Vec<u8>>,
    /// Frames the NAT itself sends: answers to held SYNs
    /// ([`Nat::take_originated`]).
    originated: Vec<Vec<u8>>,
    /// Highest `now` seen by polls and session creation (ns): the time
    /// [`Nat::sessions_clear`] releases at (it has no packet time).
    last_now: u64,
    /// `cfg.inside` with its masks computed once.
    inside: config::InsideSet,
    /// Several workers: the shared port-block map and this worker's index.
    blocks: Option<(Arc<PortBlocks>, usize)>,
}

impl core::fmt::Debug for Nat {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Nat")
            .field("sessions", &self.table.len())
            .finish_non_exhaustive()
    }
}

/// A packet parsed up to its session lookup.
#[derive(Clone, Copy)]
struct Prep {
    tuple: Tuple,
    flags: u8,
    icmp_type: Option<u8>,
}

/// Outcome of [`Nat::prepare`].
enum Pre {
    /// Decided without a session lookup.
    Done(Verdict),
    /// Needs the session lookup.
    Go(Prep),
}

/// Result of a stage on one packet.
#[derive(Clone, Copy)]
enum Step {
    /// Translated from → to (rewrite needed).
    Xlat(Tuple),
    /// No NAT applies.
    Untouched,
    Drop(DropReason),
}

impl Nat {
    /// Build a NAT from a configuration (validated here) and table sizing
    /// (`table_cfg.capacity` sessions at most; its `shards` is not used:
    /// the NAT owns one single-writer shard).
    ///
    /// # Errors
    /// The configuration's first problem ([`NatConfig::validate`]), or a
    /// `table` error if `table_cfg` does not validate.
    pub fn new(cfg: NatConfig, table_cfg: FlowTableConfig) -> Result<Nat, ConfigError> {
        Self::build(cfg, table_cfg, None)
    }

    /// The NAT of worker `worker` of `blocks.workers()`: the sessions this
    /// worker owns (see [`blocks`]), external ports from the blocks it
    /// claims in the shared `blocks` map.
    ///
    /// # Errors
    /// As [`Nat::new`].
    pub fn for_worker(
        cfg: NatConfig,
        table_cfg: FlowTableConfig,
        blocks: Arc<PortBlocks>,
        worker: usize,
    ) -> Result<Nat, ConfigError> {
        Self::build(cfg, table_cfg, Some((blocks, worker)))
    }

    fn build(
        cfg: NatConfig,
        table_cfg: FlowTableConfig,
        blocks: Option<(Arc<PortBlocks>, usize)>,
    ) -> Result<Nat, ConfigError> {
        cfg.validate()?;
        let table = Shard::new(table_cfg.capacity, &table_cfg, Timestamp::ZERO).map_err(|e| {
            ConfigError {
                path: "table".into(),
                problem: ConfigProblem::Table(e.to_string()),
            }
        })?;
        // A mapping lives while a session holds it, plus the one a session
        // being inserted takes before the insert.
        let alloc = match &blocks {
            Some((b, w)) => Allocator::for_worker(&cfg, b.clone(), *w),
            None => Allocator::new(&cfg),
        };
        let pool = Pool::new(
            alloc,
            table_cfg.capacity.saturating_add(1),
            cfg.filtering == FilteringBehavior::AddressDependent,
            cfg.log_mappings,
        );
        Ok(Nat {
            tick_ns: u64::try_from(table_cfg.tick.as_nanos()).unwrap_or(u64::MAX),
            apdm: cfg.mapping == MappingBehavior::AddressAndPortDependent,
            table,
            pool,
            counters: Counters::default(),
            frags: FragTable::new(&cfg.fragments),
            released: Vec::new(),
            originated: Vec::new(),
            last_now: 0,
            inside: cfg.inside_set(),
            blocks,
            cfg,
        })
    }

    /// The configuration in force.
    #[must_use]
    pub fn config(&self) -> &NatConfig {
        &self.cfg
    }

    fn drop_(&mut self, r: DropReason) -> Verdict {
        let i = DropReason::ALL.iter().position(|&x| x == r).unwrap_or(0);
        self.counters.drops[i] += 1;
        Verdict::Drop(r)
    }

    fn timeout(&self, proto: u8, class: TimeoutClass) -> u64 {
        let t = &self.cfg.timeouts;
        let s = match (proto, class) {
            (ip_protocol::TCP, TimeoutClass::Established) => t.tcp_established,
            (ip_protocol::TCP, TimeoutClass::Transitory) => t.tcp_transitory,
            (ip_protocol::TCP, TimeoutClass::TimeWait) => t.tcp_time_wait,
            (ip_protocol::UDP, _) => t.udp,
            _ => t.icmp,
        };
        s.saturating_mul(1_000_000_000)
    }

    /// Whether `ip` is a pool address. O(pool prefixes).
    fn is_pool_address(&self, ip: Ipv4Addr) -> bool {
        self.cfg
            .pools
            .iter()
            .any(|p| p.addresses.iter().any(|a| a.contains(ip)))
    }

    /// Pool address or port-forward external address. O(prefixes + rules).
    fn is_nat_address(&self, ip: Ipv4Addr) -> bool {
        self.is_pool_address(ip) || self.cfg.port_forwards.iter().any(|r| r.external == ip)
    }

    /// Look `k` up at `now` (a session past its deadline is released on
    /// the spot and reported as a miss).
    #[inline]
    fn lookup(&mut self, k: u128, h: u64, now: u64) -> Option<(EntryId, Direction)> {
        let mut rel = releaser(&mut self.pool, &mut self.counters.released, self.apdm, now);
        self.table
            .lookup(&k, h, Timestamp::from_nanos(now), &mut rel)
    }

    /// Translate one frame in place.
    ///
    /// `cls` must describe `frame` (from `net::classify`). IPv6 and non-IP
    /// frames are left untouched (`Forward`). Never panics on any input.
    /// Cost: one session lookup for an established session (two when
    /// hairpinned); see [`Nat::process_burst`] for the batched form.
    pub fn process(
        &mut self,
        frame: &mut [u8],
        cls: &Classified,
        ingress: Side,
        now: Timestamp,
    ) -> Verdict {
        self.process_at(frame, cls, ingress, now.as_nanos(), None)
    }

    /// [`Nat::process`] at `now` ns, with the frame's lookup key and its
    /// hash when the burst's prefetch computed them already (`kh` must be
    /// what `prefetch_key` returned for this frame).
    #[inline]
    fn process_at(
        &mut self,
        frame: &mut [u8],
        cls: &Classified,
        ingress: Side,
        now: u64,
        kh: Option<KeyHash>,
    ) -> Verdict {
        match self.prepare(frame, cls, ingress, now) {
            Pre::Done(v) => v,
            Pre::Go(p) => self.finish(frame, cls, &p, ingress, now, kh),
        }
    }

    /// First stage of prefetching the session a later [`Nat::process`] of
    /// `frame` will look up: for a TCP/UDP segment or ICMP query, hashes
    /// its key and starts loading the index bucket it probes first.
    /// `None` for frames whose lookup is not by their own tuple
    /// (fragments, ICMP errors, other protocols, IPv6). A hint: it reads
    /// `frame`, changes nothing, counts nothing. Cost: one hash.
    #[inline]
    pub fn prefetch(&self, frame: &[u8], cls: &Classified) -> Option<u64> {
        self.prefetch_key(frame, cls).map(|(_, h)| h)
    }

    /// [`Nat::prefetch`], keeping the key as well (the lookup reuses both).
    #[inline]
    fn prefetch_key(&self, frame: &[u8], cls: &Classified) -> Option<KeyHash> {
        let t = lookup_tuple(frame, cls)?;
        let k = key(&t);
        let h = self.table.hash(&k);
        self.table.prefetch_index(h);
        Some((k, h))
    }

    /// Second stage: reads the index bucket of `h` (from
    /// [`Nat::prefetch`]) and starts loading the session it names. A hint.
    #[inline]
    pub fn prefetch_entry(&self, h: u64) {
        self.table.prefetch_entry(h);
    }

    /// Whether a live session matches `frame`'s own tuple (TCP/UDP, ICMP
    /// echo) at `now`; `false` for frames not looked up by their tuple. A
    /// lookup only: no state, refresh or counter changes (a session found
    /// past its deadline is released, as any lookup does). O(1).
    pub fn has_session(&mut self, frame: &[u8], cls: &Classified, now: Timestamp) -> bool {
        let Some(t) = lookup_tuple(frame, cls) else {
            return false;
        };
        let k = key(&t);
        let h = self.table.hash(&k);
        self.lookup(k, h, now.as_nanos()).is_some()
    }

    /// Translate a burst of frames arriving on one side: exactly the result
    /// of calling [`Nat::process`] on each in order (it does), with the
    /// sessions of up to 64 frames prefetched first in two stages
    /// ([`Nat::prefetch`], then [`Nat::prefetch_entry`]), so the cache
    /// misses of the burst's lookups overlap instead of forming one
    /// dependent chain per frame. `verdicts[i]` is set for `frames[i]`;
    /// extra entries of the longer slices are ignored.
    pub fn process_burst(
        &mut self,
        frames: &mut [&mut [u8]],
        cls: &[Classified],
        ingress: Side,
        now: Timestamp,
        verdicts: &mut [Verdict],
    ) {
        let n = frames.len().min(cls.len()).min(verdicts.len());
        let now = now.as_nanos();
        let mut start = 0;
        let mut hashes: [Option<KeyHash>; PREFETCH_CHUNK] = [None; PREFETCH_CHUNK];
        while start < n {
            let end = (start + PREFETCH_CHUNK).min(n);
            let hashes = &mut hashes[..end - start];
            if end - start > 1 {
                for i in start..end {
                    hashes[i - start] = self.prefetch_key(frames[i], &cls[i]);
                }
                for (_, h) in hashes.iter().flatten() {
                    self.table.prefetch_entry(*h);
                }
            } else {
                hashes[0] = None;
            }
            for i in start..end {
                verdicts[i] = self.process_at(frames[i], &cls[i], ingress, now, hashes[i - start]);
            }
            start = end;
        }
    }

    /// Everything before the session lookup: parse, classify NAT-wise, and
    /// handle what needs no lookup by tuple (fragments, ICMP errors, other
    /// protocols).
    fn prepare(&mut self, frame: &mut [u8], cls: &Classified, ingress: Side, now: u64) -> Pre {
        if cls.l3 != L3Kind::Ipv4 {
            return Pre::Done(Verdict::Forward);
        }
        let l3 = usize::from(cls.l3_offset);
        let l4 = usize::from(cls.l4_offset);
        let end = usize::from(cls.l3_end).min(frame.len());
        if frame.len() < l3 + 20 || end < l4 {
            return Pre::Done(self.drop_(DropReason::Malformed));
        }
        let (ip_src, ip_dst, proto) = {
            let ip = ipv4::Packet::new_unchecked(&frame[l3..]);
            (ip.src_addr(), ip.dst_addr(), ip.protocol())
        };

        if cls.l4 == L4Kind::Fragment {
            return Pre::Done(
                self.non_first_fragment(frame, cls, l3, ip_src, ip_dst, proto, ingress, now),
            );
        }
        let tuple = match (cls.l4, cls.tuple) {
            (L4Kind::Tcp | L4Kind::Udp, Some(t)) => {
                let Some(t) = Tuple::from_five(&t) else {
                    return Pre::Done(Verdict::Forward);
                };
                t
            }
            (L4Kind::Icmpv4, _) => {
                let Some((ty, _code)) = cls.icmp_type_code else {
                    return Pre::Done(self.drop_(DropReason::Malformed));
                };
                if icmpv4::is_error(ty) {
                    return Pre::Done(self.icmp_error(frame, cls, ip_src, ip_dst, ingress, now));
                }
                if !icmpv4::is_query(ty) || end < l4 + 8 {
                    return Pre::Done(self.other_traffic(
                        ip_src,
                        ip_dst,
                        ingress,
                        DropReason::UnsupportedIcmp,
                    ));
                }
                let id = icmpv4::Packet::new_unchecked(&frame[l4..end]).echo_ident();
                Tuple {
                    src: ip_src,
                    dst: ip_dst,
                    proto: ip_protocol::ICMP,
                    sport: id,
                    dport: id,
                }
            }
            (L4Kind::Tcp | L4Kind::Udp, None) => {
                return Pre::Done(self.drop_(DropReason::Malformed));
            }
            _ => {
                return Pre::Done(self.other_traffic(
                    ip_src,
                    ip_dst,
                    ingress,
                    DropReason::UnsupportedProtocol,
                ));
            }
        };
        let flags = if tuple.proto == ip_protocol::TCP {
            frame
                .get(l4..end)
                .filter(|seg| seg.len() >= net::tcp::HEADER_LEN)
                .map_or(0, |seg| net::tcp::Packet::new_unchecked(seg).flags() as u8)
        } else {
            0
        };
        Pre::Go(Prep {
            tuple,
            flags,
            icmp_type: cls.icmp_type_code.map(|(t, _)| t),
        })
    }

    /// Everything from the lookup on: lookup or creation, hairpin, rewrite,
    /// fragment record.
    fn finish(
        &mut self,
        frame: &mut [u8],
        cls: &Classified,
        p: &Prep,
        ingress: Side,
        now: u64,
        kh: Option<KeyHash>,
    ) -> Verdict {
        let Prep {
            tuple,
            flags,
            icmp_type,
        } = *p;
        let mut step = self.stage(&tuple, ingress, flags, icmp_type, now, kh);
        let mut hairpin = false;
        if let Step::Xlat(to) = step
            && ingress == Side::Inside
            && self.cfg.hairpinning
            && self.is_nat_address(to.dst)
        {
            // Hairpin: the translated packet re-enters as if from outside,
            // at the worker that owns its destination.
            if let Some((b, me)) = &self.blocks
                && let Some(w) = b.external_owner(to.proto, to.dst, to.dport)
                && w != *me
            {
                if rw::rewrite_ipv4_src_dst(frame, cls, to.src, to.sport, tuple.dst, tuple.dport)
                    .is_err()
                {
                    return self.drop_(DropReason::Malformed);
                }
                if let Some(fi) = cls.frag
                    && fi.more_fragments
                {
                    let half = Tuple {
                        dst: tuple.dst,
                        ..to
                    };
                    let _ = self.first_fragment(
                        tuple,
                        half,
                        fi.id as u16,
                        FragNext::Hairpin(w as u16),
                        now,
                    );
                }
                return Verdict::HandOff(w as u16);
            }
            hairpin = true;
            step = match self.stage(&to, Side::Outside, flags, icmp_type, now, None) {
                Step::Xlat(to2) => Step::Xlat(to2),
                Step::Untouched => Step::Drop(DropReason::NoSession),
                d @ Step::Drop(_) => d,
            };
        }
        match step {
            Step::Untouched => {
                self.counters.untouched += 1;
                Verdict::Forward
            }
            Step::Drop(r @ (DropReason::NoSession | DropReason::Filtered))
                if ingress == Side::Outside
                    && !hairpin
                    && tuple.proto == ip_protocol::TCP
                    && flags & (tcp::flags::SYN | tcp::flags::ACK | tcp::flags::RST)
                        == tcp::flags::SYN
                    && self.cfg.unsolicited_syn == UnsolicitedSyn::Hold =>
            {
                // RFC 5382 REQ-4: no answer for 6 s; see `synhold`.
                let l3 = usize::from(cls.l3_offset);
                let end = usize::from(cls.l3_end).min(frame.len());
                if let Some(ip) = frame.get(l3..end) {
                    let key = (tuple.src, tuple.sport, tuple.dst, tuple.dport);
                    self.pool.syn.hold(key, ip, now);
                }
                self.drop_(r)
            }
            Step::Drop(r) => self.drop_(r),
            Step::Xlat(to) => {
                // The whole translated tuple in one pass (one checksum delta):
                // unchanged fields cost nothing, hairpinned packets change both.
                if rw::rewrite_ipv4_src_dst(frame, cls, to.src, to.sport, to.dst, to.dport).is_err()
                {
                    return self.drop_(DropReason::Malformed);
                }
                if hairpin {
                    self.counters.hairpinned += 1;
                }
                if let Some(fi) = cls.frag
                    && fi.more_fragments
                {
                    let _ = self.first_fragment(tuple, to, fi.id as u16, FragNext::Here, now);
                }
                Verdict::Forward
            }
        }
    }

    /// The second half of a hairpin another worker started
    /// ([`Verdict::HandOff`]): `frame` (source already translated) is
    /// looked up as if it came from outside, and its destination
    /// translated. Same result as when one worker does both halves.
    pub fn process_hairpin(
        &mut self,
        frame: &mut [u8],
        cls: &Classified,
        now: Timestamp,
    ) -> Verdict {
        let now = now.as_nanos();
        let p = match self.prepare(frame, cls, Side::Outside, now) {
            Pre::Done(v) => return v,
            Pre::Go(p) => p,
        };
        let t = p.tuple;
        match self.stage(&t, Side::Outside, p.flags, p.icmp_type, now, None) {
            Step::Xlat(to) => {
                if rw::rewrite_ipv4_src_dst(frame, cls, to.src, to.sport, to.dst, to.dport).is_err()
                {
                    return self.drop_(DropReason::Malformed);
                }
                self.counters.hairpinned += 1;
                if let Some(fi) = cls.frag
                    && fi.more_fragments
                {
                    let _ = self.first_fragment(t, to, fi.id as u16, FragNext::Here, now);
                }
                Verdict::Forward
            }
            Step::Untouched => self.drop_(DropReason::NoSession),
            Step::Drop(r) => self.drop_(r),
        }
    }

    /// Traffic NAT cannot translate: untouched if it does not involve NAT
    /// addresses / masqueraded sources, else a counted drop.
    fn other_traffic(
        &mut self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        ingress: Side,
        reason: DropReason,
    ) -> Verdict {
        let involved = match ingress {
            Side::Inside => self.is_inside(src) && !self.is_inside(dst),
            Side::Outside => self.is_nat_address(dst),
        };
        if involved {
            self.drop_(reason)
        } else {
            self.counters.untouched += 1;
            Verdict::Forward
        }
    }

    /// One NAT stage for a packet with ports: session lookup, else creation.
    /// `kh`: `key(t)` and its hash if the caller has them.
    #[inline]
    fn stage(
        &mut self,
        t: &Tuple,
        ingress: Side,
        flags: u8,
        icmp_type: Option<u8>,
        now: u64,
        kh: Option<KeyHash>,
    ) -> Step {
        let (k, h) = kh.unwrap_or_else(|| {
            let k = key(t);
            (k, self.table.hash(&k))
        });
        debug_assert_eq!(k, key(t), "a prefetched key of another tuple");
        debug_assert_eq!(h, self.table.hash(&k), "a prefetch hash of another key");
        if let Some((id, dir)) = self.lookup(k, h, now) {
            // Established path: TCP state, refresh, translation target.
            return self.on_hit(id, dir, ingress, flags, now);
        }
        // The packet's key and hash go on to the insert (it is the new
        // session's forward key, except for inbound-filtered sessions).
        let pk: KeyHash = (k, h);
        match ingress {
            Side::Inside => self.create_outbound(t, pk, flags, icmp_type, now),
            Side::Outside => self.create_inbound(t, pk, flags, now),
        }
    }

    /// A session hit: side check, TCP state, refresh, translation target.
    /// O(1).
    fn on_hit(&mut self, id: EntryId, dir: Direction, ingress: Side, flags: u8, now: u64) -> Step {
        let reverse = dir == Direction::Reverse;
        let Some(s) = self.table.get_mut(id) else {
            return Step::Drop(DropReason::NoSession);
        };
        // The forward key is only valid from the side the session was
        // opened on, the reply key only from the other side: a packet
        // from outside with an inside source (spoofed) is not translated.
        let expected = match (s.orig_side, reverse) {
            (side, false) => side,
            (Side::Inside, true) => Side::Outside,
            (Side::Outside, true) => Side::Inside,
        };
        if expected != ingress {
            return Step::Drop(DropReason::WrongSide);
        }
        let (to, dir) = if reverse {
            (s.orig.reversed(), Dir::Reply)
        } else {
            (s.xlat, Dir::Orig)
        };
        let proto = s.orig.proto;
        let class = if proto == ip_protocol::TCP {
            s.tcp.on_packet(dir, flags)
        } else {
            TimeoutClass::Established
        };
        // A reply confirms the session (unconfirmed ones are the
        // table's first eviction candidates under pressure).
        if reverse && !self.table.is_confirmed(id) {
            self.table.confirm(id);
        }
        if let Some(d) = self.hit_deadline(proto, class, ingress, now)
            && let Some(cur) = self.table.expires_at(id)
            && self.deadline_moves(d, cur.as_nanos())
        {
            self.table.set_expires_at(id, Timestamp::from_nanos(d));
        }
        Step::Xlat(to)
    }

    /// The deadline a session hit at `now` refreshes to (`None`: no
    /// refresh), for a session of protocol `proto` in timeout class
    /// `class` (TCP's; `Established` for the others) hit from `ingress`.
    #[inline]
    fn hit_deadline(&self, proto: u8, class: TimeoutClass, ingress: Side, now: u64) -> Option<u64> {
        if proto == ip_protocol::UDP
            && ingress == Side::Outside
            && !self.cfg.timeouts.udp_inbound_refresh
        {
            return None;
        }
        Some(now.saturating_add(self.timeout(proto, class)))
    }

    /// Whether a hit stores deadline `d` over the current `cur`: only when
    /// it moves by a table tick or more (refresh: once per tick;
    /// shortening: at once).
    #[inline]
    fn deadline_moves(&self, d: u64, cur: u64) -> bool {
        d > cur.saturating_add(self.tick_ns) || d.saturating_add(self.tick_ns) < cur
    }

    /// [`NatConfig::is_inside`], from the precomputed masks. O(prefixes).
    #[inline]
    fn is_inside(&self, ip: Ipv4Addr) -> bool {
        self.inside.contains(ip)
    }
}

/// The tuple a frame's session is looked up by (TCP/UDP, ICMP query
/// request or reply), without side effects; `None` for anything else.
#[inline]
fn lookup_tuple(frame: &[u8], cls: &Classified) -> Option<Tuple> {
    if cls.l3 != L3Kind::Ipv4 {
        return None;
    }
    let t = match (cls.l4, cls.tuple) {
        (L4Kind::Tcp | L4Kind::Udp, Some(t)) => Tuple::from_five(&t)?,
        (L4Kind::Icmpv4, _) => {
            let (ty, _) = cls.icmp_type_code?;
            let l4 = usize::from(cls.l4_offset);
            let end = usize::from(cls.l3_end).min(frame.len());
            if !icmpv4::is_query(ty) || end < l4 + 8 || l4 < usize::from(cls.l3_offset) + 20 {
                return None;
            }
            let ip = ipv4::Packet::new_unchecked(frame.get(usize::from(cls.l3_offset)..)?);
            let id = icmpv4::Packet::new_unchecked(&frame[l4..end]).echo_ident();
            Tuple {
                src: ip.src_addr(),
                dst: ip.dst_addr(),
                proto: ip_protocol::ICMP,
                sport: id,
                dport: id,
            }
        }
        _ => return None,
    };
    Some(t)
}

/// The mapping a session references: derived from its original tuple
/// (inside endpoint; plus the remote under address-and-port-dependent
/// mapping). Endpoint-independent filtering requires endpoint-independent
/// mapping (validated), so inbound-created sessions derive it the same way.
fn map_key(s: &Session, apdm: bool) -> Option<MapKey> {
    s.mapped.then(|| MapKey {
        proto: s.orig.proto,
        in_ip: s.orig.src,
        in_port: s.orig.sport,
        remote: apdm.then_some((s.orig.dst, s.orig.dport)),
    })
}

#[cfg(test)]
mod size_tests {
    #[test]
    fn session_is_compact() {
        assert!(
            core::mem::size_of::<super::Session>() <= 32,
            "{}",
            core::mem::size_of::<super::Session>()
        );
    }

    #[test]
    fn keys_are_a_bijection_of_the_tuple() {
        use super::{Tuple, key};
        let t = Tuple {
            src: "10.0.0.1".parse().unwrap(),
            dst: "192.0.2.7".parse().unwrap(),
            proto: 17,
            sport: 40000,
            dport: 53,
        };
        let base = key(&t);
        let variants = [
            Tuple {
                src: "10.0.0.2".parse().unwrap(),
                ..t
            },
            Tuple {
                dst: "192.0.2.8".parse().unwrap(),
                ..t
            },
            Tuple { proto: 6, ..t },
            Tuple { sport: 40001, ..t },
            Tuple { dport: 54, ..t },
            t.reversed(),
        ];
        for v in variants {
            assert_ne!(key(&v), base, "{v:?}");
        }
        assert_eq!(key(&t), base);
    }
}
