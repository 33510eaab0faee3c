//! Frame-level checksum verification/filling and the NAT rewrite helpers.
//! Also reachable as `net::checksum::*`, where the module docs describe them
//! (see [`crate::checksum`]).

use core::net::{IpAddr, Ipv4Addr};

use crate::checksum::{self, Delta};
use crate::classify::{Classified, ClassifyError, FiveTuple, L3Kind, L4Kind, classify};
use crate::{icmpv4, icmpv6, ip_protocol, ipv4, tcp, udp};

/// Why a rewrite helper refused a frame. Nothing was modified when one of
/// these is returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum RewriteError {
    /// The packet is not IPv4 (the NAT is NAT44).
    #[error("not an IPv4 packet")]
    NotIpv4,
    /// The `Classified` does not describe this frame (offsets out of range
    /// or headers too short for them).
    #[error("classification does not match the frame")]
    Mismatch,
    /// A port was given but the packet has none (non-first fragment, ICMP
    /// other than a query (echo, timestamp), protocols without ports, or an embedded packet of
    /// that kind).
    #[error("packet has no port or ICMP identifier to rewrite")]
    NoPort,
    /// Not an ICMPv4 error message (for the embedded-packet helpers).
    #[error("not an ICMPv4 error message")]
    NotIcmpError,
    /// The packet quoted in an ICMP error is not an IPv4 header.
    #[error("embedded packet is not a readable IPv4 header")]
    BadEmbedded,
}

/// Which checksum of a frame is wrong, or why it could not be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum ChecksumError {
    #[error("frame does not classify: {0}")]
    Classify(#[from] ClassifyError),
    #[error("classification does not match the frame")]
    Mismatch,
    #[error("bad IPv4 header checksum")]
    Ipv4Header,
    #[error("bad TCP checksum")]
    Tcp,
    #[error("bad UDP checksum")]
    Udp,
    #[error("bad ICMPv4 checksum")]
    Icmpv4,
    #[error("bad ICMPv6 checksum")]
    Icmpv6,
}

/// What a rewrite changes: each field is set when `Some`. Built by the
/// public wrappers below with constant shapes, so after inlining the unused
/// branches disappear.
#[derive(Clone, Copy)]
struct Change {
    src: Option<Ipv4Addr>,
    sport: Option<u16>,
    dst: Option<Ipv4Addr>,
    dport: Option<u16>,
}

impl Change {
    #[inline(always)]
    fn has_port(&self) -> bool {
        self.sport.is_some() || self.dport.is_some()
    }
}

/// Offsets of `cls` checked against `frame`: (l3, l4, end).
#[inline]
fn offsets(frame_len: usize, cls: &Classified) -> Option<(usize, usize, usize)> {
    let (l3, l4, end) = (
        usize::from(cls.l3_offset),
        usize::from(cls.l4_offset),
        usize::from(cls.l3_end),
    );
    (l3 <= l4 && l4 <= end && end <= frame_len).then_some((l3, l4, end))
}

/// Where a port (or ICMP identifier) lives in the L4 header.
#[derive(Clone, Copy)]
enum PortSlot {
    Tcp,
    Udp,
    IcmpQuery,
}

/// Sets the ports of a TCP/UDP header (first 4 bytes of `l4`), recording
/// the changes in `d`.
#[inline(always)]
fn set_ports(l4: &mut [u8], c: &Change, d: &mut Delta) {
    // TCP and UDP share the port layout (source 0..2, destination 2..4).
    let mut u = udp::Packet::new_unchecked(l4);
    if let Some(p) = c.sport {
        d.add_u16(u.src_port(), p);
        u.set_src_port(p);
    }
    if let Some(p) = c.dport {
        d.add_u16(u.dst_port(), p);
        u.set_dst_port(p);
    }
}

/// Sets an ICMP query identifier: the source side's value, then the
/// destination side's (one field), recording the changes in `d`.
#[inline(always)]
fn set_ident(l4: &mut [u8], c: &Change, d: &mut Delta) {
    let mut i = icmpv4::Packet::new_unchecked(l4);
    for p in [c.sport, c.dport].into_iter().flatten() {
        d.add_u16(i.echo_ident(), p);
        i.set_echo_ident(p);
    }
}

