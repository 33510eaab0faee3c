//! IPv6 packets (RFC 8200) and the extension headers the classifier skips:
//! hop-by-hop options, routing, destination options, fragment, and the
//! authentication header (RFC 4302).
//!
//! ```text
//!  0       4               12                                      31
//! +-------+---------------+---------------------------------------+
//! |Version| Traffic Class |              Flow Label               |
//! +-------+---------------+-------+---------------+---------------+
//! |        Payload Length         |  Next Header  |   Hop Limit   |
//! +-------------------------------+---------------+---------------+
//! |                   Source Address (16 bytes)                   |
//! |                Destination Address (16 bytes)                 |
//! ```
//!
//! [`Packet::check_len`] validates 40 + payload length ≤ buffer length.
//! Payload length 0 means an empty payload: jumbograms (RFC 2675) are not
//! supported. Once `check_len` passed no accessor panics. The version
//! nibble is checked by [`Repr::parse`] and the classifier.
//!
//! [`Packet::upper_layer`] walks the extension headers (at most
//! [`MAX_EXT_HEADERS`]) to the upper-layer protocol.

use core::net::Ipv6Addr;

use crate::bytes::{read_array, read_u16, read_u32, write_array, write_u16, write_u32};
use crate::classify::FragInfo;
use crate::error::{Layer, WireError};
use crate::ip_protocol;

mod field {
    use core::ops::Range;
    pub const VER_TC_FLOW: Range<usize> = 0..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Range<usize> = 8..24;
    pub const DST_ADDR: Range<usize> = 24..40;
}

/// Generic extension header (hop-by-hop, routing, destination options):
/// next header, length in 8-octet units not counting the first 8.
mod ext_field {
    pub const NXT_HDR: usize = 0;
    pub const LENGTH: usize = 1;
    pub const DATA: usize = 2;
    pub const MIN_LEN: usize = 8;
}

/// Fragment header (RFC 8200 §4.5), always 8 bytes.
mod frag_field {
    use core::ops::Range;
    pub const NXT_HDR: usize = 0;
    pub const OFF_M: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..8;
    pub const LEN: usize = 8;
}

/// Length of the fixed IPv6 header.
pub const HEADER_LEN: usize = field::DST_ADDR.end;
/// Minimum length of an authentication header (RFC 4302 §2).
pub const AUTH_MIN_LEN: usize = 12;
/// Length of a fragment extension header.
pub const FRAGMENT_HEADER_LEN: usize = frag_field::LEN;
/// How many extension headers [`Packet::upper_layer`] and the classifier
/// skip before giving up with `TooManyExtensionHeaders`.
pub const MAX_EXT_HEADERS: usize = 8;

