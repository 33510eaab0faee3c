//! Pipeline stages without NAT: local delivery (ARP, ICMP echo, NDP), L3
//! forwarding (TTL, ICMP time exceeded, routes, MAC rewrite), neighbour
//! resolution with the bounded hold queue, IPv6 stateful forwarding, drops.

mod common;

use common::*;
use core::net::IpAddr;
use dataplane::pipeline::{Disposition, DropReason, single};
use dataplane::traffic::{self, tcp};
use dataplane::wire::{self, PROTO_ICMP, PROTO_ICMPV6, PROTO_UDP};

fn drops(p: &dataplane::Pipeline, r: DropReason) -> u64 {
    let s = p.shared().counters.snapshot(&p.shared().port_names());
    s.drops.get(r.name()).copied().unwrap_or(0)
}

#[test]
fn arp_request_for_own_address_is_answered_in_place() {
    let mut p = single(router_config()).unwrap();
    let (d, f, gen_) = one(&mut p, LAN, wire::arp_request(HOST_MAC, HOST, GW), ts(1.0));
    assert_eq!(d, Disposition::Tx(LAN));
    assert!(gen_.is_empty());
    assert_eq!(&f[0..6], &HOST_MAC, "reply goes back to the asker");
    assert_eq!(&f[6..12], &LAN_MAC);
    assert_eq!(wire::be16(&f, 20), Some(2), "ARP op = reply");
    assert_eq!(&f[22..28], &LAN_MAC, "sender MAC = ours");
    assert_eq!(wire::ipv4_at(&f, 28), Some(GW));
    assert_eq!(&f[32..38], &HOST_MAC);
    assert_eq!(wire::ipv4_at(&f, 38), Some(HOST));
}

#[test]
fn arp_for_someone_else_is_a_counted_drop() {
    let mut p = single(router_config()).unwrap();
    let (d, _, _) = one(
        &mut p,
        LAN,
        wire::arp_request(HOST_MAC, HOST, HOST2),
        ts(1.0),
    );
    assert_eq!(d, Disposition::Drop(DropReason::ArpNotForUs));
    assert_eq!(drops(&p, DropReason::ArpNotForUs), 1);
}

#[test]
fn nat_pool_addresses_are_answered_on_the_outside_port_only() {
    let mut p = single(nat_config()).unwrap();
    let (d, f, _) = one(
        &mut p,
        WAN,
        wire::arp_request(ROUTER_MAC, ROUTER, POOL1),
        ts(1.0),
    );
    assert_eq!(d, Disposition::Tx(WAN));
    assert_eq!(&f[22..28], &WAN_MAC);
    let (d, _, _) = one(
        &mut p,
        LAN,
        wire::arp_request(HOST_MAC, HOST, POOL1),
        ts(1.0),
    );
    assert_eq!(d, Disposition::Drop(DropReason::ArpNotForUs));
}

#[test]
fn icmp_echo_to_own_address_is_answered() {
    let mut p = single(router_config()).unwrap();
    let e = traffic::icmp_echo(8, 77, 3, b"abcdefgh");
    let req = traffic::ipv4(HOST_MAC, LAN_MAC, HOST, GW, 64, 1, PROTO_ICMP, &e);
    let (d, f, _) = one(&mut p, LAN, req, ts(1.0));
    assert_eq!(d, Disposition::Tx(LAN));
    let v = view(&f);
    assert_eq!((v.src, v.dst), (IpAddr::V4(GW), IpAddr::V4(HOST)));
    assert_eq!(v.icmp, Some((0, 0)));
    assert_eq!((v.sport, v.dport), (77, 77));
    assert_eq!(v.dst_mac, HOST_MAC);
    assert!(traffic::checksums_ok(&f));
}

#[test]
fn forwarding_decrements_ttl_rewrites_macs_and_keeps_checksums_valid() {
    let mut p = single(router_config()).unwrap();
    let d = traffic::udp_dgram(5000, 53, b"q");
    let f = traffic::ipv4(HOST_MAC, LAN_MAC, HOST, REMOTE, 64, 9, PROTO_UDP, &d);
    let (disp, out, _) = one(&mut p, LAN, f, ts(1.0));
    assert_eq!(disp, Disposition::Tx(WAN));
    let v = view(&out);
    assert_eq!(v.ttl, 63);
    assert_eq!(v.src_mac, WAN_MAC);
    assert_eq!(
        v.dst_mac, ROUTER_MAC,
        "static neighbour for the default route's next hop"
    );
    assert_eq!((v.src, v.dst), (IpAddr::V4(HOST), IpAddr::V4(REMOTE)));
    assert!(traffic::checksums_ok(&out));
}