/// Sets the addresses of an IPv4 header, returning their delta (which the
/// header checksum and the TCP/UDP pseudo-header checksum share).
#[inline(always)]
fn set_addrs(ip: &mut ipv4::Packet<&mut [u8]>, c: &Change) -> Delta {
    let mut addr = Delta::default();
    if let Some(a) = c.src {
        addr.add_ipv4(ip.src_addr(), a);
        ip.set_src_addr(a);
    }
    if let Some(a) = c.dst {
        addr.add_ipv4(ip.dst_addr(), a);
        ip.set_dst_addr(a);
    }
    addr
}

#[inline(always)]
fn rewrite_outer(frame: &mut [u8], cls: &Classified, c: Change) -> Result<(), RewriteError> {
    if cls.l3 != L3Kind::Ipv4 {
        return Err(RewriteError::NotIpv4);
    }
    let (l3, l4, end) = offsets(frame.len(), cls).ok_or(RewriteError::Mismatch)?;
    let (head, rest) = frame.split_at_mut(l4);
    let seg = &mut rest[..end - l4];
    let mut ip = ipv4::Packet::new_unchecked(&mut head[l3..]);
    ip.check_header_len().map_err(|_| RewriteError::Mismatch)?;

    // Validate everything before writing anything.
    let slot = match cls.l4 {
        L4Kind::Tcp if seg.len() >= tcp::HEADER_LEN => Some(PortSlot::Tcp),
        L4Kind::Udp if seg.len() >= udp::HEADER_LEN => Some(PortSlot::Udp),
        L4Kind::Icmpv4 if seg.len() >= icmpv4::HEADER_LEN => {
            let echo = icmpv4::is_query(icmpv4::Packet::new_unchecked(&*seg).msg_type());
            echo.then_some(PortSlot::IcmpQuery)
        }
        L4Kind::Tcp | L4Kind::Udp | L4Kind::Icmpv4 => return Err(RewriteError::Mismatch),
        _ => None,
    };
    if c.has_port() && slot.is_none() {
        return Err(RewriteError::NoPort);
    }

    // One delta for both addresses: the IPv4 header checksum, and the
    // TCP/UDP checksum through the pseudo-header.
    let addr = set_addrs(&mut ip, &c);
    ip.set_checksum(addr.apply(ip.checksum()));

    match slot {
        Some(PortSlot::Tcp) => {
            let mut d = addr;
            set_ports(seg, &c, &mut d);
            let mut t = tcp::Packet::new_unchecked(&mut *seg);
            t.set_checksum(d.apply(t.checksum()));
        }
        Some(PortSlot::Udp) => {
            let mut d = addr;
            set_ports(seg, &c, &mut d);
            // RFC 768: 0 means "no checksum" and stays 0; a computed 0 is
            // sent as 0xffff.
            let mut u = udp::Packet::new_unchecked(&mut *seg);
            u.set_checksum(d.apply_udp(u.checksum()));
        }
        Some(PortSlot::IcmpQuery) if c.has_port() => {
            // ICMPv4 has no pseudo-header: only the identifier matters.
            let mut d = Delta::default();
            set_ident(seg, &c, &mut d);
            let mut i = icmpv4::Packet::new_unchecked(&mut *seg);
            i.set_checksum(d.apply(i.checksum()));
        }
        Some(PortSlot::IcmpQuery) | None => {}
    }
    Ok(())
}