/// The solicited-node multicast address of `addr` (RFC 4291 §2.7.1):
/// ff02::1:ffXX:XXXX with the low 24 bits of `addr`. Its Ethernet address
/// is [`crate::MacAddr::ipv6_multicast`] of the result.
pub fn solicited_node(addr: Ipv6Addr) -> Ipv6Addr {
    let o = addr.octets();
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

/// Is `nh` an extension header this crate skips?
#[inline]
pub const fn is_ext_header(nh: u8) -> bool {
    matches!(
        nh,
        ip_protocol::IPV6_HOPOPT
            | ip_protocol::IPV6_ROUTE
            | ip_protocol::IPV6_FRAG
            | ip_protocol::IPV6_OPTS
            | ip_protocol::AH
    )
}

/// A view of an IPv6 packet.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// # Errors
    /// See [`check_len`](Self::check_len).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// # Errors
    /// [`WireError::Truncated`] (buffer below 40 bytes) or
    /// [`WireError::BadTotalLength`] (40 + payload length past the buffer).
    #[inline]
    pub fn check_len(&self) -> Result<(), WireError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(WireError::Truncated { layer: Layer::Ipv6 });
        }
        if HEADER_LEN + usize::from(self.payload_len()) > len {
            return Err(WireError::BadTotalLength);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TC_FLOW.start] >> 4
    }
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        (read_u32(&self.buffer.as_ref()[field::VER_TC_FLOW]) >> 20) as u8
    }
    /// 20-bit flow label.
    #[inline]
    pub fn flow_label(&self) -> u32 {
        read_u32(&self.buffer.as_ref()[field::VER_TC_FLOW]) & 0x000f_ffff
    }
    #[inline]
    pub fn payload_len(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::LENGTH])
    }
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NXT_HDR]
    }
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }
    #[inline]
    pub fn src_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(read_array::<16>(&self.buffer.as_ref()[field::SRC_ADDR]))
    }
    #[inline]
    pub fn dst_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(read_array::<16>(&self.buffer.as_ref()[field::DST_ADDR]))
    }
    /// The payload (extension headers included): 40 .. 40 + payload length.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..HEADER_LEN + usize::from(self.payload_len())]
    }

    /// Walks the extension headers to the upper layer.
    ///
    /// # Errors
    /// See [`walk_ext_headers`].
    pub fn upper_layer(&self) -> Result<UpperLayer, ExtError> {
        walk_ext_headers(self.next_header(), self.payload())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    pub fn set_version(&mut self, v: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_TC_FLOW.start];
        *b = (*b & 0x0f) | (v << 4);
    }
    #[inline]
    pub fn set_traffic_class(&mut self, tc: u8) {
        let w = read_u32(&self.buffer.as_ref()[field::VER_TC_FLOW]);
        let w = (w & 0xf00f_ffff) | (u32::from(tc) << 20);
        write_u32(&mut self.buffer.as_mut()[field::VER_TC_FLOW], w);
    }
    #[inline]
    pub fn set_flow_label(&mut self, fl: u32) {
        let w = read_u32(&self.buffer.as_ref()[field::VER_TC_FLOW]);
        let w = (w & 0xfff0_0000) | (fl & 0x000f_ffff);
        write_u32(&mut self.buffer.as_mut()[field::VER_TC_FLOW], w);
    }
    #[inline]
    pub fn set_payload_len(&mut self, len: u16) {
        write_u16(&mut self.buffer.as_mut()[field::LENGTH], len);
    }
    #[inline]
    pub fn set_next_header(&mut self, nh: u8) {
        self.buffer.as_mut()[field::NXT_HDR] = nh;
    }
    #[inline]
    pub fn set_hop_limit(&mut self, hl: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = hl;
    }
    #[inline]
    pub fn set_src_addr(&mut self, a: Ipv6Addr) {
        write_array(&mut self.buffer.as_mut()[field::SRC_ADDR], a.octets());
    }
    #[inline]
    pub fn set_dst_addr(&mut self, a: Ipv6Addr) {
        write_array(&mut self.buffer.as_mut()[field::DST_ADDR], a.octets());
    }
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = HEADER_LEN + usize::from(self.payload_len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

/// Where the upper layer starts, after the extension headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpperLayer {
    /// The upper-layer protocol (the last next-header value).
    pub protocol: u8,
    /// Offset of the upper-layer header within the IPv6 payload.
    pub offset: usize,
    /// The fragment header, if one was crossed.
    pub frag: Option<FragInfo>,
    /// How many extension headers were skipped.
    pub ext_count: usize,
}

/// Why the extension headers could not be walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum ExtError {
    #[error("IPv6 extension header truncated")]
    Truncated,
    #[error("more than {MAX_EXT_HEADERS} IPv6 extension headers")]
    TooMany,
    #[error("IPv6 hop-by-hop options header not directly after the IPv6 header")]
    HopByHopNotFirst,
}

/// Skips extension headers starting with next-header `nh` at the start of
/// `payload`, stopping at the first non-extension protocol or at a
/// non-first fragment (whose payload is not a header).
///
/// # Errors
/// [`ExtError::Truncated`], [`ExtError::TooMany`] (more than
/// [`MAX_EXT_HEADERS`]), [`ExtError::HopByHopNotFirst`].
#[inline]
pub fn walk_ext_headers(mut nh: u8, payload: &[u8]) -> Result<UpperLayer, ExtError> {
    let mut offset = 0usize;
    let mut frag = None;
    let mut count = 0usize;
    while is_ext_header(nh) {
        if count == MAX_EXT_HEADERS {
            return Err(ExtError::TooMany);
        }
        if nh == ip_protocol::IPV6_HOPOPT && count != 0 {
            return Err(ExtError::HopByHopNotFirst);
        }
        let rest = payload.get(offset..).ok_or(ExtError::Truncated)?;
        count += 1;
        if nh == ip_protocol::IPV6_FRAG {
            let f = FragmentHeader::new_checked(rest).map_err(|_| ExtError::Truncated)?;
            let info = f.info();
            nh = f.next_header();
            offset += FRAGMENT_HEADER_LEN;
            frag = Some(info);
            if info.offset != 0 {
                break;
            }
        } else {
            let e = ExtHeader::new_checked(rest, nh == ip_protocol::AH)
                .map_err(|_| ExtError::Truncated)?;
            nh = e.next_header();
            offset += e.header_len();
        }
    }
    Ok(UpperLayer {
        protocol: nh,
        offset,
        frag,
        ext_count: count,
    })
}

