//! Captures of every replayed link type (pcap and pcapng), generated here:
//! each replayed with its output frames decoded and checked; the same
//! traffic as Ethernet, Linux cooked (SLL, SLL2), raw IP and loopback
//! replays to identical outputs; link types that cannot be replayed are
//! refused by name. (FCS, timestamps and pcapng options:
//! `replay_capture_quirks.rs`.)

#[path = "common/captures.rs"]
mod captures;
mod common;

use captures::*;
use common::*;
use core::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use dataplane::replay::{MemSink, Packet, ReplayError, SkipReason, replay_files};
use dataplane::traffic;
use dataplane::wire::{self, PROTO_ICMP, PROTO_UDP};

/// Write the LAN capture of `link` as pcap or pcapng.
fn lan_capture(dir: &Path, link: Link, ng: bool) -> PathBuf {
    let recs: Vec<(u64, Vec<u8>)> = lan_frames(link)
        .into_iter()
        .filter(|(_, f)| link != Link::Raw(228) || f[12..14] == [0x08, 0x00])
        .map(|(t, f)| (t, encap(link, &f)))
        .collect();
    let name = format!(
        "lan-{}-{link:?}.{}",
        link.number(),
        if ng { "pcapng" } else { "pcap" }
    );
    let path = dir.join(name.replace(['(', ')'], ""));
    if ng {
        let recs: Vec<_> = recs.into_iter().map(|(t, d)| (0, t, d, vec![])).collect();
        write_pcapng(&path, vec![], &[(link.number(), vec![])], &recs);
    } else {
        write_pcap(&path, link.number(), true, &recs);
    }
    path
}

// ---------------------------------------------------------------------
// Tests.

