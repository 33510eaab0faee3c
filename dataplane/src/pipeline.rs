//! The per-worker pipeline.
//!
//! ```text
//! VLAN check and untag (`vlan`)
//!   → parse/classify (+ IPv4 header checks: IHL, total length, checksum)
//!   → L2 filter → local delivery (ARP, ICMP echo, NDP)
//!   → TTL / hop-limit check (ICMP time exceeded) → IPv6 flow tracking
//!   → NAT (port forwarding + masquerade, `nat` crate) → L3 forwarding
//!   (route lookup, egress MTU: fragments / ICMP too big (`mtu`), TTL
//!   decrement, neighbour resolution with a bounded hold queue, MAC
//!   rewrite) → VLAN tag of the egress port (`vlan`) → out
//! ```
//!
//! One module per stage: this file (the burst passes, parse and the input
//! checks), `handoff` (frames another worker owns), `local` (local
//! delivery), the NAT (`crate::natglue`), `forward` (TTL, routes, L2 out),
//! `mtu` (egress MTU), `route` (the route table), `timers` (expiry and the
//! neighbour glue; the table is `crate::neighbor`), `reasons` (the drop
//! reasons), `shared` (what the workers share), `vlan` (802.1Q tags
//! checked and removed on ingress, written on egress).
//!
//! Contract with drivers (replay, DPDK): build one [`Shared`] per process
//! (`Arc`), one [`Pipeline`] per worker, then per burst call
//! [`Pipeline::process`] with the burst's `now`, act on each frame's
//! [`Disposition`] and send [`Output::generated`]; call
//! [`Pipeline::poll_timers`] once per loop. Nothing here reads a clock,
//! allocates per forwarded frame or per burst (the burst passes reuse
//! buffers held in the [`Pipeline`]; only generated frames and held copies
//! are new `Vec`s), or panics on any input: malformed frames are counted
//! drops with a [`DropReason`].
//!
//! Cost per frame: one classify pass (O(header length)), O(own addresses)
//! local-delivery check, one NAT call (session-table lookup; the worker's
//! own NAT is locked once per burst, not per frame), one route lookup (O(routes),
//! static routes are few) and one next-hop lookup in a worker-local cache
//! (the shared neighbour table is locked only on a miss).
//!
//! The TTL check runs before NAT so an ICMP time exceeded goes to the
//! untranslated source (RFC 1812 §5.3.1: decrement and check when
//! forwarding; the error quotes the packet as received).

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use core::time::Duration;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use net::{Classified, L3Kind, L4Kind, arp, icmpv6};
use parking_lot::Mutex;

use crate::Timestamp;
use crate::config::{Config, Role};
use crate::metrics::{Counters, add, bump};
use crate::natglue::{NAT_CHUNK, NatGuard, NatOutcome};
use crate::neighbor::{self, Evidence, Lookup, NEIGHBOR_POLL_BUDGET, NeighborTable};
use crate::wire::{self, Mac};

mod forward;
mod handoff;
mod local;
mod mtu;
mod reasons;
mod route;
mod shared;
mod timers;
mod vlan;

pub use reasons::DropReason;
use route::NhHash;
pub use route::RouteTable;
pub use shared::{Shared, link_local};

/// Index of a port in the configuration's `ports` list.
pub type PortId = u16;

/// NAT pass over a burst: gather the NAT frames (`idx`, ascending, with
/// their classifications) in a stack array, one NAT call per
/// [`NAT_CHUNK`] (no allocation); one outcome per frame appended to `out`.
fn nat_chunks<F: Frame>(
    nat: &mut NatGuard<'_>,
    frames: &mut [F],
    (idx, cls): (&[usize], &[Classified]),
    role: Role,
    now: Timestamp,
    out: &mut Vec<NatOutcome>,
) {
    let mut slices: [&mut [u8]; NAT_CHUNK] = core::array::from_fn(|_| Default::default());
    let (mut n, mut done) = (0, 0);
    for (i, f) in frames.iter_mut().enumerate() {
        if idx.get(done + n) != Some(&i) {
            continue;
        }
        slices[n] = f.data_mut();
        n += 1;
        if n == NAT_CHUNK || done + n == idx.len() {
            nat.process_burst(&mut slices[..n], &cls[done..done + n], role, now, out);
            done += n;
            n = 0;
        }
    }
}

