//! Timers and the neighbour glue: NAT and IPv6 flow expiry, the
//! neighbour table's deadlines, learning and resolving next hops.

use super::*;

impl Pipeline {
    /// Timers: NAT and IPv6 flow expiry, each bounded by [`POLL_BUDGET`];
    /// neighbour state changes, probes and hold-queue timeouts, bounded by
    /// [`NEIGHBOR_POLL_BUDGET`]. Every worker polls its own NAT, so every
    /// worker's pipeline must poll (its NAT and its IPv6 flows). Returns
    /// the work done
    /// (flow entries expired + neighbour entries handled). Frames it produces
    /// come out of the next `process` call (or `take_generated`).
    pub fn poll_timers(&mut self, now: Timestamp) -> usize {
        self.poll_inner(now, false)
    }

    /// [`Pipeline::poll_timers`] without the per-tick rate limit on NAT
    /// expiry (drivers call it once at the end of a run or capture).
    pub fn flush_timers(&mut self, now: Timestamp) -> usize {
        self.poll_inner(now, true)
    }

    pub(super) fn poll_inner(&mut self, now: Timestamp, force: bool) -> usize {
        if self.passthrough {
            return 0;
        }
        let mut work = 0;
        // The flow tables' wheels cannot fire finer than their tick, so
        // polling more often only costs shard locks. Lookups still treat an
        // entry past its deadline as gone, so expiry stays exact for
        // packets; a backlog (budget exhausted) is polled at once.
        let tick = Duration::from_millis(self.shared.config.flow_table.tick_ms);
        let due = force
            || self.flow_backlog
            || self
                .last_flow_poll
                .is_none_or(|t| now.saturating_duration_since(t) >= tick);
        if due {
            self.last_flow_poll = Some(now);
            let w = self.worker;
            let mut n = 0;
            // Each worker polls its own NAT (session expiry, fragment
            // records, port and block hold-downs, held SYNs, mapping
            // events), under one hold of its lock.
            if let Some(nat) = &self.shared.nat
                && w < nat.workers()
            {
                let mut own = Vec::new();
                let mut events = Vec::new();
                {
                    let mut g = nat.lock(w);
                    n = g.poll(now, POLL_BUDGET);
                    g.take_originated(&mut own);
                    if nat.config().log_mappings {
                        g.take_mapping_events(&mut events, POLL_BUDGET);
                    }
                }
                // What the NAT's timers produced (answers to held SYNs) is
                // routed now, as timer output.
                if !own.is_empty() {
                    let mut tmp = Output::default();
                    self.route_nat_frames(&mut own, false, now, &mut tmp);
                    self.pending.append(&mut tmp.generated);
                }
                log_mappings(events);
            }
            // And its own IPv6 flows.
            let m = if w < self.shared.v6flows.workers() {
                self.shared.v6flows.poll(w, now, POLL_BUDGET)
            } else {
                0
            };
            self.flow_backlog = n >= POLL_BUDGET || m >= POLL_BUDGET;
            work += n + m;
        }
        // Neighbour timers: only when a deadline is due (one atomic load
        // otherwise), at most NEIGHBOR_POLL_BUDGET entries per call.
        if force || self.shared.neighbors.is_due(now) {
            work += self.neighbor_timers(now);
        }
        work
    }

    pub(super) fn neighbor_timers(&mut self, now: Timestamp) -> usize {
        let mut solicits = Vec::new();
        let r = self
            .shared
            .neighbors
            .poll(now, NEIGHBOR_POLL_BUDGET, &mut solicits);
        if r.unresolved > 0 {
            tracing::debug!(
                dropped = r.unresolved,
                "held frames dropped: next hop unresolved"
            );
            self.drop_count(DropReason::NeighborUnresolved, r.unresolved);
        }
        for s in solicits {
            if let Some(f) = neighbor::solicitation(&self.shared, s) {
                self.pending.push((s.port, f));
            }
        }
        r.work
    }

    /// Record what a message says about the neighbour `ip` on `port`
    /// ([`NeighborTable::learn`]); frames held for it go out now.
    pub(super) fn learn(
        &mut self,
        port: PortId,
        ip: IpAddr,
        mac: Mac,
        ev: Evidence,
        now: Timestamp,
        out: &mut Output,
    ) -> bool {
        let l = self.shared.neighbors.learn((port, ip), mac, ev, now);
        if !l.changed {
            return false;
        }
        tracing::debug!(port, %ip, "neighbour learned");
        bump(&self.shared.counters.workers[self.worker].neighbors_learned);
        let src = self.shared.ports[usize::from(port)].mac;
        for mut f in l.released {
            wire::set_macs(&mut f, src, mac);
            out.generated.push((port, f));
        }
        true
    }

    /// Next-hop MAC (worker cache, then [`NeighborTable::resolve`]), or
    /// hold a copy of the frame and ask.
    pub(super) fn resolve(
        &mut self,
        port: PortId,
        nh: IpAddr,
        frame: &[u8],
        now: Timestamp,
        out: &mut Output,
    ) -> Result<Mac, Disposition> {
        if let Some(m) = self.nh_cache.get(&(port, nh)) {
            return Ok(*m);
        }
        let (d, ask) = match self.shared.neighbors.resolve((port, nh), frame, now) {
            Lookup::Mac { mac, cache } => {
                if cache {
                    self.nh_cache.insert((port, nh), mac);
                }
                return Ok(mac);
            }
            Lookup::Held { ask } => {
                bump(&self.shared.counters.workers[self.worker].held);
                (Disposition::Consumed, ask)
            }
            Lookup::Drop { reason, ask } => (Disposition::Drop(reason), ask),
        };
        if ask {
            let s = neighbor::Solicit {
                port,
                ip: nh,
                unicast: None,
            };
            if let Some(f) = neighbor::solicitation(&self.shared, s) {
                out.generated.push((port, f));
            }
        }
        Err(d)
    }
}

/// Write the NAT's mapping events (`nat.log_mappings`; taken by each
/// worker's poll from its NAT, at most `POLL_BUDGET` per call, the rest wait for the next poll)
/// to the log: one `info` event each under the target `nat_mappings`.
/// Runs outside every lock.
pub(super) fn log_mappings(ev: Vec<nat::MappingEvent>) {
    for e in ev {
        let (ii, ip) = e.inside;
        let (ei, ep) = e.external;
        let remote = e.remote.map(|(a, p)| format!("{a}:{p}"));
        tracing::info!(
            target: "nat_mappings",
            event = ?e.kind,
            proto = e.proto,
            inside = %format_args!("{ii}:{ip}"),
            external = %format_args!("{ei}:{ep}"),
            remote = remote.as_deref().unwrap_or("-"),
            at_ns = e.at_ns,
            "NAT mapping"
        );
    }
}
