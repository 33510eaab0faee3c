//! Whole-frame builders on top of the `Repr` emitters, for tests (here and
//! in the other crates) and for control-path packets. These allocate a
//! `Vec`; the dataplane's hot path emits `Repr`s into its own buffers.
//!
//! ```
//! use net::build::{self, L2};
//! let frame = build::udp4("10.0.0.1:1234".parse().unwrap(), "8.8.8.8:53".parse().unwrap(), b"hi");
//! let cls = net::checksum::verify_frame(&frame).unwrap();
//! assert_eq!(cls.five_tuple().unwrap().dst_port, 53);
//! let tagged = build::ipv4_frame(
//!     &L2 { vlans: &[100, 200], ..L2::default() },
//!     net::ipv4::Repr::new("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap(), 6, 0),
//!     build::L4::Tcp(net::tcp::Repr::new(1, 2, net::tcp::flags::SYN, b"")),
//! );
//! assert_eq!(net::classify(&tagged).unwrap().vlans, [100, 200]);
//! ```

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use crate::ethernet::{self, MacAddr, ethertype};
use crate::{arp, icmpv4, icmpv6, ip_protocol, ipv4, ipv6, tcp, udp, vlan};

/// Layer 2 of a built frame. With two VLAN ids the outer tag uses TPID
/// 0x88a8 (802.1ad) and the inner 0x8100; with one, 0x8100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L2<'a> {
    pub src: MacAddr,
    pub dst: MacAddr,
    /// VLAN ids, outermost first (0, 1 or 2 of them).
    pub vlans: &'a [u16],
}

/// Source MAC of [`L2::default`].
pub const DEFAULT_SRC_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
/// Destination MAC of [`L2::default`].
pub const DEFAULT_DST_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);

impl Default for L2<'static> {
    fn default() -> Self {
        L2 {
            src: DEFAULT_SRC_MAC,
            dst: DEFAULT_DST_MAC,
            vlans: &[],
        }
    }
}

