//! The neighbour table: ARP (RFC 826) and IPv6 neighbour discovery
//! (RFC 4861), shared by the workers of one process.
//!
//! Entries follow the RFC 4861 §7.3.2 states, with Linux's neighbour code
//! (`net/core/neighbour.c`, `arp.c`, `ndisc.c`) as the model for timing and
//! for what ARP does (RFC 826 has no states):
//!
//! | state | MAC used | leaves on |
//! |---|---|---|
//! | `INCOMPLETE` | no: frames held (`hold_queue`) | answer → `REACHABLE`/`STALE`; `mcast_probes` broadcasts unanswered → removed, held frames dropped |
//! | `REACHABLE` | yes | `reachable_secs` after the last confirmation → `STALE` |
//! | `STALE` | yes, at once | first use → `DELAY` |
//! | `DELAY` | yes | a confirmation → `REACHABLE`; `delay_first_probe_secs` → `PROBE` |
//! | `PROBE` | yes | a confirmation → `REACHABLE`; `ucast_probes` unicast then `mcast_reprobes` broadcast probes, `retry_ms` apart, unanswered → removed |
//! | `PERMANENT` | yes | never (static `[[neighbors]]`: no timer, no learning, no cap) |
//!
//! A confirmation is a solicited answer: an ARP reply to one of our
//! addresses sent to our MAC, or a neighbour advertisement with the S flag.
//! Other evidence (an ARP request or NS from the neighbour, a gratuitous
//! ARP, an unsolicited NA with O set) records a changed MAC and makes the
//! entry `STALE` (RFC 4861 §7.2.3, §7.2.5; Linux `neigh_update`); the same
//! MAC leaves the state alone. A gratuitous ARP or an NA updates only an
//! entry that exists (RFC 4861 §7.2.5; Linux without `arp_accept`).
//!
//! Bounds: at most `max_entries` dynamic entries (static ones are not
//! counted: the configuration bounds them) and `max_incomplete` of them in
//! `INCOMPLETE` (each may hold `hold_queue` frame copies). A new entry at
//! `max_entries` evicts the entry that has been `STALE` longest (an
//! unconfirmed, idle entry: Linux's forced garbage collection also takes
//! unused entries first); with none `STALE`, the new entry is refused. A
//! frame that would have created a refused entry is a counted drop
//! (`neighbor_table_full`, `neighbor_incomplete_full`); evictions and
//! refused learning are counted in [`NeighborStats`].
//!
//! Timers: every entry that needs one has exactly one deadline, kept in an
//! ordered set beside the map (both under one lock, so an entry and its
//! deadline never disagree). [`NeighborTable::poll`] pops the deadlines
//! that are due, at most `budget` per call: O(due · log n), never a walk of
//! the table. An ordered set rather than the flow tables' timer wheel: the
//! table is small (`max_entries`, 1 024 by default) and its deadlines span
//! milliseconds to minutes.
//!
//! Worker caches: workers keep next hops in a local cache cleared when
//! [`NeighborTable::generation`] moves. Only entries whose MAC may be used
//! without telling the table are cacheable (`REACHABLE`, `DELAY`, `PROBE`,
//! `PERMANENT`); the generation moves whenever an entry becomes `STALE`,
//! changes its MAC or is removed, so the first use of a `STALE` entry always
//! reaches the table (and starts `DELAY`). Linux moves a `REACHABLE` entry
//! used in its last `delay_first_probe_secs` straight to `DELAY`; here it
//! goes to `STALE` and its next use moves it to `DELAY`: the same probes,
//! one lock more.
//!
//! Not modelled: upper-layer reachability hints (Linux confirms entries from
//! TCP progress on locally terminated connections; this router terminates
//! none), the randomised reachable time (RFC 4861 §6.3.2: replay stays
//! deterministic), and Linux's `locktime`.
//!
//! Time is an argument: nothing here reads a clock.

use core::net::{IpAddr, Ipv4Addr};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use serde::Serialize;

use crate::Timestamp;
use crate::config::NeighborSection;
use crate::pipeline::{DropReason, PortId, Shared};
use crate::wire::{self, Mac};

/// Entries handled by one [`NeighborTable::poll`] call at most (the
/// pipeline's budget for neighbour timers per `poll_timers`).
pub const NEIGHBOR_POLL_BUDGET: usize = 64;

