//! Ethernet II frames (IEEE 802.3 with an EtherType, no FCS).
//!
//! ```text
//!  0                   6                  12      14
//! +-------------------+-------------------+-------+---------
//! | destination MAC   | source MAC        | type  | payload
//! +-------------------+-------------------+-------+---------
//! ```
//!
//! Once [`Frame::new_checked`] succeeded no accessor panics.

use core::fmt;

use crate::bytes::{read_array, read_u16, write_array, write_u16};
use crate::error::{Layer, WireError};

mod field {
    use core::ops::{Range, RangeFrom};
    pub const DESTINATION: Range<usize> = 0..6;
    pub const SOURCE: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
    pub const PAYLOAD: RangeFrom<usize> = 14..;
}

/// Length of the Ethernet II header.
pub const HEADER_LEN: usize = field::PAYLOAD.start;

/// EtherType values this crate knows.
pub mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
    /// IEEE 802.1Q customer VLAN tag (C-tag).
    pub const VLAN: u16 = 0x8100;
    /// IEEE 802.1ad service VLAN tag (S-tag, the outer tag of QinQ).
    pub const QINQ: u16 = 0x88a8;
    pub const IPV6: u16 = 0x86dd;
}

/// A 48-bit Ethernet MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    pub const fn new(b: [u8; 6]) -> Self {
        MacAddr(b)
    }
    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }
    pub const fn is_broadcast(&self) -> bool {
        matches!(self.0, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
    }
    /// Group (multicast or broadcast) bit set.
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }
    /// The IPv6 multicast MAC (33:33:xx:xx:xx:xx, RFC 2464 §7) of `addr`.
    pub fn ipv6_multicast(addr: core::net::Ipv6Addr) -> Self {
        let o = addr.octets();
        MacAddr([0x33, 0x33, o[12], o[13], o[14], o[15]])
    }
}

impl From<[u8; 6]> for MacAddr {
    fn from(b: [u8; 6]) -> Self {
        MacAddr(b)
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// A view of an Ethernet II frame.
#[derive(Debug, Clone)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps a buffer without checking it; accessors may panic until
    /// [`check_len`](Self::check_len) passed.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Frame { buffer }
    }

    /// [`new_unchecked`](Self::new_unchecked) + [`check_len`](Self::check_len).
    ///
    /// # Errors
    /// [`WireError::Truncated`] when the buffer is shorter than 14 bytes.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let f = Self::new_unchecked(buffer);
        f.check_len()?;
        Ok(f)
    }

    /// # Errors
    /// [`WireError::Truncated`] when the buffer is shorter than 14 bytes.
    #[inline]
    pub fn check_len(&self) -> Result<(), WireError> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated {
                layer: Layer::Ethernet,
            });
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn dst_addr(&self) -> MacAddr {
        MacAddr(read_array(&self.buffer.as_ref()[field::DESTINATION]))
    }
    #[inline]
    pub fn src_addr(&self) -> MacAddr {
        MacAddr(read_array(&self.buffer.as_ref()[field::SOURCE]))
    }
    #[inline]
    pub fn ethertype(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::ETHERTYPE])
    }
    #[inline]
    pub fn header_len(&self) -> usize {
        HEADER_LEN
    }
    /// Everything after the header (including any Ethernet padding).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    #[inline]
    pub fn set_dst_addr(&mut self, a: MacAddr) {
        write_array(&mut self.buffer.as_mut()[field::DESTINATION], a.0);
    }
    #[inline]
    pub fn set_src_addr(&mut self, a: MacAddr) {
        write_array(&mut self.buffer.as_mut()[field::SOURCE], a.0);
    }
    #[inline]
    pub fn set_ethertype(&mut self, t: u16) {
        write_u16(&mut self.buffer.as_mut()[field::ETHERTYPE], t);
    }
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD]
    }
}

/// The owned content of an Ethernet II header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    pub src_addr: MacAddr,
    pub dst_addr: MacAddr,
    pub ethertype: u16,
}

impl Repr {
    /// # Errors
    /// Never fails on a checked frame; kept fallible for symmetry.
    pub fn parse<T: AsRef<[u8]>>(frame: &Frame<T>) -> Result<Repr, WireError> {
        frame.check_len()?;
        Ok(Repr {
            src_addr: frame.src_addr(),
            dst_addr: frame.dst_addr(),
            ethertype: frame.ethertype(),
        })
    }

    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the 14-byte header at the start of `buf`.
    ///
    /// # Errors
    /// [`WireError::Truncated`] when `buf` is shorter than 14 bytes.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), WireError> {
        let mut f = Frame::new_checked(buf)?;
        f.set_dst_addr(self.dst_addr);
        f.set_src_addr(self.src_addr);
        f.set_ethertype(self.ethertype);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Start of the Wireshark sample capture "http.cap" (frame 1: TCP SYN).
    const FRAME: [u8; 16] = [
        0xfe, 0xff, 0x20, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x08, 0x00, 0x45,
        0x00,
    ];

    #[test]
    fn parse_fields() {
        let f = Frame::new_checked(&FRAME[..]).unwrap();
        assert_eq!(f.dst_addr(), MacAddr([0xfe, 0xff, 0x20, 0x00, 0x01, 0x00]));
        assert_eq!(f.src_addr(), MacAddr([0x00, 0x00, 0x01, 0x00, 0x00, 0x00]));
        assert_eq!(f.ethertype(), ethertype::IPV4);
        assert_eq!(f.payload(), &[0x45, 0x00]);
        assert_eq!(f.dst_addr().to_string(), "fe:ff:20:00:01:00");
    }

    #[test]
    fn truncated() {
        assert_eq!(
            Frame::new_checked(&FRAME[..13]).unwrap_err(),
            WireError::Truncated {
                layer: Layer::Ethernet
            }
        );
        assert!(
            Frame::new_checked(&FRAME[..14])
                .unwrap()
                .payload()
                .is_empty()
        );
    }

    #[test]
    fn emit_round_trip() {
        let r = Repr::parse(&Frame::new_checked(&FRAME[..]).unwrap()).unwrap();
        let mut buf = [0u8; 14];
        r.emit(&mut buf).unwrap();
        assert_eq!(&buf[..], &FRAME[..14]);
        assert!(r.emit(&mut [0u8; 13]).is_err());
    }
}
