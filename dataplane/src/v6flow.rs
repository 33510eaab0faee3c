//! IPv6 stateful forwarding: flows opened from an inside port are tracked
//! (both directions), no translation; outside → inside packets must match a
//! tracked flow unless `ipv6.allow_inbound`.
//!
//! WORKAROUND: `flow_entry::FlowTable` was not available when this was
//! written; this is a small local tracker (one mutex, ordered map keyed by the
//! canonical inside→outside tuple, deadline per entry, bounded expiry per
//! poll). Capacity comes from `flow_table.capacity`; a full table is a counted
//! drop (`flow_table_full`), never a silent loss.
//!
//! Cost: O(log n) per packet under one lock; `poll` is O(expired + budget).

use core::net::IpAddr;
use core::time::Duration;
use std::collections::{BTreeMap, BTreeSet};

use net::{Classified, L4Kind};
use parking_lot::Mutex;

use crate::Timestamp;
use crate::config::{Config, Role};
use crate::pipeline::{BuildError, DropReason};

type Key = (IpAddr, IpAddr, u8, u16, u16);

#[derive(Default)]
struct Inner {
    flows: BTreeMap<Key, Timestamp>,
    /// (deadline at insertion or last re-arm, key): deadlines move later on
    /// refresh without touching this index; poll re-arms.
    due: BTreeSet<(Timestamp, Key)>,
    created: u64,
    expired: u64,
}

/// The IPv6 flow tracker.
pub struct V6Flows {
    inner: Mutex<Inner>,
    timeout: Duration,
    capacity: usize,
}

impl V6Flows {
    /// # Errors
    /// Never today; the signature matches the flow-table-backed version.
    pub fn new(cfg: &Config) -> Result<V6Flows, BuildError> {
        Ok(V6Flows {
            inner: Mutex::new(Inner::default()),
            timeout: Duration::from_secs(cfg.ipv6.flow_timeout_secs),
            capacity: cfg.flow_table.capacity,
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
        let (key, from_inside) = match ingress {
            Role::Inside => ((t.src, t.dst, t.proto, t.src_port, t.dst_port), true),
            Role::Outside => ((t.dst, t.src, t.proto, t.dst_port, t.src_port), false),
        };
        let deadline = now + self.timeout;
        let mut g = self.inner.lock();
        if let Some(e) = g.flows.get_mut(&key) {
            if *e > now {
                *e = deadline;
                return Ok(false);
            }
            // Lazily expired: remove under the same lock.
            let old = *e;
            g.flows.remove(&key);
            g.due.remove(&(old, key));
            g.expired += 1;
        }
        if !from_inside && !allow_inbound {
            return Err(DropReason::UnsolicitedInbound);
        }
        if g.flows.len() >= self.capacity {
            return Err(DropReason::FlowTableFull);
        }
        g.flows.insert(key, deadline);
        g.due.insert((deadline, key));
        g.created += 1;
        Ok(true)
    }

    /// Expire flows whose deadline passed, at most `budget`. Returns how many.
    pub fn poll(&self, now: Timestamp, budget: usize) -> usize {
        let mut g = self.inner.lock();
        let mut n = 0;
        let mut work = 0;
        while work < budget {
            let Some(&(t, key)) = g.due.first() else {
                break;
            };
            if t > now {
                break;
            }
            work += 1;
            g.due.pop_first();
            match g.flows.get(&key).copied() {
                Some(d) if d > now => {
                    g.due.insert((d, key));
                }
                Some(_) => {
                    g.flows.remove(&key);
                    g.expired += 1;
                    n += 1;
                }
                None => {}
            }
        }
        n
    }

    /// (active, created, expired). O(1).
    pub fn stats(&self) -> (usize, u64, u64) {
        let g = self.inner.lock();
        (g.flows.len(), g.created, g.expired)
    }
}
