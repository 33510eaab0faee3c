//! NAT rewrite helpers: after every rewrite all checksums verify, and the
//! result equals the packet built directly with the new values.

use core::net::Ipv4Addr;

use net::build::{self, L2, L4};
use net::checksum::{self, RewriteError};
use net::{L4Kind, classify, icmpv4, ipv4, tcp, udp};

fn v4(a: &str) -> Ipv4Addr {
    a.parse().unwrap()
}

#[test]
fn snat_tcp_equals_direct_build() {
    let mut f = build::tcp4(
        "10.0.0.5:40000".parse().unwrap(),
        "93.184.216.34:443".parse().unwrap(),
        tcp::flags::SYN,
        b"hello",
    );
    let cls = classify(&f).unwrap();
    checksum::rewrite_ipv4_src(&mut f, &cls, v4("203.0.113.7"), 61000).unwrap();
    let want = build::tcp4(
        "203.0.113.7:61000".parse().unwrap(),
        "93.184.216.34:443".parse().unwrap(),
        tcp::flags::SYN,
        b"hello",
    );
    assert_eq!(f, want);
    let c = checksum::verify_frame(&f).unwrap();
    assert_eq!(c.five_tuple().unwrap().src_port, 61000);
}

#[test]
fn dnat_udp_and_zero_checksum() {
    let mut f = build::udp4(
        "198.51.100.1:5353".parse().unwrap(),
        "203.0.113.7:8080".parse().unwrap(),
        b"x",
    );
    let cls = classify(&f).unwrap();
    checksum::rewrite_ipv4_dst(&mut f, &cls, v4("10.0.0.9"), 80).unwrap();
    checksum::verify_frame(&f).unwrap();
    let t = classify(&f).unwrap().five_tuple().unwrap();
    assert_eq!((t.dst, t.dst_port), (v4("10.0.0.9").into(), 80));

    // UDP without checksum over IPv4: stays 0.
    let mut f = build::udp4(
        "198.51.100.1:5353".parse().unwrap(),
        "203.0.113.7:8080".parse().unwrap(),
        b"x",
    );
    let cls = classify(&f).unwrap();
    let ck_at = usize::from(cls.l4_offset) + 6;
    f[ck_at] = 0;
    f[ck_at + 1] = 0;
    checksum::rewrite_ipv4_dst(&mut f, &cls, v4("10.0.0.9"), 80).unwrap();
    assert_eq!(&f[ck_at..ck_at + 2], &[0, 0]);
    checksum::verify_frame(&f).unwrap();
}

#[test]
fn icmp_echo_identifier() {
    let mut f = build::icmp4_echo(v4("10.0.0.5"), v4("1.1.1.1"), 0x1234, 9, true);
    let cls = classify(&f).unwrap();
    checksum::rewrite_ipv4_src(&mut f, &cls, v4("203.0.113.7"), 0x9999).unwrap();
    assert_eq!(
        f,
        build::icmp4_echo(v4("203.0.113.7"), v4("1.1.1.1"), 0x9999, 9, true)
    );
    // The reply comes back to the public address and identifier.
    let mut r = build::icmp4_echo(v4("1.1.1.1"), v4("203.0.113.7"), 0x9999, 9, false);
    let cls = classify(&r).unwrap();
    checksum::rewrite_ipv4_dst(&mut r, &cls, v4("10.0.0.5"), 0x1234).unwrap();
    assert_eq!(
        r,
        build::icmp4_echo(v4("1.1.1.1"), v4("10.0.0.5"), 0x1234, 9, false)
    );
}

/// An ICMP error quoting `inner` (the public-side packet); after the NAT
/// rewrites outer dst and embedded src it must equal the error quoting the
/// private-side packet, sent to the private host.
fn icmp_error_case(public_inner: Vec<u8>, private_inner: Vec<u8>, new_port: u16, quote_all: bool) {
    let make = |inner: &[u8], dst: Ipv4Addr| {
        let ip = build::ip_packet(inner).unwrap();
        let data = if quote_all { ip } else { icmpv4::quote(ip) };
        build::ipv4_frame(
            &L2::default(),
            ipv4::Repr::new(v4("192.0.2.254"), dst, 1, 0),
            L4::Icmpv4(icmpv4::Repr::DstUnreachable {
                code: icmpv4::unreachable::FRAG_NEEDED,
                next_hop_mtu: 1400,
                data,
            }),
        )
    };
    let mut f = make(&public_inner, v4("203.0.113.7"));
    let cls = classify(&f).unwrap();
    assert!(cls.is_icmp_error());
    checksum::rewrite_ipv4_dst_addr(&mut f, &cls, v4("10.0.0.5")).unwrap();
    checksum::rewrite_icmpv4_embedded_src(&mut f, &cls, v4("10.0.0.5"), new_port).unwrap();
    checksum::verify_frame(&f).unwrap();
    assert_eq!(f, make(&private_inner, v4("10.0.0.5")));
}

