//! Golden scenarios through the replay harness with NAT: captures are built
//! here, replayed with the documented example config, and the output frames
//! are decoded and checked. Where a reply must go to the address and port the
//! NAT chose, the scenario is replayed in two phases: phase 1 finds the
//! translation, phase 2 replays the same capture plus the replies (replay is
//! deterministic, so phase 2 translates identically).

mod common;

use common::*;
use core::net::{IpAddr, Ipv4Addr};
use dataplane::replay::{MemSink, Packet, Summary, replay_packets};
use dataplane::traffic::{self, tcp};
use dataplane::wire::{self, PROTO_ICMP, PROTO_TCP, PROTO_UDP};
use dataplane::{PortId, config::Config};

const S: u64 = 1_000_000_000;

fn pkt(t: f64, data: Vec<u8>) -> Packet {
    Packet {
        ts_ns: (t * 1e9) as u64,
        data,
    }
}

/// ARP requests from the inside hosts for the gateway, at t = 0.
fn arp_preamble() -> Vec<Packet> {
    [(HOST_MAC, HOST), (HOST2_MAC, HOST2), (SERVER_MAC, SERVER)]
        .iter()
        .enumerate()
        .map(|(i, (m, ip))| pkt(i as f64 * 0.001, wire::arp_request(*m, *ip, GW)))
        .collect()
}

fn replay(cfg: Config, lan: Vec<Packet>, wan: Vec<Packet>) -> (MemSink, Summary) {
    let mut sink = MemSink::default();
    let (s, _) = replay_packets(cfg, vec![(LAN, lan), (WAN, wan)], &mut sink).expect("replay");
    (sink, s)
}

fn out(sink: &MemSink, port: PortId) -> Vec<Packet> {
    sink.ports.get(&port).cloned().unwrap_or_default()
}

/// Output frames on `port` that are IPv4/IPv6 with a tuple (not ARP/NDP).
fn ip_out(sink: &MemSink, port: PortId) -> Vec<(u64, View, Vec<u8>)> {
    out(sink, port)
        .into_iter()
        .filter_map(|p| {
            let c = wire::classify(&p.data).ok()?;
            c.tuple?;
            if c.icmp_type_code.is_some_and(|(t, _)| t == 135 || t == 136) {
                return None;
            }
            Some((p.ts_ns, view(&p.data), p.data))
        })
        .collect()
}

fn v4(a: IpAddr) -> Ipv4Addr {
    match a {
        IpAddr::V4(a) => a,
        IpAddr::V6(_) => panic!("not IPv4"),
    }
}

fn is_pool(a: IpAddr) -> bool {
    a == IpAddr::V4(POOL1) || a == IpAddr::V4(POOL2)
}

