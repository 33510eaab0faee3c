use super::*;
use crate::build::{self, L2, L4};
use crate::{icmpv4, ipv4, ipv6, tcp, udp};
use core::net::{Ipv4Addr, Ipv6Addr};

fn v4(a: &str) -> Ipv4Addr {
    a.parse().unwrap()
}
fn v6(a: &str) -> Ipv6Addr {
    a.parse().unwrap()
}

/// Wireshark "http.cap" frame 1, verbatim (TCP SYN 145.254.160.237:3372 ->
/// 65.208.228.223:80).
pub(crate) const HTTP_CAP_SYN: [u8; 62] = [
    0xfe, 0xff, 0x20, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x08, 0x00, 0x45, 0x00,
    0x00, 0x30, 0x0f, 0x41, 0x40, 0x00, 0x80, 0x06, 0x91, 0xeb, 0x91, 0xfe, 0xa0, 0xed, 0x41, 0xd0,
    0xe4, 0xdf, 0x0d, 0x2c, 0x00, 0x50, 0x38, 0xaf, 0xfe, 0x13, 0x00, 0x00, 0x00, 0x00, 0x70, 0x02,
    0x22, 0x38, 0xc3, 0x0c, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x01, 0x01, 0x04, 0x02,
];

#[test]
fn http_cap_syn() {
    let c = classify(&HTTP_CAP_SYN).unwrap();
    assert_eq!(c.l3, L3Kind::Ipv4);
    assert_eq!(c.l4, L4Kind::Tcp);
    assert_eq!((c.l3_offset, c.l4_offset, c.l3_end), (14, 34, 62));
    assert_eq!(c.vlan_count, 0);
    assert_eq!(c.frag, None);
    let t = c.five_tuple().unwrap();
    assert_eq!(t.src, IpAddr::V4(v4("145.254.160.237")));
    assert_eq!(t.dst, IpAddr::V4(v4("65.208.228.223")));
    assert_eq!((t.proto, t.src_port, t.dst_port), (6, 3372, 80));
    crate::checksum::verify_frame(&HTTP_CAP_SYN).unwrap();
}

#[test]
fn vlan_and_qinq() {
    for vlans in [&[][..], &[7][..], &[100, 200][..]] {
        let l2 = L2 {
            vlans,
            ..L2::default()
        };
        let f = build::ipv4_frame(
            &l2,
            ipv4::Repr::new(v4("10.0.0.1"), v4("10.0.0.2"), 17, 0),
            L4::Udp(udp::Repr {
                src_port: 5000,
                dst_port: 53,
                payload: b"q",
            }),
        );
        let c = classify(&f).unwrap();
        assert_eq!(usize::from(c.vlan_count), vlans.len());
        assert_eq!(&c.vlans[..vlans.len()], vlans);
        assert_eq!(usize::from(c.l3_offset), 14 + 4 * vlans.len());
        assert_eq!(c.ethertype, 0x0800);
        assert_eq!(c.l4, L4Kind::Udp);
        assert_eq!(c.five_tuple().unwrap().src_port, 5000);
    }
    // Three tags.
    let mut f = build::ethernet_frame(
        &L2::default(),
        0x8100,
        &[0, 1, 0x81, 0, 0, 2, 0x81, 0, 0, 3, 8, 0],
    );
    assert_eq!(classify(&f), Err(ClassifyError::TooManyVlanTags));
    f.truncate(16);
    assert_eq!(
        classify(&f),
        Err(ClassifyError::Truncated { layer: Layer::Vlan })
    );
}

#[test]
fn ipv6_tcp_and_ext_headers() {
    let f = build::tcp6(
        "[2001:db8::1]:40000".parse().unwrap(),
        "[2001:db8::2]:443".parse().unwrap(),
        tcp::flags::SYN,
        b"",
    );
    let c = classify(&f).unwrap();
    assert_eq!((c.l3, c.l4), (L3Kind::Ipv6, L4Kind::Tcp));
    assert_eq!((c.l4_offset, c.l3_end), (54, 74));
    assert_eq!(c.five_tuple().unwrap().dst_port, 443);

    // Insert hop-by-hop + fragment (first fragment, M=1) before UDP.
    let mut ext = vec![44u8, 0, 0, 0, 0, 0, 0, 0]; // HBH -> frag
    ext.extend_from_slice(&[17, 0, 0, 1, 0, 0, 0, 9]); // frag offset 0, M, id 9
    ext.extend_from_slice(&[0x13, 0x88, 0, 53, 0, 100, 0, 0]); // UDP len 100 > fragment
    let mut ip = ipv6::Repr::new(v6("2001:db8::1"), v6("2001:db8::2"), 0, 0);
    ip.next_header = 0;
    let f = build::ipv6_frame(&L2::default(), ip, L4::Raw(&ext));
    let c = classify(&f).unwrap();
    assert_eq!(c.l4, L4Kind::Udp);
    assert_eq!(c.l4_offset, 14 + 40 + 16);
    assert_eq!(
        c.frag,
        Some(FragInfo {
            id: 9,
            offset: 0,
            more_fragments: true
        })
    );
    assert_eq!(c.five_tuple().unwrap().src_port, 5000);

    // Non-first fragment.
    let ext = [17u8, 0, 0x05, 0xa8, 0, 0, 0, 9, 1, 2, 3, 4];
    let f = build::ipv6_frame(
        &L2::default(),
        ipv6::Repr::new(v6("::1"), v6("::2"), 44, 0),
        L4::Raw(&ext),
    );
    let c = classify(&f).unwrap();
    assert_eq!(c.l4, L4Kind::Fragment);
    assert_eq!(c.l4_offset, 14 + 48);
    assert_eq!(c.five_tuple(), Err(ClassifyError::NonFirstFragment));
}