#[test]
fn icmp_error_embedded_udp_tcp_echo() {
    let dst = "93.184.216.34:53".parse().unwrap();
    for quote_all in [false, true] {
        icmp_error_case(
            build::udp4("203.0.113.7:61000".parse().unwrap(), dst, b"query"),
            build::udp4("10.0.0.5:40000".parse().unwrap(), dst, b"query"),
            40000,
            quote_all,
        );
        icmp_error_case(
            build::tcp4(
                "203.0.113.7:61000".parse().unwrap(),
                dst,
                tcp::flags::ACK,
                b"data",
            ),
            build::tcp4(
                "10.0.0.5:40000".parse().unwrap(),
                dst,
                tcp::flags::ACK,
                b"data",
            ),
            40000,
            quote_all,
        );
        icmp_error_case(
            build::icmp4_echo(v4("203.0.113.7"), v4("93.184.216.34"), 0x9999, 1, true),
            build::icmp4_echo(v4("10.0.0.5"), v4("93.184.216.34"), 0x1234, 1, true),
            0x1234,
            quote_all,
        );
    }
}

#[test]
fn errors_leave_frame_untouched() {
    // Non-first fragment: no port.
    let mut ip = ipv4::Repr::new(v4("10.0.0.1"), v4("10.0.0.2"), 17, 0);
    ip.frag_offset = 8;
    ip.dont_frag = false;
    let mut f = build::ipv4_frame(&L2::default(), ip, L4::Raw(&[1; 16]));
    let before = f.clone();
    let cls = classify(&f).unwrap();
    assert_eq!(cls.l4, L4Kind::Fragment);
    assert_eq!(
        checksum::rewrite_ipv4_src(&mut f, &cls, v4("1.2.3.4"), 1),
        Err(RewriteError::NoPort)
    );
    assert_eq!(f, before);
    // Address only works on fragments.
    checksum::rewrite_ipv4_src_addr(&mut f, &cls, v4("1.2.3.4")).unwrap();
    checksum::verify_frame(&f).unwrap();

    // IPv6 is not NATed.
    let mut f = build::udp6("[::1]:1".parse().unwrap(), "[::2]:2".parse().unwrap(), b"");
    let cls = classify(&f).unwrap();
    assert_eq!(
        checksum::rewrite_ipv4_src(&mut f, &cls, v4("1.2.3.4"), 1),
        Err(RewriteError::NotIpv4)
    );
    // A classification of another frame.
    let mut short = build::udp4(
        "10.0.0.1:1".parse().unwrap(),
        "10.0.0.2:2".parse().unwrap(),
        b"",
    );
    let long = build::udp4(
        "10.0.0.1:1".parse().unwrap(),
        "10.0.0.2:2".parse().unwrap(),
        &[0; 100],
    );
    let cls = classify(&long).unwrap();
    assert_eq!(
        checksum::rewrite_ipv4_src(&mut short, &cls, v4("1.2.3.4"), 1),
        Err(RewriteError::Mismatch)
    );
    // Not an ICMP error.
    let mut f = build::icmp4_echo(v4("10.0.0.5"), v4("1.1.1.1"), 1, 1, true);
    let cls = classify(&f).unwrap();
    assert_eq!(
        checksum::rewrite_icmpv4_embedded_src(&mut f, &cls, v4("1.2.3.4"), 1),
        Err(RewriteError::NotIcmpError)
    );
}

#[test]
fn verify_detects_corruption() {
    let f = build::udp4(
        "10.0.0.1:1".parse().unwrap(),
        "10.0.0.2:2".parse().unwrap(),
        b"abc",
    );
    let cls = classify(&f).unwrap();
    let mut bad = f.clone();
    bad[usize::from(cls.l3_offset) + 8] ^= 1; // TTL
    assert_eq!(
        checksum::verify_frame(&bad),
        Err(checksum::ChecksumError::Ipv4Header)
    );
    let mut bad = f.clone();
    *bad.last_mut().unwrap() ^= 0x40;
    assert_eq!(
        checksum::verify_frame(&bad),
        Err(checksum::ChecksumError::Udp)
    );
    let mut fixed = bad.clone();
    checksum::fill_frame(&mut fixed).unwrap();
    checksum::verify_frame(&fixed).unwrap();
    let _ = udp::HEADER_LEN;
}

