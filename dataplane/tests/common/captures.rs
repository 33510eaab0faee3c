//! Writing captures of every link type for the replay tests (included by
//! `replay_linktypes.rs` and `replay_capture_quirks.rs` with `#[path]`).
#![allow(dead_code)]

use core::net::{IpAddr, Ipv4Addr};
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use crate::common::*;
use dataplane::replay;
use dataplane::traffic;
use dataplane::wire::{self, Mac, PROTO_ICMP, PROTO_UDP};
use pcap_file::DataLink;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::section_header::{SectionHeaderBlock, SectionHeaderOption};

/// The documented source MAC of synthesised Ethernet headers.
pub const SYNTH: Mac = [0x02, 0x70, 0x63, 0x61, 0x70, 0x00];
pub const BCAST: Mac = [0xff; 6];
pub const PROTO_ICMPV6: u8 = 58;

// ---------------------------------------------------------------------
// Writing captures of any link type.

/// One link-layer encapsulation of an Ethernet frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Ethernet,
    Sll,
    Sll2,
    /// Raw IP with this link type number (101, 12, 14, 228, 229).
    Raw(u32),
    /// BSD NULL (0), family written little endian (`true`) or big endian.
    Null(bool),
    Loop,
}

impl Link {
    pub fn number(self) -> u32 {
        match self {
            Link::Ethernet => 1,
            Link::Sll => 113,
            Link::Sll2 => 276,
            Link::Raw(n) => n,
            Link::Null(_) => 0,
            Link::Loop => 108,
        }
    }

    /// Whether the link layer carries the sender's MAC (and ARP).
    pub fn has_l2(self) -> bool {
        matches!(self, Link::Ethernet | Link::Sll | Link::Sll2)
    }
}

/// `eth` as a record of link type `link` (written independently of the
/// dataplane's decoder, from the link types' specifications).
pub fn encap(link: Link, eth: &[u8]) -> Vec<u8> {
    let (dst, src, et, payload) = (&eth[0..6], &eth[6..12], &eth[12..14], &eth[14..]);
    let pkttype: u16 = if dst == BCAST {
        1
    } else if dst[0] & 1 != 0 {
        2
    } else {
        0
    };
    let v6 = et == [0x86, 0xdd];
    let mut r = Vec::new();
    match link {
        Link::Ethernet => r.extend_from_slice(eth),
        Link::Sll => {
            r.extend_from_slice(&pkttype.to_be_bytes());
            r.extend_from_slice(&1u16.to_be_bytes()); // ARPHRD_ETHER
            r.extend_from_slice(&6u16.to_be_bytes());
            r.extend_from_slice(src);
            r.extend_from_slice(&[0, 0]);
            r.extend_from_slice(et);
            r.extend_from_slice(payload);
        }
        Link::Sll2 => {
            r.extend_from_slice(et);
            r.extend_from_slice(&[0, 0]);
            r.extend_from_slice(&3u32.to_be_bytes()); // interface index
            r.extend_from_slice(&1u16.to_be_bytes());
            r.push(pkttype as u8);
            r.push(6);
            r.extend_from_slice(src);
            r.extend_from_slice(&[0, 0]);
            r.extend_from_slice(payload);
        }
        Link::Raw(_) => r.extend_from_slice(payload),
        Link::Null(le) => {
            // AF_INET 2; AF_INET6 30 (Darwin) little endian, 28 (FreeBSD) big.
            let af: u32 = match (v6, le) {
                (false, _) => 2,
                (true, true) => 30,
                (true, false) => 28,
            };
            r.extend_from_slice(&if le {
                af.to_le_bytes()
            } else {
                af.to_be_bytes()
            });
            r.extend_from_slice(payload);
        }
        Link::Loop => {
            r.extend_from_slice(&(if v6 { 24u32 } else { 2 }).to_be_bytes());
            r.extend_from_slice(payload);
        }
    }
    r
}

/// A pcap file with the raw 32-bit link-type field `field`.
pub fn write_pcap(path: &Path, field: u32, nanos: bool, recs: &[(u64, Vec<u8>)]) {
    let h = PcapHeader {
        datalink: DataLink::from(field),
        ts_resolution: if nanos {
            pcap_file::TsResolution::NanoSecond
        } else {
            pcap_file::TsResolution::MicroSecond
        },
        snaplen: 65535,
        ..replay::out_header()
    };
    let mut w = PcapWriter::with_header(BufWriter::new(File::create(path).unwrap()), h).unwrap();
    for (ts, d) in recs {
        let p = PcapPacket::new(core::time::Duration::from_nanos(*ts), d.len() as u32, d);
        w.write_packet(&p).unwrap();
    }
}

