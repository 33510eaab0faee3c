//! The frames the dataplane itself emits or rewrites in place (ARP
//! replies/requests, ICMP echo replies, ICMP errors, ICMPv6 echo reply and
//! neighbour discovery). Everything protocol-level comes from `net`: header
//! views and `Repr`s (`net::ethernet`, `net::arp`, `net::ipv4`, `net::ipv6`,
//! `net::icmpv4`, `net::icmpv6`), frame assembly (`net::build`),
//! classification (`net::classify`) and checksums (`net::checksum`). What
//! is left here is dataplane policy: which fields a reply gets (TTL 64,
//! hop limit 255 for what we originate over IPv6, DF clear, 60-byte ARP
//! frames, RFC 4443 quote size) and the `[u8; 6]` MAC type of the config.
//!
//! CONTRACT: every function here takes arbitrary bytes and never panics:
//! views are only built with `new_checked` (or over a slice whose length
//! was checked), and offsets are only used through `get`/`get_mut`.
//!
//! Cost: in-place edits are O(header length); builders allocate one `Vec`
//! of the emitted frame's size (slow path).

use core::net::{Ipv4Addr, Ipv6Addr};

use net::build::{self, L2, L4};
use net::ethernet::{self, MacAddr, ethertype};
use net::{arp, icmpv4, icmpv6, ip_protocol, ipv4, ipv6};

pub const ETH_HDR: usize = ethernet::HEADER_LEN;
pub const ETHERTYPE_IPV4: u16 = ethertype::IPV4;
pub const ETHERTYPE_ARP: u16 = ethertype::ARP;
pub const ETHERTYPE_IPV6: u16 = ethertype::IPV6;
pub const ETHERTYPE_VLAN: u16 = ethertype::VLAN;
pub const ETHERTYPE_QINQ: u16 = ethertype::QINQ;
pub const PROTO_ICMP: u8 = ip_protocol::ICMP;
pub const PROTO_TCP: u8 = ip_protocol::TCP;
pub const PROTO_UDP: u8 = ip_protocol::UDP;
pub const PROTO_ICMPV6: u8 = ip_protocol::ICMPV6;

/// A MAC address (the config's and the port table's type; `net` uses
/// [`MacAddr`] around the same bytes).
pub type Mac = [u8; 6];
pub const BROADCAST: Mac = MacAddr::BROADCAST.0;

/// Minimum Ethernet frame without FCS: what we pad ARP frames to.
const ETH_MIN: usize = 60;
/// Hop limit of the ICMPv6 messages we originate (NDP requires 255, RFC
/// 4861 §7.1; the dataplane uses it for time exceeded too).
const ICMPV6_HOP_LIMIT: u8 = 255;
/// TTL / hop limit of echo replies.
const REPLY_TTL: u8 = 64;

pub use net::checksum::checksum;
pub use net::classify;
pub use net::ipv6::solicited_node;

// ------------------------------------------------------ test/diagnostic readers
//
// Absolute-offset readers kept for the integration tests and examples,
// which read bytes at fixed offsets of whole frames. The packet path does
// not use them: it reads through `net`'s views.

/// Big-endian u16 at `at`, if in bounds.
#[inline]
pub fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

/// Big-endian u32 at `at`, if in bounds.
#[inline]
pub fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// IPv4 address at `at`, if in bounds.
#[inline]
pub fn ipv4_at(b: &[u8], at: usize) -> Option<Ipv4Addr> {
    be32(b, at).map(Ipv4Addr::from)
}

/// IPv6 address at `at`, if in bounds.
#[inline]
pub fn ipv6_at(b: &[u8], at: usize) -> Option<Ipv6Addr> {
    let s: [u8; 16] = b.get(at..at + 16)?.try_into().ok()?;
    Some(Ipv6Addr::from(s))
}

// ------------------------------------------------------------------- views

/// The IPv4 header view of the packet at `l3..end` of `f`.
pub fn ipv4_view(f: &[u8], l3: usize, end: usize) -> Option<ipv4::Packet<&[u8]>> {
    ipv4::Packet::new_checked(f.get(l3..end)?).ok()
}

