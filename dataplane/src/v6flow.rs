//! IPv6 stateful forwarding: flows opened from an inside port are tracked
//! (both directions, no translation) in a single-writer
//! `flow_entry::Shard` behind a mutex (the workers and the control thread
//! share it); outside → inside packets must match a tracked flow unless
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
//! Cost: one lock and one lookup per packet; an insert per new flow.

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

/// The IPv6 flow tracker.
pub struct V6Flows {
    flows: Mutex<Flows>,
    timeout: Duration,
}

/// Flows leave without anything to release (no port, no state).
fn nothing(_: (), _: ReleaseReason) {}

impl V6Flows {
    /// A tracker sized like the NAT's table (`[flow_table]`).
    ///
    /// # Errors
    /// [`BuildError::FlowTable`] if the flow table refuses the sizing.
    pub fn new(cfg: &Config) -> Result<V6Flows, BuildError> {
        let tc = crate::natglue::table_config(cfg);
        let table = Shard::new(tc.capacity, &tc, Timestamp::ZERO)
            .map_err(|e| BuildError::FlowTable(e.to_string()))?;
        Ok(V6Flows {
            flows: Mutex::new(Flows { table, created: 0 }),
            timeout: Duration::from_secs(cfg.ipv6.flow_timeout_secs),
        })
    }

    /// The flows, locked (a poisoned lock is taken over: the table is
    /// consistent between calls).
    fn lock(&self) -> MutexGuard<'_, Flows> {
        self.flows.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Track an IPv6 packet. `Ok(true)` if it created a flow.
    ///
    /// # Errors
    /// The drop reason: unsolicited inbound, or table full.
    pub fn track(
        &self,
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
        let mut f = self.lock();
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

    /// Release flows whose deadline passed, at most `budget`. Returns how many.
    pub fn poll(&self, now: Timestamp, budget: usize) -> usize {
        self.lock().table.poll(now, budget, &mut nothing)
    }

    /// The flows (forward key: the first packet's addresses and ports,
    /// protocol) and their deadlines (ns), at most `limit`. O(table); for
    /// control and the replay's `--sessions`, never the packet path.
    pub fn scan(&self, limit: usize) -> Vec<(FlowKey, u64)> {
        self.lock()
            .table
            .iter()
            .take(limit)
            .map(|(_, k, _, _, exp)| (*k, exp.as_nanos()))
            .collect()
    }

    /// (active, created, expired). O(1).
    pub fn stats(&self) -> (usize, u64, u64) {
        let f = self.lock();
        let s = f.table.stats();
        let expired = s.released(ReleaseReason::Expired) + s.released(ReleaseReason::LazyExpired);
        (f.table.len(), f.created, expired)
    }
}