/// A pcapng file: one interface per entry of `ifaces` (link type, its
/// options), records `(interface, ts ns, data, EPB options)`. Timestamps in
/// nanoseconds (`if_tsresol` 9) unless the interface says otherwise.
pub fn write_pcapng(
    path: &Path,
    shb_options: Vec<SectionHeaderOption<'static>>,
    ifaces: &[(u32, Vec<InterfaceDescriptionOption<'static>>)],
    recs: &[(u32, u64, Vec<u8>, Vec<EnhancedPacketOption<'static>>)],
) {
    let shb = SectionHeaderBlock {
        options: shb_options,
        ..SectionHeaderBlock::default()
    };
    let f = BufWriter::new(File::create(path).unwrap());
    let mut w = PcapNgWriter::with_section_header(f, shb).unwrap();
    for (lt, opts) in ifaces {
        let mut options = vec![InterfaceDescriptionOption::IfTsResol(9)];
        options.extend(opts.iter().cloned());
        w.write_pcapng_block(InterfaceDescriptionBlock {
            linktype: DataLink::from(*lt),
            snaplen: 0,
            options,
        })
        .unwrap();
    }
    for (iface, ts, d, opts) in recs {
        w.write_pcapng_block(EnhancedPacketBlock {
            interface_id: *iface,
            timestamp: core::time::Duration::from_nanos(*ts),
            original_len: d.len() as u32,
            data: d.clone().into(),
            options: opts.clone(),
        })
        .unwrap();
    }
}

/// Every record of an output pcap, read to the end with the crate.
pub fn read_out(path: &Path) -> Vec<(u64, Vec<u8>)> {
    let mut r = PcapReader::new(File::open(path).unwrap()).unwrap();
    assert_eq!(
        r.header().datalink,
        DataLink::ETHERNET,
        "outputs are Ethernet"
    );
    let mut v = Vec::new();
    while let Some(p) = r.next_packet() {
        let p = p.expect("a valid output record");
        v.push((p.timestamp.as_nanos() as u64, p.data.into_owned()));
    }
    v
}

/// Records of one output: (timestamp ns, frame).
pub type Records = Vec<(u64, Vec<u8>)>;

/// The LAN and WAN outputs of a replay into `dir`.
pub fn outputs(dir: &Path) -> (Records, Records) {
    (
        read_out(&dir.join("lan.pcap")),
        read_out(&dir.join("wan.pcap")),
    )
}

// ---------------------------------------------------------------------
// Traffic.

pub fn arp_from_host() -> Vec<u8> {
    wire::arp_request(HOST_MAC, HOST, GW)
}

pub fn udp_from_host(sport: u16) -> Vec<u8> {
    traffic::ipv4(
        HOST_MAC,
        LAN_MAC,
        HOST,
        REMOTE,
        64,
        7,
        PROTO_UDP,
        &traffic::udp_dgram(sport, 53, b"query"),
    )
}

pub fn echo_to_gw() -> Vec<u8> {
    traffic::ipv4(
        HOST_MAC,
        LAN_MAC,
        HOST,
        GW,
        64,
        8,
        PROTO_ICMP,
        &traffic::icmp_echo(8, 0x77, 1, b"ping"),
    )
}

pub fn echo6_to_gw() -> Vec<u8> {
    traffic::ipv6(
        HOST_MAC,
        LAN_MAC,
        HOST6,
        GW6,
        64,
        PROTO_ICMPV6,
        &traffic::icmp_echo(128, 0x66, 1, b"ping6"),
    )
}

/// What a capture of `link` holds, as Ethernet frames: an ARP request (when
/// the link layer carries ARP), outbound UDP, an echo request to the
/// gateway; IPv6 only (an ICMPv6 echo to the gateway) for raw IPv6.
pub fn lan_frames(link: Link) -> Vec<(u64, Vec<u8>)> {
    let mut v = Vec::new();
    if link == Link::Raw(229) {
        v.push((1_000_000_000, echo6_to_gw()));
        return v;
    }
    if link.has_l2() {
        v.push((500_000_000, arp_from_host()));
    }
    v.push((1_000_000_000, udp_from_host(40000)));
    v.push((1_100_000_000, echo_to_gw()));
    v.push((1_200_000_000, echo6_to_gw()));
    v
}

pub fn ipv4_src_dst(f: &[u8]) -> (Ipv4Addr, Ipv4Addr) {
    let c = wire::classify(f).expect("classifiable");
    let t = c.tuple.expect("tuple");
    match (t.src, t.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => (s, d),
        other => panic!("not IPv4: {other:?}"),
    }
}

/// ARP frame: (opcode, sender IP, target IP).
pub fn arp(f: &[u8]) -> Option<(u16, Ipv4Addr, Ipv4Addr)> {
    (f.len() >= 42 && f[12..14] == [0x08, 0x06]).then(|| {
        (
            u16::from_be_bytes([f[20], f[21]]),
            Ipv4Addr::new(f[28], f[29], f[30], f[31]),
            Ipv4Addr::new(f[38], f[39], f[40], f[41]),
        )
    })
}

pub fn all_links() -> Vec<Link> {
    vec![
        Link::Ethernet,
        Link::Sll,
        Link::Sll2,
        Link::Raw(101),
        Link::Raw(12),
        Link::Raw(14),
        Link::Raw(228),
        Link::Raw(229),
        Link::Null(true),
        Link::Null(false),
        Link::Loop,
    ]
}
