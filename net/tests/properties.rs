//! Property harness (proptest; case count from `PROPTEST_CASES`, default
//! 256):
//! - no panic on any byte string: `classify`, every view's `new_checked`
//!   and all its accessors and setters, every `Repr::parse`, the checksum helpers and
//!   the rewrite helpers (with matching and mismatching classifications);
//! - generated frames classify as their spec says;
//! - parse → emit → parse round trips for every `Repr`;
//! - after any incremental checksum update the full checksum verifies.

mod common;

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use common::{FrameSpec, frame_strategy};
use net::checksum::{self, Delta};
use net::{
    Classified, L3Kind, L4Kind, arp, classify, ethernet, icmpv4, icmpv6, ipv4, ipv6, tcp, udp, vlan,
};
use proptest::prelude::*;

/// Calls every accessor of every view that accepts `b`.
fn touch_views(b: &[u8]) {
    let a4: IpAddr = Ipv4Addr::new(1, 2, 3, 4).into();
    let a6: IpAddr = Ipv6Addr::LOCALHOST.into();
    if let Ok(f) = ethernet::Frame::new_checked(b) {
        let _ = (f.dst_addr(), f.src_addr(), f.ethertype(), f.payload().len());
        let _ = ethernet::Repr::parse(&f);
    }
    if let Ok(t) = vlan::Tag::new_checked(b) {
        let _ = (
            t.tci(),
            t.pcp(),
            t.dei(),
            t.vid(),
            t.ethertype(),
            t.payload().len(),
        );
        let _ = vlan::Repr::parse(&t);
    }
    if let Ok(p) = arp::Packet::new_checked(b) {
        let _ = (
            p.hardware_type(),
            p.protocol_type(),
            p.hardware_len(),
            p.protocol_len(),
        );
        let _ = (
            p.operation(),
            p.source_hardware_addr(),
            p.source_protocol_addr(),
        );
        let _ = (
            p.target_hardware_addr(),
            p.target_protocol_addr(),
            p.payload(),
        );
        let _ = arp::Repr::parse(&p);
    }
    if let Ok(p) = ipv4::Packet::new_checked(b) {
        let _ = (
            p.version(),
            p.header_len(),
            p.dscp(),
            p.ecn(),
            p.total_len(),
            p.ident(),
        );
        let _ = (
            p.dont_frag(),
            p.more_frags(),
            p.frag_offset(),
            p.is_fragment(),
            p.ttl(),
        );
        let _ = (
            p.protocol(),
            p.checksum(),
            p.src_addr(),
            p.dst_addr(),
            p.options(),
        );
        let _ = (p.header(), p.verify_checksum(), p.payload());
        let _ = ipv4::Repr::parse(&p);
    }
    {
        let p = ipv4::Packet::new_unchecked(b);
        if p.check_header_len().is_ok() {
            let _ = (
                p.options(),
                p.header(),
                p.payload(),
                p.src_addr(),
                p.verify_checksum(),
            );
        }
    }
    if let Ok(p) = ipv6::Packet::new_checked(b) {
        let _ = (
            p.version(),
            p.traffic_class(),
            p.flow_label(),
            p.payload_len(),
        );
        let _ = (
            p.next_header(),
            p.hop_limit(),
            p.src_addr(),
            p.dst_addr(),
            p.payload(),
        );
        let _ = p.upper_layer();
        let _ = ipv6::Repr::parse(&p);
    }
    for auth in [false, true] {
        if let Ok(e) = ipv6::ExtHeader::new_checked(b, auth) {
            let _ = (
                e.next_header(),
                e.length_field(),
                e.header_len(),
                e.data(),
                e.payload(),
            );
        }
    }
    if let Ok(f) = ipv6::FragmentHeader::new_checked(b) {
        let _ = (
            f.next_header(),
            f.frag_offset(),
            f.more_frags(),
            f.ident(),
            f.info(),
            f.payload(),
        );
    }
    if let Some(&nh) = b.first() {
        let _ = ipv6::walk_ext_headers(nh, b.get(1..).unwrap_or(&[]));
    }
    if let Ok(p) = tcp::Packet::new_checked(b) {
        let _ = (
            p.src_port(),
            p.dst_port(),
            p.seq_number(),
            p.ack_number(),
            p.header_len(),
        );
        let _ = (
            p.flags(),
            p.fin(),
            p.syn(),
            p.rst(),
            p.psh(),
            p.ack(),
            p.urg(),
            p.ece(),
            p.cwr(),
        );
        let _ = (
            p.window_len(),
            p.checksum(),
            p.urgent_at(),
            p.options(),
            p.payload(),
        );
        let _ = (p.verify_checksum(&a4, &a4), p.verify_checksum(&a6, &a4));
        let _ = tcp::Repr::parse(&p);
    }
    if let Ok(p) = udp::Packet::new_checked(b) {
        let _ = (
            p.src_port(),
            p.dst_port(),
            p.len(),
            p.is_empty(),
            p.checksum(),
        );
        let _ = (p.datagram(), p.payload(), p.verify_checksum(&a4, &a6));
        let _ = udp::Repr::parse(&p);
    }
    if let Ok(p) = icmpv4::Packet::new_checked(b) {
        let _ = (
            p.msg_type(),
            p.msg_code(),
            p.checksum(),
            p.rest_of_header(),
            p.echo_ident(),
        );
        let _ = (
            p.echo_seq_no(),
            p.next_hop_mtu(),
            p.pointer(),
            p.gateway(),
            p.data(),
        );
        let _ = (p.payload(), p.embedded(), p.verify_checksum());
        let _ = icmpv4::Repr::parse(&p);
        let _ = icmpv4::quote(p.data());
    }
    if let Ok(p) = icmpv6::Packet::new_checked(b) {
        let _ = (
            p.msg_type(),
            p.msg_code(),
            p.checksum(),
            p.rest_of_header(),
            p.echo_ident(),
        );
        let _ = (
            p.echo_seq_no(),
            p.mtu(),
            p.pointer(),
            p.nd_flags(),
            p.target_addr(),
        );
        let _ = (
            p.nd_options(),
            p.nd_lladdr(1),
            p.nd_lladdr(2),
            p.data(),
            p.embedded(),
        );
        let _ = p.verify_checksum(&a6, &a6);
        let _ = icmpv6::Repr::parse(&p);
    }
}

