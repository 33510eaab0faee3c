//! `nat`: masquerade (source NAT) and port forwarding (destination NAT) stages on the flow table.
//!
//! [`Nat::process`] takes a classified frame, the side it arrived on and
//! `now`, rewrites it in place and returns a [`Verdict`]. Sessions hold two
//! keys (original direction and reply direction). Masquerade sessions share
//! a refcounted **mapping** (inside ip:port → external ip:port) kept in a
//! small map beside the allocator: the mapping and its port live while any
//! session uses it (endpoint-independent mapping, RFC 4787 REQ-1), and the
//! session table's release hook drops the session's reference exactly once,
//! whatever removes the session; the last reference frees the port.
//!
//! Cost: an established packet costs one table lookup (one shard lock) plus
//! an in-place rewrite with incremental checksums; a hairpinned packet two
//! lookups. Session creation takes the mapping/allocator lock (slow path).
//!
//! See `nat/README.md` for the RFC requirement table.
#![deny(unsafe_code)]

pub mod alloc;
pub mod config;
pub mod frag;
pub mod pkt;
mod sync;
pub mod synhold;
pub mod tcp;

pub use flow_entry::{FlowHash, FlowTableConfig, ReleaseReason, Timestamp};

/// Hash map with a fast keyed hasher (foldhash, per-process random seed).
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
use std::sync::Arc;

use core::net::Ipv4Addr;

use net::rewrite as rw;
use net::{Classified, L3Kind, L4Kind, icmpv4, ip_protocol, ipv4};
use serde::Serialize;

pub use alloc::{AllocError, AllocStats, Allocator};
pub use config::{
    ConfigError, ConfigProblem, FilteringBehavior, ForwardProtocol, Ipv4Prefix, MappingBehavior,
    NatConfig, PortForward, PortRange, UnsolicitedSyn,
};
use flow_entry::{Direction, EntryMut, FlowKey, FlowTable, InsertError, Inserted};
pub use frag::FragStats;
use frag::{FragKey, FragTable, FragXlat};
pub use pkt::Tuple;
use sync::{AtomicU64, Mutex, Ordering, lock};
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
}

