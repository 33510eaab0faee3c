//! One-pass classifier: offsets and kinds of L2/L3/L4 plus the 5-tuple.
//!
//! CONTRACT (other crates code against these types; extend, do not rename):
//! `classify(frame)` succeeds for every frame whose L2 and L3 headers are
//! valid, including ARP and non-first IPv4/IPv6 fragments (which carry no
//! ports: `l4 == L4Kind::Fragment`), and whose L4 header — when this
//! fragment holds it and the protocol is TCP, UDP, ICMPv4 or ICMPv6 — is
//! long enough to read (TCP: 20 bytes and its data offset; UDP: 8 bytes and
//! a length field within the IP payload; ICMP: 8 bytes). A truncated or
//! malformed L4 header is an error ([`ClassifyError::Truncated`],
//! [`ClassifyError::BadDataOffset`], [`ClassifyError::BadUdpLength`]):
//! there is nothing the NAT could do with such a packet.
//! `Classified::five_tuple()` then yields the 5-tuple or the typed reason
//! there is none.
//!
//! # What is checked
//! - Ethernet II, then up to two VLAN tags (TPID 0x8100 or 0x88a8 in any
//!   order; a third is [`ClassifyError::TooManyVlanTags`]).
//! - IPv4: version 4, IHL ≥ 5, IHL·4 ≤ frame, IHL·4 ≤ total length ≤ frame
//!   (Ethernet padding after the total length is allowed and excluded by
//!   `l3_end`). One authentication header (RFC 4302) is skipped. The header
//!   checksum is **not** verified (see [`crate::checksum::verify_ipv4_header`]).
//! - IPv6: version 6, 40 + payload length ≤ frame; up to
//!   [`crate::ipv6::MAX_EXT_HEADERS`] extension headers (hop-by-hop — only
//!   first —, routing, destination options, fragment, authentication) are
//!   skipped; a non-first fragment stops the walk.
//! - ARP: 8 bytes and the address lengths it announces.
//!
//! # Cost
//! One pass, no allocation, a handful of loads per layer; no view is built
//! beyond wrapping the slice. See `benches/classify.rs`.

use core::net::IpAddr;

use crate::error::Layer;
use crate::ethernet::{self, ethertype};
use crate::{arp, icmpv4, icmpv6, ip_protocol, ipv4, ipv6, tcp, udp, vlan};

/// L3 protocol found after the Ethernet/VLAN headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum L3Kind {
    Ipv4,
    Ipv6,
    Arp,
}

/// L4 protocol found after the IP header (and IPv6 extension headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum L4Kind {
    Tcp,
    Udp,
    Icmpv4,
    Icmpv6,
    /// A non-first fragment: the L4 header is in another fragment.
    Fragment,
    /// Any other IP protocol number (e.g. GRE, ESP), or no L4 (ARP).
    Other(u8),
    None,
}

/// Fragment identification of an IPv4 (or IPv6 fragment-header) packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragInfo {
    /// IPv4 identification (16 bits) or IPv6 fragment id (32 bits).
    pub id: u32,
    /// Fragment offset in bytes.
    pub offset: u16,
    pub more_fragments: bool,
}

/// The 5-tuple of a packet. For ICMP queries (echo) both ports hold the
/// identifier; for ICMP errors the classifier reports the outer tuple with
/// ports 0 (use the ICMP views to reach the embedded packet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FiveTuple {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    pub src_port: u16,
    pub dst_port: u16,
}

/// What the pipeline needs of every packet, found in one pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classified {
    /// Outer VLAN tags (0, 1 or 2 = QinQ), VLAN ids, outermost first.
    pub vlans: [u16; 2],
    pub vlan_count: u8,
    /// Ethertype after the VLAN tags.
    pub ethertype: u16,
    pub l3_offset: u16,
    pub l3: L3Kind,
    /// Offset of the L4 header (for `Fragment`: of the fragment's payload).
    pub l4_offset: u16,
    pub l4: L4Kind,
    /// End of the IP packet within the frame (IPv4 total length / IPv6
    /// payload length), so Ethernet padding is excluded.
    pub l3_end: u16,
    /// Set for any fragment (first or not).
    pub frag: Option<FragInfo>,
    /// For TCP/UDP: the ports; for an ICMP query (echo, timestamp;
    /// `icmpv4::is_query`) and ICMPv6 echo: the identifier twice.
    /// `Some` for every IP packet except a non-first fragment (ports 0 when
    /// the protocol has none: ICMP errors and other messages, other
    /// protocols); `None` for ARP.
    pub tuple: Option<FiveTuple>,
    /// For ICMP: type and code.
    pub icmp_type_code: Option<(u8, u8)>,
}