/// Each link type, in pcap and pcapng: the outbound UDP leaves the WAN
/// translated (decoded: MACs, addresses, ports, TTL, payload, checksums),
/// the ARP request (where the link carries ARP) and the IPv4 and IPv6 echo
/// requests to the gateway are answered, to the sender's MAC or, for a
/// capture without Ethernet, to the documented synthesised MAC.
#[test]
fn every_link_type_replays_with_decoded_outputs() {
    let dir = temp_dir("linktypes");
    for link in all_links() {
        for ng in [false, true] {
            let what = format!("{link:?} {}", if ng { "pcapng" } else { "pcap" });
            let input = lan_capture(&dir, link, ng);
            let out = dir.join(format!("out-{}-{ng}", link.number()));
            let s = replay_files(nat_config(), &[(LAN, input)], &out)
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            let n_in = lan_frames(link)
                .iter()
                .filter(|(_, f)| link != Link::Raw(228) || f[12..14] == [0x08, 0x00])
                .count() as u64;
            assert_eq!(s.packets_in, n_in, "{what}: {s:?}");
            assert_eq!(s.drops.values().sum::<u64>(), 0, "{what}: {:?}", s.drops);
            let (lan, wan) = outputs(&out);
            if link == Link::Raw(229) {
                assert!(wan.is_empty(), "{what}");
            } else {
                // The UDP flow, translated.
                assert_eq!(wan.len(), 1, "{what}: {wan:?}");
                let (ts, f) = &wan[0];
                assert_eq!(*ts, 1_000_000_000, "{what}: output carries the input time");
                let v = view(f);
                assert_eq!(v.dst_mac, ROUTER_MAC, "{what}");
                assert_eq!(v.src_mac, WAN_MAC, "{what}");
                assert!(
                    v.src == IpAddr::V4(POOL1) || v.src == IpAddr::V4(POOL2),
                    "{what}: {v:?}"
                );
                assert_eq!(v.dst, IpAddr::V4(REMOTE), "{what}");
                assert_eq!((v.proto, v.dport, v.ttl), (PROTO_UDP, 53, 63), "{what}");
                assert!(f.ends_with(b"query"), "{what}");
                assert!(traffic::checksums_ok(f), "{what}");
            }
            // LAN side.
            let arps: Vec<_> = lan.iter().filter_map(|(_, f)| arp(f)).collect();
            let ip4: Vec<_> = lan
                .iter()
                .filter(|(_, f)| f[12..14] == [0x08, 0x00])
                .map(|(_, f)| f)
                .collect();
            let ip6: Vec<_> = lan
                .iter()
                .filter(|(_, f)| f[12..14] == [0x86, 0xdd])
                .map(|(_, f)| f)
                .collect();
            // Local replies go back to the requester's MAC: the host's, or
            // the synthesised source of a capture without Ethernet.
            let peer = if link.has_l2() { HOST_MAC } else { SYNTH };
            if link.has_l2() {
                assert_eq!(arps, vec![(2, GW, HOST)], "{what}: ARP reply");
            } else {
                assert!(arps.is_empty(), "{what}: {lan:?}");
            }
            if link != Link::Raw(229) {
                assert_eq!(ip4.len(), 1, "{what}: {lan:?}");
                let v = view(ip4[0]);
                assert_eq!((v.dst_mac, v.src_mac), (peer, LAN_MAC), "{what}");
                assert_eq!(ipv4_src_dst(ip4[0]), (GW, HOST), "{what}");
                assert_eq!(v.icmp, Some((0, 0)), "{what}: echo reply");
                assert!(ip4[0].ends_with(b"ping"), "{what}");
            }
            if link != Link::Raw(228) {
                assert_eq!(ip6.len(), 1, "{what}: {lan:?}");
                let v = view(ip6[0]);
                assert_eq!((v.dst_mac, v.src_mac), (peer, LAN_MAC), "{what}");
                assert_eq!(
                    (v.src, v.dst),
                    (IpAddr::V6(GW6), IpAddr::V6(HOST6)),
                    "{what}"
                );
                assert_eq!(v.icmp.map(|t| t.0), Some(129), "{what}: echo reply");
                assert!(ip6[0].ends_with(b"ping6"), "{what}");
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A mixed two-port scenario: ARP, flows from two hosts, replies to their
/// translated endpoints (from a first in-memory replay), IPv6, probes.
fn scenario() -> (Vec<Packet>, Vec<Packet>) {
    let mut lan = vec![
        Packet {
            ts_ns: 1_000,
            data: wire::arp_request(HOST_MAC, HOST, GW),
        },
        Packet {
            ts_ns: 2_000,
            data: wire::arp_request(HOST2_MAC, HOST2, GW),
        },
    ];
    for k in 0..120u16 {
        let (mac, ip) = if k % 2 == 0 {
            (HOST_MAC, HOST)
        } else {
            (HOST2_MAC, HOST2)
        };
        let dst = Ipv4Addr::new(198, 51, 100, 1 + (k % 50) as u8);
        let l4 = if k % 3 == 0 {
            traffic::icmp_echo(8, k, 1, b"p")
        } else {
            traffic::udp_dgram(30000 + k, 53, b"q")
        };
        let proto = if k % 3 == 0 { PROTO_ICMP } else { PROTO_UDP };
        lan.push(Packet {
            ts_ns: 1_000_000_000 + u64::from(k) * 1_000_000,
            data: traffic::ipv4(mac, LAN_MAC, ip, dst, 64, k, proto, &l4),
        });
    }
    lan.push(Packet {
        ts_ns: 1_500_000_000,
        data: echo6_to_gw(),
    });
    let mut sink = MemSink::default();
    dataplane::replay::replay_packets(nat_config(), vec![(LAN, lan.clone())], &mut sink).unwrap();
    let mut wan = Vec::new();
    for p in sink.ports.get(&WAN).into_iter().flatten() {
        let (s, d) = ipv4_src_dst(&p.data);
        let c = wire::classify(&p.data).unwrap();
        let t = c.tuple.unwrap();
        let l4 = if t.proto == PROTO_UDP {
            traffic::udp_dgram(t.dst_port, t.src_port, b"a")
        } else {
            traffic::icmp_echo(0, t.src_port, 1, b"p")
        };
        wan.push(Packet {
            ts_ns: p.ts_ns + 10_000_000,
            data: traffic::ipv4(ROUTER_MAC, WAN_MAC, d, s, 60, 1, t.proto, &l4),
        });
    }
    (lan, wan)
}

/// Rewrite an Ethernet frame as the dataplane promises to synthesise it
/// from a capture without Ethernet: source 02:70:63:61:70:00.
fn as_synthesised(f: &[u8]) -> Vec<u8> {
    let mut f = f.to_vec();
    f[6..12].copy_from_slice(&SYNTH);
    f
}

fn replay_both(dir: &Path, name: &str, lan: &Path, wan: &Path) -> (Vec<u8>, Vec<u8>) {
    let out = dir.join(name);
    replay_files(nat_config(), &[(LAN, lan.into()), (WAN, wan.into())], &out).unwrap();
    (
        std::fs::read(out.join("lan.pcap")).unwrap(),
        std::fs::read(out.join("wan.pcap")).unwrap(),
    )
}

/// The same traffic as Ethernet and as Linux cooked captures (SLL, SLL2;
/// pcap and pcapng) replays to byte-identical outputs; IP-only traffic as
/// raw IP or loopback replays like the Ethernet frames the dataplane says
/// it synthesises.
#[test]
fn same_traffic_in_ethernet_and_cooked_or_raw_captures_replays_identically() {
    let dir = temp_dir("linktype-equal");
    let (lan, wan) = scenario();
    assert!(wan.len() >= 100, "replies: {}", wan.len());
    let recs = |v: &[Packet], link: Link| -> Vec<(u64, Vec<u8>)> {
        v.iter().map(|p| (p.ts_ns, encap(link, &p.data))).collect()
    };
    let write = |name: &str, link: Link, ng: bool, v: &[(u64, Vec<u8>)]| -> PathBuf {
        let p = dir.join(name);
        if ng {
            let r: Vec<_> = v.iter().map(|(t, d)| (0, *t, d.clone(), vec![])).collect();
            write_pcapng(&p, vec![], &[(link.number(), vec![])], &r);
        } else {
            write_pcap(&p, link.number(), true, v);
        }
        p
    };
    let eth = replay_both(
        &dir,
        "eth",
        &write(
            "lan-eth.pcap",
            Link::Ethernet,
            false,
            &recs(&lan, Link::Ethernet),
        ),
        &write(
            "wan-eth.pcap",
            Link::Ethernet,
            false,
            &recs(&wan, Link::Ethernet),
        ),
    );
    assert!(
        eth.0.len() > 24 + 100 && eth.1.len() > 24 * 50,
        "outputs have packets"
    );
    for link in [Link::Sll, Link::Sll2] {
        for ng in [false, true] {
            let n = format!("{}-{ng}", link.number());
            let got = replay_both(
                &dir,
                &format!("out-{n}"),
                &write(&format!("lan-{n}"), link, ng, &recs(&lan, link)),
                &write(&format!("wan-{n}"), link, ng, &recs(&wan, link)),
            );
            assert!(
                got.0 == eth.0,
                "{link:?} ng={ng}: lan.pcap differs from Ethernet's"
            );
            assert!(
                got.1 == eth.1,
                "{link:?} ng={ng}: wan.pcap differs from Ethernet's"
            );
        }
    }
    // IP only (no ARP): raw and loopback captures against Ethernet frames
    // with the synthesised source MAC.
    let ip_only = |v: &[Packet]| -> Vec<Packet> {
        v.iter()
            .filter(|p| arp(&p.data).is_none())
            .cloned()
            .collect()
    };
    let (lan_ip, wan_ip) = (ip_only(&lan), ip_only(&wan));
    let synth = |v: &[Packet]| -> Vec<(u64, Vec<u8>)> {
        v.iter()
            .map(|p| (p.ts_ns, as_synthesised(&p.data)))
            .collect()
    };
    let reference = replay_both(
        &dir,
        "synth",
        &write("lan-synth.pcap", Link::Ethernet, false, &synth(&lan_ip)),
        &write("wan-synth.pcap", Link::Ethernet, false, &synth(&wan_ip)),
    );
    assert!(reference.1.len() > 24 * 50);
    for link in [Link::Raw(101), Link::Raw(12), Link::Null(true), Link::Loop] {
        let n = link.number();
        let got = replay_both(
            &dir,
            &format!("out-ip-{n}"),
            &write(&format!("lan-ip-{n}"), link, false, &recs(&lan_ip, link)),
            &write(&format!("wan-ip-{n}"), link, true, &recs(&wan_ip, link)),
        );
        assert!(
            got == reference,
            "{link:?}: outputs differ from the synthesised Ethernet"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Link types that cannot be replayed: a pcap is refused with an error
/// naming the link type; pcapng packets on such an interface are skipped
/// and counted while the Ethernet interface's packets replay.
#[test]
fn link_types_that_cannot_be_replayed_are_named() {
    let dir = temp_dir("unsupported");
    let arp = arp_from_host();
    for (lt, name) in [(105u32, "IEEE802_11 (105)"), (147, "(147)"), (9, "PPP (9)")] {
        let p = dir.join(format!("lt{lt}.pcap"));
        write_pcap(&p, lt, false, &[(0, arp.clone())]);
        let e = replay_files(router_config(), &[(LAN, p)], &dir.join("out")).unwrap_err();
        assert!(
            matches!(&e, ReplayError::UnsupportedLinkType { linktype, .. } if *linktype == lt),
            "{e}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains(name) && msg.contains(&format!("lt{lt}.pcap")),
            "{msg}"
        );
        assert!(msg.contains("cannot be replayed"), "{msg}");
    }
    let p = dir.join("mixed.pcapng");
    write_pcapng(
        &p,
        vec![],
        &[(1, vec![]), (105, vec![])],
        &[
            (1, 1, vec![0u8; 40], vec![]),
            (0, 2, arp.clone(), vec![]),
            (1, 3, vec![0u8; 40], vec![]),
        ],
    );
    let s = replay_files(router_config(), &[(LAN, p)], &dir.join("out")).unwrap();
    assert_eq!(s.packets_in, 1);
    assert_eq!(s.arp_replies, 1);
    assert_eq!(s.skipped.get(&SkipReason::UnsupportedLinkType), Some(&2));
    let j = serde_json::to_value(&s).unwrap();
    assert_eq!(j["skipped"]["unsupported_link_type"], 2, "{j}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Records too short for their link-layer header are counted `malformed`
/// (not an error, no panic).
#[test]
fn records_shorter_than_their_link_header_are_malformed_drops() {
    let dir = temp_dir("short-link");
    for link in [
        Link::Sll,
        Link::Sll2,
        Link::Null(true),
        Link::Loop,
        Link::Raw(101),
    ] {
        let p = dir.join("short.pcap");
        write_pcap(&p, link.number(), true, &[(1, vec![0, 1, 2]), (2, vec![])]);
        let s = replay_files(router_config(), &[(LAN, p)], &dir.join("out")).unwrap();
        assert_eq!(s.packets_in, 2, "{link:?}");
        assert_eq!(s.packets_out, 0, "{link:?}");
        assert_eq!(s.drops.values().sum::<u64>(), 2, "{link:?}: {:?}", s.drops);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

proptest::proptest! {
    /// Arbitrary records of every link type (garbage headers, truncated
    /// frames, FCS bits) replay without error or panic, every record fed
    /// to the pipeline.
    #[test]
    fn arbitrary_records_of_any_link_type_never_fail(
        field in proptest::sample::select(vec![
            1u32, 0x2400_0001, 0x3000_0001, 113, 276, 101, 12, 14, 228, 229, 0, 108,
        ]),
        recs in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80), 1..12),
    ) {
        let dir = temp_dir(&format!("arbitrary-{field}"));
        let p = dir.join("in.pcap");
        let recs: Vec<(u64, Vec<u8>)> =
            recs.into_iter().enumerate().map(|(i, d)| (i as u64 * 1000, d)).collect();
        write_pcap(&p, field, true, &recs);
        let s = replay_files(nat_config(), &[(LAN, p)], &dir.join("out"))
            .map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
        proptest::prop_assert_eq!(s.packets_in, recs.len() as u64);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
