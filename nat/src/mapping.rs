//! Mapping records: inside endpoint → external endpoint, refcounted by the
//! sessions that use them (endpoint-independent mapping, RFC 4787 REQ-1),
//! beside the port allocator, the held unsolicited SYNs and the mapping
//! event log. Owned by one NAT (one writer): no lock.

use core::net::Ipv4Addr;

use hashbrown::HashTable;
use hashbrown::hash_table::Entry;
use serde::Serialize;

use flow_entry::TagIndex;

use crate::alloc::{AllocError, Allocator, hash_words, random_seed};
use crate::synhold;

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

/// A [`MapKey`] packed into two words: the inside endpoint
/// ([`endpoint_word`]) and the remote endpoint (`endpoint_word(1, ..)`,
/// never zero) or zero. A bijection, so equal words are equal keys; both
/// words stay below 2^56 (as [`hash_words`] needs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Packed {
    inside: u64,
    remote: u64,
}

impl MapKey {
    #[inline(always)]
    fn packed(&self) -> Packed {
        Packed {
            inside: endpoint_word(self.proto, self.in_ip, self.in_port),
            remote: self
                .remote
                .map_or(0, |(ip, port)| endpoint_word(1, ip, port)),
        }
    }

    fn unpacked(p: Packed) -> Self {
        let ep = |w: u64| (Ipv4Addr::from((w >> 16) as u32), w as u16);
        let (in_ip, in_port) = ep(p.inside);
        Self {
            proto: (p.inside >> 48) as u8,
            in_ip,
            in_port,
            remote: (p.remote != 0).then(|| ep(p.remote)),
        }
    }
}

/// Live sessions of mapping `key` with remote address `addr`.
#[derive(Debug, Clone, Copy)]
struct RemoteRec {
    key: Packed,
    addr: u32,
    n: u32,
}

/// A mapping record (a slab slot of [`Mappings`]).
#[derive(Debug, Clone, Copy)]
struct MapRec {
    key: Packed,
    /// External endpoint (`endpoint_word`).
    ext: u64,
    /// Sessions holding the mapping; 0 while the slot is free.
    refs: u32,
    /// Next free slot while the slot is free.
    next_free: u32,
}

/// End of the free-slot list.
const NIL: u32 = u32::MAX;

/// The mapping records: a slab (reserved for the most mappings up front,
/// free slots reused last-freed first) indexed by inside key and by
/// external endpoint. Never iterated, so the hash seed changes nothing the
/// NAT does.
///
/// Cost: a lookup probes one index (tags only) and compares the key of a
/// tag match in the slab; a new mapping is one probe of the by-inside
/// index (the miss ends at the bucket it goes to), one slab slot and one
/// by-external bucket. O(1) expected, no allocation after construction.
struct Mappings {
    recs: Vec<MapRec>,
    /// Most live records (the slab's reservation).
    max: usize,
    free: u32,
    len: usize,
    by_in: TagIndex,
    by_ext: TagIndex,
    seed: u64,
}

/// Where [`Mappings::find_in`] found a key or would put it.
enum InSlot {
    Found(u32),
    /// Absent; the by-inside bucket and hash a new record takes.
    Vacant(usize, u64),
}

impl Mappings {
    fn new(max: usize) -> Self {
        Self {
            recs: Vec::with_capacity(max),
            max,
            free: NIL,
            len: 0,
            by_in: TagIndex::new(max),
            by_ext: TagIndex::new(max),
            seed: random_seed(),
        }
    }

    #[inline(always)]
    fn in_hash(&self, k: Packed) -> u64 {
        hash_words(self.seed, k.inside, k.remote)
    }

    #[inline(always)]
    fn ext_hash(&self, ext: u64) -> u64 {
        hash_words(self.seed, ext, 0)
    }

    #[inline(always)]
    fn find_in(&self, k: Packed) -> InSlot {
        let h = self.in_hash(k);
        let recs = &self.recs;
        match self.by_in.probe(h, |s| recs[s as usize].key == k) {
            Ok(s) => InSlot::Found(s),
            Err(at) => InSlot::Vacant(at, h),
        }
    }

