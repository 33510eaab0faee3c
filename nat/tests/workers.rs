//! Several workers, each with its own `Nat`, one shared port-block map:
//! frames dispatched by `PortBlocks::owner_of` reach the worker that owns
//! their session from either direction; no external port is owned twice;
//! a hairpin across workers gives the one-worker result; idle blocks go
//! back to the pool after the hold-down.

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use common::*;
use nat::blocks::{BlockOwner, PortBlocks};
use nat::{Nat, NatConfig, Side, Timestamp, Verdict};

fn workers(cfg: &NatConfig, n: usize) -> (Arc<PortBlocks>, Vec<Nat>) {
    let map = Arc::new(PortBlocks::new(cfg, n));
    let nats = (0..n)
        .map(|w| {
            Nat::for_worker(
                cfg.clone(),
                nat::FlowTableConfig {
                    capacity: 1 << 14,
                    ..Default::default()
                },
                map.clone(),
                w,
            )
            .unwrap()
        })
        .collect();
    (map, nats)
}

/// Dispatch `f` as the dataplane does (`owner_of`, the receiver — worker
/// 0 here — when no one owns it) and run it at the owner, following a
/// hairpin hand-off. Returns the verdict and the worker that decided.
fn dispatch(
    map: &PortBlocks,
    nats: &mut [Nat],
    f: &mut [u8],
    side: Side,
    now: Timestamp,
) -> (Verdict, usize) {
    let c = classify(f);
    let w = map.owner_of(f, &c, side == Side::Inside).unwrap_or(0);
    match nats[w].process(f, &c, side, now) {
        Verdict::HandOff(o) => {
            let o = usize::from(o);
            assert_ne!(o, w, "a hand-off goes to another worker");
            let c = classify(f);
            (nats[o].process_hairpin(f, &c, now), o)
        }
        v => (v, w),
    }
}

#[test]
fn both_directions_reach_the_owner_and_no_port_is_owned_twice() {
    let cfg = base_config();
    let (map, mut nats) = workers(&cfg, 3);
    let mut ext = HashSet::new();
    let mut used = [0usize; 3];
    for h in 0..60u32 {
        let host = format!("10.0.{}.{}", h / 200, 1 + h % 200);
        for k in 0..20u16 {
            let sport = 40000 + (h as u16 % 7) * 64 + k;
            let mut f = udp(&host, sport, "198.51.100.9", 53, b"q");
            let (v, w) = dispatch(&map, &mut nats, &mut f, Side::Inside, secs(1));
            assert_eq!(v, Verdict::Forward);
            used[w] += 1;
            let (_, ep, _, _) = addrs(&f);
            let (e, _, _, _) = addrs(&f);
            assert!(ext.insert((e, ep)), "external {e}:{ep} handed out twice");
            assert_eq!(
                map.owner(17, e, ep),
                BlockOwner::Worker(w),
                "port from an owned block"
            );
            // The reply dispatches to the same worker and translates back.
            let mut r = udp("198.51.100.9", 53, &e.to_string(), ep, b"a");
            let (v, rw) = dispatch(&map, &mut nats, &mut r, Side::Outside, secs(2));
            assert_eq!((v, rw), (Verdict::Forward, w));
            assert_eq!(addrs(&r).2, ip(&host));
            assert_eq!(addrs(&r).3, sport);
        }
    }
    assert!(
        used.iter().all(|&n| n > 0),
        "hosts spread over the workers: {used:?}"
    );
    let per: Vec<u64> = nats.iter().map(|n| n.stats().sessions_active).collect();
    assert_eq!(per.iter().sum::<u64>(), 1200);
    // Unowned ports: no worker owns them, no session matches.
    let mut stray = udp("198.51.100.9", 53, "203.0.113.3", 7, b"x");
    let c = classify(&stray);
    assert_eq!(map.owner_of(&stray, &c, false), None);
    assert_eq!(
        dispatch(&map, &mut nats, &mut stray, Side::Outside, secs(2)).0,
        Verdict::Drop(nat::DropReason::NoSession)
    );
}

#[test]
fn icmp_errors_dispatch_by_the_quoted_packet() {
    let cfg = base_config();
    let (map, mut nats) = workers(&cfg, 4);
    let mut f = udp("10.0.0.77", 5555, "198.51.100.9", 53, b"q");
    let (_, w) = dispatch(&map, &mut nats, &mut f, Side::Inside, secs(1));
    // A router on the way answers the translated packet.
    let (e, ep, _, _) = addrs(&f);
    let mut err = icmp_error(
        "192.0.2.1",
        &e.to_string(),
        etherparse::Icmpv4Type::TimeExceeded(
            etherparse::icmpv4::TimeExceededCode::TtlExceededInTransit,
        ),
        &f,
        28,
    );
    let c = classify(&err);
    assert_eq!(map.owner_of(&err, &c, false), Some(w));
    let (v, dw) = dispatch(&map, &mut nats, &mut err, Side::Outside, secs(2));
    assert_eq!((v, dw), (Verdict::Forward, w));
    assert_eq!(addrs(&err).2, ip("10.0.0.77"));
    let _ = ep;
}

