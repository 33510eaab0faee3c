//! The frames the dataplane itself emits or rewrites in place (ARP
//! replies/requests, ICMP echo replies, ICMP time exceeded, ICMPv6 echo reply
//! and neighbour discovery), plus small bounds-checked field readers.
//! Classification and checksums come from `net` (`net::classify`,
//! `net::checksum`): one implementation for the whole workspace.
//!
//! CONTRACT: every function here takes arbitrary bytes and never panics: all
//! indexing goes through bounds-checked accessors or is guarded by an
//! explicit length check.
//!
//! Cost: in-place edits are O(header length); builders allocate one `Vec`
//! of the emitted frame's size.

use core::net::{Ipv4Addr, Ipv6Addr};

pub const ETH_HDR: usize = 14;
pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
pub const ETHERTYPE_VLAN: u16 = 0x8100;
pub const ETHERTYPE_QINQ: u16 = 0x88a8;
pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_ICMPV6: u8 = 58;

/// A MAC address.
pub type Mac = [u8; 6];
pub const BROADCAST: Mac = [0xff; 6];

#[inline]
pub fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

#[inline]
pub fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

#[inline]
pub fn ipv4_at(b: &[u8], at: usize) -> Option<Ipv4Addr> {
    be32(b, at).map(Ipv4Addr::from)
}

#[inline]
pub fn ipv6_at(b: &[u8], at: usize) -> Option<Ipv6Addr> {
    let s: [u8; 16] = b.get(at..at + 16)?.try_into().ok()?;
    Some(Ipv6Addr::from(s))
}

#[inline]
fn put16(b: &mut [u8], at: usize, v: u16) {
    if let Some(s) = b.get_mut(at..at + 2) {
        s.copy_from_slice(&v.to_be_bytes());
    }
}

/// Classify a frame (`net::classify`).
///
/// # Errors
/// [`net::ClassifyError`] for truncated or malformed headers.
#[inline]
pub fn classify(f: &[u8]) -> Result<net::Classified, net::ClassifyError> {
    net::classify(f)
}

// ---------------------------------------------------------------- checksums

/// One's-complement sum of `data` (folded, not complemented; `net::checksum::sum`).
/// Partial sums may be added in a `u32` and folded with [`fold`].
#[inline]
pub fn sum16(data: &[u8]) -> u32 {
    u32::from(net::checksum::sum(data))
}

/// Fold a 32-bit one's-complement sum and complement it.
#[inline]
pub fn fold(s: u32) -> u16 {
    !net::checksum::fold(u64::from(s))
}

/// The internet checksum of `data` (RFC 1071, `net::checksum::checksum`).
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    net::checksum::checksum(data)
}

fn pseudo_v6(src: &Ipv6Addr, dst: &Ipv6Addr, len: u32, proto: u8) -> u32 {
    u32::from(net::checksum::pseudo_header_v6(*src, *dst, proto, len))
}

/// RFC 1624 eqn. 3 incremental update (`net::checksum::update_u16`).
#[inline]
pub fn csum_update16(hc: u16, old: u16, new: u16) -> u16 {
    net::checksum::update_u16(hc, old, new)
}

// ------------------------------------------------------------- in-place edits

/// Set the Ethernet source and destination MAC.
pub fn set_macs(f: &mut [u8], src: Mac, dst: Mac) {
    if let Some(d) = f.get_mut(0..6) {
        d.copy_from_slice(&dst);
    }
    if let Some(s) = f.get_mut(6..12) {
        s.copy_from_slice(&src);
    }
}

pub fn src_mac(f: &[u8]) -> Mac {
    f.get(6..12)
        .and_then(|s| s.try_into().ok())
        .unwrap_or([0; 6])
}

/// Decrement the IPv4 TTL at `l3` with the header checksum updated
/// incrementally. Returns the TTL before the decrement.
pub fn ipv4_dec_ttl(f: &mut [u8], l3: usize) -> Option<u8> {
    let ttl = *f.get(l3 + 8)?;
    let proto = *f.get(l3 + 9)?;
    if ttl == 0 {
        return Some(0);
    }
    let old = u16::from_be_bytes([ttl, proto]);
    let new = u16::from_be_bytes([ttl - 1, proto]);
    let hc = be16(f, l3 + 10)?;
    f[l3 + 8] = ttl - 1;
    put16(f, l3 + 10, csum_update16(hc, old, new));
    Some(ttl)
}

