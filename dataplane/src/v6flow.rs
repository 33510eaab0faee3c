//! IPv6 stateful forwarding: flows opened from an inside port are tracked
//! (both directions, no translation) in a `flow_entry::FlowTable`; outside →
//! inside packets must match a tracked flow unless `ipv6.allow_inbound`.
//!
//! Each flow is one table entry with two keys: the inside → outside 5-tuple
//! (forward) and its reverse. Every packet either way refreshes the deadline
//! (`ipv6.flow_timeout_secs` after it); a reply confirms the flow (so
//! unanswered ones are the first evicted when the table drains). Lookups
//! treat a flow past its deadline as gone, so expiry is exact at packet
//! times; `poll` releases due entries in bounded batches. A full table is a
//! counted drop (`flow_table_full`).
//!
//! Cost: one flow-table lookup (one shard lock) per packet; an insert (1–2
//! shard locks) per new flow.

use core::time::Duration;
use std::sync::atomic::{AtomicU64, Ordering};

use flow_entry::{Direction, FlowKey, FlowTable, InsertError, ReleaseReason};
use net::{Classified, L4Kind};

use crate::Timestamp;
use crate::config::{Config, Role};
use crate::pipeline::{BuildError, DropReason};

/// The IPv6 flow tracker.
pub struct V6Flows {
    table: FlowTable<()>,
    timeout: Duration,
    created: AtomicU64,
}

impl V6Flows {
    /// A tracker sized like the NAT's table (`[flow_table]`).
    ///
    /// # Errors
    /// [`BuildError::FlowTable`] if the flow table refuses the sizing.
    pub fn new(cfg: &Config) -> Result<V6Flows, BuildError> {
        let table = FlowTable::new(crate::natglue::table_config(cfg), |_: &(), _| {})
            .map_err(|e| BuildError::FlowTable(e.to_string()))?;
        Ok(V6Flows {
            table,
            timeout: Duration::from_secs(cfg.ipv6.flow_timeout_secs),
            created: AtomicU64::new(0),
        })
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
        let hit = self.table.lookup_with(&key, now, |e| {
            if e.direction() == Direction::Reverse {
                e.confirm();
            }
            e.set_expires_at(deadline);
        });
        if hit.is_some() {
            return Ok(false);
        }
        let fwd = match ingress {
            Role::Inside => key,
            Role::Outside if allow_inbound => key.reversed(),
            Role::Outside => return Err(DropReason::UnsolicitedInbound),
        };
        match self
            .table
            .insert_pair(fwd, fwd.reversed(), (), deadline, now)
        {
            Ok(flow_entry::Inserted::New(_)) => {
                self.created.fetch_add(1, Ordering::Relaxed);
                Ok(true)
            }
            Ok(flow_entry::Inserted::Existing(..)) => Ok(false),
            Err(InsertError::Full | InsertError::Conflict) => Err(DropReason::FlowTableFull),
        }
    }

    /// Release flows whose deadline passed, at most `budget`. Returns how many.
    pub fn poll(&self, now: Timestamp, budget: usize) -> usize {
        self.table.poll(now, budget)
    }

    /// [`V6Flows::poll`] for the shards worker `worker` of `workers` owns.
    pub fn poll_owned(
        &self,
        now: Timestamp,
        budget: usize,
        worker: usize,
        workers: usize,
    ) -> usize {
        self.table.poll_owned(now, budget, worker, workers)
    }

    /// (active, created, expired). O(shards).
    pub fn stats(&self) -> (usize, u64, u64) {
        let s = self.table.stats();
        let expired = s.released[ReleaseReason::Expired.index()]
            + s.released[ReleaseReason::LazyExpired.index()];
        (s.active_len, self.created.load(Ordering::Relaxed), expired)
    }
}