#[test]
fn snat_tcp_udp_icmp_and_replies_translated_back() {
    let mut lan = arp_preamble();
    lan.push(pkt(
        1.0,
        traffic::ipv4(
            HOST_MAC,
            LAN_MAC,
            HOST,
            REMOTE,
            64,
            1,
            PROTO_TCP,
            &traffic::tcp_seg(40000, 443, 100, 0, tcp::SYN, &[]),
        ),
    ));
    lan.push(pkt(
        2.0,
        traffic::ipv4(
            HOST_MAC,
            LAN_MAC,
            HOST,
            REMOTE,
            64,
            2,
            PROTO_UDP,
            &traffic::udp_dgram(40001, 53, b"query"),
        ),
    ));
    lan.push(pkt(
        3.0,
        traffic::ipv4(
            HOST_MAC,
            LAN_MAC,
            HOST,
            REMOTE,
            64,
            3,
            PROTO_ICMP,
            &traffic::icmp_echo(8, 777, 1, b"ping"),
        ),
    ));
    // Phase 1: the translations.
    let (sink, _) = replay(nat_config(), lan.clone(), vec![]);
    let w = ip_out(&sink, WAN);
    assert_eq!(
        w.len(),
        3,
        "three translated frames out of the WAN port: {w:?}"
    );
    let mut ext = Vec::new();
    for ((ts, v, f), (proto, sport)) in
        w.iter()
            .zip([(PROTO_TCP, 40000), (PROTO_UDP, 40001), (PROTO_ICMP, 777)])
    {
        assert_eq!(v.proto, proto);
        assert!(is_pool(v.src), "source translated to a pool address: {v:?}");
        assert_eq!(v.dst, IpAddr::V4(REMOTE));
        assert_ne!(v.sport, 0);
        if proto != PROTO_ICMP {
            assert_eq!(v.dport, if proto == PROTO_TCP { 443 } else { 53 });
        }
        assert_eq!((v.src_mac, v.dst_mac), (WAN_MAC, ROUTER_MAC));
        assert_eq!(v.ttl, 63);
        assert!(
            traffic::checksums_ok(f),
            "checksums valid after translation"
        );
        assert_eq!(*ts % S, 0, "output carries the input timestamp");
        ext.push((v4(v.src), v.sport, sport));
    }
    // Paired pooling: one inside host, one external address.
    assert!(ext.iter().all(|e| e.0 == ext[0].0));
    // Phase 2: replies to the translated endpoints.
    let (e_ip, e_tcp, _) = ext[0];
    let wan = vec![
        pkt(
            1.1,
            traffic::ipv4(
                ROUTER_MAC,
                WAN_MAC,
                REMOTE,
                e_ip,
                60,
                11,
                PROTO_TCP,
                &traffic::tcp_seg(443, e_tcp, 9000, 101, tcp::SYN | tcp::ACK, &[]),
            ),
        ),
        pkt(
            2.1,
            traffic::ipv4(
                ROUTER_MAC,
                WAN_MAC,
                REMOTE,
                e_ip,
                60,
                12,
                PROTO_UDP,
                &traffic::udp_dgram(53, ext[1].1, b"answer"),
            ),
        ),
        pkt(
            3.1,
            traffic::ipv4(
                ROUTER_MAC,
                WAN_MAC,
                REMOTE,
                e_ip,
                60,
                13,
                PROTO_ICMP,
                &traffic::icmp_echo(0, ext[2].1, 1, b"ping"),
            ),
        ),
    ];
    let (sink2, summary) = replay(nat_config(), lan, wan);
    assert_eq!(
        ip_out(&sink2, WAN).len(),
        3,
        "phase 2 translates identically"
    );
    let l = ip_out(&sink2, LAN);
    assert_eq!(l.len(), 3, "three replies delivered inside: {l:?}");
    for ((_, v, f), (proto, orig_port)) in
        l.iter()
            .zip([(PROTO_TCP, 40000), (PROTO_UDP, 40001), (PROTO_ICMP, 777)])
    {
        assert_eq!(v.proto, proto);
        assert_eq!(v.dst, IpAddr::V4(HOST));
        assert_eq!(v.src, IpAddr::V4(REMOTE));
        assert_eq!(v.dport, orig_port, "port/identifier translated back");
        assert_eq!((v.src_mac, v.dst_mac), (LAN_MAC, HOST_MAC));
        assert!(traffic::checksums_ok(f));
    }
    assert_eq!(summary.flows_created, 3);
    assert_eq!(summary.nat_sessions_active, 3);
    assert!(summary.nat_ports_in_use >= 1);
}

#[test]
fn port_forward_in_and_out() {
    let lan0 = arp_preamble();
    let syn = traffic::ipv4(
        ROUTER_MAC,
        WAN_MAC,
        REMOTE,
        POOL1,
        50,
        1,
        PROTO_TCP,
        &traffic::tcp_seg(51000, 8080, 1, 0, tcp::SYN, &[]),
    );
    let (sink, _) = replay(nat_config(), lan0.clone(), vec![pkt(1.0, syn.clone())]);
    let l = ip_out(&sink, LAN);
    assert_eq!(l.len(), 1, "SYN forwarded inside");
    let v = &l[0].1;
    assert_eq!(
        (v.src, v.sport),
        (IpAddr::V4(REMOTE), 51000),
        "client endpoint untouched"
    );
    assert_eq!((v.dst, v.dport), (IpAddr::V4(SERVER), 80));
    assert_eq!(v.dst_mac, SERVER_MAC);
    assert!(traffic::checksums_ok(&l[0].2));
    // The server answers; the reply leaves from the external address:port.
    let mut lan = lan0;
    lan.push(pkt(
        1.01,
        traffic::ipv4(
            SERVER_MAC,
            LAN_MAC,
            SERVER,
            REMOTE,
            64,
            2,
            PROTO_TCP,
            &traffic::tcp_seg(80, 51000, 500, 2, tcp::SYN | tcp::ACK, &[]),
        ),
    ));
    let (sink, _) = replay(nat_config(), lan, vec![pkt(1.0, syn)]);
    let w = ip_out(&sink, WAN);
    assert_eq!(w.len(), 1);
    let v = &w[0].1;
    assert_eq!((v.src, v.sport), (IpAddr::V4(POOL1), 8080));
    assert_eq!((v.dst, v.dport), (IpAddr::V4(REMOTE), 51000));
    assert!(traffic::checksums_ok(&w[0].2));
}