#[test]
fn ttl_expiry_is_answered_with_time_exceeded() {
    let mut p = single(router_config()).unwrap();
    let d = traffic::udp_dgram(33000, 33434, b"traceroute payload");
    let f = traffic::ipv4(HOST_MAC, LAN_MAC, HOST, REMOTE, 1, 42, PROTO_UDP, &d);
    let (disp, _, gen_) = one(&mut p, LAN, f.clone(), ts(1.0));
    assert_eq!(disp, Disposition::Drop(DropReason::TtlExceeded));
    assert_eq!(gen_.len(), 1);
    let (port, e) = &gen_[0];
    assert_eq!(*port, LAN);
    let v = view(e);
    assert_eq!(v.icmp, Some((11, 0)));
    assert_eq!((v.src, v.dst), (IpAddr::V4(GW), IpAddr::V4(HOST)));
    assert_eq!(v.dst_mac, HOST_MAC);
    assert!(traffic::checksums_ok(e));
    // The quote is the original IP header + 8 bytes.
    assert_eq!(&e[42..42 + 28], &f[14..14 + 28]);
    assert_eq!(drops(&p, DropReason::TtlExceeded), 1);
}

#[test]
fn no_time_exceeded_about_an_icmp_error() {
    let mut p = single(router_config()).unwrap();
    let inner = traffic::ipv4(
        HOST_MAC,
        LAN_MAC,
        REMOTE,
        HOST,
        5,
        1,
        PROTO_UDP,
        &traffic::udp_dgram(1, 2, b""),
    );
    let mut body = vec![3, 1, 0, 0, 0, 0, 0, 0];
    body.extend_from_slice(&inner[14..14 + 28]);
    let f = traffic::ipv4(HOST_MAC, LAN_MAC, HOST, REMOTE, 1, 2, PROTO_ICMP, &body);
    let (disp, _, gen_) = one(&mut p, LAN, f, ts(1.0));
    assert_eq!(disp, Disposition::Drop(DropReason::TtlExceeded));
    assert!(gen_.is_empty(), "RFC 1812 4.3.2.7: no error about an error");
}

#[test]
fn unresolved_next_hop_holds_frames_asks_and_releases_them() {
    let mut p = single(router_config()).unwrap();
    // Inside host never seen: the first frame towards it is held.
    let d = traffic::udp_dgram(53, 5000, b"answer");
    let f = traffic::ipv4(ROUTER_MAC, WAN_MAC, REMOTE, HOST2, 60, 1, PROTO_UDP, &d);
    let (disp, _, gen_) = one(&mut p, WAN, f.clone(), ts(1.0));
    assert_eq!(disp, Disposition::Consumed);
    assert_eq!(gen_.len(), 1, "one ARP request");
    let (port, req) = &gen_[0];
    assert_eq!(*port, LAN);
    assert_eq!(&req[0..6], &[0xff; 6]);
    assert_eq!(wire::be16(req, 20), Some(1));
    assert_eq!(wire::ipv4_at(req, 38), Some(HOST2));
    assert_eq!(wire::ipv4_at(req, 28), Some(GW));
    // A second frame is held without a second request.
    let (disp, _, gen_) = one(&mut p, WAN, f.clone(), ts(1.1));
    assert_eq!(disp, Disposition::Consumed);
    assert!(gen_.is_empty());
    // The reply releases both, MACs filled.
    let (disp, _, gen_) = one(
        &mut p,
        LAN,
        wire::arp_reply(HOST2_MAC, HOST2, LAN_MAC, GW),
        ts(1.2),
    );
    assert_eq!(disp, Disposition::Consumed);
    assert_eq!(gen_.len(), 2);
    for (port, g) in &gen_ {
        assert_eq!(*port, LAN);
        let v = view(g);
        assert_eq!((v.src_mac, v.dst_mac), (LAN_MAC, HOST2_MAC));
        assert_eq!(v.ttl, 59);
        assert!(traffic::checksums_ok(g));
    }
    // Now resolved: forwarded directly.
    let (disp, out, _) = one(&mut p, WAN, f, ts(1.3));
    assert_eq!(disp, Disposition::Tx(LAN));
    assert_eq!(view(&out).dst_mac, HOST2_MAC);
}