/// A view of a hop-by-hop, routing, destination-options or authentication
/// header: next header, length, opaque data.
#[derive(Debug, Clone)]
pub struct ExtHeader<T: AsRef<[u8]>> {
    buffer: T,
    /// The authentication header counts its length in 4-octet units minus 2
    /// (RFC 4302 §2.2); the others in 8-octet units minus 1 (RFC 8200 §4).
    auth: bool,
}

impl<T: AsRef<[u8]>> ExtHeader<T> {
    #[inline]
    pub const fn new_unchecked(buffer: T, auth: bool) -> Self {
        ExtHeader { buffer, auth }
    }
    /// # Errors
    /// [`WireError::Truncated`] when the buffer is shorter than 8 bytes or
    /// than the header's length field says.
    #[inline]
    pub fn new_checked(buffer: T, auth: bool) -> Result<Self, WireError> {
        let e = Self::new_unchecked(buffer, auth);
        e.check_len()?;
        Ok(e)
    }
    /// # Errors
    /// As [`new_checked`](Self::new_checked).
    #[inline]
    pub fn check_len(&self) -> Result<(), WireError> {
        let len = self.buffer.as_ref().len();
        // An authentication header has a 12-byte fixed part (RFC 4302 §2):
        // a length field of 0 (8 bytes) cannot hold it.
        let min = if self.auth {
            AUTH_MIN_LEN
        } else {
            ext_field::MIN_LEN
        };
        if len < min || self.header_len() < min || self.header_len() > len {
            return Err(WireError::Truncated {
                layer: Layer::Ipv6Ext,
            });
        }
        Ok(())
    }
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[ext_field::NXT_HDR]
    }
    /// The raw length field.
    #[inline]
    pub fn length_field(&self) -> u8 {
        self.buffer.as_ref()[ext_field::LENGTH]
    }
    /// Header length in bytes.
    #[inline]
    pub fn header_len(&self) -> usize {
        let l = usize::from(self.length_field());
        if self.auth { (l + 2) * 4 } else { (l + 1) * 8 }
    }
    /// Options / routing data / authentication data (after the first 2 bytes).
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[ext_field::DATA..self.header_len()]
    }
    /// What follows this header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ExtHeader<T> {
    #[inline]
    pub fn set_next_header(&mut self, nh: u8) {
        self.buffer.as_mut()[ext_field::NXT_HDR] = nh;
    }
    #[inline]
    pub fn set_length_field(&mut self, l: u8) {
        self.buffer.as_mut()[ext_field::LENGTH] = l;
    }
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[ext_field::DATA..hl]
    }
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[hl..]
    }
}

