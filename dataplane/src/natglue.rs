//! Glue between the pipeline and the `nat` crate: configuration mapping,
//! the NAT stage (side from the port role, verdict → disposition), released
//! fragments, and the NAT figures for the summary.

use core::net::{IpAddr, Ipv4Addr};
use core::ops::{Deref, DerefMut};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use net::Classified;
use serde::Serialize;

use crate::Timestamp;
use crate::config::{Config, Role};
use crate::pipeline::{BuildError, DropReason};

/// The `[nat]` section: the `nat` crate's own configuration type.
pub type NatConfig = nat::NatConfig;

/// Validate the `[nat]` section: `Err((field path below nat, reason))`.
pub fn validate(cfg: &NatConfig) -> Result<(), (String, String)> {
    cfg.validate()
        .map_err(|e| (e.path.clone(), e.problem.to_string()))
}

/// Whether `a` is a NAT address (a pool address or a port-forward external
/// address). O(pool prefixes + rules).
pub fn is_nat_address(cfg: &NatConfig, a: Ipv4Addr) -> bool {
    cfg.pools
        .iter()
        .any(|p| p.addresses.iter().any(|pre| pre.contains(a)))
        || cfg.port_forwards.iter().any(|r| r.external == a)
}

/// The flow-table configuration for NAT sessions from `[flow_table]`.
pub fn table_config(config: &Config) -> flow_entry::FlowTableConfig {
    let ft = &config.flow_table;
    flow_entry::FlowTableConfig {
        shards: ft.shards,
        capacity: ft.capacity,
        high_watermark: ft.high_watermark,
        low_watermark: ft.low_watermark,
        tick: core::time::Duration::from_millis(ft.tick_ms),
        ..flow_entry::FlowTableConfig::default()
    }
}

/// NAT figures for the summary.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NatSummary {
    pub sessions_active: u64,
    pub ports_in_use: u64,
    pub created: u64,
    pub expired: u64,
    pub evicted: u64,
    /// NAT drops by the NAT's reason name (non-zero only).
    pub drops: BTreeMap<String, u64>,
}

/// What the NAT stage decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatOutcome {
    /// Continue to L3 forwarding (frame possibly rewritten).
    Forward,
    /// Dropped, with the pipeline's reason.
    Drop(DropReason),
    /// Dropped for quota/pool exhaustion and the config asks for ICMP 3/13.
    DropWithIcmp(DropReason),
    /// NAT kept the frame (out-of-order fragment); not a loss.
    Held,
    /// Several workers: the first half of a hairpin is done; worker `w`
    /// owns the destination's sessions and finishes it.
    Hairpin(u16),
    /// Several workers: a later fragment of a datagram worker `w` owns
    /// (its first fragment went there): hand it on unchanged.
    Owner(u16),
}

/// Frames per `nat::Nat::process_burst` call (the NAT batches its session
/// lookups 64 frames at a time).
pub const NAT_CHUNK: usize = 64;

/// The NAT stage of the pipeline (one per process, shared by workers and
/// the control thread): one `nat::Nat` per worker.
///
/// Each NAT is a single-writer object (`&mut self` on every packet
/// method, no locks inside) holding the sessions its worker owns. With
/// several workers the owner of a frame's session is computed from the
/// frame ([`NatStage::owner_of`], the shared port-block map
/// `nat::blocks::PortBlocks`), and a frame that reaches another worker is
/// handed to its owner. A worker's NAT sits behind a mutex that only its
/// own worker takes on the packet path (once per burst: never contended
/// by other workers) and the control thread takes for its reads. What the
/// stages around the NAT ask per frame ([`NatStage::is_pool`],
/// [`NatStage::passes_untranslated`]) is answered from copies kept
/// outside the mutexes.
pub struct NatStage {
    nats: Box<[Mutex<nat::Nat>]>,
    /// The shared block → owner map (several workers only).
    blocks: Option<Arc<nat::blocks::PortBlocks>>,
    /// Copy of the NAT's configuration (pool and port-forward addresses,
    /// for [`NatStage::is_pool`] without a lock).
    cfg: NatConfig,
    inside: nat::config::InsideSet,
    icmp_on_quota: bool,
}

