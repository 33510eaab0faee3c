//! IPv4 fragmentation and the "too big" ICMP errors:
//! - property: for any payload, MTU, original offset/MF and options, the
//!   fragments are ≤ MTU, have valid header checksums, 8-byte aligned
//!   offsets, MF on all but the last (which keeps the original MF), and
//!   reassembling them gives back the original payload and header fields;
//! - the frag-needed (3/4) and Packet Too Big builders, decoded.

use core::net::{Ipv4Addr, Ipv6Addr};

use net::build::{self, L2};
use net::fragment::{FragmentError, Fragmenter};
use net::{icmpv4, icmpv6, ipv4, ipv6};
use proptest::prelude::*;

/// An IPv4 packet with `opts` (padded by the caller to a multiple of 4).
fn packet(opts: &[u8], payload: &[u8], offset: u16, mf: bool, ttl: u8) -> Vec<u8> {
    let hl = ipv4::HEADER_LEN + opts.len();
    let mut v = vec![0u8; hl + payload.len()];
    ipv4::Repr {
        ident: 0xbeef,
        ttl,
        dont_frag: false,
        more_frags: mf,
        frag_offset: offset,
        ..ipv4::Repr::new(
            Ipv4Addr::new(192, 0, 2, 1),
            Ipv4Addr::new(198, 51, 100, 2),
            17,
            0,
        )
    }
    .emit(&mut v)
    .unwrap();
    v[ipv4::HEADER_LEN..hl].copy_from_slice(opts);
    v[hl..].copy_from_slice(payload);
    let mut p = ipv4::Packet::new_unchecked(&mut v[..]);
    p.set_header_len(hl);
    p.set_total_len((hl + payload.len()) as u16);
    p.fill_checksum();
    v
}

/// Options: a list of (type, body) TLVs plus NOPs, padded with EOL.
fn options() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            Just(vec![1u8]),
            (any::<u8>(), prop::collection::vec(any::<u8>(), 0..6)).prop_map(|(t, body)| {
                let t = if t < 2 { t + 2 } else { t };
                let mut o = vec![t, (body.len() + 2) as u8];
                o.extend(body);
                o
            }),
        ],
        0..4,
    )
    .prop_map(|parts| {
        let mut o: Vec<u8> = parts.concat();
        o.truncate(40);
        // A truncated TLV would be malformed: keep whole ones only.
        let mut i = 0;
        let mut ok = 0;
        while i < o.len() {
            let step = if o[i] == 1 { 1 } else { usize::from(o[i + 1]) };
            if i + step > o.len() {
                break;
            }
            i += step;
            ok = i;
        }
        o.truncate(ok);
        o.resize(o.len().next_multiple_of(4), 0);
        o
    })
}

proptest! {
    #[test]
    fn fragments_fit_check_and_reassemble(
        payload in prop::collection::vec(any::<u8>(), 0..5000),
        mtu in 68usize..2000,
        offset8 in 0u16..64,
        mf in any::<bool>(),
        opts in options(),
    ) {
        let offset = offset8 * 8;
        let pkt = packet(&opts, &payload, offset, mf, 33);
        let f = match Fragmenter::new(&pkt, mtu) {
            Ok(f) => f,
            Err(FragmentError::MtuTooSmall { header_len, .. }) => {
                prop_assert!(mtu < header_len + 8);
                return Ok(());
            }
            Err(e) => return Err(TestCaseError::fail(format!("{e}"))),
        };
        let mut got = vec![None::<u8>; payload.len()];
        let mut last_mf = None;
        for i in 0..f.count() {
            let mut b = vec![0u8; f.fragment_len(i)];
            let n = f.emit(i, &mut b).unwrap();
            prop_assert_eq!(n, b.len());
            prop_assert!(n <= mtu.max(pkt.len()));
            if f.count() > 1 {
                prop_assert!(n <= mtu);
            }
            let p = ipv4::Packet::new_checked(&b[..]).unwrap();
            prop_assert!(p.verify_checksum());
            prop_assert_eq!(usize::from(p.total_len()), n);
            prop_assert_eq!((p.ident(), p.ttl(), p.protocol()), (0xbeef, 33, 17));
            prop_assert_eq!((p.src_addr(), p.dst_addr()), (Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(198, 51, 100, 2)));
            prop_assert!(!p.dont_frag());
            if i == 0 {
                prop_assert_eq!(p.options(), &opts[..]);
            }
            let off = usize::from(p.frag_offset());
            prop_assert_eq!(off % 8, 0);
            prop_assert!(off >= usize::from(offset));
            let data = p.payload();
            if i + 1 < f.count() {
                prop_assert!(p.more_frags(), "MF on fragment {}", i);
                prop_assert_eq!(data.len() % 8, 0);
            } else {
                last_mf = Some(p.more_frags());
            }
            for (k, &byte) in data.iter().enumerate() {
                let at = off - usize::from(offset) + k;
                prop_assert!(got[at].is_none(), "byte {} twice", at);
                got[at] = Some(byte);
            }
        }
        prop_assert_eq!(last_mf, Some(mf), "the last fragment keeps the original MF");
        let re: Vec<u8> = got.into_iter().map(|b| b.expect("every byte covered")).collect();
        prop_assert_eq!(re, payload);
    }

    #[test]
    fn fragmenter_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200), mtu in 0usize..300) {
        if let Ok(f) = Fragmenter::new(&bytes, mtu) {
            for i in 0..=f.count() {
                let mut b = vec![0u8; f.fragment_len(i)];
                let _ = f.emit(i, &mut b);
            }
        }
    }
}