/// A frame buffer the pipeline can read and rewrite in place, and whose
/// front can move by a few bytes (a VLAN tag removed on ingress, added on
/// egress: [`PortInfo::vlan`]).
pub trait Frame {
    fn data(&self) -> &[u8];
    fn data_mut(&mut self) -> &mut [u8];
    /// Grow the frame by `n` bytes at the front (their content is
    /// unspecified); false, and nothing changed, when there is no room.
    fn grow_front(&mut self, n: usize) -> bool;
    /// Remove the first `n` bytes; false, and nothing changed, when the
    /// frame is shorter.
    fn shrink_front(&mut self, n: usize) -> bool;
}

impl Frame for Vec<u8> {
    fn data(&self) -> &[u8] {
        self
    }
    fn data_mut(&mut self) -> &mut [u8] {
        self
    }
    /// O(length): the bytes move.
    fn grow_front(&mut self, n: usize) -> bool {
        self.splice(0..0, core::iter::repeat_n(0, n));
        true
    }
    /// O(length): the bytes move.
    fn shrink_front(&mut self, n: usize) -> bool {
        if n > self.len() {
            return false;
        }
        self.drain(..n);
        true
    }
}

/// A borrowed slice can shrink at the front but never grow: a frame that
/// needs a VLAN tag added is dropped (`vlan_no_headroom`).
impl Frame for &mut [u8] {
    fn data(&self) -> &[u8] {
        self
    }
    fn data_mut(&mut self) -> &mut [u8] {
        self
    }
    fn grow_front(&mut self, _n: usize) -> bool {
        false
    }
    fn shrink_front(&mut self, n: usize) -> bool {
        if n > self.len() {
            return false;
        }
        let s = core::mem::take(self);
        *self = &mut s[n..];
        true
    }
}

/// What to do with an input frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Send the frame (rewritten in place) on this port. Same length,
    /// except for an 802.1Q tag removed on ingress or added on egress
    /// (`ports[].vlan`): the frame's own length is the one to send.
    Tx(PortId),
    /// Free the frame; counted under the reason.
    Drop(DropReason),
    /// Free the frame; it was not dropped: the pipeline used it (an ARP reply,
    /// gratuitous ARP or neighbour advertisement that was learned, an NS
    /// answered with a generated NA) or holds a copy until its next hop
    /// resolves.
    Consumed,
    /// The frame's NAT session belongs to worker `worker`: the driver moves
    /// the frame (unchanged, or with the first half of a `hairpin` done) to
    /// that worker, which runs it through [`Pipeline::process_handoff`]. A
    /// driver that cannot (its queue is full) frees it and counts it
    /// ([`Pipeline::handoff_dropped`]).
    HandOff { worker: u16, hairpin: bool },
}

/// The result of one [`Pipeline::process`] call.
#[derive(Debug, Default)]
pub struct Output {
    /// One per input frame, same order.
    pub dispositions: Vec<Disposition>,
    /// Frames the pipeline emitted (ARP replies/requests, ICMP errors, NDP,
    /// frames released from a hold queue): the driver copies them into fresh
    /// buffers and sends them on the port. Already tagged for a VLAN port.
    pub generated: Vec<(PortId, Vec<u8>)>,
    /// Parallel to `generated`: index of the input frame that caused it, or
    /// `None` for frames from timers.
    pub generated_cause: Vec<Option<u32>>,
    /// Copies of earlier frames to hand to another worker (as
    /// `Disposition::HandOff { hairpin: false }`), after this call's own
    /// hand-offs: (worker, ingress port, frame). Several workers only.
    pub handoffs: Vec<(u16, PortId, Vec<u8>)>,
}

impl Output {
    pub fn clear(&mut self) {
        self.dispositions.clear();
        self.generated.clear();
        self.generated_cause.clear();
        self.handoffs.clear();
    }
}

/// Errors building the shared state.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("NAT: {0}")]
    Nat(String),
    #[error("flow table: {0}")]
    FlowTable(String),
}