/// One worker's locked NAT ([`NatStage::lock`]): derefs to `nat::Nat`
/// (stats, session scans, polls), plus the pipeline's side of the NAT
/// stage. Unlocks when dropped.
pub struct NatGuard<'a> {
    nat: MutexGuard<'a, nat::Nat>,
    stage: &'a NatStage,
}

impl Deref for NatGuard<'_> {
    type Target = nat::Nat;
    fn deref(&self) -> &nat::Nat {
        &self.nat
    }
}

impl DerefMut for NatGuard<'_> {
    fn deref_mut(&mut self) -> &mut nat::Nat {
        &mut self.nat
    }
}

impl NatStage {
    /// The NAT stage for `workers` workers: each worker's NAT holds at
    /// most `flow_table.capacity / workers` sessions (rounded up).
    ///
    /// # Errors
    /// [`BuildError::Nat`] when the NAT refuses the configuration.
    pub fn new(cfg: &NatConfig, config: &Config, workers: usize) -> Result<NatStage, BuildError> {
        let workers = workers.clamp(1, nat::blocks::MAX_WORKERS);
        let mut table = table_config(config);
        table.capacity = table.capacity.div_ceil(workers).max(1);
        let blocks = (workers > 1).then(|| Arc::new(nat::blocks::PortBlocks::new(cfg, workers)));
        let nats = (0..workers)
            .map(|w| {
                let n = match &blocks {
                    Some(b) => nat::Nat::for_worker(cfg.clone(), table.clone(), b.clone(), w),
                    None => nat::Nat::new(cfg.clone(), table.clone()),
                };
                n.map(Mutex::new)
                    .map_err(|e| BuildError::Nat(e.to_string()))
            })
            .collect::<Result<Box<[_]>, _>>()?;
        Ok(NatStage {
            nats,
            blocks,
            cfg: cfg.clone(),
            inside: cfg.inside_set(),
            icmp_on_quota: cfg.icmp_on_quota_exceeded,
        })
    }

    /// Number of workers (NATs).
    pub fn workers(&self) -> usize {
        self.nats.len()
    }