    fn find_ext(&self, ext: u64) -> Option<u32> {
        let recs = &self.recs;
        self.by_ext
            .find(self.ext_hash(ext), |s| recs[s as usize].ext == ext)
    }

    /// Starts loading the slot the next [`Mappings::add`] reuses, if any.
    #[inline(always)]
    fn prefetch_free(&self) {
        if let Some(r) = self.recs.get(self.free as usize) {
            flow_entry::prefetch(r);
        }
    }

    /// Whether a new record fits.
    #[inline(always)]
    fn has_room(&self) -> bool {
        self.len < self.max
    }

    /// A new record (one reference) for key `k` absent from the index
    /// (`at`, `h` from [`Mappings::find_in`], no change in between; room
    /// checked).
    #[inline(always)]
    fn add(&mut self, at: usize, h: u64, k: Packed, ext: u64, he: u64) {
        let rec = MapRec {
            key: k,
            ext,
            refs: 1,
            next_free: NIL,
        };
        let slot = if self.free != NIL {
            let s = self.free;
            self.free = self.recs[s as usize].next_free;
            self.recs[s as usize] = rec;
            s
        } else {
            self.recs.push(rec);
            (self.recs.len() - 1) as u32
        };
        self.len += 1;
        self.by_in.put(at, h, slot);
        debug_assert_eq!(he, self.ext_hash(ext));
        self.by_ext.insert(he, slot);
    }

    /// Drops the record in `slot` (unindexed both ways, slot freed).
    fn remove(&mut self, slot: u32) -> MapRec {
        let rec = self.recs[slot as usize];
        let ok = self.by_in.remove(self.in_hash(rec.key), slot);
        debug_assert!(ok, "mapping not indexed by inside key");
        let ok = self.by_ext.remove(self.ext_hash(rec.ext), slot);
        debug_assert!(ok, "mapping not indexed by external endpoint");
        let r = &mut self.recs[slot as usize];
        r.refs = 0;
        r.next_free = self.free;
        self.free = slot;
        self.len -= 1;
        rec
    }
}

/// Allocator plus the mapping records (one writer: the NAT that owns them).
pub(crate) struct Pool {
    pub(crate) alloc: Allocator,
    /// The mappings, by inside key (the inside endpoint, plus the remote
    /// endpoint under address-and-port-dependent mapping) and by external
    /// endpoint, with their reference counts.
    maps: Mappings,
    /// Address-dependent filtering only: live sessions per (mapping,
    /// remote address), so an inbound packet from that address (any port)
    /// is admitted while one exists.
    remotes: Option<HashTable<RemoteRec>>,
    seed: u64,
    /// Unsolicited inbound SYNs held (`unsolicited_syn = "hold"`).
    pub(crate) syn: synhold::SynHolds,
    /// Mapping events not yet taken (`log_mappings`; at most
    /// [`MAPPING_EVENTS_MAX`]) and how many did not fit.
    pub(crate) events: Option<std::collections::VecDeque<MappingEvent>>,
    pub(crate) events_dropped: u64,
}

#[inline(always)]
fn remote_hash(seed: u64, k: Packed, addr: u32) -> u64 {
    // `remote` < 2^49 and `addr << 24` < 2^56: the second word stays
    // below 2^56 (collisions only cost a compare).
    hash_words(seed, k.inside, k.remote ^ (u64::from(addr) << 24))
}

