//! The replay harness on real files: determinism (same bytes twice, and the
//! same bytes from the CLI), pcapng input, and bad captures (corrupted,
//! truncated, wrong link type, over-long records, garbage frames).

mod common;

use common::*;
use core::net::Ipv4Addr;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::Command;

use dataplane::replay::{
    self, MemSink, Packet, ReplayError, SkipReason, replay_files, replay_packets,
};
use dataplane::traffic::{self, tcp};
use dataplane::wire::{self, PROTO_ICMP, PROTO_TCP, PROTO_UDP};
use pcap_file::pcap::{PcapPacket, PcapWriter};

fn write_pcap(path: &Path, pkts: &[Packet]) {
    let f = BufWriter::new(File::create(path).unwrap());
    let mut w = PcapWriter::with_header(f, replay::out_header()).unwrap();
    for p in pkts {
        w.write_packet(&PcapPacket::new(
            core::time::Duration::from_nanos(p.ts_ns),
            p.data.len() as u32,
            &p.data,
        ))
        .unwrap();
    }
}

/// A mixed scenario: ARP, many outbound flows, replies to their translated
/// endpoints (found by a first in-memory replay), unsolicited probes, garbage.
fn scenario() -> (Vec<Packet>, Vec<Packet>) {
    let mut lan = Vec::new();
    for (i, (m, ip)) in [(HOST_MAC, HOST), (HOST2_MAC, HOST2), (SERVER_MAC, SERVER)]
        .iter()
        .enumerate()
    {
        lan.push(Packet {
            ts_ns: i as u64 * 1000,
            data: wire::arp_request(*m, *ip, GW),
        });
    }
    let mut rng = traffic::Rng::new(7);
    for k in 0..600u32 {
        let (mac, ip) = if k % 2 == 0 {
            (HOST_MAC, HOST)
        } else {
            (HOST2_MAC, HOST2)
        };
        let dst = Ipv4Addr::new(198, 51, 100, 1 + (k % 200) as u8);
        let t = 1_000_000_000 + u64::from(k) * 3_000_000 + rng.below(1_000_000);
        let f = match k % 3 {
            0 => traffic::ipv4(
                mac,
                LAN_MAC,
                ip,
                dst,
                64,
                k as u16,
                PROTO_TCP,
                &traffic::tcp_seg(20000 + k as u16, 443, k, 0, tcp::SYN, &[]),
            ),
            1 => traffic::ipv4(
                mac,
                LAN_MAC,
                ip,
                dst,
                64,
                k as u16,
                PROTO_UDP,
                &traffic::udp_dgram(30000 + k as u16, 53, b"q"),
            ),
            _ => traffic::ipv4(
                mac,
                LAN_MAC,
                ip,
                dst,
                64,
                k as u16,
                PROTO_ICMP,
                &traffic::icmp_echo(8, k as u16, 1, b"p"),
            ),
        };
        lan.push(Packet { ts_ns: t, data: f });
    }
    lan.push(Packet {
        ts_ns: 1_500_000_000,
        data: vec![0xde, 0xad, 0xbe, 0xef],
    });
    let mut sink = MemSink::default();
    replay_packets(nat_config(), vec![(LAN, lan.clone())], &mut sink).unwrap();
    let mut wan = Vec::new();
    for p in sink.ports.get(&WAN).into_iter().flatten() {
        let Ok(c) = wire::classify(&p.data) else {
            continue;
        };
        let Some(t) = c.tuple else { continue };
        let (core::net::IpAddr::V4(s), core::net::IpAddr::V4(d)) = (t.src, t.dst) else {
            continue;
        };
        let l4 = match t.proto {
            PROTO_TCP => traffic::tcp_seg(t.dst_port, t.src_port, 1, 2, tcp::SYN | tcp::ACK, &[]),
            PROTO_UDP => traffic::udp_dgram(t.dst_port, t.src_port, b"a"),
            _ => traffic::icmp_echo(0, t.src_port, 1, b"p"),
        };
        wan.push(Packet {
            ts_ns: p.ts_ns + 20_000_000,
            data: traffic::ipv4(ROUTER_MAC, WAN_MAC, d, s, 60, 1, t.proto, &l4),
        });
    }
    for k in 0..50u16 {
        let f = traffic::ipv4(
            ROUTER_MAC,
            WAN_MAC,
            REMOTE,
            POOL1,
            60,
            k,
            PROTO_UDP,
            &traffic::udp_dgram(1, 10000 + k, b"x"),
        );
        wan.push(Packet {
            ts_ns: 2_000_000_000 + u64::from(k),
            data: f,
        });
    }
    wan.sort_by_key(|p| p.ts_ns);
    (lan, wan)
}

