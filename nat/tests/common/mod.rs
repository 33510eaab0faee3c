//! Test helpers: packet builders (etherparse), a small IPv4 classifier
//! producing `net::Classified`, checksum verification (`net::checksum`'s
//! full RFC 1071 checksum and etherparse's independent computation),
//! fragmentation.
#![allow(dead_code)]

use core::net::{IpAddr, Ipv4Addr};

use etherparse::{Icmpv4Type, NetHeaders, PacketBuilder, PacketHeaders, TransportHeader};
use nat::{Nat, NatConfig, Side, Timestamp, Verdict};
use net::checksum::checksum;
use net::{Classified, FiveTuple, FragInfo, L3Kind, L4Kind};

pub const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
pub const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];

pub fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

pub fn secs(s: u64) -> Timestamp {
    Timestamp::from_secs(s)
}

/// Inside 10.0.0.0/8, pool 203.0.113.0/30 (4 addresses), defaults otherwise.
pub fn base_config() -> NatConfig {
    NatConfig::masquerade(
        vec!["10.0.0.0/8".parse().unwrap()],
        vec!["203.0.113.0/30".parse().unwrap()],
    )
}

pub fn nat(cfg: NatConfig) -> Nat {
    Nat::new(
        cfg,
        nat::FlowTableConfig {
            shards: 8,
            capacity: 1 << 16,
            ..Default::default()
        },
    )
    .unwrap()
}

