//! ICMPv6 messages (RFC 4443) and neighbour discovery solicitation /
//! advertisement (RFC 4861 §4.3, §4.4).
//!
//! ```text
//!  0       8       16              31
//! +-------+-------+---------------+
//! | Type  | Code  |   Checksum    |
//! +-------+-------+---------------+
//! |  rest of header (4 bytes)     |  echo: identifier, sequence
//! +-------------------------------+  packet too big: MTU; param problem: pointer
//! | data ...                      |  NS/NA: flags+reserved, then target address
//! ```                                   (16 bytes) and options
//!
//! [`Packet::check_len`] validates the 8-byte header, and 24 bytes for a
//! neighbour solicitation or advertisement; once it passed no accessor
//! panics (as long as the type is not changed to NS/NA afterwards).
//! The checksum covers an IPv6 pseudo-header (RFC 4443 §2.3).

use core::net::{IpAddr, Ipv6Addr};

use crate::bytes::{read_array, read_u16, read_u32, write_array, write_u16, write_u32};
use crate::checksum;
use crate::error::{Layer, WireError};
use crate::ethernet::MacAddr;
use crate::ip_protocol;

mod field {
    use core::ops::{Range, RangeFrom};
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const REST: Range<usize> = 4..8;
    pub const ECHO_IDENT: Range<usize> = 4..6;
    pub const ECHO_SEQNO: Range<usize> = 6..8;
    pub const DATA: RangeFrom<usize> = 8..;
    /// Neighbour discovery: flags byte (NA), target address, options.
    pub const ND_FLAGS: usize = 4;
    pub const ND_TARGET: Range<usize> = 8..24;
    pub const ND_OPTIONS: RangeFrom<usize> = 24..;
    /// NDISC option: type, length in 8-octet units, data.
    pub const OPT_TYPE: usize = 0;
    pub const OPT_LEN: usize = 1;
    pub const OPT_LLADDR: Range<usize> = 2..8;
}

/// Length of the ICMPv6 header.
pub const HEADER_LEN: usize = field::DATA.start;
/// The IPv6 minimum link MTU (RFC 8200 §5): no ICMPv6 error is longer.
pub const MIN_MTU: usize = 1280;
/// How much of an invoking packet an ICMPv6 error quotes at most: what fits
/// in [`MIN_MTU`] after the IPv6 and ICMPv6 headers (RFC 4443 §2.4 (c)).
pub const MAX_QUOTE: usize = MIN_MTU - crate::ipv6::HEADER_LEN - HEADER_LEN;

/// The quoted part of an invoking IPv6 packet `packet` (starting at its
/// header): as much as fits an error in the minimum MTU ([`MAX_QUOTE`]).
pub fn quote(packet: &[u8]) -> &[u8] {
    &packet[..packet.len().min(MAX_QUOTE)]
}

/// Length of a neighbour solicitation/advertisement without options.
pub const ND_LEN: usize = field::ND_OPTIONS.start;
/// Length of a link-layer address option for Ethernet.
pub const LLADDR_OPT_LEN: usize = field::OPT_LLADDR.end;

/// ICMPv6 message types.
pub mod msg_type {
    pub const DST_UNREACHABLE: u8 = 1;
    pub const PACKET_TOO_BIG: u8 = 2;
    pub const TIME_EXCEEDED: u8 = 3;
    pub const PARAM_PROBLEM: u8 = 4;
    pub const ECHO_REQUEST: u8 = 128;
    pub const ECHO_REPLY: u8 = 129;
    pub const ROUTER_SOLICIT: u8 = 133;
    pub const ROUTER_ADVERT: u8 = 134;
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    pub const NEIGHBOR_ADVERT: u8 = 136;
    pub const REDIRECT: u8 = 137;
}

/// Neighbour-discovery option types (RFC 4861 §4.6).
pub mod nd_option {
    pub const SOURCE_LLADDR: u8 = 1;
    pub const TARGET_LLADDR: u8 = 2;
}

