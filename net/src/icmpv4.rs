//! ICMPv4 messages (RFC 792, RFC 1191 for the next-hop MTU).
//!
//! ```text
//!  0       8       16              31
//! +-------+-------+---------------+
//! | Type  | Code  |   Checksum    |
//! +-------+-------+---------------+
//! |     rest of header (4 bytes)  |   echo: identifier, sequence
//! +-------------------------------+   dest unreachable: unused, next-hop MTU
//! | data ...                      |   param problem: pointer
//! ```
//!
//! For errors (destination unreachable, time exceeded, parameter problem,
//! source quench, redirect) the data is the invoking packet's IP header and
//! at least its first 8 bytes. [`Packet::check_len`] validates the 8-byte
//! header; once it passed no accessor panics.
//!
//! Emitting a time-exceeded error into a fixed buffer, without allocating
//! (what the dataplane does when a TTL runs out):
//!
//! ```
//! use net::{ethernet, icmpv4, ipv4, ip_protocol, MacAddr};
//! # let expired = net::build::udp4("10.0.0.5:4000".parse().unwrap(), "8.8.8.8:53".parse().unwrap(), b"query");
//! let cls = net::classify(&expired).unwrap();
//! let invoking = cls.l3_bytes(&expired).unwrap();
//! let icmp = icmpv4::Repr::TimeExceeded { code: icmpv4::time_exceeded::TTL, data: icmpv4::quote(invoking) };
//! let ip = ipv4::Repr::new("192.0.2.1".parse().unwrap(), "10.0.0.5".parse().unwrap(),
//!                          ip_protocol::ICMP, icmp.buffer_len() as u16);
//! let eth = ethernet::Repr { src_addr: MacAddr([2, 0, 0, 0, 0, 9]), dst_addr: MacAddr([2, 0, 0, 0, 0, 1]),
//!                            ethertype: ethernet::ethertype::IPV4 };
//! let mut buf = [0u8; 128];
//! let len = eth.buffer_len() + ip.buffer_len() + icmp.buffer_len();
//! eth.emit(&mut buf).unwrap();
//! ip.emit(&mut buf[eth.buffer_len()..]).unwrap();
//! icmp.emit(&mut buf[eth.buffer_len() + ip.buffer_len()..]).unwrap();
//! assert_eq!(len, 14 + 20 + 8 + 28);
//! assert!(net::checksum::verify_frame(&buf[..len]).is_ok());
//! ```

use crate::bytes::{read_array, read_u16, read_u32, write_array, write_u16, write_u32};
use crate::checksum;
use crate::error::{Layer, WireError};

mod field {
    use core::ops::{Range, RangeFrom};
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const REST: Range<usize> = 4..8;
    pub const ECHO_IDENT: Range<usize> = 4..6;
    pub const ECHO_SEQNO: Range<usize> = 6..8;
    pub const NEXT_HOP_MTU: Range<usize> = 6..8;
    pub const POINTER: usize = 4;
    pub const GATEWAY: Range<usize> = 4..8;
    pub const DATA: RangeFrom<usize> = 8..;
}

/// Length of the ICMPv4 header (type, code, checksum, 4 bytes of rest).
pub const HEADER_LEN: usize = field::DATA.start;
/// Offset of the checksum within the header.
pub(crate) const CHECKSUM_OFFSET: usize = field::CHECKSUM.start;

/// ICMPv4 message types.
pub mod msg_type {
    pub const ECHO_REPLY: u8 = 0;
    pub const DST_UNREACHABLE: u8 = 3;
    pub const SOURCE_QUENCH: u8 = 4;
    pub const REDIRECT: u8 = 5;
    pub const ECHO_REQUEST: u8 = 8;
    pub const TIME_EXCEEDED: u8 = 11;
    pub const PARAM_PROBLEM: u8 = 12;
    pub const TIMESTAMP: u8 = 13;
    pub const TIMESTAMP_REPLY: u8 = 14;
}

/// Destination-unreachable codes.
pub mod unreachable {
    pub const NET: u8 = 0;
    pub const HOST: u8 = 1;
    pub const PROTOCOL: u8 = 2;
    pub const PORT: u8 = 3;
    /// Fragmentation needed and DF set; carries the next-hop MTU (RFC 1191).
    pub const FRAG_NEEDED: u8 = 4;
    pub const SOURCE_ROUTE_FAILED: u8 = 5;
    pub const ADMIN_PROHIBITED: u8 = 13;
}