#[test]
fn icmp_error_from_outside_is_un_natted() {
    let mut lan = arp_preamble();
    let probe = traffic::ipv4(
        HOST_MAC,
        LAN_MAC,
        HOST,
        REMOTE,
        2,
        7,
        PROTO_UDP,
        &traffic::udp_dgram(33000, 33434, b"trace"),
    );
    lan.push(pkt(1.0, probe));
    let (sink, _) = replay(nat_config(), lan.clone(), vec![]);
    let w = ip_out(&sink, WAN);
    assert_eq!(w.len(), 1);
    let translated = w[0].2.clone();
    assert_eq!(w[0].1.ttl, 1);
    let (e_ip, e_port) = (v4(w[0].1.src), w[0].1.sport);
    // The next router answers with time exceeded quoting the translated packet.
    let err = wire::icmpv4_error(
        ROUTER_MAC,
        WAN_MAC,
        ROUTER,
        &translated,
        14,
        translated.len(),
        11,
        0,
    )
    .unwrap();
    let (sink, _) = replay(nat_config(), lan, vec![pkt(1.02, err)]);
    let l = ip_out(&sink, LAN);
    assert_eq!(l.len(), 1, "error delivered to the inside host");
    let (_, v, f) = &l[0];
    assert_eq!(v.icmp, Some((11, 0)));
    assert_eq!(v.src, IpAddr::V4(ROUTER));
    assert_eq!(v.dst, IpAddr::V4(HOST), "outer destination translated back");
    assert!(traffic::checksums_ok(f), "outer checksums");
    // Embedded packet: source HOST:33000 again, with a valid header checksum.
    let inner = 14 + 20 + 8;
    assert_eq!(wire::ipv4_at(f, inner + 12), Some(HOST));
    assert_eq!(wire::ipv4_at(f, inner + 16), Some(REMOTE));
    assert_eq!(wire::be16(f, inner + 20), Some(33000));
    assert!(
        wire::ipv4_header_ok(f, inner),
        "embedded IP header checksum"
    );
    let _ = (e_ip, e_port);
}

#[test]
fn hairpin_between_two_inside_hosts() {
    let mut lan = arp_preamble();
    // HOST2 opens a UDP mapping towards REMOTE.
    lan.push(pkt(
        1.0,
        traffic::ipv4(
            HOST2_MAC,
            LAN_MAC,
            HOST2,
            REMOTE,
            64,
            1,
            PROTO_UDP,
            &traffic::udp_dgram(6000, 3478, b"stun"),
        ),
    ));
    let (sink, _) = replay(nat_config(), lan.clone(), vec![]);
    let w = ip_out(&sink, WAN);
    let (m_ip, m_port) = (v4(w[0].1.src), w[0].1.sport);
    // HOST sends to HOST2's external mapping. Hairpinned traffic is subject
    // to filtering like any inbound traffic (RFC 4787 REQ-9), so this uses
    // endpoint-independent filtering (the P2P / STUN setting).
    lan.push(pkt(
        2.0,
        traffic::ipv4(
            HOST_MAC,
            LAN_MAC,
            HOST,
            m_ip,
            64,
            2,
            PROTO_UDP,
            &traffic::udp_dgram(7000, m_port, b"hello"),
        ),
    ));
    let (sink, summary) = replay(eif_config(), lan.clone(), vec![]);
    let l = ip_out(&sink, LAN);
    let hp: Vec<_> = l
        .iter()
        .filter(|(_, v, _)| v.dst == IpAddr::V4(HOST2))
        .collect();
    assert_eq!(hp.len(), 1, "hairpinned: {:?}", summary.nat_drops);
    assert!(
        ip_out(&sink, WAN)
            .iter()
            .all(|(_, v, _)| v.dst != IpAddr::V4(m_ip)),
        "never sent out to our own address"
    );
    let (_, v, f) = hp[0];
    assert_eq!(
        (v.dst, v.dport),
        (IpAddr::V4(HOST2), 6000),
        "delivered to HOST2's inside endpoint"
    );
    assert!(
        is_pool(v.src),
        "source is HOST's external address, not its inside one: {v:?}"
    );
    assert_eq!(v.dst_mac, HOST2_MAC);
    assert!(traffic::checksums_ok(f));
    // With the default address-and-port-dependent filtering the same packet
    // is a counted drop (HOST2 never talked to HOST's external endpoint).
    let (sink, summary) = replay(nat_config(), lan, vec![]);
    assert!(
        ip_out(&sink, LAN)
            .iter()
            .all(|(_, v, _)| v.dst != IpAddr::V4(HOST2))
    );
    assert_eq!(summary.drops["unsolicited_inbound"], 1);
}