/// A neighbour: the port it is on and its address.
pub type Key = (PortId, IpAddr);

/// RFC 4861 §7.3.2 reachability states, plus `Permanent` for static entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum State {
    Incomplete,
    Reachable,
    Stale,
    Delay,
    Probe,
    Permanent,
}

impl State {
    /// The state as `ip neigh` and RFC 4861 spell it (`REACHABLE`, ...).
    pub fn name(self) -> &'static str {
        match self {
            State::Incomplete => "INCOMPLETE",
            State::Reachable => "REACHABLE",
            State::Stale => "STALE",
            State::Delay => "DELAY",
            State::Probe => "PROBE",
            State::Permanent => "PERMANENT",
        }
    }

    /// Whether a worker may cache the MAC (see the module doc).
    fn cacheable(self) -> bool {
        matches!(
            self,
            State::Reachable | State::Delay | State::Probe | State::Permanent
        )
    }
}

/// `[neighbor]` in nanoseconds and counts.
#[derive(Debug, Clone, Copy)]
struct Params {
    reachable: u64,
    delay: u64,
    retrans: u64,
    hold: u64,
    hold_queue: usize,
    ucast_probes: u32,
    mcast_probes: u32,
    mcast_reprobes: u32,
    max_entries: usize,
    max_incomplete: usize,
}

impl Params {
    fn new(c: &NeighborSection) -> Params {
        const NS: u64 = 1_000_000_000;
        Params {
            reachable: c.reachable_secs.saturating_mul(NS),
            delay: c.delay_first_probe_secs.saturating_mul(NS),
            retrans: c.retry_ms.saturating_mul(1_000_000).max(1),
            hold: c.hold_timeout_ms.saturating_mul(1_000_000),
            hold_queue: c.hold_queue,
            ucast_probes: c.ucast_probes,
            mcast_probes: c.mcast_probes,
            mcast_reprobes: c.mcast_reprobes,
            max_entries: c.max_entries,
            max_incomplete: c.max_incomplete,
        }
    }

    /// Solicitations sent in `state` before the entry is given up
    /// (Linux `neigh_max_probes`: an `INCOMPLETE` entry has no MAC to
    /// unicast to, so it broadcasts only).
    fn max_probes(&self, state: State) -> u32 {
        match state {
            State::Incomplete => self.mcast_probes,
            _ => self.ucast_probes.saturating_add(self.mcast_reprobes),
        }
    }
}

#[derive(Debug)]
struct Entry {
    state: State,
    /// Zero while `INCOMPLETE`.
    mac: Mac,
    /// Last reachability confirmation; `None` if never confirmed.
    confirmed: Option<Timestamp>,
    /// When the entry entered its state.
    since: Timestamp,
    /// Solicitations sent in this `INCOMPLETE` or `PROBE` period.
    probes: u32,
    last_probe: Timestamp,
    /// This entry's key in `Index::timers`.
    due: Option<u64>,
    /// Frames waiting for an `INCOMPLETE` entry, with their arrival time.
    held: VecDeque<(Timestamp, Vec<u8>)>,
}

impl Entry {
    fn new(state: State, mac: Mac, now: Timestamp) -> Entry {
        Entry {
            state,
            mac,
            confirmed: None,
            since: now,
            probes: 0,
            last_probe: now,
            due: None,
            held: VecDeque::new(),
        }
    }

    /// When this entry next needs the timer, if ever.
    fn deadline(&self, p: &Params) -> Option<u64> {
        match self.state {
            State::Reachable => Some(
                self.confirmed
                    .unwrap_or(self.since)
                    .as_nanos()
                    .saturating_add(p.reachable),
            ),
            State::Delay => Some(self.since.as_nanos().saturating_add(p.delay)),
            State::Incomplete | State::Probe => {
                let probe = self.last_probe.as_nanos().saturating_add(p.retrans);
                let hold = self
                    .held
                    .front()
                    .map_or(u64::MAX, |(t, _)| t.as_nanos().saturating_add(p.hold));
                Some(probe.min(hold))
            }
            State::Stale | State::Permanent => None,
        }
    }
}

