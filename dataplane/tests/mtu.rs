//! Egress MTU (#16 item 2): IPv4 larger than the egress port's `mtu` is
//! fragmented after translation (DF clear) or answered with ICMP 3/4
//! carrying the MTU (DF set, RFC 1191), through the NAT to an inside
//! sender; IPv6 is answered with Packet Too Big (RFC 8201); generated ICMP
//! errors are rate-limited per port (RFC 1812 §4.3.2.8) on the virtual
//! clock. Each test also sends what must pass (a frame that fits, a
//! token that refilled), so it fails both ways.

mod common;

use common::*;
use dataplane::config::Config;
use dataplane::pipeline::{Disposition, DropReason, Output, single};
use dataplane::traffic;
use dataplane::wire::{self, PROTO_UDP};
use net::{icmpv4, icmpv6, ipv4, ipv6};

fn drops(p: &dataplane::Pipeline, r: DropReason) -> u64 {
    let s = p.shared().counters.snapshot(&p.shared().port_names());
    s.drops.get(r.name()).copied().unwrap_or(0)
}

/// `cfg` with the LAN port at 9000 and the WAN port at `wan_mtu`.
fn with_mtus(mut cfg: Config, wan_mtu: u16) -> Config {
    cfg.ports[LAN as usize].mtu = 9000;
    cfg.ports[WAN as usize].mtu = wan_mtu;
    cfg
}

/// Run one burst; return (dispositions, generated).
fn burst(
    p: &mut dataplane::Pipeline,
    port: u16,
    frames: Vec<Vec<u8>>,
    secs: f64,
) -> (Vec<Disposition>, Generated) {
    let mut frames = frames;
    let mut out = Output::default();
    p.process(port, &mut frames, ts(secs), &mut out);
    (out.dispositions, out.generated)
}

#[test]
fn oversized_translated_udp_without_df_leaves_as_fragments_of_the_translated_datagram() {
    // Reference: the same frame through a pipeline whose WAN port carries it
    // whole: the translated datagram the fragments must add up to.
    let mut whole = single(with_mtus(nat_config(), 9000)).unwrap();
    let (d, translated, g) = one(&mut whole, LAN, udp_out_sized(4000, false), ts(1.0));
    assert_eq!(d, Disposition::Tx(WAN));
    assert!(g.is_empty());
    let t = ip_of(&translated);
    assert_eq!(t.src_addr(), POOL1, "translated");
    assert!(traffic::checksums_ok(&translated));

    let mut p = single(with_mtus(nat_config(), 1500)).unwrap();
    // A frame that fits goes out whole (and warms the next-hop cache, so
    // the big one meets the fast lane first).
    let (d, _, _) = one(&mut p, LAN, udp_out_sized(1000, false), ts(0.5));
    assert_eq!(d, Disposition::Tx(WAN));
    let (d, _, frags) = one(&mut p, LAN, udp_out_sized(4000, false), ts(1.0));
    assert_eq!(d, Disposition::Consumed, "the original is consumed");
    assert_eq!(
        frags.len(),
        3,
        "4028 bytes of IP payload: 1480 + 1480 + 1068"
    );
    let frames: Vec<Vec<u8>> = frags
        .iter()
        .map(|(port, f)| {
            assert_eq!(*port, WAN);
            assert_eq!(&f[0..6], &ROUTER_MAC);
            assert_eq!(&f[6..12], &WAN_MAC);
            let ip = ip_of(f);
            assert_eq!(
                (ip.src_addr(), ip.dst_addr(), ip.ident(), ip.ttl()),
                (t.src_addr(), t.dst_addr(), t.ident(), t.ttl()),
                "every fragment has the translated header, TTL decremented once"
            );
            assert!(!ip.dont_frag());
            f.clone()
        })
        .collect();
    let datagram = reassemble_ipv4(&frames, 1500);
    assert_eq!(
        datagram,
        t.payload(),
        "reassembly gives the translated datagram"
    );
    let s = p.shared().counters.snapshot(&p.shared().port_names());
    assert_eq!((s.fragmented, s.fragments), (1, 3));
    assert_eq!(s.tx.get("wan"), Some(&4), "1 whole frame + 3 fragments");
}

