//! A frame generator shared by the property and differential tests: a
//! `FrameSpec` describes a frame (VLANs, IPv4 with options and fragment
//! fields, IPv6 with extension headers, ARP, and TCP/UDP/ICMP payloads);
//! `build` turns it into bytes and `expect` says what `classify` must find.
#![allow(dead_code)]

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use net::build::{self, L2};
use net::ethernet::ethertype;
use net::{
    FragInfo, L3Kind, L4Kind, MacAddr, arp, icmpv4, icmpv6, ip_protocol, ipv4, ipv6, tcp, udp,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
pub enum L4Spec {
    Tcp {
        sp: u16,
        dp: u16,
        flags: u16,
        seq: u32,
        opt_words: u8,
        payload: Vec<u8>,
    },
    Udp {
        sp: u16,
        dp: u16,
        payload: Vec<u8>,
    },
    Echo {
        ident: u16,
        seq: u16,
        request: bool,
        payload: Vec<u8>,
    },
    /// An ICMP error quoting a UDP/TCP/echo packet (`inner`: 0 UDP, 1 TCP,
    /// 2 echo) with `extra` bytes quoted beyond header + 8.
    Error {
        kind: u8,
        code: u8,
        inner: u8,
        inner_sp: u16,
        inner_dp: u16,
        extra: u8,
    },
    /// ICMPv6 neighbour solicitation (IPv6 only; on IPv4 becomes Other).
    Ns {
        target: [u8; 16],
        mac: Option<[u8; 6]>,
    },
    Other {
        proto: u8,
        payload: Vec<u8>,
    },
}

#[derive(Debug, Clone)]
pub enum L3Spec {
    V4 {
        src: [u8; 4],
        dst: [u8; 4],
        ttl: u8,
        ident: u16,
        df: bool,
        mf: bool,
        /// Fragment offset in 8-byte units.
        frag_units: u16,
        opt_words: u8,
    },
    V6 {
        src: [u8; 16],
        dst: [u8; 16],
        hop_limit: u8,
        /// Extension headers in order: 0 hop-by-hop, 43 routing, 60 dest
        /// options, 44 fragment (with `frag_units` / `mf`).
        exts: Vec<u8>,
        frag_units: u16,
        mf: bool,
    },
    Arp {
        op: u16,
        sha: [u8; 6],
        spa: [u8; 4],
        tpa: [u8; 4],
    },
}

#[derive(Debug, Clone)]
pub struct FrameSpec {
    pub vlans: Vec<u16>,
    pub l3: L3Spec,
    pub l4: L4Spec,
    pub padding: u8,
}

pub fn l4_strategy() -> impl Strategy<Value = L4Spec> {
    let payload = || proptest::collection::vec(any::<u8>(), 0..64);
    prop_oneof![
        (
            any::<u16>(),
            any::<u16>(),
            0u16..0x200,
            any::<u32>(),
            0u8..=10,
            payload()
        )
            .prop_map(|(sp, dp, flags, seq, opt_words, payload)| L4Spec::Tcp {
                sp,
                dp,
                flags,
                seq,
                opt_words,
                payload
            }),
        (any::<u16>(), any::<u16>(), payload()).prop_map(|(sp, dp, payload)| L4Spec::Udp {
            sp,
            dp,
            payload
        }),
        (any::<u16>(), any::<u16>(), any::<bool>(), payload()).prop_map(
            |(ident, seq, request, payload)| L4Spec::Echo {
                ident,
                seq,
                request,
                payload
            }
        ),
        (0u8..3, 0u8..5, 0u8..3, any::<u16>(), any::<u16>(), 0u8..40).prop_map(
            |(kind, code, inner, inner_sp, inner_dp, extra)| L4Spec::Error {
                kind,
                code,
                inner,
                inner_sp,
                inner_dp,
                extra
            }
        ),
        (any::<[u8; 16]>(), proptest::option::of(any::<[u8; 6]>()))
            .prop_map(|(target, mac)| L4Spec::Ns { target, mac }),
        (
            prop_oneof![Just(47u8), Just(50u8), Just(132u8), Just(59u8)],
            payload()
        )
            .prop_map(|(proto, payload)| L4Spec::Other { proto, payload }),
    ]
}

pub fn l3_strategy() -> impl Strategy<Value = L3Spec> {
    prop_oneof![
        4 => (
            any::<[u8; 4]>(),
            any::<[u8; 4]>(),
            any::<u8>(),
            any::<u16>(),
            any::<bool>(),
            // Mostly unfragmented; sometimes MF and/or an offset.
            prop_oneof![6 => Just((false, 0u16)), 1 => (any::<bool>(), 0u16..200)],
            prop_oneof![3 => Just(0u8), 1 => 0u8..=10],
        )
            .prop_map(|(src, dst, ttl, ident, df, (mf, frag_units), opt_words)| L3Spec::V4 {
                src,
                dst,
                ttl,
                ident,
                df,
                mf,
                frag_units,
                opt_words
            }),
        3 => (
            any::<[u8; 16]>(),
            any::<[u8; 16]>(),
            any::<u8>(),
            prop_oneof![
                3 => Just(vec![]),
                1 => proptest::collection::vec(prop_oneof![Just(43u8), Just(60u8), Just(44u8)], 1..4),
                1 => proptest::collection::vec(prop_oneof![Just(43u8), Just(60u8)], 0..3)
                    .prop_map(|mut v| { v.insert(0, 0); v }),
            ],
            prop_oneof![3 => Just(0u16), 1 => 0u16..200],
            any::<bool>(),
        )
            .prop_map(|(src, dst, hop_limit, exts, frag_units, mf)| L3Spec::V6 {
                src,
                dst,
                hop_limit,
                exts,
                frag_units,
                mf
            }),
        1 => (prop_oneof![Just(1u16), Just(2u16)], any::<[u8; 6]>(), any::<[u8; 4]>(), any::<[u8; 4]>())
            .prop_map(|(op, sha, spa, tpa)| L3Spec::Arp { op, sha, spa, tpa }),
    ]
}

pub fn frame_strategy() -> impl Strategy<Value = FrameSpec> {
    (
        proptest::collection::vec(0u16..4096, 0..=2),
        l3_strategy(),
        l4_strategy(),
        prop_oneof![3 => Just(0u8), 1 => 0u8..20],
    )
        .prop_map(|(vlans, l3, l4, padding)| FrameSpec {
            vlans,
            l3,
            l4,
            padding,
        })
}

impl FrameSpec {
    pub fn is_v6(&self) -> bool {
        matches!(self.l3, L3Spec::V6 { .. })
    }
    /// A fragment with a non-zero offset (no L4 header).
    pub fn non_first_fragment(&self) -> bool {
        match &self.l3 {
            L3Spec::V4 { frag_units, .. } => *frag_units != 0,
            L3Spec::V6 {
                exts, frag_units, ..
            } => exts.contains(&44) && *frag_units != 0,
            L3Spec::Arp { .. } => false,
        }
    }
    pub fn fragment(&self) -> Option<FragInfo> {
        match &self.l3 {
            L3Spec::V4 {
                ident,
                mf,
                frag_units,
                ..
            } => (*mf || *frag_units != 0).then_some(FragInfo {
                id: u32::from(*ident),
                offset: frag_units * 8,
                more_fragments: *mf,
            }),
            L3Spec::V6 {
                exts,
                frag_units,
                mf,
                ..
            } => exts.contains(&44).then_some(FragInfo {
                id: 0x0102_0304,
                offset: frag_units * 8,
                more_fragments: *mf,
            }),
            L3Spec::Arp { .. } => None,
        }
    }
    fn addrs(&self) -> (IpAddr, IpAddr) {
        match &self.l3 {
            L3Spec::V4 { src, dst, .. } => {
                (Ipv4Addr::from(*src).into(), Ipv4Addr::from(*dst).into())
            }
            L3Spec::V6 { src, dst, .. } => {
                (Ipv6Addr::from(*src).into(), Ipv6Addr::from(*dst).into())
            }
            L3Spec::Arp { .. } => (Ipv4Addr::UNSPECIFIED.into(), Ipv4Addr::UNSPECIFIED.into()),
        }
    }

    /// (protocol, L4 bytes) for this spec.
    pub fn l4_bytes(&self) -> (u8, Vec<u8>) {
        let (src, dst) = self.addrs();
        let v6 = self.is_v6();
        let (icmp, icmp_proto) = if v6 {
            (false, ip_protocol::ICMPV6)
        } else {
            (true, ip_protocol::ICMP)
        };
        let v6a = |a: IpAddr| match a {
            IpAddr::V6(a) => a,
            IpAddr::V4(_) => Ipv6Addr::UNSPECIFIED,
        };
        match &self.l4 {
            L4Spec::Tcp {
                sp,
                dp,
                flags,
                seq,
                opt_words,
                payload,
            } => {
                let opts: Vec<u8> = (0..usize::from(*opt_words) * 4)
                    .map(|i| if i % 4 == 3 { 0 } else { 1 })
                    .collect();
                let mut r = tcp::Repr::new(*sp, *dp, *flags, payload);
                r.seq_number = *seq;
                r.options = &opts;
                let mut b = vec![0; r.buffer_len()];
                r.emit(&mut b, &src, &dst).unwrap();
                (ip_protocol::TCP, b)
            }
            L4Spec::Udp { sp, dp, payload } => {
                let r = udp::Repr {
                    src_port: *sp,
                    dst_port: *dp,
                    payload,
                };
                let mut b = vec![0; r.buffer_len()];
                r.emit(&mut b, &src, &dst).unwrap();
                (ip_protocol::UDP, b)
            }
            L4Spec::Echo {
                ident,
                seq,
                request,
                payload,
            } => {
                if icmp {
                    let r = if *request {
                        icmpv4::Repr::EchoRequest {
                            ident: *ident,
                            seq_no: *seq,
                            data: payload,
                        }
                    } else {
                        icmpv4::Repr::EchoReply {
                            ident: *ident,
                            seq_no: *seq,
                            data: payload,
                        }
                    };
                    let mut b = vec![0; r.buffer_len()];
                    r.emit(&mut b).unwrap();
                    (icmp_proto, b)
                } else {
                    let r = if *request {
                        icmpv6::Repr::EchoRequest {
                            ident: *ident,
                            seq_no: *seq,
                            data: payload,
                        }
                    } else {
                        icmpv6::Repr::EchoReply {
                            ident: *ident,
                            seq_no: *seq,
                            data: payload,
                        }
                    };
                    let mut b = vec![0; r.buffer_len()];
                    r.emit(&mut b, &v6a(src), &v6a(dst)).unwrap();
                    (icmp_proto, b)
                }
            }
            L4Spec::Error {
                kind,
                code,
                inner,
                inner_sp,
                inner_dp,
                extra,
            } => {
                // The invoking packet went from dst to src.
                let inner_frame = match (*inner, src, dst) {
                    (0, IpAddr::V4(s), IpAddr::V4(d)) => build::udp4(
                        SocketAddrV4::new(d, *inner_sp),
                        SocketAddrV4::new(s, *inner_dp),
                        &[7; 40],
                    ),
                    (1, IpAddr::V4(s), IpAddr::V4(d)) => build::tcp4(
                        SocketAddrV4::new(d, *inner_sp),
                        SocketAddrV4::new(s, *inner_dp),
                        tcp::flags::ACK,
                        &[7; 40],
                    ),
                    (_, IpAddr::V4(s), IpAddr::V4(d)) => {
                        build::icmp4_echo(d, s, *inner_sp, *inner_dp, true)
                    }
                    (0, IpAddr::V6(s), IpAddr::V6(d)) => build::udp6(
                        SocketAddrV6::new(d, *inner_sp, 0, 0),
                        SocketAddrV6::new(s, *inner_dp, 0, 0),
                        &[7; 40],
                    ),
                    (_, IpAddr::V6(s), IpAddr::V6(d)) => build::tcp6(
                        SocketAddrV6::new(d, *inner_sp, 0, 0),
                        SocketAddrV6::new(s, *inner_dp, 0, 0),
                        tcp::flags::ACK,
                        &[7; 40],
                    ),
                    _ => unreachable!(),
                };
                let ip = build::ip_packet(&inner_frame).unwrap();
                let q = icmpv4::quote(ip).len() + usize::from(*extra);
                let data = &ip[..q.min(ip.len())];
                if icmp {
                    let r = match kind {
                        0 => icmpv4::Repr::DstUnreachable {
                            code: *code,
                            next_hop_mtu: if *code == 4 { 1400 } else { 0 },
                            data,
                        },
                        1 => icmpv4::Repr::TimeExceeded {
                            code: *code % 2,
                            data,
                        },
                        _ => icmpv4::Repr::ParamProblem {
                            code: 0,
                            pointer: *code,
                            data,
                        },
                    };
                    let mut b = vec![0; r.buffer_len()];
                    r.emit(&mut b).unwrap();
                    (icmp_proto, b)
                } else {
                    let r = match kind {
                        0 => icmpv6::Repr::DstUnreachable { code: *code, data },
                        1 => icmpv6::Repr::PacketTooBig { mtu: 1280, data },
                        _ => icmpv6::Repr::TimeExceeded {
                            code: *code % 2,
                            data,
                        },
                    };
                    let mut b = vec![0; r.buffer_len()];
                    r.emit(&mut b, &v6a(src), &v6a(dst)).unwrap();
                    (icmp_proto, b)
                }
            }
            L4Spec::Ns { target, mac } => {
                let r = icmpv6::Repr::NeighborSolicit {
                    target: Ipv6Addr::from(*target),
                    source_lladdr: mac.map(MacAddr),
                };
                let mut b = vec![0; r.buffer_len()];
                r.emit(&mut b, &v6a(src), &v6a(dst)).unwrap();
                if icmp {
                    (ip_protocol::GRE, b)
                } else {
                    (icmp_proto, b)
                }
            }
            L4Spec::Other { proto, payload } => (*proto, payload.clone()),
        }
    }

    pub fn build(&self) -> Vec<u8> {
        let l2 = L2 {
            vlans: &self.vlans,
            ..L2::default()
        };
        let mut f = match &self.l3 {
            L3Spec::Arp { op, sha, spa, tpa } => build::arp_frame(
                &l2,
                &arp::Repr {
                    operation: *op,
                    source_hardware_addr: MacAddr(*sha),
                    source_protocol_addr: (*spa).into(),
                    target_hardware_addr: MacAddr::ZERO,
                    target_protocol_addr: (*tpa).into(),
                },
            ),
            L3Spec::V4 {
                src,
                dst,
                ttl,
                ident,
                df,
                mf,
                frag_units,
                opt_words,
            } => {
                let (proto, l4) = self.l4_bytes();
                let hl = 20 + usize::from(*opt_words) * 4;
                let mut pkt = vec![0u8; hl + l4.len()];
                let mut r = ipv4::Repr::new((*src).into(), (*dst).into(), proto, 0);
                r.ttl = *ttl;
                r.ident = *ident;
                r.dont_frag = *df;
                r.more_frags = *mf;
                r.frag_offset = frag_units * 8;
                r.emit(&mut pkt).unwrap();
                pkt[hl..].copy_from_slice(&l4);
                let mut p = ipv4::Packet::new_unchecked(&mut pkt[..]);
                p.set_header_len(hl);
                p.set_total_len((hl + l4.len()) as u16);
                p.options_mut().fill(1); // NOPs
                p.fill_checksum();
                build::ethernet_frame(&l2, ethertype::IPV4, &pkt)
            }
            L3Spec::V6 {
                src,
                dst,
                hop_limit,
                exts,
                frag_units,
                mf,
            } => {
                let (proto, l4) = self.l4_bytes();
                let mut chain = Vec::new();
                for (i, &e) in exts.iter().enumerate() {
                    let next = exts.get(i + 1).copied().unwrap_or(proto);
                    if e == 44 {
                        let om = (frag_units * 8) | u16::from(*mf);
                        chain.extend_from_slice(&[next, 0]);
                        chain.extend_from_slice(&om.to_be_bytes());
                        chain.extend_from_slice(&0x0102_0304u32.to_be_bytes());
                    } else {
                        chain.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
                    }
                }
                let first = exts.first().copied().unwrap_or(proto);
                let mut r = ipv6::Repr::new((*src).into(), (*dst).into(), first, 0);
                r.hop_limit = *hop_limit;
                r.payload_len = (chain.len() + l4.len()) as u16;
                let mut pkt = vec![0u8; 40];
                r.emit(&mut pkt).unwrap();
                pkt.extend_from_slice(&chain);
                pkt.extend_from_slice(&l4);
                build::ethernet_frame(&l2, ethertype::IPV6, &pkt)
            }
        };
        f.extend(std::iter::repeat_n(0u8, usize::from(self.padding)));
        f
    }

    /// What `classify` must report: (l3, l4, l4 offset, tuple ports).
    pub fn expect(&self) -> (L3Kind, L4Kind, usize, Option<(u16, u16)>) {
        let l3_off = 14 + 4 * self.vlans.len();
        let (l3, l4_off) = match &self.l3 {
            L3Spec::Arp { .. } => return (L3Kind::Arp, L4Kind::None, l3_off + 28, None),
            L3Spec::V4 { opt_words, .. } => {
                (L3Kind::Ipv4, l3_off + 20 + usize::from(*opt_words) * 4)
            }
            L3Spec::V6 { exts, .. } => (L3Kind::Ipv6, l3_off + 40 + exts.len() * 8),
        };
        if self.non_first_fragment() {
            let off = match &self.l3 {
                L3Spec::V6 { exts, .. } => {
                    l3_off + 40 + 8 * (exts.iter().position(|&e| e == 44).unwrap_or(0) + 1)
                }
                _ => l4_off,
            };
            return (l3, L4Kind::Fragment, off, None);
        }
        let (proto, _) = self.l4_bytes();
        let (kind, ports) = match (&self.l4, proto) {
            (L4Spec::Tcp { sp, dp, .. }, _) => (L4Kind::Tcp, (*sp, *dp)),
            (L4Spec::Udp { sp, dp, .. }, _) => (L4Kind::Udp, (*sp, *dp)),
            (L4Spec::Echo { ident, .. }, 1) => (L4Kind::Icmpv4, (*ident, *ident)),
            (L4Spec::Echo { ident, .. }, _) => (L4Kind::Icmpv6, (*ident, *ident)),
            (L4Spec::Error { .. } | L4Spec::Ns { .. }, 1) => (L4Kind::Icmpv4, (0, 0)),
            (L4Spec::Error { .. } | L4Spec::Ns { .. }, 58) => (L4Kind::Icmpv6, (0, 0)),
            (_, p) => (L4Kind::Other(p), (0, 0)),
        };
        (l3, kind, l4_off, Some(ports))
    }
}

/// Frames written by hand (captures and corner cases), for the
/// differential test and the bench.
pub fn hand_made() -> Vec<Vec<u8>> {
    let mut v = vec![
        // Wireshark "http.cap" frame 1 (TCP SYN).
        vec![
            0xfe, 0xff, 0x20, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x08, 0x00,
            0x45, 0x00, 0x00, 0x30, 0x0f, 0x41, 0x40, 0x00, 0x80, 0x06, 0x91, 0xeb, 0x91, 0xfe,
            0xa0, 0xed, 0x41, 0xd0, 0xe4, 0xdf, 0x0d, 0x2c, 0x00, 0x50, 0x38, 0xaf, 0xfe, 0x13,
            0x00, 0x00, 0x00, 0x00, 0x70, 0x02, 0x22, 0x38, 0xc3, 0x0c, 0x00, 0x00, 0x02, 0x04,
            0x05, 0xb4, 0x01, 0x01, 0x04, 0x02,
        ],
    ];
    v.push(build::udp4(
        "10.0.0.1:53".parse().unwrap(),
        "10.0.0.2:5353".parse().unwrap(),
        b"",
    ));
    v.push(build::icmp6_echo(
        "fe80::1".parse().unwrap(),
        "ff02::1".parse().unwrap(),
        1,
        1,
        true,
    ));
    v
}