/// The indexes kept beside the map, always updated with it.
#[derive(Debug, Default)]
struct Index {
    /// (deadline ns, key), one per entry with a deadline.
    timers: BTreeSet<(u64, Key)>,
    /// (time it became `STALE` ns, key): eviction order at `max_entries`.
    stale: BTreeSet<(u64, Key)>,
    /// Entries that are not `PERMANENT`.
    dynamic: usize,
    incomplete: usize,
}

impl Index {
    /// Account for `e` joining the table (after its state is set).
    fn join(&mut self, key: Key, e: &mut Entry, p: &Params) {
        if e.state != State::Permanent {
            self.dynamic += 1;
        }
        if e.state == State::Incomplete {
            self.incomplete += 1;
        }
        if e.state == State::Stale {
            self.stale.insert((e.since.as_nanos(), key));
        }
        self.rearm(key, e, p);
    }

    /// Account for `e` leaving the table.
    fn leave(&mut self, key: Key, e: &mut Entry) {
        if e.state != State::Permanent {
            self.dynamic -= 1;
        }
        if e.state == State::Incomplete {
            self.incomplete -= 1;
        }
        if e.state == State::Stale {
            self.stale.remove(&(e.since.as_nanos(), key));
        }
        if let Some(t) = e.due.take() {
            self.timers.remove(&(t, key));
        }
    }

    /// Move `e` to `state` at `now` (resets the probe count) and re-arm it.
    fn enter(&mut self, key: Key, e: &mut Entry, state: State, now: Timestamp, p: &Params) {
        if e.state == State::Incomplete {
            self.incomplete -= 1;
        }
        if e.state == State::Stale {
            self.stale.remove(&(e.since.as_nanos(), key));
        }
        e.state = state;
        e.since = now;
        e.probes = 0;
        if state == State::Stale {
            self.stale.insert((now.as_nanos(), key));
        }
        debug_assert!(state != State::Incomplete, "entries are born INCOMPLETE");
        self.rearm(key, e, p);
    }

    /// Put `e`'s deadline in the timer set (after any change to it).
    fn rearm(&mut self, key: Key, e: &mut Entry, p: &Params) {
        let due = e.deadline(p);
        if due == e.due {
            return;
        }
        if let Some(t) = e.due.take() {
            self.timers.remove(&(t, key));
        }
        if let Some(t) = due {
            self.timers.insert((t, key));
        }
        e.due = due;
    }
}

#[derive(Debug, Default)]
struct Inner {
    map: BTreeMap<Key, Entry>,
    ix: Index,
}

/// Counters of the table (monotonic, O(1) to read).
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct NeighborStats {
    /// Entries in the table (static ones included).
    pub entries: u64,
    /// Of which `INCOMPLETE`.
    pub incomplete: u64,
    /// `STALE` entries evicted to make room at `max_entries`.
    pub evicted: u64,
    /// Entries removed after their solicitations went unanswered.
    pub failed: u64,
    /// Entries not created because the table was full of entries that may
    /// not be evicted (learning refused; frames refused count as drops).
    pub refused: u64,
}

/// What [`NeighborTable::resolve`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Send to `mac`; `cache`: a worker may keep it until the generation
    /// moves.
    Mac { mac: Mac, cache: bool },
    /// The frame was copied into the entry's hold queue.
    Held { ask: bool },
    /// The frame was not held (counted under `reason` by the caller).
    Drop { reason: DropReason, ask: bool },
}

/// What a received message says about its sender (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evidence {
    /// A solicited answer: reachability confirmed (→ `REACHABLE`).
    pub solicited: bool,
    /// The MAC replaces a different one (NA O flag; always for ARP).
    pub override_mac: bool,
    /// May create an entry (false for gratuitous ARP and NA).
    pub create: bool,
}

impl Evidence {
    /// An ARP reply to one of our addresses sent to our MAC.
    pub const ARP_REPLY: Evidence = Evidence {
        solicited: true,
        override_mac: true,
        create: true,
    };
    /// An ARP request for one of our addresses, or an NS with a source
    /// link-layer address (RFC 4861 §7.2.3).
    pub const SOLICITATION: Evidence = Evidence {
        solicited: false,
        override_mac: true,
        create: true,
    };
    /// A gratuitous ARP (sender address = target address).
    pub const GRATUITOUS_ARP: Evidence = Evidence {
        solicited: false,
        override_mac: true,
        create: false,
    };