/// Source NAT of one packet: sets the IPv4 source address to `new_ip` and
/// the source port — or, for an ICMP query (echo or timestamp request/reply), the identifier —
/// to `new_port`, updating the IPv4 header checksum and the TCP/UDP/ICMP
/// checksum incrementally (RFC 1624). A UDP checksum of 0 stays 0.
///
/// `cls` must be what [`crate::classify()`] returned for this frame; it is not
/// updated (its tuple keeps the old values).
///
/// # Errors
/// [`RewriteError::NotIpv4`], [`RewriteError::NoPort`] (non-first fragment,
/// ICMP other than a query, other protocols: use [`rewrite_ipv4_src_addr`]),
/// [`RewriteError::Mismatch`]. Nothing is written on error.
#[inline]
pub fn rewrite_ipv4_src(
    frame: &mut [u8],
    cls: &Classified,
    new_ip: Ipv4Addr,
    new_port: u16,
) -> Result<(), RewriteError> {
    let c = Change {
        src: Some(new_ip),
        sport: Some(new_port),
        dst: None,
        dport: None,
    };
    rewrite_outer(frame, cls, c)
}

/// Destination NAT of one packet: like [`rewrite_ipv4_src`] for the
/// destination address and port (or ICMP query identifier).
///
/// # Errors
/// As [`rewrite_ipv4_src`].
#[inline]
pub fn rewrite_ipv4_dst(
    frame: &mut [u8],
    cls: &Classified,
    new_ip: Ipv4Addr,
    new_port: u16,
) -> Result<(), RewriteError> {
    let c = Change {
        src: None,
        sport: None,
        dst: Some(new_ip),
        dport: Some(new_port),
    };
    rewrite_outer(frame, cls, c)
}

/// Source and destination NAT of one packet in one pass (hairpinning, or a
/// NAT that always writes the whole translated tuple): sets both addresses
/// and both ports, with one checksum delta per checksum. A field that keeps
/// its value costs nothing in the checksums (its delta is zero).
///
/// An ICMP query has a single identifier: it ends up as `new_dport` (the
/// source side is applied first). Pass the identifier as both ports, as
/// [`crate::classify()`]'s tuple does.
///
/// # Errors
/// As [`rewrite_ipv4_src`]. Nothing is written on error.
#[inline]
pub fn rewrite_ipv4_src_dst(
    frame: &mut [u8],
    cls: &Classified,
    new_src: Ipv4Addr,
    new_sport: u16,
    new_dst: Ipv4Addr,
    new_dport: u16,
) -> Result<(), RewriteError> {
    let c = Change {
        src: Some(new_src),
        sport: Some(new_sport),
        dst: Some(new_dst),
        dport: Some(new_dport),
    };
    rewrite_outer(frame, cls, c)
}

/// Sets the IPv4 source address only, for any IPv4 packet (fragments, ICMP
/// errors, other protocols): fixes the header checksum and, where this
/// fragment holds a TCP/UDP header, its pseudo-header checksum.
///
/// # Errors
/// [`RewriteError::NotIpv4`], [`RewriteError::Mismatch`].
#[inline]
pub fn rewrite_ipv4_src_addr(
    frame: &mut [u8],
    cls: &Classified,
    new_ip: Ipv4Addr,
) -> Result<(), RewriteError> {
    let c = Change {
        src: Some(new_ip),
        sport: None,
        dst: None,
        dport: None,
    };
    rewrite_outer(frame, cls, c)
}

/// Sets the IPv4 destination address only; see [`rewrite_ipv4_src_addr`].
///
/// # Errors
/// [`RewriteError::NotIpv4`], [`RewriteError::Mismatch`].
#[inline]
pub fn rewrite_ipv4_dst_addr(
    frame: &mut [u8],
    cls: &Classified,
    new_ip: Ipv4Addr,
) -> Result<(), RewriteError> {
    let c = Change {
        src: None,
        sport: None,
        dst: Some(new_ip),
        dport: None,
    };
    rewrite_outer(frame, cls, c)
}

/// Sets both IPv4 addresses (not the ports), for any IPv4 packet, in one
/// pass: [`rewrite_ipv4_src_addr`] and [`rewrite_ipv4_dst_addr`] together
/// (e.g. the later fragments of a hairpinned datagram, or the outer header
/// of a translated ICMP error).
///
/// # Errors
/// [`RewriteError::NotIpv4`], [`RewriteError::Mismatch`].
#[inline]
pub fn rewrite_ipv4_addrs(
    frame: &mut [u8],
    cls: &Classified,
    new_src: Ipv4Addr,
    new_dst: Ipv4Addr,
) -> Result<(), RewriteError> {
    let c = Change {
        src: Some(new_src),
        sport: None,
        dst: Some(new_dst),
        dport: None,
    };
    rewrite_outer(frame, cls, c)
}

