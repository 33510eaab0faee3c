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
pub mod frag;
mod mapping;
pub mod pkt;
pub mod portset;
mod sync;
pub mod synhold;
pub mod tcp;

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
pub use frag::FragStats;
use frag::{FragKey, FragNext, FragTable, FragXlat};
pub use mapping::{MAPPING_EVENTS_MAX, MappingEvent, MappingEventKind};
use mapping::{MapKey, Pool};
pub use pkt::Tuple;
use tcp::{Dir, TcpTrack, TimeoutClass};

/// The side of the NAT a frame arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Side {
    Inside,
    Outside,
}

/// What to do with a processed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send on: the frame was rewritten in place (or left untouched when no
    /// NAT applies, e.g. inside-to-inside traffic or IPv6).
    Forward,
    /// Do not send this frame. [`DropReason::FragmentHeld`] is not a loss:
    /// NAT kept a copy and hands it back through [`Nat::take_released`].
    Drop(DropReason),
    /// Several workers: the first half of a hairpin is done (the source
    /// translated in place); the destination belongs to this worker's
    /// sessions, which finish it with [`Nat::process_hairpin`].
    HandOff(u16),
    /// Several workers: a later fragment of a datagram whose first fragment
    /// was handed to this worker ([`Nat::direct_fragment`]): hand it there
    /// unchanged, to be processed as received.
    Owner(u16),
}

