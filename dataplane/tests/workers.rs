//! Several workers (replay `--workers N`): every multi-worker path — the
//! emulated RSS spreading frames over receivers, hand-off to the owner,
//! hairpins across workers, ICMP errors, port forwards — gives the same
//! frames per port as one worker.
//!
//! A closed loop: a scripted set of inside hosts talks to the outside; a
//! simulated remote network answers every frame the dataplane sends out
//! (replies to the external endpoint it saw, and now and then an ICMP port
//! unreachable instead), the web server behind the port forward answers
//! its SYNs, and inside hosts hairpin to external endpoints they saw. The
//! only thing that may differ between 1 and N workers is which external
//! port a mapping got (blocks belong to workers); outputs are compared with
//! external ports and the checksums over them blanked.

mod common;

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;

use common::*;
use core::net::Ipv4Addr;
use dataplane::PortId;
use dataplane::config::Config;
use dataplane::pipeline::{Pipeline, Shared};
use dataplane::replay::{self, Feed, Packet, PacketSink, ReplayError, SkipReason};
use dataplane::traffic::{self, Rng, tcp};
use dataplane::wire::{self, PROTO_ICMP, PROTO_TCP, PROTO_UDP};
use proptest::prelude::*;

const POOLS: [Ipv4Addr; 2] = [POOL1, POOL2];

fn config() -> Config {
    let mut c = nat_config();
    c.flow_table.capacity = 1 << 14;
    if let Some(n) = c.nat.as_mut() {
        // Remotes other than the one a mapping was opened to may send in
        // (hairpins from another host's endpoint).
        n.filtering = nat::FilteringBehavior::EndpointIndependent;
    }
    c
}

/// The simulated network around the dataplane.
struct Net {
    rng: Rng,
    script: VecDeque<(PortId, Vec<u8>)>,
    answers: VecDeque<(PortId, Vec<u8>)>,
    /// Everything the dataplane sent, by port, in order.
    out: BTreeMap<PortId, Vec<Vec<u8>>>,
    t: u64,
    /// External UDP endpoints seen leaving (for hairpins: the same flow's
    /// endpoint in every run, whatever port it got).
    seen: Vec<(Ipv4Addr, u16)>,
    /// The LAN port's VLAN: frames into it are tagged with it, frames out
    /// of it must carry it (checked, then removed: the rest of the loop
    /// sees untagged frames).
    lan_vlan: Option<u16>,
}

struct Loop(Rc<RefCell<Net>>);

impl Feed for Loop {
    fn next(
        &mut self,
        _: &mut BTreeMap<SkipReason, u64>,
    ) -> Result<Option<(PortId, Packet)>, ReplayError> {
        let mut n = self.0.borrow_mut();
        let next = match n.answers.pop_front() {
            Some(x) => Some(x),
            None => n.script.pop_front(),
        };
        n.t += 1_000_000;
        let ts_ns = n.t;
        let vlan = n.lan_vlan;
        Ok(next.map(|(p, data)| {
            let data = match vlan {
                Some(v) if p == LAN => tag(&data, v),
                _ => data,
            };
            (p, Packet { ts_ns, data })
        }))
    }
    fn may_read_ahead(&self) -> bool {
        false
    }
}

impl PacketSink for Loop {
    fn write(&mut self, port: PortId, _ts: u64, f: &[u8]) -> Result<(), ReplayError> {
        let mut n = self.0.borrow_mut();
        let (tags, plain) = untag(f);
        let want: Vec<u16> = n.lan_vlan.filter(|_| port == LAN).into_iter().collect();
        assert_eq!(tags, want, "the tags of a frame sent on port {port}");
        let f = &plain[..];
        n.out.entry(port).or_default().push(f.to_vec());
        for a in answer(&mut n, port, f) {
            n.answers.push_back(a);
        }
        Ok(())
    }
}

/// What the network answers to frame `f` sent on `port`, in order.
fn answer(n: &mut Net, port: PortId, f: &[u8]) -> Vec<(PortId, Vec<u8>)> {
    answer_one(n, port, f).unwrap_or_default()
}