/// The packet quoted by an ICMPv4 error, located and checked.
struct Quote {
    /// Offset of the ICMP message in the frame, and its end.
    l4: usize,
    end: usize,
    /// Quoted IPv4 header length.
    hl: usize,
    slot: PortSlot,
    /// The quoted TCP/UDP checksum is within the quote.
    l4_ck_quoted: bool,
}

/// Finds the quoted packet of the ICMPv4 error `cls` describes. The one
/// place that decides what an embedded packet must look like, for
/// [`icmpv4_embedded_tuple`] and the embedded rewrites alike.
#[inline]
fn locate_quote(frame: &[u8], cls: &Classified) -> Result<Quote, RewriteError> {
    if cls.l3 != L3Kind::Ipv4 {
        return Err(RewriteError::NotIpv4);
    }
    if cls.l4 != L4Kind::Icmpv4 {
        return Err(RewriteError::NotIcmpError);
    }
    let (_, l4, end) = offsets(frame.len(), cls).ok_or(RewriteError::Mismatch)?;
    let icmp = icmpv4::Packet::new_checked(&frame[l4..end]).map_err(|_| RewriteError::Mismatch)?;
    if !icmpv4::is_error(icmp.msg_type()) {
        return Err(RewriteError::NotIcmpError);
    }
    let data = icmp.data();
    // The quoted IPv4 header: its total length exceeds the quote, so only
    // the header itself is checked.
    let ip = ipv4::Packet::new_unchecked(data);
    ip.check_header_len()
        .map_err(|_| RewriteError::BadEmbedded)?;
    if ip.version() != 4 {
        return Err(RewriteError::BadEmbedded);
    }
    let hl = ip.header_len();
    if ip.frag_offset() != 0 {
        return Err(RewriteError::NoPort);
    }
    let l4b = &data[hl..];
    // The port (or identifier) must be quoted; the L4 checksum is fixed
    // only when it was quoted too.
    let (slot, l4_ck_quoted) = match ip.protocol() {
        ip_protocol::TCP if l4b.len() >= 4 => {
            (PortSlot::Tcp, l4b.len() >= tcp::CHECKSUM_OFFSET + 2)
        }
        ip_protocol::UDP if l4b.len() >= 4 => {
            (PortSlot::Udp, l4b.len() >= udp::CHECKSUM_OFFSET + 2)
        }
        ip_protocol::ICMP
            if l4b.len() >= icmpv4::HEADER_LEN
                && icmpv4::is_query(icmpv4::Packet::new_unchecked(l4b).msg_type()) =>
        {
            // Always quoted (within the 8-byte header).
            (
                PortSlot::IcmpQuery,
                l4b.len() >= icmpv4::CHECKSUM_OFFSET + 2,
            )
        }
        _ => return Err(RewriteError::NoPort),
    };
    Ok(Quote {
        l4,
        end,
        hl,
        slot,
        l4_ck_quoted,
    })
}

/// The 5-tuple of the packet quoted by an ICMPv4 error (RFC 5508: the NAT
/// finds the session through it): addresses, protocol, and the TCP/UDP
/// ports or — for a quoted ICMP query (echo, timestamp) — the identifier as both ports (as
/// [`crate::classify()`] reports a query). Exactly the quotes the
/// embedded rewrites accept are accepted here.
///
/// # Errors
/// As [`rewrite_icmpv4_embedded_src`].
pub fn icmpv4_embedded_tuple(frame: &[u8], cls: &Classified) -> Result<FiveTuple, RewriteError> {
    let q = locate_quote(frame, cls)?;
    let data = &frame[q.l4 + icmpv4::HEADER_LEN..q.end];
    let ip = ipv4::Packet::new_unchecked(data);
    let l4b = &data[q.hl..];
    let (src_port, dst_port) = match q.slot {
        PortSlot::Tcp | PortSlot::Udp => {
            let u = udp::Packet::new_unchecked(l4b);
            (u.src_port(), u.dst_port())
        }
        PortSlot::IcmpQuery => {
            let id = icmpv4::Packet::new_unchecked(l4b).echo_ident();
            (id, id)
        }
    };
    Ok(FiveTuple {
        src: IpAddr::V4(ip.src_addr()),
        dst: IpAddr::V4(ip.dst_addr()),
        proto: ip.protocol(),
        src_port,
        dst_port,
    })
}