/// The IPv6 header view of the packet at `l3..end` of `f`.
pub fn ipv6_view(f: &[u8], l3: usize, end: usize) -> Option<ipv6::Packet<&[u8]>> {
    ipv6::Packet::new_checked(f.get(l3..end)?).ok()
}

/// The ICMPv6 view of the message at `l4..end` of `f`.
pub fn icmpv6_view(f: &[u8], l4: usize, end: usize) -> Option<icmpv6::Packet<&[u8]>> {
    icmpv6::Packet::new_checked(f.get(l4..end)?).ok()
}

/// The Ethernet source MAC (zeros for a runt).
pub fn src_mac(f: &[u8]) -> Mac {
    ethernet::Frame::new_checked(f).map_or([0; 6], |e| e.src_addr().0)
}

/// The Ethernet destination MAC (zeros for a runt).
pub fn dst_mac(f: &[u8]) -> Mac {
    ethernet::Frame::new_checked(f).map_or([0; 6], |e| e.dst_addr().0)
}

/// The Ethernet multicast MAC of an IPv6 multicast address (RFC 2464 §7).
pub fn ipv6_mcast_mac(a: Ipv6Addr) -> Mac {
    MacAddr::ipv6_multicast(a).0
}

/// Verify the IPv4 header checksum of the packet at `l3` (tests and debug
/// checks). The header only is checked (a quoted packet's total length may
/// exceed what is there).
pub fn ipv4_header_ok(f: &[u8], l3: usize) -> bool {
    f.get(l3..)
        .map(ipv4::Packet::new_unchecked)
        .is_some_and(|p| p.check_header_len().is_ok() && p.verify_checksum())
}

// ------------------------------------------------------------- in-place edits

/// Set the Ethernet source and destination MAC.
pub fn set_macs(f: &mut [u8], src: Mac, dst: Mac) {
    if let Ok(mut e) = ethernet::Frame::new_checked(f) {
        e.set_dst_addr(MacAddr(dst));
        e.set_src_addr(MacAddr(src));
    }
}

/// Decrement the IPv4 TTL of the packet at `l3` with the header checksum
/// updated incrementally (RFC 1624, `net::ipv4::Packet::decrement_ttl`).
/// Returns the TTL before the decrement.
pub fn ipv4_dec_ttl(f: &mut [u8], l3: usize) -> Option<u8> {
    let mut p = ipv4::Packet::new_unchecked(f.get_mut(l3..)?);
    p.check_header_len().ok()?;
    let ttl = p.ttl();
    p.decrement_ttl();
    Some(ttl)
}

/// Decrement the IPv6 hop limit (no checksum). Returns the value before.
pub fn ipv6_dec_hlim(f: &mut [u8], l3: usize) -> Option<u8> {
    let mut p = ipv6::Packet::new_checked(f.get_mut(l3..)?).ok()?;
    let old = p.hop_limit();
    p.set_hop_limit(old.saturating_sub(1));
    Some(old)
}

/// Turn an ARP request (Ethernet/IPv4, at `l3`) into the reply from
/// `our_mac` in place (`net::arp::Repr::reply`). Same length.
pub fn arp_to_reply(f: &mut [u8], l3: usize, our_mac: Mac) -> bool {
    let Some(body) = f.get_mut(l3..) else {
        return false;
    };
    let Ok(req) = arp::Packet::new_checked(&*body).and_then(|p| arp::Repr::parse(&p)) else {
        return false;
    };
    let reply = req.reply(MacAddr(our_mac));
    if reply.emit(body).is_err() {
        return false;
    }
    set_macs(f, our_mac, req.source_hardware_addr.0);
    true
}

/// Turn an ICMPv4 echo request (IPv4 at `l3..end`, ICMP at `l4`) into the
/// echo reply in place: addresses swapped, TTL reset to 64, both checksums
/// recomputed. Same length.
pub fn icmpv4_echo_to_reply(f: &mut [u8], l3: usize, l4: usize, end: usize, our_mac: Mac) -> bool {
    let peer_mac = src_mac(f);
    let Some(pkt) = f.get_mut(l3..end) else {
        return false;
    };
    let Ok(mut ip) = ipv4::Packet::new_checked(pkt) else {
        return false;
    };
    if l3 + ip.header_len() != l4 {
        return false;
    }
    let Ok(mut icmp) = icmpv4::Packet::new_checked(ip.payload_mut()) else {
        return false;
    };
    icmp.set_msg_type(icmpv4::msg_type::ECHO_REPLY);
    icmp.fill_checksum();
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    ip.set_src_addr(dst);
    ip.set_dst_addr(src);
    ip.set_ttl(REPLY_TTL);
    ip.fill_checksum();
    set_macs(f, our_mac, peer_mac);
    true
}