#[test]
fn src_dst_in_one_pass_equals_direct_build() {
    // Hairpin: both ends translated in one pass, one delta per checksum.
    let from = "10.0.0.5:40000".parse().unwrap();
    let to = "203.0.113.7:8080".parse().unwrap();
    let (nsrc, ndst) = ("203.0.113.7:61000", "10.0.0.9:80");
    let mut f = build::tcp4(from, to, tcp::flags::ACK, b"hairpin");
    let cls = classify(&f).unwrap();
    checksum::rewrite_ipv4_src_dst(&mut f, &cls, v4("203.0.113.7"), 61000, v4("10.0.0.9"), 80)
        .unwrap();
    let want = build::tcp4(
        nsrc.parse().unwrap(),
        ndst.parse().unwrap(),
        tcp::flags::ACK,
        b"hairpin",
    );
    assert_eq!(f, want);

    let mut f = build::udp4(from, to, b"x");
    let cls = classify(&f).unwrap();
    checksum::rewrite_ipv4_src_dst(&mut f, &cls, v4("203.0.113.7"), 61000, v4("10.0.0.9"), 80)
        .unwrap();
    assert_eq!(
        f,
        build::udp4(nsrc.parse().unwrap(), ndst.parse().unwrap(), b"x")
    );

    // Unchanged fields cost nothing: same bytes as the one-sided helper.
    let mut a = build::udp4(from, to, b"x");
    let mut b = a.clone();
    let cls = classify(&a).unwrap();
    checksum::rewrite_ipv4_src(&mut a, &cls, v4("203.0.113.7"), 61000).unwrap();
    checksum::rewrite_ipv4_src_dst(&mut b, &cls, v4("203.0.113.7"), 61000, *to.ip(), to.port())
        .unwrap();
    assert_eq!(a, b);

    // ICMP echo: one identifier, which ends up as the destination-side value.
    let mut f = build::icmp4_echo(v4("10.0.0.5"), v4("203.0.113.7"), 0x1234, 9, true);
    let cls = classify(&f).unwrap();
    checksum::rewrite_ipv4_src_dst(&mut f, &cls, v4("203.0.113.7"), 7, v4("10.0.0.9"), 0x4321)
        .unwrap();
    assert_eq!(
        f,
        build::icmp4_echo(v4("203.0.113.7"), v4("10.0.0.9"), 0x4321, 9, true)
    );
    checksum::verify_frame(&f).unwrap();

    // Not for packets without ports; nothing written.
    let mut ip = ipv4::Repr::new(v4("10.0.0.1"), v4("10.0.0.2"), 17, 0);
    ip.frag_offset = 8;
    ip.dont_frag = false;
    let mut f = build::ipv4_frame(&L2::default(), ip, L4::Raw(&[1; 16]));
    let before = f.clone();
    let cls = classify(&f).unwrap();
    assert_eq!(
        checksum::rewrite_ipv4_src_dst(&mut f, &cls, v4("1.2.3.4"), 1, v4("5.6.7.8"), 2),
        Err(RewriteError::NoPort)
    );
    assert_eq!(f, before);
}