/// Why a frame could not be classified, or (from
/// [`Classified::five_tuple`]) why it has no 5-tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum ClassifyError {
    /// The frame ends inside the named header.
    #[error("frame truncated in the {layer} header")]
    Truncated { layer: Layer },
    /// IPv4 IHL below 5.
    #[error("IPv4 header length (IHL) below 5")]
    BadIhl,
    /// IP version nibble does not match the EtherType.
    #[error("IP version does not match the EtherType")]
    BadVersion,
    /// IPv4 total length below the header or past the frame; IPv6 payload
    /// length past the frame.
    #[error("IP total length inconsistent with header or frame")]
    BadTotalLength,
    /// TCP data offset below 5.
    #[error("TCP data offset below 5")]
    BadDataOffset,
    /// UDP length field below 8 or past the IP payload.
    #[error("UDP length field below 8 or past the IP payload")]
    BadUdpLength,
    /// Not IPv4, IPv6, ARP or a VLAN tag.
    #[error("unsupported EtherType {0:#06x}")]
    UnsupportedEthertype(u16),
    /// A third VLAN tag.
    #[error("more than two VLAN tags")]
    TooManyVlanTags,
    /// More than [`ipv6::MAX_EXT_HEADERS`] IPv6 extension headers.
    #[error("more than {} IPv6 extension headers", ipv6::MAX_EXT_HEADERS)]
    TooManyExtensionHeaders,
    /// An IPv6 hop-by-hop header not directly after the IPv6 header.
    #[error("IPv6 hop-by-hop header not first")]
    HopByHopNotFirst,
    /// Frames longer than 65535 bytes do not fit the `u16` offsets.
    #[error("frame longer than 65535 bytes")]
    FrameTooLong,
    /// From [`Classified::five_tuple`]: a non-first fragment has no ports.
    #[error("non-first fragment: the L4 header is in another fragment")]
    NonFirstFragment,
    /// From [`Classified::five_tuple`]: ARP has no 5-tuple.
    #[error("not an IP packet")]
    NotIp,
}

impl Classified {
    /// The 5-tuple.
    ///
    /// # Errors
    /// [`ClassifyError::NonFirstFragment`] for a non-first fragment,
    /// [`ClassifyError::NotIp`] for ARP.
    #[inline]
    pub fn five_tuple(&self) -> Result<FiveTuple, ClassifyError> {
        match self.tuple {
            Some(t) => Ok(t),
            None if self.l4 == L4Kind::Fragment => Err(ClassifyError::NonFirstFragment),
            None => Err(ClassifyError::NotIp),
        }
    }

    /// Any fragment (first or not).
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.frag.is_some()
    }

    /// Part of a fragmented datagram: more-fragments set or a non-zero
    /// offset. Unlike [`is_fragment`](Self::is_fragment), an IPv6 "atomic
    /// fragment" (fragment header with offset 0 and M clear, RFC 6946) is
    /// not partial: it holds the whole datagram.
    #[inline]
    pub fn is_partial(&self) -> bool {
        self.frag.is_some_and(|f| f.more_fragments || f.offset != 0)
    }

    /// An ICMPv4 or ICMPv6 error message (quotes an invoking packet).
    #[inline]
    pub fn is_icmp_error(&self) -> bool {
        match (self.l4, self.icmp_type_code) {
            (L4Kind::Icmpv4, Some((t, _))) => icmpv4::is_error(t),
            (L4Kind::Icmpv6, Some((t, _))) => icmpv6::is_error(t),
            _ => false,
        }
    }

    /// An ICMPv4 or ICMPv6 echo request or reply.
    #[inline]
    pub fn is_icmp_echo(&self) -> bool {
        match (self.l4, self.icmp_type_code) {
            (L4Kind::Icmpv4, Some((t, _))) => icmpv4::is_echo(t),
            (L4Kind::Icmpv6, Some((t, _))) => icmpv6::is_echo(t),
            _ => false,
        }
    }

    /// The L3 packet (`l3_offset..l3_end`) of `frame`, if in range.
    #[inline]
    pub fn l3_bytes<'a>(&self, frame: &'a [u8]) -> Option<&'a [u8]> {
        frame.get(usize::from(self.l3_offset)..usize::from(self.l3_end))
    }

    /// Mutable [`l3_bytes`](Self::l3_bytes).
    #[inline]
    pub fn l3_bytes_mut<'a>(&self, frame: &'a mut [u8]) -> Option<&'a mut [u8]> {
        frame.get_mut(usize::from(self.l3_offset)..usize::from(self.l3_end))
    }

    /// The L4 segment (`l4_offset..l3_end`) of `frame`, if in range.
    #[inline]
    pub fn l4_bytes<'a>(&self, frame: &'a [u8]) -> Option<&'a [u8]> {
        frame.get(usize::from(self.l4_offset)..usize::from(self.l3_end))
    }

    /// Mutable [`l4_bytes`](Self::l4_bytes).
    #[inline]
    pub fn l4_bytes_mut<'a>(&self, frame: &'a mut [u8]) -> Option<&'a mut [u8]> {
        frame.get_mut(usize::from(self.l4_offset)..usize::from(self.l3_end))
    }
}