/// Time-exceeded codes.
pub mod time_exceeded {
    pub const TTL: u8 = 0;
    pub const REASSEMBLY: u8 = 1;
}

/// Is `t` an error message that quotes an invoking packet?
#[inline]
pub const fn is_error(t: u8) -> bool {
    matches!(
        t,
        msg_type::DST_UNREACHABLE
            | msg_type::SOURCE_QUENCH
            | msg_type::REDIRECT
            | msg_type::TIME_EXCEEDED
            | msg_type::PARAM_PROBLEM
    )
}

/// Is `t` an echo request or reply (identifier + sequence)?
#[inline]
pub const fn is_echo(t: u8) -> bool {
    matches!(t, msg_type::ECHO_REQUEST | msg_type::ECHO_REPLY)
}

/// Is `t` a query message with an identifier at the echo's offset (bytes
/// 4–5), which NAT maps like a port (RFC 5508 REQ-1): echo and timestamp,
/// request or reply. Information request and address mask (RFC 6918:
/// deprecated) are not.
#[inline]
pub const fn is_query(t: u8) -> bool {
    matches!(
        t,
        msg_type::ECHO_REQUEST
            | msg_type::ECHO_REPLY
            | msg_type::TIMESTAMP
            | msg_type::TIMESTAMP_REPLY
    )
}

/// Is `t` a query request ([`is_query`]): echo or timestamp request.
#[inline]
pub const fn is_query_request(t: u8) -> bool {
    matches!(t, msg_type::ECHO_REQUEST | msg_type::TIMESTAMP)
}

/// A view of an ICMPv4 message.
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
    /// [`WireError::Truncated`] below 8 bytes.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }
    /// # Errors
    /// [`WireError::Truncated`] below 8 bytes.
    #[inline]
    pub fn check_len(&self) -> Result<(), WireError> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated {
                layer: Layer::Icmpv4,
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
    /// The 4 bytes after the checksum, as one word.
    #[inline]
    pub fn rest_of_header(&self) -> u32 {
        read_u32(&self.buffer.as_ref()[field::REST])
    }
    /// Echo identifier (meaningful for echo request/reply).
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::ECHO_IDENT])
    }
    /// Echo sequence number.
    #[inline]
    pub fn echo_seq_no(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::ECHO_SEQNO])
    }
    /// Next-hop MTU of a "fragmentation needed" message (RFC 1191).
    #[inline]
    pub fn next_hop_mtu(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::NEXT_HOP_MTU])
    }
    /// Parameter-problem pointer.
    #[inline]
    pub fn pointer(&self) -> u8 {
        self.buffer.as_ref()[field::POINTER]
    }
    /// Redirect gateway address.
    #[inline]
    pub fn gateway(&self) -> core::net::Ipv4Addr {
        read_array::<4>(&self.buffer.as_ref()[field::GATEWAY]).into()
    }
    /// Everything after the 8-byte header: echo data, or for errors the
    /// invoking packet's IP header and leading bytes.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::DATA]
    }
    /// Same as [`data`](Self::data).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        self.data()
    }
    /// For an error message: the quoted IP header + leading bytes; `None`
    /// for other types.
    #[inline]
    pub fn embedded(&self) -> Option<&[u8]> {
        is_error(self.msg_type()).then(|| self.data())
    }
    /// True when the checksum over the whole buffer is correct.
    pub fn verify_checksum(&self) -> bool {
        checksum::verifies(checksum::accumulate(0, self.buffer.as_ref()))
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
    pub fn set_next_hop_mtu(&mut self, v: u16) {
        write_u16(&mut self.buffer.as_mut()[field::NEXT_HOP_MTU], v);
    }
    #[inline]
    pub fn set_pointer(&mut self, v: u8) {
        self.buffer.as_mut()[field::POINTER] = v;
    }
    #[inline]
    pub fn set_gateway(&mut self, a: core::net::Ipv4Addr) {
        write_array(&mut self.buffer.as_mut()[field::GATEWAY], a.octets());
    }
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DATA]
    }
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        self.data_mut()
    }
    /// Computes the checksum over the whole buffer.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(c);
    }
}