fn eif_config() -> Config {
    let mut c = nat_config();
    c.nat.as_mut().unwrap().filtering = nat::FilteringBehavior::EndpointIndependent;
    c
}

#[test]
fn arp_for_pool_address_answered_through_the_harness() {
    let (sink, summary) = replay(
        nat_config(),
        vec![],
        vec![pkt(0.5, wire::arp_request(ROUTER_MAC, ROUTER, POOL2))],
    );
    let w = out(&sink, WAN);
    assert_eq!(w.len(), 1);
    assert_eq!(wire::be16(&w[0].data, 20), Some(2));
    assert_eq!(&w[0].data[22..28], &WAN_MAC);
    assert_eq!(wire::ipv4_at(&w[0].data, 28), Some(POOL2));
    assert_eq!(w[0].ts_ns, S / 2);
    assert_eq!(summary.arp_replies, 1);
}

#[test]
fn ttl_expiry_answered_through_the_harness() {
    let mut lan = arp_preamble();
    lan.push(pkt(
        1.0,
        traffic::ipv4(
            HOST_MAC,
            LAN_MAC,
            HOST,
            REMOTE,
            1,
            1,
            PROTO_UDP,
            &traffic::udp_dgram(1, 2, b"x"),
        ),
    ));
    let (sink, summary) = replay(nat_config(), lan, vec![]);
    assert!(ip_out(&sink, WAN).is_empty(), "nothing leaves with TTL 0");
    let l = ip_out(&sink, LAN);
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].1.icmp, Some((11, 0)));
    assert_eq!(
        l[0].1.dst,
        IpAddr::V4(HOST),
        "answered to the untranslated source"
    );
    assert_eq!(summary.drops["ttl_exceeded"], 1);
    assert_eq!(
        summary.flows_created, 0,
        "no NAT session for an expired packet"
    );
}

#[test]
fn unsolicited_inbound_is_dropped_and_counted() {
    let wan = vec![
        pkt(
            1.0,
            traffic::ipv4(
                ROUTER_MAC,
                WAN_MAC,
                REMOTE,
                POOL1,
                50,
                1,
                PROTO_UDP,
                &traffic::udp_dgram(53, 5555, b"x"),
            ),
        ),
        pkt(
            1.1,
            traffic::ipv4(
                ROUTER_MAC,
                WAN_MAC,
                REMOTE,
                POOL2,
                50,
                2,
                PROTO_TCP,
                &traffic::tcp_seg(80, 6666, 1, 0, tcp::SYN, &[]),
            ),
        ),
        // Straight to an inside address, bypassing NAT.
        pkt(
            1.2,
            traffic::ipv4(
                ROUTER_MAC,
                WAN_MAC,
                REMOTE,
                HOST,
                50,
                3,
                PROTO_UDP,
                &traffic::udp_dgram(53, 5555, b"x"),
            ),
        ),
    ];
    let (sink, summary) = replay(nat_config(), arp_preamble(), wan);
    assert!(ip_out(&sink, LAN).is_empty());
    assert_eq!(summary.drops["unsolicited_inbound"], 3, "{summary:?}");
    assert_eq!(summary.flows_created, 0);
}