/// Turn an ICMPv6 echo request (IPv6 at `l3`, ICMPv6 at `l4..end`) into the
/// echo reply in place, from `ours` (the address the request was sent to,
/// or our unicast if it was multicast).
pub fn icmpv6_echo_to_reply(
    f: &mut [u8],
    l3: usize,
    l4: usize,
    end: usize,
    ours: Ipv6Addr,
    our_mac: Mac,
) -> bool {
    let peer_mac = src_mac(f);
    if l4 < l3 + ipv6::HEADER_LEN || end < l4 {
        return false;
    }
    let Some(pkt) = f.get_mut(l3..end) else {
        return false;
    };
    let (hdr, msg) = pkt.split_at_mut(l4 - l3);
    let Ok(mut icmp) = icmpv6::Packet::new_checked(msg) else {
        return false;
    };
    let mut ip = ipv6::Packet::new_unchecked(hdr);
    let peer = ip.src_addr();
    ip.set_src_addr(ours);
    ip.set_dst_addr(peer);
    ip.set_hop_limit(REPLY_TTL);
    icmp.set_msg_type(icmpv6::msg_type::ECHO_REPLY);
    icmp.fill_checksum(&ours.into(), &peer.into());
    set_macs(f, our_mac, peer_mac);
    true
}

// ------------------------------------------------------------------ builders

fn l2(src: Mac, dst: Mac) -> L2<'static> {
    L2 {
        src: MacAddr(src),
        dst: MacAddr(dst),
        vlans: &[],
    }
}

fn arp_frame(dst: Mac, a: &arp::Repr) -> Vec<u8> {
    let mut v = build::arp_frame(&l2(a.source_hardware_addr.0, dst), a);
    v.resize(v.len().max(ETH_MIN), 0);
    v
}

/// An ARP request "who has `target`? tell `sender_ip`" (broadcast, padded
/// to 60 bytes).
pub fn arp_request(sender_mac: Mac, sender_ip: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    arp_frame(
        BROADCAST,
        &arp::Repr {
            operation: arp::operation::REQUEST,
            source_hardware_addr: MacAddr(sender_mac),
            source_protocol_addr: sender_ip,
            target_hardware_addr: MacAddr::ZERO,
            target_protocol_addr: target,
        },
    )
}

/// An ARP request for `target` sent to `dst` only: a unicast probe of a
/// known neighbour (RFC 1122 §2.3.2.1; Linux's `ucast_probes`).
pub fn arp_request_to(dst: Mac, sender_mac: Mac, sender_ip: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    arp_frame(
        dst,
        &arp::Repr {
            operation: arp::operation::REQUEST,
            source_hardware_addr: MacAddr(sender_mac),
            source_protocol_addr: sender_ip,
            target_hardware_addr: MacAddr::ZERO,
            target_protocol_addr: target,
        },
    )
}

/// An ARP reply from `sender` to `target` (used by tests and the demo's
/// simulated hosts; padded to 60 bytes).
pub fn arp_reply(
    sender_mac: Mac,
    sender_ip: Ipv4Addr,
    target_mac: Mac,
    target_ip: Ipv4Addr,
) -> Vec<u8> {
    arp_frame(
        target_mac,
        &arp::Repr {
            operation: arp::operation::REPLY,
            source_hardware_addr: MacAddr(sender_mac),
            source_protocol_addr: sender_ip,
            target_hardware_addr: MacAddr(target_mac),
            target_protocol_addr: target_ip,
        },
    )
}