#[test]
fn hold_queue_is_bounded_and_times_out_with_counted_drops() {
    let cfg = router_config();
    let cap = cfg.neighbor.hold_queue;
    let hold_ms = cfg.neighbor.hold_timeout_ms;
    let mut p = single(cfg).unwrap();
    let d = traffic::udp_dgram(53, 5000, b"x");
    let f = traffic::ipv4(ROUTER_MAC, WAN_MAC, REMOTE, HOST2, 60, 1, PROTO_UDP, &d);
    for i in 0..cap {
        let (disp, _, _) = one(&mut p, WAN, f.clone(), ts(1.0 + i as f64 * 0.001));
        assert_eq!(disp, Disposition::Consumed);
    }
    let (disp, _, _) = one(&mut p, WAN, f.clone(), ts(1.5));
    assert_eq!(disp, Disposition::Drop(DropReason::NeighborQueueFull));
    // Just before the hold timeout nothing is dropped; at it, all are.
    p.poll_timers(ts(1.0 + hold_ms as f64 / 1000.0 - 0.01));
    assert_eq!(drops(&p, DropReason::NeighborUnresolved), 0);
    p.poll_timers(ts(1.0 + hold_ms as f64 / 1000.0 + 0.1));
    assert_eq!(drops(&p, DropReason::NeighborUnresolved), cap as u64);
    // Retries were sent while waiting (every retry_ms).
    let mut gen_ = Vec::new();
    p.take_generated(&mut gen_);
    assert!(!gen_.is_empty(), "ARP retries");
}

#[test]
fn frames_not_addressed_to_us_and_garbage_are_counted_drops() {
    let mut p = single(router_config()).unwrap();
    let d = traffic::udp_dgram(1, 2, b"");
    let f = traffic::ipv4(
        HOST_MAC,
        [0x02, 9, 9, 9, 9, 9],
        HOST,
        REMOTE,
        64,
        1,
        PROTO_UDP,
        &d,
    );
    assert_eq!(
        one(&mut p, LAN, f.clone(), ts(1.0)).0,
        Disposition::Drop(DropReason::NotForUs)
    );
    let mut t = traffic::ipv4(HOST_MAC, LAN_MAC, HOST, REMOTE, 64, 1, PROTO_UDP, &d);
    t.truncate(30);
    assert_eq!(
        one(&mut p, LAN, t, ts(1.0)).0,
        Disposition::Drop(DropReason::Malformed)
    );
    assert_eq!(
        one(&mut p, LAN, vec![1, 2, 3], ts(1.0)).0,
        Disposition::Drop(DropReason::Malformed)
    );
    let mut other = f;
    other[0..6].copy_from_slice(&LAN_MAC);
    other[12] = 0x88;
    other[13] = 0xcc;
    assert_eq!(
        one(&mut p, LAN, other, ts(1.0)).0,
        Disposition::Drop(DropReason::UnsupportedEthertype)
    );
    // A port index outside the config.
    assert_eq!(
        one(&mut p, 9, vec![0; 60], ts(1.0)).0,
        Disposition::Drop(DropReason::Malformed)
    );
    let s = p.shared().counters.snapshot(&p.shared().port_names());
    assert_eq!(s.drops.values().sum::<u64>(), 5);
}

#[test]
fn spoofed_own_source_is_martian() {
    let mut p = single(router_config()).unwrap();
    let d = traffic::udp_dgram(1, 2, b"");
    let f = traffic::ipv4(ROUTER_MAC, WAN_MAC, GW, HOST, 64, 1, PROTO_UDP, &d);
    assert_eq!(
        one(&mut p, WAN, f, ts(1.0)).0,
        Disposition::Drop(DropReason::Martian)
    );
}

fn ns_for(target: core::net::Ipv6Addr, from: core::net::Ipv6Addr, mac: wire::Mac) -> Vec<u8> {
    let mut b = vec![135, 0, 0, 0, 0, 0, 0, 0];
    b.extend_from_slice(&target.octets());
    b.extend_from_slice(&[1, 1]);
    b.extend_from_slice(&mac);
    let g = wire::solicited_node(target);
    traffic::ipv6(mac, wire::ipv6_mcast_mac(g), from, g, 255, PROTO_ICMPV6, &b)
}