/// A view of an IPv6 fragment header.
#[derive(Debug, Clone)]
pub struct FragmentHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> FragmentHeader<T> {
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        FragmentHeader { buffer }
    }
    /// # Errors
    /// [`WireError::Truncated`] below 8 bytes.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let f = Self::new_unchecked(buffer);
        f.check_len()?;
        Ok(f)
    }
    /// # Errors
    /// [`WireError::Truncated`] below 8 bytes.
    #[inline]
    pub fn check_len(&self) -> Result<(), WireError> {
        if self.buffer.as_ref().len() < frag_field::LEN {
            return Err(WireError::Truncated {
                layer: Layer::Ipv6Ext,
            });
        }
        Ok(())
    }
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[frag_field::NXT_HDR]
    }
    /// Fragment offset in bytes.
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[frag_field::OFF_M]) & 0xfff8
    }
    #[inline]
    pub fn more_frags(&self) -> bool {
        read_u16(&self.buffer.as_ref()[frag_field::OFF_M]) & 1 != 0
    }
    #[inline]
    pub fn ident(&self) -> u32 {
        read_u32(&self.buffer.as_ref()[frag_field::IDENT])
    }
    #[inline]
    pub fn info(&self) -> FragInfo {
        FragInfo {
            id: self.ident(),
            offset: self.frag_offset(),
            more_fragments: self.more_frags(),
        }
    }
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[frag_field::LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> FragmentHeader<T> {
    #[inline]
    pub fn set_next_header(&mut self, nh: u8) {
        let b = self.buffer.as_mut();
        b[frag_field::NXT_HDR] = nh;
        b[frag_field::NXT_HDR + 1] = 0;
    }
    /// Sets the offset in bytes (a multiple of 8) and the M flag.
    #[inline]
    pub fn set_frag_offset_more(&mut self, offset: u16, more: bool) {
        write_u16(
            &mut self.buffer.as_mut()[frag_field::OFF_M],
            (offset & 0xfff8) | u16::from(more),
        );
    }
    #[inline]
    pub fn set_ident(&mut self, id: u32) {
        write_u32(&mut self.buffer.as_mut()[frag_field::IDENT], id);
    }
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[frag_field::LEN..]
    }
}

/// The owned content of a fixed IPv6 header (no extension headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    pub src_addr: Ipv6Addr,
    pub dst_addr: Ipv6Addr,
    pub next_header: u8,
    pub payload_len: u16,
    pub hop_limit: u8,
    pub traffic_class: u8,
    pub flow_label: u32,
}

impl Repr {
    /// Hop limit 64, traffic class and flow label 0.
    pub fn new(src_addr: Ipv6Addr, dst_addr: Ipv6Addr, next_header: u8, payload_len: u16) -> Self {
        Repr {
            src_addr,
            dst_addr,
            next_header,
            payload_len,
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0,
        }
    }

    /// # Errors
    /// The errors of [`Packet::check_len`], and [`WireError::BadVersion`].
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr, WireError> {
        p.check_len()?;
        if p.version() != 6 {
            return Err(WireError::BadVersion);
        }
        Ok(Repr {
            src_addr: p.src_addr(),
            dst_addr: p.dst_addr(),
            next_header: p.next_header(),
            payload_len: p.payload_len(),
            hop_limit: p.hop_limit(),
            traffic_class: p.traffic_class(),
            flow_label: p.flow_label(),
        })
    }

    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the 40-byte fixed header.
    ///
    /// # Errors
    /// [`WireError::Truncated`] when `buf` is shorter than 40 bytes.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), WireError> {
        let hdr = buf
            .get_mut(..HEADER_LEN)
            .ok_or(WireError::Truncated { layer: Layer::Ipv6 })?;
        let mut p = Packet::new_unchecked(hdr);
        write_u32(&mut p.buffer[field::VER_TC_FLOW], 0x6000_0000);
        p.set_traffic_class(self.traffic_class);
        p.set_flow_label(self.flow_label);
        p.set_payload_len(self.payload_len);
        p.set_next_header(self.next_header);
        p.set_hop_limit(self.hop_limit);
        p.set_src_addr(self.src_addr);
        p.set_dst_addr(self.dst_addr);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // ICMPv6 echo request fe80::1 -> ff02::1 (as in Wireshark's "ipv6-ripng"
    // style captures): version 6, TC 0, flow 0, payload 8, next header 58,
    // hop limit 255.
    fn packet() -> Vec<u8> {
        let mut v = vec![0x60, 0x00, 0x00, 0x00, 0x00, 0x08, 0x3a, 0xff];
        v.extend_from_slice(&"fe80::1".parse::<Ipv6Addr>().unwrap().octets());
        v.extend_from_slice(&"ff02::1".parse::<Ipv6Addr>().unwrap().octets());
        v.extend_from_slice(&[0x80, 0, 0, 0, 0x12, 0x34, 0, 1]);
        v
    }

