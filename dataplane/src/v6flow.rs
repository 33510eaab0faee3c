//! IPv6 stateful forwarding: flows opened from an inside port are tracked
//! (both directions, no translation) in single-writer `flow_entry::Shard`s,
//! one per worker: a flow belongs to the worker its inside host hashes to
//! ([`owner`]: the source of a frame from an inside port, the destination
//! of one from outside), so with several workers a frame is handed to that
//! worker like a NAT frame. Each shard sits behind a mutex only its worker
//! takes on the packet path (the control thread takes it for its reads).
//! Outside → inside packets must match a tracked flow unless
//! `ipv6.allow_inbound`.
//!
//! Each flow is one entry with two keys: the inside → outside 5-tuple
//! (forward) and its reverse. Every packet either way refreshes the deadline
//! (`ipv6.flow_timeout_secs` after it); a reply confirms the flow (so
//! unanswered ones are the first evicted when the table drains). Lookups
//! treat a flow past its deadline as gone, so expiry is exact at packet
//! times; `poll` releases due entries in bounded batches. A full table is a
//! counted drop (`flow_table_full`).
//!
//! Cost: one uncontended lock and one lookup per packet; an insert per new
//! flow.

use core::time::Duration;
use std::sync::{Mutex, MutexGuard, PoisonError};

use flow_entry::{Direction, FlowKey, ReleaseReason, Shard};
use net::{Classified, L4Kind};

use crate::Timestamp;
use crate::config::{Config, Role};
use crate::pipeline::{BuildError, DropReason};

/// The tracked flows and what the tracker counts.
struct Flows {
    table: Shard<FlowKey, ()>,
    created: u64,
}

/// The IPv6 flow tracker: one shard per worker.
pub struct V6Flows {
    flows: Box<[Mutex<Flows>]>,
    timeout: Duration,
}

/// The worker (of `workers`) owning the IPv6 flows of inside host `host`.
#[must_use]
pub fn owner(host: core::net::Ipv6Addr, workers: usize) -> usize {
    let a = u128::from(host);
    let h = nat::alloc::keyed_hash(0x7636_666c_6f77, (a as u64) ^ ((a >> 64) as u64));
    ((u128::from(h) * workers as u128) >> 64) as usize
}

/// Flows leave without anything to release (no port, no state).
fn nothing(_: (), _: ReleaseReason) {}

impl V6Flows {
    /// A tracker for `workers` workers, each shard sized like the NAT's
    /// (`[flow_table]` capacity / workers, rounded up).
    ///
    /// # Errors
    /// [`BuildError::FlowTable`] if the flow table refuses the sizing.
    pub fn new(cfg: &Config, workers: usize) -> Result<V6Flows, BuildError> {
        let mut tc = crate::natglue::table_config(cfg);
        let workers = workers.max(1);
        tc.capacity = tc.capacity.div_ceil(workers).max(1);
        let flows = (0..workers)
            .map(|_| {
                Shard::new(tc.capacity, &tc, Timestamp::ZERO)
                    .map(|table| Mutex::new(Flows { table, created: 0 }))
                    .map_err(|e| BuildError::FlowTable(e.to_string()))
            })
            .collect::<Result<Box<[_]>, _>>()?;
        Ok(V6Flows {
            flows,
            timeout: Duration::from_secs(cfg.ipv6.flow_timeout_secs),
        })
    }

    /// Worker `w`'s flows, locked (a poisoned lock is taken over: the
    /// table is consistent between calls).
    fn lock(&self, w: usize) -> MutexGuard<'_, Flows> {
        self.flows[w.min(self.flows.len() - 1)]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Number of shards (workers).
    pub fn workers(&self) -> usize {
        self.flows.len()
    }

    /// Track an IPv6 packet in worker `worker`'s shard. `Ok(true)` if it
    /// created a flow.
    ///
    /// # Errors
    /// The drop reason: unsolicited inbound, or table full.
    pub fn track(
        &self,
        worker: usize,
        cls: &Classified,
        ingress: Role,
        allow_inbound: bool,
        now: Timestamp,
    ) -> Result<bool, DropReason> {
        let Some(t) = cls.tuple else {
            // Non-first fragments carry no ports: forwarded as they come.
            return if cls.l4 == L4Kind::Fragment || ingress == Role::Inside || allow_inbound {
                Ok(false)
            } else {
                Err(DropReason::UnsolicitedInbound)
            };
        };
        let key = FlowKey::from_tuple(&t, 0);
        let deadline = now + self.timeout;
        let mut f = self.lock(worker);
        let h = f.table.hash(&key);
        if let Some((id, dir)) = f.table.lookup(&key, h, now, &mut nothing) {
            if dir == Direction::Reverse {
                f.table.confirm(id);
            }
            f.table.set_expires_at(id, deadline);
            return Ok(false);
        }
        let fwd = match ingress {
            Role::Inside => key,
            Role::Outside if allow_inbound => key.reversed(),
            Role::Outside => return Err(DropReason::UnsolicitedInbound),
        };
        match f
            .table
            .insert(fwd, Some(fwd.reversed()), (), deadline, now, &mut nothing)
        {
            Ok(_) => {
                f.created += 1;
                Ok(true)
            }
            // Full, or (never for keys inserted in pairs like these) a key
            // of another live flow.
            Err(_) => Err(DropReason::FlowTableFull),
        }
    }

    /// Release worker `worker`'s flows whose deadline passed, at most
    /// `budget`. Returns how many.
    pub fn poll(&self, worker: usize, now: Timestamp, budget: usize) -> usize {
        self.lock(worker).table.poll(now, budget, &mut nothing)
    }

    /// The flows (forward key: the first packet's addresses and ports,
    /// protocol) and their deadlines (ns), at most `limit`. O(table); for
    /// control and the replay's `--sessions`, never the packet path.
    pub fn scan(&self, limit: usize) -> Vec<(FlowKey, u64)> {
        let mut out = Vec::new();
        for w in 0..self.flows.len() {
            let f = self.lock(w);
            let room = limit.saturating_sub(out.len());
            out.extend(
                f.table
                    .iter()
                    .take(room)
                    .map(|(_, k, _, _, exp)| (*k, exp.as_nanos())),
            );
        }
        out
    }

    /// (active, created, expired), every worker's summed. O(workers).
    pub fn stats(&self) -> (usize, u64, u64) {
        let mut t = (0, 0, 0);
        for w in 0..self.flows.len() {
            let f = self.lock(w);
            let s = f.table.stats();
            t.0 += f.table.len();
            t.1 += f.created;
            t.2 += s.released(ReleaseReason::Expired) + s.released(ReleaseReason::LazyExpired);
        }
        t
    }
}