fn answer_one(n: &mut Net, port: PortId, f: &[u8]) -> Option<Vec<(PortId, Vec<u8>)>> {
    let c = wire::classify(f).ok()?;
    if port == WAN && c.l3 == net::L3Kind::Ipv6 && c.icmp_type_code.is_some_and(|(t, _)| t == 135) {
        // The outside router answers the dataplane's neighbour solicitation.
        let l3 = usize::from(c.l3_offset);
        let from = wire::ipv6_at(f, l3 + 8)?;
        let na = wire::ndp_advert(ROUTER_MAC, ROUTER6, WAN_MAC, from, true);
        return Some(vec![(WAN, na)]);
    }
    let t = c.tuple?;
    if let (std::net::IpAddr::V6(src), std::net::IpAddr::V6(dst)) = (t.src, t.dst) {
        // IPv6 (tracked, not translated): the remote answers UDP.
        if port != WAN || t.proto != PROTO_UDP {
            return None;
        }
        let r = traffic::ipv6(
            ROUTER_MAC,
            WAN_MAC,
            dst,
            src,
            60,
            PROTO_UDP,
            &traffic::udp_dgram(t.dst_port, t.src_port, b"answer6"),
        );
        return Some(vec![(WAN, r)]);
    }
    let (std::net::IpAddr::V4(src), std::net::IpAddr::V4(dst)) = (t.src, t.dst) else {
        return None;
    };
    let l4 = usize::from(c.l4_offset);
    if port == WAN && POOLS.contains(&src) {
        if t.proto == PROTO_UDP {
            n.seen.push((src, t.src_port));
        }
        let r = n.rng.below(8);
        if r == 0 {
            // A router on the way: port unreachable about it.
            let l3 = usize::from(c.l3_offset);
            let e = wire::icmpv4_error(
                ROUTER_MAC,
                WAN_MAC,
                ROUTER,
                f,
                l3,
                usize::from(c.l3_end),
                3,
                3,
            )?;
            return Some(vec![(WAN, e)]);
        }
        if r == 1 && n.seen.len() > 1 {
            // Some inside host hairpins to an endpoint seen earlier.
            let (e, p) = n.seen[n.rng.below(n.seen.len() as u64) as usize];
            let host = Ipv4Addr::new(192, 168, 1, 10 + n.rng.below(40) as u8);
            let h = traffic::ipv4(
                HOST_MAC,
                LAN_MAC,
                host,
                e,
                64,
                9,
                PROTO_UDP,
                &traffic::udp_dgram(7777, p, b"hairpin"),
            );
            n.script.push_front((LAN, h));
        }
        if t.proto == PROTO_UDP && (r == 2 || r == 3) {
            // A large answer, fragmented; now and then out of order.
            let big = traffic::ipv4(
                ROUTER_MAC,
                WAN_MAC,
                dst,
                src,
                60,
                0x4242,
                PROTO_UDP,
                &traffic::udp_dgram(t.dst_port, t.src_port, &[r as u8; 1000]),
            );
            let mut frags = fragment(&big, 420);
            if r == 3 {
                frags.reverse();
            }
            return Some(frags.into_iter().map(|x| (WAN, x)).collect());
        }
        let payload = match t.proto {
            PROTO_TCP => {
                let flags = f.get(l4 + 13).copied().unwrap_or(0);
                if flags & tcp::SYN == 0 || flags & tcp::ACK != 0 {
                    return None;
                }
                traffic::tcp_seg(t.dst_port, t.src_port, 100, 2, tcp::SYN | tcp::ACK, &[])
            }
            PROTO_UDP => traffic::udp_dgram(t.dst_port, t.src_port, b"answer"),
            PROTO_ICMP if c.icmp_type_code == Some((8, 0)) => {
                traffic::icmp_echo(0, t.src_port, 1, b"pong")
            }
            _ => return None,
        };
        let r = traffic::ipv4(ROUTER_MAC, WAN_MAC, dst, src, 60, 7, t.proto, &payload);
        return Some(vec![(WAN, r)]);
    }
    if port == LAN && dst == SERVER && t.proto == PROTO_TCP {
        // The web server behind the forward answers SYNs.
        let flags = f.get(l4 + 13).copied().unwrap_or(0);
        if flags & tcp::SYN != 0 && flags & tcp::ACK == 0 {
            let seg = traffic::tcp_seg(t.dst_port, t.src_port, 5, 2, tcp::SYN | tcp::ACK, &[]);
            return Some(vec![(
                LAN,
                traffic::ipv4(SERVER_MAC, LAN_MAC, SERVER, src, 64, 8, PROTO_TCP, &seg),
            )]);
        }
    }
    None
}