    #[test]
    fn parse_fields() {
        let buf = packet();
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!(p.payload_len(), 8);
        assert_eq!(p.next_header(), 58);
        assert_eq!(p.hop_limit(), 255);
        assert_eq!(p.src_addr(), "fe80::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.dst_addr(), "ff02::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.payload()[0], 0x80);
        let ul = p.upper_layer().unwrap();
        assert_eq!(
            (ul.protocol, ul.offset, ul.frag, ul.ext_count),
            (58, 0, None, 0)
        );
    }

    #[test]
    fn traffic_class_flow_label() {
        let mut buf = packet();
        buf[0] = 0x6a;
        buf[1] = 0xbc;
        buf[2] = 0xde;
        buf[3] = 0xf1;
        let mut p = Packet::new_checked(&mut buf[..]).unwrap();
        assert_eq!(p.traffic_class(), 0xab);
        assert_eq!(p.flow_label(), 0xcdef1);
        p.set_traffic_class(0x12);
        p.set_flow_label(0x34567);
        assert_eq!(
            (p.version(), p.traffic_class(), p.flow_label()),
            (6, 0x12, 0x34567)
        );
    }

    #[test]
    fn lengths() {
        let buf = packet();
        assert!(Packet::new_checked(&buf[..39]).is_err());
        assert_eq!(
            Packet::new_checked(&buf[..47]).unwrap_err(),
            WireError::BadTotalLength
        );
    }

    #[test]
    fn ext_headers() {
        // hop-by-hop (8) -> dest opts (16) -> fragment (offset 0, M) -> UDP
        let mut pl = vec![60, 0, 0, 0, 0, 0, 0, 0];
        pl.extend_from_slice(&[44, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        pl.extend_from_slice(&[17, 0, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef]);
        pl.extend_from_slice(&[0; 8]);
        let ul = walk_ext_headers(0, &pl).unwrap();
        assert_eq!(ul.protocol, 17);
        assert_eq!(ul.offset, 32);
        assert_eq!(ul.ext_count, 3);
        assert_eq!(
            ul.frag,
            Some(FragInfo {
                id: 0xdeadbeef,
                offset: 0,
                more_fragments: true
            })
        );
        // Non-first fragment: stop at its payload.
        let frag = [6, 0, 0x05, 0xa8, 0, 0, 0, 7, 1, 2, 3];
        let ul = walk_ext_headers(44, &frag).unwrap();
        assert_eq!((ul.protocol, ul.offset), (6, 8));
        assert_eq!(ul.frag.unwrap().offset, 1448);
        assert!(!ul.frag.unwrap().more_fragments);
        // Truncated, hop-by-hop later, too many.
        assert_eq!(
            walk_ext_headers(60, &[17, 1, 0, 0, 0, 0, 0, 0]),
            Err(ExtError::Truncated)
        );
        assert_eq!(
            walk_ext_headers(60, &[0, 0, 0, 0, 0, 0, 0, 0, 17, 0, 0, 0, 0, 0, 0, 0]),
            Err(ExtError::HopByHopNotFirst)
        );
        let many: Vec<u8> = (0..9).flat_map(|_| [60u8, 0, 0, 0, 0, 0, 0, 0]).collect();
        assert_eq!(walk_ext_headers(60, &many), Err(ExtError::TooMany));
        // AH: length in 4-octet units minus 2 -> (4 + 2) * 4 = 24 bytes.
        let mut ah = vec![6u8, 4];
        ah.resize(24, 0);
        let ul = walk_ext_headers(51, &ah).unwrap();
        assert_eq!((ul.protocol, ul.offset), (6, 24));
    }

    #[test]
    fn solicited_node_address() {
        let a: Ipv6Addr = "2001:db8::2aa:ff:fe28:9c5a".parse().unwrap();
        assert_eq!(
            solicited_node(a),
            "ff02::1:ff28:9c5a".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            crate::MacAddr::ipv6_multicast(solicited_node(a)).to_string(),
            "33:33:ff:28:9c:5a"
        );
    }

    #[test]
    fn emit_round_trip() {
        let buf = packet();
        let r = Repr::parse(&Packet::new_checked(&buf[..]).unwrap()).unwrap();
        let mut out = [0u8; 40];
        r.emit(&mut out).unwrap();
        assert_eq!(&out[..], &buf[..40]);
    }
}