/// The IPv4 header the dataplane and its traffic generator emit: no
/// options, DF clear, the given TTL and identification
/// (`net::ipv4::Repr::emit`, checksum filled).
pub fn ipv4_repr(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    payload_len: usize,
    ttl: u8,
    id: u16,
) -> ipv4::Repr {
    ipv4::Repr {
        ttl,
        ident: id,
        dont_frag: false,
        ..ipv4::Repr::new(src, dst, proto, payload_len as u16)
    }
}

/// [`ipv4_repr`] emitted: 20 bytes, checksum filled.
pub fn ipv4_header(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    payload_len: usize,
    ttl: u8,
    id: u16,
) -> [u8; 20] {
    let mut h = [0u8; ipv4::HEADER_LEN];
    // 20 bytes always fit; payload lengths past 65515 are not emitted by
    // the dataplane (the header would say otherwise anyway).
    let _ = ipv4_repr(src, dst, proto, payload_len, ttl, id).emit(&mut h);
    h
}

/// ICMPv4 error of type `ty`/`code` (time exceeded 11/0, destination
/// unreachable 3/13, ...) about the IPv4 packet at `l3..end` of `orig`: from
/// `src` (our port address) to the offending packet's source, quoting its
/// IP header and the first 8 bytes of payload (`net::icmpv4::quote`, RFC
/// 792; RFC 1812 §4.3.2.3 allows more, we quote the minimum).
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
    let invoking = orig.get(l3..end)?;
    let p = ipv4::Packet::new_unchecked(invoking);
    p.check_header_len().ok()?;
    let dst = p.src_addr();
    let data = icmpv4::quote(invoking);
    let msg = match ty {
        icmpv4::msg_type::TIME_EXCEEDED => icmpv4::Repr::TimeExceeded { code, data },
        icmpv4::msg_type::DST_UNREACHABLE => icmpv4::Repr::DstUnreachable {
            code,
            next_hop_mtu: 0,
            data,
        },
        msg_type => icmpv4::Repr::Other {
            msg_type,
            code,
            rest: 0,
            data,
        },
    };
    Some(build::ipv4_frame(
        &l2(src_mac, dst_mac),
        ipv4_repr(src, dst, PROTO_ICMP, 0, REPLY_TTL, 0),
        L4::Icmpv4(msg),
    ))
}

/// ICMP fragmentation needed and DF set (3/4, RFC 1191) about the IPv4
/// packet at `l3..end` of `orig`, carrying `next_hop_mtu`: from `src` to
/// the packet's source, quoting its header + 8 bytes
/// (`net::build::icmp4_frag_needed`: TTL 64, DF clear).
pub fn icmpv4_frag_needed(
    src_mac: Mac,
    dst_mac: Mac,
    src: Ipv4Addr,
    orig: &[u8],
    (l3, end): (usize, usize),
    next_hop_mtu: u16,
) -> Option<Vec<u8>> {
    build::icmp4_frag_needed(&l2(src_mac, dst_mac), src, next_hop_mtu, orig.get(l3..end)?)
}

fn icmpv6_frame(
    src_mac: Mac,
    dst_mac: Mac,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    msg: icmpv6::Repr<'_>,
) -> Vec<u8> {
    let ip = ipv6::Repr {
        hop_limit: ICMPV6_HOP_LIMIT,
        ..ipv6::Repr::new(src, dst, PROTO_ICMPV6, 0)
    };
    build::ipv6_frame(&l2(src_mac, dst_mac), ip, L4::Icmpv6(msg))
}

/// Neighbour advertisement (RFC 4861 §4.4) for `target` owned by us, sent to
/// `dst` (O flag, S when `solicited`; target link-layer address option).
pub fn ndp_advert(
    our_mac: Mac,
    target: Ipv6Addr,
    dst_mac: Mac,
    dst: Ipv6Addr,
    solicited: bool,
) -> Vec<u8> {
    let flags = if solicited {
        icmpv6::na_flags::SOLICITED | icmpv6::na_flags::OVERRIDE
    } else {
        icmpv6::na_flags::OVERRIDE
    };
    icmpv6_frame(
        our_mac,
        dst_mac,
        target,
        dst,
        icmpv6::Repr::NeighborAdvert {
            flags,
            target,
            target_lladdr: Some(MacAddr(our_mac)),
        },
    )
}

