//! Glue between the pipeline and the `nat` crate: configuration mapping,
//! the NAT stage (side from the port role, verdict → disposition), released
//! fragments, and the NAT figures for the summary.

use core::net::{IpAddr, Ipv4Addr};
use std::collections::BTreeMap;

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

/// The NAT stage of the pipeline (one per process, shared by workers).
pub struct NatStage {
    nat: nat::Nat,
    inside: Vec<nat::Ipv4Prefix>,
    icmp_on_quota: bool,
}

impl NatStage {
    /// # Errors
    /// [`BuildError::Nat`] when the NAT refuses the configuration.
    pub fn new(cfg: &NatConfig, config: &Config) -> Result<NatStage, BuildError> {
        let inside = cfg.inside.clone();
        let icmp_on_quota = cfg.icmp_on_quota_exceeded;
        let nat = nat::Nat::new(cfg.clone(), table_config(config))
            .map_err(|e| BuildError::Nat(e.to_string()))?;
        Ok(NatStage {
            nat,
            inside,
            icmp_on_quota,
        })
    }

    /// The NAT itself (stats, session scans).
    pub fn nat(&self) -> &nat::Nat {
        &self.nat
    }

    /// Whether `a` is a pool or port-forward address.
    pub fn is_pool(&self, a: Ipv4Addr) -> bool {
        is_nat_address(self.nat.config(), a)
    }

    /// Whether an outside → inside packet to `dst` that NAT left untouched
    /// may still be forwarded: only if it is not for an inside prefix (the
    /// NAT is also the stateful edge of the inside network).
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

    /// Translate one frame in place.
    pub fn process(
        &self,
        frame: &mut [u8],
        cls: &Classified,
        ingress: Role,
        now: Timestamp,
    ) -> NatOutcome {
        self.outcome(self.nat.process(frame, cls, Self::side(ingress), now))
    }

    /// [`NatStage::process`], also reporting the session for the fast
    /// path's cache (`nat::Nat::process_learn`).
    pub fn process_learn(
        &self,
        frame: &mut [u8],
        cls: &Classified,
        ingress: Role,
        now: Timestamp,
        learn: &mut Option<nat::Learned>,
    ) -> NatOutcome {
        self.outcome(
            self.nat
                .process_learn(frame, cls, Self::side(ingress), now, learn),
        )
    }

    /// Whether a frame of the session `l` checks may be rewritten to its
    /// translated tuple without the NAT (`nat::Nat::fast_check`).
    /// Lock-free, no side effects.
    #[inline(always)]
    pub fn fast_check(&self, l: &nat::Check, tcp_flags: u8, now: &nat::FastClock) -> bool {
        self.nat.fast_check(l, tcp_flags, now)
    }

    /// `now` prepared for [`NatStage::fast_check`] (once per burst), from
    /// the last burst's if there was one (`nat::Nat::fast_clock_after`: no
    /// division within a tick).
    #[inline]
    pub fn fast_clock(&self, prev: Option<&nat::FastClock>, now: Timestamp) -> nat::FastClock {
        match prev {
            Some(p) => self.nat.fast_clock_after(p, now),
            None => self.nat.fast_clock(now),
        }
    }

    /// Starts loading what [`NatStage::fast_check`] of `l` reads.
    #[inline]
    pub fn prefetch_check(&self, l: &nat::Check) {
        self.nat.prefetch_check(l);
    }

    /// Prefetch hint for the session of `frame` (`nat::Nat::prefetch`).
    #[inline]
    pub fn prefetch(&self, frame: &[u8], cls: &Classified) -> Option<nat::FlowHash> {
        self.nat.prefetch(frame, cls)
    }

    /// Whether a live NAT session matches the frame (`nat::Nat::has_session`).
    pub fn has_session(&self, frame: &[u8], cls: &Classified, now: Timestamp) -> bool {
        self.nat.has_session(frame, cls, now)
    }

    /// Second prefetch stage (`nat::Nat::prefetch_entry`).
    #[inline]
    pub fn prefetch_entry(&self, h: nat::FlowHash) {
        self.nat.prefetch_entry(h);
    }

    /// Translate a burst arriving on one side (`nat::Nat::process_burst`:
    /// the burst's sessions prefetched, then each frame in order). One
    /// outcome per frame is appended to `out`, and one
    /// `nat::Nat::process_learn` report to `learned`. No allocation: the NAT is
    /// called on chunks of [`NAT_CHUNK`] frames (its own prefetch chunk, so
    /// the result is the same as one call over the whole burst) with a stack
    /// verdict buffer.
    pub fn process_burst(
        &self,
        frames: &mut [&mut [u8]],
        cls: &[Classified],
        ingress: Role,
        now: Timestamp,
        out: &mut Vec<NatOutcome>,
        learned: &mut Vec<Option<nat::Learned>>,
    ) {
        if let ([fr], [cl]) = (&mut *frames, cls) {
            // One frame (burst-1 replay): no verdict buffer to initialise.
            let mut l = None;
            out.push(self.process_learn(fr, cl, ingress, now, &mut l));
            learned.push(l);
            return;
        }
        let mut verdicts = [nat::Verdict::Forward; NAT_CHUNK];
        let mut learn = [None; NAT_CHUNK];
        for (fr, cl) in frames.chunks_mut(NAT_CHUNK).zip(cls.chunks(NAT_CHUNK)) {
            let v = &mut verdicts[..fr.len()];
            v.fill(nat::Verdict::Forward);
            let l = &mut learn[..fr.len()];
            self.nat
                .process_burst_learn(fr, cl, Self::side(ingress), now, v, l);
            out.extend(v.iter().map(|&v| self.outcome(v)));
            learned.extend_from_slice(l);
        }
    }

    /// Fragments NAT released since the last call (already translated).
    pub fn take_released(&self, out: &mut Vec<Vec<u8>>) {
        self.nat.take_released(out);
    }

    /// Frames the NAT itself sends (`nat::Nat::take_originated`).
    pub fn take_originated(&self, out: &mut Vec<Vec<u8>>) {
        self.nat.take_originated(out);
    }

    /// Expire sessions, at most `budget`.
    pub fn poll(&self, now: Timestamp, budget: usize) -> usize {
        self.nat.poll(now, budget)
    }

    /// Expire the sessions of the shards worker `worker` of `workers` owns
    /// (`nat::Nat::poll_owned`), at most `budget`.
    pub fn poll_owned(
        &self,
        now: Timestamp,
        budget: usize,
        worker: usize,
        workers: usize,
    ) -> usize {
        self.nat.poll_owned(now, budget, worker, workers)
    }

    /// Figures for the summary. O(reasons).
    pub fn summary(&self) -> NatSummary {
        let s = self.nat.stats();
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

/// Whether `ip` is an IPv4 NAT address of `cfg` (helper for ARP).
pub fn answers_arp(cfg: &NatConfig, ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => is_nat_address(cfg, a),
        IpAddr::V6(_) => false,
    }
}