#[test]
fn build_ipv4_fragments_matches_the_fragmenter() {
    let pkt = packet(&[], &[1u8; 3000], 0, false, 64);
    let frags = build::ipv4_fragments(&pkt, 1500).unwrap();
    assert_eq!(frags.len(), 3);
    assert!(frags.iter().all(|f| f.len() <= 1500));
}

#[test]
fn frag_needed_carries_the_mtu_and_quotes_header_plus_8() {
    let big = packet(&[], &[7u8; 3000], 0, false, 64);
    let f = build::icmp4_frag_needed(&L2::default(), Ipv4Addr::new(192, 0, 2, 254), 1400, &big)
        .unwrap();
    assert!(net::checksum::verify_frame(&f).is_ok());
    let ip = ipv4::Packet::new_checked(&f[14..]).unwrap();
    assert_eq!(ip.dst_addr(), Ipv4Addr::new(192, 0, 2, 1));
    assert_eq!(ip.src_addr(), Ipv4Addr::new(192, 0, 2, 254));
    assert!(!ip.dont_frag());
    let icmp = icmpv4::Packet::new_checked(ip.payload()).unwrap();
    assert_eq!((icmp.msg_type(), icmp.msg_code()), (3, 4));
    assert_eq!(icmp.next_hop_mtu(), 1400);
    assert!(icmp.verify_checksum());
    assert_eq!(icmp.data(), &big[..28]);
    assert!(build::icmp4_frag_needed(&L2::default(), Ipv4Addr::LOCALHOST, 1, &big[..12]).is_none());
}

#[test]
fn packet_too_big_quotes_what_fits_in_1280() {
    let src: Ipv6Addr = "2001:db8::1".parse().unwrap();
    let big = build::udp6(
        "[2001:db8::1]:1".parse().unwrap(),
        "[2001:db8:1::2]:2".parse().unwrap(),
        &[3u8; 4000],
    );
    let router: Ipv6Addr = "2001:db8::fe".parse().unwrap();
    let f = build::icmp6_packet_too_big(&L2::default(), router, 64, 1500, &big[14..]).unwrap();
    assert_eq!(f.len(), 14 + 1280, "the error is exactly the minimum MTU");
    assert!(net::checksum::verify_frame(&f).is_ok());
    let ip = ipv6::Packet::new_checked(&f[14..]).unwrap();
    assert_eq!((ip.src_addr(), ip.dst_addr()), (router, src));
    assert_eq!(ip.hop_limit(), 64);
    let msg = icmpv6::Packet::new_checked(ip.payload()).unwrap();
    let r = icmpv6::Repr::parse(&msg).unwrap();
    match r {
        icmpv6::Repr::PacketTooBig { mtu, data } => {
            assert_eq!(mtu, 1500);
            assert_eq!(data, &big[14..14 + icmpv6::MAX_QUOTE]);
        }
        other => panic!("{other:?}"),
    }
    // A short packet is quoted whole.
    let small = build::udp6(
        "[2001:db8::1]:1".parse().unwrap(),
        "[2001:db8:1::2]:2".parse().unwrap(),
        b"x",
    );
    let f = build::icmp6_packet_too_big(&L2::default(), router, 64, 1280, &small[14..]).unwrap();
    assert_eq!(f.len(), 14 + 40 + 8 + small.len() - 14);
}