    /// A neighbour advertisement with these flags (RFC 4861 §4.4).
    pub fn advert(flags: u8) -> Evidence {
        use net::icmpv6::na_flags;
        Evidence {
            solicited: flags & na_flags::SOLICITED != 0,
            override_mac: flags & na_flags::OVERRIDE != 0,
            create: false,
        }
    }
}

/// What [`NeighborTable::learn`] did.
#[derive(Debug, Default)]
pub struct Learned {
    /// An entry was created, updated or confirmed (not ignored or refused).
    pub changed: bool,
    /// Frames held for the entry, now to be sent to the learned MAC.
    pub released: Vec<Vec<u8>>,
}

/// A solicitation the timers want sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Solicit {
    pub port: PortId,
    pub ip: IpAddr,
    /// `Some(mac)`: a unicast probe to the known MAC; `None`: broadcast
    /// (ARP) or solicited-node multicast (ND).
    pub unicast: Option<Mac>,
}

/// What one [`NeighborTable::poll`] did.
#[derive(Debug, Default)]
pub struct Polled {
    /// Entries handled (at most the budget).
    pub work: usize,
    /// Held frames dropped (hold timeout, or their entry failed).
    pub unresolved: u64,
}

/// One row of [`NeighborTable::scan`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct NeighborRow {
    pub port: PortId,
    pub ip: IpAddr,
    /// `None` while `INCOMPLETE`.
    pub mac: Option<Mac>,
    pub state: State,
    /// Seconds from the last confirmation to the table's latest time
    /// ([`NeighborTable::now`]); `None` if never confirmed (and for static
    /// entries).
    pub confirmed_secs_ago: Option<f64>,
}

/// The neighbour table. Locked on a worker-cache miss, on learning and in
/// [`NeighborTable::poll`] when a deadline is due.
#[derive(Debug)]
pub struct NeighborTable {
    inner: Mutex<Inner>,
    params: Params,
    /// Bumped on every change that can invalidate a worker's cache.
    pub(crate) generation: AtomicU64,
    /// The earliest deadline (ns; `u64::MAX` = none), stored under the lock
    /// after every change, so an idle poll is one atomic load.
    next_due: AtomicU64,
    /// The latest `now` the table was given (for `scan`'s ages).
    clock: AtomicU64,
    evicted: AtomicU64,
    failed: AtomicU64,
    refused: AtomicU64,
}