/// Inside IPv6 host `h`.
fn host6(h: u16) -> std::net::Ipv6Addr {
    std::net::Ipv6Addr::new(0xfd00, 1, 0, 0, 0, 0, 0, 0x100 + h)
}

/// The scripted part: ARP from every host, then `n` frames from inside
/// hosts (UDP, TCP SYN, echo; source ports crowded into few blocks so
/// workers compete for them) and outside clients of the port forward.
fn script(seed: u64, n: usize) -> VecDeque<(PortId, Vec<u8>)> {
    let mut rng = Rng::new(seed);
    let mut s = VecDeque::new();
    for h in 0..40u8 {
        let ip = Ipv4Addr::new(192, 168, 1, 10 + h);
        let mut mac = HOST_MAC;
        mac[5] = h;
        s.push_back((LAN, wire::arp_request(mac, ip, GW)));
    }
    s.push_back((LAN, wire::arp_request(SERVER_MAC, SERVER, GW)));
    // IPv6 hosts make themselves known (an NS for the gateway).
    for h in 0..10u16 {
        let mut mac = HOST_MAC;
        mac[4] = 0x60;
        mac[5] = h as u8;
        s.push_back((LAN, wire::ndp_solicit(mac, host6(h), GW6)));
    }
    for i in 0..n {
        let host = Ipv4Addr::new(192, 168, 1, 10 + rng.below(40) as u8);
        let sport = 40000 + rng.below(300) as u16;
        let remote = Ipv4Addr::new(198, 51, 100, 1 + rng.below(5) as u8);
        let f = match rng.below(8) {
            7 => {
                let h = rng.below(10) as u16;
                let mut mac = HOST_MAC;
                mac[4] = 0x60;
                mac[5] = h as u8;
                traffic::ipv6(
                    mac,
                    LAN_MAC,
                    host6(h),
                    REMOTE6,
                    64,
                    PROTO_UDP,
                    &traffic::udp_dgram(sport, 53, b"q6"),
                )
            }
            6 => {
                // A large datagram out, fragmented.
                let big = traffic::ipv4(
                    HOST_MAC,
                    LAN_MAC,
                    host,
                    remote,
                    64,
                    i as u16,
                    PROTO_UDP,
                    &traffic::udp_dgram(sport, 4500, &[7; 900]),
                );
                for x in fragment(&big, 324) {
                    s.push_back((LAN, x));
                }
                continue;
            }
            0..=2 => traffic::ipv4(
                HOST_MAC,
                LAN_MAC,
                host,
                remote,
                64,
                i as u16,
                PROTO_UDP,
                &traffic::udp_dgram(sport, 53, b"q"),
            ),
            3 => traffic::ipv4(
                HOST_MAC,
                LAN_MAC,
                host,
                remote,
                64,
                i as u16,
                PROTO_TCP,
                &traffic::tcp_seg(sport, 443, 1, 0, tcp::SYN, &[]),
            ),
            4 => traffic::ipv4(
                HOST_MAC,
                LAN_MAC,
                host,
                remote,
                64,
                i as u16,
                PROTO_ICMP,
                &traffic::icmp_echo(8, sport, 1, b"ping"),
            ),
            _ => {
                let seg = traffic::tcp_seg(sport, 8080, 1, 0, tcp::SYN, &[]);
                s.push_back((
                    WAN,
                    traffic::ipv4(
                        ROUTER_MAC, WAN_MAC, remote, POOL1, 60, i as u16, PROTO_TCP, &seg,
                    ),
                ));
                continue;
            }
        };
        s.push_back((LAN, f));
    }
    s
}

/// Replay the closed loop with `workers` workers: the outputs by port and
/// the summed counters.
fn run(
    seed: u64,
    n: usize,
    workers: usize,
) -> (
    BTreeMap<PortId, Vec<Vec<u8>>>,
    dataplane::metrics::CounterSnapshot,
    u64,
) {
    run_vlan(seed, n, workers, None)
}