fn rewrite_embedded(frame: &mut [u8], cls: &Classified, c: Change) -> Result<(), RewriteError> {
    // Everything is validated here, before the first write.
    let q = locate_quote(frame, cls)?;
    let mut icmp = icmpv4::Packet::new_unchecked(&mut frame[q.l4..q.end]);
    let old_icmp_ck = icmp.checksum();
    let data = icmp.data_mut();
    let (hdr, l4b) = data.split_at_mut(q.hl);
    let mut ip = ipv4::Packet::new_unchecked(hdr);

    // Every 16-bit word changed inside the ICMP message goes into `outer`
    // (all of them sit at even offsets: 8 + IHL·4 + even).
    let mut outer = Delta::default();

    // Inner IPv4 header: addresses and header checksum.
    let addr = set_addrs(&mut ip, &c);
    let old_ck = ip.checksum();
    let new_ck = addr.apply(old_ck);
    ip.set_checksum(new_ck);
    outer.merge(addr);
    outer.add_u16(old_ck, new_ck);

    // Inner L4: ports/identifier and, if quoted, its checksum.
    let mut port = Delta::default();
    match q.slot {
        PortSlot::Tcp | PortSlot::Udp => {
            set_ports(l4b, &c, &mut port);
            if q.l4_ck_quoted {
                let mut d = addr;
                d.merge(port);
                let (old, new) = if matches!(q.slot, PortSlot::Tcp) {
                    let mut t = tcp::Packet::new_unchecked(&mut *l4b);
                    let old = t.checksum();
                    t.set_checksum(d.apply(old));
                    (old, t.checksum())
                } else {
                    let mut u = udp::Packet::new_unchecked(&mut *l4b);
                    let old = u.checksum();
                    u.set_checksum(d.apply_udp(old));
                    (old, u.checksum())
                };
                outer.add_u16(old, new);
            }
        }
        PortSlot::IcmpQuery => {
            set_ident(l4b, &c, &mut port);
            let mut i = icmpv4::Packet::new_unchecked(&mut *l4b);
            let old = i.checksum();
            let new = port.apply(old);
            i.set_checksum(new);
            outer.add_u16(old, new);
        }
    }
    outer.merge(port);

    icmp.set_checksum(outer.apply(old_icmp_ck));
    Ok(())
}

/// For an ICMPv4 error (destination unreachable, time exceeded, parameter
/// problem, source quench, redirect): rewrites the *embedded* packet's
/// source address and source port (TCP/UDP) or query identifier to
/// `new_ip`/`new_port`, fixing the embedded IPv4 header checksum, the
/// embedded TCP/UDP/ICMP checksum when the quote contains it (TCP needs 18
/// quoted bytes, UDP 8), and the outer ICMP checksum. The outer IPv4 header
/// is untouched: rewrite it with [`rewrite_ipv4_dst_addr`] /
/// [`rewrite_ipv4_src_addr`] / [`rewrite_ipv4_addrs`].
///
/// Typical use (RFC 5508 §4.2): an error arriving at the NAT's public
/// address about a packet the NAT sent out: outer destination → the
/// private host ([`rewrite_ipv4_dst_addr`]); embedded source → the
/// private host's address and port (this function).
///
/// # Errors
/// [`RewriteError::NotIpv4`], [`RewriteError::NotIcmpError`],
/// [`RewriteError::BadEmbedded`], [`RewriteError::NoPort`] (the quote
/// lacks ports or is a non-first fragment, or another protocol),
/// [`RewriteError::Mismatch`]. Nothing is written on error.
pub fn rewrite_icmpv4_embedded_src(
    frame: &mut [u8],
    cls: &Classified,
    new_ip: Ipv4Addr,
    new_port: u16,
) -> Result<(), RewriteError> {
    let c = Change {
        src: Some(new_ip),
        sport: Some(new_port),
        dst: None,
        dport: None,
    };
    rewrite_embedded(frame, cls, c)
}