#[test]
fn ipv4_fragments() {
    let mut ip = ipv4::Repr::new(v4("10.0.0.1"), v4("10.0.0.2"), 17, 0);
    ip.dont_frag = false;
    ip.more_frags = true;
    ip.ident = 0x4242;
    // First fragment: UDP length covers the whole datagram.
    let f = build::ipv4_frame(
        &L2::default(),
        ip,
        L4::Raw(&[0x13, 0x88, 0, 53, 0x05, 0xdc, 0, 0, 1, 2]),
    );
    let c = classify(&f).unwrap();
    assert_eq!(c.l4, L4Kind::Udp);
    assert_eq!(c.frag.unwrap().offset, 0);
    assert!(c.frag.unwrap().more_fragments);
    assert_eq!(c.five_tuple().unwrap().dst_port, 53);
    // Non-first.
    ip.frag_offset = 1480;
    ip.more_frags = false;
    let f = build::ipv4_frame(&L2::default(), ip, L4::Raw(&[9; 20]));
    let c = classify(&f).unwrap();
    assert_eq!(c.l4, L4Kind::Fragment);
    assert_eq!(
        c.frag,
        Some(FragInfo {
            id: 0x4242,
            offset: 1480,
            more_fragments: false
        })
    );
    assert_eq!(c.tuple, None);
    assert_eq!(c.five_tuple(), Err(ClassifyError::NonFirstFragment));
}

#[test]
fn icmp_tuples() {
    let f = build::icmp4_echo(v4("10.0.0.1"), v4("1.1.1.1"), 0xbeef, 1, true);
    let c = classify(&f).unwrap();
    let t = c.five_tuple().unwrap();
    assert_eq!((t.proto, t.src_port, t.dst_port), (1, 0xbeef, 0xbeef));
    assert_eq!(c.icmp_type_code, Some((8, 0)));
    assert!(c.is_icmp_echo() && !c.is_icmp_error());

    // A timestamp request is a query too: its identifier as both ports.
    let mut ts = f.clone();
    let l4 = usize::from(c.l4_offset);
    ts[l4] = icmpv4::msg_type::TIMESTAMP;
    let t = classify(&ts).unwrap().five_tuple().unwrap();
    assert_eq!((t.src_port, t.dst_port), (0xbeef, 0xbeef));
    // Address mask (deprecated, RFC 6918): no identifier.
    ts[l4] = 17;
    let t = classify(&ts).unwrap().five_tuple().unwrap();
    assert_eq!((t.src_port, t.dst_port), (0, 0));

    let inner = build::udp4(
        "10.0.0.1:5000".parse().unwrap(),
        "8.8.8.8:53".parse().unwrap(),
        b"hello",
    );
    let err = build::icmp4_error(
        v4("192.0.2.1"),
        v4("10.0.0.1"),
        icmpv4::Repr::TimeExceeded { code: 0, data: &[] },
        build::ip_packet(&inner).unwrap(),
    );
    let c = classify(&err).unwrap();
    assert!(c.is_icmp_error());
    let t = c.five_tuple().unwrap();
    assert_eq!((t.src_port, t.dst_port), (0, 0));

    let f = build::icmp6_echo(v6("2001:db8::1"), v6("2001:db8::2"), 77, 1, false);
    let c = classify(&f).unwrap();
    assert_eq!(c.l4, L4Kind::Icmpv6);
    assert_eq!(c.icmp_type_code, Some((129, 0)));
    assert_eq!(c.five_tuple().unwrap().src_port, 77);
}

#[test]
fn arp_and_unsupported() {
    let a = crate::arp::Repr {
        operation: 1,
        source_hardware_addr: crate::MacAddr([2, 0, 0, 0, 0, 1]),
        source_protocol_addr: v4("10.0.0.1"),
        target_hardware_addr: crate::MacAddr::ZERO,
        target_protocol_addr: v4("10.0.0.2"),
    };
    let mut f = build::arp_frame(&L2::default(), &a);
    f.resize(60, 0); // padded to the Ethernet minimum
    let c = classify(&f).unwrap();
    assert_eq!((c.l3, c.l4, c.l3_end), (L3Kind::Arp, L4Kind::None, 42));
    assert_eq!(c.five_tuple(), Err(ClassifyError::NotIp));
    f.truncate(41);
    assert_eq!(
        classify(&f),
        Err(ClassifyError::Truncated { layer: Layer::Arp })
    );

    let f = build::ethernet_frame(&L2::default(), 0x88cc, &[0; 46]);
    assert_eq!(
        classify(&f),
        Err(ClassifyError::UnsupportedEthertype(0x88cc))
    );
    assert_eq!(
        classify(&[0; 13]),
        Err(ClassifyError::Truncated {
            layer: Layer::Ethernet
        })
    );
}

