//! What the dataplane asks a NAT between packets: timers (`poll`), frames
//! it produced, mapping events, counters and the session listing.

use super::*;

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

impl Nat {
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

impl SessionFilter {
    /// Whether session `s` passes the filter.
    pub(crate) fn matches(&self, s: &Session) -> bool {
        self.inside.is_none_or(|i| i == s.endpoints().0.0)
            && self.proto.is_none_or(|p| p == s.orig.proto)
    }
}

impl Session {
    /// (inside, external, remote) endpoints, whichever side opened it.
    pub(crate) fn endpoints(&self) -> ((Ipv4Addr, u16), (Ipv4Addr, u16), (Ipv4Addr, u16)) {
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