/// Neighbour-advertisement flags (RFC 4861 §4.4) in the flags byte.
pub mod na_flags {
    pub const ROUTER: u8 = 0x80;
    pub const SOLICITED: u8 = 0x40;
    pub const OVERRIDE: u8 = 0x20;
}

/// Is `t` an error message (types 0–127, RFC 4443 §2.1)?
#[inline]
pub const fn is_error(t: u8) -> bool {
    t < 128
}

/// Is `t` an echo request or reply?
#[inline]
pub const fn is_echo(t: u8) -> bool {
    matches!(t, msg_type::ECHO_REQUEST | msg_type::ECHO_REPLY)
}

const fn is_nd(t: u8) -> bool {
    matches!(t, msg_type::NEIGHBOR_SOLICIT | msg_type::NEIGHBOR_ADVERT)
}

/// A view of an ICMPv6 message.
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
    /// [`WireError::Truncated`] below 8 bytes, or below 24 for a neighbour
    /// solicitation/advertisement.
    #[inline]
    pub fn check_len(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN || (is_nd(b[field::TYPE]) && b.len() < ND_LEN) {
            return Err(WireError::Truncated {
                layer: Layer::Icmpv6,
            });
        }
        Ok(())
    }
    pub fn into_inner(self) -> T {
        self.buffer
    }
    #[inline]
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }
    #[inline]
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::CHECKSUM])
    }
    #[inline]
    pub fn rest_of_header(&self) -> u32 {
        read_u32(&self.buffer.as_ref()[field::REST])
    }
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::ECHO_IDENT])
    }
    #[inline]
    pub fn echo_seq_no(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::ECHO_SEQNO])
    }
    /// MTU of a packet-too-big message.
    #[inline]
    pub fn mtu(&self) -> u32 {
        self.rest_of_header()
    }
    /// Pointer of a parameter-problem message.
    #[inline]
    pub fn pointer(&self) -> u32 {
        self.rest_of_header()
    }
    /// Flags byte of a neighbour advertisement (see [`na_flags`]).
    #[inline]
    pub fn nd_flags(&self) -> u8 {
        self.buffer.as_ref()[field::ND_FLAGS]
    }
    /// Target address of a neighbour solicitation/advertisement; `None` for
    /// other types (or a buffer too short for one).
    #[inline]
    pub fn target_addr(&self) -> Option<Ipv6Addr> {
        let b = self.buffer.as_ref();
        if !is_nd(self.msg_type()) {
            return None;
        }
        b.get(field::ND_TARGET)
            .map(|t| Ipv6Addr::from(read_array::<16>(t)))
    }
    /// Options of a neighbour solicitation/advertisement (empty otherwise).
    #[inline]
    pub fn nd_options(&self) -> &[u8] {
        if !is_nd(self.msg_type()) {
            return &[];
        }
        self.buffer.as_ref().get(field::ND_OPTIONS).unwrap_or(&[])
    }
    /// The first link-layer address option of type `kind`
    /// ([`nd_option::SOURCE_LLADDR`] or [`nd_option::TARGET_LLADDR`]) with
    /// an Ethernet address. Stops at a zero-length option (invalid, RFC 4861
    /// §4.6) or the end of the buffer.
    pub fn nd_lladdr(&self, kind: u8) -> Option<MacAddr> {
        let mut opts = self.nd_options();
        while opts.len() >= 2 {
            let len = usize::from(opts[field::OPT_LEN]) * 8;
            if len == 0 || len > opts.len() {
                return None;
            }
            if opts[field::OPT_TYPE] == kind && len >= LLADDR_OPT_LEN {
                return Some(MacAddr(read_array(&opts[field::OPT_LLADDR])));
            }
            opts = &opts[len..];
        }
        None
    }
    /// Everything after the 8-byte header.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::DATA]
    }
    /// Same as [`data`](Self::data).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        self.data()
    }
    /// For an error message: the invoking packet's leading bytes.
    #[inline]
    pub fn embedded(&self) -> Option<&[u8]> {
        is_error(self.msg_type()).then(|| self.data())
    }
    /// Verifies the checksum with the IPv6 pseudo-header.
    pub fn verify_checksum(&self, src: &IpAddr, dst: &IpAddr) -> bool {
        let b = self.buffer.as_ref();
        let ph = checksum::pseudo_header(src, dst, ip_protocol::ICMPV6, b.len() as u32);
        checksum::verifies(checksum::accumulate(u64::from(ph), b))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    pub fn set_msg_type(&mut self, t: u8) {
        self.buffer.as_mut()[field::TYPE] = t;
    }
    #[inline]
    pub fn set_msg_code(&mut self, c: u8) {
        self.buffer.as_mut()[field::CODE] = c;
    }
    #[inline]
    pub fn set_checksum(&mut self, c: u16) {
        write_u16(&mut self.buffer.as_mut()[field::CHECKSUM], c);
    }
    #[inline]
    pub fn set_rest_of_header(&mut self, v: u32) {
        write_u32(&mut self.buffer.as_mut()[field::REST], v);
    }
    #[inline]
    pub fn set_echo_ident(&mut self, v: u16) {
        write_u16(&mut self.buffer.as_mut()[field::ECHO_IDENT], v);
    }
    #[inline]
    pub fn set_echo_seq_no(&mut self, v: u16) {
        write_u16(&mut self.buffer.as_mut()[field::ECHO_SEQNO], v);
    }
    #[inline]
    pub fn set_mtu(&mut self, v: u32) {
        self.set_rest_of_header(v);
    }
    #[inline]
    pub fn set_pointer(&mut self, v: u32) {
        self.set_rest_of_header(v);
    }
    #[inline]
    pub fn set_nd_flags(&mut self, f: u8) {
        self.buffer.as_mut()[field::ND_FLAGS] = f;
    }
    /// Sets the target address (NS/NA); ignored when the buffer is shorter
    /// than 24 bytes.
    #[inline]
    pub fn set_target_addr(&mut self, a: Ipv6Addr) {
        if let Some(t) = self.buffer.as_mut().get_mut(field::ND_TARGET) {
            write_array(t, a.octets());
        }
    }
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DATA]
    }
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        self.data_mut()
    }
    /// Computes the checksum with the IPv6 pseudo-header.
    pub fn fill_checksum(&mut self, src: &IpAddr, dst: &IpAddr) {
        self.set_checksum(0);
        let b = self.buffer.as_ref();
        let ph = checksum::pseudo_header(src, dst, ip_protocol::ICMPV6, b.len() as u32);
        let c = !checksum::fold(checksum::accumulate(u64::from(ph), b));
        self.set_checksum(c);
    }
}