fn example_config_path(dir: &Path) -> PathBuf {
    let p = dir.join("config.toml");
    std::fs::write(&p, dataplane::config::DEFAULT_CONFIG).unwrap();
    p
}

#[test]
fn replay_is_byte_for_byte_deterministic() {
    let dir = temp_dir("determinism");
    let (lan, wan) = scenario();
    assert!(wan.len() > 500, "replies generated: {}", wan.len());
    write_pcap(&dir.join("lan-in.pcap"), &lan);
    write_pcap(&dir.join("wan-in.pcap"), &wan);
    let inputs = vec![
        (LAN, dir.join("lan-in.pcap")),
        (WAN, dir.join("wan-in.pcap")),
    ];
    let s1 = replay_files(nat_config(), &inputs, &dir.join("a")).unwrap();
    let s2 = replay_files(nat_config(), &inputs, &dir.join("b")).unwrap();
    assert!(s1.packets_out > 1000, "{s1:?}");
    assert_eq!(s1.packets_out, s2.packets_out);
    assert_eq!(s1.drops, s2.drops);
    assert!(s1.drops["malformed"] >= 1);
    // The CLI in another process (other hash seeds) gives the same bytes.
    let cfg = example_config_path(&dir);
    let st = Command::new(env!("CARGO_BIN_EXE_dataplane"))
        .args(["replay", "--config"])
        .arg(&cfg)
        .arg("--in")
        .arg(format!("lan={}", dir.join("lan-in.pcap").display()))
        .arg("--in")
        .arg(format!("wan={}", dir.join("wan-in.pcap").display()))
        .arg("--out-dir")
        .arg(dir.join("c"))
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&st.stdout).expect("one JSON object");
    for k in [
        "packets_in",
        "packets_out",
        "drops",
        "flows_created",
        "flows_expired",
        "flows_evicted",
        "nat_sessions_active",
        "nat_ports_in_use",
        "packets_per_second",
    ] {
        assert!(j.get(k).is_some(), "JSON field {k} missing: {j}");
    }
    assert!(j["drops"].is_object());
    assert_eq!(j["packets_out"].as_u64(), Some(s1.packets_out));
    for port in ["lan", "wan"] {
        let a = std::fs::read(dir.join("a").join(format!("{port}.pcap"))).unwrap();
        let b = std::fs::read(dir.join("b").join(format!("{port}.pcap"))).unwrap();
        let c = std::fs::read(dir.join("c").join(format!("{port}.pcap"))).unwrap();
        assert!(a.len() > 24 * 10, "{port}.pcap has packets");
        assert!(a == b, "{port}.pcap differs between two replays");
        assert!(
            a == c,
            "{port}.pcap differs between the library and the CLI"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn pcapng_input_is_read_with_its_timestamp_resolution() {
    use pcap_file::pcapng::PcapNgWriter;
    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
    use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
    let dir = temp_dir("pcapng");
    let path = dir.join("in.pcapng");
    {
        let mut w = PcapNgWriter::new(BufWriter::new(File::create(&path).unwrap())).unwrap();
        let idb = InterfaceDescriptionBlock {
            linktype: pcap_file::DataLink::ETHERNET,
            snaplen: 0,
            options: vec![],
        };
        w.write_pcapng_block(idb).unwrap();
        let f = wire::arp_request(HOST_MAC, HOST, GW);
        // Default if_tsresol is microseconds: raw 2_500_000 = 2.5 s. The
        // crate stores the raw count in a Duration's nanoseconds.
        let epb = EnhancedPacketBlock {
            interface_id: 0,
            timestamp: core::time::Duration::from_nanos(2_500_000),
            original_len: f.len() as u32,
            data: f.into(),
            options: vec![],
        };
        w.write_pcapng_block(epb).unwrap();
    }
    let s = replay_files(router_config(), &[(LAN, path)], &dir.join("out")).unwrap();
    assert_eq!(s.packets_in, 1);
    assert_eq!(s.arp_replies, 1);
    let mut r =
        pcap_file::pcap::PcapReader::new(File::open(dir.join("out/lan.pcap")).unwrap()).unwrap();
    let p = r.next_packet().unwrap().unwrap();
    assert_eq!(p.timestamp, core::time::Duration::from_millis(2500));
    let _ = std::fs::remove_dir_all(&dir);
}

fn pcap_bytes(linktype: u32, snaplen: u32, records: &[(u32, &[u8])]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&4u16.to_le_bytes());
    v.extend_from_slice(&[0; 8]);
    v.extend_from_slice(&snaplen.to_le_bytes());
    v.extend_from_slice(&linktype.to_le_bytes());
    for (i, (orig, data)) in records.iter().enumerate() {
        v.extend_from_slice(&(i as u32 + 1).to_le_bytes());
        v.extend_from_slice(&0u32.to_le_bytes());
        v.extend_from_slice(&(data.len() as u32).to_le_bytes());
        v.extend_from_slice(&orig.to_le_bytes());
        v.extend_from_slice(data);
    }
    v
}

#[test]
fn bad_captures_are_clear_errors_or_counted_skips() {
    let dir = temp_dir("badcaps");
    let out = dir.join("out");
    let arp = wire::arp_request(HOST_MAC, HOST, GW);
    // Not a capture at all.
    std::fs::write(dir.join("junk.pcap"), b"this is not a capture file at all").unwrap();
    let e = replay_files(router_config(), &[(LAN, dir.join("junk.pcap"))], &out).unwrap_err();
    assert!(matches!(e, ReplayError::NotACapture { .. }), "{e}");
    assert!(e.to_string().contains("junk.pcap"));
    // Empty file.
    std::fs::write(dir.join("empty.pcap"), b"").unwrap();
    let e = replay_files(router_config(), &[(LAN, dir.join("empty.pcap"))], &out).unwrap_err();
    assert!(matches!(e, ReplayError::NotACapture { .. }), "{e}");
    // A link type that cannot be replayed (105 = IEEE 802.11; raw IP,
    // 101, replays since issue 17: see tests/replay_linktypes.rs).
    std::fs::write(dir.join("raw.pcap"), pcap_bytes(105, 65535, &[(60, &arp)])).unwrap();
    let e = replay_files(router_config(), &[(LAN, dir.join("raw.pcap"))], &out).unwrap_err();
    assert!(matches!(e, ReplayError::UnsupportedLinkType { .. }), "{e}");
    // Truncated in the middle of the second record: error naming packet #2.
    let good = pcap_bytes(1, 65535, &[(60, &arp), (60, &arp)]);
    std::fs::write(dir.join("trunc.pcap"), &good[..good.len() - 10]).unwrap();
    let e = replay_files(router_config(), &[(LAN, dir.join("trunc.pcap"))], &out).unwrap_err();
    match &e {
        ReplayError::Corrupt { index, path, .. } => {
            assert_eq!(*index, 2);
            assert!(path.ends_with("trunc.pcap"));
        }
        other => panic!("want Corrupt, got {other}"),
    }
    // A record longer than the snap length is skipped and counted; the
    // valid one is replayed.
    let long = vec![0u8; 100];
    std::fs::write(
        dir.join("snap.pcap"),
        pcap_bytes(1, 64, &[(100, &long), (60, &arp)]),
    )
    .unwrap();
    let s = replay_files(router_config(), &[(LAN, dir.join("snap.pcap"))], &out).unwrap();
    assert_eq!(s.skipped.get(&SkipReason::SnaplenExceeded), Some(&1));
    assert_eq!(s.packets_in, 1);
    assert_eq!(s.arp_replies, 1);
    // Garbage frames inside a valid capture are counted drops.
    let recs: Vec<(u32, &[u8])> = vec![(3, &[1, 2, 3]), (14, &[0xff; 14]), (60, &arp[..30])];
    std::fs::write(dir.join("garbage.pcap"), pcap_bytes(1, 65535, &recs)).unwrap();
    let s = replay_files(router_config(), &[(LAN, dir.join("garbage.pcap"))], &out).unwrap();
    assert_eq!(s.packets_in, 3);
    assert_eq!(s.packets_out, 0);
    assert_eq!(s.drops.values().sum::<u64>(), 3, "{:?}", s.drops);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn replay_arguments_are_checked() {
    let cfg = nat_config();
    assert!(matches!(
        replay::parse_inputs(&cfg, &["lan".into()]),
        Err(ReplayError::BadInputArg(_))
    ));
    assert!(matches!(
        replay::parse_inputs(&cfg, &["dmz=x.pcap".into()]),
        Err(ReplayError::UnknownPort { .. })
    ));
    assert!(matches!(
        replay::parse_inputs(&cfg, &["lan=a.pcap".into(), "lan=b.pcap".into()]),
        Err(ReplayError::DuplicatePort { .. })
    ));
    let v = replay::parse_inputs(&cfg, &["wan=b.pcap".into(), "lan=a.pcap".into()]).unwrap();
    assert_eq!(
        v,
        vec![
            (WAN, PathBuf::from("b.pcap")),
            (LAN, PathBuf::from("a.pcap"))
        ]
    );
}

/// Without the driver feature `run` explains how to get it. (Not compiled
/// with the feature: there `run` would start the real driver.)
#[cfg(not(feature = "dpdk"))]
#[test]
fn cli_run_without_the_driver_feature_explains_itself() {
    let dir = temp_dir("cli-run");
    let cfg = example_config_path(&dir);
    let o = Command::new(env!("CARGO_BIN_EXE_dataplane"))
        .args(["run", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("built without the `dpdk` feature: cargo run --release --features dpdk -- run --config FILE"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cli_without_arguments_runs_the_demo() {
    let o = Command::new(env!("CARGO_BIN_EXE_dataplane"))
        .args(["demo", "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(j["packets_in"].as_u64().unwrap() > 10_000);
    assert!(j["flows_created"].as_u64().unwrap() > 4000, "{j}");
    assert!(
        j["flows_expired"].as_u64().unwrap() > 1000,
        "idle flows expire in the demo: {j}"
    );
    assert!(j["drops"]["unsolicited_inbound"].as_u64().unwrap() > 0);
    let o = Command::new(env!("CARGO_BIN_EXE_dataplane"))
        .output()
        .unwrap();
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("drops by reason") && out.contains("NAT sessions active"),
        "{out}"
    );
}

/// The demo's recorded inputs, replayed from files by the harness, give the
/// same counts as the closed-loop demo itself: the demo really runs on the
/// replay path, and the recorded captures are a ready-made example.
#[test]
fn demo_recording_replays_to_the_same_result() {
    let cfg = dataplane::config::Config::default_demo();
    let params = dataplane::demo::DemoParams::default();
    let (demo, _, rec) = dataplane::demo::run_recording(cfg.clone(), &params).unwrap();
    let dir = temp_dir("demo-rec");
    let paths = dataplane::demo::write_recording(&cfg, &rec, &dir).unwrap();
    assert_eq!(paths.len(), 2);
    let inputs = vec![
        (LAN, dir.join("lan-in.pcap")),
        (WAN, dir.join("wan-in.pcap")),
    ];
    let s = replay_files(cfg, &inputs, &dir.join("out")).unwrap();
    assert_eq!(s.ports, demo.ports, "per-port in/out counts");
    assert_eq!(s.drops, demo.drops);
    assert_eq!(s.flows_created, demo.flows_created);
    assert_eq!(s.flows_expired, demo.flows_expired);
    assert_eq!(s.nat_sessions_active, demo.nat_sessions_active);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn burst_replay_is_deterministic_and_matches_per_packet_counts() {
    let dir = temp_dir("burst");
    let (lan, wan) = scenario();
    write_pcap(&dir.join("lan-in.pcap"), &lan);
    write_pcap(&dir.join("wan-in.pcap"), &wan);
    let inputs = vec![
        (LAN, dir.join("lan-in.pcap")),
        (WAN, dir.join("wan-in.pcap")),
    ];
    let exact = replay_files(nat_config(), &inputs, &dir.join("exact")).unwrap();
    let b1 = replay::replay_files_burst(nat_config(), &inputs, &dir.join("b1"), 32).unwrap();
    let b2 = replay::replay_files_burst(nat_config(), &inputs, &dir.join("b2"), 32).unwrap();
    assert_eq!(
        b1.ports, exact.ports,
        "no expiry inside this capture's bursts: same counts"
    );
    assert_eq!(b1.drops, exact.drops);
    for port in ["lan", "wan"] {
        let a = std::fs::read(dir.join("b1").join(format!("{port}.pcap"))).unwrap();
        let b = std::fs::read(dir.join("b2").join(format!("{port}.pcap"))).unwrap();
        assert!(a == b, "{port}.pcap differs between two burst replays");
    }
    assert_eq!(b2.packets_out, b1.packets_out);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A feed that forbids read-ahead (the reference) or fails after `fail_after`
/// packets, around a merge of in-memory captures.
struct Wrapped<'a> {
    inner: replay::Merge<'a>,
    read_ahead: bool,
    fail_after: Option<usize>,
    given: usize,
}

impl replay::Feed for Wrapped<'_> {
    fn next(
        &mut self,
        skipped: &mut std::collections::BTreeMap<SkipReason, u64>,
    ) -> Result<Option<(dataplane::pipeline::PortId, Packet)>, ReplayError> {
        if self.fail_after == Some(self.given) {
            return Err(ReplayError::Corrupt {
                path: "test".into(),
                index: self.given as u64,
                reason: "injected".into(),
            });
        }
        self.given += 1;
        self.inner.next(skipped)
    }
    fn may_read_ahead(&self) -> bool {
        self.read_ahead
    }
}

fn drive_wrapped(
    lan: &[Packet],
    wan: &[Packet],
    read_ahead: bool,
    fail_after: Option<usize>,
    burst: usize,
) -> (MemSink, Result<(), ReplayError>, String) {
    let shared = dataplane::pipeline::Shared::new(nat_config(), 1).unwrap();
    let mut p = dataplane::pipeline::Pipeline::new(std::sync::Arc::clone(&shared), 0);
    // The reference (no read-ahead) also takes no fast lane.
    p.set_fast_lanes(read_ahead);
    let srcs: Vec<(dataplane::pipeline::PortId, Box<dyn replay::PacketSource>)> = vec![
        (LAN, Box::new(replay::VecSource::new(lan.to_vec()))),
        (WAN, Box::new(replay::VecSource::new(wan.to_vec()))),
    ];
    let mut feed = Wrapped {
        inner: replay::Merge::new(srcs),
        read_ahead,
        fail_after,
        given: 0,
    };
    let mut sink = MemSink::default();
    let r = replay::drive_bursts(&mut p, &mut feed, &mut sink, burst, |_| {}).map(|_| ());
    let s = replay::Summary::collect(&shared, Default::default(), 0, 1.0);
    let counts = format!(
        "{:?} {:?} {} {} {}",
        s.ports, s.drops, s.flows_created, s.flows_expired, s.nat_sessions_active
    );
    (sink, r, counts)
}

/// Reading ahead (classifying early) is a hint only, and the IPv4
/// fast lanes are exact: the same frames, timestamps, ports and counters as
/// a replay that reads each packet only when it is processed and takes the
/// general stages for every frame, per packet and in bursts.
#[test]
fn read_ahead_prefetch_changes_no_output() {
    let (lan, wan) = scenario();
    for burst in [1, 32] {
        let (a, ra, ca) = drive_wrapped(&lan, &wan, true, None, burst);
        let (b, rb, cb) = drive_wrapped(&lan, &wan, false, None, burst);
        assert!(ra.is_ok() && rb.is_ok());
        assert!(a.ports.values().map(Vec::len).sum::<usize>() > 1000);
        assert_eq!(a.ports, b.ports, "burst {burst}: output differs");
        assert_eq!(ca, cb, "burst {burst}: counters differ");
    }
}

/// An input error found while reading ahead is reported only after every
/// packet read before it went through the pipeline, as without read-ahead.
#[test]
fn input_error_after_read_ahead_keeps_earlier_packets() {
    let (lan, wan) = scenario();
    let (a, ra, ca) = drive_wrapped(&lan, &wan, true, Some(500), 1);
    let (b, rb, cb) = drive_wrapped(&lan, &wan, false, Some(500), 1);
    assert!(
        matches!(ra, Err(ReplayError::Corrupt { index: 500, .. })),
        "{ra:?}"
    );
    assert!(
        matches!(rb, Err(ReplayError::Corrupt { index: 500, .. })),
        "{rb:?}"
    );
    assert_eq!(a.ports, b.ports);
    assert_eq!(ca, cb);
    let out: usize = a.ports.values().map(Vec::len).sum();
    assert!(
        out >= 400,
        "the 500 packets before the error were processed: {out}"
    );
}