/// [`run`] with the LAN port on VLAN `lan_vlan`.
fn run_vlan(
    seed: u64,
    n: usize,
    workers: usize,
    lan_vlan: Option<u16>,
) -> (
    BTreeMap<PortId, Vec<Vec<u8>>>,
    dataplane::metrics::CounterSnapshot,
    u64,
) {
    let net = Rc::new(RefCell::new(Net {
        rng: Rng::new(seed ^ 0xa5a5),
        script: script(seed, n),
        answers: VecDeque::new(),
        out: BTreeMap::new(),
        t: 1_000_000_000,
        seen: Vec::new(),
        lan_vlan,
    }));
    let mut c = config();
    c.ports[usize::from(LAN)].vlan = lan_vlan;
    let shared = Shared::new(c, workers).unwrap();
    let mut pipelines: Vec<Pipeline> = (0..workers)
        .map(|w| Pipeline::new(Arc::clone(&shared), w))
        .collect();
    let mut feed = Loop(net.clone());
    let mut sink = Loop(net.clone());
    replay::drive_full(&mut pipelines, &mut feed, &mut sink, 1, None, None, |_| {}).unwrap();
    let snap = shared.counters.snapshot(&shared.port_names());
    {
        // No external endpoint is held by two workers' sessions.
        let nat = shared.nat.as_ref().unwrap();
        type Endpoint = (u8, Ipv4Addr, u16);
        let mut ext: BTreeMap<Endpoint, Vec<(usize, Ipv4Addr, u16)>> = BTreeMap::new();
        for w in 0..nat.workers() {
            for s in nat
                .lock(w)
                .sessions_scan(&nat::SessionFilter::default(), 1 << 20)
            {
                let v = ext
                    .entry((s.proto, s.external.0, s.external.1))
                    .or_default();
                if !v
                    .iter()
                    .any(|x| x.1 == s.inside.0 && x.2 == s.inside.1 && x.0 == w)
                {
                    v.push((w, s.inside.0, s.inside.1));
                }
            }
        }
        for (k, v) in ext {
            let owners: std::collections::BTreeSet<usize> = v.iter().map(|x| x.0).collect();
            assert_eq!(owners.len(), 1, "external {k:?} held by {v:?}");
        }
    }
    let sessions = shared.nat.as_ref().unwrap().summary().sessions_active;
    drop(pipelines);
    let out = std::mem::take(&mut net.borrow_mut().out);
    (out, snap, sessions)
}

/// `f` with the external ports (source or destination port / echo id on a
/// pool address) and the checksums over them set to zero.
fn blank_external(f: &[u8]) -> Vec<u8> {
    let mut f = f.to_vec();
    let Ok(c) = wire::classify(&f) else { return f };
    let Some(t) = c.tuple else { return f };
    let (l3, l4) = (usize::from(c.l3_offset), usize::from(c.l4_offset));
    if c.l3 != net::L3Kind::Ipv4 || f.len() < l4 + 8 {
        return f;
    }
    let pool = |a: std::net::IpAddr| matches!(a, std::net::IpAddr::V4(v) if POOLS.contains(&v));
    let (s, d) = (pool(t.src), pool(t.dst));
    if !s && !d {
        return f;
    }
    let _ = l3;
    match t.proto {
        PROTO_UDP | PROTO_TCP => {
            if s {
                f[l4..l4 + 2].fill(0);
            }
            if d {
                f[l4 + 2..l4 + 4].fill(0);
            }
            let ck = if t.proto == PROTO_UDP {
                l4 + 6
            } else {
                l4 + 16
            };
            if let Some(x) = f.get_mut(ck..ck + 2) {
                x.fill(0);
            }
        }
        PROTO_ICMP => {
            f[l4 + 2..l4 + 4].fill(0);
            f[l4 + 4..l4 + 6].fill(0);
        }
        _ => {}
    }
    f
}

