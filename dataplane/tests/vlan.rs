//! VLANs (802.1Q, `ports[].vlan`): a VLAN port takes frames tagged with its
//! id only and tags what it sends (every frame, forwarded or generated); an
//! untagged port takes and sends untagged frames only; QinQ is dropped.
//! Frames are built here, run through `Pipeline::process` with a virtual
//! clock, and decoded.

mod common;

use common::*;
use core::net::IpAddr;
use dataplane::config::Config;
use dataplane::pipeline::{Disposition, DropReason, Output, single};
use dataplane::traffic::{self, tcp};
use dataplane::wire::{self, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};

const LAN_VLAN: u16 = 10;
const WAN_VLAN: u16 = 20;

fn drops(p: &dataplane::Pipeline, r: DropReason) -> u64 {
    let s = p.shared().counters.snapshot(&p.shared().port_names());
    s.drops.get(r.name()).copied().unwrap_or(0)
}

/// `c` with the LAN port on VLAN `lan` and the WAN port on `wan`.
fn with_vlans(mut c: Config, lan: Option<u16>, wan: Option<u16>) -> Config {
    c.ports[usize::from(LAN)].vlan = lan;
    c.ports[usize::from(WAN)].vlan = wan;
    c
}

/// The whole TCI (PCP, DEI, id) of a singly tagged frame.
fn tci(f: &[u8]) -> u16 {
    assert_eq!(wire::be16(f, 12), Some(0x8100), "an 802.1Q tag");
    wire::be16(f, 14).unwrap()
}

fn udp_in(dport: u16) -> Vec<u8> {
    traffic::ipv4(
        ROUTER_MAC,
        WAN_MAC,
        REMOTE,
        HOST,
        64,
        7,
        PROTO_UDP,
        &traffic::udp_dgram(53, dport, b"answer"),
    )
}

/// Teach a pipeline whose LAN port is on VLAN `vid` where HOST is (a
/// tagged ARP request for the gateway, answered tagged).
fn learn_host_tagged(p: &mut dataplane::Pipeline, vid: u16) {
    let (d, f, _) = one(
        p,
        LAN,
        tag(&wire::arp_request(HOST_MAC, HOST, GW), vid),
        ts(1.0),
    );
    assert_eq!(d, Disposition::Tx(LAN));
    assert_eq!(untag(&f).0, vec![vid]);
}

#[test]
fn tagged_frame_on_its_vlan_port_is_forwarded_untagged() {
    let mut p = single(with_vlans(router_config(), Some(LAN_VLAN), None)).unwrap();
    let plain = udp_out(5000);
    // Priority 5 on the way in: it does not survive (the egress is untagged).
    let (d, out, _) = one(&mut p, LAN, tag_with(&plain, 0x8100, 5, LAN_VLAN), ts(1.0));
    assert_eq!(d, Disposition::Tx(WAN));
    assert_eq!(out.len(), plain.len(), "the 4-byte tag is gone");
    assert_eq!(wire::be16(&out, 12), Some(0x0800), "untagged IPv4");
    let v = view(&out);
    assert_eq!((v.src_mac, v.dst_mac, v.ttl), (WAN_MAC, ROUTER_MAC, 63));
    assert_eq!((v.src, v.dst), (IpAddr::V4(HOST), IpAddr::V4(REMOTE)));
    assert!(traffic::checksums_ok(&out));
    // The IP packet is the one received, TTL and header checksum aside.
    assert_eq!(&out[L3 + 12..], &plain[L3 + 12..]);
}

#[test]
fn untagged_frame_leaves_a_vlan_port_tagged_with_its_id() {
    let mut p = single(with_vlans(router_config(), Some(LAN_VLAN), None)).unwrap();
    learn_host_tagged(&mut p, LAN_VLAN);
    let plain = udp_in(5000);
    let (d, out, _) = one(&mut p, WAN, plain.clone(), ts(1.0));
    assert_eq!(d, Disposition::Tx(LAN));
    assert_eq!(out.len(), plain.len() + 4);
    assert_eq!(tci(&out), LAN_VLAN, "priority 0, DEI 0, the port's id");
    let (ids, inner) = untag(&out);
    assert_eq!(ids, vec![LAN_VLAN]);
    let v = view(&out);
    assert_eq!((v.src_mac, v.dst_mac, v.ttl), (LAN_MAC, HOST_MAC, 63));
    assert_eq!((v.src, v.dst), (IpAddr::V4(REMOTE), IpAddr::V4(HOST)));
    assert!(traffic::checksums_ok(&out));
    assert_eq!(&inner[L3 + 12..], &plain[L3 + 12..]);
}