#[test]
fn malformed_ipv4() {
    let good = build::udp4(
        "10.0.0.1:1".parse().unwrap(),
        "10.0.0.2:2".parse().unwrap(),
        b"abcd",
    );
    let mut f = good.clone();
    f[14] = 0x65;
    assert_eq!(classify(&f), Err(ClassifyError::BadVersion));
    let mut f = good.clone();
    f[14] = 0x44;
    assert_eq!(classify(&f), Err(ClassifyError::BadIhl));
    let mut f = good.clone();
    f[14] = 0x4f;
    assert_eq!(
        classify(&f),
        Err(ClassifyError::Truncated { layer: Layer::Ipv4 })
    );
    let mut f = good.clone();
    f[17] += 1; // total length one past the frame
    assert_eq!(classify(&f), Err(ClassifyError::BadTotalLength));
    let mut f = good.clone();
    f[16] = 0;
    f[17] = 19;
    assert_eq!(classify(&f), Err(ClassifyError::BadTotalLength));
    assert_eq!(
        classify(&good[..33]),
        Err(ClassifyError::Truncated { layer: Layer::Ipv4 })
    );
    // UDP length past the IP payload; UDP header cut by the total length.
    let mut f = good.clone();
    f[39] += 1;
    assert_eq!(classify(&f), Err(ClassifyError::BadUdpLength));
    let mut f = good.clone();
    f[17] = 20 + 7;
    assert_eq!(
        classify(&f),
        Err(ClassifyError::Truncated { layer: Layer::Udp })
    );
    // Padding after the total length is fine and excluded.
    let mut f = good.clone();
    f.extend_from_slice(&[0; 10]);
    assert_eq!(usize::from(classify(&f).unwrap().l3_end), good.len());
}

#[test]
fn malformed_tcp_and_ipv6() {
    let good = build::tcp4(
        "10.0.0.1:1".parse().unwrap(),
        "10.0.0.2:2".parse().unwrap(),
        tcp::flags::ACK,
        b"",
    );
    let mut f = good.clone();
    f[46] = 0x40;
    assert_eq!(classify(&f), Err(ClassifyError::BadDataOffset));
    let mut f = good.clone();
    f[46] = 0x60;
    assert_eq!(
        classify(&f),
        Err(ClassifyError::Truncated { layer: Layer::Tcp })
    );

    let good = build::udp6("[::1]:1".parse().unwrap(), "[::2]:2".parse().unwrap(), b"x");
    let mut f = good.clone();
    f[14] = 0x40;
    assert_eq!(classify(&f), Err(ClassifyError::BadVersion));
    let mut f = good.clone();
    f[19] += 1;
    assert_eq!(classify(&f), Err(ClassifyError::BadTotalLength));
    assert_eq!(
        classify(&good[..53]),
        Err(ClassifyError::Truncated { layer: Layer::Ipv6 })
    );
    // Too many extension headers.
    let many: Vec<u8> = (0..9)
        .flat_map(|_| [60u8, 0, 0, 0, 0, 0, 0, 0])
        .chain([0u8; 8])
        .collect();
    let f = build::ipv6_frame(
        &L2::default(),
        ipv6::Repr::new(v6("::1"), v6("::2"), 60, 0),
        L4::Raw(&many),
    );
    assert_eq!(classify(&f), Err(ClassifyError::TooManyExtensionHeaders));
}

#[test]
fn non_first_fragment_of_ah_packet_is_not_parsed() {
    let mut ip = ipv4::Repr::new(v4("10.0.0.1"), v4("10.0.0.2"), 51, 0);
    ip.frag_offset = 64;
    ip.dont_frag = false;
    // Bytes that would be an invalid AH (length field 0) if parsed.
    let f = build::ipv4_frame(&L2::default(), ip, L4::Raw(&[6, 0, 0, 0, 0, 0, 0, 0]));
    let c = classify(&f).unwrap();
    assert_eq!((c.l4, c.l4_offset), (L4Kind::Fragment, 34));
    // The first fragment's AH is skipped: (4 + 2) * 4 = 24 bytes, then TCP.
    ip.frag_offset = 0;
    let mut pl = vec![6u8, 4];
    pl.resize(24, 0);
    pl.extend_from_slice(&[
        0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0,
    ]);
    let f = build::ipv4_frame(&L2::default(), ip, L4::Raw(&pl));
    let c = classify(&f).unwrap();
    assert_eq!((c.l4, c.l4_offset), (L4Kind::Tcp, 34 + 24));
    assert_eq!(c.five_tuple().unwrap().dst_port, 2);
}