/// What the pipeline knows about a port.
#[derive(Debug, Clone)]
pub struct PortInfo {
    pub name: String,
    pub mac: Mac,
    pub role: Role,
    /// Own IPv4 addresses (interface addresses).
    pub v4: Vec<Ipv4Addr>,
    /// Own IPv6 addresses including the EUI-64 link-local one.
    pub v6: Vec<Ipv6Addr>,
    /// Largest IP packet sent on the port (`ports[].mtu`).
    pub mtu: u16,
    /// The port's 802.1Q VLAN id (`ports[].vlan`): checked and removed on
    /// ingress, written on egress. `None`: untagged.
    pub vlan: Option<u16>,
}

/// Entries processed by `poll_timers` per call at most by the NAT and by
/// the IPv6 flow expiry, each (neighbour timers have
/// [`NEIGHBOR_POLL_BUDGET`]).
pub const POLL_BUDGET: usize = 4096;

/// One worker's pipeline.
pub struct Pipeline {
    shared: Arc<Shared>,
    worker: usize,
    /// Worker-local next-hop cache; cleared when the shared table's
    /// generation moves.
    nh_cache: HashMap<(PortId, IpAddr), Mac, NhHash>,
    /// The entry of `nh_cache` the fast lane used last (most frames of a
    /// burst leave through one next hop): checked before the map, cleared
    /// with it (entries of the map are only added or cleared, never changed).
    nh_last: Option<(PortId, IpAddr, Mac)>,
    nh_gen: u64,
    /// Frames produced by timers, handed out by the next `process` call or
    /// by [`Pipeline::take_generated`].
    pending: Vec<(PortId, Vec<u8>)>,
    last_flow_poll: Option<Timestamp>,
    flow_backlog: bool,
    /// Burst buffers for the NAT stage (reused across calls).
    nat_idx: Vec<usize>,
    nat_cls: Vec<Classified>,
    nat_dst: Vec<Ipv4Addr>,
    nat_outcomes: Vec<NatOutcome>,
    /// Fragments the NAT released during the burst's NAT pass, routed
    /// after pass 3 (reused).
    released: Vec<Vec<u8>>,
    /// Baseline mode for benchmarks: every frame goes out of the next port
    /// untouched (no parsing, no state).
    passthrough: bool,
    /// The IPv4 fast lanes (`quick_to_nat`, `quick_forward_v4`) are used
    /// (default); off only as the reference in differential tests.
    quick: bool,
    /// The frames being processed were handed over by another worker
    /// ([`Pipeline::process_handoff`]): not counted as received, never
    /// handed on.
    handed: bool,
}

/// What [`Pipeline::prefetch`] found for a frame (opaque; `Copy`): the
/// frame's classification, which [`Pipeline::process_prefetched`] reuses
/// instead of classifying the frame again.
#[derive(Debug, Clone, Copy, Default)]
pub struct Prefetch {
    cls: Option<Classified>,
}

enum Step {
    Done(Disposition),
    Continue,
}

/// A frame after the stages before NAT.
enum Pre {
    Done(Disposition),
    /// IPv4 to translate: its classification and destination before NAT.
    Nat(Classified, Ipv4Addr),
}

impl Pipeline {
    /// A pipeline for worker `worker` (index into the shared counters).
    pub fn new(shared: Arc<Shared>, worker: usize) -> Pipeline {
        let worker = worker.min(shared.counters.workers.len() - 1);
        Pipeline {
            shared,
            worker,
            nh_cache: HashMap::default(),
            nh_last: None,
            nh_gen: u64::MAX,
            pending: Vec::new(),
            last_flow_poll: None,
            flow_backlog: false,
            nat_idx: Vec::new(),
            nat_cls: Vec::new(),
            nat_dst: Vec::new(),
            nat_outcomes: Vec::new(),
            released: Vec::new(),
            passthrough: false,
            quick: true,
            handed: false,
        }
    }

    /// Turn the IPv4 fast lanes off (`false`) or back on (the default).
    /// They decide the common case (a unicast IPv4 packet forwarded through
    /// the NAT to a cached next hop) in fewer steps with exactly the same
    /// result; off, every frame takes the general stages. For differential
    /// tests and for measuring what the lanes save.
    pub fn set_fast_lanes(&mut self, on: bool) {
        self.quick = on;
    }