#[test]
fn vlan_to_vlan_rewrites_the_id() {
    let mut p = single(with_vlans(router_config(), Some(LAN_VLAN), Some(WAN_VLAN))).unwrap();
    let (d, out, _) = one(&mut p, LAN, tag(&udp_out(5000), LAN_VLAN), ts(1.0));
    assert_eq!(d, Disposition::Tx(WAN));
    assert_eq!(tci(&out), WAN_VLAN);
    assert_eq!(out.len(), udp_out(5000).len() + 4);
    assert!(traffic::checksums_ok(&out));
}

#[test]
fn frames_a_port_does_not_take_are_counted_drops() {
    let mut p = single(with_vlans(router_config(), Some(LAN_VLAN), None)).unwrap();
    let cases = [
        // Another VLAN on the VLAN port.
        (
            LAN,
            tag(&udp_out(1), LAN_VLAN + 1),
            DropReason::VlanMismatch,
        ),
        // Untagged on the VLAN port.
        (LAN, udp_out(2), DropReason::VlanMismatch),
        // Tagged (even with the LAN's id, even priority-tagged) on the
        // untagged port.
        (
            WAN,
            tag(&udp_in(3), LAN_VLAN),
            DropReason::TaggedOnUntaggedPort,
        ),
        (WAN, tag(&udp_in(4), 0), DropReason::TaggedOnUntaggedPort),
        // QinQ: two C-tags, an S-tag over a C-tag, a lone S-tag.
        (
            LAN,
            tag(&tag(&udp_out(5), LAN_VLAN), LAN_VLAN),
            DropReason::VlanQinq,
        ),
        (
            LAN,
            tag_with(&tag(&udp_out(6), LAN_VLAN), 0x88a8, 0, 100),
            DropReason::VlanQinq,
        ),
        (
            LAN,
            tag_with(&udp_out(7), 0x88a8, 0, LAN_VLAN),
            DropReason::VlanQinq,
        ),
        (WAN, tag(&tag(&udp_in(8), 1), 2), DropReason::VlanQinq),
    ];
    for (port, f, reason) in &cases {
        let (d, _, g) = one(&mut p, *port, f.clone(), ts(1.0));
        assert_eq!(d, Disposition::Drop(*reason), "{reason:?} on port {port}");
        assert!(g.is_empty());
    }
    assert_eq!(drops(&p, DropReason::VlanMismatch), 2);
    assert_eq!(drops(&p, DropReason::TaggedOnUntaggedPort), 2);
    assert_eq!(drops(&p, DropReason::VlanQinq), 4);
}

#[test]
fn without_vlan_ports_a_tagged_frame_is_dropped_and_untagged_ones_pass() {
    let mut p = single(router_config()).unwrap();
    let (d, _, _) = one(&mut p, LAN, tag(&udp_out(1), 10), ts(1.0));
    assert_eq!(d, Disposition::Drop(DropReason::TaggedOnUntaggedPort));
    let (d, out, _) = one(&mut p, LAN, udp_out(2), ts(1.0));
    assert_eq!(d, Disposition::Tx(WAN));
    assert_eq!(out.len(), udp_out(2).len());
    assert_eq!(drops(&p, DropReason::TaggedOnUntaggedPort), 1);
}