impl NeighborTable {
    /// A table with the `[neighbor]` settings and the static entries.
    pub fn new(cfg: &NeighborSection, statics: impl IntoIterator<Item = (Key, Mac)>) -> Self {
        let params = Params::new(cfg);
        let mut inner = Inner::default();
        for (key, mac) in statics {
            let mut e = Entry::new(State::Permanent, mac, Timestamp::ZERO);
            if let Some(mut old) = inner.map.remove(&key) {
                inner.ix.leave(key, &mut old);
            }
            inner.ix.join(key, &mut e, &params);
            inner.map.insert(key, e);
        }
        NeighborTable {
            inner: Mutex::new(inner),
            params,
            generation: AtomicU64::new(0),
            next_due: AtomicU64::new(u64::MAX),
            clock: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// Number of entries (all states). O(1) plus the lock.
    pub fn len(&self) -> usize {
        self.inner.lock().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cache generation (see the module doc).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The latest time the table was given.
    pub fn now(&self) -> Timestamp {
        Timestamp::from_nanos(self.clock.load(Ordering::Relaxed))
    }

    /// Counters. O(1) plus the lock.
    pub fn stats(&self) -> NeighborStats {
        let (entries, incomplete) = {
            let g = self.inner.lock();
            (g.map.len() as u64, g.ix.incomplete as u64)
        };
        NeighborStats {
            entries,
            incomplete,
            evicted: self.evicted.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
        }
    }

    /// Every entry, in (port, address) order: an O(n) scan under the lock.
    pub fn scan(&self) -> Vec<NeighborRow> {
        let now = self.now();
        self.inner
            .lock()
            .map
            .iter()
            .map(|(&(port, ip), e)| NeighborRow {
                port,
                ip,
                mac: (e.state != State::Incomplete).then_some(e.mac),
                state: e.state,
                confirmed_secs_ago: e
                    .confirmed
                    .map(|c| now.saturating_duration_since(c).as_secs_f64()),
            })
            .collect()
    }

    /// The state and MAC of one entry (tests, diagnostics).
    pub fn get(&self, port: PortId, ip: IpAddr) -> Option<(State, Option<Mac>)> {
        self.inner
            .lock()
            .map
            .get(&(port, ip))
            .map(|e| (e.state, (e.state != State::Incomplete).then_some(e.mac)))
    }

    /// Whether a deadline is due at `now` (one atomic load).
    #[inline]
    pub fn is_due(&self, now: Timestamp) -> bool {
        now.as_nanos() >= self.next_due.load(Ordering::Relaxed)
    }

    fn tick(&self, now: Timestamp) {
        self.clock.fetch_max(now.as_nanos(), Ordering::Relaxed);
    }

    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Store the earliest deadline (call with the lock held).
    fn publish(&self, g: &Inner) {
        let t = g.ix.timers.first().map_or(u64::MAX, |&(t, _)| t);
        self.next_due.store(t, Ordering::Relaxed);
    }

    /// Make room for one more dynamic entry: evict the entry `STALE`
    /// longest if the table is at `max_entries`. `false`: no room.
    fn room(&self, g: &mut Inner) -> bool {
        if g.ix.dynamic < self.params.max_entries {
            return true;
        }
        let Some(&(_, key)) = g.ix.stale.first() else {
            return false;
        };
        if let Some(mut e) = g.map.remove(&key) {
            g.ix.leave(key, &mut e);
        }
        self.evicted.fetch_add(1, Ordering::Relaxed);
        self.bump();
        true
    }

    /// The next hop's MAC for a frame to `key` at `now`. A `STALE` entry is
    /// used at once and moves to `DELAY`. Without an entry, one is created
    /// `INCOMPLETE` (within the caps) and the caller sends a broadcast
    /// solicitation (`ask`); a copy of `frame` waits in its hold queue.
    pub fn resolve(&self, key: Key, frame: &[u8], now: Timestamp) -> Lookup {
        self.tick(now);
        let p = &self.params;
        let mut g = self.inner.lock();
        let g = &mut *g;
        let r = match g.map.get_mut(&key) {
            Some(e) if e.state == State::Incomplete => {
                if e.held.len() < p.hold_queue {
                    e.held.push_back((now, frame.to_vec()));
                    g.ix.rearm(key, e, p);
                    Lookup::Held { ask: false }
                } else {
                    Lookup::Drop {
                        reason: DropReason::NeighborQueueFull,
                        ask: false,
                    }
                }
            }
            Some(e) => {
                if e.state == State::Stale {
                    // RFC 4861 §7.3.3: sending to a STALE entry starts DELAY.
                    g.ix.enter(key, e, State::Delay, now, p);
                }
                Lookup::Mac {
                    mac: e.mac,
                    cache: e.state.cacheable(),
                }
            }
            None => {
                if g.ix.incomplete >= p.max_incomplete {
                    return Lookup::Drop {
                        reason: DropReason::NeighborIncompleteFull,
                        ask: false,
                    };
                }
                if !self.room(g) {
                    self.refused.fetch_add(1, Ordering::Relaxed);
                    return Lookup::Drop {
                        reason: DropReason::NeighborTableFull,
                        ask: false,
                    };
                }
                let mut e = Entry::new(State::Incomplete, [0; 6], now);
                e.probes = 1;
                let r = if p.hold_queue > 0 {
                    e.held.push_back((now, frame.to_vec()));
                    Lookup::Held { ask: true }
                } else {
                    Lookup::Drop {
                        reason: DropReason::NeighborQueueFull,
                        ask: true,
                    }
                };
                g.ix.join(key, &mut e, p);
                g.map.insert(key, e);
                r
            }
        };
        self.publish(g);
        r
    }

    /// Record what a message from the neighbour `key` at `mac` says
    /// (RFC 4861 §7.2.3 and §7.2.5, applied to ARP as Linux does).
    /// Multicast and zero MACs and static entries are ignored.
    pub fn learn(&self, key: Key, mac: Mac, ev: Evidence, now: Timestamp) -> Learned {
        let mut out = Learned::default();
        if mac[0] & 1 != 0 || mac == [0; 6] {
            return out;
        }
        self.tick(now);
        let p = &self.params;
        let mut g = self.inner.lock();
        let g = &mut *g;
        match g.map.get_mut(&key) {
            None => {
                if !ev.create {
                    return out;
                }
                if !self.room(g) {
                    self.refused.fetch_add(1, Ordering::Relaxed);
                    self.publish(g);
                    return out;
                }
                let state = if ev.solicited {
                    State::Reachable
                } else {
                    State::Stale
                };
                let mut e = Entry::new(state, mac, now);
                if ev.solicited {
                    e.confirmed = Some(now);
                }
                g.ix.join(key, &mut e, p);
                g.map.insert(key, e);
                out.changed = true;
            }
            Some(e) if e.state == State::Permanent => return out,
            Some(e) if e.state == State::Incomplete => {
                e.mac = mac;
                out.released = e.held.drain(..).map(|(_, f)| f).collect();
                if ev.solicited {
                    e.confirmed = Some(now);
                    g.ix.enter(key, e, State::Reachable, now, p);
                } else {
                    g.ix.enter(key, e, State::Stale, now, p);
                }
                out.changed = true;
            }
            Some(e) => {
                let differs = e.mac != mac;
                if differs && !ev.override_mac {
                    // RFC 4861 §7.2.5: O clear and a different address:
                    // a REACHABLE entry becomes STALE, the MAC stays.
                    if e.state == State::Reachable {
                        g.ix.enter(key, e, State::Stale, now, p);
                        self.bump();
                    }
                } else {
                    if differs {
                        e.mac = mac;
                        self.bump();
                    }
                    if ev.solicited {
                        e.confirmed = Some(now);
                        if e.state == State::Reachable {
                            g.ix.rearm(key, e, p);
                        } else {
                            g.ix.enter(key, e, State::Reachable, now, p);
                        }
                    } else if differs {
                        // A new address, unconfirmed (from STALE too: the
                        // eviction order restarts).
                        g.ix.enter(key, e, State::Stale, now, p);
                    }
                    out.changed = true;
                }
            }
        }
        self.publish(g);
        out
    }

    /// Run the deadlines due at `now`, at most `budget` entries (the rest
    /// stay due for the next call). Solicitations to send are appended to
    /// `solicit`.
    pub fn poll(&self, now: Timestamp, budget: usize, solicit: &mut Vec<Solicit>) -> Polled {
        self.tick(now);
        let p = &self.params;
        let mut out = Polled::default();
        let mut g = self.inner.lock();
        let g = &mut *g;
        while out.work < budget {
            let Some(&(t, key)) = g.ix.timers.first() else {
                break;
            };
            if t > now.as_nanos() {
                break;
            }
            out.work += 1;
            let Some(e) = g.map.get_mut(&key) else {
                // Unreachable: an entry leaves the timer set with the map.
                g.ix.timers.remove(&(t, key));
                continue;
            };
            match e.state {
                State::Reachable => {
                    g.ix.enter(key, e, State::Stale, now, p);
                    self.bump();
                }
                State::Delay => {
                    // RFC 4861 §7.3.3: no confirmation during DELAY: PROBE,
                    // first probe now.
                    g.ix.enter(key, e, State::Probe, now, p);
                    self.probe(key, e, now, solicit);
                    g.ix.rearm(key, e, p);
                }
                State::Incomplete | State::Probe => {
                    while e
                        .held
                        .front()
                        .is_some_and(|(h, _)| h.as_nanos().saturating_add(p.hold) <= now.as_nanos())
                    {
                        e.held.pop_front();
                        out.unresolved += 1;
                    }
                    if e.last_probe.as_nanos().saturating_add(p.retrans) <= now.as_nanos() {
                        if e.probes >= p.max_probes(e.state) {
                            out.unresolved += e.held.len() as u64;
                            let mut e = g.map.remove(&key).expect("entry looked up above");
                            g.ix.leave(key, &mut e);
                            self.failed.fetch_add(1, Ordering::Relaxed);
                            self.bump();
                            continue;
                        }
                        self.probe(key, e, now, solicit);
                    }
                    g.ix.rearm(key, e, p);
                }
                State::Stale | State::Permanent => {
                    // No deadline in these states.
                    g.ix.rearm(key, e, p);
                }
            }
        }
        self.publish(g);
        out
    }

    /// Send the next solicitation of `e`: unicast to its MAC for the first
    /// `ucast_probes` of `PROBE` (RFC 4861 §7.3.3; Linux `arp_solicit`),
    /// broadcast otherwise.
    fn probe(&self, key: Key, e: &mut Entry, now: Timestamp, solicit: &mut Vec<Solicit>) {
        let unicast =
            (e.state == State::Probe && e.probes < self.params.ucast_probes).then_some(e.mac);
        e.probes += 1;
        e.last_probe = now;
        solicit.push(Solicit {
            port: key.0,
            ip: key.1,
            unicast,
        });
    }
}

/// The solicitation for `s`: an ARP request (to `s.unicast` or broadcast)
/// from our address on the target's subnet (else the port's first), or an
/// NS (to the target itself, or its solicited-node group) from our
/// link-local address for a link-local target, else the port's first.
/// `None` when the port has no address of the family.
pub fn solicitation(shared: &Shared, s: Solicit) -> Option<Vec<u8>> {
    let p = shared.ports.get(usize::from(s.port))?;
    match s.ip {
        IpAddr::V4(t) => {
            let cfgp = &shared.config.ports[usize::from(s.port)];
            let src = cfgp
                .ipv4
                .iter()
                .find(|c| c.contains(s.ip))
                .or(cfgp.ipv4.first())
                .and_then(|c| match c.addr {
                    IpAddr::V4(a) => Some(a),
                    IpAddr::V6(_) => None,
                })
                .unwrap_or(Ipv4Addr::UNSPECIFIED);
            Some(match s.unicast {
                Some(dst) => wire::arp_request_to(dst, p.mac, src, t),
                None => wire::arp_request(p.mac, src, t),
            })
        }
        IpAddr::V6(t) => {
            let src = if t.segments()[0] & 0xffc0 == 0xfe80 {
                p.v6.last().copied()
            } else {
                p.v6.first().copied()
            }?;
            Some(match s.unicast {
                Some(dst) => wire::ndp_solicit_unicast(p.mac, src, t, dst),
                None => wire::ndp_solicit(p.mac, src, t),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    const A: Mac = [2, 0, 0, 0, 0, 0xa];
    const B: Mac = [2, 0, 0, 0, 0, 0xb];

    fn key(n: u8) -> Key {
        (0, IpAddr::V4(Ipv4Addr::new(10, 0, 0, n)))
    }

    fn s(secs: f64) -> Timestamp {
        Timestamp::from_nanos((secs * 1e9) as u64)
    }

    fn table(f: impl FnOnce(&mut NeighborSection)) -> NeighborTable {
        let mut c = NeighborSection::default();
        f(&mut c);
        NeighborTable::new(&c, [])
    }

    /// The timer set and the counters agree with the map after every step.
    fn check(t: &NeighborTable) {
        let g = t.inner.lock();
        let mut timers = BTreeSet::new();
        let mut stale = BTreeSet::new();
        let (mut dynamic, mut incomplete) = (0, 0);
        for (&k, e) in &g.map {
            assert_eq!(e.due, e.deadline(&t.params), "{k:?} armed at its deadline");
            if let Some(d) = e.due {
                timers.insert((d, k));
            }
            if e.state == State::Stale {
                stale.insert((e.since.as_nanos(), k));
            }
            dynamic += usize::from(e.state != State::Permanent);
            incomplete += usize::from(e.state == State::Incomplete);
        }
        assert_eq!(g.ix.timers, timers);
        assert_eq!(g.ix.stale, stale);
        assert_eq!((g.ix.dynamic, g.ix.incomplete), (dynamic, incomplete));
    }

    #[test]
    fn neighbor_indexes_follow_every_transition() {
        let t = table(|_| {});
        let mut sol = Vec::new();
        assert_eq!(t.resolve(key(1), b"f", s(0.0)), Lookup::Held { ask: true });
        check(&t);
        let l = t.learn(key(1), A, Evidence::ARP_REPLY, s(0.5));
        assert_eq!(l.released, vec![b"f".to_vec()]);
        check(&t);
        t.poll(s(31.0), 64, &mut sol);
        assert_eq!(t.get(0, key(1).1), Some((State::Stale, Some(A))));
        check(&t);
        t.resolve(key(1), b"g", s(40.0));
        assert_eq!(t.get(0, key(1).1).unwrap().0, State::Delay);
        check(&t);
        t.poll(s(45.0), 64, &mut sol);
        assert_eq!(t.get(0, key(1).1).unwrap().0, State::Probe);
        check(&t);
        t.learn(key(1), B, Evidence::GRATUITOUS_ARP, s(45.5));
        assert_eq!(t.get(0, key(1).1), Some((State::Stale, Some(B))));
        check(&t);
        t.learn(key(2), A, Evidence::SOLICITATION, s(46.0));
        check(&t);
        t.resolve(key(1), b"h", s(50.0));
        for k in 0..20 {
            t.poll(s(50.0 + f64::from(k)), 64, &mut sol);
            check(&t);
        }
        assert_eq!(t.get(0, key(1).1), None, "removed after unanswered probes");
        assert_eq!(t.stats().failed, 1);
    }

    /// Random resolves, answers and polls on a small, tight table: after
    /// every step the indexes match the map and the caps hold; after a
    /// quiet day only STALE entries are left (REACHABLE ones aged, the rest
    /// probed and removed), holding nothing.
    #[test]
    fn neighbor_random_operations_keep_indexes_and_caps() {
        let t = table(|c| {
            c.max_entries = 6;
            c.max_incomplete = 3;
            c.hold_queue = 2;
            c.mcast_reprobes = 1;
        });
        let mut rng = crate::traffic::Rng::new(7);
        let mut now = 0.0;
        let mut sol = Vec::new();
        for _ in 0..20_000 {
            now += rng.below(2000) as f64 / 1000.0;
            let k = key(rng.below(10) as u8);
            let mac = if rng.below(2) == 0 { A } else { B };
            match rng.below(6) {
                0 | 1 => {
                    t.resolve(k, b"f", s(now));
                }
                2 => {
                    t.learn(k, mac, Evidence::ARP_REPLY, s(now));
                }
                3 => {
                    t.learn(k, mac, Evidence::SOLICITATION, s(now));
                }
                4 => {
                    t.learn(k, mac, Evidence::advert(rng.below(256) as u8), s(now));
                }
                _ => {
                    let w = t.poll(s(now), 1 + rng.below(3) as usize, &mut sol).work;
                    assert!(w <= 3);
                }
            }
            check(&t);
            let g = t.inner.lock();
            assert!(g.ix.dynamic <= 6 && g.ix.incomplete <= 3);
            assert!(g.map.values().all(|e| e.held.len() <= 2));
        }
        // A quiet day, polled every second at its end (each poll moves an
        // entry one step: probes are retry_ms apart).
        for k in 0..20 {
            t.poll(s(now + 86_400.0 + f64::from(k)), usize::MAX, &mut sol);
            check(&t);
        }
        let g = t.inner.lock();
        assert!(g.ix.timers.is_empty(), "{:?}", g.map);
        assert!(
            g.map
                .values()
                .all(|e| e.state == State::Stale && e.held.is_empty())
        );
    }

    #[test]
    fn neighbor_eviction_takes_the_entry_stale_longest() {
        let t = table(|c| c.max_entries = 2);
        t.learn(key(1), A, Evidence::SOLICITATION, s(1.0));
        t.learn(key(2), A, Evidence::SOLICITATION, s(2.0));
        t.learn(key(3), A, Evidence::SOLICITATION, s(3.0));
        assert_eq!(t.get(0, key(1).1), None);
        assert!(t.get(0, key(2).1).is_some() && t.get(0, key(3).1).is_some());
        assert_eq!(t.stats().evicted, 1);
        check(&t);
        // Nothing STALE to evict: refused.
        t.learn(key(2), A, Evidence::ARP_REPLY, s(4.0));
        t.learn(key(3), A, Evidence::ARP_REPLY, s(4.0));
        t.learn(key(4), A, Evidence::SOLICITATION, s(5.0));
        assert_eq!(t.get(0, key(4).1), None);
        assert_eq!(t.stats().refused, 1);
        check(&t);
    }
}
