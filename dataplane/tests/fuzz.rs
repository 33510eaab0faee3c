//! Fuzz-style property test: random and mutated frames through the whole
//! pipeline (with NAT) never panic, every frame gets a disposition, in-place
//! rewrites keep the length, counters add up, and every generated frame is
//! well-formed. Iterations: `PROPTEST_CASES` (proptest reads it).

mod common;

use common::*;
use core::net::Ipv4Addr;
use dataplane::config::Config;
use dataplane::pipeline::{Disposition, Output, Pipeline, single};
use dataplane::traffic::{self, tcp};
use dataplane::wire::{self, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};
use dataplane::{PortId, Timestamp};
use proptest::prelude::*;

fn templates() -> Vec<Vec<u8>> {
    let mut v = vec![
        traffic::ipv4(
            HOST_MAC,
            LAN_MAC,
            HOST,
            REMOTE,
            64,
            1,
            PROTO_TCP,
            &traffic::tcp_seg(40000, 443, 1, 0, tcp::SYN, &[]),
        ),
        traffic::ipv4(
            HOST_MAC,
            LAN_MAC,
            HOST,
            REMOTE,
            64,
            2,
            PROTO_UDP,
            &traffic::udp_dgram(40001, 53, b"hello"),
        ),
        traffic::ipv4(
            HOST_MAC,
            LAN_MAC,
            HOST,
            REMOTE,
            64,
            3,
            PROTO_ICMP,
            &traffic::icmp_echo(8, 5, 1, b"ping"),
        ),
        traffic::ipv4(
            ROUTER_MAC,
            WAN_MAC,
            REMOTE,
            POOL1,
            60,
            4,
            PROTO_TCP,
            &traffic::tcp_seg(443, 8080, 1, 0, tcp::SYN, &[]),
        ),
        traffic::ipv4(
            ROUTER_MAC,
            WAN_MAC,
            REMOTE,
            POOL1,
            60,
            5,
            PROTO_UDP,
            &traffic::udp_dgram(53, 40001, b"answer"),
        ),
        traffic::ipv6(
            HOST_MAC,
            LAN_MAC,
            HOST6,
            REMOTE6,
            64,
            PROTO_UDP,
            &traffic::udp_dgram(1, 2, b"v6"),
        ),
        traffic::ipv6(
            HOST_MAC,
            LAN_MAC,
            HOST6,
            GW6,
            64,
            PROTO_ICMPV6,
            &traffic::icmp_echo(128, 1, 1, b"v6"),
        ),
        wire::arp_request(HOST_MAC, HOST, GW),
        wire::arp_reply(ROUTER_MAC, ROUTER, WAN_MAC, WAN_IP),
    ];
    // ICMP error from outside quoting a translated packet.
    let inner = traffic::ipv4(
        WAN_MAC,
        ROUTER_MAC,
        POOL1,
        REMOTE,
        1,
        9,
        PROTO_UDP,
        &traffic::udp_dgram(40001, 53, b"x"),
    );
    v.push(
        wire::icmpv4_error(ROUTER_MAC, WAN_MAC, ROUTER, &inner, 14, inner.len(), 11, 0).unwrap(),
    );
    // Edges of the forwarding path: to own addresses inside and outside,
    // untranslated inbound to an inside host, broadcast, inside to inside,
    // a reply to the TCP SYN above and one to the port-forwarded server.
    let udp = |smac, dmac, src, dst, sp, dp| {
        traffic::ipv4(
            smac,
            dmac,
            src,
            dst,
            64,
            6,
            PROTO_UDP,
            &traffic::udp_dgram(sp, dp, b"edge"),
        )
    };
    v.push(udp(HOST_MAC, LAN_MAC, HOST, GW, 40002, 53));
    v.push(udp(ROUTER_MAC, WAN_MAC, REMOTE, WAN_IP, 53, 40003));
    v.push(udp(ROUTER_MAC, WAN_MAC, REMOTE, HOST, 53, 40001));
    v.push(udp(HOST_MAC, LAN_MAC, HOST, Ipv4Addr::BROADCAST, 68, 67));
    v.push(udp(HOST_MAC, LAN_MAC, HOST, HOST2, 40004, 9));
    v.push(traffic::ipv4(
        ROUTER_MAC,
        WAN_MAC,
        REMOTE,
        POOL1,
        60,
        7,
        PROTO_TCP,
        &traffic::tcp_seg(443, 40000, 1, 2, tcp::SYN | tcp::ACK, &[]),
    ));
    // Established TCP both ways (ACK only, then FIN) on the SYN's tuple.
    let tcp_seg = |smac, dmac, src, dst, sp, dp, flags| {
        traffic::ipv4(
            smac,
            dmac,
            src,
            dst,
            64,
            8,
            PROTO_TCP,
            &traffic::tcp_seg(sp, dp, 2, 2, flags, &[]),
        )
    };
    v.push(tcp_seg(
        HOST_MAC,
        LAN_MAC,
        HOST,
        REMOTE,
        40000,
        443,
        tcp::ACK,
    ));
    v.push(tcp_seg(
        ROUTER_MAC,
        WAN_MAC,
        REMOTE,
        POOL1,
        443,
        40000,
        tcp::ACK,
    ));
    v.push(tcp_seg(
        HOST_MAC,
        LAN_MAC,
        HOST,
        REMOTE,
        40000,
        443,
        tcp::FIN | tcp::ACK,
    ));
    v.push(tcp_seg(
        ROUTER_MAC,
        WAN_MAC,
        REMOTE,
        POOL1,
        443,
        40000,
        tcp::RST,
    ));
    // A first fragment and a non-first fragment.
    let mut frag = v[1].clone();
    frag[20] = 0x20;
    frag[24] = 0;
    frag[25] = 0;
    let c = wire::checksum(&frag[14..34]);
    frag[24..26].copy_from_slice(&c.to_be_bytes());
    v.push(frag.clone());
    let mut nf = frag;
    nf[20] = 0x00;
    nf[21] = 0x10;
    v.push(nf);
    // VLAN-tagged.
    let mut vl = v[1][..12].to_vec();
    vl.extend_from_slice(&[0x81, 0x00, 0x00, 0x0a]);
    vl.extend_from_slice(&v[1][12..]);
    v.push(vl);
    v
}