/// UDP (300 s) and ICMP (60 s) sessions of the example config: a reply just
/// before the deadline passes, just after it is dropped.
#[test]
fn sessions_expire_at_exact_capture_times() {
    let cfg = nat_config();
    let udp_t = cfg.nat.as_ref().unwrap().timeouts.udp as f64;
    let icmp_t = cfg.nat.as_ref().unwrap().timeouts.icmp as f64;
    let mut lan = arp_preamble();
    lan.push(pkt(
        10.0,
        traffic::ipv4(
            HOST_MAC,
            LAN_MAC,
            HOST,
            REMOTE,
            64,
            1,
            PROTO_UDP,
            &traffic::udp_dgram(41000, 53, b"a"),
        ),
    ));
    lan.push(pkt(
        10.0,
        traffic::ipv4(
            HOST_MAC,
            LAN_MAC,
            HOST,
            REMOTE,
            64,
            2,
            PROTO_UDP,
            &traffic::udp_dgram(41001, 53, b"b"),
        ),
    ));
    lan.push(pkt(
        10.0,
        traffic::ipv4(
            HOST_MAC,
            LAN_MAC,
            HOST,
            REMOTE,
            64,
            3,
            PROTO_ICMP,
            &traffic::icmp_echo(8, 900, 1, b"c"),
        ),
    ));
    lan.push(pkt(
        10.0,
        traffic::ipv4(
            HOST_MAC,
            LAN_MAC,
            HOST,
            REMOTE,
            64,
            4,
            PROTO_ICMP,
            &traffic::icmp_echo(8, 901, 1, b"d"),
        ),
    ));
    let (sink, _) = replay(cfg.clone(), lan.clone(), vec![]);
    let w = ip_out(&sink, WAN);
    assert_eq!(w.len(), 4);
    let e_ip = v4(w[0].1.src);
    let eps: Vec<u16> = w.iter().map(|x| x.1.sport).collect();
    let reply = |t: f64, proto: u8, port: u16| {
        let l4 = if proto == PROTO_UDP {
            traffic::udp_dgram(53, port, b"r")
        } else {
            traffic::icmp_echo(0, port, 1, b"r")
        };
        pkt(
            t,
            traffic::ipv4(ROUTER_MAC, WAN_MAC, REMOTE, e_ip, 60, 9, proto, &l4),
        )
    };
    let wan = vec![
        reply(10.0 + icmp_t - 0.001, PROTO_ICMP, eps[2]),
        reply(10.0 + icmp_t + 0.001, PROTO_ICMP, eps[3]),
        reply(10.0 + udp_t - 0.001, PROTO_UDP, eps[0]),
        reply(10.0 + udp_t + 0.001, PROTO_UDP, eps[1]),
    ];
    let (sink, summary) = replay(cfg, lan, wan);
    let l: Vec<_> = ip_out(&sink, LAN)
        .into_iter()
        .map(|(t, v, _)| (t, v.dport))
        .collect();
    assert_eq!(
        l,
        vec![
            (((10.0 + icmp_t - 0.001) * 1e9) as u64, 900),
            (((10.0 + udp_t - 0.001) * 1e9) as u64, 41000)
        ],
        "only the replies before their deadline get through"
    );
    assert_eq!(summary.drops["unsolicited_inbound"], 2);
    assert!(summary.flows_expired >= 2, "{summary:?}");
}

