//! Differential test: nat's own rewrite (`nat::pkt::rewrite`, incremental
//! RFC 1624 updates) against `net::rewrite` on generated TCP/UDP/ICMP echo
//! frames: the bytes must be identical, and every checksum must verify.

mod common;

use common::*;
use nat::Tuple;
use proptest::prelude::*;

fn frame(kind: u8, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    match kind {
        0 => udp("10.1.2.3", sport, "192.0.2.77", dport, payload),
        1 => tcp("10.1.2.3", sport, "192.0.2.77", dport, SYN | ACK),
        _ => echo("10.1.2.3", "192.0.2.77", sport, true, payload),
    }
}

proptest! {
    #[test]
    fn nat_rewrite_matches_net_rewrite(
        kind in 0u8..3,
        sport in any::<u16>(),
        dport in any::<u16>(),
        new_ip in any::<u32>(),
        new_port in any::<u16>(),
        dst_side in any::<bool>(),
        payload in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let f = frame(kind, sport, dport, &payload);
        let cls = classify(&f);
        let (s, sp, d, dp) = addrs(&f);
        let from = Tuple { src: s, dst: d, proto: [17, 6, 1][kind as usize], sport: sp, dport: dp };
        let ip = core::net::Ipv4Addr::from(new_ip);
        let to = if dst_side {
            // ICMP echo: the identifier is one field (NAT keeps both tuple ports equal).
            Tuple { dst: ip, dport: new_port, sport: if kind == 2 { new_port } else { sp }, ..from }
        } else {
            Tuple { src: ip, sport: new_port, dport: if kind == 2 { new_port } else { dp }, ..from }
        };
        let mut a = f.clone();
        nat::pkt::rewrite(&mut a, 14, Some(usize::from(cls.l4_offset)), &from, &to).unwrap();
        let mut b = f.clone();
        if dst_side {
            net::checksum::rewrite_ipv4_dst(&mut b, &cls, ip, new_port).unwrap();
        } else {
            net::checksum::rewrite_ipv4_src(&mut b, &cls, ip, new_port).unwrap();
        }
        prop_assert_eq!(&a, &b);
        verify_checksums(&a);
    }
}