fn frame() -> impl Strategy<Value = Vec<u8>> {
    let t = templates();
    let n = t.len();
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..160),
        (
            0..n,
            proptest::collection::vec((any::<u16>(), any::<u8>()), 0..6),
            any::<u16>()
        )
            .prop_map(move |(i, muts, cut)| {
                let mut f = t[i].clone();
                for (pos, b) in muts {
                    let l = f.len();
                    if l > 0 {
                        f[usize::from(pos) % l] = b;
                    }
                }
                if cut % 4 == 0 {
                    let l = f.len();
                    f.truncate(usize::from(cut) % (l + 1));
                }
                f
            }),
    ]
}

proptest! {
    #[test]
    fn random_frames_through_the_whole_pipeline(
        input in proptest::collection::vec((0u16..3, frame(), 0u64..2_000_000_000), 1..48)
    ) {
        let mut p = single(nat_config()).unwrap();
        learn_hosts(&mut p, Timestamp::from_nanos(0));
        let mut now = 1_000_000_000u64;
        let mut out = Output::default();
        let mut fed = 0u64;
        let mut accounted = 0u64;
        for (port, f, dt) in input {
            now += dt;
            let t = Timestamp::from_nanos(now);
            p.poll_timers(t);
            let len = f.len();
            let mut frames = vec![f];
            p.process(port as PortId, &mut frames, t, &mut out);
            prop_assert_eq!(out.dispositions.len(), 1);
            prop_assert_eq!(out.generated.len(), out.generated_cause.len());
            if usize::from(port) < 2 {
                fed += 1;
            }
            accounted += 1;
            if let Disposition::Tx(e) = out.dispositions[0] {
                prop_assert!(e < 2);
                prop_assert_eq!(frames[0].len(), len, "in-place rewrite keeps the length");
            }
            for (e, g) in &out.generated {
                prop_assert!(*e < 2);
                prop_assert!(wire::classify(g).is_ok(), "generated frame is well-formed: {:?}", g);
            }
        }
        let s = p.shared().counters.snapshot(&p.shared().port_names());
        prop_assert_eq!(s.rx.values().sum::<u64>(), fed + 3, "rx counts every frame on a real port (+3 ARP)");
        prop_assert!(accounted >= fed);
        // After everything expires, no NAT state is left behind.
        let far = Timestamp::from_nanos(now + 400 * 1_000_000_000 * 20);
        for _ in 0..64 {
            p.poll_timers(far);
        }
        if let Some(n) = &p.shared().nat {
            let sm = n.summary();
            prop_assert_eq!(sm.sessions_active, 0);
            prop_assert_eq!(sm.ports_in_use, 0);
        }
    }
}