#[test]
fn oversized_frame_on_a_plain_router_is_fragmented_too() {
    let mut p = single(with_mtus(router_config(), 576)).unwrap();
    let orig = udp_out_sized(2000, false);
    let (d, _, frags) = one(&mut p, LAN, orig.clone(), ts(1.0));
    assert_eq!(d, Disposition::Consumed);
    let frames: Vec<Vec<u8>> = frags.into_iter().map(|(_, f)| f).collect();
    assert_eq!(frames.len(), 4, "2008 bytes in 552-byte pieces");
    assert_eq!(reassemble_ipv4(&frames, 576), ip_of(&orig).payload());
    assert!(frames.iter().all(|f| ip_of(f).src_addr() == HOST));
}

#[test]
fn df_set_from_an_inside_host_is_answered_with_frag_needed_through_the_nat() {
    let mut p = single(with_mtus(nat_config(), 1400)).unwrap();
    learn_hosts(&mut p, ts(0.5));
    let orig = udp_out_sized(1500, true);
    let (d, _, g) = one(&mut p, LAN, orig.clone(), ts(1.0));
    assert_eq!(d, Disposition::Drop(DropReason::FragNeededDf));
    assert_eq!(g.len(), 1, "one ICMP error");
    let (port, e) = &g[0];
    assert_eq!(*port, LAN, "back towards the inside host");
    assert_eq!(&e[0..6], &HOST_MAC);
    assert!(traffic::checksums_ok(e));
    let ip = ip_of(e);
    assert_eq!((ip.src_addr(), ip.dst_addr()), (GW, HOST), "untranslated");
    let icmp = icmpv4::Packet::new_checked(ip.payload()).unwrap();
    assert_eq!((icmp.msg_type(), icmp.msg_code()), (3, 4));
    assert_eq!(icmp.next_hop_mtu(), 1400, "RFC 1191: the next-hop MTU");
    assert_eq!(
        icmp.data(),
        &orig[L3..L3 + 28],
        "quotes the packet as the host sent it (NAT undone)"
    );
    assert_eq!(drops(&p, DropReason::FragNeededDf), 1);
    // The same flow at 1400 bytes fits and is forwarded, translated.
    let (d, f, _) = one(&mut p, LAN, udp_out_sized(1372, true), ts(1.1));
    assert_eq!(d, Disposition::Tx(WAN));
    assert_eq!(ip_of(&f).src_addr(), POOL1);
}

#[test]
fn df_set_from_outside_gets_frag_needed_quoting_the_packet_it_sent() {
    let mut p = single(nat_config()).unwrap();
    let mut cfg = nat_config();
    cfg.ports[LAN as usize].mtu = 1280;
    let mut p2 = single(cfg).unwrap();
    for p in [&mut p, &mut p2] {
        learn_hosts(p, ts(0.5));
    }
    // Open the mapping from inside, then the remote answers with a big DF
    // datagram to the mapped address.
    let (d, out_f, _) = one(&mut p2, LAN, udp_out_sized(10, true), ts(1.0));
    assert_eq!(d, Disposition::Tx(WAN));
    let mapped = ip_of(&out_f);
    let (pool, port) = (
        mapped.src_addr(),
        u16::from_be_bytes([out_f[34], out_f[35]]),
    );
    let payload = vec![0x5au8; 1400];
    let mut reply = traffic::ipv4(
        ROUTER_MAC,
        WAN_MAC,
        REMOTE,
        pool,
        60,
        7,
        PROTO_UDP,
        &traffic::udp_dgram(9000, port, &payload),
    );
    set_df(&mut reply, true);
    let (d, _, g) = one(&mut p2, WAN, reply.clone(), ts(1.1));
    assert_eq!(d, Disposition::Drop(DropReason::FragNeededDf));
    assert_eq!(g.len(), 1);
    let (gp, e) = &g[0];
    assert_eq!(*gp, WAN);
    assert_eq!(&e[0..6], &ROUTER_MAC, "routed to the remote's next hop");
    assert!(traffic::checksums_ok(e));
    let ip = ip_of(e);
    assert_eq!((ip.src_addr(), ip.dst_addr()), (WAN_IP, REMOTE));
    let icmp = icmpv4::Packet::new_checked(ip.payload()).unwrap();
    assert_eq!(
        (icmp.msg_type(), icmp.msg_code(), icmp.next_hop_mtu()),
        (3, 4, 1280)
    );
    assert_eq!(
        icmp.data(),
        &reply[L3..L3 + 28],
        "quotes the packet as the remote sent it (to the mapped address)"
    );
    // With the default 1500 on the LAN port it is delivered.
    let (d, _, _) = one(&mut p, LAN, udp_out_sized(10, true), ts(1.0));
    assert_eq!(d, Disposition::Tx(WAN));
    let (d, f, _) = one(&mut p, WAN, reply, ts(1.1));
    assert_eq!(d, Disposition::Tx(LAN));
    assert_eq!(ip_of(&f).dst_addr(), HOST);
}