/// Calls every setter of every view that accepts `b` (on a copy), then the
/// getters again; none may panic.
fn touch_setters(b: &[u8], v: u32) {
    let (v8, v16) = (v as u8, v as u16);
    let a4 = Ipv4Addr::from(v);
    let a6 = Ipv6Addr::from(u128::from(v));
    let mut m = b.to_vec();
    if let Ok(mut f) = ethernet::Frame::new_checked(&mut m[..]) {
        f.set_dst_addr(net::MacAddr([v8; 6]));
        f.set_src_addr(net::MacAddr([v8; 6]));
        f.set_ethertype(v16);
        f.payload_mut().fill(v8);
    }
    let mut m = b.to_vec();
    if let Ok(mut t) = vlan::Tag::new_checked(&mut m[..]) {
        t.set_pcp(v8);
        t.set_dei(v & 1 == 1);
        t.set_vid(v16);
        t.set_ethertype(v16);
        t.payload_mut().fill(v8);
    }
    let mut m = b.to_vec();
    if let Ok(mut p) = arp::Packet::new_checked(&mut m[..]) {
        p.set_operation(v16);
        p.set_source_hardware_addr(&[v8; 6]);
        p.set_source_protocol_addr(&[v8; 4]);
        p.set_target_hardware_addr(&[v8; 3]);
        p.set_target_protocol_addr(&[v8; 9]);
        let _ = p.payload_mut();
    }
    let mut m = b.to_vec();
    if let Ok(mut p) = ipv4::Packet::new_checked(&mut m[..]) {
        p.set_dscp(v8);
        p.set_ecn(v8);
        p.set_ident(v16);
        p.set_dont_frag(v & 1 == 1);
        p.set_more_frags(v & 2 == 2);
        p.set_frag_offset(v16);
        p.set_ttl(v8);
        p.set_protocol(v8);
        p.set_src_addr(a4);
        p.set_dst_addr(a4);
        p.options_mut().fill(1);
        p.payload_mut().fill(v8);
        let _ = p.decrement_ttl();
        p.fill_checksum();
        assert!(p.verify_checksum());
        // Total length and IHL may break the checked invariants: set last.
        p.set_total_len(v16);
        p.set_header_len(usize::from(v8));
        let _ = p.payload().len();
        let _ = p.payload_mut().len();
    }
    let mut m = b.to_vec();
    if let Ok(mut p) = ipv6::Packet::new_checked(&mut m[..]) {
        p.set_traffic_class(v8);
        p.set_flow_label(v);
        p.set_next_header(v8);
        p.set_hop_limit(v8);
        p.set_src_addr(a6);
        p.set_dst_addr(a6);
        p.payload_mut().fill(v8);
        p.set_version(6);
    }
    let mut m = b.to_vec();
    if let Ok(mut p) = tcp::Packet::new_checked(&mut m[..]) {
        p.set_src_port(v16);
        p.set_dst_port(v16);
        p.set_seq_number(v);
        p.set_ack_number(v);
        p.set_flags(v16);
        p.set_window_len(v16);
        p.set_urgent_at(v16);
        p.options_mut().fill(1);
        p.payload_mut().fill(v8);
        p.fill_checksum(&a4.into(), &a4.into());
        assert!(p.verify_checksum(&a4.into(), &a4.into()));
    }
    let mut m = b.to_vec();
    if let Ok(mut p) = udp::Packet::new_checked(&mut m[..]) {
        p.set_src_port(v16);
        p.set_dst_port(v16);
        p.payload_mut().fill(v8);
        p.fill_checksum(&a6.into(), &a6.into());
        assert!(p.verify_checksum(&a6.into(), &a6.into()));
        assert_ne!(p.checksum(), 0);
    }
    let mut m = b.to_vec();
    if let Ok(mut p) = icmpv4::Packet::new_checked(&mut m[..]) {
        p.set_echo_ident(v16);
        p.set_echo_seq_no(v16);
        p.set_next_hop_mtu(v16);
        p.set_pointer(v8);
        p.set_gateway(a4);
        p.data_mut().fill(v8);
        p.fill_checksum();
        assert!(p.verify_checksum());
        p.set_msg_type(v8);
        p.set_msg_code(v8);
    }
    let mut m = b.to_vec();
    if let Ok(mut p) = icmpv6::Packet::new_checked(&mut m[..]) {
        p.set_echo_ident(v16);
        p.set_echo_seq_no(v16);
        p.set_mtu(v);
        p.set_nd_flags(v8);
        p.set_target_addr(a6);
        p.data_mut().fill(v8);
        p.fill_checksum(&a6.into(), &a6.into());
        assert!(p.verify_checksum(&a6.into(), &a6.into()));
        p.set_msg_type(v8);
        let _ = (p.target_addr(), p.nd_options(), p.nd_lladdr(1));
    }
}