/// Like [`rewrite_icmpv4_embedded_src`] for the embedded packet's
/// destination address and port (port forwarding: an error from the
/// internal server about a reply it sent).
///
/// # Errors
/// As [`rewrite_icmpv4_embedded_src`].
pub fn rewrite_icmpv4_embedded_dst(
    frame: &mut [u8],
    cls: &Classified,
    new_ip: Ipv4Addr,
    new_port: u16,
) -> Result<(), RewriteError> {
    let c = Change {
        src: None,
        sport: None,
        dst: Some(new_ip),
        dport: Some(new_port),
    };
    rewrite_embedded(frame, cls, c)
}

/// Both sides of the embedded packet at once (one pass, one delta per
/// checksum): what a NAT does when it maps the quoted tuple as a whole
/// (e.g. hairpinned sessions, where both ends are translated). An embedded
/// ICMP echo's identifier ends up as `new_dport` (pass it as both ports).
///
/// # Errors
/// As [`rewrite_icmpv4_embedded_src`].
pub fn rewrite_icmpv4_embedded(
    frame: &mut [u8],
    cls: &Classified,
    new_src: Ipv4Addr,
    new_sport: u16,
    new_dst: Ipv4Addr,
    new_dport: u16,
) -> Result<(), RewriteError> {
    let c = Change {
        src: Some(new_src),
        sport: Some(new_sport),
        dst: Some(new_dst),
        dport: Some(new_dport),
    };
    rewrite_embedded(frame, cls, c)
}

/// Verifies the IPv4 header checksum (`Ok` for non-IPv4 frames).
///
/// # Errors
/// [`ChecksumError::Ipv4Header`], [`ChecksumError::Mismatch`].
pub fn verify_ipv4_header(frame: &[u8], cls: &Classified) -> Result<(), ChecksumError> {
    if cls.l3 != L3Kind::Ipv4 {
        return Ok(());
    }
    let (l3, l4, _) = offsets(frame.len(), cls).ok_or(ChecksumError::Mismatch)?;
    let ip = ipv4::Packet::new_unchecked(&frame[l3..l4]);
    ip.check_header_len().map_err(|_| ChecksumError::Mismatch)?;
    if ip.verify_checksum() {
        Ok(())
    } else {
        Err(ChecksumError::Ipv4Header)
    }
}

/// Which L4 checksum applies, with the addresses of its pseudo-header;
/// `None` when there is none to check in this frame (fragments — the
/// checksum covers the reassembled datagram —, other protocols, ARP).
fn l4_target(cls: &Classified) -> Option<(L4Kind, IpAddr, IpAddr)> {
    if cls.is_partial() {
        return None;
    }
    let t = cls.tuple?;
    match cls.l4 {
        k @ (L4Kind::Tcp | L4Kind::Udp | L4Kind::Icmpv4 | L4Kind::Icmpv6) => {
            Some((k, t.src, t.dst))
        }
        _ => None,
    }
}