/// A template frame as it is, or [`frame_fixed`]: flows repeat, so
/// established sessions, refreshes and TCP state changes get exercised.
fn frame_or_template() -> impl Strategy<Value = Vec<u8>> {
    let t = templates();
    let n = t.len();
    prop_oneof![
        1 => frame_fixed(),
        2 => (0..n).prop_map(move |i| t[i].clone()),
    ]
}

/// [`frame`], and for IPv4 frames sometimes a TTL of 0 to 2, with the
/// header checksum made right again (so mutated headers still get past the
/// checks that look at it).
fn frame_fixed() -> impl Strategy<Value = Vec<u8>> {
    (frame(), 0u8..6).prop_map(|(mut f, ttl)| {
        if f.len() >= 34 && f[12..14] == [0x08, 0x00] && f[14] >> 4 == 4 {
            if ttl < 3 {
                f[22] = ttl;
            }
            let hl = usize::from(f[14] & 0x0f) * 4;
            if hl >= 20 && f.len() >= 14 + hl {
                f[24] = 0;
                f[25] = 0;
                let c = wire::checksum(&f[14..14 + hl]);
                f[24..26].copy_from_slice(&c.to_be_bytes());
            }
        }
        f
    })
}

/// The IPv4 fast lanes are exact: random, mutated and repeated frames
/// (bursts of one to four; gaps under 1 ms, up to 3 s or sometimes
/// minutes, so refreshes, TCP state changes and expiry happen) through a
/// pipeline with them and one without give the same dispositions, frame
/// bytes, generated frames, NAT state after every step, and counters.
#[test]
fn fast_lanes_change_no_result() {
    let strategy = proptest::collection::vec(
        (
            0u16..2,
            proptest::collection::vec(frame_or_template(), 1..5),
            prop_oneof![
                3 => 0u64..1_000_000,
                3 => 0u64..3_000_000_000,
                1 => 0u64..400_000_000_000
            ],
        ),
        1..64,
    );
    let mut runner = proptest::test_runner::TestRunner::default();
    let r = runner.run(&strategy, |input| {
        let mut fast = single(nat_config()).unwrap();
        let mut slow = single(nat_config()).unwrap();
        slow.set_fast_lanes(false);
        let mut now = 1_000_000_000u64;
        for p in [&mut fast, &mut slow] {
            learn_hosts(p, Timestamp::from_nanos(0));
        }
        let (mut oa, mut ob) = (Output::default(), Output::default());
        for (port, frames, dt) in input {
            now += dt;
            let t = Timestamp::from_nanos(now);
            let work = slow.poll_timers(t);
            prop_assert_eq!(fast.poll_timers(t), work);
            let mut fa = frames.clone();
            let mut fb = frames;
            fast.process(port as PortId, &mut fa, t, &mut oa);
            slow.process(port as PortId, &mut fb, t, &mut ob);
            prop_assert_eq!(&oa.dispositions, &ob.dispositions);
            prop_assert_eq!(&fa, &fb);
            prop_assert_eq!(&oa.generated, &ob.generated);
            prop_assert_eq!(&oa.generated_cause, &ob.generated_cause);
            let st = |p: &dataplane::pipeline::Pipeline| {
                p.shared().nat.as_ref().map(|n| {
                    let s = n.lock(0).stats();
                    (
                        s.sessions_active,
                        s.expired,
                        s.lazily_expired,
                        s.ports_in_use,
                    )
                })
            };
            prop_assert_eq!(st(&fast), st(&slow));
        }
        let names = fast.shared().port_names();
        let (sa, sb) = (
            fast.shared().counters.snapshot(&names),
            slow.shared().counters.snapshot(&names),
        );
        prop_assert_eq!(format!("{sa:?}"), format!("{sb:?}"));
        let nat = |p: &dataplane::pipeline::Pipeline| {
            p.shared()
                .nat
                .as_ref()
                .map(|n| format!("{:?}", n.summary()))
        };
        prop_assert_eq!(nat(&fast), nat(&slow));
        Ok(())
    });
    if let Err(e) = r {
        panic!("{e}");
    }
}