macro_rules! reasons {
    ($($(#[$m:meta])* $v:ident,)*) => {
        /// Why a frame was dropped (each counted in [`NatStats::drops`]).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        pub enum DropReason { $($(#[$m])* $v,)* }
        impl DropReason {
            /// Every reason, in counter order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$v,)*];
            /// Stable name (used as counter key).
            #[must_use]
            pub fn name(self) -> &'static str {
                match self { $(DropReason::$v => stringify!($v),)* }
            }
        }
    };
}

reasons! {
    /// Headers inconsistent or too short to translate.
    Malformed,
    /// An IP protocol NAT cannot translate (not TCP, UDP or ICMP), from inside.
    UnsupportedProtocol,
    /// ICMP message from inside that is neither a query (echo, timestamp)
    /// nor a translatable error.
    UnsupportedIcmp,
    /// Unsolicited inbound traffic to a NAT address: no session, mapping or rule.
    NoSession,
    /// Inbound traffic to a mapped port from a remote the mapping was not
    /// opened to (address-and-port-dependent filtering).
    Filtered,
    /// TCP without a session whose first packet is not a SYN.
    TcpNotSyn,
    /// Inside host reached its port quota (RFC 6888 REQ-4). When
    /// `icmp_on_quota_exceeded` is set the dataplane should send ICMP 3/13.
    QuotaExceeded,
    /// No free external port in the pool.
    PoolExhausted,
    /// Session table refused the insert: the reply key belongs to another session.
    TableConflict,
    /// Session table full and nothing evictable.
    TableFull,
    /// ICMP error whose embedded packet matches no session.
    IcmpErrorNoSession,
    /// Inbound port-forward traffic from a source the rule does not allow.
    SourceNotAllowed,
    /// Inside packet to a NAT address while hairpinning is off.
    HairpinDisabled,
    /// The packet matched a session key from the wrong side (e.g. an inside
    /// source address arriving from outside): not translated.
    WrongSide,
    /// Non-first fragment held until its first fragment arrives (not lost).
    FragmentHeld,
    /// Non-first fragment dropped: the held-fragment budget is full.
    FragmentBudget,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MapKey {
    proto: u8,
    in_ip: Ipv4Addr,
    in_port: u16,
    /// Address-and-port-dependent mapping: the remote endpoint.
    remote: Option<(Ipv4Addr, u16)>,
}

/// Protocol, address and port packed into one word (map keys: one hash
/// write, one compare).
fn endpoint_word(proto: u8, ip: Ipv4Addr, port: u16) -> u64 {
    (u64::from(proto) << 48) | (u64::from(u32::from(ip)) << 16) | u64::from(port)
}

impl core::hash::Hash for MapKey {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        // Consistent with the derived `Eq`: equal keys write equal words.
        state.write_u64(endpoint_word(self.proto, self.in_ip, self.in_port));
        if let Some((ip, port)) = self.remote {
            state.write_u64(endpoint_word(1, ip, port));
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Mapping {
    ext_ip: Ipv4Addr,
    ext_port: u16,
    refs: u32,
}

/// Allocator plus the mapping records, one lock (slow path only).
struct Pool {
    alloc: Allocator,
    by_in: FastMap<MapKey, Mapping>,
    /// External endpoint (`endpoint_word`) → mapping.
    by_ext: FastMap<u64, MapKey>,
    /// Address-dependent filtering only: live sessions per (mapping,
    /// remote address), so an inbound packet from that address (any port)
    /// is admitted while one exists.
    remotes: Option<FastMap<(MapKey, Ipv4Addr), u32>>,
    /// Unsolicited inbound SYNs held (`unsolicited_syn = "hold"`).
    syn: synhold::SynHolds,
    /// Mapping events not yet taken (`log_mappings`; at most
    /// [`MAPPING_EVENTS_MAX`]) and how many did not fit.
    events: Option<std::collections::VecDeque<MappingEvent>>,
    events_dropped: u64,
}

/// Most mapping events kept until [`Nat::take_mapping_events`]; more are
/// counted in [`NatStats::mapping_events_dropped`] and lost.
pub const MAPPING_EVENTS_MAX: usize = 65_536;

/// What happened to a mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MappingEventKind {
    Created,
    Released,
}

/// One dynamic mapping created or released (`log_mappings`), for the
/// operator's translation log (who used which external address and port
/// when).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MappingEvent {
    pub kind: MappingEventKind,
    pub proto: u8,
    pub inside: (Ipv4Addr, u16),
    pub external: (Ipv4Addr, u16),
    /// Address-and-port-dependent mapping: the remote endpoint.
    pub remote: Option<(Ipv4Addr, u16)>,
    /// The `now` of the packet or poll that caused it (ns).
    pub at_ns: u64,
}

impl Pool {
    /// Record a mapping event when `log_mappings` is on. O(1).
    fn event(&mut self, kind: MappingEventKind, k: &MapKey, ext: (Ipv4Addr, u16), at_ns: u64) {
        let Some(q) = &mut self.events else { return };
        if q.len() >= MAPPING_EVENTS_MAX {
            self.events_dropped += 1;
            return;
        }
        q.push_back(MappingEvent {
            kind,
            proto: k.proto,
            inside: (k.in_ip, k.in_port),
            external: ext,
            remote: k.remote,
            at_ns,
        });
    }

    /// A session of mapping `k` with remote address `remote` now holds a
    /// reference (the caller has counted it in `refs`).
    fn note_remote(&mut self, k: &MapKey, remote: Ipv4Addr) {
        if let Some(r) = &mut self.remotes {
            *r.entry((*k, remote)).or_insert(0) += 1;
        }
    }

    /// Whether mapping `k` has a live session with `remote`.
    fn has_remote(&self, k: &MapKey, remote: Ipv4Addr) -> bool {
        self.remotes
            .as_ref()
            .is_some_and(|r| r.contains_key(&(*k, remote)))
    }

    /// A session of mapping `k` with remote address `remote` is gone.
    fn unref(&mut self, k: &MapKey, remote: Ipv4Addr, now: u64) {
        if let Some(r) = &mut self.remotes
            && let Some(n) = r.get_mut(&(*k, remote))
        {
            *n -= 1;
            if *n == 0 {
                r.remove(&(*k, remote));
            }
        }
        let Some(m) = self.by_in.get_mut(k) else {
            return;
        };
        m.refs -= 1;
        if m.refs == 0 {
            let m = *m;
            self.by_in.remove(k);
            self.by_ext
                .remove(&endpoint_word(k.proto, m.ext_ip, m.ext_port));
            self.alloc
                .release(k.proto, k.in_ip, m.ext_ip, m.ext_port, now);
            self.event(MappingEventKind::Released, k, (m.ext_ip, m.ext_port), now);
        }
    }
}

const N_REL: usize = ReleaseReason::ALL.len();

/// Frames of a burst whose sessions are prefetched together.
const PREFETCH_CHUNK: usize = 64;

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

/// The flow-table key of a tuple (zone 0).
fn key(t: &Tuple) -> FlowKey {
    FlowKey::v4(t.src, t.dst, t.proto, t.sport, t.dport, 0)
}

struct Counters {
    drops: Vec<AtomicU64>,
    released: [AtomicU64; N_REL],
    created: AtomicU64,
    race_lost: AtomicU64,
    hairpinned: AtomicU64,
    icmp_errors: AtomicU64,
    fragments: AtomicU64,
    untouched: AtomicU64,
}

/// State shared with the release hook.
struct Shared {
    pool: Mutex<Pool>,
    counters: Counters,
    /// Highest `now` seen by `poll` and session creation (ns), for hold-down
    /// timing inside the release hook (not updated on the fast path: a
    /// shared atomic there would bounce between workers' caches; a lazily
    /// expired session's hold-down may therefore start up to one poll
    /// interval early).
    last_now: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
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
    /// Creations that lost a race to another worker (allocation released).
    pub race_lost: u64,
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
}

/// The NAT: shared via `Arc` by all workers.
pub struct Nat {
    cfg: NatConfig,
    table: FlowTable<Session>,
    /// The table's tick (deadline granularity), ns.
    tick_ns: u64,
    /// The TCP/UDP timeouts in whole ticks, by [`window_index`], when every
    /// one is a whole number of ticks (then [`Nat::fast_clock`] computes
    /// [`Nat::fast_check`]'s refresh test as tick windows).
    timeout_ticks: Option<[u64; 4]>,
    shared: Arc<Shared>,
    frags: Mutex<FragTable>,
    /// Translated fragments released from the hold ([`Nat::take_released`]).
    released: Outbox,
    /// Frames the NAT itself sends: answers to held SYNs
    /// ([`Nat::take_originated`]).
    originated: Outbox,
}

/// Frames handed from the NAT to the dataplane between bursts.
#[derive(Default)]
struct Outbox {
    frames: Mutex<Vec<Vec<u8>>>,
    /// 1 if `frames` may be non-empty (set under its lock after a push,
    /// cleared under it by a take): a take skips the lock on the usual
    /// empty case.
    any: AtomicU64,
}

impl Outbox {
    fn push(&self, frames: &mut Vec<Vec<u8>>) {
        if frames.is_empty() {
            return;
        }
        lock(&self.frames).append(frames);
        self.any.store(1, Ordering::Release);
    }

    fn take(&self, out: &mut Vec<Vec<u8>>) {
        if self.any.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut f = lock(&self.frames);
        self.any.store(0, Ordering::Relaxed);
        out.append(&mut f);
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

/// The aux word a session publishes in its key cell (`EntryMut::set_aux`)
/// for [`Nat::fast_check`]: set by every hit, so 0 (a session not hit yet)
/// means "unknown".
const AUX_VALID: u32 = 1 << 8;
/// The session is confirmed (a reply was seen).
const AUX_CONFIRMED: u32 = 1 << 9;

/// The session a frame hit, for a per-worker cache of established
/// translations: [`Nat::process_learn`] reports it, [`Nat::fast_check`]
/// tells (from its [`Check`] part) whether a later frame of the same tuple,
/// from the same side, may be translated to [`Learned::to`] without the
/// session lookup. `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Learned {
    check: Check,
    /// The frame's tuple after translation.
    pub to: Tuple,
}

/// What [`Nat::fast_check`] needs of a [`Learned`] session (32 bytes, so a
/// cache entry can hold it beside a precomputed rewrite in one cache
/// line): the session's located handle, direction, side and protocol.
/// `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Check {
    at: flow_entry::Located,
    reverse: bool,
    /// The side the frame arrived from.
    ingress: Side,
    proto: u8,
}

impl Learned {
    /// The part [`Nat::fast_check`] reads.
    pub fn check(&self) -> Check {
        self.check
    }
}

/// A time prepared for [`Nat::fast_check`] by [`Nat::fast_clock`]: once
/// per burst, not once per frame. `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FastClock {
    table: flow_entry::TableClock,
    now: u64,
    /// The deadline ticks a hit leaves as they are, by [`window_index`]
    /// (inclusive; `None`: computed per frame as `Nat::process` does).
    windows: Option<[(u64, u64); 5]>,
    /// The times (ns, both bounds exclusive) whose windows are these
    /// ([`tick_reuse`]), and the timeouts they were computed for: what
    /// [`Nat::fast_clock_after`] needs to skip the division.
    reuse: (u64, u64),
    timeouts: [u64; 4],
}

/// [`FastClock::windows`] index: TCP by timeout class, UDP, and UDP from
/// outside when inbound packets do not refresh (`udp_inbound_refresh`).
#[inline(always)]
fn window_index(proto: u8, class: TimeoutClass) -> usize {
    match (proto, class) {
        (ip_protocol::TCP, TimeoutClass::Transitory) => 0,
        (ip_protocol::TCP, TimeoutClass::Established) => 1,
        (ip_protocol::TCP, TimeoutClass::TimeWait) => 2,
        _ => 3,
    }
}
const NO_REFRESH_WINDOW: usize = 4;

/// The stored deadlines (ticks) that a hit at `now` with a timeout of
/// `timeout` ticks leaves unchanged, as `Nat::deadline_moves` decides it
/// (the new deadline `d = now + timeout` ns is stored when it moves by more
/// than a tick either way from the current `base + deadline × tick`), and
/// that are still live (`deadline > tick`). With `now - base = tick × t + r`
/// (`0 <= r < t`) and `k = tick + timeout`: a deadline `dl` moves up when
/// `(k − dl − 1) × t + r > 0`, that is `dl < k − 1`, or `dl = k − 1` and
/// `r > 0`; down when `(dl − k − 1) × t > r`, that is `dl > k + 1`. Exact
/// as long as no sum overflows (the caller checks). Inclusive bounds.
#[inline]
fn serve_window(tick: u64, r: u64, timeout: u64) -> (u64, u64) {
    let k = tick + timeout;
    let lo = if r == 0 { k.saturating_sub(1) } else { k };
    (lo.max(tick + 1), k + 1)
}

/// [`FastClock::windows`] at `now` ns for a table with time base `base`,
/// `tick` ticks elapsed (`(now - base) / t`) of `t` ns, and timeouts of
/// `tt` ticks ([`window_index`] order); `None` where [`serve_window`]
/// would not be exact: `now` before the base, or `now + timeout + 2 ticks`
/// overflowing.
#[inline]
fn tick_windows(now: u64, base: u64, tick: u64, t: u64, tt: [u64; 4]) -> Option<[(u64, u64); 5]> {
    let since = now.checked_sub(base)?;
    let r = since.checked_sub(tick.checked_mul(t)?)?;
    if r >= t {
        return None;
    }
    let most = tt.iter().copied().max()?;
    now.checked_add(most.checked_mul(t)?)?
        .checked_add(t.checked_mul(2)?)?;
    tick.checked_add(most)?.checked_add(2)?;
    let w = tt.map(|x| serve_window(tick, r, x));
    Some([w[0], w[1], w[2], w[3], (tick + 1, u64::MAX)])
}

/// The times `n` (ns; both bounds exclusive) for which [`tick_windows`]
/// gives the same windows as at `now` (with the same `base`, `t` and
/// timeouts `tt`), when it gave some: `n` in the same tick as `now`, past
/// the tick's first nanosecond like `now` (the windows depend on the tick
/// and on whether the remainder is zero), and within its overflow checks.
/// An empty range where that is not so.
#[inline]
fn tick_reuse(now: u64, base: u64, tick: u64, t: u64, tt: [u64; 4]) -> (u64, u64) {
    let Some(start) = tick.checked_mul(t).and_then(|x| base.checked_add(x)) else {
        return (0, 0);
    };
    let most = tt.iter().copied().max().unwrap_or(0);
    let Some(room) = most
        .checked_mul(t)
        .and_then(|x| x.checked_add(t.checked_mul(2)?))
        .and_then(|x| u64::MAX.checked_sub(x))
    else {
        return (0, 0);
    };
    if now <= start || now > room {
        return (0, 0);
    }
    (start, start.saturating_add(t).min(room.saturating_add(1)))
}

impl Nat {
    /// Build a NAT from a configuration (validated here) and table sizing.
    ///
    /// # Errors
    /// The configuration's first problem ([`NatConfig::validate`]).
    /// # Errors
    /// Also a `table` error if `table_cfg` does not validate.
    pub fn new(cfg: NatConfig, table_cfg: FlowTableConfig) -> Result<Nat, ConfigError> {
        cfg.validate()?;
        let shared = Arc::new(Shared {
            pool: Mutex::new(Pool {
                alloc: Allocator::new(&cfg),
                by_in: FastMap::default(),
                by_ext: FastMap::default(),
                remotes: (cfg.filtering == FilteringBehavior::AddressDependent)
                    .then(FastMap::default),
                syn: synhold::SynHolds::default(),
                events: cfg.log_mappings.then(std::collections::VecDeque::new),
                events_dropped: 0,
            }),
            counters: Counters {
                drops: DropReason::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
                released: Default::default(),
                created: AtomicU64::new(0),
                race_lost: AtomicU64::new(0),
                hairpinned: AtomicU64::new(0),
                icmp_errors: AtomicU64::new(0),
                fragments: AtomicU64::new(0),
                untouched: AtomicU64::new(0),
            },
            last_now: AtomicU64::new(0),
        });
        let hook_shared = Arc::clone(&shared);
        let apdm = cfg.mapping == MappingBehavior::AddressAndPortDependent;
        let release = Box::new(move |s: &Session, why: ReleaseReason| {
            bump(&hook_shared.counters.released[why.index()]);
            if let Some(k) = &map_key(s, apdm) {
                let now = hook_shared.last_now.load(Ordering::Relaxed);
                lock(&hook_shared.pool).unref(k, s.orig.dst, now);
            }
        });
        let tick_ns = u64::try_from(table_cfg.tick.as_nanos()).unwrap_or(u64::MAX);
        let timeout_ticks = {
            let t = &cfg.timeouts;
            let ns = [t.tcp_transitory, t.tcp_established, t.tcp_time_wait, t.udp]
                .map(|s| s.checked_mul(1_000_000_000));
            let mut tt = [0u64; 4];
            let mut ok = tick_ns > 0;
            for (o, n) in tt.iter_mut().zip(ns) {
                match n {
                    Some(n) if ok && n % tick_ns == 0 => *o = n / tick_ns,
                    _ => ok = false,
                }
            }
            ok.then_some(tt)
        };
        Ok(Nat {
            tick_ns,
            timeout_ticks,
            frags: Mutex::new(FragTable::new(&cfg.fragments)),
            table: FlowTable::new(table_cfg, release).map_err(|e| ConfigError {
                path: "table".into(),
                problem: ConfigProblem::Table(e.to_string()),
            })?,
            shared,
            released: Outbox::default(),
            originated: Outbox::default(),
            cfg,
        })
    }

    /// The configuration in force.
    #[must_use]
    pub fn config(&self) -> &NatConfig {
        &self.cfg
    }

    fn drop_(&self, r: DropReason) -> Verdict {
        let i = DropReason::ALL.iter().position(|&x| x == r).unwrap_or(0);
        bump(&self.shared.counters.drops[i]);
        Verdict::Drop(r)
    }

    fn note_now(&self, now: u64) {
        self.shared.last_now.fetch_max(now, Ordering::Relaxed);
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

    /// Whether `ip` is a pool address. O(pool prefixes), lock-free.
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

    /// Translate one frame in place.
    ///
    /// `cls` must describe `frame` (from `net::classify`). IPv6 and non-IP
    /// frames are left untouched (`Forward`). Never panics on any input.
    /// Cost: one flow-table lookup for an established session (two when
    /// hairpinned); see [`Nat::process_burst`] for the batched form.
    pub fn process(
        &self,
        frame: &mut [u8],
        cls: &Classified,
        ingress: Side,
        now: Timestamp,
    ) -> Verdict {
        let now = now.as_nanos();
        match self.prepare(frame, cls, ingress, now) {
            Pre::Done(v) => v,
            Pre::Go(p) => self.finish(frame, cls, &p, ingress, now, None),
        }
    }

    /// [`Nat::process`], also reporting in `learn` the session the frame
    /// hit when it was an established translation a cache may replay
    /// ([`Nat::fast_check`]): a TCP/UDP frame, not a fragment, not
    /// hairpinned, that found its session by lookup (not created it) and
    /// was translated. `learn` is left `None` otherwise.
    pub fn process_learn(
        &self,
        frame: &mut [u8],
        cls: &Classified,
        ingress: Side,
        now: Timestamp,
        learn: &mut Option<Learned>,
    ) -> Verdict {
        *learn = None;
        let now = now.as_nanos();
        match self.prepare(frame, cls, ingress, now) {
            Pre::Done(v) => v,
            Pre::Go(p) => {
                let v = self.finish(frame, cls, &p, ingress, now, Some(learn));
                if v != Verdict::Forward
                    || cls.frag.is_some()
                    || !matches!(cls.l4, L4Kind::Tcp | L4Kind::Udp)
                {
                    *learn = None;
                }
                v
            }
        }
    }

    /// Whether a TCP/UDP frame with TCP flags `tcp_flags` (0 for UDP),
    /// matching the tuple of the [`Learned`] session `l` is the check part of,
    /// arriving from its side, would at `now` be translated to its `to` by [`Nat::process`] with no change to the
    /// session: it is still the same live session (not expired, removed or
    /// replaced), the frame carries no SYN, FIN or RST (the only flags
    /// that change TCP state), a reply finds the session confirmed
    /// already, and the refresh `process` would compute moves the deadline
    /// by less than a table tick (so it would store nothing). Then the
    /// caller may rewrite the frame to that tuple itself (the result is the
    /// same); otherwise it calls `process`. Reads the session's key cell
    /// without a lock (`FlowTable::peek`); writes nothing, counts nothing.
    #[inline(always)]
    pub fn fast_check(&self, l: &Check, tcp_flags: u8, now: &FastClock) -> bool {
        use tcp::flags::{FIN, RST, SYN};
        if l.proto == ip_protocol::TCP && tcp_flags & (SYN | FIN | RST) != 0 {
            return false;
        }
        if let Some(w) = &now.windows
            && (l.proto == ip_protocol::TCP || l.proto == ip_protocol::UDP)
        {
            // The same test in ticks, against windows computed per burst.
            let Some(p) = self.table.peek_ticks(&l.at, &now.table) else {
                return false;
            };
            if p.aux & AUX_VALID == 0 || (l.reverse && p.aux & AUX_CONFIRMED == 0) {
                return false;
            }
            let i = if l.proto == ip_protocol::TCP {
                window_index(l.proto, TcpTrack::from_bits(p.aux as u8).class())
            } else if l.ingress == Side::Outside && !self.cfg.timeouts.udp_inbound_refresh {
                NO_REFRESH_WINDOW
            } else {
                window_index(l.proto, TimeoutClass::Established)
            };
            let (lo, hi) = w[i];
            let d = u64::from(p.deadline);
            return d >= lo && d <= hi;
        }
        self.fast_check_exact(l, now)
    }

    /// [`Nat::fast_check`] after the flags test, computed per frame in
    /// nanoseconds (when the windows do not apply).
    fn fast_check_exact(&self, l: &Check, now: &FastClock) -> bool {
        let Some(p) = self.table.peek_located(&l.at, &now.table) else {
            return false;
        };
        if p.aux & AUX_VALID == 0 || (l.reverse && p.aux & AUX_CONFIRMED == 0) {
            return false;
        }
        let class = if l.proto == ip_protocol::TCP {
            TcpTrack::from_bits(p.aux as u8).class()
        } else {
            TimeoutClass::Established
        };
        let cur = p.expires_at.as_nanos();
        !self
            .hit_deadline(l.proto, class, l.ingress, now.now)
            .is_some_and(|d| self.deadline_moves(d, cur))
    }

    /// `now` prepared for [`Nat::fast_check`] (the table's tick conversion,
    /// which divides, done once).
    #[inline]
    pub fn fast_clock(&self, now: Timestamp) -> FastClock {
        let table = self.table.clock(now);
        let n = now.as_nanos();
        let (tick, t) = (table.tick(), table.tick_ns());
        let tt = self.timeout_ticks.unwrap_or_default();
        let windows = self
            .timeout_ticks
            .and_then(|tt| tick_windows(n, table.base_ns(), tick, t, tt));
        let reuse = match windows {
            Some(_) => tick_reuse(n, table.base_ns(), tick, t, tt),
            None => (0, 0),
        };
        FastClock {
            table,
            now: n,
            windows,
            reuse,
            timeouts: tt,
        }
    }

    /// [`Nat::fast_clock`] at `now` given an earlier burst's clock `prev`
    /// of this NAT: `prev`'s windows when `now` is in the same tick (past
    /// its first nanosecond, like `prev`), so a burst in the same tick
    /// makes no division; otherwise computed. Equal to `fast_clock(now)`
    /// for any `prev` (one of another NAT, or from a later time, is just
    /// not reused).
    #[inline]
    pub fn fast_clock_after(&self, prev: &FastClock, now: Timestamp) -> FastClock {
        let n = now.as_nanos();
        if prev.windows.is_some()
            && n > prev.reuse.0
            && n < prev.reuse.1
            && self.timeout_ticks == Some(prev.timeouts)
            && self.table.clock_matches(&prev.table)
        {
            return FastClock { now: n, ..*prev };
        }
        self.fast_clock(now)
    }

    /// Starts loading what [`Nat::fast_check`] of `l` reads.
    #[inline]
    pub fn prefetch_check(&self, l: &Check) {
        l.at.prefetch();
    }

    /// First stage of prefetching the session a later [`Nat::process`] of
    /// `frame` will look up (see `flow_entry::FlowTable::prefetch`): for a
    /// TCP/UDP segment or ICMP query, hashes its key and starts loading the
    /// index group. `None` for frames whose lookup is not by their own
    /// tuple (fragments, ICMP errors, other protocols, IPv6). A hint: it
    /// reads `frame`, changes nothing, counts nothing. Cost: one hash.
    #[inline]
    pub fn prefetch(&self, frame: &[u8], cls: &Classified) -> Option<FlowHash> {
        self.lookup_tuple(frame, cls)
            .map(|t| self.table.prefetch(&key(&t)))
    }

    /// The tuple a frame's session is looked up by (TCP/UDP, ICMP query
    /// request or reply), without side effects; `None` for anything else.
    #[inline]
    fn lookup_tuple(&self, frame: &[u8], cls: &Classified) -> Option<Tuple> {
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

    /// Whether a live session matches `frame`'s own tuple (TCP/UDP, ICMP
    /// echo) at `now`; `false` for frames not looked up by their tuple. A
    /// lookup only: no state, refresh or counter changes (a session found
    /// past its deadline is released, as any lookup does). O(1).
    pub fn has_session(&self, frame: &[u8], cls: &Classified, now: Timestamp) -> bool {
        self.lookup_tuple(frame, cls)
            .is_some_and(|t| self.table.lookup_with(&key(&t), now, |_| ()).is_some())
    }

    /// Second stage: starts loading the session's key cell and slot (see
    /// `flow_entry::FlowTable::prefetch_entry`). A hint only.
    #[inline]
    pub fn prefetch_entry(&self, h: FlowHash) {
        self.table.prefetch_entry(h);
    }

    /// Translate a burst of frames arriving on one side: exactly the result
    /// of calling [`Nat::process`] on each in order (it does), with the
    /// sessions of up to 64 frames prefetched first in two stages
    /// ([`Nat::prefetch`], then [`Nat::prefetch_entry`]), so the cache
    /// misses of the burst's lookups overlap instead of forming one
    /// dependent chain per frame. `verdicts[i]` is set for `frames[i]`;
    /// extra entries of the longer slices are ignored.
    pub fn process_burst(
        &self,
        frames: &mut [&mut [u8]],
        cls: &[Classified],
        ingress: Side,
        now: Timestamp,
        verdicts: &mut [Verdict],
    ) {
        self.process_burst_learn(frames, cls, ingress, now, verdicts, &mut []);
    }

    /// [`Nat::process_burst`] with [`Nat::process_learn`]'s report for
    /// frame `i` in `learned[i]` (for the frames `learned` has room for;
    /// the others as `process`).
    pub fn process_burst_learn(
        &self,
        frames: &mut [&mut [u8]],
        cls: &[Classified],
        ingress: Side,
        now: Timestamp,
        verdicts: &mut [Verdict],
        learned: &mut [Option<Learned>],
    ) {
        let n = frames.len().min(cls.len()).min(verdicts.len());
        let mut start = 0;
        while start < n {
            let end = (start + PREFETCH_CHUNK).min(n);
            if end - start > 1 {
                let mut hashes: [Option<FlowHash>; PREFETCH_CHUNK] = [None; PREFETCH_CHUNK];
                for i in start..end {
                    hashes[i - start] = self.prefetch(frames[i], &cls[i]);
                }
                for h in hashes[..end - start].iter().flatten() {
                    self.table.prefetch_entry(*h);
                }
            }
            for i in start..end {
                verdicts[i] = match learned.get_mut(i) {
                    Some(l) => self.process_learn(frames[i], &cls[i], ingress, now, l),
                    None => self.process(frames[i], &cls[i], ingress, now),
                };
            }
            start = end;
        }
    }

    /// Everything before the session lookup: parse, classify NAT-wise, and
    /// handle what needs no lookup by tuple (fragments, ICMP errors, other
    /// protocols).
    fn prepare(&self, frame: &mut [u8], cls: &Classified, ingress: Side, now: u64) -> Pre {
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
        &self,
        frame: &mut [u8],
        cls: &Classified,
        p: &Prep,
        ingress: Side,
        now: u64,
        mut learn: Option<&mut Option<Learned>>,
    ) -> Verdict {
        let Prep {
            tuple,
            flags,
            icmp_type,
        } = *p;
        let mut step = self.stage(&tuple, ingress, flags, icmp_type, now, learn.as_deref_mut());
        let mut hairpin = false;
        if let Step::Xlat(to) = step
            && ingress == Side::Inside
            && self.cfg.hairpinning
            && self.is_nat_address(to.dst)
        {
            // Hairpin: the translated packet re-enters as if from outside.
            hairpin = true;
            if let Some(l) = learn {
                *l = None;
            }
            step = match self.stage(&to, Side::Outside, flags, icmp_type, now, None) {
                Step::Xlat(to2) => Step::Xlat(to2),
                Step::Untouched => Step::Drop(DropReason::NoSession),
                d @ Step::Drop(_) => d,
            };
        }
        match step {
            Step::Untouched => {
                bump(&self.shared.counters.untouched);
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
                    lock(&self.shared.pool).syn.hold(key, ip, now);
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
                    bump(&self.shared.counters.hairpinned);
                }
                if let Some(fi) = cls.frag
                    && fi.more_fragments
                {
                    self.first_fragment(tuple, to, fi.id as u16, now);
                }
                Verdict::Forward
            }
        }
    }

    /// Traffic NAT cannot translate: untouched if it does not involve NAT
    /// addresses / masqueraded sources, else a counted drop.
    fn other_traffic(
        &self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        ingress: Side,
        reason: DropReason,
    ) -> Verdict {
        let involved = match ingress {
            Side::Inside => self.cfg.is_inside(src) && !self.cfg.is_inside(dst),
            Side::Outside => self.is_nat_address(dst),
        };
        if involved {
            self.drop_(reason)
        } else {
            bump(&self.shared.counters.untouched);
            Verdict::Forward
        }
    }

    /// One NAT stage for a packet with ports: session lookup, else creation.
    fn stage(
        &self,
        t: &Tuple,
        ingress: Side,
        flags: u8,
        icmp_type: Option<u8>,
        now: u64,
        learn: Option<&mut Option<Learned>>,
    ) -> Step {
        if let Some(step) = self.fast(t, ingress, flags, now, learn) {
            return step;
        }
        match ingress {
            Side::Inside => self.create_outbound(t, flags, icmp_type, now),
            Side::Outside => self.create_inbound(t, flags, now),
        }
    }

    /// Established path: lookup, TCP state, refresh, translation target.
    /// With `learn`, a translation also reports the session ([`Learned`]).
    fn fast(
        &self,
        t: &Tuple,
        ingress: Side,
        flags: u8,
        now: u64,
        learn: Option<&mut Option<Learned>>,
    ) -> Option<Step> {
        self.table
            .lookup_with(&key(t), Timestamp::from_nanos(now), |hit| {
                let step = self.on_hit(hit, ingress, flags, now);
                if let (Some(l), Step::Xlat(to)) = (learn, step) {
                    *l = Some(Learned {
                        check: Check {
                            at: hit.located(),
                            reverse: hit.direction() == Direction::Reverse,
                            ingress,
                            proto: t.proto,
                        },
                        to,
                    });
                }
                step
            })
    }

    /// A session hit (under the shard lock): side check, TCP state, refresh,
    /// translation target. O(1).
    fn on_hit(&self, hit: &mut EntryMut<'_, Session>, ingress: Side, flags: u8, now: u64) -> Step {
        let reverse = hit.direction() == Direction::Reverse;
        // The forward key is only valid from the side the session was
        // opened on, the reply key only from the other side: a packet
        // from outside with an inside source (spoofed) is not translated.
        let expected = match (hit.value().orig_side, reverse) {
            (side, false) => side,
            (Side::Inside, true) => Side::Outside,
            (Side::Outside, true) => Side::Inside,
        };
        if expected != ingress {
            return Step::Drop(DropReason::WrongSide);
        }
        let (to, deadline) = {
            let s = hit.value_mut();
            let (to, dir) = if reverse {
                (s.orig.reversed(), Dir::Reply)
            } else {
                (s.xlat, Dir::Orig)
            };
            let class = if s.orig.proto == ip_protocol::TCP {
                s.tcp.on_packet(dir, flags)
            } else {
                TimeoutClass::Established
            };
            (to, self.hit_deadline(s.orig.proto, class, ingress, now))
        };
        // A reply confirms the session (unconfirmed ones are the
        // table's first eviction candidates under pressure).
        if reverse && !hit.is_confirmed() {
            hit.confirm();
        }
        // Publish TCP state and confirmation for `fast_check` (lock-free
        // readers). A reader may see this and the deadline store below in
        // either order: mixing an old class with a new deadline (or the
        // reverse) gives a refresh that moves the deadline — the locked
        // path — unless the two classes' timeouts agree, when the mix is
        // the same answer.
        let aux = AUX_VALID
            | if hit.is_confirmed() { AUX_CONFIRMED } else { 0 }
            | u32::from(hit.value().tcp.bits());
        if hit.aux() != aux {
            hit.set_aux(aux);
        }
        if let Some(d) = deadline
            && self.deadline_moves(d, hit.expires_at().as_nanos())
        {
            hit.set_expires_at(Timestamp::from_nanos(d));
        }
        Step::Xlat(to)
    }

    /// The deadline a session hit at `now` refreshes to (`None`: no
    /// refresh), for a session of protocol `proto` in timeout class
    /// `class` (TCP's; `Established` for the others) hit from `ingress`.
    /// One rule for `on_hit` and `fast_check`.
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

    fn create_outbound(&self, t: &Tuple, flags: u8, icmp_type: Option<u8>, now: u64) -> Step {
        self.note_now(now);
        if !self.cfg.is_inside(t.src) || self.cfg.is_inside(t.dst) {
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
        // The reply key's index group and hint block are cache misses the
        // insert would take one after the other; started as soon as the
        // external endpoint is known, they overlap the mapping inserts.
        let prefetch_reply = |ip: Ipv4Addr, port: u16| {
            let dport = if t.proto == ip_protocol::ICMP {
                port
            } else {
                t.dport
            };
            self.table
                .prefetch(&FlowKey::v4(t.dst, ip, t.proto, dport, port, 0));
        };
        let (ext_ip, ext_port) = {
            let mut pool = lock(&self.shared.pool);
            let ext = self.outbound_mapping(&mut pool, &key, t, now, prefetch_reply);
            if let Ok((ip, port)) = ext
                && t.proto == ip_protocol::TCP
            {
                // The inside host opens the connection a held unsolicited
                // SYN was for (simultaneous open): that SYN is dropped
                // silently, never answered (RFC 5382 REQ-4).
                pool.syn.cancel(&(t.dst, t.dport, ip, port));
            }
            match ext {
                Ok(e) => e,
                Err(r) => return Step::Drop(r),
            }
        };
        let xlat = Tuple {
            src: ext_ip,
            sport: ext_port,
            dport: if t.proto == ip_protocol::ICMP {
                ext_port
            } else {
                t.dport
            },
            ..*t
        };
        let tcp = TcpTrack::opened();
        let session = Session {
            orig: *t,
            xlat,
            orig_side: Side::Inside,
            kind: SessionKind::Masquerade,
            tcp,
            mapped: true,
        };
        self.insert(session, t, Side::Inside, tcp.class(), flags, now)
    }

    /// The external endpoint of an outbound session's mapping `key`: the
    /// existing mapping (one more reference) or a new one. Under the pool
    /// lock (`pool`).
    fn outbound_mapping(
        &self,
        pool: &mut Pool,
        key: &MapKey,
        t: &Tuple,
        now: u64,
        prefetch_reply: impl Fn(Ipv4Addr, u16),
    ) -> Result<(Ipv4Addr, u16), DropReason> {
        if let Some(m) = pool.by_in.get_mut(key) {
            m.refs += 1;
            prefetch_reply(m.ext_ip, m.ext_port);
            let ext = (m.ext_ip, m.ext_port);
            pool.note_remote(key, t.dst);
            return Ok(ext);
        }
        match pool.alloc.allocate(t.proto, t.src, t.sport, now) {
            Ok((ip, port, _)) => {
                prefetch_reply(ip, port);
                pool.by_in.insert(
                    *key,
                    Mapping {
                        ext_ip: ip,
                        ext_port: port,
                        refs: 1,
                    },
                );
                pool.by_ext.insert(endpoint_word(t.proto, ip, port), *key);
                pool.note_remote(key, t.dst);
                pool.event(MappingEventKind::Created, key, (ip, port), now);
                Ok((ip, port))
            }
            Err(AllocError::QuotaExceeded) => Err(DropReason::QuotaExceeded),
            Err(AllocError::Exhausted) => Err(DropReason::PoolExhausted),
            Err(AllocError::Protocol(_)) => Err(DropReason::UnsupportedProtocol),
        }
    }

    /// Insert a new session; on a lost race adopt the winner's translation.
    fn insert(
        &self,
        s: Session,
        t: &Tuple,
        ingress: Side,
        class: TimeoutClass,
        flags: u8,
        now: u64,
    ) -> Step {
        let expires = now.saturating_add(self.timeout(t.proto, class));
        let (fwd, rev, mapping, xlat_pkt) = (
            s.orig,
            s.xlat.reversed(),
            map_key(
                &s,
                self.cfg.mapping == MappingBehavior::AddressAndPortDependent,
            ),
            // The packet that creates the session: forward → xlat; an
            // inbound-created masquerade session is entered by its reverse key.
            if s.orig == *t {
                s.xlat
            } else {
                s.orig.reversed()
            },
        );
        match self.table.insert_pair(
            key(&fwd),
            key(&rev),
            s,
            Timestamp::from_nanos(expires),
            Timestamp::from_nanos(now),
        ) {
            Ok(Inserted::New(_)) => {
                bump(&self.shared.counters.created);
                Step::Xlat(xlat_pkt)
            }
            Ok(Inserted::Existing(..)) => {
                // Lost a race: release our reference, use the winner's session.
                bump(&self.shared.counters.race_lost);
                if let Some(k) = mapping {
                    lock(&self.shared.pool).unref(&k, fwd.dst, now);
                }
                self.fast(t, ingress, flags, now, None)
                    .unwrap_or(Step::Drop(DropReason::TableConflict))
            }
            Err(e) => {
                if let Some(k) = mapping {
                    lock(&self.shared.pool).unref(&k, fwd.dst, now);
                }
                Step::Drop(match e {
                    InsertError::Full => DropReason::TableFull,
                    InsertError::Conflict => DropReason::TableConflict,
                })
            }
        }
    }

    fn create_inbound(&self, t: &Tuple, flags: u8, now: u64) -> Step {
        self.note_now(now);
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
            return self.insert(s, t, Side::Outside, TimeoutClass::Transitory, flags, now);
        }
        let (is_nat, mapped) = {
            let mut pool = lock(&self.shared.pool);
            let is_nat = self.is_nat_address(t.dst);
            let mapped = pool
                .by_ext
                .get(&endpoint_word(t.proto, t.dst, t.dport))
                .copied();
            let mut out = None;
            let admitted = |pool: &Pool, k: &MapKey| match self.cfg.filtering {
                FilteringBehavior::EndpointIndependent => true,
                FilteringBehavior::AddressDependent => pool.has_remote(k, t.src),
                FilteringBehavior::AddressAndPortDependent => false,
            };
            let adm = mapped.is_some_and(|k| admitted(&pool, &k));
            if let Some(k) = mapped
                && adm
                && t.proto != ip_protocol::ICMP
                && (t.proto != ip_protocol::TCP || syn_only)
                && let Some(m) = pool.by_in.get_mut(&k)
            {
                m.refs += 1;
                pool.note_remote(&k, t.src);
                out = Some(k);
            }
            (is_nat, mapped.map(|k| (k, out.is_some(), adm)))
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
                self.insert(s, t, Side::Outside, class, flags, now)
            }
        }
    }

    /// ICMP error: find the session through the embedded packet; translate
    /// outer destination (and source from inside) and the embedded header.
    /// Never creates, refreshes or removes a session (RFC 5508 REQ-6).
    fn icmp_error(
        &self,
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
        let found = self
            .table
            .lookup_with(&key(&ek), Timestamp::from_nanos(now), |hit| {
                let reverse = hit.direction() == Direction::Reverse;
                let s = hit.value();
                if reverse { s.orig } else { s.xlat.reversed() }
            });
        let Some(new_emb) = found else {
            return self.other_traffic(src, dst, ingress, DropReason::IcmpErrorNoSession);
        };
        let outer_src = if ingress == Side::Inside && self.cfg.is_inside(src) {
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
        bump(&self.shared.counters.icmp_errors);
        Verdict::Forward
    }

    fn first_fragment(&self, from: Tuple, to: Tuple, id: u16, now: u64) {
        let key = FragKey {
            src: from.src,
            dst: from.dst,
            proto: from.proto,
            id,
        };
        let x = FragXlat {
            src: to.src,
            dst: to.dst,
        };
        let held = lock(&self.frags).record(key, x, now);
        if held.is_empty() {
            return;
        }
        let mut out = Vec::with_capacity(held.len());
        for mut h in held {
            // Held frames are copies: classify again (slow path, out of order only).
            let ok = net::classify(&h.frame).is_ok_and(|c| {
                c.l3_offset as usize == h.l3_offset
                    && rw::rewrite_ipv4_addrs(&mut h.frame, &c, x.src, x.dst).is_ok()
            });
            if ok {
                bump(&self.shared.counters.fragments);
                out.push(h.frame);
            } else {
                self.drop_(DropReason::Malformed);
            }
        }
        self.released.push(&mut out);
    }

    #[allow(clippy::too_many_arguments)]
    fn non_first_fragment(
        &self,
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
        let mut frags = lock(&self.frags);
        if let Some(x) = frags.lookup(&key, now) {
            drop(frags);
            if rw::rewrite_ipv4_addrs(frame, cls, x.src, x.dst).is_err() {
                return self.drop_(DropReason::Malformed);
            }
            bump(&self.shared.counters.fragments);
            return Verdict::Forward;
        }
        // Unknown datagram: only hold what NAT would translate.
        let ours = match ingress {
            Side::Inside => self.cfg.is_inside(src) && !self.cfg.is_inside(dst),
            Side::Outside => self.is_nat_address(dst),
        };
        if !ours {
            drop(frags);
            bump(&self.shared.counters.untouched);
            return Verdict::Forward;
        }
        match frags.hold(key, l3, frame, now) {
            Ok(()) => {
                drop(frags);
                self.drop_(DropReason::FragmentHeld)
            }
            Err(_) => {
                drop(frags);
                self.drop_(DropReason::FragmentBudget)
            }
        }
    }

    /// Move fragments released since the last call (held out-of-order
    /// fragments whose first fragment has now been translated, already
    /// rewritten) into `out`, to be forwarded by the caller like any
    /// packet (TTL decremented). Call after each burst. O(released).
    pub fn take_released(&self, out: &mut Vec<Vec<u8>>) {
        self.released.take(out);
    }

    /// Move frames the NAT itself sends into `out`: the ICMP port
    /// unreachable answers to held unsolicited SYNs that [`Nat::poll`]
    /// produced (`unsolicited_syn = "hold"`; zero MACs, TTL 64), to be
    /// routed by the caller as its own (TTL untouched). Call after
    /// polling. O(frames).
    pub fn take_originated(&self, out: &mut Vec<Vec<u8>>) {
        self.originated.take(out);
    }

    /// Move up to `max` mapping events (oldest first) into `out`
    /// (`log_mappings`; nothing otherwise). Returns how many. O(moved), one
    /// short hold of the pool lock; call from a poll, not per packet.
    pub fn take_mapping_events(&self, out: &mut Vec<MappingEvent>, max: usize) -> usize {
        if !self.cfg.log_mappings {
            return 0;
        }
        let mut p = lock(&self.shared.pool);
        let Some(q) = &mut p.events else { return 0 };
        let n = q.len().min(max);
        out.extend(q.drain(..n));
        n
    }

    /// Expire sessions due by `now` (bounded by `budget` removals) and
    /// fragment entries and port hold-downs. Returns sessions removed.
    pub fn poll(&self, now: Timestamp, budget: usize) -> usize {
        self.poll_owned(now, budget, 0, 1)
    }

    /// [`Nat::poll`] for worker `worker` of `workers`: expires the sessions
    /// of the flow-table shards that worker owns
    /// (`flow_entry::FlowTable::poll_owned`); worker 0 also expires fragment
    /// records and port hold-downs. Every worker polling its share does
    /// what one `poll` does.
    pub fn poll_owned(
        &self,
        now: Timestamp,
        budget: usize,
        worker: usize,
        workers: usize,
    ) -> usize {
        let now = now.as_nanos();
        self.note_now(now);
        let n = self
            .table
            .poll_owned(Timestamp::from_nanos(now), budget, worker, workers);
        if worker.is_multiple_of(workers.max(1)) {
            lock(&self.frags).expire(now);
            let mut answers = Vec::new();
            {
                let mut pool = lock(&self.shared.pool);
                pool.alloc.expire_holds(now);
                pool.syn
                    .expire(now, |k, quote| answers.push(syn_refused(k, quote)));
            }
            self.originated.push(&mut answers);
        }
        n
    }

    /// Counter snapshot. O(reasons).
    #[must_use]
    pub fn stats(&self) -> NatStats {
        let c = &self.shared.counters;
        let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let (alloc, mappings, syn_hold, mapping_events_dropped) = {
            let p = lock(&self.shared.pool);
            (
                p.alloc.stats(),
                p.by_in.len() as u64,
                p.syn.stats(),
                p.events_dropped,
            )
        };
        NatStats {
            sessions_active: self.table.len() as u64,
            ports_in_use: alloc.in_use,
            mappings,
            created: ld(&c.created),
            race_lost: ld(&c.race_lost),
            expired: ld(&c.released[ReleaseReason::Expired.index()]),
            lazily_expired: ld(&c.released[ReleaseReason::LazyExpired.index()]),
            drained: ld(&c.released[ReleaseReason::Drained.index()]),
            evicted: ld(&c.released[ReleaseReason::Evicted.index()]),
            removed: ld(&c.released[ReleaseReason::Removed.index()]),
            teardown: ld(&c.released[ReleaseReason::Teardown.index()]),
            hairpinned: ld(&c.hairpinned),
            icmp_errors_translated: ld(&c.icmp_errors),
            fragments_translated: ld(&c.fragments),
            untouched: ld(&c.untouched),
            drops: DropReason::ALL
                .iter()
                .zip(&c.drops)
                .map(|(r, a)| (r.name(), ld(a)))
                .collect(),
            alloc,
            fragments: lock(&self.frags).stats(),
            syn_hold,
            mapping_events_dropped,
        }
    }

    /// Drop count for one reason. O(reasons).
    #[must_use]
    pub fn drops(&self, r: DropReason) -> u64 {
        let i = DropReason::ALL.iter().position(|&x| x == r).unwrap_or(0);
        self.shared.counters.drops[i].load(Ordering::Relaxed)
    }

    /// Sessions matching `filter`, at most `limit`. O(table) always (the
    /// table's scan visits every entry): locks each shard in turn; for
    /// control, never the packet path.
    #[must_use]
    pub fn sessions_scan(&self, filter: &SessionFilter, limit: usize) -> Vec<SessionInfo> {
        let mut out = Vec::new();
        self.table.scan(|_, _, s, exp| {
            if out.len() >= limit {
                return;
            }
            let (inside, external, remote) = s.endpoints();
            if filter.matches(s) {
                out.push(SessionInfo {
                    kind: s.kind,
                    proto: s.orig.proto,
                    inside,
                    external,
                    remote,
                    expires_at_ns: exp.as_nanos(),
                });
            }
        });
        out
    }

    /// Remove every session matching `filter` (an operator's "clear
    /// translations"): each through the same release path as expiry (its
    /// port returned, counted as `removed`), both keys at once; a session
    /// created meanwhile in a reused slot is never touched. Returns how
    /// many were removed. A scan: O(table), one shard locked at a time
    /// while listing; for control, never the packet path.
    pub fn sessions_clear(&self, filter: &SessionFilter) -> usize {
        self.table.remove_matching(|s| filter.matches(s))
    }
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
}

#[cfg(test)]
mod window_tests {
    use proptest::prelude::*;

    /// What `fast_check_exact` decides for a live-looking deadline `dl`
    /// (ticks): `peek` finds it live, and the refresh to `now + timeout`
    /// does not move it by more than a tick (`Nat::deadline_moves`).
    fn exact(base: u64, t: u64, now: u64, timeout_ticks: u64, dl: u32) -> bool {
        let tick = now.saturating_sub(base) / t;
        if u64::from(dl) <= tick {
            return false;
        }
        let cur = base.saturating_add(u64::from(dl).saturating_mul(t));
        let d = now.saturating_add(timeout_ticks * t);
        !(d > cur.saturating_add(t) || d.saturating_add(t) < cur)
    }

    proptest! {
        /// The per-burst windows give `fast_check_exact`'s answer for every
        /// deadline: around the edges and anywhere.
        #[test]
        fn serve_window_is_the_exact_refresh_test(
            t in prop_oneof![Just(1_000_000_000u64), Just(100_000_000), Just(1), 1u64..5_000_000_000],
            base_ticks in 0u64..2_000_000_000,
            since_ticks in 0u64..4_000_000_000,
            frac in prop_oneof![Just(0u64), 0u64..u64::MAX],
            timeout in prop_oneof![0u64..4, 0u64..300_000_000],
            far in any::<u32>(),
        ) {
            // Times past u64 are no input (the windows' own overflow
            // checks are tested by `fits` below).
            let base = base_ticks * t;
            let Some(since) = since_ticks.checked_mul(t).and_then(|x| x.checked_add(frac % t)) else {
                return Ok(());
            };
            let Some(now) = base.checked_add(since) else { return Ok(()) };
            let tick = since / t;
            let w = super::tick_windows(now, base, tick, t, [timeout; 4]);
            let fits = now.checked_add(timeout * t).and_then(|x| x.checked_add(2 * t)).is_some();
            prop_assert_eq!(w.is_some(), fits);
            let Some(w) = w else { return Ok(()) };
            let (lo, hi) = w[0];
            let k = tick + timeout;
            let near = (k.saturating_sub(4)..k + 5).filter_map(|d| u32::try_from(d).ok());
            for dl in near.chain([far, 0, u32::MAX]) {
                let w = u64::from(dl) >= lo && u64::from(dl) <= hi;
                prop_assert_eq!(w, exact(base, t, now, timeout, dl), "dl {} lo {} hi {}", dl, lo, hi);
            }
        }

        /// Every time in `tick_reuse`'s range has the windows of the time
        /// it was computed at; the range ends at the next tick (or the
        /// overflow limit) and is empty only at a tick's first nanosecond
        /// or near that limit.
        #[test]
        fn tick_reuse_keeps_exactly_the_same_windows(
            t in prop_oneof![Just(1_000_000_000u64), Just(1), Just(2), 1u64..5_000_000_000],
            base in prop_oneof![0u64..1_000_000_000_000, Just(u64::MAX / 2), any::<u64>()],
            since in prop_oneof![0u64..10_000_000_000_000, any::<u64>()],
            tt in prop::array::uniform4(prop_oneof![0u64..1_000, 0u64..u64::MAX / 4]),
            probe in any::<u64>(),
        ) {
            let Some(now) = base.checked_add(since) else { return Ok(()) };
            let at = |n: u64| {
                let tick = n.checked_sub(base)? / t;
                super::tick_windows(n, base, tick, t, tt)
            };
            let Some(w) = at(now) else { return Ok(()) };
            let (lo, hi) = super::tick_reuse(now, base, since / t, t, tt);
            if lo >= hi {
                // Not reusable: `now` at a tick's first nanosecond or
                // near the overflow limit.
                let start = base + since / t * t;
                let limit = tt.iter().max().unwrap() * t + 2 * t;
                prop_assert!(now == start || now > u64::MAX - limit, "{} {}", now, start);
                return Ok(());
            }
            prop_assert!(lo < now && now < hi);
            let inside = lo + 1 + probe % (hi - lo - 1);
            for n in [lo + 1, inside, hi - 1] {
                prop_assert_eq!(at(n), Some(w), "n {} in ({}, {})", n, lo, hi);
            }
            // Past the end: the next tick, or no windows (overflow).
            prop_assert_ne!(at(hi), Some(w));
        }
    }
}