/// The owned content of an ICMPv4 message (data borrowed).
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
    /// `data` is the invoking packet (IP header + leading bytes);
    /// `next_hop_mtu` is meaningful for [`unreachable::FRAG_NEEDED`] and 0
    /// otherwise.
    DstUnreachable {
        code: u8,
        next_hop_mtu: u16,
        data: &'a [u8],
    },
    TimeExceeded {
        code: u8,
        data: &'a [u8],
    },
    ParamProblem {
        code: u8,
        pointer: u8,
        data: &'a [u8],
    },
    /// Any other type, with its rest-of-header word kept as is.
    Other {
        msg_type: u8,
        code: u8,
        rest: u32,
        data: &'a [u8],
    },
}

impl<'a> Repr<'a> {
    /// Reads the message. The checksum is not verified (see
    /// [`Packet::verify_checksum`]).
    ///
    /// # Errors
    /// [`WireError::Truncated`] below 8 bytes.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(p: &Packet<&'a T>) -> Result<Repr<'a>, WireError> {
        p.check_len()?;
        let b: &'a [u8] = p.buffer.as_ref();
        let data = &b[field::DATA];
        Ok(match p.msg_type() {
            msg_type::ECHO_REQUEST if p.msg_code() == 0 => Repr::EchoRequest {
                ident: p.echo_ident(),
                seq_no: p.echo_seq_no(),
                data,
            },
            msg_type::ECHO_REPLY if p.msg_code() == 0 => Repr::EchoReply {
                ident: p.echo_ident(),
                seq_no: p.echo_seq_no(),
                data,
            },
            msg_type::DST_UNREACHABLE if p.rest_of_header() >> 16 == 0 => Repr::DstUnreachable {
                code: p.msg_code(),
                next_hop_mtu: p.next_hop_mtu(),
                data,
            },
            msg_type::TIME_EXCEEDED if p.rest_of_header() == 0 => Repr::TimeExceeded {
                code: p.msg_code(),
                data,
            },
            msg_type::PARAM_PROBLEM if p.rest_of_header() & 0x00ff_ffff == 0 => {
                Repr::ParamProblem {
                    code: p.msg_code(),
                    pointer: p.pointer(),
                    data,
                }
            }
            t => Repr::Other {
                msg_type: t,
                code: p.msg_code(),
                rest: p.rest_of_header(),
                data,
            },
        })
    }

    fn data(&self) -> &'a [u8] {
        match *self {
            Repr::EchoRequest { data, .. }
            | Repr::EchoReply { data, .. }
            | Repr::DstUnreachable { data, .. }
            | Repr::TimeExceeded { data, .. }
            | Repr::ParamProblem { data, .. }
            | Repr::Other { data, .. } => data,
        }
    }

    /// Header + data.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.data().len()
    }

    /// Writes the message into the first [`buffer_len`](Self::buffer_len)
    /// bytes of `buf`, checksum included.
    ///
    /// # Errors
    /// [`WireError::Truncated`] when `buf` is too short.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), WireError> {
        let data = self.data();
        let out = buf
            .get_mut(..HEADER_LEN + data.len())
            .ok_or(WireError::Truncated {
                layer: Layer::Icmpv4,
            })?;
        let mut p = Packet::new_unchecked(out);
        p.data_mut().copy_from_slice(data);
        let (t, code, rest) = match *self {
            Repr::EchoRequest { ident, seq_no, .. } => (
                msg_type::ECHO_REQUEST,
                0,
                u32::from(ident) << 16 | u32::from(seq_no),
            ),
            Repr::EchoReply { ident, seq_no, .. } => (
                msg_type::ECHO_REPLY,
                0,
                u32::from(ident) << 16 | u32::from(seq_no),
            ),
            Repr::DstUnreachable {
                code, next_hop_mtu, ..
            } => (msg_type::DST_UNREACHABLE, code, u32::from(next_hop_mtu)),
            Repr::TimeExceeded { code, .. } => (msg_type::TIME_EXCEEDED, code, 0),
            Repr::ParamProblem { code, pointer, .. } => {
                (msg_type::PARAM_PROBLEM, code, u32::from(pointer) << 24)
            }
            Repr::Other {
                msg_type,
                code,
                rest,
                ..
            } => (msg_type, code, rest),
        };
        p.set_msg_type(t);
        p.set_msg_code(code);
        p.set_rest_of_header(rest);
        p.fill_checksum();
        Ok(())
    }
}