/// A small valid capture (pcap or pcapng) to corrupt.
fn capture(pcapng: bool) -> Vec<u8> {
    let frames = templates();
    let mut buf = Vec::new();
    if pcapng {
        use pcap_file::pcapng::PcapNgWriter;
        use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
        use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
        let mut w = PcapNgWriter::new(&mut buf).unwrap();
        w.write_pcapng_block(InterfaceDescriptionBlock {
            linktype: pcap_file::DataLink::ETHERNET,
            snaplen: 0,
            options: vec![],
        })
        .unwrap();
        for (i, f) in frames.iter().enumerate() {
            w.write_pcapng_block(EnhancedPacketBlock {
                interface_id: 0,
                timestamp: core::time::Duration::from_nanos(1000 * i as u64),
                original_len: f.len() as u32,
                data: f.clone().into(),
                options: vec![],
            })
            .unwrap();
        }
    } else {
        let mut w =
            pcap_file::pcap::PcapWriter::with_header(&mut buf, dataplane::replay::out_header())
                .unwrap();
        for (i, f) in frames.iter().enumerate() {
            let ts = core::time::Duration::from_micros(i as u64);
            w.write_packet(&pcap_file::pcap::PcapPacket::new(ts, f.len() as u32, f))
                .unwrap();
        }
    }
    buf
}