    /// Locks worker `worker`'s NAT (the last one for a larger index). A
    /// poisoned lock (a thread panicked holding it) is taken over: the
    /// NAT's state is consistent between calls, and the dataplane keeps
    /// forwarding.
    pub fn lock(&self, worker: usize) -> NatGuard<'_> {
        let m = &self.nats[worker.min(self.nats.len() - 1)];
        NatGuard {
            nat: m.lock().unwrap_or_else(PoisonError::into_inner),
            stage: self,
        }
    }

    /// The worker owning the session of IPv4 frame `frame` arriving on a
    /// port of role `role`; `None` with one worker, or when no session is
    /// involved or none can match (the receiving worker decides). Lock-free.
    #[inline]
    pub fn owner_of(&self, frame: &[u8], cls: &Classified, role: Role) -> Option<usize> {
        self.blocks
            .as_ref()
            .and_then(|b| b.owner_of(frame, cls, role == Role::Inside))
    }

    /// The port-block map's counters (several workers only).
    pub fn block_stats(&self) -> Option<nat::blocks::BlockStats> {
        self.blocks.as_ref().map(|b| b.stats())
    }

    /// Starts loading the index bucket of the session a later NAT pass of
    /// `worker` will look `frame` up by (a hint: changes nothing). Only
    /// when the lock is free at once (`try_lock`): a hint never waits.
    pub fn prefetch(&self, worker: usize, frame: &[u8], cls: &Classified) {
        if let Ok(g) = self.nats[worker.min(self.nats.len() - 1)].try_lock() {
            g.prefetch(frame, cls);
        }
    }

    /// The NAT's configuration (a copy; no lock).
    pub fn config(&self) -> &NatConfig {
        &self.cfg
    }

    /// Whether `a` is a pool or port-forward address. No lock.
    pub fn is_pool(&self, a: Ipv4Addr) -> bool {
        is_nat_address(&self.cfg, a)
    }

    /// Whether an outside → inside packet to `dst` that NAT left untouched
    /// may still be forwarded: only if it is not for an inside prefix (the
    /// NAT is also the stateful edge of the inside network). No lock.
    pub fn passes_untranslated(&self, dst: Ipv4Addr) -> bool {
        !self.inside.contains(dst)
    }

    fn outcome(&self, v: nat::Verdict) -> NatOutcome {
        use nat::DropReason as N;
        match v {
            nat::Verdict::Forward => NatOutcome::Forward,
            nat::Verdict::HandOff(w) => NatOutcome::Hairpin(w),
            nat::Verdict::Owner(w) => NatOutcome::Owner(w),
            nat::Verdict::Drop(r) => match r {
                N::FragmentHeld => NatOutcome::Held,
                N::NoSession
                | N::Filtered
                | N::TcpNotSyn
                | N::SourceNotAllowed
                | N::IcmpErrorNoSession => NatOutcome::Drop(DropReason::UnsolicitedInbound),
                N::QuotaExceeded | N::PoolExhausted if self.icmp_on_quota => {
                    NatOutcome::DropWithIcmp(DropReason::NatExhausted)
                }
                N::QuotaExceeded | N::PoolExhausted => NatOutcome::Drop(DropReason::NatExhausted),
                N::TableFull => NatOutcome::Drop(DropReason::FlowTableFull),
                N::BadIcmpChecksum | N::BadEmbeddedChecksum => {
                    NatOutcome::Drop(DropReason::BadIcmpChecksum)
                }
                _ => NatOutcome::Drop(DropReason::Nat),
            },
        }
    }

    fn side(ingress: Role) -> nat::Side {
        match ingress {
            Role::Inside => nat::Side::Inside,
            Role::Outside => nat::Side::Outside,
        }
    }

    /// Every worker's NAT statistics summed, as JSON (`ctl nat`), with the
    /// port-block map's counters under `blocks` (several workers). Locks
    /// each NAT once, in turn.
    pub fn stats_json(&self) -> serde_json::Value {
        let mut sum = serde_json::Value::Null;
        for w in 0..self.workers() {
            let v = serde_json::to_value(self.lock(w).stats()).unwrap_or_default();
            add_json(&mut sum, &v);
        }
        if let (Some(b), serde_json::Value::Object(m)) = (self.block_stats(), &mut sum) {
            m.insert("blocks".into(), serde_json::to_value(b).unwrap_or_default());
        }
        sum
    }

    /// Sessions of every worker matching `f`, at most `limit` in all
    /// (worker order, then table order). Locks each NAT once, in turn.
    pub fn sessions_scan(&self, f: &nat::SessionFilter, limit: usize) -> Vec<nat::SessionInfo> {
        self.sessions_by_worker(f, limit)
            .into_iter()
            .map(|(_, s)| s)
            .collect()
    }

    /// [`NatStage::sessions_scan`] with the worker owning each session.
    pub fn sessions_by_worker(
        &self,
        f: &nat::SessionFilter,
        limit: usize,
    ) -> Vec<(usize, nat::SessionInfo)> {
        let mut out = Vec::new();
        for w in 0..self.workers() {
            if out.len() >= limit {
                break;
            }
            let got = self.lock(w).sessions_scan(f, limit - out.len());
            out.extend(got.into_iter().map(|s| (w, s)));
        }
        out
    }

    /// The latest time any worker's NAT was given (ns): what `ctl`
    /// measures sessions' remaining time from.
    pub fn clock_ns(&self) -> u64 {
        (0..self.workers())
            .map(|w| self.lock(w).clock_ns())
            .max()
            .unwrap_or(0)
    }

    /// Release every worker's sessions matching `f`; how many.
    pub fn sessions_clear(&self, f: &nat::SessionFilter) -> usize {
        (0..self.workers())
            .map(|w| self.lock(w).sessions_clear(f))
            .sum()
    }

    /// Figures for the summary (locks each NAT once). O(workers × reasons).
    pub fn summary(&self) -> NatSummary {
        let mut out = NatSummary::default();
        for w in 0..self.workers() {
            let s = self.lock(w).stats();
            out.sessions_active += s.sessions_active;
            out.ports_in_use += s.ports_in_use;
            out.created += s.created;
            out.expired += s.expired + s.lazily_expired;
            out.evicted += s.evicted + s.drained;
            for (k, n) in s.drops.iter().filter(|(_, n)| **n > 0) {
                *out.drops.entry((*k).to_string()).or_default() += *n;
            }
        }
        out
    }
}