/// The owned content of an ICMPv6 message (data borrowed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Repr<'a> {
    EchoRequest {
        ident: u16,
        seq_no: u16,
        data: &'a [u8],
    },
    EchoReply {
        ident: u16,
        seq_no: u16,
        data: &'a [u8],
    },
    /// `data`: as much of the invoking packet as fits the minimum MTU.
    DstUnreachable {
        code: u8,
        data: &'a [u8],
    },
    PacketTooBig {
        mtu: u32,
        data: &'a [u8],
    },
    TimeExceeded {
        code: u8,
        data: &'a [u8],
    },
    ParamProblem {
        code: u8,
        pointer: u32,
        data: &'a [u8],
    },
    /// Neighbour solicitation with an optional source link-layer address.
    NeighborSolicit {
        target: Ipv6Addr,
        source_lladdr: Option<MacAddr>,
    },
    /// Neighbour advertisement (`flags`: see [`na_flags`]) with an optional
    /// target link-layer address.
    NeighborAdvert {
        flags: u8,
        target: Ipv6Addr,
        target_lladdr: Option<MacAddr>,
    },
    /// Any other message, rest-of-header kept as is.
    Other {
        msg_type: u8,
        code: u8,
        rest: u32,
        data: &'a [u8],
    },
}

impl<'a> Repr<'a> {
    /// Reads the message; the checksum is not verified (see
    /// [`Packet::verify_checksum`]). A neighbour message with options other
    /// than the one link-layer address option parses as [`Repr::Other`],
    /// so that emit reproduces it.
    ///
    /// # Errors
    /// The errors of [`Packet::check_len`].
    pub fn parse<T: AsRef<[u8]> + ?Sized>(p: &Packet<&'a T>) -> Result<Repr<'a>, WireError> {
        p.check_len()?;
        let b: &'a [u8] = p.buffer.as_ref();
        let data = &b[field::DATA];
        let (t, code, rest) = (p.msg_type(), p.msg_code(), p.rest_of_header());
        let nd_lladdr = |kind: u8| -> Option<Option<MacAddr>> {
            let opts = p.nd_options();
            match opts.len() {
                0 => Some(None),
                LLADDR_OPT_LEN if opts[field::OPT_TYPE] == kind && opts[field::OPT_LEN] == 1 => {
                    Some(Some(MacAddr(read_array(&opts[field::OPT_LLADDR]))))
                }
                _ => None,
            }
        };
        let target = p.target_addr().unwrap_or(Ipv6Addr::UNSPECIFIED);
        Ok(match t {
            msg_type::ECHO_REQUEST if code == 0 => Repr::EchoRequest {
                ident: p.echo_ident(),
                seq_no: p.echo_seq_no(),
                data,
            },
            msg_type::ECHO_REPLY if code == 0 => Repr::EchoReply {
                ident: p.echo_ident(),
                seq_no: p.echo_seq_no(),
                data,
            },
            msg_type::DST_UNREACHABLE if rest == 0 => Repr::DstUnreachable { code, data },
            msg_type::PACKET_TOO_BIG if code == 0 => Repr::PacketTooBig { mtu: rest, data },
            msg_type::TIME_EXCEEDED if rest == 0 => Repr::TimeExceeded { code, data },
            msg_type::PARAM_PROBLEM => Repr::ParamProblem {
                code,
                pointer: rest,
                data,
            },
            msg_type::NEIGHBOR_SOLICIT if code == 0 && rest == 0 => {
                match nd_lladdr(nd_option::SOURCE_LLADDR) {
                    Some(source_lladdr) => Repr::NeighborSolicit {
                        target,
                        source_lladdr,
                    },
                    None => Repr::Other {
                        msg_type: t,
                        code,
                        rest,
                        data,
                    },
                }
            }
            msg_type::NEIGHBOR_ADVERT if code == 0 && rest & 0x1fff_ffff == 0 => {
                match nd_lladdr(nd_option::TARGET_LLADDR) {
                    Some(target_lladdr) => Repr::NeighborAdvert {
                        flags: p.nd_flags(),
                        target,
                        target_lladdr,
                    },
                    None => Repr::Other {
                        msg_type: t,
                        code,
                        rest,
                        data,
                    },
                }
            }
            _ => Repr::Other {
                msg_type: t,
                code,
                rest,
                data,
            },
        })
    }

    /// Header + data (+ target and option for neighbour messages).
    pub fn buffer_len(&self) -> usize {
        match *self {
            Repr::EchoRequest { data, .. }
            | Repr::EchoReply { data, .. }
            | Repr::DstUnreachable { data, .. }
            | Repr::PacketTooBig { data, .. }
            | Repr::TimeExceeded { data, .. }
            | Repr::ParamProblem { data, .. }
            | Repr::Other { data, .. } => HEADER_LEN + data.len(),
            Repr::NeighborSolicit {
                source_lladdr: l, ..
            }
            | Repr::NeighborAdvert {
                target_lladdr: l, ..
            } => ND_LEN + if l.is_some() { LLADDR_OPT_LEN } else { 0 },
        }
    }

    /// Writes the message into the first [`buffer_len`](Self::buffer_len)
    /// bytes of `buf` and fills the checksum for `src` → `dst`.
    ///
    /// # Errors
    /// [`WireError::Truncated`] when `buf` is too short.
    pub fn emit(&self, buf: &mut [u8], src: &Ipv6Addr, dst: &Ipv6Addr) -> Result<(), WireError> {
        let out = buf
            .get_mut(..self.buffer_len())
            .ok_or(WireError::Truncated {
                layer: Layer::Icmpv6,
            })?;
        out.fill(0);
        let mut p = Packet::new_unchecked(out);
        let (t, code, rest, data): (u8, u8, u32, &[u8]) = match *self {
            Repr::EchoRequest {
                ident,
                seq_no,
                data,
            } => (
                msg_type::ECHO_REQUEST,
                0,
                u32::from(ident) << 16 | u32::from(seq_no),
                data,
            ),
            Repr::EchoReply {
                ident,
                seq_no,
                data,
            } => (
                msg_type::ECHO_REPLY,
                0,
                u32::from(ident) << 16 | u32::from(seq_no),
                data,
            ),
            Repr::DstUnreachable { code, data } => (msg_type::DST_UNREACHABLE, code, 0, data),
            Repr::PacketTooBig { mtu, data } => (msg_type::PACKET_TOO_BIG, 0, mtu, data),
            Repr::TimeExceeded { code, data } => (msg_type::TIME_EXCEEDED, code, 0, data),
            Repr::ParamProblem {
                code,
                pointer,
                data,
            } => (msg_type::PARAM_PROBLEM, code, pointer, data),
            Repr::Other {
                msg_type,
                code,
                rest,
                data,
            } => (msg_type, code, rest, data),
            Repr::NeighborSolicit {
                target,
                source_lladdr,
            } => {
                p.set_msg_type(msg_type::NEIGHBOR_SOLICIT);
                p.set_target_addr(target);
                if let Some(mac) = source_lladdr {
                    emit_lladdr(p.data_mut(), nd_option::SOURCE_LLADDR, mac);
                }
                (msg_type::NEIGHBOR_SOLICIT, 0, 0, &[])
            }
            Repr::NeighborAdvert {
                flags,
                target,
                target_lladdr,
            } => {
                p.set_msg_type(msg_type::NEIGHBOR_ADVERT);
                p.set_target_addr(target);
                if let Some(mac) = target_lladdr {
                    emit_lladdr(p.data_mut(), nd_option::TARGET_LLADDR, mac);
                }
                (msg_type::NEIGHBOR_ADVERT, 0, u32::from(flags) << 24, &[])
            }
        };
        p.set_msg_type(t);
        p.set_msg_code(code);
        p.set_rest_of_header(rest);
        if !data.is_empty() {
            p.data_mut().copy_from_slice(data);
        }
        p.fill_checksum(&IpAddr::V6(*src), &IpAddr::V6(*dst));
        Ok(())
    }
}

/// Writes a link-layer address option after the 16-byte target address in
/// `nd_data` (the message after its 8-byte header).
fn emit_lladdr(nd_data: &mut [u8], kind: u8, mac: MacAddr) {
    let target_len = field::ND_TARGET.end - field::ND_TARGET.start;
    if let Some(opt) = nd_data.get_mut(target_len..target_len + LLADDR_OPT_LEN) {
        opt[field::OPT_TYPE] = kind;
        opt[field::OPT_LEN] = 1;
        write_array(&mut opt[field::OPT_LLADDR], mac.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs() -> (Ipv6Addr, Ipv6Addr) {
        (
            "fe80::200:ff:fe00:1".parse().unwrap(),
            "ff02::1:ff00:2".parse().unwrap(),
        )
    }

    #[test]
    fn neighbor_solicit_round_trip() {
        let (s, d) = addrs();
        let r = Repr::NeighborSolicit {
            target: "fe80::200:ff:fe00:2".parse().unwrap(),
            source_lladdr: Some(MacAddr([0, 0, 0, 0, 0, 1])),
        };
        let mut out = vec![0u8; r.buffer_len()];
        assert_eq!(out.len(), 32);
        r.emit(&mut out, &s, &d).unwrap();
        let p = Packet::new_checked(&out[..]).unwrap();
        assert_eq!(p.msg_type(), 135);
        assert!(p.verify_checksum(&s.into(), &d.into()));
        assert_eq!(
            p.target_addr(),
            Some("fe80::200:ff:fe00:2".parse().unwrap())
        );
        assert_eq!(
            p.nd_lladdr(nd_option::SOURCE_LLADDR),
            Some(MacAddr([0, 0, 0, 0, 0, 1]))
        );
        assert_eq!(Repr::parse(&p).unwrap(), r);
        // Option bytes on the wire: type 1, len 1, MAC.
        assert_eq!(&out[24..32], &[1, 1, 0, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn neighbor_advert_flags() {
        let (s, d) = addrs();
        let r = Repr::NeighborAdvert {
            flags: na_flags::SOLICITED | na_flags::OVERRIDE,
            target: s,
            target_lladdr: Some(MacAddr([2, 0, 0, 0, 0, 9])),
        };
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut out, &s, &d).unwrap();
        assert_eq!(out[4], 0x60);
        let p = Packet::new_checked(&out[..]).unwrap();
        assert_eq!(Repr::parse(&p).unwrap(), r);
    }

    #[test]
    fn echo_and_errors_round_trip() {
        let (s, d) = addrs();
        let quoted = [0x60u8, 0, 0, 0, 0, 8, 17, 64];
        for r in [
            Repr::EchoRequest {
                ident: 0x1234,
                seq_no: 7,
                data: b"ping",
            },
            Repr::EchoReply {
                ident: 0x1234,
                seq_no: 7,
                data: b"",
            },
            Repr::DstUnreachable {
                code: 4,
                data: &quoted,
            },
            Repr::PacketTooBig {
                mtu: 1280,
                data: &quoted,
            },
            Repr::TimeExceeded {
                code: 0,
                data: &quoted,
            },
            Repr::ParamProblem {
                code: 1,
                pointer: 6,
                data: &quoted,
            },
        ] {
            let mut out = vec![0u8; r.buffer_len()];
            r.emit(&mut out, &s, &d).unwrap();
            let p = Packet::new_checked(&out[..]).unwrap();
            assert!(p.verify_checksum(&s.into(), &d.into()));
            assert_eq!(Repr::parse(&p).unwrap(), r);
        }
    }

    #[test]
    fn known_echo_request_checksum() {
        // Echo request fe80::1 -> ff02::1, id 0x1234 seq 1, no data: checksum
        // 0x7002 computed independently (Python one's-complement sum over the
        // pseudo-header and message).
        let s: Ipv6Addr = "fe80::1".parse().unwrap();
        let d: Ipv6Addr = "ff02::1".parse().unwrap();
        let msg = [0x80u8, 0, 0x70, 0x02, 0x12, 0x34, 0, 1];
        let p = Packet::new_checked(&msg[..]).unwrap();
        assert!(p.verify_checksum(&s.into(), &d.into()));
    }

    #[test]
    fn truncated_nd() {
        let mut ns = [0u8; 23];
        ns[0] = 135;
        assert!(Packet::new_checked(&ns[..]).is_err());
        assert!(Packet::new_checked(&[128u8, 0, 0, 0, 0, 0, 0][..]).is_err());
        // Zero-length option: no lladdr, no panic.
        let mut na = [0u8; 32];
        na[0] = 136;
        na[24] = 2;
        let p = Packet::new_checked(&na[..]).unwrap();
        assert_eq!(p.nd_lladdr(nd_option::TARGET_LLADDR), None);
    }
}