const fn trunc(layer: Layer) -> ClassifyError {
    ClassifyError::Truncated { layer }
}

/// Classifies an Ethernet frame (no FCS) in one pass.
///
/// # Errors
/// See [`ClassifyError`] and the module documentation.
#[inline]
pub fn classify(frame: &[u8]) -> Result<Classified, ClassifyError> {
    if frame.len() < ethernet::HEADER_LEN {
        return Err(trunc(Layer::Ethernet));
    }
    if frame.len() > usize::from(u16::MAX) {
        return Err(ClassifyError::FrameTooLong);
    }
    let mut et = ethernet::Frame::new_unchecked(frame).ethertype();
    let mut off = ethernet::HEADER_LEN;
    let mut vlans = [0u16; 2];
    let mut vlan_count = 0u8;
    while et == ethertype::VLAN || et == ethertype::QINQ {
        if usize::from(vlan_count) == vlans.len() {
            return Err(ClassifyError::TooManyVlanTags);
        }
        let Some(b) = frame.get(off..off + vlan::HEADER_LEN) else {
            return Err(trunc(Layer::Vlan));
        };
        let tag = vlan::Tag::new_unchecked(b);
        vlans[usize::from(vlan_count)] = tag.vid();
        vlan_count += 1;
        et = tag.ethertype();
        off += vlan::HEADER_LEN;
    }
    let l3 = &frame[off..];
    let mut c = Classified {
        vlans,
        vlan_count,
        ethertype: et,
        l3_offset: off as u16,
        l3: L3Kind::Ipv4,
        l4_offset: 0,
        l4: L4Kind::None,
        l3_end: 0,
        frag: None,
        tuple: None,
        icmp_type_code: None,
    };
    match et {
        ethertype::IPV4 => classify_ipv4(l3, off, &mut c)?,
        ethertype::IPV6 => classify_ipv6(l3, off, &mut c)?,
        ethertype::ARP => classify_arp(l3, off, &mut c)?,
        other => return Err(ClassifyError::UnsupportedEthertype(other)),
    }
    Ok(c)
}

#[inline(always)]
fn classify_ipv4(b: &[u8], off: usize, c: &mut Classified) -> Result<(), ClassifyError> {
    if b.len() < ipv4::HEADER_LEN {
        return Err(trunc(Layer::Ipv4));
    }
    let p = ipv4::Packet::new_unchecked(b);
    if p.version() != 4 {
        return Err(ClassifyError::BadVersion);
    }
    let hl = p.header_len();
    if hl < ipv4::HEADER_LEN {
        return Err(ClassifyError::BadIhl);
    }
    if hl > b.len() {
        return Err(trunc(Layer::Ipv4));
    }
    let tl = usize::from(p.total_len());
    if tl < hl || tl > b.len() {
        return Err(ClassifyError::BadTotalLength);
    }
    c.l3 = L3Kind::Ipv4;
    c.l3_end = (off + tl) as u16;
    let src = IpAddr::V4(p.src_addr());
    let dst = IpAddr::V4(p.dst_addr());
    let mut proto = p.protocol();
    let mut l4 = hl;
    let first = if p.is_fragment() {
        let offset = p.frag_offset();
        c.frag = Some(FragInfo {
            id: u32::from(p.ident()),
            offset,
            more_fragments: p.more_frags(),
        });
        offset == 0
    } else {
        true
    };
    if !first {
        // The payload of a non-first fragment is data, not headers.
        c.l4_offset = (off + l4) as u16;
        c.l4 = L4Kind::Fragment;
        return Ok(());
    }
    if proto == ip_protocol::AH {
        let ah =
            ipv6::ExtHeader::new_checked(&b[l4..tl], true).map_err(|_| trunc(Layer::IpAuth))?;
        proto = ah.next_header();
        l4 += ah.header_len();
    }
    c.l4_offset = (off + l4) as u16;
    classify_l4(&b[l4..tl], proto, src, dst, c)
}