#[test]
fn ipv6_neighbour_solicitation_for_own_address_is_answered() {
    let mut p = single(router_config()).unwrap();
    let (d, _, gen_) = one(&mut p, LAN, ns_for(GW6, HOST6, HOST_MAC), ts(1.0));
    assert_eq!(d, Disposition::Consumed);
    assert_eq!(gen_.len(), 1);
    let (port, na) = &gen_[0];
    assert_eq!(*port, LAN);
    let v = view(na);
    assert_eq!(v.icmp, Some((136, 0)));
    assert_eq!((v.src, v.dst), (IpAddr::V6(GW6), IpAddr::V6(HOST6)));
    assert_eq!(v.dst_mac, HOST_MAC);
    assert_eq!(v.ttl, 255);
    assert!(traffic::checksums_ok(na));
    assert_eq!(wire::ipv6_at(na, 62), Some(GW6), "target address");
    // Not ours: dropped.
    let (d, _, _) = one(&mut p, LAN, ns_for(REMOTE6, HOST6, HOST_MAC), ts(1.0));
    assert!(matches!(d, Disposition::Drop(_)));
}

#[test]
fn ipv6_echo_to_own_address_is_answered() {
    let mut p = single(router_config()).unwrap();
    let e = traffic::icmp_echo(128, 5, 1, b"v6");
    let f = traffic::ipv6(HOST_MAC, LAN_MAC, HOST6, GW6, 64, PROTO_ICMPV6, &e);
    let (d, out, _) = one(&mut p, LAN, f, ts(1.0));
    assert_eq!(d, Disposition::Tx(LAN));
    let v = view(&out);
    assert_eq!(v.icmp, Some((129, 0)));
    assert_eq!((v.src, v.dst), (IpAddr::V6(GW6), IpAddr::V6(HOST6)));
    assert!(traffic::checksums_ok(&out));
}

#[test]
fn ipv6_is_forwarded_statefully_and_flows_expire_at_their_deadline() {
    let cfg = router_config();
    let timeout = cfg.ipv6.flow_timeout_secs as f64;
    let mut p = single(cfg).unwrap();
    // Learn the host and the upstream router (an advert updates only an
    // entry that exists, RFC 4861 §7.2.5: a first frame towards it makes
    // one, and waits for the advert).
    one(&mut p, LAN, ns_for(GW6, HOST6, HOST_MAC), ts(0.5));
    let first = traffic::ipv6(
        HOST_MAC,
        LAN_MAC,
        HOST6,
        REMOTE6,
        64,
        PROTO_UDP,
        &traffic::udp_dgram(4444, 53, b"q"),
    );
    assert_eq!(one(&mut p, LAN, first, ts(0.55)).0, Disposition::Consumed);
    let mut na = vec![136, 0, 0, 0, 0x60, 0, 0, 0];
    na.extend_from_slice(&ROUTER6.octets());
    na.extend_from_slice(&[2, 1]);
    na.extend_from_slice(&ROUTER_MAC);
    let na = traffic::ipv6(
        ROUTER_MAC,
        WAN_MAC,
        ROUTER6,
        "2001:db8:2::2".parse().unwrap(),
        255,
        PROTO_ICMPV6,
        &na,
    );
    assert_eq!(one(&mut p, WAN, na, ts(0.6)).0, Disposition::Consumed);

    let out_f = traffic::ipv6(
        HOST_MAC,
        LAN_MAC,
        HOST6,
        REMOTE6,
        64,
        PROTO_UDP,
        &traffic::udp_dgram(5555, 53, b"q"),
    );
    let in_f = traffic::ipv6(
        ROUTER_MAC,
        WAN_MAC,
        REMOTE6,
        HOST6,
        60,
        PROTO_UDP,
        &traffic::udp_dgram(53, 5555, b"a"),
    );
    // Unsolicited first: dropped.
    assert_eq!(
        one(&mut p, WAN, in_f.clone(), ts(1.0)).0,
        Disposition::Drop(DropReason::UnsolicitedInbound)
    );
    let (d, o, _) = one(&mut p, LAN, out_f, ts(2.0));
    assert_eq!(d, Disposition::Tx(WAN));
    let v = view(&o);
    assert_eq!((v.ttl, v.dst_mac, v.src_mac), (63, ROUTER_MAC, WAN_MAC));
    assert!(traffic::checksums_ok(&o));
    // The reply passes until the flow's deadline (last packet + timeout).
    let (d, o, _) = one(&mut p, WAN, in_f.clone(), ts(2.0 + timeout - 1.0));
    assert_eq!(d, Disposition::Tx(LAN));
    assert_eq!(view(&o).dst_mac, HOST_MAC);
    // Inbound packets refresh too: deadline is now (2 + timeout - 1) + timeout.
    let deadline = 2.0 + 2.0 * timeout - 1.0;
    p.poll_timers(ts(deadline - 0.001));
    assert_eq!(
        p.shared().v6flows.stats().0,
        1,
        "still alive just before its deadline"
    );
    // Flow-table polls run once per wheel tick; the driver's flush runs them now.
    p.flush_timers(ts(deadline));
    assert_eq!(
        p.shared().v6flows.stats().0,
        0,
        "expired exactly at its deadline"
    );
    assert_eq!(
        one(&mut p, WAN, in_f, ts(deadline + 1.0)).0,
        Disposition::Drop(DropReason::UnsolicitedInbound)
    );
}