/// The upper layer of a built IP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4<'a> {
    Tcp(tcp::Repr<'a>),
    Udp(udp::Repr<'a>),
    Icmpv4(icmpv4::Repr<'a>),
    Icmpv6(icmpv6::Repr<'a>),
    /// Raw bytes after the IP header (the IP protocol comes from the IP
    /// `Repr`).
    Raw(&'a [u8]),
}

impl L4<'_> {
    fn len(&self) -> usize {
        match self {
            L4::Tcp(r) => r.buffer_len(),
            L4::Udp(r) => r.buffer_len(),
            L4::Icmpv4(r) => r.buffer_len(),
            L4::Icmpv6(r) => r.buffer_len(),
            L4::Raw(b) => b.len(),
        }
    }
    fn protocol(&self) -> Option<u8> {
        match self {
            L4::Tcp(_) => Some(ip_protocol::TCP),
            L4::Udp(_) => Some(ip_protocol::UDP),
            L4::Icmpv4(_) => Some(ip_protocol::ICMP),
            L4::Icmpv6(_) => Some(ip_protocol::ICMPV6),
            L4::Raw(_) => None,
        }
    }
    fn emit(&self, buf: &mut [u8], src: IpAddr, dst: IpAddr) {
        // The buffer was sized from `len()`, so these cannot fail; a
        // mixed-family ICMPv6 pair falls back to the unspecified address.
        let _ = match self {
            L4::Tcp(r) => r.emit(buf, &src, &dst),
            L4::Udp(r) => r.emit(buf, &src, &dst),
            L4::Icmpv4(r) => r.emit(buf),
            L4::Icmpv6(r) => {
                let v6 = |a: IpAddr| match a {
                    IpAddr::V6(a) => a,
                    IpAddr::V4(_) => Ipv6Addr::UNSPECIFIED,
                };
                r.emit(buf, &v6(src), &v6(dst))
            }
            L4::Raw(b) => {
                buf[..b.len()].copy_from_slice(b);
                Ok(())
            }
        };
    }
}

/// Ethernet header + VLAN tags carrying `ethertype` and `payload`.
pub fn ethernet_frame(l2: &L2<'_>, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let tags = l2.vlans.len().min(2);
    let hl = ethernet::HEADER_LEN + tags * vlan::HEADER_LEN;
    let mut out = vec![0u8; hl + payload.len()];
    let first = match tags {
        0 => ethertype,
        1 => ethertype::VLAN,
        _ => ethertype::QINQ,
    };
    let _ = ethernet::Repr {
        src_addr: l2.src,
        dst_addr: l2.dst,
        ethertype: first,
    }
    .emit(&mut out);
    let mut off = ethernet::HEADER_LEN;
    for (i, &vid) in l2.vlans.iter().take(2).enumerate() {
        let next = if i + 1 < tags {
            ethertype::VLAN
        } else {
            ethertype
        };
        let _ = vlan::Repr {
            pcp: 0,
            dei: false,
            vid,
            ethertype: next,
        }
        .emit(&mut out[off..]);
        off += vlan::HEADER_LEN;
    }
    out[hl..].copy_from_slice(payload);
    out
}

/// An IPv4 frame: `ip.payload_len` and (unless `l4` is `Raw`) `ip.protocol`
/// are set from `l4`; all checksums are filled.
pub fn ipv4_frame(l2: &L2<'_>, mut ip: ipv4::Repr, l4: L4<'_>) -> Vec<u8> {
    let len = l4.len();
    ip.payload_len = len as u16;
    if let Some(p) = l4.protocol() {
        ip.protocol = p;
    }
    let mut pkt = vec![0u8; ipv4::HEADER_LEN + len];
    let _ = ip.emit(&mut pkt);
    l4.emit(
        &mut pkt[ipv4::HEADER_LEN..],
        ip.src_addr.into(),
        ip.dst_addr.into(),
    );
    ethernet_frame(l2, ethertype::IPV4, &pkt)
}

/// An IPv6 frame (no extension headers): `ip.payload_len` and (unless
/// `Raw`) `ip.next_header` are set from `l4`; checksums are filled.
pub fn ipv6_frame(l2: &L2<'_>, mut ip: ipv6::Repr, l4: L4<'_>) -> Vec<u8> {
    let len = l4.len();
    ip.payload_len = len as u16;
    if let Some(p) = l4.protocol() {
        ip.next_header = p;
    }
    let mut pkt = vec![0u8; ipv6::HEADER_LEN + len];
    let _ = ip.emit(&mut pkt);
    l4.emit(
        &mut pkt[ipv6::HEADER_LEN..],
        ip.src_addr.into(),
        ip.dst_addr.into(),
    );
    ethernet_frame(l2, ethertype::IPV6, &pkt)
}

/// An ARP frame.
pub fn arp_frame(l2: &L2<'_>, a: &arp::Repr) -> Vec<u8> {
    let mut pkt = [0u8; arp::ETH_IPV4_LEN];
    let _ = a.emit(&mut pkt);
    ethernet_frame(l2, ethertype::ARP, &pkt)
}

/// UDP over IPv4 with default MACs, TTL 64, DF.
pub fn udp4(src: SocketAddrV4, dst: SocketAddrV4, payload: &[u8]) -> Vec<u8> {
    ipv4_frame(
        &L2::default(),
        ipv4::Repr::new(*src.ip(), *dst.ip(), ip_protocol::UDP, 0),
        L4::Udp(udp::Repr {
            src_port: src.port(),
            dst_port: dst.port(),
            payload,
        }),
    )
}

/// TCP over IPv4 with default MACs; `flags` from [`tcp::flags`].
pub fn tcp4(src: SocketAddrV4, dst: SocketAddrV4, flags: u16, payload: &[u8]) -> Vec<u8> {
    ipv4_frame(
        &L2::default(),
        ipv4::Repr::new(*src.ip(), *dst.ip(), ip_protocol::TCP, 0),
        L4::Tcp(tcp::Repr::new(src.port(), dst.port(), flags, payload)),
    )
}

/// ICMPv4 echo request (`request`) or reply with default MACs.
pub fn icmp4_echo(src: Ipv4Addr, dst: Ipv4Addr, ident: u16, seq_no: u16, request: bool) -> Vec<u8> {
    let data = b"net-echo";
    let r = if request {
        icmpv4::Repr::EchoRequest {
            ident,
            seq_no,
            data,
        }
    } else {
        icmpv4::Repr::EchoReply {
            ident,
            seq_no,
            data,
        }
    };
    ipv4_frame(
        &L2::default(),
        ipv4::Repr::new(src, dst, ip_protocol::ICMP, 0),
        L4::Icmpv4(r),
    )
}

/// An ICMPv4 error from `src` to `dst` quoting `invoking` (an IPv4 packet
/// starting at its header; quoted as header + 8 bytes, RFC 792). `repr`
/// gives the type: its `data` is replaced by the quote.
pub fn icmp4_error(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    repr: icmpv4::Repr<'_>,
    invoking: &[u8],
) -> Vec<u8> {
    let q = icmpv4::quote(invoking);
    let r = match repr {
        icmpv4::Repr::DstUnreachable {
            code, next_hop_mtu, ..
        } => icmpv4::Repr::DstUnreachable {
            code,
            next_hop_mtu,
            data: q,
        },
        icmpv4::Repr::TimeExceeded { code, .. } => icmpv4::Repr::TimeExceeded { code, data: q },
        icmpv4::Repr::ParamProblem { code, pointer, .. } => icmpv4::Repr::ParamProblem {
            code,
            pointer,
            data: q,
        },
        icmpv4::Repr::Other {
            msg_type,
            code,
            rest,
            ..
        } => icmpv4::Repr::Other {
            msg_type,
            code,
            rest,
            data: q,
        },
        echo => echo,
    };
    ipv4_frame(
        &L2::default(),
        ipv4::Repr::new(src, dst, ip_protocol::ICMP, 0),
        L4::Icmpv4(r),
    )
}

/// ICMP destination unreachable, fragmentation needed and DF set (type 3
/// code 4, RFC 1191 §4): from `src` to the source of `invoking` (an IPv4
/// packet starting at its header, as received), carrying the next-hop MTU
/// and quoting the header + 8 bytes ([`icmpv4::quote`]). TTL 64, DF clear.
/// `None` when `invoking` has no IPv4 header to answer.
pub fn icmp4_frag_needed(
    l2: &L2<'_>,
    src: Ipv4Addr,
    next_hop_mtu: u16,
    invoking: &[u8],
) -> Option<Vec<u8>> {
    let p = ipv4::Packet::new_unchecked(invoking);
    p.check_header_len().ok()?;
    let msg = icmpv4::Repr::DstUnreachable {
        code: icmpv4::unreachable::FRAG_NEEDED,
        next_hop_mtu,
        data: icmpv4::quote(invoking),
    };
    let ip = ipv4::Repr {
        dont_frag: false,
        ..ipv4::Repr::new(src, p.src_addr(), ip_protocol::ICMP, 0)
    };
    Some(ipv4_frame(l2, ip, L4::Icmpv4(msg)))
}

/// ICMPv6 Packet Too Big (type 2, RFC 4443 §3.2, RFC 8201): from `src` to
/// the source of `invoking` (an IPv6 packet starting at its header), with
/// `mtu` and as much of the packet as fits in 1 280 bytes
/// ([`icmpv6::quote`]). `None` when `invoking` has no IPv6 header.
pub fn icmp6_packet_too_big(
    l2: &L2<'_>,
    src: Ipv6Addr,
    hop_limit: u8,
    mtu: u32,
    invoking: &[u8],
) -> Option<Vec<u8>> {
    let p = ipv6::Packet::new_checked(invoking).ok()?;
    let msg = icmpv6::Repr::PacketTooBig {
        mtu,
        data: icmpv6::quote(invoking),
    };
    let ip = ipv6::Repr {
        hop_limit,
        ..ipv6::Repr::new(src, p.src_addr(), ip_protocol::ICMPV6, 0)
    };
    Some(ipv6_frame(l2, ip, L4::Icmpv6(msg)))
}

/// The IPv4 packet `packet` (starting at its header) as fragments of at
/// most `mtu` bytes ([`crate::fragment::Fragmenter`]), each an IPv4 packet.
///
/// # Errors
/// As [`crate::fragment::Fragmenter::new`].
pub fn ipv4_fragments(
    packet: &[u8],
    mtu: usize,
) -> Result<Vec<Vec<u8>>, crate::fragment::FragmentError> {
    let f = crate::fragment::Fragmenter::new(packet, mtu)?;
    (0..f.count())
        .map(|i| {
            let mut b = vec![0u8; f.fragment_len(i)];
            f.emit(i, &mut b).map(|_| b)
        })
        .collect()
}

/// UDP over IPv6 with default MACs.
pub fn udp6(src: SocketAddrV6, dst: SocketAddrV6, payload: &[u8]) -> Vec<u8> {
    ipv6_frame(
        &L2::default(),
        ipv6::Repr::new(*src.ip(), *dst.ip(), ip_protocol::UDP, 0),
        L4::Udp(udp::Repr {
            src_port: src.port(),
            dst_port: dst.port(),
            payload,
        }),
    )
}

/// TCP over IPv6 with default MACs.
pub fn tcp6(src: SocketAddrV6, dst: SocketAddrV6, flags: u16, payload: &[u8]) -> Vec<u8> {
    ipv6_frame(
        &L2::default(),
        ipv6::Repr::new(*src.ip(), *dst.ip(), ip_protocol::TCP, 0),
        L4::Tcp(tcp::Repr::new(src.port(), dst.port(), flags, payload)),
    )
}

/// ICMPv6 echo request or reply with default MACs.
pub fn icmp6_echo(src: Ipv6Addr, dst: Ipv6Addr, ident: u16, seq_no: u16, request: bool) -> Vec<u8> {
    let data = b"net-echo";
    let r = if request {
        icmpv6::Repr::EchoRequest {
            ident,
            seq_no,
            data,
        }
    } else {
        icmpv6::Repr::EchoReply {
            ident,
            seq_no,
            data,
        }
    };
    ipv6_frame(
        &L2::default(),
        ipv6::Repr::new(src, dst, ip_protocol::ICMPV6, 0),
        L4::Icmpv6(r),
    )
}

/// The IP packet (L3 onwards, padding excluded) of a frame, if it
/// classifies: handy as the `invoking` argument of [`icmp4_error`].
pub fn ip_packet(frame: &[u8]) -> Option<&[u8]> {
    let c = crate::classify(frame).ok()?;
    c.l3_bytes(frame)
}