/// Decrement the IPv6 hop limit (no checksum). Returns the value before.
pub fn ipv6_dec_hlim(f: &mut [u8], l3: usize) -> Option<u8> {
    let h = f.get_mut(l3 + 7)?;
    let old = *h;
    *h = old.saturating_sub(1);
    Some(old)
}

/// Turn an ARP request (already classified, 28-byte body at `l3`) into the
/// reply from `our_mac` in place. Same length.
pub fn arp_to_reply(f: &mut [u8], l3: usize, our_mac: Mac) -> bool {
    if f.len() < l3 + 28 {
        return false;
    }
    let req_mac: Mac = f[l3 + 8..l3 + 14].try_into().unwrap_or([0; 6]);
    let req_ip: [u8; 4] = f[l3 + 14..l3 + 18].try_into().unwrap_or([0; 4]);
    let tgt_ip: [u8; 4] = f[l3 + 24..l3 + 28].try_into().unwrap_or([0; 4]);
    put16(f, l3 + 6, 2);
    f[l3 + 8..l3 + 14].copy_from_slice(&our_mac);
    f[l3 + 14..l3 + 18].copy_from_slice(&tgt_ip);
    f[l3 + 18..l3 + 24].copy_from_slice(&req_mac);
    f[l3 + 24..l3 + 28].copy_from_slice(&req_ip);
    set_macs(f, our_mac, req_mac);
    true
}

/// Turn an ICMPv4 echo request into the echo reply in place (addresses
/// swapped, TTL reset to 64, checksums updated). Same length.
pub fn icmpv4_echo_to_reply(f: &mut [u8], l3: usize, l4: usize, end: usize, our_mac: Mac) -> bool {
    if f.len() < end || end < l4 + 8 || l4 < l3 + 20 {
        return false;
    }
    let peer_mac = src_mac(f);
    let (s, d) = (l3 + 12, l3 + 16);
    for i in 0..4 {
        f.swap(s + i, d + i);
    }
    f[l3 + 8] = 64;
    put16(f, l3 + 10, 0);
    let c = checksum(&f[l3..l4]);
    put16(f, l3 + 10, c);
    f[l4] = 0;
    put16(f, l4 + 2, 0);
    let c = checksum(&f[l4..end]);
    put16(f, l4 + 2, c);
    set_macs(f, our_mac, peer_mac);
    true
}

/// Turn an ICMPv6 echo request into the echo reply in place, from `ours`
/// (the address the request was sent to, or our unicast if it was multicast).
pub fn icmpv6_echo_to_reply(
    f: &mut [u8],
    l3: usize,
    l4: usize,
    end: usize,
    ours: Ipv6Addr,
    our_mac: Mac,
) -> bool {
    if f.len() < end || end < l4 + 8 {
        return false;
    }
    let peer_mac = src_mac(f);
    let Some(peer) = ipv6_at(f, l3 + 8) else {
        return false;
    };
    f[l3 + 8..l3 + 24].copy_from_slice(&ours.octets());
    f[l3 + 24..l3 + 40].copy_from_slice(&peer.octets());
    f[l3 + 7] = 64;
    f[l4] = 129;
    put16(f, l4 + 2, 0);
    let c = fold(
        pseudo_v6(&ours, &peer, (end - l4) as u32, PROTO_ICMPV6).wrapping_add(sum16(&f[l4..end])),
    );
    put16(f, l4 + 2, c);
    set_macs(f, our_mac, peer_mac);
    true
}

// ------------------------------------------------------------------ builders

fn eth(dst: Mac, src: Mac, ethertype: u16, cap: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(cap);
    v.extend_from_slice(&dst);
    v.extend_from_slice(&src);
    v.extend_from_slice(&ethertype.to_be_bytes());
    v
}

/// An ARP request "who has `target`? tell `sender_ip`" (broadcast).
pub fn arp_request(sender_mac: Mac, sender_ip: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut v = eth(BROADCAST, sender_mac, ETHERTYPE_ARP, 60);
    v.extend_from_slice(&[0, 1, 0x08, 0, 6, 4, 0, 1]);
    v.extend_from_slice(&sender_mac);
    v.extend_from_slice(&sender_ip.octets());
    v.extend_from_slice(&[0; 6]);
    v.extend_from_slice(&target.octets());
    v.resize(60, 0);
    v
}

