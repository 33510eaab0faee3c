//! Mapping records: inside endpoint → external endpoint, refcounted by the
//! sessions that use them (endpoint-independent mapping, RFC 4787 REQ-1),
//! beside the port allocator, the held unsolicited SYNs and the mapping
//! event log. Owned by one NAT (one writer): no lock.

use core::net::Ipv4Addr;

use serde::Serialize;

use crate::alloc::Allocator;
use crate::{FastMap, synhold};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MapKey {
    pub(crate) proto: u8,
    pub(crate) in_ip: Ipv4Addr,
    pub(crate) in_port: u16,
    /// Address-and-port-dependent mapping: the remote endpoint.
    pub(crate) remote: Option<(Ipv4Addr, u16)>,
}

/// Protocol, address and port packed into one word (map keys: one hash
/// write, one compare).
pub(crate) fn endpoint_word(proto: u8, ip: Ipv4Addr, port: u16) -> u64 {
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
pub(crate) struct Mapping {
    pub(crate) ext_ip: Ipv4Addr,
    pub(crate) ext_port: u16,
    pub(crate) refs: u32,
}

/// Allocator plus the mapping records (one writer: the NAT that owns them).
pub(crate) struct Pool {
    pub(crate) alloc: Allocator,
    pub(crate) by_in: FastMap<MapKey, Mapping>,
    /// External endpoint (`endpoint_word`) → mapping.
    pub(crate) by_ext: FastMap<u64, MapKey>,
    /// Address-dependent filtering only: live sessions per (mapping,
    /// remote address), so an inbound packet from that address (any port)
    /// is admitted while one exists.
    pub(crate) remotes: Option<FastMap<(MapKey, Ipv4Addr), u32>>,
    /// Unsolicited inbound SYNs held (`unsolicited_syn = "hold"`).
    pub(crate) syn: synhold::SynHolds,
    /// Mapping events not yet taken (`log_mappings`; at most
    /// [`MAPPING_EVENTS_MAX`]) and how many did not fit.
    pub(crate) events: Option<std::collections::VecDeque<MappingEvent>>,
    pub(crate) events_dropped: u64,
}

/// Most mapping events kept until [`crate::Nat::take_mapping_events`]; more are
/// counted in [`crate::NatStats::mapping_events_dropped`] and lost.
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
    pub(crate) fn event(
        &mut self,
        kind: MappingEventKind,
        k: &MapKey,
        ext: (Ipv4Addr, u16),
        at_ns: u64,
    ) {
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
    pub(crate) fn note_remote(&mut self, k: &MapKey, remote: Ipv4Addr) {
        if let Some(r) = &mut self.remotes {
            *r.entry((*k, remote)).or_insert(0) += 1;
        }
    }

    /// Whether mapping `k` has a live session with `remote`.
    pub(crate) fn has_remote(&self, k: &MapKey, remote: Ipv4Addr) -> bool {
        self.remotes
            .as_ref()
            .is_some_and(|r| r.contains_key(&(*k, remote)))
    }

    /// A session of mapping `k` with remote address `remote` is gone.
    pub(crate) fn unref(&mut self, k: &MapKey, remote: Ipv4Addr, now: u64) {
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