#[test]
fn hairpin_across_workers_gives_the_one_worker_result() {
    let mut cfg = base_config();
    cfg.filtering = nat::FilteringBehavior::EndpointIndependent;
    // Two inside hosts on different workers.
    let (map, mut nats) = workers(&cfg, 2);
    let hosts: Vec<String> = (1..50).map(|i| format!("10.1.0.{i}")).collect();
    let a = hosts
        .iter()
        .find(|h| map.host_owner(ip(h)) == 0)
        .unwrap()
        .clone();
    let b = hosts
        .iter()
        .find(|h| map.host_owner(ip(h)) == 1)
        .unwrap()
        .clone();
    // B opens a mapping (to anywhere): EIM, so A can reach it.
    let mut f = udp(&b, 7000, "198.51.100.1", 9, b"open");
    dispatch(&map, &mut nats, &mut f, Side::Inside, secs(1));
    let (be, bp, _, _) = addrs(&f);
    // A sends to B's external endpoint: translated at A's worker, then
    // handed to B's.
    let mut h = udp(&a, 6000, &be.to_string(), bp, b"hi");
    let (v, w) = dispatch(&map, &mut nats, &mut h, Side::Inside, secs(2));
    assert_eq!((v, w), (Verdict::Forward, 1));
    let (s, sp, d, dp) = addrs(&h);
    assert_eq!((d, dp), (ip(&b), 7000), "delivered to B");
    assert_eq!(
        map.owner(17, s, sp),
        BlockOwner::Worker(0),
        "from A's external endpoint"
    );
    verify_checksums(&h);
    // Same frame through one NAT: the same source and destination.
    let mut one = nat(cfg.clone());
    let mut f1 = udp(&b, 7000, "198.51.100.1", 9, b"open");
    run(&mut one, &mut f1, Side::Inside, secs(1));
    let (be1, bp1, _, _) = addrs(&f1);
    let mut h1 = udp(&a, 6000, &be1.to_string(), bp1, b"hi");
    assert_eq!(
        run(&mut one, &mut h1, Side::Inside, secs(2)),
        Verdict::Forward
    );
    assert_eq!(addrs(&h1).2, ip(&b));
    assert_eq!(addrs(&h1).3, 7000);
    // B's answer goes back to A the same way.
    let mut back = udp(&b, 7000, &s.to_string(), sp, b"yo");
    let (v, w) = dispatch(&map, &mut nats, &mut back, Side::Inside, secs(3));
    assert_eq!((v, w), (Verdict::Forward, 0));
    assert_eq!(addrs(&back).2, ip(&a));
    assert_eq!(addrs(&back).3, 6000);
    assert_eq!(nats[0].stats().hairpinned + nats[1].stats().hairpinned, 2);
}

#[test]
fn port_forwards_belong_to_the_rule_host_owner() {
    let mut cfg = base_config();
    cfg.port_forwards.push(nat::PortForward {
        protocol: nat::ForwardProtocol::Tcp,
        external: ip("203.0.113.1"),
        external_ports: nat::PortRange::new(8080, 8080),
        inside: ip("10.9.9.9"),
        inside_ports: nat::PortRange::new(80, 80),
        allowed_sources: None,
    });
    let (map, mut nats) = workers(&cfg, 3);
    let owner = map.host_owner(ip("10.9.9.9"));
    assert_eq!(map.owner(6, ip("203.0.113.1"), 8080), BlockOwner::Forwards);
    let mut syn = tcp("198.51.100.7", 1234, "203.0.113.1", 8080, SYN);
    let (v, w) = dispatch(&map, &mut nats, &mut syn, Side::Outside, secs(1));
    assert_eq!((v, w), (Verdict::Forward, owner));
    let mut ans = tcp("10.9.9.9", 80, "198.51.100.7", 1234, SYN | ACK);
    let (v, w) = dispatch(&map, &mut nats, &mut ans, Side::Inside, secs(1));
    assert_eq!((v, w), (Verdict::Forward, owner));
    assert_eq!(addrs(&ans).0, ip("203.0.113.1"));
    assert_eq!(addrs(&ans).1, 8080);
}