#[test]
fn no_frag_needed_about_an_icmp_error_or_a_non_first_fragment() {
    let mut p = single(with_mtus(router_config(), 576)).unwrap();
    learn_hosts(&mut p, ts(0.5));
    // A non-first fragment with DF set (odd but legal to receive).
    let mut frag = udp_out_sized(1000, true);
    {
        let mut ip = ipv4::Packet::new_checked(&mut frag[L3..]).unwrap();
        ip.set_frag_offset(1480);
        ip.fill_checksum();
    }
    let (d, _, g) = one(&mut p, LAN, frag, ts(1.0));
    assert_eq!(d, Disposition::Drop(DropReason::FragNeededDf));
    assert!(
        g.is_empty(),
        "RFC 1812 4.3.2.7: not about a non-first fragment"
    );
    // An ICMP error (destination unreachable quoting a long packet) with
    // DF set.
    let quoted = udp_out_sized(1000, false);
    let mut body = vec![3, 1, 0, 0, 0, 0, 0, 0];
    body.extend_from_slice(&quoted[L3..]);
    let mut err = traffic::ipv4(
        HOST_MAC,
        LAN_MAC,
        HOST,
        REMOTE,
        64,
        9,
        wire::PROTO_ICMP,
        &body,
    );
    set_df(&mut err, true);
    let (d, _, g) = one(&mut p, LAN, err, ts(1.0));
    assert_eq!(d, Disposition::Drop(DropReason::FragNeededDf));
    assert!(g.is_empty(), "RFC 1812 4.3.2.7: not about an ICMP error");
    // The first fragment of a datagram, and an echo request, get one.
    let (d, _, g) = one(&mut p, LAN, udp_out_sized(1000, true), ts(1.0));
    assert_eq!(d, Disposition::Drop(DropReason::FragNeededDf));
    assert_eq!(g.len(), 1);
    let mut echo = traffic::ipv4(
        HOST_MAC,
        LAN_MAC,
        HOST,
        REMOTE,
        64,
        9,
        wire::PROTO_ICMP,
        &traffic::icmp_echo(8, 1, 1, &[0u8; 1000]),
    );
    set_df(&mut echo, true);
    let (d, _, g) = one(&mut p, LAN, echo, ts(1.0));
    assert_eq!(d, Disposition::Drop(DropReason::FragNeededDf));
    assert_eq!(g.len(), 1);
}