/// Classifies and runs every frame-level helper; none may panic.
fn touch_frame(b: &[u8]) {
    let r = classify(b);
    let _ = checksum::verify_frame(b);
    let mut m = b.to_vec();
    let _ = checksum::fill_frame(&mut m);
    if let Ok(c) = r {
        exercise_rewrites(b, &c);
        // Offsets are within the frame and ordered.
        assert!(c.l3_offset <= c.l4_offset || c.l3 == L3Kind::Arp);
        assert!(usize::from(c.l3_end) <= b.len());
        assert!(c.l4_offset <= c.l3_end);
        assert!(c.l3_bytes(b).is_some() && c.l4_bytes(b).is_some());
        match c.l4 {
            L4Kind::Fragment => assert!(c.tuple.is_none() && c.frag.is_some()),
            L4Kind::None => assert!(c.tuple.is_none()),
            _ => assert!(c.tuple.is_some()),
        }
    }
}

fn exercise_rewrites(b: &[u8], c: &Classified) {
    let ip = Ipv4Addr::new(203, 0, 113, 9);
    let mut m = b.to_vec();
    let _ = checksum::rewrite_ipv4_src(&mut m, c, ip, 1);
    let _ = checksum::rewrite_ipv4_dst(&mut m, c, ip, 2);
    let _ = checksum::rewrite_ipv4_src_addr(&mut m, c, ip);
    let _ = checksum::rewrite_ipv4_dst_addr(&mut m, c, ip);
    let _ = checksum::rewrite_icmpv4_embedded_src(&mut m, c, ip, 3);
    let _ = checksum::rewrite_icmpv4_embedded_dst(&mut m, c, ip, 4);
    let _ = checksum::rewrite_ipv4_src_dst(&mut m, c, ip, 5, ip, 6);
    let _ = checksum::rewrite_ipv4_addrs(&mut m, c, ip, ip);
    let _ = checksum::rewrite_icmpv4_embedded(&mut m, c, ip, 7, ip, 8);
    let _ = checksum::icmpv4_embedded_tuple(&m, c);
    let _ = checksum::verify_ipv4_header(&m, c);
    let _ = checksum::verify_l4(&m, c);
    let _ = checksum::fill_ipv4_header(&mut m, c);
    let _ = checksum::fill_l4(&mut m, c);
    // The same classification applied to a truncated copy: must not panic.
    for cut in [0, 1, b.len() / 2, b.len().saturating_sub(1)] {
        let mut t = b[..cut].to_vec();
        let _ = checksum::rewrite_ipv4_src(&mut t, c, ip, 1);
        let _ = checksum::rewrite_icmpv4_embedded_src(&mut t, c, ip, 3);
        let _ = checksum::rewrite_ipv4_src_dst(&mut t, c, ip, 5, ip, 6);
        let _ = checksum::rewrite_icmpv4_embedded(&mut t, c, ip, 7, ip, 8);
        let _ = checksum::icmpv4_embedded_tuple(&t, c);
        let _ = checksum::verify_l4(&t, c);
        let _ = checksum::fill_l4(&mut t, c);
    }
}