#[test]
fn arp_and_echo_to_the_router_on_a_vlan_port_are_answered_tagged() {
    let mut p = single(with_vlans(router_config(), Some(LAN_VLAN), None)).unwrap();
    let req = wire::arp_request(HOST_MAC, HOST, GW);
    let (d, f, _) = one(&mut p, LAN, tag(&req, LAN_VLAN), ts(1.0));
    assert_eq!(d, Disposition::Tx(LAN));
    assert_eq!(f.len(), req.len() + 4);
    assert_eq!(tci(&f), LAN_VLAN);
    let (_, arp) = untag(&f);
    assert_eq!(&arp[0..6], &HOST_MAC);
    assert_eq!(wire::be16(&arp, 20), Some(2), "ARP reply");
    assert_eq!(&arp[22..28], &LAN_MAC);
    assert_eq!(wire::ipv4_at(&arp, 28), Some(GW));

    let e = traffic::icmp_echo(8, 77, 3, b"abcdefgh");
    let ping = traffic::ipv4(HOST_MAC, LAN_MAC, HOST, GW, 64, 1, PROTO_ICMP, &e);
    let (d, f, _) = one(&mut p, LAN, tag(&ping, LAN_VLAN), ts(1.0));
    assert_eq!(d, Disposition::Tx(LAN));
    assert_eq!(tci(&f), LAN_VLAN);
    let v = view(&f);
    assert_eq!((v.src, v.dst), (IpAddr::V4(GW), IpAddr::V4(HOST)));
    assert_eq!((v.icmp, v.dst_mac), (Some((0, 0)), HOST_MAC));
    assert!(traffic::checksums_ok(&f));
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
fn ipv6_on_a_vlan_port_ndp_and_echo_answered_tagged_forwarded_untagged() {
    let mut p = single(with_vlans(router_config(), Some(LAN_VLAN), None)).unwrap();
    let (d, _, g) = one(
        &mut p,
        LAN,
        tag(&ns_for(GW6, HOST6, HOST_MAC), LAN_VLAN),
        ts(1.0),
    );
    assert_eq!(d, Disposition::Consumed);
    assert_eq!(g.len(), 1);
    assert_eq!((g[0].0, tci(&g[0].1)), (LAN, LAN_VLAN));
    let v = view(&g[0].1);
    assert_eq!(
        (v.icmp, v.dst, v.dst_mac),
        (Some((136, 0)), IpAddr::V6(HOST6), HOST_MAC)
    );
    assert!(traffic::checksums_ok(&g[0].1));

    let e = traffic::icmp_echo(128, 5, 1, b"v6");
    let ping = traffic::ipv6(HOST_MAC, LAN_MAC, HOST6, GW6, 64, PROTO_ICMPV6, &e);
    let (d, f, _) = one(&mut p, LAN, tag(&ping, LAN_VLAN), ts(1.0));
    assert_eq!(d, Disposition::Tx(LAN));
    assert_eq!(tci(&f), LAN_VLAN);
    assert_eq!(view(&f).icmp, Some((129, 0)));
    assert!(traffic::checksums_ok(&f));

    // To the outside: held while the upstream router is solicited, with
    // an untagged NS on the untagged port.
    let out6 = traffic::ipv6(
        HOST_MAC,
        LAN_MAC,
        HOST6,
        REMOTE6,
        64,
        PROTO_UDP,
        &traffic::udp_dgram(1, 2, b"x"),
    );
    let (d, _, g) = one(&mut p, LAN, tag(&out6, LAN_VLAN), ts(1.0));
    assert_eq!(d, Disposition::Consumed);
    assert_eq!(g.len(), 1);
    assert_eq!(g[0].0, WAN);
    assert_eq!(untag(&g[0].1).0, Vec::<u16>::new());
    assert_eq!(view(&g[0].1).icmp, Some((135, 0)));
}

#[test]
fn generated_frames_carry_the_tag_of_their_port() {
    let mut p = single(with_vlans(router_config(), Some(LAN_VLAN), None)).unwrap();
    // TTL 1 from the VLAN port: ICMP time exceeded back out of it, tagged.
    let f = traffic::ipv4(
        HOST_MAC,
        LAN_MAC,
        HOST,
        REMOTE,
        1,
        42,
        PROTO_UDP,
        &traffic::udp_dgram(33000, 33434, b"probe"),
    );
    let (d, _, g) = one(&mut p, LAN, tag(&f, LAN_VLAN), ts(1.0));
    assert_eq!(d, Disposition::Drop(DropReason::TtlExceeded));
    assert_eq!(g.len(), 1);
    assert_eq!(g[0].0, LAN);
    assert_eq!(tci(&g[0].1), LAN_VLAN);
    let v = view(&g[0].1);
    assert_eq!((v.icmp, v.dst), (Some((11, 0)), IpAddr::V4(HOST)));
    assert!(traffic::checksums_ok(&g[0].1));
    // The quote is the packet as received, without the tag.
    let (_, e) = untag(&g[0].1);
    assert_eq!(&e[42..42 + 28], &f[14..14 + 28]);

    // A frame for an unknown host on the VLAN port: the ARP request goes
    // out tagged; once answered (tagged), the held frame follows tagged.
    let (d, _, g) = one(&mut p, WAN, udp_in(6000), ts(2.0));
    assert_eq!(d, Disposition::Consumed, "held until HOST resolves");
    assert_eq!(g.len(), 1);
    assert_eq!(g[0].0, LAN);
    assert_eq!(tci(&g[0].1), LAN_VLAN);
    let (_, arp) = untag(&g[0].1);
    assert_eq!(wire::be16(&arp, 12), Some(0x0806));
    assert_eq!(wire::ipv4_at(&arp, 38), Some(HOST), "who has HOST");
    let reply = tag(&wire::arp_reply(HOST_MAC, HOST, LAN_MAC, GW), LAN_VLAN);
    let (d, _, g) = one(&mut p, LAN, reply, ts(2.1));
    assert_eq!(d, Disposition::Consumed);
    assert_eq!(g.len(), 1, "the held frame");
    assert_eq!((g[0].0, tci(&g[0].1)), (LAN, LAN_VLAN));
    let v = view(&g[0].1);
    assert_eq!(
        (v.dst_mac, v.dst, v.dport),
        (HOST_MAC, IpAddr::V4(HOST), 6000)
    );
    assert!(traffic::checksums_ok(&g[0].1));
}

#[test]
fn nat_translates_through_a_vlan_port_both_ways() {
    let mut p = single(with_vlans(nat_config(), Some(LAN_VLAN), None)).unwrap();
    learn_host_tagged(&mut p, LAN_VLAN);
    let syn = traffic::ipv4(
        HOST_MAC,
        LAN_MAC,
        HOST,
        REMOTE,
        64,
        1,
        PROTO_TCP,
        &traffic::tcp_seg(40000, 443, 1, 0, tcp::SYN, b""),
    );
    let (d, out, _) = one(&mut p, LAN, tag(&syn, LAN_VLAN), ts(1.0));
    assert_eq!(d, Disposition::Tx(WAN));
    assert_eq!(out.len(), syn.len(), "untagged on the outside");
    let v = view(&out);
    assert_eq!(v.dst, IpAddr::V4(REMOTE));
    let IpAddr::V4(public) = v.src else {
        panic!("IPv4")
    };
    assert_ne!(public, HOST, "translated");
    assert!(traffic::checksums_ok(&out));
    let ext_port = v.sport;

    let synack = traffic::ipv4(
        ROUTER_MAC,
        WAN_MAC,
        REMOTE,
        public,
        64,
        2,
        PROTO_TCP,
        &traffic::tcp_seg(443, ext_port, 9, 2, tcp::SYN | tcp::ACK, b""),
    );
    let (d, back, _) = one(&mut p, WAN, synack.clone(), ts(1.1));
    assert_eq!(d, Disposition::Tx(LAN));
    assert_eq!(back.len(), synack.len() + 4);
    assert_eq!(tci(&back), LAN_VLAN);
    let v = view(&back);
    assert_eq!((v.dst, v.dport), (IpAddr::V4(HOST), 40000));
    assert_eq!((v.src, v.sport), (IpAddr::V4(REMOTE), 443));
    assert_eq!(v.dst_mac, HOST_MAC);
    assert!(traffic::checksums_ok(&back));
}

#[test]
fn a_frame_that_cannot_grow_is_a_counted_drop_not_an_untagged_send() {
    let mut p = single(with_vlans(router_config(), Some(LAN_VLAN), None)).unwrap();
    learn_host_tagged(&mut p, LAN_VLAN);
    let mut buf = udp_in(5000);
    let mut frames: Vec<&mut [u8]> = vec![&mut buf[..]];
    let mut out = Output::default();
    p.process(WAN, &mut frames, ts(1.0), &mut out);
    assert_eq!(
        out.dispositions,
        vec![Disposition::Drop(DropReason::VlanNoHeadroom)]
    );
    assert_eq!(drops(&p, DropReason::VlanNoHeadroom), 1);
    // A slice can shrink: a tagged frame arriving as one is untagged.
    let mut buf = tag(&udp_out(1), LAN_VLAN);
    let mut frames: Vec<&mut [u8]> = vec![&mut buf[..]];
    p.process(LAN, &mut frames, ts(1.0), &mut out);
    assert_eq!(out.dispositions, vec![Disposition::Tx(WAN)]);
    assert_eq!(frames[0].len(), udp_out(1).len());
    assert!(traffic::checksums_ok(frames[0]));
}

#[test]
fn vlan_is_validated_naming_the_field() {
    let text = |port_line: &str, vlan: &str| {
        config_text_with(port_line, &format!("{port_line}\nvlan = {vlan}"))
    };
    // The LAN port's `mtu = 1500` comes first in the example.
    let bad = |v: &str| {
        Config::from_toml_str(&text("mtu = 1500", v))
            .unwrap_err()
            .field()
            .to_string()
    };
    assert_eq!(bad("0"), "ports[0].vlan");
    assert_eq!(bad("4095"), "ports[0].vlan");
    assert!(Config::from_toml_str(&text("mtu = 1500", "-1")).is_err());
    for ok in [1u16, 4094] {
        let c = Config::from_toml_str(&text("mtu = 1500", &ok.to_string())).unwrap();
        assert_eq!((c.ports[0].vlan, c.ports[1].vlan), (Some(ok), None));
    }
    let absent = Config::from_toml_str(dataplane::config::DEFAULT_CONFIG).unwrap();
    assert!(absent.ports.iter().all(|p| p.vlan.is_none()));
}

mod random {
    use super::*;
    use dataplane::PortId;
    use proptest::prelude::*;

    /// Frames for either port: forwarded, local (ARP, echo), TTL 1, to an
    /// unknown host, TCP through the NAT.
    fn templates() -> Vec<Vec<u8>> {
        let echo = traffic::icmp_echo(8, 9, 1, b"ping");
        vec![
            udp_out(1000),
            udp_in(2000),
            wire::arp_request(HOST_MAC, HOST, GW),
            wire::arp_request(ROUTER_MAC, ROUTER, WAN_IP),
            traffic::ipv4(HOST_MAC, LAN_MAC, HOST, GW, 64, 1, PROTO_ICMP, &echo),
            traffic::ipv4(
                ROUTER_MAC, WAN_MAC, REMOTE, WAN_IP, 64, 1, PROTO_ICMP, &echo,
            ),
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
            traffic::ipv4(
                HOST_MAC,
                LAN_MAC,
                HOST2,
                REMOTE,
                64,
                1,
                PROTO_TCP,
                &traffic::tcp_seg(40000, 443, 1, 0, tcp::SYN, b""),
            ),
        ]
    }

    /// A template, tagged in one of several ways, maybe with a byte changed.
    fn frame() -> impl Strategy<Value = Vec<u8>> {
        let t = templates();
        let n = t.len();
        (
            0..n,
            0u8..6,
            proptest::option::of((any::<u16>(), any::<u8>())),
        )
            .prop_map(move |(i, how, m)| {
                let f = &t[i];
                let mut f = match how {
                    0 => f.clone(),
                    1 | 2 => tag(f, LAN_VLAN),
                    3 => tag(f, WAN_VLAN),
                    4 => tag(f, 0),
                    _ => tag(&tag(f, LAN_VLAN), LAN_VLAN),
                };
                if let Some((pos, b)) = m {
                    let l = f.len();
                    f[usize::from(pos) % l] ^= b;
                }
                f
            })
    }

    proptest! {
        /// Whatever comes in, every frame leaving the VLAN port carries
        /// exactly its tag and every frame leaving the untagged port none.
        #[test]
        fn every_frame_out_carries_exactly_its_ports_tag(
            input in proptest::collection::vec((0u16..2, frame(), 0u64..2_000_000_000), 1..40)
        ) {
            let mut p = single(with_vlans(nat_config(), Some(LAN_VLAN), None)).unwrap();
            let want = |port: PortId| -> Vec<u16> {
                if port == LAN { vec![LAN_VLAN] } else { vec![] }
            };
            let mut now = 1_000_000_000u64;
            let mut out = Output::default();
            for (port, f, dt) in input {
                now += dt;
                let t = dataplane::Timestamp::from_nanos(now);
                p.poll_timers(t);
                let mut frames = vec![f];
                p.process(port, &mut frames, t, &mut out);
                prop_assert_eq!(out.dispositions.len(), 1);
                prop_assert_eq!(out.generated.len(), out.generated_cause.len());
                if let Disposition::Tx(e) = out.dispositions[0] {
                    let c = wire::classify(&frames[0]);
                    prop_assert!(c.is_ok(), "sent frame classifies");
                    let c = c.unwrap();
                    prop_assert_eq!(c.vlans[..usize::from(c.vlan_count)].to_vec(), want(e));
                }
                for (e, g) in &out.generated {
                    let c = wire::classify(g);
                    prop_assert!(c.is_ok(), "generated frame classifies");
                    let c = c.unwrap();
                    prop_assert_eq!(c.vlans[..usize::from(c.vlan_count)].to_vec(), want(*e));
                }
            }
        }
    }
}
