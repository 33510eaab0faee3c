//! Capture details tcpdump and Wireshark handle and the replay must too:
//! Ethernet FCS stripped as the capture says; timestamp fractions over one
//! second carried into the seconds; invalid UTF-8 in pcapng options
//! ignored.

#[path = "common/captures.rs"]
mod captures;
mod common;

use captures::*;
use common::*;
use std::fs::File;
use std::path::{Path, PathBuf};

use dataplane::replay::replay_files;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketOption;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::blocks::section_header::SectionHeaderOption;

/// The Ethernet CRC-32 as stored after a frame.
fn fcs(f: &[u8]) -> [u8; 4] {
    let mut c = !0u32;
    for &b in f {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    (!c).to_le_bytes()
}

/// Ethernet with an FCS: stripped when the pcap link-type field says so
/// (P bit + length), detected by its CRC when the field has FCS bits without
/// a known length (the `Unknown(805306369)` = 0x30000001 captures), and
/// from the pcapng `if_fcslen` (bits) or the per-packet `epb_flags`.
#[test]
fn ethernet_fcs_is_stripped_as_the_capture_says() {
    let dir = temp_dir("fcs");
    let frames = lan_frames(Link::Ethernet);
    let with_fcs: Vec<(u64, Vec<u8>)> = frames
        .iter()
        .map(|(t, f)| (*t, [f.clone(), fcs(f).to_vec()].concat()))
        .collect();
    let replay = |name: &str, path: PathBuf| -> (Vec<u8>, Vec<u8>) {
        let out = dir.join(name);
        replay_files(nat_config(), &[(LAN, path)], &out).unwrap();
        (
            std::fs::read(out.join("lan.pcap")).unwrap(),
            std::fs::read(out.join("wan.pcap")).unwrap(),
        )
    };
    let plain = dir.join("plain.pcap");
    write_pcap(&plain, 1, true, &frames);
    let want = replay("plain", plain);
    let cases: Vec<(&str, PathBuf)> = vec![
        ("p-bit", {
            let p = dir.join("pbit.pcap");
            write_pcap(&p, 0x2400_0001, true, &with_fcs);
            p
        }),
        ("detect", {
            let p = dir.join("detect.pcap");
            write_pcap(&p, 0x3000_0001, true, &with_fcs);
            p
        }),
        ("if_fcslen", {
            let p = dir.join("fcslen.pcapng");
            let r: Vec<_> = with_fcs
                .iter()
                .map(|(t, d)| (0, *t, d.clone(), vec![]))
                .collect();
            write_pcapng(
                &p,
                vec![],
                &[(1, vec![InterfaceDescriptionOption::IfFcsLen(32)])],
                &r,
            );
            p
        }),
        ("epb_flags", {
            let p = dir.join("flags.pcapng");
            let r: Vec<_> = with_fcs
                .iter()
                .map(|(t, d)| (0, *t, d.clone(), vec![EnhancedPacketOption::Flags(4 << 5)]))
                .collect();
            write_pcapng(&p, vec![], &[(1, vec![])], &r);
            p
        }),
    ];
    for (name, path) in cases {
        assert!(replay(name, path) == want, "{name}: FCS not stripped");
    }
    // Detection strips only a valid CRC: frames without an FCS in a
    // 0x30000001 capture are left whole.
    let p = dir.join("detect-none.pcap");
    write_pcap(&p, 0x3000_0001, true, &frames);
    assert!(replay("detect-none", p) == want);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Raw pcap bytes (little endian, microsecond magic) with raw timestamp
/// fields, so a fraction ≥ 10^6 can be written.
fn pcap_raw_ts(nanos: bool, recs: &[(u32, u32, &[u8])]) -> Vec<u8> {
    let mut v = Vec::new();
    let magic: u32 = if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
    v.extend_from_slice(&magic.to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&4u16.to_le_bytes());
    v.extend_from_slice(&[0; 8]);
    v.extend_from_slice(&65535u32.to_le_bytes());
    v.extend_from_slice(&1u32.to_le_bytes());
    for (sec, frac, d) in recs {
        v.extend_from_slice(&sec.to_le_bytes());
        v.extend_from_slice(&frac.to_le_bytes());
        v.extend_from_slice(&(d.len() as u32).to_le_bytes());
        v.extend_from_slice(&(d.len() as u32).to_le_bytes());
        v.extend_from_slice(d);
    }
    v
}

/// A timestamp fraction of one second or more is carried into the seconds
/// (microsecond and nanosecond files), as tcpdump reads it.
#[test]
fn timestamp_fractions_over_one_second_are_carried() {
    let dir = temp_dir("ts-carry");
    let arp = arp_from_host();
    for (nanos, frac, want) in [
        (false, 1_500_000u32, 11_500_000_000u64),
        (false, 2_000_001, 12_000_001_000),
        (true, 1_000_000_001, 11_000_000_001),
    ] {
        let p = dir.join("in.pcap");
        std::fs::write(&p, pcap_raw_ts(nanos, &[(10, frac, &arp)])).unwrap();
        let out = dir.join("out");
        let s = replay_files(router_config(), &[(LAN, p)], &out).unwrap();
        assert_eq!(s.arp_replies, 1);
        let lan = read_out(&out.join("lan.pcap"));
        assert_eq!(lan.len(), 1);
        assert_eq!(lan[0].0, want, "nanos={nanos} frac={frac}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Replace the first occurrence of `from` in the file by `to` (same length).
fn patch(path: &Path, from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    let mut b = std::fs::read(path).unwrap();
    let at = b
        .windows(from.len())
        .position(|w| w == from)
        .expect("marker present");
    b[at..at + to.len()].copy_from_slice(to);
    std::fs::write(path, b).unwrap();
}

/// A pcapng whose section header, interface description and packet
/// comment options are not valid UTF-8 replays as if they were.
#[test]
fn invalid_utf8_in_pcapng_options_is_ignored() {
    use std::borrow::Cow;
    let dir = temp_dir("utf8");
    let frames = lan_frames(Link::Ethernet);
    let write = |p: &Path| {
        let r: Vec<_> = frames
            .iter()
            .map(|(t, d)| {
                let c = EnhancedPacketOption::Comment(Cow::Borrowed("@EPB@"));
                (0, *t, d.clone(), vec![c])
            })
            .collect();
        write_pcapng(
            p,
            vec![SectionHeaderOption::UserApplication(Cow::Borrowed("@SHB@"))],
            &[(
                1,
                vec![InterfaceDescriptionOption::IfDescription(Cow::Borrowed(
                    "@IDB@",
                ))],
            )],
            &r,
        );
    };
    let good = dir.join("good.pcapng");
    write(&good);
    let bad = dir.join("bad.pcapng");
    write(&bad);
    patch(&bad, b"@SHB@", b"\xe9t\xe9\xff!");
    patch(&bad, b"@IDB@", b"caf\xe9 ");
    for _ in 0..frames.len() {
        patch(&bad, b"@EPB@", b"\xc3(\xa0\xa1x");
    }
    // The crate itself refuses the file.
    let f = File::open(&bad).unwrap();
    assert!(pcap_file::pcapng::PcapNgReader::new(f).is_err());
    let a = replay_files(nat_config(), &[(LAN, good)], &dir.join("a")).unwrap();
    let b = replay_files(nat_config(), &[(LAN, bad)], &dir.join("b")).unwrap();
    assert_eq!(a.packets_in, frames.len() as u64);
    assert_eq!(b.packets_in, a.packets_in);
    for port in ["lan.pcap", "wan.pcap"] {
        let x = std::fs::read(dir.join("a").join(port)).unwrap();
        let y = std::fs::read(dir.join("b").join(port)).unwrap();
        assert!(x == y, "{port} differs");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A pcapng cut inside its third packet block: the error names packet #3
/// (as Wireshark numbers frames, skipped ones included) and the two packets
/// before it were replayed.
#[test]
fn pcapng_error_names_the_packet_as_wireshark_numbers_it() {
    let dir = temp_dir("ng-index");
    let arp = arp_from_host();
    let p = dir.join("cut.pcapng");
    write_pcapng(
        &p,
        vec![],
        &[(1, vec![]), (105, vec![])],
        &[
            (1, 1, vec![0u8; 30], vec![]),
            (0, 2, arp.clone(), vec![]),
            (0, 3, arp.clone(), vec![]),
        ],
    );
    let b = std::fs::read(&p).unwrap();
    std::fs::write(&p, &b[..b.len() - 20]).unwrap();
    let out = dir.join("out");
    let e = replay_files(router_config(), &[(LAN, p)], &out).unwrap_err();
    match &e {
        dataplane::replay::ReplayError::Corrupt { index, .. } => assert_eq!(*index, 3, "{e}"),
        other => panic!("want Corrupt, got {other}"),
    }
    assert_eq!(read_out(&out.join("lan.pcap")).len(), 1, "the ARP reply");
    let _ = std::fs::remove_dir_all(&dir);
}