/// An ARP reply from `sender` to `target` (used by tests and the demo's
/// simulated hosts).
pub fn arp_reply(
    sender_mac: Mac,
    sender_ip: Ipv4Addr,
    target_mac: Mac,
    target_ip: Ipv4Addr,
) -> Vec<u8> {
    let mut v = eth(target_mac, sender_mac, ETHERTYPE_ARP, 60);
    v.extend_from_slice(&[0, 1, 0x08, 0, 6, 4, 0, 2]);
    v.extend_from_slice(&sender_mac);
    v.extend_from_slice(&sender_ip.octets());
    v.extend_from_slice(&target_mac);
    v.extend_from_slice(&target_ip.octets());
    v.resize(60, 0);
    v
}

/// An IPv4 header (20 bytes, checksum filled).
pub fn ipv4_header(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    payload_len: usize,
    ttl: u8,
    id: u16,
) -> [u8; 20] {
    let mut h = [0u8; 20];
    h[0] = 0x45;
    h[2..4].copy_from_slice(&((20 + payload_len) as u16).to_be_bytes());
    h[4..6].copy_from_slice(&id.to_be_bytes());
    h[8] = ttl;
    h[9] = proto;
    h[12..16].copy_from_slice(&src.octets());
    h[16..20].copy_from_slice(&dst.octets());
    let c = checksum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h
}

/// ICMPv4 error (e.g. type 11 code 0, time exceeded) about the IPv4 packet
/// at `l3..end` of `orig`: from `src` (our port address) to the offending
/// packet's source, quoting its IP header and the first 8 bytes of payload
/// (RFC 792; RFC 1812 §4.3.2.3 allows more, we quote the minimum).
#[allow(clippy::too_many_arguments)]
pub fn icmpv4_error(
    src_mac: Mac,
    dst_mac: Mac,
    src: Ipv4Addr,
    orig: &[u8],
    l3: usize,
    end: usize,
    ty: u8,
    code: u8,
) -> Option<Vec<u8>> {
    let ihl = usize::from(*orig.get(l3)? & 0x0f) * 4;
    let quote_end = end.min(l3 + ihl + 8);
    let quote = orig.get(l3..quote_end)?;
    let dst = ipv4_at(orig, l3 + 12)?;
    let icmp_len = 8 + quote.len();
    let mut v = eth(dst_mac, src_mac, ETHERTYPE_IPV4, 14 + 20 + icmp_len);
    v.extend_from_slice(&ipv4_header(src, dst, PROTO_ICMP, icmp_len, 64, 0));
    let l4 = v.len();
    v.extend_from_slice(&[ty, code, 0, 0, 0, 0, 0, 0]);
    v.extend_from_slice(quote);
    let c = checksum(&v[l4..]);
    v[l4 + 2..l4 + 4].copy_from_slice(&c.to_be_bytes());
    Some(v)
}

/// The solicited-node multicast address of `a` (RFC 4291 §2.7.1).
pub fn solicited_node(a: Ipv6Addr) -> Ipv6Addr {
    let o = a.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    )
}