#[test]
fn ipv6_larger_than_the_egress_mtu_is_answered_with_packet_too_big() {
    let mut p = single(with_mtus(router_config(), 1400)).unwrap();
    let payload = vec![0x66u8; 1500];
    let big = traffic::ipv6(
        HOST_MAC,
        LAN_MAC,
        HOST6,
        REMOTE6,
        64,
        PROTO_UDP,
        &traffic::udp_dgram(5555, 53, &payload),
    );
    let (d, _, g) = one(&mut p, LAN, big.clone(), ts(1.0));
    assert_eq!(d, Disposition::Drop(DropReason::PacketTooBig));
    assert_eq!(g.len(), 1);
    let (port, e) = &g[0];
    assert_eq!(*port, LAN);
    assert_eq!((&e[0..6], &e[6..12]), (&HOST_MAC[..], &LAN_MAC[..]));
    assert!(traffic::checksums_ok(e));
    assert_eq!(e.len(), 14 + 1280, "as much of the packet as fits in 1280");
    let ip = ipv6::Packet::new_checked(&e[L3..]).unwrap();
    assert_eq!((ip.src_addr(), ip.dst_addr()), (GW6, HOST6));
    let m = icmpv6::Packet::new_checked(ip.payload()).unwrap();
    match icmpv6::Repr::parse(&m).unwrap() {
        icmpv6::Repr::PacketTooBig { mtu, data } => {
            assert_eq!(mtu, 1400);
            assert_eq!(data, &big[L3..L3 + icmpv6::MAX_QUOTE]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(drops(&p, DropReason::PacketTooBig), 1);
    // 1400 bytes exactly fit.
    let fits = traffic::ipv6(
        HOST_MAC,
        LAN_MAC,
        HOST6,
        REMOTE6,
        64,
        PROTO_UDP,
        &traffic::udp_dgram(5555, 53, &payload[..1400 - 48]),
    );
    let (d, _, _) = one(&mut p, LAN, fits, ts(1.1));
    assert_ne!(d, Disposition::Drop(DropReason::PacketTooBig));
}

#[test]
fn icmp_errors_are_rate_limited_per_port_and_refill_on_the_virtual_clock() {
    // Defaults: 1000 per second, burst 50.
    let cfg = with_mtus(router_config(), 1400);
    assert_eq!((cfg.icmp_rate.per_sec, cfg.icmp_rate.burst), (1000, 50));
    let mut p = single(cfg).unwrap();
    learn_hosts(&mut p, ts(0.5));
    let frames = vec![udp_out_sized(1500, true); 51];
    let (d, g) = burst(&mut p, LAN, frames, 1.0);
    assert!(
        d.iter()
            .all(|d| *d == Disposition::Drop(DropReason::FragNeededDf))
    );
    assert_eq!(g.len(), 50, "the burst: 50 errors");
    assert_eq!(drops(&p, DropReason::IcmpRateLimited), 1, "the 51st");
    // Half a token later still nothing; one token (1 ms) later, one error.
    let (_, g) = burst(&mut p, LAN, vec![udp_out_sized(1500, true)], 1.0005);
    assert!(g.is_empty());
    let (_, g) = burst(&mut p, LAN, vec![udp_out_sized(1500, true); 2], 1.0015);
    assert_eq!(g.len(), 1, "refilled by one");
    assert_eq!(drops(&p, DropReason::IcmpRateLimited), 3);
    // Time exceeded draws from the same bucket.
    let mut ttl1 = udp_out_sized(10, false);
    {
        let mut ip = ipv4::Packet::new_checked(&mut ttl1[L3..]).unwrap();
        ip.set_ttl(1);
        ip.fill_checksum();
    }
    let (d, _, g) = one(&mut p, LAN, ttl1.clone(), ts(1.0015));
    assert_eq!(d, Disposition::Drop(DropReason::TtlExceeded));
    assert!(g.is_empty(), "bucket empty");
    // Each port has its own bucket: one sent on the WAN port still goes.
    let mut from_wan = traffic::ipv4(
        ROUTER_MAC,
        WAN_MAC,
        REMOTE,
        HOST,
        1,
        3,
        PROTO_UDP,
        &traffic::udp_dgram(9000, 40000, b"x"),
    );
    set_df(&mut from_wan, false);
    let (d, _, g) = one(&mut p, WAN, from_wan, ts(1.0015));
    assert_eq!(d, Disposition::Drop(DropReason::TtlExceeded));
    assert_eq!(g.len(), 1, "the WAN bucket is full");
    assert_eq!(g[0].0, WAN);
    let (_, _, g) = one(&mut p, LAN, ttl1, ts(2.0));
    assert_eq!(g.len(), 1, "a second later the bucket is full again");
}

#[test]
fn icmp_rate_is_configurable() {
    let text = config_text_with("per_sec = 1000\nburst = 50", "per_sec = 2\nburst = 3");
    let mut cfg = Config::from_toml_str(&text).unwrap();
    cfg.nat = None;
    cfg.ports[WAN as usize].mtu = 1400;
    let mut p = single(cfg).unwrap();
    learn_hosts(&mut p, ts(0.5));
    let (_, g) = burst(&mut p, LAN, vec![udp_out_sized(1500, true); 5], 1.0);
    assert_eq!(g.len(), 3);
    let (_, g) = burst(&mut p, LAN, vec![udp_out_sized(1500, true); 5], 1.5);
    assert_eq!(g.len(), 1, "2 per second: one token in 0.5 s");
    assert_eq!(drops(&p, DropReason::IcmpRateLimited), 6);
}

#[test]
fn mtu_and_icmp_rate_are_validated_naming_the_field() {
    let bad = |from: &str, to: &str| {
        let e = Config::from_toml_str(&config_text_with(from, to)).unwrap_err();
        e.field().to_string()
    };
    // The LAN port's `mtu = 1500` comes first in the example.
    assert_eq!(bad("mtu = 1500", "mtu = 67"), "ports[0].mtu");
    assert_eq!(bad("mtu = 1500", "mtu = 9217"), "ports[0].mtu");
    // The LAN port has IPv6 addresses: 1280 at least.
    assert_eq!(bad("mtu = 1500", "mtu = 1279"), "ports[0].mtu");
    let ok = Config::from_toml_str(&config_text_with("mtu = 1500", "mtu = 1280")).unwrap();
    assert_eq!((ok.ports[0].mtu, ok.ports[1].mtu), (1280, 1500));
    // Absent: 1500.
    let absent = Config::from_toml_str(&config_text_with("mtu = 1500\n", "")).unwrap();
    assert_eq!(absent.ports[0].mtu, 1500);
    // Without IPv6 addresses the IPv4 minimum applies.
    let v4only =
        config_text_with("ipv6 = [\"fd00:1::1/64\"]\n", "").replacen("mtu = 1500", "mtu = 68", 1);
    assert_eq!(Config::from_toml_str(&v4only).unwrap().ports[0].mtu, 68);
    assert_eq!(bad("per_sec = 1000", "per_sec = 0"), "icmp_rate.per_sec");
    assert_eq!(bad("burst = 50", "burst = 0"), "icmp_rate.burst");
    assert_eq!(
        bad(
            "mtu = 1500",
            "mtu = 1500\nicmp_rate = { per_sec = 1, burst = 0 }"
        ),
        "ports[0].icmp_rate.burst"
    );
}

#[test]
fn a_port_may_have_its_own_icmp_bucket() {
    let text = config_text_with(
        "mtu = 1500",
        "mtu = 1500\nicmp_rate = { per_sec = 1, burst = 2 }",
    );
    let mut cfg = Config::from_toml_str(&text).unwrap();
    assert_eq!(cfg.ports[0].icmp_rate(&cfg).burst, 2);
    assert_eq!(cfg.ports[1].icmp_rate(&cfg).burst, 50, "the top-level one");
    cfg.nat = None;
    cfg.ports[WAN as usize].mtu = 1400;
    let mut p = single(cfg).unwrap();
    learn_hosts(&mut p, ts(0.5));
    let (_, g) = burst(&mut p, LAN, vec![udp_out_sized(1500, true); 5], 1.0);
    assert_eq!(g.len(), 2, "the LAN port's own burst of 2");
    assert_eq!(drops(&p, DropReason::IcmpRateLimited), 3);
}

#[test]
fn fragments_the_nat_held_and_released_are_refragmented_within_their_range() {
    let datagram_frame = udp_out_sized(3992, false);
    // Reference: the whole datagram translated.
    let mut whole = single(with_mtus(nat_config(), 9000)).unwrap();
    let (_, translated, _) = one(&mut whole, LAN, datagram_frame.clone(), ts(1.0));
    let t = ip_of(&translated);

    // The host sends it as two 2020-byte fragments, the second first: the
    // NAT holds it until the first arrives, then releases it.
    let pieces = net::build::ipv4_fragments(&datagram_frame[L3..], 2020).unwrap();
    assert_eq!(pieces.len(), 2);
    let frame_of = |ip: &[u8]| {
        let mut f = datagram_frame[..L3].to_vec();
        f.extend_from_slice(ip);
        f
    };
    let mut p = single(with_mtus(nat_config(), 1500)).unwrap();
    let (d, _, g) = one(&mut p, LAN, frame_of(&pieces[1]), ts(1.0));
    assert_eq!(d, Disposition::Consumed, "held by the NAT");
    assert!(g.is_empty());
    let (d, _, g) = one(&mut p, LAN, frame_of(&pieces[0]), ts(1.001));
    assert_eq!(d, Disposition::Consumed, "fragmented");
    let frames: Vec<Vec<u8>> = g
        .into_iter()
        .map(|(port, f)| {
            assert_eq!(port, WAN);
            f
        })
        .collect();
    assert_eq!(frames.len(), 4, "each 2000-byte piece in 1480 + 520");
    let offsets: Vec<u16> = frames.iter().map(|f| ip_of(f).frag_offset()).collect();
    assert_eq!(offsets, [0, 1480, 2000, 3480]);
    for f in &frames {
        let ip = ip_of(f);
        assert_eq!((ip.src_addr(), ip.ttl()), (t.src_addr(), t.ttl()));
    }
    assert_eq!(reassemble_ipv4(&frames, 1500), t.payload());
}

#[test]
fn jumbo_frames_through_the_replay_harness_leave_fragmented_or_answered() {
    use dataplane::replay::{MemSink, Packet, replay_packets};
    let pkt = |t: f64, data: Vec<u8>| Packet {
        ts_ns: (t * 1e9) as u64,
        data,
    };
    let lan = vec![
        pkt(0.0, wire::arp_request(HOST_MAC, HOST, GW)),
        pkt(1.0, udp_out_sized(8000, false)),
        pkt(2.0, udp_out_sized(8000, true)),
    ];
    let mut sink = MemSink::default();
    let (s, _) = replay_packets(
        with_mtus(nat_config(), 1500),
        vec![(LAN, lan), (WAN, vec![])],
        &mut sink,
    )
    .expect("replay");
    let wan: Vec<Vec<u8>> = sink.ports[&WAN].iter().map(|p| p.data.clone()).collect();
    assert_eq!(wan.len(), 6, "8028 bytes of IP payload in 1480-byte pieces");
    let datagram = reassemble_ipv4(&wan, 1500);
    assert_eq!(datagram.len(), 8008);
    assert_eq!(ip_of(&wan[0]).src_addr(), POOL1);
    let lan_out: Vec<&Packet> = sink.ports[&LAN]
        .iter()
        .filter(|p| ip_of_opt(&p.data).is_some())
        .collect();
    assert_eq!(lan_out.len(), 1, "the DF frame's 3/4");
    let e = ip_of(&lan_out[0].data);
    let icmp = icmpv4::Packet::new_checked(e.payload()).unwrap();
    assert_eq!(
        (icmp.msg_type(), icmp.msg_code(), icmp.next_hop_mtu()),
        (3, 4, 1500)
    );
    assert_eq!(e.dst_addr(), HOST);
    assert_eq!((s.fragmented, s.fragments), (1, 6));
    assert_eq!(s.drops["frag_needed_df"], 1);
    assert_eq!(s.drops["icmp_rate_limited"], 0);
}

fn ip_of_opt(f: &[u8]) -> Option<ipv4::Packet<&[u8]>> {
    let c = wire::classify(f).ok()?;
    (c.l3 == net::L3Kind::Ipv4).then(|| ip_of(f))
}

#[test]
fn the_nats_port_unreachable_for_held_syns_is_rate_limited_too() {
    use dataplane::replay::{MemSink, Packet, replay_packets};
    let pkt = |t: f64, data: Vec<u8>| Packet {
        ts_ns: (t * 1e9) as u64,
        data,
    };
    let syn = |dport: u16| {
        traffic::ipv4(
            ROUTER_MAC,
            WAN_MAC,
            REMOTE,
            POOL2,
            50,
            dport,
            wire::PROTO_TCP,
            &traffic::tcp_seg(80, dport, 1, 0, traffic::tcp::SYN, &[]),
        )
    };
    let wan = vec![
        pkt(1.0, syn(6666)),
        pkt(1.0, syn(6667)),
        pkt(1.0, syn(6668)),
        // A later packet carries the timer output out.
        pkt(7.5, syn(6669)),
    ];
    let answers = |burst: u32| {
        let mut cfg = nat_config();
        cfg.nat.as_mut().unwrap().unsolicited_syn = nat::UnsolicitedSyn::Hold;
        cfg.icmp_rate.burst = burst;
        cfg.icmp_rate.per_sec = 1;
        let mut sink = MemSink::default();
        let (s, _) =
            replay_packets(cfg, vec![(LAN, vec![]), (WAN, wan.clone())], &mut sink).unwrap();
        let n = sink.ports.get(&WAN).map_or(0, |v| {
            v.iter()
                .filter(|p| view(&p.data).icmp == Some((3, 3)))
                .count()
        });
        (n, s.drops["icmp_rate_limited"])
    };
    assert_eq!(answers(50), (3, 0), "three held SYNs, three answers");
    assert_eq!(answers(1), (1, 2), "a bucket of one: the rest are counted");
}

/// For any datagram size, egress MTU, DF and TTL: a packet that fits leaves
/// as the reference translation; one that does not leaves as fragments
/// (each ≤ MTU, reassembling to the translated datagram) or, with DF, is
/// answered with 3/4 carrying the MTU; with and without the fast lanes
/// alike.
#[test]
fn any_size_and_mtu_fits_fragments_or_is_answered_alike_on_both_lanes() {
    use proptest::prelude::*;
    let small = |wan_mtu: u16| {
        let mut c = with_mtus(nat_config(), wan_mtu);
        c.flow_table.capacity = 1024;
        c
    };
    let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases: 64,
        ..Default::default()
    });
    let strategy = (0usize..3000, 68u16..1600, any::<bool>(), 2u8..=64);
    let r = runner.run(&strategy, |(len, mtu, df, ttl)| {
        let mut frame = udp_out_sized(len, df);
        {
            let mut ip = ipv4::Packet::new_checked(&mut frame[L3..]).unwrap();
            ip.set_ttl(ttl);
            ip.fill_checksum();
        }
        let mut reference = single(small(9216)).unwrap();
        let (d, translated, _) = one(&mut reference, LAN, frame.clone(), ts(1.0));
        prop_assert_eq!(d, Disposition::Tx(WAN));
        let t = ip_of(&translated);
        let mut results = Vec::new();
        for fast in [true, false] {
            let mut p = single(small(mtu)).unwrap();
            p.set_fast_lanes(fast);
            learn_hosts(&mut p, ts(0.5));
            // Warm the next-hop cache so the fast lane meets the frame.
            one(&mut p, LAN, udp_out_sized(0, false), ts(0.6));
            let (d, after, g) = one(&mut p, LAN, frame.clone(), ts(1.0));
            let fits = 28 + len <= usize::from(mtu);
            if fits {
                prop_assert_eq!(d, Disposition::Tx(WAN));
                prop_assert_eq!(&after[L3..], &translated[L3..]);
                prop_assert!(g.is_empty());
            } else if df {
                prop_assert_eq!(d, Disposition::Drop(DropReason::FragNeededDf));
                prop_assert_eq!(g.len(), 1);
                let e = ip_of(&g[0].1);
                prop_assert_eq!(e.dst_addr(), HOST);
                let icmp = icmpv4::Packet::new_checked(e.payload()).unwrap();
                prop_assert_eq!((icmp.msg_type(), icmp.msg_code()), (3, 4));
                prop_assert_eq!(icmp.next_hop_mtu(), mtu);
            } else {
                prop_assert_eq!(d, Disposition::Consumed);
                let frags: Vec<Vec<u8>> = g.iter().map(|(_, f)| f.clone()).collect();
                prop_assert!(frags.len() >= 2);
                prop_assert_eq!(reassemble_ipv4(&frags, usize::from(mtu)), t.payload());
            }
            results.push((d, after, g));
        }
        prop_assert_eq!(&results[0], &results[1], "fast lanes change nothing");
        Ok(())
    });
    if let Err(e) = r {
        panic!("{e}");
    }
}