/// A generated frame with some bytes overwritten and maybe truncated.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    (
        frame_strategy(),
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        prop_oneof![3 => Just(None), 1 => any::<prop::sample::Index>().prop_map(Some)],
    )
        .prop_map(|(spec, edits, cut)| {
            let mut f = spec.build();
            for (i, v) in edits {
                let at = i.index(f.len());
                f[at] = v;
            }
            if let Some(c) = cut {
                f.truncate(c.index(f.len() + 1));
            }
            f
        })
}

fn v4_of(c: &Classified, src: bool) -> Option<Ipv4Addr> {
    let t = c.tuple?;
    match if src { t.src } else { t.dst } {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(_) => None,
    }
}

proptest! {
    #[test]
    fn no_panic_on_any_bytes(b in proptest::collection::vec(any::<u8>(), 0..160)) {
        touch_views(&b);
        touch_frame(&b);
        // Also behind a plausible Ethernet + IP prefix, so deeper layers run.
        for prefix in [&[0x08u8, 0x00, 0x45][..], &[0x86, 0xdd, 0x60][..], &[0x81, 0x00, 0, 1, 0x08, 0x06][..]] {
            let mut f = vec![2u8, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
            f.extend_from_slice(prefix);
            f.extend_from_slice(&b);
            touch_frame(&f);
        }
    }

    #[test]
    fn no_panic_on_mutated_frames(f in mutated(), v in any::<u32>()) {
        touch_frame(&f);
        for off in [14usize, 18, 22, 34, 38, 54] {
            if let Some(rest) = f.get(off..) {
                touch_views(rest);
                touch_setters(rest, v);
            }
        }
    }

    #[test]
    fn no_panic_in_setters_on_any_bytes(b in proptest::collection::vec(any::<u8>(), 0..96), v in any::<u32>()) {
        touch_setters(&b, v);
    }

    #[test]
    fn generated_frames_classify_as_specified(spec in frame_strategy()) {
        let f = spec.build();
        let c = classify(&f).map_err(|e| TestCaseError::fail(format!("{e}: {spec:?}")))?;
        let (l3, l4, l4_off, ports) = spec.expect();
        prop_assert_eq!(c.l3, l3);
        prop_assert_eq!(c.l4, l4);
        prop_assert_eq!(usize::from(c.l4_offset), l4_off);
        prop_assert_eq!(usize::from(c.vlan_count), spec.vlans.len());
        prop_assert_eq!(&c.vlans[..spec.vlans.len()], &spec.vlans[..]);
        prop_assert_eq!(usize::from(c.l3_end), f.len() - usize::from(spec.padding));
        prop_assert_eq!(c.tuple.map(|t| (t.src_port, t.dst_port)), ports);
        prop_assert_eq!(c.frag, spec.fragment());
        // Generated frames carry correct checksums.
        prop_assert_eq!(checksum::verify_frame(&f).map(|_| ()), Ok(()));
    }

    #[test]
    fn rewrites_keep_checksums_valid(
        spec in frame_strategy(),
        ip in any::<[u8; 4]>(),
        port in prop_oneof![Just(0u16), Just(0xffff), any::<u16>()],
        src in any::<bool>(),
    ) {
        let mut f = spec.build();
        let c = classify(&f).unwrap();
        let ip = Ipv4Addr::from(ip);
        if c.l3 != L3Kind::Ipv4 {
            prop_assert!(checksum::rewrite_ipv4_src(&mut f, &c, ip, port).is_err());
            return Ok(());
        }
        let r = if src {
            checksum::rewrite_ipv4_src(&mut f, &c, ip, port)
        } else {
            checksum::rewrite_ipv4_dst(&mut f, &c, ip, port)
        };
        if r.is_err() {
            checksum::rewrite_ipv4_src_addr(&mut f, &c, ip).unwrap();
        }
        let c2 = checksum::verify_frame(&f).map_err(|e| TestCaseError::fail(format!("{e}: {spec:?}")))?;
        let hdr = ipv4::Packet::new_checked(c2.l3_bytes(&f).unwrap()).unwrap();
        prop_assert_eq!(if src || r.is_err() { hdr.src_addr() } else { hdr.dst_addr() }, ip);
        if c2.tuple.is_some() {
            prop_assert_eq!(v4_of(&c2, src || r.is_err()), Some(ip));
        }
        if r.is_ok() {
            let t = c2.tuple.unwrap();
            prop_assert_eq!(if src { t.src_port } else { t.dst_port }, port);
        }
        // ICMP errors: the embedded packet too.
        if c.is_icmp_error() {
            let e = if src {
                checksum::rewrite_icmpv4_embedded_src(&mut f, &c, ip, port)
            } else {
                checksum::rewrite_icmpv4_embedded_dst(&mut f, &c, ip, port)
            };
            prop_assert_eq!(e, Ok(()));
            checksum::verify_frame(&f).map_err(|e| TestCaseError::fail(format!("{e}: {spec:?}")))?;
            // The quoted IPv4 header still verifies, and carries the address.
            let icmp = icmpv4::Packet::new_checked(c.l4_bytes(&f).unwrap()).unwrap();
            let inner = ipv4::Packet::new_unchecked(icmp.data());
            prop_assert!(inner.check_header_len().is_ok());
            prop_assert!(inner.verify_checksum());
            prop_assert_eq!(if src { inner.src_addr() } else { inner.dst_addr() }, ip);
        }
    }

    /// The embedded-tuple reader accepts exactly what the embedded rewrite
    /// accepts, and reads back what the two-sided rewrites wrote; the
    /// one-pass forms keep every checksum valid.
    #[test]
    fn two_sided_rewrites_and_embedded_tuple(
        spec in frame_strategy(),
        a in any::<[u8; 4]>(),
        b in any::<[u8; 4]>(),
        sp in any::<u16>(),
        dp in any::<u16>(),
    ) {
        let mut f = spec.build();
        let c = classify(&f).unwrap();
        let (a, b) = (Ipv4Addr::from(a), Ipv4Addr::from(b));
        let read = checksum::icmpv4_embedded_tuple(&f, &c);
        let mut g = f.clone();
        let e = checksum::rewrite_icmpv4_embedded(&mut g, &c, a, sp, b, dp);
        prop_assert_eq!(read.map(|_| ()), e);
        if e.is_ok() {
            let t = checksum::icmpv4_embedded_tuple(&g, &c).unwrap();
            let echo = t.proto == 1;
            prop_assert_eq!(
                (t.src, t.dst, t.src_port, t.dst_port),
                (a.into(), b.into(), if echo { dp } else { sp }, dp)
            );
            checksum::verify_frame(&g).map_err(|e| TestCaseError::fail(format!("{e}: {spec:?}")))?;
        } else {
            prop_assert_eq!(&g, &f);
        }
        if c.l3 != L3Kind::Ipv4 {
            return Ok(());
        }
        if checksum::rewrite_ipv4_src_dst(&mut f, &c, a, sp, b, dp).is_err() {
            checksum::rewrite_ipv4_addrs(&mut f, &c, a, b).unwrap();
        }
        let c2 = checksum::verify_frame(&f).map_err(|e| TestCaseError::fail(format!("{e}: {spec:?}")))?;
        let hdr = ipv4::Packet::new_checked(c2.l3_bytes(&f).unwrap()).unwrap();
        prop_assert_eq!((hdr.src_addr(), hdr.dst_addr()), (a, b));
    }

    #[test]
    fn incremental_update_verifies(
        mut data in proptest::collection::vec(any::<u8>(), 2..200),
        edits in proptest::collection::vec(
            (any::<prop::sample::Index>(), prop_oneof![Just(0u16), Just(0xffff), any::<u16>()]),
            1..6,
        ),
        seed in prop_oneof![Just(0u16), Just(0xffff), any::<u16>()],
    ) {
        // The checksum lives in the first word, a fixed non-zero word (like
        // an IP version or a pseudo-header's protocol) in the second: an
        // all-zero buffer sums to +0, which no real header or pseudo-header
        // can (RFC 1071 verification wants -0, 0xffff).
        if data.len() % 2 == 1 { data.push(0); }
        data.splice(0..0, [0u8, 0, 0x45, 0x00]);
        let words = data.len() / 2;
        data[4..6].copy_from_slice(&seed.to_be_bytes());
        let ck = checksum::checksum(&data);
        data[..2].copy_from_slice(&ck.to_be_bytes());
        let mut hc = ck;
        let mut delta = Delta::default();
        let start_ck = ck;
        for (i, new) in edits {
            let w = 2 + i.index(words - 2);
            let old = u16::from_be_bytes([data[2 * w], data[2 * w + 1]]);
            hc = checksum::update_u16(hc, old, new);
            delta.add_u16(old, new);
            data[2 * w..2 * w + 2].copy_from_slice(&new.to_be_bytes());
        }
        let mut a = data.clone();
        a[..2].copy_from_slice(&hc.to_be_bytes());
        prop_assert!(checksum::verifies(checksum::accumulate(0, &a)));
        let mut b = data.clone();
        b[..2].copy_from_slice(&delta.apply(start_ck).to_be_bytes());
        prop_assert!(checksum::verifies(checksum::accumulate(0, &b)));
        // Equal to a full recomputation up to the representation of zero.
        let full = { let mut z = data.clone(); z[0] = 0; z[1] = 0; checksum::checksum(&z) };
        prop_assert!(hc == full || (hc | full) == 0xffff && (hc & full) == 0, "{hc:#x} vs {full:#x}");
        // UDP rule: never 0 unless it was 0.
        prop_assert_ne!(delta.apply_udp(start_ck | 1), 0);
        prop_assert_eq!(delta.apply_udp(0), 0);
    }

    #[test]
    fn sum_matches_reference(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        // RFC 1071 §4.1 reference: 16-bit words, end-around carry.
        let mut acc: u32 = 0;
        for c in data.chunks(2) {
            acc += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
            acc = (acc & 0xffff) + (acc >> 16);
        }
        prop_assert_eq!(u32::from(checksum::sum(&data)), acc);
    }

    #[test]
    fn repr_round_trips(spec in frame_strategy()) {
        let f = spec.build();
        let c = classify(&f).unwrap();
        let eth = ethernet::Frame::new_checked(&f[..]).unwrap();
        let er = ethernet::Repr::parse(&eth).unwrap();
        let mut out = vec![0u8; er.buffer_len()];
        er.emit(&mut out).unwrap();
        prop_assert_eq!(&out[..], &f[..14]);
        let l3 = c.l3_bytes(&f).unwrap();
        let seg = c.l4_bytes(&f).unwrap();
        match c.l3 {
            L3Kind::Arp => {
                let r = arp::Repr::parse(&arp::Packet::new_checked(l3).unwrap()).unwrap();
                let mut out = vec![0u8; r.buffer_len()];
                r.emit(&mut out).unwrap();
                prop_assert_eq!(&out[..], l3);
            }
            L3Kind::Ipv4 => {
                let p = ipv4::Packet::new_checked(l3).unwrap();
                let r = ipv4::Repr::parse(&p).unwrap();
                let mut out = vec![0u8; r.buffer_len()];
                r.emit(&mut out).unwrap();
                let again = ipv4::Repr::parse(&ipv4::Packet::new_checked(&{
                    let mut o = out.clone(); o.resize(20 + usize::from(r.payload_len), 0); o
                }[..]).unwrap()).unwrap();
                prop_assert_eq!(again, r);
                if p.header_len() == 20 {
                    prop_assert_eq!(&out[..], &l3[..20]);
                }
            }
            L3Kind::Ipv6 => {
                let r = ipv6::Repr::parse(&ipv6::Packet::new_checked(l3).unwrap()).unwrap();
                let mut out = vec![0u8; r.buffer_len()];
                r.emit(&mut out).unwrap();
                prop_assert_eq!(&out[..], &l3[..40]);
            }
        }
        let Some(t) = c.tuple else { return Ok(()) };
        if c.frag.is_some() { return Ok(()) }
        match c.l4 {
            L4Kind::Tcp => {
                let r = tcp::Repr::parse(&tcp::Packet::new_checked(seg).unwrap()).unwrap();
                let mut out = vec![0u8; r.buffer_len()];
                r.emit(&mut out, &t.src, &t.dst).unwrap();
                prop_assert_eq!(&out[..], seg);
            }
            L4Kind::Udp => {
                let r = udp::Repr::parse(&udp::Packet::new_checked(seg).unwrap()).unwrap();
                let mut out = vec![0u8; r.buffer_len()];
                r.emit(&mut out, &t.src, &t.dst).unwrap();
                prop_assert_eq!(&out[..], seg);
            }
            L4Kind::Icmpv4 => {
                let r = icmpv4::Repr::parse(&icmpv4::Packet::new_checked(seg).unwrap()).unwrap();
                let mut out = vec![0u8; r.buffer_len()];
                r.emit(&mut out).unwrap();
                prop_assert_eq!(&out[..], seg);
            }
            L4Kind::Icmpv6 => {
                let (IpAddr::V6(s), IpAddr::V6(d)) = (t.src, t.dst) else { return Ok(()) };
                let r = icmpv6::Repr::parse(&icmpv6::Packet::new_checked(seg).unwrap()).unwrap();
                let mut out = vec![0u8; r.buffer_len()];
                r.emit(&mut out, &s, &d).unwrap();
                prop_assert_eq!(&out[..], seg);
            }
            _ => {}
        }
    }
}

#[test]
fn spec_type_is_used() {
    // Keeps the shared module's items referenced from this test crate.
    let _ = core::mem::size_of::<FrameSpec>();
}
