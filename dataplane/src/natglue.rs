//! Glue between the pipeline and the `nat` crate: configuration mapping,
//! the NAT stage (side from the port role, verdict → disposition), released
//! fragments, and the NAT figures for the summary.

use core::net::{IpAddr, Ipv4Addr};
use core::ops::{Deref, DerefMut};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

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
}

/// Frames per `nat::Nat::process_burst` call (the NAT batches its session
/// lookups 64 frames at a time).
pub const NAT_CHUNK: usize = 64;

/// The NAT stage of the pipeline (one per process, shared by workers and
/// the control thread).
///
/// The NAT is a single-writer object (`&mut self` on every packet method,
/// no locks inside); here it sits behind one mutex. A worker takes it once
/// per burst for the whole NAT pass ([`NatStage::lock`], then
/// [`NatGuard::process_burst`] and `take_released`), worker 0 once per
/// timer poll (only worker 0 polls the NAT), the control thread for its reads. What the stages
/// around the NAT ask per frame ([`NatStage::is_pool`],
/// [`NatStage::passes_untranslated`]) is answered from copies kept outside
/// the mutex, without it.
pub struct NatStage {
    nat: Mutex<nat::Nat>,
    /// Copy of the NAT's configuration (pool and port-forward addresses,
    /// for [`NatStage::is_pool`] without the lock).
    cfg: NatConfig,
    inside: Vec<nat::Ipv4Prefix>,
    icmp_on_quota: bool,
}

/// The locked NAT ([`NatStage::lock`]): derefs to `nat::Nat` (stats,
/// session scans, polls), plus the pipeline's side of the NAT stage.
/// Unlocks when dropped.
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
    /// # Errors
    /// [`BuildError::Nat`] when the NAT refuses the configuration.
    pub fn new(cfg: &NatConfig, config: &Config) -> Result<NatStage, BuildError> {
        let nat = nat::Nat::new(cfg.clone(), table_config(config))
            .map_err(|e| BuildError::Nat(e.to_string()))?;
        Ok(NatStage {
            nat: Mutex::new(nat),
            cfg: cfg.clone(),
            inside: cfg.inside.clone(),
            icmp_on_quota: cfg.icmp_on_quota_exceeded,
        })
    }

    /// Locks the NAT. A poisoned lock (a thread panicked holding it) is
    /// taken over: the NAT's state is consistent between calls, and the
    /// dataplane keeps forwarding.
    pub fn lock(&self) -> NatGuard<'_> {
        NatGuard {
            nat: self.nat.lock().unwrap_or_else(PoisonError::into_inner),
            stage: self,
        }
    }

    /// Starts loading the index bucket of the session a later NAT pass will
    /// look `frame` up by (a hint: changes nothing). Only when the lock is
    /// free at once (`try_lock`): a hint never waits.
    pub fn prefetch(&self, frame: &[u8], cls: &Classified) {
        if let Ok(g) = self.nat.try_lock() {
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
        !self.inside.iter().any(|p| p.contains(dst))
    }

    fn outcome(&self, v: nat::Verdict) -> NatOutcome {
        use nat::DropReason as N;
        match v {
            nat::Verdict::Forward => NatOutcome::Forward,
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

    /// Figures for the summary (locks the NAT once). O(reasons).
    pub fn summary(&self) -> NatSummary {
        let s = self.lock().stats();
        NatSummary {
            sessions_active: s.sessions_active,
            ports_in_use: s.ports_in_use,
            created: s.created,
            expired: s.expired + s.lazily_expired,
            evicted: s.evicted + s.drained,
            drops: s
                .drops
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(k, n)| ((*k).to_string(), *n))
                .collect(),
        }
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