    /// A pass-through pipeline (the benchmark baseline): each frame is sent
    /// unmodified on port `(ingress + 1) % ports`, counted like any other.
    pub fn passthrough(shared: Arc<Shared>, worker: usize) -> Pipeline {
        let mut p = Pipeline::new(shared, worker);
        p.passthrough = true;
        p
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Run a burst received on `ingress` through the pipeline at time `now`.
    /// `out` is cleared first, then holds one disposition per frame and any
    /// generated frames (including those timers produced since the last call).
    pub fn process<F: Frame>(
        &mut self,
        ingress: PortId,
        frames: &mut [F],
        now: Timestamp,
        out: &mut Output,
    ) {
        self.process_prefetched(ingress, frames, &[], now, out);
    }

    /// [`Pipeline::process`] for frames that went through
    /// [`Pipeline::prefetch`]: `pre[i]` is what it returned for `frames[i]`
    /// (unchanged since), and its classification is used instead of
    /// classifying the frame again. Frames without an entry in `pre` are
    /// classified as usual. Same results as `process`.
    ///
    /// Three passes: every stage before the NAT frame by frame; the NAT
    /// over the burst's IPv4 frames under one hold of the NAT's lock
    /// (`NatStage::lock`); the post-NAT checks and L3 forwarding frame by
    /// frame.
    pub fn process_prefetched<F: Frame>(
        &mut self,
        ingress: PortId,
        frames: &mut [F],
        pre: &[Prefetch],
        now: Timestamp,
        out: &mut Output,
    ) {
        out.clear();
        out.dispositions.reserve(frames.len());
        for (port, f) in self.pending.drain(..) {
            out.generated.push((port, f));
            out.generated_cause.push(None);
        }
        let gen_now = self.shared.neighbors.generation.load(Ordering::Acquire);
        if gen_now != self.nh_gen {
            self.nh_cache.clear();
            self.nh_last = None;
            self.nh_gen = gen_now;
        }
        let ingress = if usize::from(ingress) < self.shared.ports.len() {
            Some(ingress)
        } else {
            None
        };
        if self.passthrough {
            let n = self.shared.ports.len() as PortId;
            for _ in frames.iter() {
                let d = match ingress {
                    Some(p) => {
                        bump(&self.shared.counters.workers[self.worker].rx[usize::from(p)]);
                        Disposition::Tx((p + 1) % n)
                    }
                    None => Disposition::Drop(DropReason::Malformed),
                };
                self.account(d);
                out.dispositions.push(d);
            }
            return;
        }
        // Pass 1: every stage before NAT, frame by frame. IPv4 frames for the
        // NAT are collected so the NAT sees the whole burst at once.
        let mut nat_idx = core::mem::take(&mut self.nat_idx);
        let mut nat_cls = core::mem::take(&mut self.nat_cls);
        let mut nat_dst = core::mem::take(&mut self.nat_dst);
        let mut outcomes = core::mem::take(&mut self.nat_outcomes);
        nat_idx.clear();
        nat_cls.clear();
        nat_dst.clear();
        outcomes.clear();
        let c = &self.shared.counters.workers[self.worker];
        if self.handed {
            add(&c.handed_in, frames.len() as u64);
        } else if let Some(p) = ingress {
            add(&c.rx[usize::from(p)], frames.len() as u64);
        }
        // Several workers: frames whose NAT session another worker owns go
        // to it before any stage runs here.
        let dispatch = !self.handed && self.shared.counters.workers.len() > 1;
        // Read once per burst: without VLAN ports, no per-frame VLAN work
        // but the tagged-frame check.
        let vlan_any = self.shared.vlan_any;
        for (i, f) in frames.iter_mut().enumerate() {
            let d = match ingress {
                Some(p) => {
                    let before = out.generated.len();
                    let mut known = pre.get(i).and_then(|x| x.cls);
                    // VLAN check and untagging before anything reads the
                    // frame (handed frames were untagged by their first
                    // worker); without VLAN ports only a tagged frame
                    // goes in (to be dropped).
                    if !self.handed && (vlan_any || vlan::is_tagged(f.data())) {
                        match self.vlan_ingress(p, f) {
                            Ok(vlan::Untagged::AsReceived) => {}
                            Ok(vlan::Untagged::Removed) => known = None,
                            Err(r) => {
                                let d = Disposition::Drop(r);
                                self.account(d);
                                out.dispositions.push(d);
                                continue;
                            }
                        }
                    }
                    if dispatch {
                        if known.is_none() {
                            known = wire::classify(f.data()).ok();
                        }
                        if let Some(c) = known
                            && let Some(w) = self.foreign_owner(p, f.data(), &c)
                        {
                            if c.frag.is_some()
                                && let Some(nat) = &self.shared.nat
                            {
                                // Its later fragments follow it (they carry
                                // no ports to find the owner by); those held
                                // here before it go after it.
                                let held = nat.lock(self.worker).direct_fragment(
                                    f.data(),
                                    &c,
                                    w as u16,
                                    now,
                                );
                                for h in held {
                                    bump(&self.shared.counters.workers[self.worker].handed_off);
                                    out.handoffs.push((w as u16, p, h));
                                }
                            }
                            let d = Disposition::HandOff {
                                worker: w as u16,
                                hairpin: false,
                            };
                            self.account(d);
                            out.dispositions.push(d);
                            continue;
                        }
                    }
                    let pre = self.pre_nat(p, f.data_mut(), known.as_ref(), now, out);
                    for _ in before..out.generated.len() {
                        out.generated_cause.push(Some(i as u32));
                    }
                    match pre {
                        Pre::Done(d) => d,
                        Pre::Nat(c, dst) => {
                            nat_idx.push(i);
                            nat_cls.push(c);
                            nat_dst.push(dst);
                            // Placeholder until pass 3.
                            out.dispositions.push(Disposition::Consumed);
                            continue;
                        }
                    }
                }
                None => Disposition::Drop(DropReason::Malformed),
            };
            let d = if vlan_any { self.vlan_egress(f, d) } else { d };
            self.account(d);
            out.dispositions.push(d);
        }
        let mut released = core::mem::take(&mut self.released);
        released.clear();
        if let (Some(p), false) = (ingress, nat_idx.is_empty()) {
            // Pass 2: NAT over the burst (its sessions prefetched first),
            // under one hold of the NAT's lock, with the fragments it
            // released. The NAT stage is borrowed from `shared`, not
            // cloned (an `Arc` clone is two atomic read-modify-writes).
            if let Some(nat) = &self.shared.nat {
                let role = self.shared.ports[usize::from(p)].role;
                let mut g = nat.lock(self.worker);
                nat_chunks(
                    &mut g,
                    frames,
                    (&nat_idx, &nat_cls),
                    role,
                    now,
                    &mut outcomes,
                );
                g.take_released(&mut released);
            }
            // Pass 3: after NAT, frame by frame.
            for (k, &i) in nat_idx.iter().enumerate() {
                let outcome = outcomes
                    .get(k)
                    .copied()
                    .unwrap_or(NatOutcome::Drop(DropReason::Nat));
                let before = out.generated.len();
                let f = frames[i].data_mut();
                let d = if self.quick
                    && outcome == NatOutcome::Forward
                    && let Some(d) = self.quick_forward_v4(p, f, &nat_cls[k], nat_dst[k])
                {
                    d
                } else {
                    self.after_nat_v4(p, f, &nat_cls[k], outcome, nat_dst[k], now, out)
                };
                for _ in before..out.generated.len() {
                    out.generated_cause.push(Some(i as u32));
                }
                let d = if vlan_any {
                    self.vlan_egress(&mut frames[i], d)
                } else {
                    d
                };
                self.account(d);
                out.dispositions[i] = d;
            }
        }
        self.nat_idx = nat_idx;
        self.nat_cls = nat_cls;
        self.nat_dst = nat_dst;
        self.nat_outcomes = outcomes;
        if !released.is_empty() && !frames.is_empty() {
            // Fragments released by this burst's first fragments.
            let before = out.generated.len();
            self.route_nat_frames(&mut released, true, now, out);
            let last = (frames.len() - 1) as u32;
            for _ in before..out.generated.len() {
                out.generated_cause.push(Some(last));
            }
        }
        self.released = released;
        self.vlan_tag_generated(&mut out.generated, Some(&mut out.generated_cause), 0);
        let c = &self.shared.counters.workers[self.worker];
        for (p, _) in &out.generated {
            if let Some(t) = c.tx.get(usize::from(*p)) {
                bump(t);
            }
            bump(&c.generated);
        }
    }

    /// Reads ahead for a caller that knows its next frames (the replay
    /// harness): classifies `frame`, arriving on `port`, once, for
    /// [`Pipeline::process_prefetched`] to reuse, and starts loading the
    /// index bucket of its NAT session (`NatStage::prefetch`: only if the
    /// NAT's lock is free at once; a hint never waits). A hint only:
    /// outputs, counters and state are exactly as without it. Cost: one
    /// classification, one hash, one `try_lock`.
    #[inline]
    pub fn prefetch(&self, _port: PortId, frame: &[u8]) -> Prefetch {
        if self.passthrough {
            return Prefetch::default();
        }
        let cls = wire::classify(frame).ok();
        if let (Some(c), Some(nat)) = (&cls, &self.shared.nat) {
            nat.prefetch(self.worker, frame, c);
        }
        Prefetch { cls }
    }

    /// Whether [`Pipeline::prefetch`] does anything (not for the
    /// pass-through baseline, which reads nothing of a frame): drivers skip
    /// reading ahead when it does not.
    pub fn uses_prefetch(&self) -> bool {
        !self.passthrough
    }

    /// Frames produced by timers since the last `process`/`take_generated`.
    pub fn take_generated(&mut self, out: &mut Vec<(PortId, Vec<u8>)>) {
        let mut pending = core::mem::take(&mut self.pending);
        self.vlan_tag_generated(&mut pending, None, 0);
        let c = &self.shared.counters.workers[self.worker];
        for (p, f) in pending.drain(..) {
            if let Some(t) = c.tx.get(usize::from(p)) {
                bump(t);
            }
            bump(&c.generated);
            out.push((p, f));
        }
        self.pending = pending;
    }

    fn account(&self, d: Disposition) {
        let c = &self.shared.counters.workers[self.worker];
        match d {
            Disposition::Tx(p) => {
                if let Some(t) = c.tx.get(usize::from(p)) {
                    bump(t);
                }
            }
            Disposition::Drop(r) => bump(&c.drops[r as usize]),
            Disposition::Consumed => {}
            Disposition::HandOff { .. } => bump(&c.handed_off),
        }
    }

    fn drop_count(&self, r: DropReason, n: u64) {
        let c = &self.shared.counters.workers[self.worker];
        crate::metrics::add(&c.drops[r as usize], n);
    }

    /// Pass 1 for one frame: classification (`known` if the caller already
    /// has it, from [`Pipeline::prefetch`]) and the IPv4 input checks
    /// (RFC 1812 §5.2.2: IHL and total length in `classify`, the header
    /// checksum here, before anything answers or forwards the frame), then
    /// [`Pipeline::one`], with
    /// the common case (a unicast IPv4 packet to forward, headed for the
    /// NAT) decided by [`Pipeline::quick_to_nat`] in one read of the header.
    #[inline]
    fn pre_nat(
        &mut self,
        ingress: PortId,
        f: &mut [u8],
        known: Option<&Classified>,
        now: Timestamp,
        out: &mut Output,
    ) -> Pre {
        let cls = match known {
            Some(c) => *c,
            None => match wire::classify(f) {
                Ok(c) => c,
                Err(e) => return Pre::Done(classify_drop(e, f)),
            },
        };
        // One RFC 1071 sum over the 20..60 header bytes.
        if cls.l3 == L3Kind::Ipv4 && net::checksum::verify_ipv4_header(f, &cls).is_err() {
            return Pre::Done(Disposition::Drop(DropReason::BadIpv4Checksum));
        }
        if self.quick
            && let Some(dst) = self.quick_to_nat(ingress, f, &cls)
        {
            return Pre::Nat(cls, dst);
        }
        self.one(ingress, f, cls, now, out)
    }

    /// Whether [`Pipeline::one`] would send this classified frame to the
    /// NAT untouched and without side effects (a unicast IPv4 packet for
    /// this port's MAC, neither from nor to an own, multicast, broadcast or
    /// loopback address, TTL above 1, NAT configured): its destination if
    /// so. `None` is no verdict: `one` decides. Pure; reads 32 bytes.
    #[inline(always)]
    fn quick_to_nat(&self, ingress: PortId, f: &[u8], cls: &Classified) -> Option<Ipv4Addr> {
        if cls.l3 != L3Kind::Ipv4 || self.shared.nat.is_none() {
            return None;
        }
        let mac = self.shared.ports.get(usize::from(ingress))?.mac;
        if f.get(..6)? != mac || mac[0] & 1 != 0 {
            return None;
        }
        let l3 = usize::from(cls.l3_offset);
        let h = f.get(l3..l3 + 20)?;
        let src = Ipv4Addr::new(h[12], h[13], h[14], h[15]);
        let dst = Ipv4Addr::new(h[16], h[17], h[18], h[19]);
        if h[8] <= 1
            || src.is_multicast()
            || src.is_broadcast()
            || src.is_loopback()
            || dst.is_multicast()
            || dst.is_broadcast()
            || self.shared.is_own_v4(src)
            || self.shared.is_own_v4(dst)
        {
            return None;
        }
        Some(dst)
    }

    /// Every stage before NAT for one classified frame.
    fn one(
        &mut self,
        ingress: PortId,
        f: &mut [u8],
        cls: Classified,
        now: Timestamp,
        out: &mut Output,
    ) -> Pre {
        let port = &self.shared.ports[usize::from(ingress)];
        let dmac = wire::dst_mac(f);
        let l2_mcast = dmac[0] & 1 != 0;
        if dmac != port.mac && !l2_mcast {
            return Pre::Done(Disposition::Drop(DropReason::NotForUs));
        }
        match cls.l3 {
            L3Kind::Arp => Pre::Done(self.arp(ingress, f, &cls, now, out)),
            L3Kind::Ipv4 => match self.local_v4(ingress, f, &cls, l2_mcast) {
                Step::Done(d) => Pre::Done(d),
                Step::Continue => self.forward_v4(ingress, f, &cls, now, out),
            },
            L3Kind::Ipv6 => Pre::Done(match self.local_v6(ingress, f, &cls, now, out) {
                Step::Done(d) => d,
                Step::Continue => self.forward_v6(ingress, f, &cls, now, out),
            }),
        }
    }
}

/// The drop for a frame `classify` refused.
fn classify_drop(e: net::ClassifyError, f: &[u8]) -> Disposition {
    use net::ClassifyError as E;
    Disposition::Drop(match e {
        E::UnsupportedEthertype(_) | E::TooManyVlanTags => DropReason::UnsupportedEthertype,
        // IHL below 5 (IPv4 only), or IHL·4 past the frame while the fixed
        // 20 bytes are there (a shorter frame is plain truncation).
        E::BadIhl => DropReason::BadIpv4Header,
        E::Truncated {
            layer: net::Layer::Ipv4,
        } if ipv4_l3(f).is_some_and(|b| b.len() >= net::ipv4::HEADER_LEN) => {
            DropReason::BadIpv4Header
        }
        E::BadTotalLength if ipv4_l3(f).is_some() => DropReason::BadIpv4Length,
        _ => DropReason::Malformed,
    })
}

/// The bytes after the Ethernet header and up to two VLAN tags, if the
/// EtherType there is IPv4 (error path only: which family a classify
/// error is about).
fn ipv4_l3(f: &[u8]) -> Option<&[u8]> {
    use net::ethernet::{self, ethertype};
    let mut et = ethernet::Frame::new_checked(f).ok()?.ethertype();
    let mut off = ethernet::HEADER_LEN;
    for _ in 0..2 {
        if et != ethertype::VLAN && et != ethertype::QINQ {
            break;
        }
        et = net::vlan::Tag::new_checked(f.get(off..)?).ok()?.ethertype();
        off += net::vlan::HEADER_LEN;
    }
    (et == ethertype::IPV4).then(|| f.get(off..)).flatten()
}

/// The IPv4 destination of a classified IPv4 frame (unspecified if the
/// header does not check, which `classify` already excluded).
fn v4_dst(f: &[u8], cls: &Classified) -> Ipv4Addr {
    wire::ipv4_view(f, usize::from(cls.l3_offset), usize::from(cls.l3_end))
        .map_or(Ipv4Addr::UNSPECIFIED, |p| p.dst_addr())
}

/// Helper for tests and the demo: a pipeline over the given config with one
/// worker.
///
/// # Errors
/// As [`Shared::new`].
pub fn single(config: Config) -> Result<Pipeline, BuildError> {
    Ok(Pipeline::new(Shared::new(config, 1)?, 0))
}