#[test]
fn idle_blocks_return_after_the_hold_down() {
    let mut cfg = base_config();
    cfg.port_block_hold_down = 30;
    cfg.timeouts.udp = 120;
    let (map, mut nats) = workers(&cfg, 2);
    let host = (1..50)
        .map(|i| format!("10.2.0.{i}"))
        .find(|h| map.host_owner(ip(h)) == 1)
        .unwrap();
    let mut f = udp(&host, 40001, "198.51.100.9", 53, b"q");
    dispatch(&map, &mut nats, &mut f, Side::Inside, secs(1));
    let (e, p, _, _) = addrs(&f);
    assert_eq!(p, 40001, "preserved: the block was free");
    assert_eq!(map.owner(17, e, p), BlockOwner::Worker(1));
    assert_eq!(map.stats().owned, 1);
    // The session expires at 121 s; the block stays with worker 1 for the
    // hold-down (until 151 s), then goes back.
    for t in 100..=123 {
        nats[1].poll(secs(t), 1000);
    }
    assert_eq!(nats[1].stats().sessions_active, 0);
    nats[1].poll(secs(150), 1000);
    assert_eq!(map.owner(17, e, p), BlockOwner::Worker(1), "held down");
    nats[1].poll(secs(153), 1000);
    assert_eq!(map.owner(17, e, p), BlockOwner::Free, "given back");
    assert_eq!(
        map.stats(),
        nat::blocks::BlockStats {
            owned: 0,
            claimed: 1,
            released: 1
        }
    );
    // Now worker 0's host can preserve that port.
    let other = (1..50)
        .map(|i| format!("10.3.0.{i}"))
        .find(|h| map.host_owner(ip(h)) == 0 && nats[0].config().seed != 0)
        .unwrap();
    let mut g = udp(&other, 40001, "198.51.100.9", 53, b"q");
    let (_, w) = dispatch(&map, &mut nats, &mut g, Side::Inside, secs(160));
    assert_eq!(w, 0);
    let (e2, p2, _, _) = addrs(&g);
    assert_eq!(map.owner(17, e2, p2), BlockOwner::Worker(0));
    assert_eq!(p2, 40001);
}

mod model {
    use super::*;
    use nat::Allocator;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[derive(Debug, Clone)]
    enum Op {
        Alloc { host: u8, sport: u16 },
        Release(usize),
        Advance,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..12, prop_oneof![1000u16..1100, 2000u16..2300])
                .prop_map(|(host, sport)| Op::Alloc { host, sport }),
            3 => any::<usize>().prop_map(Op::Release),
            1 => Just(Op::Advance),
        ]
    }

    proptest! {
        /// Three workers' allocators on one block map: no (protocol,
        /// address, port) is live twice, every live port is in a block its
        /// worker owns, quota stays exact per host, and once everything is
        /// released and the hold-down has passed every block is free again.
        #[test]
        fn workers_never_share_a_port(ops in proptest::collection::vec(op(), 1..400)) {
            let mut c = base_config();
            c.pools[0].addresses = vec!["203.0.113.0/31".parse().unwrap()];
            c.pools[0].ports = nat::PortRange::new(2000, 2300);
            c.pools[0].low_ports = Some(nat::PortRange::new(1000, 1100));
            c.per_host_port_quota = 9;
            c.port_block_hold_down = 2;
            let map = Arc::new(PortBlocks::new(&c, 3));
            let mut a: Vec<Allocator> =
                (0..3).map(|w| Allocator::for_worker(&c, map.clone(), w)).collect();
            let mut live: Vec<(usize, std::net::Ipv4Addr, std::net::Ipv4Addr, u16)> = Vec::new();
            let mut now = 0u64;
            for o in ops {
                match o {
                    Op::Alloc { host, sport } => {
                        let h = std::net::Ipv4Addr::new(10, 0, 0, host);
                        let held = live.iter().filter(|l| l.1 == h).count();
                        // A host only ever allocates at its owner.
                        let w = map.host_owner(h);
                        match a[w].allocate(17, h, sport, now) {
                            Ok((e, p, _)) => {
                                prop_assert!(held < 9, "quota");
                                prop_assert!(!live.iter().any(|l| l.2 == e && l.3 == p), "{e}:{p} twice");
                                prop_assert_eq!(map.owner(17, e, p), BlockOwner::Worker(w));
                                if sport < 1024 { prop_assert!((1000..=1100).contains(&p)); } else { prop_assert!((2000..=2300).contains(&p)); }
                                live.push((w, h, e, p));
                            }
                            Err(nat::AllocError::QuotaExceeded) => prop_assert_eq!(held, 9),
                            Err(e) => prop_assert_eq!(e, nat::AllocError::Exhausted),
                        }
                    }
                    Op::Release(i) if !live.is_empty() => {
                        let (w, h, e, p) = live.swap_remove(i % live.len());
                        a[w].release(17, h, e, p, now);
                    }
                    Op::Release(_) => {}
                    Op::Advance => {
                        now += 1_000_000_000;
                        for x in &mut a { x.expire_holds(now); }
                    }
                }
                let mut per: HashMap<std::net::Ipv4Addr, u32> = HashMap::new();
                for l in &live { *per.entry(l.1).or_default() += 1; }
                for (h, n) in per {
                    prop_assert_eq!(a[map.host_owner(h)].host_ports(h), n);
                }
            }
            for (w, h, e, p) in live.drain(..) {
                a[w].release(17, h, e, p, now);
            }
            now += 3_000_000_000;
            for x in &mut a { x.expire_holds(now); }
            prop_assert_eq!(map.stats().owned, 0, "every block given back: {:?}", map.stats());
            for x in &a { prop_assert_eq!(x.stats().double_free, 0); }
        }
    }
}