fn blanked(out: &BTreeMap<PortId, Vec<Vec<u8>>>) -> BTreeMap<PortId, Vec<Vec<u8>>> {
    out.iter()
        .map(|(p, v)| (*p, v.iter().map(|f| blank_external(f)).collect()))
        .collect()
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    /// One worker and three give the same frames per port (in input
    /// order: one-frame bursts), the same counters (received frames split
    /// differently is not visible: sums) and the same sessions.
    #[test]
    fn three_workers_give_the_one_worker_frames(seed in any::<u64>()) {
        let (one, c1, s1) = run(seed, 400, 1);
        let (three, c3, s3) = run(seed, 400, 3);
        prop_assert!(c3.handed_off > 0, "no frame was handed off: the test does not test it");
        prop_assert_eq!(c3.handed_off, c3.handed_in);
        prop_assert_eq!(c1.handed_off, 0);
        let (b1, b3) = (blanked(&one), blanked(&three));
        for (p, v) in &b1 {
            let w = b3.get(p).cloned().unwrap_or_default();
            prop_assert_eq!(v.len(), w.len(), "frames on port {}", p);
            for (i, (x, y)) in v.iter().zip(&w).enumerate() {
                prop_assert_eq!(x, y, "port {} frame {}", p, i);
            }
        }
        prop_assert_eq!(&c1.rx, &c3.rx);
        prop_assert_eq!(&c1.tx, &c3.tx);
        prop_assert_eq!(&c1.drops, &c3.drops);
        prop_assert_eq!(s1, s3);
    }
}

#[test]
fn the_loop_exercises_hairpins_errors_and_forwards() {
    let (out, c, _) = run(7, 600, 3);
    let lan = &out[&LAN];
    let hairpinned = lan
        .iter()
        .filter(|f| {
            wire::classify(f)
                .ok()
                .and_then(|c| c.tuple)
                .is_some_and(|t| matches!(t.src, std::net::IpAddr::V4(a) if POOLS.contains(&a)))
        })
        .count();
    let errors = lan
        .iter()
        .filter(|f| wire::classify(f).is_ok_and(|c| c.icmp_type_code == Some((3, 3))))
        .count();
    let forwarded = lan
        .iter()
        .filter(|f| {
            wire::classify(f)
                .ok()
                .and_then(|c| c.tuple)
                .is_some_and(|t| t.dst == std::net::IpAddr::V4(SERVER))
        })
        .count();
    let v6_in = lan
        .iter()
        .filter(|f| {
            wire::classify(f).is_ok_and(|c| {
                c.l3 == net::L3Kind::Ipv6 && c.tuple.is_some_and(|t| t.proto == PROTO_UDP)
            })
        })
        .count();
    let v6_out = out[&WAN]
        .iter()
        .filter(|f| wire::classify(f).is_ok_and(|c| c.l3 == net::L3Kind::Ipv6))
        .count();
    assert!(
        v6_in > 0,
        "IPv6 answers reach the inside hosts: {v6_out} out, {c:?}"
    );
    let fragments = |o: &Vec<Vec<u8>>| {
        o.iter()
            .filter(|f| wire::classify(f).is_ok_and(|c| c.frag.is_some()))
            .count()
    };
    let (frag_in, frag_out) = (fragments(lan), fragments(&out[&WAN]));
    assert!(
        hairpinned > 0 && errors > 0 && forwarded > 0 && frag_in > 0 && frag_out > 0,
        "hairpins {hairpinned}, errors {errors}, forwards {forwarded}, fragments in {frag_in} out {frag_out}"
    );
    assert!(c.handed_off > 0);
}

/// The loop with the LAN port on a VLAN: every frame into the LAN is tagged,
/// every frame out of it (forwarded, hairpinned across workers, ICMP errors,
/// fragments, ARP) must carry the tag (`Loop::write` asserts it), the WAN
/// none; and after removing the tags, one and three workers send exactly
/// what the untagged loop sends.
#[test]
fn a_vlan_lan_port_tags_every_frame_and_changes_nothing_else() {
    let (plain, cp, sp) = run(11, 300, 1);
    let (one, c1, s1) = run_vlan(11, 300, 1, Some(42));
    let (three, c3, s3) = run_vlan(11, 300, 3, Some(42));
    assert!(c3.handed_off > 0, "no frame was handed off");
    assert_eq!(one, plain);
    assert_eq!(blanked(&three), blanked(&one));
    assert_eq!((&c1.tx, &c1.drops), (&cp.tx, &cp.drops));
    assert_eq!((&c3.tx, &c3.drops), (&c1.tx, &c1.drops));
    assert_eq!((s1, s3), (sp, sp));
}