#[inline(always)]
fn ext_endpoint(ext: u64) -> (Ipv4Addr, u16) {
    (Ipv4Addr::from((ext >> 16) as u32), ext as u16)
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
    /// A pool over `alloc` for at most `max_mappings` live mappings;
    /// `remotes` keeps the per-remote counts of address-dependent
    /// filtering, `log` the mapping event queue.
    pub(crate) fn new(alloc: Allocator, max_mappings: usize, remotes: bool, log: bool) -> Self {
        Self {
            alloc,
            maps: Mappings::new(max_mappings),
            remotes: remotes.then(HashTable::new),
            seed: random_seed(),
            syn: synhold::SynHolds::default(),
            events: log.then(std::collections::VecDeque::new),
            events_dropped: 0,
        }
    }

    /// Live mappings. O(1).
    pub(crate) fn mappings(&self) -> usize {
        self.maps.len
    }

    /// The external endpoint of an outbound session's mapping `k` (remote
    /// address `remote`), taking a reference: the existing mapping, or a
    /// new one with a freshly allocated port (recorded both ways, logged).
    /// One probe of the by-inside index either way (a miss ends at the
    /// bucket the new mapping takes). O(1) expected.
    ///
    /// `on_ext` is called with the external endpoint as soon as it is
    /// known (before a new mapping's records are written), e.g. to start
    /// loading what the caller touches next.
    ///
    /// # Errors
    /// The allocator's (nothing is recorded then); `Exhausted` also when
    /// the mapping records are full (more mappings than the table holds
    /// sessions, plus one: a bug).
    #[inline]
    pub(crate) fn map_outbound(
        &mut self,
        k: &MapKey,
        remote: Ipv4Addr,
        now: u64,
        on_ext: impl FnOnce(Ipv4Addr, u16),
    ) -> Result<(Ipv4Addr, u16), AllocError> {
        let pk = k.packed();
        // The record a new mapping reuses: its free-list link is read.
        self.maps.prefetch_free();
        let ext = match self.maps.find_in(pk) {
            InSlot::Found(s) => {
                let m = &mut self.maps.recs[s as usize];
                m.refs += 1;
                let (ip, port) = ext_endpoint(m.ext);
                on_ext(ip, port);
                (ip, port)
            }
            InSlot::Vacant(at, h) => {
                if !self.maps.has_room() {
                    return Err(AllocError::Exhausted);
                }
                let (ip, port, _) = self.alloc.allocate(k.proto, k.in_ip, k.in_port, now)?;
                let ew = endpoint_word(k.proto, ip, port);
                let he = self.maps.ext_hash(ew);
                self.maps.by_ext.prefetch(he);
                on_ext(ip, port);
                self.maps.add(at, h, pk, ew, he);
                self.event(MappingEventKind::Created, k, (ip, port), now);
                (ip, port)
            }
        };
        self.note_remote(k, remote);
        Ok(ext)
    }

    /// The mapping whose external endpoint is (`proto`, `ip`, `port`).
    pub(crate) fn by_external(&self, proto: u8, ip: Ipv4Addr, port: u16) -> Option<MapKey> {
        let s = self.maps.find_ext(endpoint_word(proto, ip, port))?;
        Some(MapKey::unpacked(self.maps.recs[s as usize].key))
    }

    /// One more session (remote address `remote`) on the existing mapping
    /// `k`; `false` (nothing changed) if there is none.
    pub(crate) fn add_ref(&mut self, k: &MapKey, remote: Ipv4Addr) -> bool {
        match self.maps.find_in(k.packed()) {
            InSlot::Found(s) => {
                self.maps.recs[s as usize].refs += 1;
                self.note_remote(k, remote);
                true
            }
            InSlot::Vacant(..) => false,
        }
    }

    /// Record a mapping event when `log_mappings` is on. O(1).
    #[inline]
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
    #[inline(always)]
    pub(crate) fn note_remote(&mut self, k: &MapKey, remote: Ipv4Addr) {
        if self.remotes.is_some() {
            self.count_remote(k, remote);
        }
    }

    /// [`Pool::note_remote`] under address-dependent filtering.
    #[inline(never)]
    fn count_remote(&mut self, k: &MapKey, remote: Ipv4Addr) {
        if let Some(r) = &mut self.remotes {
            let (pk, a, seed) = (k.packed(), u32::from(remote), self.seed);
            match r.entry(
                remote_hash(seed, pk, a),
                |x| x.key == pk && x.addr == a,
                |x| remote_hash(seed, x.key, x.addr),
            ) {
                Entry::Occupied(mut o) => o.get_mut().n += 1,
                Entry::Vacant(v) => {
                    v.insert(RemoteRec {
                        key: pk,
                        addr: a,
                        n: 1,
                    });
                }
            }
        }
    }

    /// Whether mapping `k` has a live session with `remote`.
    pub(crate) fn has_remote(&self, k: &MapKey, remote: Ipv4Addr) -> bool {
        let (pk, a) = (k.packed(), u32::from(remote));
        self.remotes.as_ref().is_some_and(|r| {
            r.find(remote_hash(self.seed, pk, a), |x| {
                x.key == pk && x.addr == a
            })
            .is_some()
        })
    }

    /// A session of mapping `k` with remote address `remote` is gone.
    pub(crate) fn unref(&mut self, k: &MapKey, remote: Ipv4Addr, now: u64) {
        let (pk, seed) = (k.packed(), self.seed);
        if let Some(r) = &mut self.remotes {
            let a = u32::from(remote);
            if let Ok(mut o) =
                r.find_entry(remote_hash(seed, pk, a), |x| x.key == pk && x.addr == a)
            {
                o.get_mut().n -= 1;
                if o.get().n == 0 {
                    o.remove();
                }
            }
        }
        let InSlot::Found(s) = self.maps.find_in(pk) else {
            return;
        };
        let m = &mut self.maps.recs[s as usize];
        m.refs -= 1;
        if m.refs == 0 {
            let m = self.maps.remove(s);
            let (ip, port) = ext_endpoint(m.ext);
            self.alloc.release(k.proto, k.in_ip, ip, port, now);
            self.event(MappingEventKind::Released, k, (ip, port), now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_keys_round_trip() {
        for remote in [
            None,
            Some((Ipv4Addr::new(192, 0, 2, 9), 0)),
            Some((Ipv4Addr::BROADCAST, 65535)),
        ] {
            for (proto, ip, port) in [
                (6u8, Ipv4Addr::new(10, 0, 0, 1), 0u16),
                (17, Ipv4Addr::BROADCAST, 65535),
                (1, Ipv4Addr::UNSPECIFIED, 7),
            ] {
                let k = MapKey {
                    proto,
                    in_ip: ip,
                    in_port: port,
                    remote,
                };
                let p = k.packed();
                assert!(p.inside < 1 << 56 && p.remote < 1 << 56);
                assert_eq!(remote.is_some(), p.remote != 0);
                assert_eq!(MapKey::unpacked(p), k);
            }
        }
    }

    #[test]
    fn mappings_reuse_slots_and_stay_indexed_both_ways() {
        let mut m = Mappings::new(3);
        let key = |i: u64| Packed {
            inside: endpoint_word(17, Ipv4Addr::new(10, 0, 0, 1), i as u16),
            remote: 0,
        };
        let ext = |i: u64| endpoint_word(17, Ipv4Addr::new(198, 18, 0, 1), 5000 + i as u16);
        for i in 0..3 {
            let InSlot::Vacant(at, h) = m.find_in(key(i)) else {
                panic!("present before added");
            };
            assert!(m.has_room());
            m.add(at, h, key(i), ext(i), m.ext_hash(ext(i)));
        }
        assert!(!m.has_room());
        let InSlot::Found(s1) = m.find_in(key(1)) else {
            panic!("added key missing");
        };
        assert_eq!(m.find_ext(ext(1)), Some(s1));
        let r = m.remove(s1);
        assert_eq!((r.key, r.ext), (key(1), ext(1)));
        assert!(matches!(m.find_in(key(1)), InSlot::Vacant(..)));
        assert_eq!(m.find_ext(ext(1)), None);
        let InSlot::Vacant(at, h) = m.find_in(key(7)) else {
            panic!("present before added");
        };
        m.add(at, h, key(7), ext(7), m.ext_hash(ext(7)));
        assert!(
            matches!(m.find_in(key(7)), InSlot::Found(s) if s == s1),
            "last freed slot reused"
        );
        for i in [0, 2, 7] {
            let InSlot::Found(s) = m.find_in(key(i)) else {
                panic!("key {i} missing");
            };
            assert_eq!(m.find_ext(ext(i)), Some(s));
        }
        assert_eq!(
            m.recs.len(),
            3,
            "the slab never grew past its most live records"
        );
    }
}
