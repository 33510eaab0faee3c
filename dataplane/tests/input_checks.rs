//! Input checks (RFC 1812 §5.2.2, RFC 5508 REQ-3): an IPv4 frame with a
//! wrong header checksum, total length or IHL, and an ICMP error whose ICMP
//! checksum or quoted IPv4 header checksum is wrong, are counted drops with
//! their own reasons: never forwarded, translated or answered. The same
//! frames with correct fields go through (so each test can fail both ways).

mod common;

use common::*;
use dataplane::pipeline::{Disposition, DropReason, single};
use dataplane::traffic;
use dataplane::wire::{self, PROTO_ICMP};

const L3: usize = 14;

fn drops(p: &dataplane::Pipeline, r: DropReason) -> u64 {
    let s = p.shared().counters.snapshot(&p.shared().port_names());
    s.drops.get(r.name()).copied().unwrap_or(0)
}

fn nat_drops(p: &dataplane::Pipeline, name: &str) -> u64 {
    let nat = p.shared().nat.as_ref().expect("NAT configured");
    nat.summary().drops.get(name).copied().unwrap_or(0)
}

/// Recompute the IPv4 header checksum of the header at `l3`.
fn fix_ip_checksum(f: &mut [u8], l3: usize) {
    let hl = usize::from(f[l3] & 0x0f) * 4;
    f[l3 + 10] = 0;
    f[l3 + 11] = 0;
    let c = wire::checksum(&f[l3..l3 + hl]);
    f[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
}

/// Recompute the ICMP checksum of the (whole, unfragmented) ICMP message
/// at `l4` up to the end of the frame.
fn fix_icmp_checksum(f: &mut [u8], l4: usize) {
    f[l4 + 2] = 0;
    f[l4 + 3] = 0;
    let c = wire::checksum(&f[l4..]);
    f[l4 + 2..l4 + 4].copy_from_slice(&c.to_be_bytes());
}

fn corrupt_ip_checksum(f: &mut [u8], l3: usize) {
    f[l3 + 11] ^= 0x5a;
}

/// A plain router that knows the WAN next hop (static neighbour in the
/// example config) and the inside hosts.
fn router() -> dataplane::Pipeline {
    let mut p = single(router_config()).unwrap();
    learn_hosts(&mut p, ts(0.5));
    p
}

#[test]
fn bad_ipv4_header_checksum_is_a_counted_drop_not_forwarded() {
    let mut p = router();
    let good = udp_out(5000);
    assert!(wire::ipv4_header_ok(&good, L3));
    let (d, _, g) = one(&mut p, LAN, good.clone(), ts(1.0));
    assert_eq!(d, Disposition::Tx(WAN), "the intact frame is forwarded");
    assert!(g.is_empty());
    let mut bad = good;
    corrupt_ip_checksum(&mut bad, L3);
    let (d, after, g) = one(&mut p, LAN, bad.clone(), ts(1.1));
    assert_eq!(d, Disposition::Drop(DropReason::BadIpv4Checksum));
    assert!(g.is_empty(), "nothing generated");
    assert_eq!(after, bad, "not rewritten");
    assert_eq!(drops(&p, DropReason::BadIpv4Checksum), 1);
    // Also with the NAT in the path (the fast lanes' entry).
    let mut n = single(nat_config()).unwrap();
    let (d, _, g) = one(&mut n, LAN, bad, ts(1.0));
    assert_eq!(d, Disposition::Drop(DropReason::BadIpv4Checksum));
    assert!(g.is_empty());
    assert_eq!(drops(&n, DropReason::BadIpv4Checksum), 1);
    let s = n.shared().nat.as_ref().unwrap().summary();
    assert_eq!(s.sessions_active, 0, "no session created");
    // The name is the counter key.
    assert_eq!(DropReason::BadIpv4Checksum.name(), "bad_ipv4_checksum");
}

#[test]
fn bad_ipv4_header_checksum_to_us_is_not_answered() {
    let mut p = router();
    let echo = traffic::ipv4(
        HOST_MAC,
        LAN_MAC,
        HOST,
        GW,
        64,
        1,
        PROTO_ICMP,
        &traffic::icmp_echo(8, 7, 1, b"ping"),
    );
    let (d, _, _) = one(&mut p, LAN, echo.clone(), ts(1.0));
    assert_eq!(d, Disposition::Tx(LAN), "the intact echo is answered");
    let mut bad = echo;
    corrupt_ip_checksum(&mut bad, L3);
    let (d, after, g) = one(&mut p, LAN, bad.clone(), ts(1.1));
    assert_eq!(d, Disposition::Drop(DropReason::BadIpv4Checksum));
    assert_eq!(after, bad, "not turned into a reply");
    assert!(g.is_empty());
    // TTL 1 with a bad checksum: no time exceeded either.
    let mut ttl1 = udp_out(5001);
    ttl1[L3 + 8] = 1;
    fix_ip_checksum(&mut ttl1, L3);
    let (d, _, g) = one(&mut p, LAN, ttl1.clone(), ts(1.2));
    assert_eq!(d, Disposition::Drop(DropReason::TtlExceeded));
    assert_eq!(g.len(), 1, "time exceeded for the intact frame");
    corrupt_ip_checksum(&mut ttl1, L3);
    let (d, _, g) = one(&mut p, LAN, ttl1, ts(1.3));
    assert_eq!(d, Disposition::Drop(DropReason::BadIpv4Checksum));
    assert!(g.is_empty(), "no ICMP error about a corrupted frame");
    assert_eq!(drops(&p, DropReason::BadIpv4Checksum), 2);
}

#[test]
fn bad_ipv4_total_length_is_a_counted_drop() {
    let mut p = router();
    let good = udp_out(5000);
    let tl = u16::from_be_bytes([good[L3 + 2], good[L3 + 3]]);
    // Past the frame.
    let mut long = good.clone();
    long[L3 + 2..L3 + 4].copy_from_slice(&(tl + 1).to_be_bytes());
    fix_ip_checksum(&mut long, L3);
    // Below the header.
    let mut short = good.clone();
    short[L3 + 2..L3 + 4].copy_from_slice(&19u16.to_be_bytes());
    fix_ip_checksum(&mut short, L3);
    // Inside one VLAN tag, on a port of that VLAN: still an IPv4 length
    // fault (checked after the tag is removed).
    let mut tagged = long.clone();
    tagged.splice(12..12, [0x81, 0x00, 0x00, 0x05]);
    for (i, f) in [long, short].into_iter().enumerate() {
        let (d, _, g) = one(&mut p, LAN, f, ts(1.0 + i as f64));
        assert_eq!(d, Disposition::Drop(DropReason::BadIpv4Length), "case {i}");
        assert!(g.is_empty());
    }
    assert_eq!(drops(&p, DropReason::BadIpv4Length), 2);
    let mut c = router_config();
    c.ports[usize::from(LAN)].vlan = Some(5);
    let mut tp = single(c).unwrap();
    let (d, _, g) = one(&mut tp, LAN, tagged, ts(3.0));
    assert_eq!(d, Disposition::Drop(DropReason::BadIpv4Length), "tagged");
    assert!(g.is_empty());
    // Ethernet padding after the total length is fine.
    let mut padded = good;
    padded.extend_from_slice(&[0; 18]);
    let (d, _, _) = one(&mut p, LAN, padded, ts(5.0));
    assert_eq!(d, Disposition::Tx(WAN));
    assert_eq!(drops(&p, DropReason::Malformed), 0);
}

#[test]
fn bad_ipv4_ihl_is_a_counted_drop() {
    let mut p = router();
    let good = udp_out(5000);
    // IHL 4 (below 5).
    let mut low = good.clone();
    low[L3] = 0x44;
    // IHL 15 (60 bytes) in a 28-byte IP packet: the header does not fit.
    let mut high = good.clone();
    high[L3] = 0x4f;
    for (i, f) in [low, high].into_iter().enumerate() {
        let (d, _, g) = one(&mut p, LAN, f, ts(1.0 + i as f64));
        assert_eq!(d, Disposition::Drop(DropReason::BadIpv4Header), "case {i}");
        assert!(g.is_empty());
    }
    assert_eq!(drops(&p, DropReason::BadIpv4Header), 2);
    // Fewer than 20 IPv4 bytes: plain truncation, still `malformed`.
    let mut cut = good;
    cut.truncate(L3 + 16);
    let (d, _, _) = one(&mut p, LAN, cut, ts(4.0));
    assert_eq!(d, Disposition::Drop(DropReason::Malformed));
    assert_eq!(drops(&p, DropReason::BadIpv4Header), 2);
}

/// A NAT pipeline with a UDP session HOST:5000 → REMOTE:53, and the
/// translated probe as it left on WAN.
fn nat_with_session() -> (dataplane::Pipeline, Vec<u8>) {
    let mut p = single(nat_config()).unwrap();
    learn_hosts(&mut p, ts(0.5));
    let (d, out, _) = one(&mut p, LAN, udp_out(5000), ts(1.0));
    assert_eq!(d, Disposition::Tx(WAN));
    (p, out)
}

/// Port unreachable from REMOTE about the translated probe (quote: IP
/// header + 8 bytes), to the NAT's external address.
fn port_unreachable(translated: &[u8]) -> Vec<u8> {
    let mut e = wire::icmpv4_error(
        ROUTER_MAC,
        WAN_MAC,
        REMOTE,
        translated,
        L3,
        translated.len(),
        3,
        3,
    )
    .unwrap();
    assert!(traffic::checksums_ok(&e));
    // The error's outer destination is the probe's (translated) source.
    e[L3 + 16..L3 + 20].copy_from_slice(&translated[L3 + 12..L3 + 16]);
    fix_ip_checksum(&mut e, L3);
    e
}

const ICMP: usize = L3 + 20;
const EMBEDDED: usize = ICMP + 8;

#[test]
fn icmp_error_with_correct_checksums_is_translated() {
    let (mut p, out) = nat_with_session();
    let e = port_unreachable(&out);
    let (d, f, _) = one(&mut p, WAN, e, ts(1.5));
    assert_eq!(d, Disposition::Tx(LAN));
    let v = view(&f);
    assert_eq!(v.dst, core::net::IpAddr::V4(HOST));
    assert!(traffic::checksums_ok(&f));
    assert!(wire::ipv4_header_ok(&f, EMBEDDED));
    assert_eq!(drops(&p, DropReason::BadIcmpChecksum), 0);
}

#[test]
fn icmp_error_with_bad_icmp_checksum_is_a_counted_drop() {
    let (mut p, out) = nat_with_session();
    let mut e = port_unreachable(&out);
    e[ICMP + 3] ^= 0x21;
    let (d, f, g) = one(&mut p, WAN, e.clone(), ts(1.5));
    assert_eq!(d, Disposition::Drop(DropReason::BadIcmpChecksum));
    assert_eq!(f, e, "not translated");
    assert!(g.is_empty());
    assert_eq!(drops(&p, DropReason::BadIcmpChecksum), 1);
    assert_eq!(nat_drops(&p, "bad_icmp_checksum"), 1);
    // The session is still there: the intact error is translated after it.
    let (d, _, _) = one(&mut p, WAN, port_unreachable(&out), ts(1.6));
    assert_eq!(d, Disposition::Tx(LAN));
}

#[test]
fn icmp_error_with_bad_embedded_ipv4_checksum_is_a_counted_drop() {
    let (mut p, out) = nat_with_session();
    let mut e = port_unreachable(&out);
    corrupt_ip_checksum(&mut e, EMBEDDED);
    // The ICMP checksum is right for the bytes as they are: only the
    // quoted header's checksum is wrong.
    fix_icmp_checksum(&mut e, ICMP);
    assert!(traffic::checksums_ok(&e));
    assert!(!wire::ipv4_header_ok(&e, EMBEDDED));
    let (d, f, g) = one(&mut p, WAN, e.clone(), ts(1.5));
    assert_eq!(d, Disposition::Drop(DropReason::BadIcmpChecksum));
    assert_eq!(f, e, "not translated");
    assert!(g.is_empty());
    assert_eq!(drops(&p, DropReason::BadIcmpChecksum), 1);
    assert_eq!(nat_drops(&p, "bad_embedded_checksum"), 1);
}

#[test]
fn icmp_error_with_bad_outer_ipv4_checksum_is_dropped_before_the_nat() {
    let (mut p, out) = nat_with_session();
    let mut e = port_unreachable(&out);
    corrupt_ip_checksum(&mut e, L3);
    let (d, _, g) = one(&mut p, WAN, e, ts(1.5));
    assert_eq!(d, Disposition::Drop(DropReason::BadIpv4Checksum));
    assert!(g.is_empty());
    assert_eq!(nat_drops(&p, "bad_icmp_checksum"), 0);
}