macro_rules! reasons {
    ($($(#[$m:meta])* $v:ident = $n:literal,)*) => {
        /// Why a frame was dropped (each counted in [`NatStats::drops`]).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        #[serde(rename_all = "snake_case")]
        pub enum DropReason { $($(#[$m])* $v,)* }
        impl DropReason {
            /// Every reason, in counter order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$v,)*];
            /// Stable snake_case name (counter keys, JSON keys, metric
            /// labels).
            #[must_use]
            pub fn name(self) -> &'static str {
                match self { $(DropReason::$v => $n,)* }
            }
        }
    };
}

reasons! {
    /// Headers inconsistent or too short to translate.
    Malformed = "malformed",
    /// An IP protocol NAT cannot translate (not TCP, UDP or ICMP), from inside.
    UnsupportedProtocol = "unsupported_protocol",
    /// ICMP message from inside that is neither a query (echo, timestamp)
    /// nor a translatable error.
    UnsupportedIcmp = "unsupported_icmp",
    /// Unsolicited inbound traffic to a NAT address: no session, mapping or rule.
    NoSession = "no_session",
    /// Inbound traffic to a mapped port from a remote the mapping was not
    /// opened to (address-and-port-dependent filtering).
    Filtered = "filtered",
    /// TCP without a session whose first packet is not a SYN.
    TcpNotSyn = "tcp_not_syn",
    /// Inside host reached its port quota (RFC 6888 REQ-4). When
    /// `icmp_on_quota_exceeded` is set the dataplane should send ICMP 3/13.
    QuotaExceeded = "quota_exceeded",
    /// No free external port in the pool.
    PoolExhausted = "pool_exhausted",
    /// Session table refused the insert: the reply key belongs to another session.
    TableConflict = "table_conflict",
    /// Session table full and nothing evictable.
    TableFull = "table_full",
    /// ICMP error whose embedded packet matches no session.
    IcmpErrorNoSession = "icmp_error_no_session",
    /// Inbound port-forward traffic from a source the rule does not allow.
    SourceNotAllowed = "source_not_allowed",
    /// Inside packet to a NAT address while hairpinning is off.
    HairpinDisabled = "hairpin_disabled",
    /// The packet matched a session key from the wrong side (e.g. an inside
    /// source address arriving from outside): not translated.
    WrongSide = "wrong_side",
    /// Non-first fragment held until its first fragment arrives (not lost).
    FragmentHeld = "fragment_held",
    /// Non-first fragment dropped: the held-fragment budget is full.
    FragmentBudget = "fragment_budget",
    /// Several workers: a non-first fragment held before its first
    /// fragment, whose datagram turned out to be another worker's.
    FragmentOtherWorker = "fragment_other_worker",
    /// ICMP error whose ICMP checksum (over the whole message, checked
    /// when the frame holds all of it) is wrong: not translated (RFC 5508
    /// REQ-3).
    BadIcmpChecksum = "bad_icmp_checksum",
    /// ICMP error whose quoted (embedded) IPv4 header checksum is wrong:
    /// not translated (RFC 5508 REQ-3).
    BadEmbeddedChecksum = "bad_embedded_checksum",
}

/// RFC 5508 REQ-3 for an ICMPv4 error whose quote `icmp_error` already
/// located: the ICMP checksum over the whole message (skipped when the
/// error is itself a fragment, whose checksum covers the reassembled
/// message), then the quoted IPv4 header's checksum. One RFC 1071 sum
/// over the message; only errors about a session pay it.
fn icmp_error_checksums(frame: &[u8], cls: &Classified) -> Result<(), DropReason> {
    if rw::verify_l4(frame, cls).is_err() {
        return Err(DropReason::BadIcmpChecksum);
    }
    let l4 = usize::from(cls.l4_offset) + icmpv4::HEADER_LEN;
    let end = usize::from(cls.l3_end).min(frame.len());
    let ok = frame.get(l4..end).is_some_and(|q| {
        let ip = ipv4::Packet::new_unchecked(q);
        ip.check_header_len().is_ok() && ip.verify_checksum()
    });
    if ok {
        Ok(())
    } else {
        Err(DropReason::BadEmbeddedChecksum)
    }
}

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

/// Counter snapshot (serde).
#[derive(Debug, Clone, Serialize)]
pub struct NatStats {
    /// Live sessions (entries in the table). O(1).
    pub sessions_active: u64,
    /// External ports allocated (mappings).
    pub ports_in_use: u64,
    /// Live mappings.
    pub mappings: u64,
    pub created: u64,
    pub expired: u64,
    pub lazily_expired: u64,
    /// Shed by a shard draining above its high watermark.
    pub drained: u64,
    pub evicted: u64,
    pub removed: u64,
    pub teardown: u64,
    pub hairpinned: u64,
    pub icmp_errors_translated: u64,
    pub fragments_translated: u64,
    /// Frames forwarded without NAT (no NAT applies).
    pub untouched: u64,
    /// Drops by reason name (every reason present, zero or not).
    pub drops: std::collections::BTreeMap<&'static str, u64>,
    pub alloc: AllocStats,
    pub fragments: FragStats,
    /// Unsolicited SYNs held (RFC 5382 REQ-4, `unsolicited_syn = "hold"`).
    pub syn_hold: synhold::SynHoldStats,
    /// Mapping events lost because [`MAPPING_EVENTS_MAX`] were waiting.
    pub mapping_events_dropped: u64,
    /// Bytes the session table allocated (index, entries, wheel).
    pub table_bytes: u64,
}

/// Filter for [`Nat::sessions_scan`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SessionFilter {
    /// Only sessions whose inside address is this.
    pub inside: Option<Ipv4Addr>,
    /// Only this IP protocol.
    pub proto: Option<u8>,
}

/// One session, for control and debugging.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionInfo {
    pub kind: SessionKind,
    pub proto: u8,
    pub inside: (Ipv4Addr, u16),
    pub external: (Ipv4Addr, u16),
    pub remote: (Ipv4Addr, u16),
    pub expires_at_ns: u64,
    /// TCP: the tracking state as conntrack names it
    /// ([`tcp::TcpTrack::state_name`]); `None` for UDP and ICMP.
    pub state: Option<&'static str>,
    /// The first packet's addresses and ports (src, sport, dst, dport), as
    /// conntrack's original direction.
    pub original: (Ipv4Addr, u16, Ipv4Addr, u16),
    /// A reply's, as it arrives (conntrack's reply direction).
    pub reply: (Ipv4Addr, u16, Ipv4Addr, u16),
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
    /// `cfg.inside` as (network, mask) pairs: session creation's
    /// [`NatConfig::is_inside`] without recomputing masks.
    inside: Box<[(u32, u32)]>,
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
            inside: cfg
                .inside
                .iter()
                .map(|p| (u32::from(p.addr) & p.mask(), p.mask()))
                .collect(),
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

    /// Several workers: the receiving worker hands the first fragment
    /// `frame` (classified as `cls`, arriving from `ingress`) of a
    /// fragmented datagram to worker `owner`, which owns its session;
    /// later fragments of the datagram carry no ports, so this worker
    /// remembers the datagram and its NAT answers them with
    /// [`Verdict::Owner`]. Returns the later fragments this worker held
    /// for it (they came first), untouched, for the caller to hand to
    /// `owner` after the first. No-op for anything but a first fragment.
    pub fn direct_fragment(
        &mut self,
        frame: &[u8],
        cls: &Classified,
        owner: u16,
        now: Timestamp,
    ) -> Vec<Vec<u8>> {
        let Some(fi) = cls.frag else {
            return Vec::new();
        };
        if !fi.more_fragments || cls.l4 == L4Kind::Fragment || cls.l3 != L3Kind::Ipv4 {
            return Vec::new();
        }
        let l3 = usize::from(cls.l3_offset);
        let Some(h) = frame.get(l3..l3 + 20) else {
            return Vec::new();
        };
        let ip = ipv4::Packet::new_unchecked(h);
        let t = Tuple {
            src: ip.src_addr(),
            dst: ip.dst_addr(),
            proto: ip.protocol(),
            sport: 0,
            dport: 0,
        };
        self.first_fragment(t, t, fi.id as u16, FragNext::Owner(owner), now.as_nanos())
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

    /// A new outbound session for packet `t` (`pk`: its key and hash):
    /// its mapping (existing or new: port allocated), the session and its
    /// two keys inserted.
    fn create_outbound(
        &mut self,
        t: &Tuple,
        pk: KeyHash,
        flags: u8,
        icmp_type: Option<u8>,
        now: u64,
    ) -> Step {
        self.last_now = self.last_now.max(now);
        if !self.is_inside(t.src) || self.is_inside(t.dst) {
            // Not masqueraded traffic (or inside-to-inside).
            return Step::Untouched;
        }
        match t.proto {
            ip_protocol::TCP
                if flags & (tcp::flags::SYN | tcp::flags::ACK | tcp::flags::RST)
                    != tcp::flags::SYN =>
            {
                return Step::Drop(DropReason::TcpNotSyn);
            }
            ip_protocol::ICMP if !icmp_type.is_some_and(icmpv4::is_query_request) => {
                return Step::Drop(DropReason::NoSession);
            }
            _ => {}
        }
        let key = MapKey {
            proto: t.proto,
            in_ip: t.src,
            in_port: t.sport,
            remote: (self.cfg.mapping == MappingBehavior::AddressAndPortDependent)
                .then_some((t.dst, t.dport)),
        };
        // The slab slot the insert reuses (its free-list link is read
        // first): loading while the mapping is found or made.
        self.table.prefetch_insert_slot();
        let ext = self.outbound_mapping(&key, t, now);
        if let Ok((ip, port, _)) = ext
            && t.proto == ip_protocol::TCP
        {
            // The inside host opens the connection a held unsolicited
            // SYN was for (simultaneous open): that SYN is dropped
            // silently, never answered (RFC 5382 REQ-4).
            self.pool.syn.cancel(&(t.dst, t.dport, ip, port));
        }
        let (ext_ip, ext_port, rk) = match ext {
            Ok(e) => e,
            Err(r) => return Step::Drop(r),
        };
        let xlat = outbound_xlat(t, ext_ip, ext_port);
        let tcp = TcpTrack::opened();
        let session = Session {
            orig: *t,
            xlat,
            orig_side: Side::Inside,
            kind: SessionKind::Masquerade,
            tcp,
            mapped: true,
        };
        self.insert(session, t, Some(pk), rk, tcp.class(), now)
    }

    /// [`NatConfig::is_inside`], from the precomputed masks. O(prefixes).
    #[inline]
    fn is_inside(&self, ip: Ipv4Addr) -> bool {
        let a = u32::from(ip);
        self.inside.iter().any(|&(net, mask)| a & mask == net)
    }

    /// The external endpoint of an outbound session's mapping `mk`: the
    /// existing mapping (one more reference) or a new one; with the
    /// session's reply key and its hash, whose index bucket is being
    /// loaded (prefetched as soon as the endpoint is known, so that miss
    /// overlaps the mapping's own index writes).
    fn outbound_mapping(
        &mut self,
        mk: &MapKey,
        t: &Tuple,
        now: u64,
    ) -> Result<(Ipv4Addr, u16, Option<KeyHash>), DropReason> {
        let table = &self.table;
        let mut rk = None;
        let ext = self.pool.map_outbound(mk, t.dst, now, |ip, port| {
            let k = key(&outbound_xlat(t, ip, port).reversed());
            let h = table.hash(&k);
            table.prefetch_index(h);
            rk = Some((k, h));
        });
        match ext {
            Ok((ip, port)) => Ok((ip, port, rk)),
            Err(AllocError::QuotaExceeded) => Err(DropReason::QuotaExceeded),
            Err(AllocError::Exhausted) => Err(DropReason::PoolExhausted),
            Err(AllocError::Protocol(_)) => Err(DropReason::UnsupportedProtocol),
        }
    }

    /// Insert a new session created by packet `t` (its mapping reference,
    /// if any, already taken: a refused insert gives it back). `pk`: the
    /// packet's key and hash when the packet is the session's forward
    /// direction (`s.orig == *t`), else `None` (an inbound-created
    /// masquerade session, entered by its reverse key); `rk`: the reply
    /// key and its hash if the caller has them.
    fn insert(
        &mut self,
        s: Session,
        t: &Tuple,
        pk: Option<KeyHash>,
        rk: Option<KeyHash>,
        class: TimeoutClass,
        now: u64,
    ) -> Step {
        let expires = now.saturating_add(self.timeout(t.proto, class));
        let fwd = s.orig;
        debug_assert_eq!(pk.is_some(), fwd == *t);
        // The packet that creates the session: forward → xlat; reverse →
        // the original tuple reversed.
        let (fk, xlat_pkt) = match pk {
            Some(pk) => (pk, s.xlat),
            None => {
                let k = key(&fwd);
                ((k, self.table.hash(&k)), fwd.reversed())
            }
        };
        let rk = rk.unwrap_or_else(|| {
            let k = key(&s.xlat.reversed());
            (k, self.table.hash(&k))
        });
        let inserted = {
            let mut rel = releaser(&mut self.pool, &mut self.counters.released, self.apdm, now);
            self.table.insert_hashed(
                fk,
                Some(rk),
                s,
                Timestamp::from_nanos(expires),
                Timestamp::from_nanos(now),
                &mut rel,
            )
        };
        match inserted {
            Ok(_) => {
                self.counters.created += 1;
                Step::Xlat(xlat_pkt)
            }
            Err(e) => {
                let (s, reason) = match e {
                    ShardInsertError::Full(s) => (s, DropReason::TableFull),
                    ShardInsertError::KeyExists(s) => (s, DropReason::TableConflict),
                };
                if let Some(k) = map_key(&s, self.apdm) {
                    self.pool.unref(&k, fwd.dst, now);
                }
                Step::Drop(reason)
            }
        }
    }

    /// A new inbound session for packet `t` (`pk`: its key and hash): a
    /// port forward, or a session on an existing mapping the filtering
    /// admits.
    fn create_inbound(&mut self, t: &Tuple, pk: KeyHash, flags: u8, now: u64) -> Step {
        self.last_now = self.last_now.max(now);
        let syn_only =
            flags & (tcp::flags::SYN | tcp::flags::ACK | tcp::flags::RST) == tcp::flags::SYN;
        // Port forwarding (DNAT) first.
        if let Some(rule) = self.cfg.port_forwards.iter().find(|r| {
            r.protocol.number() == t.proto
                && r.external == t.dst
                && r.external_ports.contains(t.dport)
        }) {
            if !rule.source_allowed(t.src) {
                return Step::Drop(DropReason::SourceNotAllowed);
            }
            if t.proto == ip_protocol::TCP && !syn_only {
                return Step::Drop(DropReason::TcpNotSyn);
            }
            let xlat = Tuple {
                dst: rule.inside,
                dport: rule.inside_port_for(t.dport),
                ..*t
            };
            let s = Session {
                orig: *t,
                xlat,
                orig_side: Side::Outside,
                kind: SessionKind::PortForward,
                tcp: TcpTrack::opened(),
                mapped: false,
            };
            return self.insert(s, t, Some(pk), None, TimeoutClass::Transitory, now);
        }
        let is_nat = self.is_nat_address(t.dst);
        let mapped = {
            let filtering = self.cfg.filtering;
            let pool = &mut self.pool;
            let mapped = pool.by_external(t.proto, t.dst, t.dport);
            let mut out = None;
            let admitted = |pool: &Pool, k: &MapKey| match filtering {
                FilteringBehavior::EndpointIndependent => true,
                FilteringBehavior::AddressDependent => pool.has_remote(k, t.src),
                FilteringBehavior::AddressAndPortDependent => false,
            };
            let adm = mapped.is_some_and(|k| admitted(pool, &k));
            if let Some(k) = mapped
                && adm
                && t.proto != ip_protocol::ICMP
                && (t.proto != ip_protocol::TCP || syn_only)
                && pool.add_ref(&k, t.src)
            {
                out = Some(k);
            }
            mapped.map(|k| (k, out.is_some(), adm))
        };
        if !is_nat {
            return Step::Untouched;
        }
        match mapped {
            None => Step::Drop(DropReason::NoSession),
            // Admitted by the filter, but a TCP segment other than a SYN.
            Some((_, false, true)) if t.proto == ip_protocol::TCP && !syn_only => {
                Step::Drop(DropReason::TcpNotSyn)
            }
            Some((_, false, _)) => Step::Drop(DropReason::Filtered),
            Some((k, true, _)) => {
                // Endpoint-independent filtering, or address-dependent from
                // an address the mapping talks to: a new session on it.
                let orig = Tuple {
                    src: k.in_ip,
                    sport: k.in_port,
                    dst: t.src,
                    dport: t.sport,
                    proto: t.proto,
                };
                let xlat = Tuple {
                    src: t.dst,
                    sport: t.dport,
                    ..orig
                };
                let mut tcp = TcpTrack::default();
                let class = if t.proto == ip_protocol::TCP {
                    tcp.on_packet(Dir::Reply, flags)
                } else {
                    TimeoutClass::Established
                };
                let s = Session {
                    orig,
                    xlat,
                    orig_side: Side::Inside,
                    kind: SessionKind::InboundFiltered,
                    tcp,
                    mapped: true,
                };
                let pk = (orig == *t).then_some(pk);
                self.insert(s, t, pk, None, class, now)
            }
        }
    }

    /// ICMP error: find the session through the embedded packet; translate
    /// outer destination (and source from inside) and the embedded header.
    /// Never creates, refreshes or removes a session (RFC 5508 REQ-6).
    fn icmp_error(
        &mut self,
        frame: &mut [u8],
        cls: &Classified,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        ingress: Side,
        now: u64,
    ) -> Verdict {
        let Some(emb) = rw::icmpv4_embedded_tuple(frame, cls)
            .ok()
            .and_then(|t| Tuple::from_five(&t))
        else {
            return self.other_traffic(src, dst, ingress, DropReason::Malformed);
        };
        let ek = emb.reversed();
        let k = key(&ek);
        let h = self.table.hash(&k);
        let found = self.lookup(k, h, now).and_then(|(id, dir)| {
            let s = self.table.get(id)?;
            Some(if dir == Direction::Reverse {
                s.orig
            } else {
                s.xlat.reversed()
            })
        });
        let Some(new_emb) = found else {
            return self.other_traffic(src, dst, ingress, DropReason::IcmpErrorNoSession);
        };
        // RFC 5508 REQ-3: a corrupted error is dropped, not translated.
        if let Err(r) = icmp_error_checksums(frame, cls) {
            return self.drop_(r);
        }
        let outer_src = if ingress == Side::Inside && self.is_inside(src) {
            new_emb.dst
        } else {
            src
        };
        // Embedded packet first (the check that can refuse), then the outer
        // header; each validates before writing.
        let n = new_emb;
        if rw::rewrite_icmpv4_embedded(frame, cls, n.src, n.sport, n.dst, n.dport).is_err()
            || rw::rewrite_ipv4_addrs(frame, cls, outer_src, n.src).is_err()
        {
            return self.drop_(DropReason::Malformed);
        }
        self.counters.icmp_errors += 1;
        Verdict::Forward
    }

    /// Record the translation a first fragment decided; fragments held
    /// for it are rewritten into `released` (`next == Here`), returned
    /// untouched (`Owner`: the caller hands them on after the first), or
    /// dropped and counted (`Hairpin`).
    fn first_fragment(
        &mut self,
        from: Tuple,
        to: Tuple,
        id: u16,
        next: FragNext,
        now: u64,
    ) -> Vec<Vec<u8>> {
        let key = FragKey {
            src: from.src,
            dst: from.dst,
            proto: from.proto,
            id,
        };
        let x = FragXlat {
            src: to.src,
            dst: to.dst,
            next,
        };
        let held = self.frags.record(key, x, now);
        if held.is_empty() {
            return Vec::new();
        }
        match next {
            FragNext::Here => {}
            FragNext::Owner(_) => return held.into_iter().map(|h| h.frame).collect(),
            FragNext::Hairpin(_) => {
                // Held here before the first fragment showed that the
                // datagram is a hairpin another worker finishes: not handed
                // on (counted).
                for _ in held {
                    self.drop_(DropReason::FragmentOtherWorker);
                }
                return Vec::new();
            }
        }
        let mut out = Vec::with_capacity(held.len());
        for mut h in held {
            // Held frames are copies: classify again (slow path, out of order only).
            let ok = net::classify(&h.frame).is_ok_and(|c| {
                c.l3_offset as usize == h.l3_offset
                    && rw::rewrite_ipv4_addrs(&mut h.frame, &c, x.src, x.dst).is_ok()
            });
            if ok {
                self.counters.fragments += 1;
                out.push(h.frame);
            } else {
                self.drop_(DropReason::Malformed);
            }
        }
        self.released.append(&mut out);
        Vec::new()
    }

    #[allow(clippy::too_many_arguments)]
    fn non_first_fragment(
        &mut self,
        frame: &mut [u8],
        cls: &Classified,
        l3: usize,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        proto: u8,
        ingress: Side,
        now: u64,
    ) -> Verdict {
        let Some(fi) = cls.frag else {
            return self.drop_(DropReason::Malformed);
        };
        let key = FragKey {
            src,
            dst,
            proto,
            id: fi.id as u16,
        };
        if let Some(x) = self.frags.lookup(&key, now) {
            if let FragNext::Owner(w) = x.next {
                return Verdict::Owner(w);
            }
            if rw::rewrite_ipv4_addrs(frame, cls, x.src, x.dst).is_err() {
                return self.drop_(DropReason::Malformed);
            }
            self.counters.fragments += 1;
            return match x.next {
                FragNext::Hairpin(w) => Verdict::HandOff(w),
                _ => Verdict::Forward,
            };
        }
        // Unknown datagram: only hold what NAT would translate.
        let ours = match ingress {
            Side::Inside => self.is_inside(src) && !self.is_inside(dst),
            Side::Outside => self.is_nat_address(dst),
        };
        if !ours {
            self.counters.untouched += 1;
            return Verdict::Forward;
        }
        match self.frags.hold(key, l3, frame, now) {
            Ok(()) => self.drop_(DropReason::FragmentHeld),
            Err(_) => self.drop_(DropReason::FragmentBudget),
        }
    }

    /// Move fragments released since the last call (held out-of-order
    /// fragments whose first fragment has now been translated, already
    /// rewritten) into `out`, to be forwarded by the caller like any
    /// packet (TTL decremented). Call after each burst. O(released).
    pub fn take_released(&mut self, out: &mut Vec<Vec<u8>>) {
        out.append(&mut self.released);
    }

    /// Move frames the NAT itself sends into `out`: the ICMP port
    /// unreachable answers to held unsolicited SYNs that [`Nat::poll`]
    /// produced (`unsolicited_syn = "hold"`; zero MACs, TTL 64), to be
    /// routed by the caller as its own (TTL untouched). Call after
    /// polling. O(frames).
    pub fn take_originated(&mut self, out: &mut Vec<Vec<u8>>) {
        out.append(&mut self.originated);
    }

    /// Move up to `max` mapping events (oldest first) into `out`
    /// (`log_mappings`; nothing otherwise). Returns how many. O(moved);
    /// call from a poll, not per packet.
    pub fn take_mapping_events(&mut self, out: &mut Vec<MappingEvent>, max: usize) -> usize {
        if !self.cfg.log_mappings {
            return 0;
        }
        let Some(q) = &mut self.pool.events else {
            return 0;
        };
        let n = q.len().min(max);
        out.extend(q.drain(..n));
        n
    }

    /// Expire sessions due by `now` (bounded by `budget` removals; the
    /// backlog carries to the next call), fragment records and port
    /// hold-downs; answer held SYNs whose time is up. Returns sessions
    /// removed.
    pub fn poll(&mut self, now: Timestamp, budget: usize) -> usize {
        let ns = now.as_nanos();
        self.last_now = self.last_now.max(ns);
        let n = {
            let mut rel = releaser(&mut self.pool, &mut self.counters.released, self.apdm, ns);
            self.table.poll(now, budget, &mut rel)
        };
        self.frags.expire(ns);
        self.pool.alloc.expire_holds(ns);
        let originated = &mut self.originated;
        self.pool
            .syn
            .expire(ns, |k, quote| originated.push(syn_refused(k, quote)));
        n
    }

    /// The latest time this NAT was given (ns; by packets creating
    /// sessions and by polls): what a session's remaining time is measured
    /// from when no packet time is at hand (`ctl sessions`). O(1).
    #[must_use]
    pub fn clock_ns(&self) -> u64 {
        self.last_now
    }

    /// Counter snapshot. O(reasons).
    #[must_use]
    pub fn stats(&self) -> NatStats {
        let c = &self.counters;
        let p = &self.pool;
        let alloc = p.alloc.stats();
        NatStats {
            sessions_active: self.table.len() as u64,
            ports_in_use: alloc.in_use,
            mappings: p.mappings() as u64,
            created: c.created,
            expired: c.released[ReleaseReason::Expired.index()],
            lazily_expired: c.released[ReleaseReason::LazyExpired.index()],
            drained: c.released[ReleaseReason::Drained.index()],
            evicted: c.released[ReleaseReason::Evicted.index()],
            removed: c.released[ReleaseReason::Removed.index()],
            teardown: c.released[ReleaseReason::Teardown.index()],
            hairpinned: c.hairpinned,
            icmp_errors_translated: c.icmp_errors,
            fragments_translated: c.fragments,
            untouched: c.untouched,
            drops: DropReason::ALL
                .iter()
                .zip(&c.drops)
                .map(|(r, &n)| (r.name(), n))
                .collect(),
            alloc,
            fragments: self.frags.stats(),
            syn_hold: p.syn.stats(),
            mapping_events_dropped: p.events_dropped,
            table_bytes: self.table.memory_bytes() as u64,
        }
    }

    /// Drop count for one reason. O(reasons).
    #[must_use]
    pub fn drops(&self, r: DropReason) -> u64 {
        let i = DropReason::ALL.iter().position(|&x| x == r).unwrap_or(0);
        self.counters.drops[i]
    }

    /// Sessions matching `filter`, at most `limit`, in table order. O(table);
    /// for control, never the packet path.
    #[must_use]
    pub fn sessions_scan(&self, filter: &SessionFilter, limit: usize) -> Vec<SessionInfo> {
        self.table
            .iter()
            .filter(|(_, _, _, s, _)| filter.matches(s))
            .take(limit)
            .map(|(_, _, _, s, exp)| {
                let (inside, external, remote) = s.endpoints();
                let r = s.xlat.reversed();
                SessionInfo {
                    kind: s.kind,
                    proto: s.orig.proto,
                    inside,
                    external,
                    remote,
                    expires_at_ns: exp.as_nanos(),
                    state: (s.orig.proto == ip_protocol::TCP).then(|| s.tcp.state_name()),
                    original: (s.orig.src, s.orig.sport, s.orig.dst, s.orig.dport),
                    reply: (r.src, r.sport, r.dst, r.dport),
                }
            })
            .collect()
    }

    /// Remove every session matching `filter` (an operator's "clear
    /// translations"): each through the same release path as expiry (its
    /// port returned, counted as `removed`), both keys at once. Returns
    /// how many were removed. O(table); for control, never the packet path.
    pub fn sessions_clear(&mut self, filter: &SessionFilter) -> usize {
        let mut rel = releaser(
            &mut self.pool,
            &mut self.counters.released,
            self.apdm,
            self.last_now,
        );
        self.table
            .remove_matching(|s| filter.matches(s), ReleaseReason::Removed, &mut rel)
    }

    /// Release every session (reason `Teardown`: ports returned, counted),
    /// e.g. before the NAT is dropped. Returns how many.
    pub fn teardown(&mut self, now: Timestamp) -> usize {
        let mut rel = releaser(
            &mut self.pool,
            &mut self.counters.released,
            self.apdm,
            now.as_nanos(),
        );
        self.table.clear(&mut rel)
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

impl Session {
    /// (inside, external, remote) endpoints, whichever side opened it.
    fn endpoints(&self) -> ((Ipv4Addr, u16), (Ipv4Addr, u16), (Ipv4Addr, u16)) {
        match self.kind {
            SessionKind::PortForward => (
                (self.xlat.dst, self.xlat.dport),
                (self.orig.dst, self.orig.dport),
                (self.orig.src, self.orig.sport),
            ),
            _ => (
                (self.orig.src, self.orig.sport),
                (self.xlat.src, self.xlat.sport),
                (self.orig.dst, self.orig.dport),
            ),
        }
    }
}

impl SessionFilter {
    /// Whether session `s` passes the filter.
    fn matches(&self, s: &Session) -> bool {
        self.inside.is_none_or(|i| i == s.endpoints().0.0)
            && self.proto.is_none_or(|p| p == s.orig.proto)
    }
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