/// Neighbour solicitation (RFC 4861 §4.3) for `target`, from `src`, to the
/// target's solicited-node multicast group.
pub fn ndp_solicit(our_mac: Mac, src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let group = solicited_node(target);
    icmpv6_frame(
        our_mac,
        ipv6_mcast_mac(group),
        src,
        group,
        icmpv6::Repr::NeighborSolicit {
            target,
            source_lladdr: Some(MacAddr(our_mac)),
        },
    )
}

/// Neighbour solicitation for `target` sent to the target address itself
/// at `dst_mac`: a unicast probe of a known neighbour (RFC 4861 §7.3.3).
pub fn ndp_solicit_unicast(our_mac: Mac, src: Ipv6Addr, target: Ipv6Addr, dst_mac: Mac) -> Vec<u8> {
    icmpv6_frame(
        our_mac,
        dst_mac,
        src,
        target,
        icmpv6::Repr::NeighborSolicit {
            target,
            source_lladdr: Some(MacAddr(our_mac)),
        },
    )
}

/// How much of the offending packet an ICMPv6 error quotes: as much as fits
/// in the IPv6 minimum MTU with our IPv6 and ICMPv6 headers (RFC 4443 §2.4 (c)).
const ICMPV6_MAX_QUOTE: usize = icmpv6::MAX_QUOTE;

/// ICMPv6 Packet Too Big (type 2, RFC 8201 / RFC 4443 §3.2) about the IPv6
/// packet at `l3..end` of `orig`, carrying `mtu`: from `src` to the packet's
/// source, quoting as much as fits in 1 280 bytes (hop limit 255, like every
/// ICMPv6 message the dataplane originates).
pub fn icmpv6_packet_too_big(
    src_mac: Mac,
    dst_mac: Mac,
    src: Ipv6Addr,
    orig: &[u8],
    (l3, end): (usize, usize),
    mtu: u16,
) -> Option<Vec<u8>> {
    build::icmp6_packet_too_big(
        &l2(src_mac, dst_mac),
        src,
        ICMPV6_HOP_LIMIT,
        u32::from(mtu),
        orig.get(l3..end)?,
    )
}

/// ICMPv6 time exceeded (type 3 code 0) about the IPv6 packet at
/// `l3..end` of `orig`, to its source.
pub fn icmpv6_time_exceeded(
    src_mac: Mac,
    dst_mac: Mac,
    src: Ipv6Addr,
    orig: &[u8],
    l3: usize,
    end: usize,
) -> Option<Vec<u8>> {
    let dst = ipv6::Packet::new_checked(orig.get(l3..end)?)
        .ok()?
        .src_addr();
    let data = orig.get(l3..end.min(l3 + ICMPV6_MAX_QUOTE))?;
    Some(icmpv6_frame(
        src_mac,
        dst_mac,
        src,
        dst,
        icmpv6::Repr::TimeExceeded { code: 0, data },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dec_ttl_matches_full_recompute() {
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
        f.resize(14 + 40, 0);
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
    fn in_place_edits_never_panic_on_short_frames() {
        for n in 0..80 {
            let mut f = vec![0x45u8; n];
            let _ = ipv4_dec_ttl(&mut f, 14);
            let _ = ipv6_dec_hlim(&mut f, 14);
            let _ = arp_to_reply(&mut f, 14, [2; 6]);
            let _ = icmpv4_echo_to_reply(&mut f, 14, 34, n, [2; 6]);
            let _ = icmpv6_echo_to_reply(&mut f, 14, 54, n, Ipv6Addr::LOCALHOST, [2; 6]);
            let _ = icmpv4_error([1; 6], [2; 6], Ipv4Addr::LOCALHOST, &f, 14, n, 11, 0);
            let _ = icmpv6_time_exceeded([1; 6], [2; 6], Ipv6Addr::LOCALHOST, &f, 14, n);
            let _ = icmpv4_frag_needed([1; 6], [2; 6], Ipv4Addr::LOCALHOST, &f, (14, n), 68);
            let _ = icmpv6_packet_too_big([1; 6], [2; 6], Ipv6Addr::LOCALHOST, &f, (14, n), 1280);
            set_macs(&mut f, [1; 6], [2; 6]);
        }
    }
}