#[inline(always)]
fn classify_ipv6(b: &[u8], off: usize, c: &mut Classified) -> Result<(), ClassifyError> {
    if b.len() < ipv6::HEADER_LEN {
        return Err(trunc(Layer::Ipv6));
    }
    let p = ipv6::Packet::new_unchecked(b);
    if p.version() != 6 {
        return Err(ClassifyError::BadVersion);
    }
    let end = ipv6::HEADER_LEN + usize::from(p.payload_len());
    if end > b.len() {
        return Err(ClassifyError::BadTotalLength);
    }
    c.l3 = L3Kind::Ipv6;
    c.l3_end = (off + end) as u16;
    let src = IpAddr::V6(p.src_addr());
    let dst = IpAddr::V6(p.dst_addr());
    let nh = p.next_header();
    let payload = &b[ipv6::HEADER_LEN..end];
    let (proto, l4) = if ipv6::is_ext_header(nh) {
        let ul = ipv6::walk_ext_headers(nh, payload).map_err(|e| match e {
            ipv6::ExtError::Truncated => trunc(Layer::Ipv6Ext),
            ipv6::ExtError::TooMany => ClassifyError::TooManyExtensionHeaders,
            ipv6::ExtError::HopByHopNotFirst => ClassifyError::HopByHopNotFirst,
        })?;
        c.frag = ul.frag;
        c.l4_offset = (off + ipv6::HEADER_LEN + ul.offset) as u16;
        if let Some(f) = ul.frag
            && f.offset != 0
        {
            c.l4 = L4Kind::Fragment;
            return Ok(());
        }
        (ul.protocol, ul.offset)
    } else {
        c.l4_offset = (off + ipv6::HEADER_LEN) as u16;
        (nh, 0)
    };
    classify_l4(&payload[l4..], proto, src, dst, c)
}

#[inline(always)]
fn classify_l4(
    seg: &[u8],
    proto: u8,
    src: IpAddr,
    dst: IpAddr,
    c: &mut Classified,
) -> Result<(), ClassifyError> {
    let (kind, sp, dp) = match proto {
        ip_protocol::TCP => {
            if seg.len() < tcp::HEADER_LEN {
                return Err(trunc(Layer::Tcp));
            }
            let t = tcp::Packet::new_unchecked(seg);
            let hl = t.header_len();
            if hl < tcp::HEADER_LEN {
                return Err(ClassifyError::BadDataOffset);
            }
            if hl > seg.len() {
                return Err(trunc(Layer::Tcp));
            }
            (L4Kind::Tcp, t.src_port(), t.dst_port())
        }
        ip_protocol::UDP => {
            if seg.len() < udp::HEADER_LEN {
                return Err(trunc(Layer::Udp));
            }
            let u = udp::Packet::new_unchecked(seg);
            let l = usize::from(u.len());
            // In a first fragment the length covers the whole datagram.
            if l < udp::HEADER_LEN || (l > seg.len() && !c.is_partial()) {
                return Err(ClassifyError::BadUdpLength);
            }
            (L4Kind::Udp, u.src_port(), u.dst_port())
        }
        ip_protocol::ICMP => {
            if seg.len() < icmpv4::HEADER_LEN {
                return Err(trunc(Layer::Icmpv4));
            }
            let i = icmpv4::Packet::new_unchecked(seg);
            let t = i.msg_type();
            c.icmp_type_code = Some((t, i.msg_code()));
            let id = if icmpv4::is_query(t) {
                i.echo_ident()
            } else {
                0
            };
            (L4Kind::Icmpv4, id, id)
        }
        ip_protocol::ICMPV6 => {
            if seg.len() < icmpv6::HEADER_LEN {
                return Err(trunc(Layer::Icmpv6));
            }
            let i = icmpv6::Packet::new_unchecked(seg);
            let t = i.msg_type();
            c.icmp_type_code = Some((t, i.msg_code()));
            let id = if icmpv6::is_echo(t) {
                i.echo_ident()
            } else {
                0
            };
            (L4Kind::Icmpv6, id, id)
        }
        other => (L4Kind::Other(other), 0, 0),
    };
    c.l4 = kind;
    c.tuple = Some(FiveTuple {
        src,
        dst,
        proto,
        src_port: sp,
        dst_port: dp,
    });
    Ok(())
}

#[inline(always)]
fn classify_arp(b: &[u8], off: usize, c: &mut Classified) -> Result<(), ClassifyError> {
    let p = arp::Packet::new_checked(b).map_err(|_| trunc(Layer::Arp))?;
    c.l3 = L3Kind::Arp;
    let end = off + p.packet_len();
    c.l3_end = end as u16;
    c.l4_offset = end as u16;
    c.l4 = L4Kind::None;
    Ok(())
}

#[cfg(test)]
mod tests;