/// How much of an invoking IPv4 packet an ICMP error quotes: its header
/// (options included) and the first 8 bytes of its payload (RFC 792), or
/// less if the packet is shorter. Returns the quoted prefix of `packet`
/// (an IPv4 packet starting at its header); an unparseable packet is quoted
/// up to 28 bytes.
pub fn quote(packet: &[u8]) -> &[u8] {
    let hl = match crate::ipv4::Packet::new_checked(packet) {
        Ok(p) => p.header_len(),
        Err(_) => crate::ipv4::HEADER_LEN,
    };
    &packet[..packet.len().min(hl + 8)]
}

#[cfg(test)]
mod tests {
    use super::*;

    // A Windows-style ping: id 0x0200, seq 0x2100, the 32 bytes
    // "abcdefghijklmnopqrstuvwabcdefghi"; checksum 0x2a5c computed
    // independently (a short Python one's-complement sum).
    fn echo() -> Vec<u8> {
        let mut v = vec![0x08, 0x00, 0x2a, 0x5c, 0x02, 0x00, 0x21, 0x00];
        v.extend_from_slice(b"abcdefghijklmnopqrstuvwabcdefghi");
        v
    }

    #[test]
    fn echo_request() {
        let v = echo();
        let p = Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.msg_type(), msg_type::ECHO_REQUEST);
        assert_eq!(p.echo_ident(), 0x0200);
        assert_eq!(p.echo_seq_no(), 0x2100);
        assert!(p.verify_checksum());
        let r = Repr::parse(&p).unwrap();
        assert_eq!(
            r,
            Repr::EchoRequest {
                ident: 0x0200,
                seq_no: 0x2100,
                data: b"abcdefghijklmnopqrstuvwabcdefghi"
            }
        );
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut out).unwrap();
        assert_eq!(out, v);
    }

    #[test]
    fn frag_needed() {
        // Destination unreachable, fragmentation needed, MTU 1400, quoting
        // a 20-byte IPv4 header + 8 bytes of UDP.
        let mut v = vec![0x03, 0x04, 0, 0, 0, 0, 0x05, 0x78];
        v.extend_from_slice(&[
            0x45, 0, 0, 0x5c, 0, 1, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 8, 8, 8, 8, 0x30, 0x39, 0,
            53, 0, 0x48, 0, 0,
        ]);
        let mut p = Packet::new_checked(&mut v[..]).unwrap();
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_eq!(p.next_hop_mtu(), 1400);
        assert_eq!(p.embedded().unwrap().len(), 28);
        let r = Repr::parse(&Packet::new_checked(&v[..]).unwrap()).unwrap();
        match r {
            Repr::DstUnreachable {
                code, next_hop_mtu, ..
            } => assert_eq!((code, next_hop_mtu), (4, 1400)),
            other => panic!("{other:?}"),
        }
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut out).unwrap();
        assert_eq!(out, v);
        assert_eq!(quote(&v[8..]).len(), 28);
    }

    #[test]
    fn time_exceeded_and_param_problem() {
        let quoted = [
            0x45u8, 0, 0, 20, 0, 0, 0, 0, 1, 6, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8,
        ];
        for r in [
            Repr::TimeExceeded {
                code: time_exceeded::TTL,
                data: &quoted,
            },
            Repr::ParamProblem {
                code: 0,
                pointer: 9,
                data: &quoted,
            },
            Repr::Other {
                msg_type: 42,
                code: 7,
                rest: 0xdeadbeef,
                data: &quoted,
            },
        ] {
            let mut out = vec![0u8; r.buffer_len()];
            r.emit(&mut out).unwrap();
            let p = Packet::new_checked(&out[..]).unwrap();
            assert!(p.verify_checksum());
            assert_eq!(Repr::parse(&p).unwrap(), r);
        }
    }

    #[test]
    fn truncated() {
        assert!(Packet::new_checked(&[8u8, 0, 0, 0, 0, 0, 0][..]).is_err());
    }
}