#[test]
fn both_addresses_on_fragments() {
    // Non-first fragment: header checksum only.
    let mut ip = ipv4::Repr::new(v4("10.0.0.1"), v4("10.0.0.2"), 17, 0);
    ip.frag_offset = 8;
    ip.dont_frag = false;
    let mut f = build::ipv4_frame(&L2::default(), ip, L4::Raw(&[1; 16]));
    let cls = classify(&f).unwrap();
    checksum::rewrite_ipv4_addrs(&mut f, &cls, v4("203.0.113.7"), v4("10.0.0.9")).unwrap();
    let mut ip2 = ipv4::Repr::new(v4("203.0.113.7"), v4("10.0.0.9"), 17, 0);
    ip2.frag_offset = 8;
    ip2.dont_frag = false;
    assert_eq!(f, build::ipv4_frame(&L2::default(), ip2, L4::Raw(&[1; 16])));

    // First fragment of a UDP datagram: the UDP checksum (which covers the
    // whole datagram) follows the pseudo-header change.
    let whole = |s: &str, d: &str| build::udp4(s.parse().unwrap(), d.parse().unwrap(), &[7; 100]);
    let first = |mut w: Vec<u8>| {
        let cls = classify(&w).unwrap();
        let l3 = usize::from(cls.l3_offset);
        w.truncate(usize::from(cls.l4_offset) + 8 + 32);
        let len = (w.len() - l3) as u16;
        let mut p = ipv4::Packet::new_unchecked(&mut w[l3..]);
        p.set_total_len(len);
        p.set_more_frags(true);
        p.set_dont_frag(false);
        p.fill_checksum();
        w
    };
    let mut f = first(whole("10.0.0.5:40000", "203.0.113.7:8080"));
    let cls = classify(&f).unwrap();
    assert!(cls.frag.is_some() && cls.l4 == L4Kind::Udp);
    checksum::rewrite_ipv4_addrs(&mut f, &cls, v4("203.0.113.7"), v4("10.0.0.9")).unwrap();
    assert_eq!(f, first(whole("203.0.113.7:40000", "10.0.0.9:8080")));
}

#[test]
fn embedded_tuple_and_both_sides() {
    let make = |inner: &[u8], dst: Ipv4Addr| {
        build::icmp4_error(
            v4("192.0.2.254"),
            dst,
            icmpv4::Repr::TimeExceeded {
                code: icmpv4::time_exceeded::TTL,
                data: &[],
            },
            build::ip_packet(inner).unwrap(),
        )
    };
    let quoted = build::udp4(
        "203.0.113.7:61000".parse().unwrap(),
        "203.0.113.8:62000".parse().unwrap(),
        b"q",
    );
    let mut f = make(&quoted, v4("203.0.113.7"));
    let cls = classify(&f).unwrap();
    let t = checksum::icmpv4_embedded_tuple(&f, &cls).unwrap();
    assert_eq!(
        (t.src, t.src_port, t.dst, t.dst_port, t.proto),
        (
            v4("203.0.113.7").into(),
            61000,
            v4("203.0.113.8").into(),
            62000,
            17
        )
    );
    checksum::rewrite_icmpv4_embedded(&mut f, &cls, v4("10.0.0.5"), 40000, v4("10.0.0.9"), 53)
        .unwrap();
    checksum::rewrite_ipv4_addrs(&mut f, &cls, v4("192.0.2.254"), v4("10.0.0.5")).unwrap();
    let private = build::udp4(
        "10.0.0.5:40000".parse().unwrap(),
        "10.0.0.9:53".parse().unwrap(),
        b"q",
    );
    assert_eq!(f, make(&private, v4("10.0.0.5")));
    checksum::verify_frame(&f).unwrap();
    let t = checksum::icmpv4_embedded_tuple(&f, &cls).unwrap();
    assert_eq!((t.src_port, t.dst_port), (40000, 53));

    // A quoted echo: the identifier as both ports.
    let echo = build::icmp4_echo(v4("203.0.113.7"), v4("1.1.1.1"), 0x9999, 1, true);
    let f = make(&echo, v4("203.0.113.7"));
    let t = checksum::icmpv4_embedded_tuple(&f, &classify(&f).unwrap()).unwrap();
    assert_eq!((t.proto, t.src_port, t.dst_port), (1, 0x9999, 0x9999));

    // What the rewrites refuse, the tuple reader refuses alike.
    let f = build::icmp4_echo(v4("10.0.0.5"), v4("1.1.1.1"), 1, 1, true);
    assert_eq!(
        checksum::icmpv4_embedded_tuple(&f, &classify(&f).unwrap()),
        Err(RewriteError::NotIcmpError)
    );
    let mut ip = ipv4::Repr::new(v4("10.0.0.1"), v4("10.0.0.2"), 17, 0);
    ip.frag_offset = 8;
    ip.dont_frag = false;
    let frag = build::ipv4_frame(&L2::default(), ip, L4::Raw(&[1; 16]));
    let mut f = make(&frag, v4("10.0.0.1"));
    let cls = classify(&f).unwrap();
    let before = f.clone();
    assert_eq!(
        checksum::icmpv4_embedded_tuple(&f, &cls),
        Err(RewriteError::NoPort)
    );
    assert_eq!(
        checksum::rewrite_icmpv4_embedded(&mut f, &cls, v4("1.2.3.4"), 1, v4("5.6.7.8"), 2),
        Err(RewriteError::NoPort)
    );
    assert_eq!(f, before);
}