/// Add the numbers of `b` into `a` (same shape; `a` null takes `b`).
fn add_json(a: &mut serde_json::Value, b: &serde_json::Value) {
    use serde_json::Value as V;
    match (a, b) {
        (a @ V::Null, b) => *a = b.clone(),
        (V::Object(x), V::Object(y)) => {
            for (k, v) in y {
                add_json(x.entry(k.clone()).or_insert(V::Null), v);
            }
        }
        (V::Number(x), V::Number(y)) => {
            if let (Some(p), Some(q)) = (x.as_u64(), y.as_u64()) {
                *x = (p + q).into();
            }
        }
        _ => {}
    }
}

impl NatGuard<'_> {
    /// Translate one frame in place.
    pub fn process(
        &mut self,
        frame: &mut [u8],
        cls: &Classified,
        ingress: Role,
        now: Timestamp,
    ) -> NatOutcome {
        let v = self.nat.process(frame, cls, NatStage::side(ingress), now);
        self.stage.outcome(v)
    }

    /// The second half of a hairpin another worker started
    /// ([`NatOutcome::Hairpin`]): `nat::Nat::process_hairpin`.
    pub fn process_hairpin(
        &mut self,
        frame: &mut [u8],
        cls: &Classified,
        now: Timestamp,
    ) -> NatOutcome {
        let v = self.nat.process_hairpin(frame, cls, now);
        self.stage.outcome(v)
    }

    /// Translate a burst arriving on one side (`nat::Nat::process_burst`:
    /// the burst's sessions prefetched, then each frame in order). One
    /// outcome per frame is appended to `out`. No allocation: the NAT is
    /// called on chunks of [`NAT_CHUNK`] frames (its own prefetch chunk, so
    /// the result is the same as one call over the whole burst) with a
    /// stack verdict buffer.
    pub fn process_burst(
        &mut self,
        frames: &mut [&mut [u8]],
        cls: &[Classified],
        ingress: Role,
        now: Timestamp,
        out: &mut Vec<NatOutcome>,
    ) {
        if let ([fr], [cl]) = (&mut *frames, cls) {
            // One frame (burst-1 replay): no verdict buffer to initialise.
            out.push(self.process(fr, cl, ingress, now));
            return;
        }
        let side = NatStage::side(ingress);
        let mut verdicts = [nat::Verdict::Forward; NAT_CHUNK];
        for (fr, cl) in frames.chunks_mut(NAT_CHUNK).zip(cls.chunks(NAT_CHUNK)) {
            let v = &mut verdicts[..fr.len()];
            v.fill(nat::Verdict::Forward);
            self.nat.process_burst(fr, cl, side, now, v);
            out.extend(v.iter().map(|&v| self.stage.outcome(v)));
        }
    }
}

/// Whether `ip` is an IPv4 NAT address of `cfg` (helper for ARP).
pub fn answers_arp(cfg: &NatConfig, ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => is_nat_address(cfg, a),
        IpAddr::V6(_) => false,
    }
}