/// An IPv4 UDP datagram split into two fragments (8-byte-aligned split).
fn udp_fragments(id: u16, sport: u16, payload_len: usize) -> (Vec<u8>, Vec<u8>) {
    let payload: Vec<u8> = (0..payload_len).map(|i| i as u8).collect();
    let whole = traffic::ipv4(
        HOST_MAC,
        LAN_MAC,
        HOST,
        REMOTE,
        64,
        id,
        PROTO_UDP,
        &traffic::udp_dgram(sport, 53, &payload),
    );
    let l4 = &whole[34..];
    let split = 8 + 64; // UDP header + 64 bytes in the first fragment
    let mk = |off: usize, data: &[u8], more: bool| {
        let mut h = wire::ipv4_header(HOST, REMOTE, PROTO_UDP, data.len(), 64, id);
        let fl = ((off / 8) as u16) | if more { 0x2000 } else { 0 };
        h[6..8].copy_from_slice(&fl.to_be_bytes());
        h[10] = 0;
        h[11] = 0;
        let c = wire::checksum(&h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        let mut f = whole[..14].to_vec();
        f.extend_from_slice(&h);
        f.extend_from_slice(data);
        f
    };
    (mk(0, &l4[..split], true), mk(split, &l4[split..], false))
}

#[test]
fn fragments_are_translated_in_and_out_of_order() {
    for out_of_order in [false, true] {
        let (first, second) = udp_fragments(0x4242, 41500, 200);
        let mut lan = arp_preamble();
        if out_of_order {
            lan.push(pkt(1.0, second.clone()));
            lan.push(pkt(1.001, first.clone()));
        } else {
            lan.push(pkt(1.0, first.clone()));
            lan.push(pkt(1.001, second.clone()));
        }
        let (sink, summary) = replay(nat_config(), lan, vec![]);
        let w: Vec<_> = out(&sink, WAN).into_iter().map(|p| p.data).collect();
        assert_eq!(
            w.len(),
            2,
            "both fragments leave (out of order: {out_of_order}): {summary:?}"
        );
        let mut src = None;
        for f in &w {
            assert!(wire::ipv4_header_ok(f, 14));
            let s = wire::ipv4_at(f, 26).unwrap();
            assert!(is_pool(IpAddr::V4(s)), "fragment source translated");
            assert_eq!(wire::be16(f, 18), Some(0x4242), "IP id kept");
            assert_eq!(f[22], 63, "TTL decremented");
            assert_eq!(&f[0..6], &ROUTER_MAC);
            src.get_or_insert(s);
            assert_eq!(src, Some(s), "same translation for every fragment");
        }
        assert_eq!(
            summary.drops.values().sum::<u64>(),
            0,
            "{:?}",
            summary.drops
        );
    }
}

#[test]
fn quota_exhaustion_is_counted_and_answered_with_icmp_3_13() {
    let text = dataplane::config::DEFAULT_CONFIG.replace(
        "per_host_port_quota = 4096",
        "per_host_port_quota = 1\nicmp_on_quota_exceeded = true",
    );
    let cfg = Config::from_toml_str(&text).unwrap();
    let mut lan = arp_preamble();
    lan.push(pkt(
        1.0,
        traffic::ipv4(
            HOST_MAC,
            LAN_MAC,
            HOST,
            REMOTE,
            64,
            1,
            PROTO_UDP,
            &traffic::udp_dgram(42000, 53, b"a"),
        ),
    ));
    lan.push(pkt(
        2.0,
        traffic::ipv4(
            HOST_MAC,
            LAN_MAC,
            HOST,
            REMOTE,
            64,
            2,
            PROTO_UDP,
            &traffic::udp_dgram(42001, 53, b"b"),
        ),
    ));
    let (sink, summary) = replay(cfg, lan, vec![]);
    assert_eq!(
        ip_out(&sink, WAN).len(),
        1,
        "only the first flow gets a port"
    );
    assert_eq!(summary.drops["nat_exhausted"], 1, "{summary:?}");
    let l = ip_out(&sink, LAN);
    assert_eq!(l.len(), 1);
    let (ts, v, f) = &l[0];
    assert_eq!(*ts, 2 * S, "answer carries the dropped packet's timestamp");
    assert_eq!(v.icmp, Some((3, 13)));
    assert_eq!((v.src, v.dst), (IpAddr::V4(GW), IpAddr::V4(HOST)));
    assert!(traffic::checksums_ok(f));
}

#[test]
fn demo_scenario_exercises_every_path() {
    let params = dataplane::demo::DemoParams::default();
    let (s, shared) = dataplane::demo::run(Config::default_demo(), &params).unwrap();
    let nat = shared.nat.as_ref().unwrap().lock(0).stats();
    // Every outbound flow got a session; port-forwarded connections too.
    let expected = u64::from(
        params.tcp_flows
            + params.udp_flows
            + params.icmp_flows
            + params.forwarded
            + params.late_flows,
    );
    assert!(
        nat.created >= expected,
        "created {} < {expected}",
        nat.created
    );
    // Traceroute probes with TTL 2 come back as ICMP errors, translated.
    assert!(
        nat.icmp_errors_translated >= u64::from(params.ttl_probes / 2),
        "{nat:?}"
    );
    assert_eq!(s.drops["ttl_exceeded"], u64::from(params.ttl_probes / 2));
    assert_eq!(
        s.drops["unsolicited_inbound"],
        u64::from(params.unsolicited)
    );
    // Idle flows expired when the clock passed their timeouts.
    assert!(
        s.flows_expired >= u64::from(params.udp_flows + params.icmp_flows),
        "{s:?}"
    );
    assert!(s.nat_sessions_active > 0 && s.nat_sessions_active < nat.created);
    // IPv6: flows tracked and answered.
    assert_eq!(shared.v6flows.stats().1, u64::from(params.v6_flows));
    assert!(s.ports["lan"].packets_out > 9000);
}

/// An echo request from outside to a NAT pool address that matches no
/// session is for the gateway itself: answered from that address (not
/// counted as unsolicited), while an echo reply for an inside host's ping
/// is still translated to that host, and other unsolicited traffic to the
/// pool is still dropped.
#[test]
fn echo_to_pool_address_without_session_is_answered() {
    let mut lan = arp_preamble();
    lan.push(pkt(
        1.0,
        traffic::ipv4(
            HOST_MAC,
            LAN_MAC,
            HOST,
            REMOTE,
            64,
            1,
            PROTO_ICMP,
            &traffic::icmp_echo(8, 4242, 1, b"ping"),
        ),
    ));
    let (sink, _) = replay(nat_config(), lan.clone(), vec![]);
    let sent = ip_out(&sink, WAN);
    assert_eq!(sent.len(), 1);
    let (ext_ip, ext_id) = (sent[0].1.src, sent[0].1.sport);
    let IpAddr::V4(ext_v4) = ext_ip else { panic!() };
    let wan = vec![
        // The remote answers the inside host's ping: translated inward.
        pkt(
            1.01,
            traffic::ipv4(
                ROUTER_MAC,
                WAN_MAC,
                REMOTE,
                ext_v4,
                50,
                7,
                PROTO_ICMP,
                &traffic::icmp_echo(0, ext_id, 1, b"ping"),
            ),
        ),
        // Monitoring pings both pool addresses: answered by the gateway.
        pkt(
            2.0,
            traffic::ipv4(
                ROUTER_MAC,
                WAN_MAC,
                REMOTE,
                POOL1,
                50,
                8,
                PROTO_ICMP,
                &traffic::icmp_echo(8, 999, 5, b"are you there"),
            ),
        ),
        pkt(
            2.1,
            traffic::ipv4(
                ROUTER_MAC,
                WAN_MAC,
                REMOTE,
                POOL2,
                50,
                9,
                PROTO_ICMP,
                &traffic::icmp_echo(8, 998, 6, b"are you there"),
            ),
        ),
        // With TTL 1 (the last hop of a traceroute -I): answered too.
        pkt(
            2.15,
            traffic::ipv4(
                ROUTER_MAC,
                WAN_MAC,
                REMOTE,
                POOL2,
                1,
                11,
                PROTO_ICMP,
                &traffic::icmp_echo(8, 997, 7, b"last hop"),
            ),
        ),
        // Unsolicited UDP to the pool: still dropped.
        pkt(
            2.2,
            traffic::ipv4(
                ROUTER_MAC,
                WAN_MAC,
                REMOTE,
                POOL1,
                50,
                10,
                PROTO_UDP,
                &traffic::udp_dgram(53, 5555, b"x"),
            ),
        ),
    ];
    let (sink, summary) = replay(nat_config(), lan, wan);
    let inward = ip_out(&sink, LAN);
    assert_eq!(inward.len(), 1, "the reply to the inside host's ping");
    assert_eq!(inward[0].1.dst, IpAddr::V4(HOST));
    assert_eq!(inward[0].1.icmp, Some((0, 0)));
    let answers: Vec<_> = ip_out(&sink, WAN)
        .into_iter()
        .filter(|(_, v, _)| v.icmp == Some((0, 0)))
        .collect();
    assert_eq!(answers.len(), 3, "one echo reply per request");
    for ((ts, v, f), (pool, id)) in answers
        .iter()
        .zip([(POOL1, 999), (POOL2, 998), (POOL2, 997)])
    {
        assert_eq!((v.src, v.dst), (IpAddr::V4(pool), IpAddr::V4(REMOTE)));
        assert_eq!((v.sport, v.dport), (id, id));
        assert_eq!(v.dst_mac, ROUTER_MAC);
        assert!(*ts >= 2_000_000_000);
        assert!(traffic::checksums_ok(f));
    }
    assert_eq!(summary.echo_replies, 3);
    assert_eq!(summary.drops["unsolicited_inbound"], 1, "only the UDP");
    assert_eq!(summary.drops["ttl_exceeded"], 0, "TTL 1 to the gateway");
}

/// RFC 5382 REQ-4 through the harness with `unsolicited_syn = "hold"`: an
/// unsolicited SYN to a pool address is dropped, and 6 s of capture time
/// later the remote gets ICMP port unreachable from that pool address,
/// routed out of the WAN port to the router. Not before, and never with the
/// default policy.
#[test]
fn unsolicited_syn_held_then_answered_with_port_unreachable() {
    let syn = traffic::ipv4(
        ROUTER_MAC,
        WAN_MAC,
        REMOTE,
        POOL2,
        50,
        2,
        PROTO_TCP,
        &traffic::tcp_seg(80, 6666, 1, 0, tcp::SYN, &[]),
    );
    let tick = |t: f64, id: u16| {
        pkt(
            t,
            traffic::ipv4(
                ROUTER_MAC,
                WAN_MAC,
                REMOTE,
                POOL1,
                50,
                id,
                PROTO_UDP,
                &traffic::udp_dgram(53, 5555, b"x"),
            ),
        )
    };
    let wan = vec![pkt(1.0, syn.clone()), tick(6.9, 3), tick(7.1, 4)];
    let mut cfg = nat_config();
    if let Some(n) = cfg.nat.as_mut() {
        n.unsolicited_syn = nat::UnsolicitedSyn::Hold;
    }
    let (sink, summary) = replay(cfg, arp_preamble(), wan.clone());
    assert!(ip_out(&sink, LAN).is_empty(), "nothing reaches inside");
    let sent = ip_out(&sink, WAN);
    assert_eq!(sent.len(), 1, "one answer: {sent:?}");
    let (t, v, f) = &sent[0];
    assert_eq!(*t, 7_100_000_000, "sent with the first packet after 6 s");
    assert_eq!((v.src, v.dst), (IpAddr::V4(POOL2), IpAddr::V4(REMOTE)));
    assert_eq!((v.src_mac, v.dst_mac), (WAN_MAC, ROUTER_MAC));
    assert_eq!(v.icmp, Some((3, 3)), "port unreachable");
    assert_eq!(v.ttl, 64, "sent by the gateway itself: TTL not decremented");
    assert_eq!(
        f[14 + 20 + 8..14 + 20 + 8 + 28],
        syn[14..14 + 28],
        "quotes the SYN"
    );
    assert_eq!(wire::checksum(&f[14..34]), 0);
    assert_eq!(wire::checksum(&f[34..]), 0, "ICMP checksum");
    assert_eq!(summary.drops["unsolicited_inbound"], 3, "{summary:?}");

    let (sink, _) = replay(nat_config(), arp_preamble(), wan);
    assert!(ip_out(&sink, WAN).is_empty(), "default: never answered");
}

/// `nat.log_mappings`: the replay writes one `nat_mappings` log event when
/// a mapping is created and one when it is released (at capture time),
/// with the inside and external endpoints.
#[test]
fn mapping_log_through_the_harness() {
    #[derive(Clone, Default)]
    struct Buf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let udp = |t: f64, sport: u16| pkt(t, udp_out(sport));
    let mut lan = arp_preamble();
    lan.push(udp(1.0, 41000));
    // 400 s later (UDP timeout 300 s): the first mapping is released.
    lan.push(udp(401.0, 41001));
    let mut cfg = nat_config();
    if let Some(n) = cfg.nat.as_mut() {
        n.log_mappings = true;
    }
    let buf = Buf::default();
    let w = buf.clone();
    let sub = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || w.clone())
        .finish();
    tracing::subscriber::with_default(sub, || {
        replay(cfg, lan, vec![]);
    });
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("nat_mappings"))
        .collect();
    let has = |ev: &str, port: u16, at: u64| {
        lines.iter().any(|l| {
            l.contains(&format!("event={ev}"))
                && l.contains(&format!("inside={HOST}:{port}"))
                && l.contains(&format!("at_ns={at}"))
        })
    };
    assert!(has("Created", 41000, S), "{text}");
    assert!(has("Released", 41000, 401 * S), "{text}");
    assert!(has("Created", 41001, 401 * S), "{text}");
    assert_eq!(lines.len(), 3, "{text}");
}