/// Verifies the TCP, UDP, ICMPv4 or ICMPv6 checksum (with pseudo-header
/// where the protocol has one). `Ok` when there is nothing to check
/// (fragments, other protocols, ARP). A UDP checksum of 0 passes over IPv4
/// and fails over IPv6.
///
/// # Errors
/// [`ChecksumError::Tcp`] / `Udp` / `Icmpv4` / `Icmpv6`,
/// [`ChecksumError::Mismatch`].
pub fn verify_l4(frame: &[u8], cls: &Classified) -> Result<(), ChecksumError> {
    let Some((kind, src, dst)) = l4_target(cls) else {
        return Ok(());
    };
    let (_, l4, end) = offsets(frame.len(), cls).ok_or(ChecksumError::Mismatch)?;
    let seg = &frame[l4..end];
    let ok = match kind {
        L4Kind::Tcp => tcp::Packet::new_checked(seg)
            .map_err(|_| ChecksumError::Mismatch)?
            .verify_checksum(&src, &dst),
        L4Kind::Udp => udp::Packet::new_checked(seg)
            .map_err(|_| ChecksumError::Mismatch)?
            .verify_checksum(&src, &dst),
        L4Kind::Icmpv4 => checksum::verifies(checksum::accumulate(0, seg)),
        _ => icmpv6::Packet::new_unchecked(seg).verify_checksum(&src, &dst),
    };
    if ok {
        return Ok(());
    }
    Err(match kind {
        L4Kind::Tcp => ChecksumError::Tcp,
        L4Kind::Udp => ChecksumError::Udp,
        L4Kind::Icmpv4 => ChecksumError::Icmpv4,
        _ => ChecksumError::Icmpv6,
    })
}

/// Classifies `frame` and verifies every checksum in it (IPv4 header and
/// L4; see [`verify_l4`] for what is skipped). Returns the classification.
///
/// # Errors
/// [`ChecksumError::Classify`] or the first bad checksum.
pub fn verify_frame(frame: &[u8]) -> Result<Classified, ChecksumError> {
    let cls = classify(frame)?;
    verify_ipv4_header(frame, &cls)?;
    verify_l4(frame, &cls)?;
    Ok(cls)
}

/// Recomputes the IPv4 header checksum (no-op for non-IPv4).
///
/// # Errors
/// [`ChecksumError::Mismatch`].
pub fn fill_ipv4_header(frame: &mut [u8], cls: &Classified) -> Result<(), ChecksumError> {
    if cls.l3 != L3Kind::Ipv4 {
        return Ok(());
    }
    let (l3, l4, _) = offsets(frame.len(), cls).ok_or(ChecksumError::Mismatch)?;
    let mut ip = ipv4::Packet::new_unchecked(&mut frame[l3..l4]);
    ip.check_header_len().map_err(|_| ChecksumError::Mismatch)?;
    ip.fill_checksum();
    Ok(())
}

/// Recomputes the TCP/UDP/ICMPv4/ICMPv6 checksum (no-op where
/// [`verify_l4`] has nothing to check). UDP gets a real checksum (a
/// computed 0 is sent as 0xffff).
///
/// # Errors
/// [`ChecksumError::Mismatch`].
pub fn fill_l4(frame: &mut [u8], cls: &Classified) -> Result<(), ChecksumError> {
    let Some((kind, src, dst)) = l4_target(cls) else {
        return Ok(());
    };
    let (_, l4, end) = offsets(frame.len(), cls).ok_or(ChecksumError::Mismatch)?;
    let seg = &mut frame[l4..end];
    match kind {
        L4Kind::Tcp => tcp::Packet::new_checked(seg)
            .map_err(|_| ChecksumError::Mismatch)?
            .fill_checksum(&src, &dst),
        L4Kind::Udp => udp::Packet::new_checked(seg)
            .map_err(|_| ChecksumError::Mismatch)?
            .fill_checksum(&src, &dst),
        L4Kind::Icmpv4 => icmpv4::Packet::new_checked(seg)
            .map_err(|_| ChecksumError::Mismatch)?
            .fill_checksum(),
        _ => icmpv6::Packet::new_checked(seg)
            .map_err(|_| ChecksumError::Mismatch)?
            .fill_checksum(&src, &dst),
    }
    Ok(())
}

/// Classifies `frame` and recomputes all its checksums. Returns the
/// classification.
///
/// # Errors
/// [`ChecksumError::Classify`], [`ChecksumError::Mismatch`].
pub fn fill_frame(frame: &mut [u8]) -> Result<Classified, ChecksumError> {
    let cls = classify(frame)?;
    fill_ipv4_header(frame, &cls)?;
    fill_l4(frame, &cls)?;
    Ok(cls)
}