#[test]
fn no_route_is_a_counted_drop() {
    let mut cfg = router_config();
    cfg.routes.clear();
    let mut p = single(cfg).unwrap();
    let f = traffic::ipv4(
        HOST_MAC,
        LAN_MAC,
        HOST,
        REMOTE,
        64,
        1,
        PROTO_UDP,
        &traffic::udp_dgram(1, 2, b""),
    );
    assert_eq!(
        one(&mut p, LAN, f, ts(1.0)).0,
        Disposition::Drop(DropReason::NoRoute)
    );
}

#[test]
fn plain_router_forwards_tcp_both_ways() {
    let mut p = single(router_config()).unwrap();
    learn_hosts(&mut p, ts(0.1));
    let syn = traffic::ipv4(
        HOST_MAC,
        LAN_MAC,
        HOST,
        REMOTE,
        64,
        1,
        6,
        &traffic::tcp_seg(40000, 80, 1, 0, tcp::SYN, &[]),
    );
    assert_eq!(one(&mut p, LAN, syn, ts(1.0)).0, Disposition::Tx(WAN));
    let sa = traffic::ipv4(
        ROUTER_MAC,
        WAN_MAC,
        REMOTE,
        HOST,
        60,
        1,
        6,
        &traffic::tcp_seg(80, 40000, 9, 2, tcp::SYN | tcp::ACK, &[]),
    );
    let (d, o, _) = one(&mut p, WAN, sa, ts(1.1));
    assert_eq!(d, Disposition::Tx(LAN));
    assert_eq!(view(&o).dst_mac, HOST_MAC);
}

#[test]
fn ipv6_unresolved_next_hop_is_solicited_and_released_by_the_advert() {
    let mut p = single(router_config()).unwrap();
    one(&mut p, LAN, ns_for(GW6, HOST6, HOST_MAC), ts(0.5));
    let f = traffic::ipv6(
        HOST_MAC,
        LAN_MAC,
        HOST6,
        REMOTE6,
        64,
        PROTO_UDP,
        &traffic::udp_dgram(7, 53, b"q"),
    );
    let (d, _, gen_) = one(&mut p, LAN, f, ts(1.0));
    assert_eq!(d, Disposition::Consumed, "held until the router resolves");
    assert_eq!(gen_.len(), 1);
    let (port, ns) = &gen_[0];
    assert_eq!(*port, WAN);
    let v = view(ns);
    assert_eq!(v.icmp, Some((135, 0)));
    assert_eq!(v.dst, IpAddr::V6(wire::solicited_node(ROUTER6)));
    assert_eq!(
        wire::ipv6_at(ns, 62),
        Some(ROUTER6),
        "target = the next hop"
    );
    assert!(traffic::checksums_ok(ns));
    let mut na = vec![136, 0, 0, 0, 0x60, 0, 0, 0];
    na.extend_from_slice(&ROUTER6.octets());
    na.extend_from_slice(&[2, 1]);
    na.extend_from_slice(&ROUTER_MAC);
    let na = traffic::ipv6(
        ROUTER_MAC,
        WAN_MAC,
        ROUTER6,
        "2001:db8:2::2".parse().unwrap(),
        255,
        PROTO_ICMPV6,
        &na,
    );
    let (d, _, gen_) = one(&mut p, WAN, na, ts(1.02));
    assert_eq!(d, Disposition::Consumed);
    assert_eq!(gen_.len(), 1, "the held frame is released");
    let v = view(&gen_[0].1);
    assert_eq!((v.src_mac, v.dst_mac, v.ttl), (WAN_MAC, ROUTER_MAC, 63));
    assert_eq!(v.dst, IpAddr::V6(REMOTE6));
}