pub fn udp(src: &str, sport: u16, dst: &str, dport: u16, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(ip(src).octets(), ip(dst).octets(), 64)
        .udp(sport, dport);
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

pub const SYN: u8 = 0x02;
pub const ACK: u8 = 0x10;
pub const FIN: u8 = 0x01;
pub const RST: u8 = 0x04;

pub fn tcp(src: &str, sport: u16, dst: &str, dport: u16, flags: u8) -> Vec<u8> {
    let mut b = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(ip(src).octets(), ip(dst).octets(), 64)
        .tcp(sport, dport, 1000, 65535);
    if flags & SYN != 0 {
        b = b.syn();
    }
    if flags & ACK != 0 {
        b = b.ack(1);
    }
    if flags & FIN != 0 {
        b = b.fin();
    }
    if flags & RST != 0 {
        b = b.rst();
    }
    let mut v = Vec::new();
    b.write(&mut v, b"hello tcp").unwrap();
    v
}

pub fn echo(src: &str, dst: &str, id: u16, request: bool, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(MAC_A, MAC_B).ipv4(ip(src).octets(), ip(dst).octets(), 64);
    let b = if request {
        b.icmpv4_echo_request(id, 1)
    } else {
        b.icmpv4_echo_reply(id, 1)
    };
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

/// An ICMP timestamp request or reply (RFC 792, 20 bytes).
pub fn timestamp(src: &str, dst: &str, id: u16, request: bool) -> Vec<u8> {
    let m = etherparse::icmpv4::TimestampMessage {
        id,
        seq: 3,
        originate_timestamp: 0x0102_0304,
        receive_timestamp: if request { 0 } else { 0x0a0b_0c0d },
        transmit_timestamp: if request { 0 } else { 0x0a0b_0c0e },
    };
    let ty = if request {
        Icmpv4Type::TimestampRequest(m)
    } else {
        Icmpv4Type::TimestampReply(m)
    };
    let b = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(ip(src).octets(), ip(dst).octets(), 64)
        .icmpv4(ty);
    let mut v = Vec::new();
    b.write(&mut v, &[]).unwrap();
    v
}

/// An ICMP error from `src` to `dst` quoting the IP packet of `quoted` (a
/// whole Ethernet frame), truncated to `quote_len` bytes of IP packet.
pub fn icmp_error(
    src: &str,
    dst: &str,
    ty: Icmpv4Type,
    quoted: &[u8],
    quote_len: usize,
) -> Vec<u8> {
    let ipb = &quoted[14..];
    let q = &ipb[..quote_len.min(ipb.len())];
    let b = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(ip(src).octets(), ip(dst).octets(), 64)
        .icmpv4(ty);
    let mut v = Vec::new();
    b.write(&mut v, q).unwrap();
    v
}

/// The real classifier (`net::classify`), as the dataplane uses it.
pub fn classify(f: &[u8]) -> Classified {
    net::classify(f).expect("net::classify accepts the test frame")
}

/// Minimal IPv4 classifier (Ethernet II, no VLAN) producing `net::Classified`
/// (kept for cross-checking `net::classify` on NAT-relevant fields).
pub fn mini_classify(f: &[u8]) -> Classified {
    assert!(f.len() >= 34);
    let et = u16::from_be_bytes([f[12], f[13]]);
    assert_eq!(et, 0x0800);
    let l3 = 14usize;
    let ihl = usize::from(f[l3] & 0xf) * 4;
    let total = usize::from(u16::from_be_bytes([f[l3 + 2], f[l3 + 3]]));
    let proto = f[l3 + 9];
    let fo = u16::from_be_bytes([f[l3 + 6], f[l3 + 7]]);
    let offset = (fo & 0x1fff) * 8;
    let mf = fo & 0x2000 != 0;
    let id = u16::from_be_bytes([f[l3 + 4], f[l3 + 5]]);
    let src = Ipv4Addr::new(f[l3 + 12], f[l3 + 13], f[l3 + 14], f[l3 + 15]);
    let dst = Ipv4Addr::new(f[l3 + 16], f[l3 + 17], f[l3 + 18], f[l3 + 19]);
    let l4o = l3 + ihl;
    let frag = (mf || offset != 0).then_some(FragInfo {
        id: u32::from(id),
        offset,
        more_fragments: mf,
    });
    let mut tuple = None;
    let mut icmp = None;
    let l4 = if offset != 0 {
        L4Kind::Fragment
    } else {
        match proto {
            6 | 17 => {
                tuple = Some(FiveTuple {
                    src: IpAddr::V4(src),
                    dst: IpAddr::V4(dst),
                    proto,
                    src_port: u16::from_be_bytes([f[l4o], f[l4o + 1]]),
                    dst_port: u16::from_be_bytes([f[l4o + 2], f[l4o + 3]]),
                });
                if proto == 6 { L4Kind::Tcp } else { L4Kind::Udp }
            }
            1 => {
                icmp = Some((f[l4o], f[l4o + 1]));
                // Query (echo, timestamp): the identifier as both ports; other ICMP: ports 0.
                let idf = if matches!(f[l4o], 0 | 8 | 13 | 14) {
                    u16::from_be_bytes([f[l4o + 4], f[l4o + 5]])
                } else {
                    0
                };
                tuple = Some(FiveTuple {
                    src: IpAddr::V4(src),
                    dst: IpAddr::V4(dst),
                    proto,
                    src_port: idf,
                    dst_port: idf,
                });
                L4Kind::Icmpv4
            }
            p => L4Kind::Other(p),
        }
    };
    Classified {
        vlans: [0, 0],
        vlan_count: 0,
        ethertype: et,
        l3_offset: l3 as u16,
        l3: L3Kind::Ipv4,
        l4_offset: l4o as u16,
        l4,
        l3_end: (l3 + total) as u16,
        frag,
        tuple,
        icmp_type_code: icmp,
    }
}

/// Process a frame in place through `nat`.
pub fn run(n: &mut Nat, f: &mut [u8], side: Side, now: Timestamp) -> Verdict {
    let c = classify(f);
    let m = mini_classify(f);
    assert_eq!(
        (c.l3_offset, c.l4_offset, c.l3_end, c.l4, c.frag, c.tuple),
        (m.l3_offset, m.l4_offset, m.l3_end, m.l4, m.frag, m.tuple),
        "net::classify vs test classifier"
    );
    n.process(f, &c, side, now)
}

/// (src, sport, dst, dport) of a TCP/UDP frame; for ICMP echo the identifier as ports.
pub fn addrs(f: &[u8]) -> (Ipv4Addr, u16, Ipv4Addr, u16) {
    let c = classify(f);
    let t = c.tuple.expect("ports");
    let (IpAddr::V4(s), IpAddr::V4(d)) = (t.src, t.dst) else {
        panic!()
    };
    (s, t.src_port, d, t.dst_port)
}

fn pseudo_sum(src: &[u8], dst: &[u8], proto: u8, len: usize) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(src);
    v.extend_from_slice(dst);
    v.push(0);
    v.push(proto);
    v.extend_from_slice(&(len as u16).to_be_bytes());
    v
}

/// Verify every checksum of an unfragmented IPv4 frame twice: with net's
/// full RFC 1071 checksum (sum over header/pseudo-header must be zero) and
/// with etherparse's own computation compared with the stored value.
pub fn verify_checksums(f: &[u8]) {
    let l3 = 14;
    let ihl = usize::from(f[l3] & 0xf) * 4;
    let total = usize::from(u16::from_be_bytes([f[l3 + 2], f[l3 + 3]]));
    assert_eq!(checksum(&f[l3..l3 + ihl]), 0, "IPv4 header checksum");
    let proto = f[l3 + 9];
    let l4 = &f[l3 + ihl..l3 + total];
    let pseudo = pseudo_sum(&f[l3 + 12..l3 + 16], &f[l3 + 16..l3 + 20], proto, l4.len());
    let mut whole = pseudo.clone();
    whole.extend_from_slice(l4);
    match proto {
        6 => assert_eq!(checksum(&whole), 0, "TCP checksum"),
        17 if l4[6..8] != [0, 0] => assert_eq!(checksum(&whole), 0, "UDP checksum"),
        1 => assert_eq!(checksum(l4), 0, "ICMP checksum"),
        _ => {}
    }
    // etherparse, independently.
    let h = PacketHeaders::from_ethernet_slice(f).expect("etherparse parses");
    let Some(NetHeaders::Ipv4(iph, _)) = &h.net else {
        panic!("not ipv4")
    };
    assert_eq!(
        iph.header_checksum,
        iph.calc_header_checksum(),
        "etherparse: IP checksum"
    );
    let payload = h.payload.slice();
    match &h.transport {
        Some(TransportHeader::Udp(u)) if u.checksum != 0 => {
            assert_eq!(
                u.checksum,
                u.calc_checksum_ipv4(iph, payload).unwrap(),
                "etherparse: UDP"
            );
        }
        Some(TransportHeader::Tcp(t)) => {
            assert_eq!(
                t.checksum,
                t.calc_checksum_ipv4(iph, payload).unwrap(),
                "etherparse: TCP"
            );
        }
        Some(TransportHeader::Icmpv4(i)) => {
            assert_eq!(
                i.checksum,
                i.icmp_type.calc_checksum(payload),
                "etherparse: ICMP"
            );
        }
        _ => {}
    }
}

/// Verify the embedded packet of an ICMP error frame: its IP header checksum,
/// and (when quoted whole) its L4 checksum. Returns the embedded IP bytes.
pub fn verify_embedded(f: &[u8]) -> Vec<u8> {
    let l3 = 14;
    let ihl = usize::from(f[l3] & 0xf) * 4;
    let total = usize::from(u16::from_be_bytes([f[l3 + 2], f[l3 + 3]]));
    let emb = &f[l3 + ihl + 8..l3 + total];
    let eihl = usize::from(emb[0] & 0xf) * 4;
    assert_eq!(checksum(&emb[..eihl]), 0, "embedded IP header checksum");
    let etotal = usize::from(u16::from_be_bytes([emb[2], emb[3]]));
    if etotal == emb.len() {
        // Whole packet quoted: verify it fully, as a frame of its own.
        let mut frame = vec![0u8; 14];
        frame[12] = 8;
        frame.extend_from_slice(emb);
        verify_checksums(&frame);
    }
    emb.to_vec()
}

/// Split an IPv4 frame into fragments carrying at most `chunk` payload bytes
/// (a multiple of 8). Header checksums recomputed.
pub fn fragment(f: &[u8], chunk: usize) -> Vec<Vec<u8>> {
    assert_eq!(chunk % 8, 0);
    let l3 = 14;
    let ihl = usize::from(f[l3] & 0xf) * 4;
    let total = usize::from(u16::from_be_bytes([f[l3 + 2], f[l3 + 3]]));
    let payload = &f[l3 + ihl..l3 + total];
    let mut out = Vec::new();
    let mut off = 0;
    while off < payload.len() {
        let end = (off + chunk).min(payload.len());
        let mut fr = f[..l3 + ihl].to_vec();
        fr.extend_from_slice(&payload[off..end]);
        let len = (ihl + end - off) as u16;
        fr[l3 + 2..l3 + 4].copy_from_slice(&len.to_be_bytes());
        let mf = if end < payload.len() { 0x2000 } else { 0 };
        let fo = ((off / 8) as u16) | mf;
        fr[l3 + 6..l3 + 8].copy_from_slice(&fo.to_be_bytes());
        fr[l3 + 10] = 0;
        fr[l3 + 11] = 0;
        let ck = checksum(&fr[l3..l3 + ihl]);
        fr[l3 + 10..l3 + 12].copy_from_slice(&ck.to_be_bytes());
        out.push(fr);
        off = end;
    }
    out
}

/// Reassemble fragments (any order) into one frame; checks offsets cover the datagram.
pub fn reassemble(frags: &[Vec<u8>]) -> Vec<u8> {
    let l3 = 14;
    let mut parts: Vec<(usize, Vec<u8>, bool)> = frags
        .iter()
        .map(|fr| {
            let ihl = usize::from(fr[l3] & 0xf) * 4;
            let fo = u16::from_be_bytes([fr[l3 + 6], fr[l3 + 7]]);
            assert_eq!(checksum(&fr[l3..l3 + ihl]), 0, "fragment IP checksum");
            (
                usize::from(fo & 0x1fff) * 8,
                fr[l3 + ihl..].to_vec(),
                fo & 0x2000 != 0,
            )
        })
        .collect();
    parts.sort_by_key(|p| p.0);
    let first = frags
        .iter()
        .find(|fr| u16::from_be_bytes([fr[l3 + 6], fr[l3 + 7]]) & 0x1fff == 0)
        .unwrap();
    let ihl = usize::from(first[l3] & 0xf) * 4;
    let mut out = first[..l3 + ihl].to_vec();
    let mut expect = 0;
    for (off, p, _) in &parts {
        assert_eq!(*off, expect, "contiguous fragments");
        out.extend_from_slice(p);
        expect += p.len();
    }
    assert!(!parts.last().unwrap().2, "last fragment has MF clear");
    // Every fragment must carry the same addresses as the first.
    for fr in frags {
        assert_eq!(
            fr[l3 + 12..l3 + 20],
            first[l3 + 12..l3 + 20],
            "fragments share addresses"
        );
    }
    let len = (ihl + expect) as u16;
    out[l3 + 2..l3 + 4].copy_from_slice(&len.to_be_bytes());
    out[l3 + 6] = 0;
    out[l3 + 7] = 0;
    out[l3 + 10] = 0;
    out[l3 + 11] = 0;
    let ck = checksum(&out[l3..l3 + ihl]);
    out[l3 + 10..l3 + 12].copy_from_slice(&ck.to_be_bytes());
    out
}