/// The Ethernet multicast MAC of an IPv6 multicast address (RFC 2464 §7).
pub fn ipv6_mcast_mac(a: Ipv6Addr) -> Mac {
    let o = a.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

fn icmpv6_frame(src_mac: Mac, dst_mac: Mac, src: Ipv6Addr, dst: Ipv6Addr, body: &[u8]) -> Vec<u8> {
    let mut v = eth(dst_mac, src_mac, ETHERTYPE_IPV6, 14 + 40 + body.len());
    v.extend_from_slice(&[0x60, 0, 0, 0]);
    v.extend_from_slice(&(body.len() as u16).to_be_bytes());
    v.extend_from_slice(&[PROTO_ICMPV6, 255]);
    v.extend_from_slice(&src.octets());
    v.extend_from_slice(&dst.octets());
    let l4 = v.len();
    v.extend_from_slice(body);
    let c =
        fold(pseudo_v6(&src, &dst, body.len() as u32, PROTO_ICMPV6).wrapping_add(sum16(&v[l4..])));
    v[l4 + 2..l4 + 4].copy_from_slice(&c.to_be_bytes());
    v
}

/// Neighbour advertisement (RFC 4861 §4.4) for `target` owned by us, sent to
/// `dst` (solicited: S and O flags set, target link-layer address option).
pub fn ndp_advert(
    our_mac: Mac,
    target: Ipv6Addr,
    dst_mac: Mac,
    dst: Ipv6Addr,
    solicited: bool,
) -> Vec<u8> {
    let mut b = vec![136, 0, 0, 0];
    b.extend_from_slice(&[if solicited { 0x60 } else { 0x20 }, 0, 0, 0]);
    b.extend_from_slice(&target.octets());
    b.extend_from_slice(&[2, 1]);
    b.extend_from_slice(&our_mac);
    icmpv6_frame(our_mac, dst_mac, target, dst, &b)
}

/// Neighbour solicitation (RFC 4861 §4.3) for `target`, from `src`, to the
/// target's solicited-node multicast group.
pub fn ndp_solicit(our_mac: Mac, src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let mut b = vec![135, 0, 0, 0, 0, 0, 0, 0];
    b.extend_from_slice(&target.octets());
    b.extend_from_slice(&[1, 1]);
    b.extend_from_slice(&our_mac);
    let group = solicited_node(target);
    icmpv6_frame(our_mac, ipv6_mcast_mac(group), src, group, &b)
}

/// ICMPv6 time exceeded (type 3 code 0) quoting as much of the offending
/// packet as fits in the IPv6 minimum MTU (RFC 4443 §2.4 (c)).
pub fn icmpv6_time_exceeded(
    src_mac: Mac,
    dst_mac: Mac,
    src: Ipv6Addr,
    orig: &[u8],
    l3: usize,
    end: usize,
) -> Option<Vec<u8>> {
    let dst = ipv6_at(orig, l3 + 8)?;
    let quote = orig.get(l3..end.min(l3 + 1280 - 48))?;
    let mut b = vec![3, 0, 0, 0, 0, 0, 0, 0];
    b.extend_from_slice(quote);
    Some(icmpv6_frame(src_mac, dst_mac, src, dst, &b))
}

/// Parse the link-layer address option (type `want`: 1 source, 2 target)
/// from NDP options starting at `at`.
pub fn ndp_lladdr(f: &[u8], mut at: usize, end: usize, want: u8) -> Option<Mac> {
    for _ in 0..16 {
        if at + 2 > end {
            return None;
        }
        let ty = *f.get(at)?;
        let len = usize::from(*f.get(at + 1)?) * 8;
        if len == 0 || at + len > end {
            return None;
        }
        if ty == want && len >= 8 {
            return f.get(at + 2..at + 8)?.try_into().ok();
        }
        at += len;
    }
    None
}

/// Verify an IPv4 header checksum (tests and debug checks).
pub fn ipv4_header_ok(f: &[u8], l3: usize) -> bool {
    let Some(&vihl) = f.get(l3) else { return false };
    let ihl = usize::from(vihl & 0x0f) * 4;
    f.get(l3..l3 + ihl).is_some_and(|h| checksum(h) == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1624_incremental_matches_full() {
        let mut h = ipv4_header(
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(8, 8, 8, 8),
            6,
            20,
            64,
            7,
        );
        let mut f = vec![0u8; 14];
        f.extend_from_slice(&h);
        assert_eq!(ipv4_dec_ttl(&mut f, 14), Some(64));
        assert!(ipv4_header_ok(&f, 14));
        h[8] = 63;
        h[10] = 0;
        h[11] = 0;
        let c = checksum(&h);
        assert_eq!(be16(&f, 24), Some(c));
    }

    #[test]
    fn classify_rejects_short_and_garbage() {
        assert!(classify(&[]).is_err());
        let mut f = vec![0u8; 14];
        f[12] = 0x08;
        assert!(classify(&f).is_err());
        f[12] = 0x12;
        assert!(matches!(
            classify(&f),
            Err(net::ClassifyError::UnsupportedEthertype(0x1200))
        ));
    }

    #[test]
    fn solicited_node_address() {
        let a: Ipv6Addr = "2001:db8::1:2:3".parse().unwrap();
        assert_eq!(
            solicited_node(a),
            "ff02::1:ff02:3".parse::<Ipv6Addr>().unwrap()
        );
    }
}
