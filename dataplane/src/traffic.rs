//! Frame builders for generated traffic (the demo, tests, benches):
//! Ethernet + IPv4/IPv6 + TCP/UDP/ICMP with every checksum filled, and a
//! small deterministic PRNG (SplitMix64) so generated scenarios never depend
//! on a random seed.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use net::checksum::{accumulate, checksum, fold, pseudo_header_v4, pseudo_header_v6, verifies};

use crate::wire::{
    self, ETHERTYPE_IPV4, ETHERTYPE_IPV6, Mac, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP,
};

/// The checksum of `body` under a pseudo-header sum `ph`, with UDP's
/// "zero is sent as 0xffff" rule (RFC 768).
fn l4_checksum(ph: u16, proto: u8, body: &[u8]) -> u16 {
    let c = !fold(accumulate(u64::from(ph), body));
    if proto == PROTO_UDP && c == 0 {
        0xffff
    } else {
        c
    }
}

/// TCP flag bits.
pub mod tcp {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
}

/// SplitMix64: tiny, fast, fully deterministic.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// A TCP segment (checksum left 0; [`ipv4`]/[`ipv6`] fill it).
pub fn tcp_seg(sport: u16, dport: u16, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(20 + payload.len());
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&dport.to_be_bytes());
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(&ack.to_be_bytes());
    v.extend_from_slice(&[0x50, flags]);
    v.extend_from_slice(&65535u16.to_be_bytes());
    v.extend_from_slice(&[0, 0, 0, 0]);
    v.extend_from_slice(payload);
    v
}

/// A UDP datagram (checksum filled by [`ipv4`]/[`ipv6`]).
pub fn udp_dgram(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + payload.len());
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&dport.to_be_bytes());
    v.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(payload);
    v
}

/// An ICMP / ICMPv6 echo message (type 8/0 or 128/129).
pub fn icmp_echo(ty: u8, id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![ty, 0, 0, 0];
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

fn l4_csum_offset(proto: u8) -> Option<usize> {
    match proto {
        PROTO_TCP => Some(16),
        PROTO_UDP => Some(6),
        PROTO_ICMP | PROTO_ICMPV6 => Some(2),
        _ => None,
    }
}

/// Ethernet + IPv4 (DF clear, given TTL and id) + `l4` with its checksum.
#[allow(clippy::too_many_arguments)]
pub fn ipv4(
    src_mac: Mac,
    dst_mac: Mac,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    id: u16,
    proto: u8,
    l4: &[u8],
) -> Vec<u8> {
    let mut f = Vec::with_capacity(34 + l4.len());
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    f.extend_from_slice(&wire::ipv4_header(src, dst, proto, l4.len(), ttl, id));
    let at = f.len();
    f.extend_from_slice(l4);
    if let Some(o) = l4_csum_offset(proto)
        && l4.len() >= o + 2
    {
        f[at + o] = 0;
        f[at + o + 1] = 0;
        let c = if proto == PROTO_ICMP {
            checksum(&f[at..])
        } else {
            let ph = pseudo_header_v4(src, dst, proto, l4.len() as u16);
            l4_checksum(ph, proto, &f[at..])
        };
        f[at + o..at + o + 2].copy_from_slice(&c.to_be_bytes());
    }
    f
}

/// Ethernet + IPv6 (given hop limit) + `l4` with its checksum.
pub fn ipv6(
    src_mac: Mac,
    dst_mac: Mac,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hlim: u8,
    proto: u8,
    l4: &[u8],
) -> Vec<u8> {
    let mut f = Vec::with_capacity(54 + l4.len());
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&(l4.len() as u16).to_be_bytes());
    f.extend_from_slice(&[proto, hlim]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    let at = f.len();
    f.extend_from_slice(l4);
    if let Some(o) = l4_csum_offset(proto)
        && l4.len() >= o + 2
    {
        f[at + o] = 0;
        f[at + o + 1] = 0;
        let ph = pseudo_header_v6(src, dst, proto, l4.len() as u32);
        let c = l4_checksum(ph, proto, &f[at..]);
        f[at + o..at + o + 2].copy_from_slice(&c.to_be_bytes());
    }
    f
}

/// IPv4 or IPv6 depending on the addresses (which must match).
#[allow(clippy::too_many_arguments)]
pub fn ip(
    src_mac: Mac,
    dst_mac: Mac,
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    proto: u8,
    l4: &[u8],
) -> Option<Vec<u8>> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => Some(ipv4(src_mac, dst_mac, s, d, ttl, 0, proto, l4)),
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let proto = if proto == PROTO_ICMP {
                PROTO_ICMPV6
            } else {
                proto
            };
            Some(ipv6(src_mac, dst_mac, s, d, ttl, proto, l4))
        }
        _ => None,
    }
}

/// Verify every checksum of an IPv4/IPv6 TCP/UDP/ICMP frame: the IPv4
/// header checksum and the L4 checksum (pseudo-header included). Used by
/// tests to prove translated frames are valid.
pub fn checksums_ok(f: &[u8]) -> bool {
    let Ok(c) = wire::classify(f) else {
        return false;
    };
    let l3 = usize::from(c.l3_offset);
    let l4 = usize::from(c.l4_offset);
    let end = usize::from(c.l3_end);
    let Some(body) = f.get(l4..end) else {
        return false;
    };
    match c.l3 {
        net::L3Kind::Arp => true,
        net::L3Kind::Ipv4 => {
            if !wire::ipv4_header_ok(f, l3) {
                return false;
            }
            if c.frag.is_some() {
                return true;
            }
            let Some(ip) = wire::ipv4_view(f, l3, end) else {
                return false;
            };
            let proto = ip.protocol();
            match proto {
                PROTO_ICMP => checksum(body) == 0,
                PROTO_TCP | PROTO_UDP => {
                    if proto == PROTO_UDP && body.get(6..8) == Some(&[0, 0]) {
                        return true;
                    }
                    let ph =
                        pseudo_header_v4(ip.src_addr(), ip.dst_addr(), proto, body.len() as u16);
                    verifies(accumulate(u64::from(ph), body))
                }
                _ => true,
            }
        }
        net::L3Kind::Ipv6 => {
            let Some(t) = c.tuple else { return true };
            if !matches!(t.proto, PROTO_TCP | PROTO_UDP | PROTO_ICMPV6) {
                return true;
            }
            let Some(ip) = wire::ipv6_view(f, l3, end) else {
                return false;
            };
            let ph = pseudo_header_v6(ip.src_addr(), ip.dst_addr(), t.proto, body.len() as u32);
            verifies(accumulate(u64::from(ph), body))
        }
    }
}