proptest! {
    /// Corrupted capture files (bytes overwritten, file cut anywhere) give a
    /// typed error or a replay with counted drops — never a panic.
    #[test]
    fn corrupted_capture_files_are_errors_or_counted_drops(
        pcapng in any::<bool>(),
        muts in proptest::collection::vec((any::<u16>(), any::<u8>()), 0..8),
        cut in any::<u16>(),
    ) {
        let mut bytes = capture(pcapng);
        let n = bytes.len();
        for (pos, b) in muts {
            bytes[usize::from(pos) % n] = b;
        }
        if cut % 3 == 0 {
            bytes.truncate(usize::from(cut) % (n + 1));
        }
        let dir = temp_dir(&format!("corrupt-{pcapng}-{cut}"));
        let path = dir.join("in.cap");
        std::fs::write(&path, &bytes).unwrap();
        let r = dataplane::replay::replay_files(nat_config(), &[(LAN, path)], &dir.join("out"));
        if let Ok(s) = r {
            prop_assert!(s.packets_in <= templates().len() as u64);
            let accounted = s.packets_out + s.drops.values().sum::<u64>();
            prop_assert!(accounted + 64 >= s.packets_in, "every frame accounted: {:?}", s);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A pipeline with the fast lanes and its reference without them, on the same config, both with the test hosts learned.
fn with_reference(cfg: Config) -> (Pipeline, Pipeline) {
    let mut fast = single(cfg.clone()).unwrap();
    let mut slow = single(cfg).unwrap();
    slow.set_fast_lanes(false);
    for p in [&mut fast, &mut slow] {
        learn_hosts(p, Timestamp::from_nanos(0));
    }
    (fast, slow)
}

/// The fast lanes on scripted traffic, against a pipeline without them
/// (every step compared as in `fast_lanes_change_no_result`): established
/// UDP and TCP flows both ways, and a session that was cleared, closed by
/// FIN, or expired.
#[test]
fn fast_lanes_on_established_flows_and_changes() {
    let (mut fast, mut slow) = with_reference(nat_config());
    let (sf, ss) = (fast.shared().clone(), slow.shared().clone());
    let mut step = |port: PortId, f: &Vec<u8>, ns: u64| both(&mut fast, &mut slow, port, f, ns);
    let udp_in = |dp| {
        traffic::ipv4(
            ROUTER_MAC,
            WAN_MAC,
            REMOTE,
            POOL1,
            60,
            1,
            PROTO_UDP,
            &traffic::udp_dgram(53, dp, b"a"),
        )
    };
    let ms = 1_000_000u64;
    let mut t = 1_000_000_000u64;
    // Open, answer, then both ways within a tick.
    assert_eq!(step(LAN, &udp_out(40001), t), Disposition::Tx(WAN));
    for _ in 0..10 {
        t += ms;
        assert_eq!(step(WAN, &udp_in(40001), t), Disposition::Tx(LAN));
        t += ms;
        assert_eq!(step(LAN, &udp_out(40001), t), Disposition::Tx(WAN));
    }
    // Cleared sessions: the reply is unsolicited now (both drop it).
    let all = nat::SessionFilter::default();
    assert_eq!(sf.nat.as_ref().unwrap().sessions_clear(&all), 1);
    assert_eq!(ss.nat.as_ref().unwrap().sessions_clear(&all), 1);
    t += ms;
    let d = step(WAN, &udp_in(40001), t);
    assert!(matches!(d, Disposition::Drop(_)), "{d:?}");
    // TCP: handshake, data both ways, a FIN (it changes state).
    let seg = |out: bool, flags| {
        if out {
            traffic::ipv4(
                HOST_MAC,
                LAN_MAC,
                HOST,
                REMOTE,
                64,
                1,
                PROTO_TCP,
                &traffic::tcp_seg(40010, 443, 1, 1, flags, &[]),
            )
        } else {
            traffic::ipv4(
                ROUTER_MAC,
                WAN_MAC,
                REMOTE,
                POOL1,
                60,
                1,
                PROTO_TCP,
                &traffic::tcp_seg(443, 40010, 1, 1, flags, &[]),
            )
        }
    };
    t += ms;
    step(LAN, &seg(true, tcp::SYN), t);
    t += ms;
    step(WAN, &seg(false, tcp::SYN | tcp::ACK), t);
    for _ in 0..5 {
        for out in [true, false] {
            t += ms;
            let d = step(if out { LAN } else { WAN }, &seg(out, tcp::ACK), t);
            assert!(matches!(d, Disposition::Tx(_)), "out {out}: {d:?}");
        }
    }
    t += ms;
    assert_eq!(
        step(LAN, &seg(true, tcp::FIN | tcp::ACK), t),
        Disposition::Tx(WAN)
    );
    t += ms;
    let d = step(WAN, &seg(false, tcp::ACK), t);
    assert!(matches!(d, Disposition::Tx(_)));
    // Expired sessions (last: the neighbours expire too): reopen, then come
    // back after the UDP timeout: dropped by both.
    t += ms;
    step(LAN, &udp_out(40001), t);
    t += ms;
    step(WAN, &udp_in(40001), t);
    t += ms;
    assert_eq!(step(WAN, &udp_in(40001), t), Disposition::Tx(LAN));
    t += 3_600 * 1_000 * ms;
    let d = step(WAN, &udp_in(40001), t);
    assert!(matches!(d, Disposition::Drop(_)), "{d:?}");
}

/// Runs `f` through the pipeline with the fast lanes (`fast`) and the
/// reference (`slow`) at `ns` (timers first), asserts the same
/// dispositions, bytes, generated frames and counters, and returns the
/// disposition.
fn both(
    fast: &mut dataplane::pipeline::Pipeline,
    slow: &mut dataplane::pipeline::Pipeline,
    port: PortId,
    f: &[u8],
    ns: u64,
) -> Disposition {
    let t = Timestamp::from_nanos(ns);
    assert_eq!(fast.poll_timers(t), slow.poll_timers(t));
    let (mut oa, mut ob) = (Output::default(), Output::default());
    let (mut fa, mut fb) = (vec![f.to_vec()], vec![f.to_vec()]);
    fast.process(port, &mut fa, t, &mut oa);
    slow.process(port, &mut fb, t, &mut ob);
    assert_eq!(oa.dispositions, ob.dispositions, "at {ns}");
    assert_eq!(fa, fb, "at {ns}");
    assert_eq!(oa.generated, ob.generated);
    let names = fast.shared().port_names();
    assert_eq!(
        format!("{:?}", fast.shared().counters.snapshot(&names)),
        format!("{:?}", slow.shared().counters.snapshot(&names))
    );
    oa.dispositions[0]
}
