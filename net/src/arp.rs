//! ARP packets (RFC 826).
//!
//! ```text
//!  0               16      24      32
//! +---------------+-------+-------+
//! | hardware type | proto type    |
//! +-------+-------+---------------+
//! | hlen  | plen  |   operation   |
//! +-------+-------+---------------+
//! | sender hw (hlen) | sender proto (plen) |
//! | target hw (hlen) | target proto (plen) |
//! ```
//!
//! The view handles any address lengths; [`Repr`] models Ethernet/IPv4
//! (hlen 6, plen 4), the only kind the dataplane answers. Once
//! [`Packet::check_len`] passed no accessor panics.

use core::net::Ipv4Addr;

use crate::bytes::{read_array, read_u16, write_u16};
use crate::error::{Layer, WireError};
use crate::ethernet::{MacAddr, ethertype};

mod field {
    use core::ops::Range;
    pub const HTYPE: Range<usize> = 0..2;
    pub const PTYPE: Range<usize> = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Range<usize> = 6..8;
    pub const ADDRS: usize = 8;

    /// Ranges of the four addresses for the given lengths.
    pub const fn sha(hlen: usize, _plen: usize) -> Range<usize> {
        ADDRS..ADDRS + hlen
    }
    pub const fn spa(hlen: usize, plen: usize) -> Range<usize> {
        ADDRS + hlen..ADDRS + hlen + plen
    }
    pub const fn tha(hlen: usize, plen: usize) -> Range<usize> {
        ADDRS + hlen + plen..ADDRS + 2 * hlen + plen
    }
    pub const fn tpa(hlen: usize, plen: usize) -> Range<usize> {
        ADDRS + 2 * hlen + plen..ADDRS + 2 * hlen + 2 * plen
    }
}

/// Length of the fixed part (before the addresses).
pub const FIXED_LEN: usize = field::ADDRS;
/// Length of an Ethernet/IPv4 ARP packet.
pub const ETH_IPV4_LEN: usize = field::ADDRS + 2 * 6 + 2 * 4;

/// Hardware type: Ethernet.
pub const HTYPE_ETHERNET: u16 = 1;

/// ARP operations.
pub mod operation {
    pub const REQUEST: u16 = 1;
    pub const REPLY: u16 = 2;
}

/// A view of an ARP packet.
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
    /// [`WireError::Truncated`] below 8 bytes or the addresses' extent.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }
    /// # Errors
    /// [`WireError::Truncated`] below 8 bytes or the addresses' extent.
    #[inline]
    pub fn check_len(&self) -> Result<(), WireError> {
        let len = self.buffer.as_ref().len();
        if len < FIXED_LEN || self.packet_len() > len {
            return Err(WireError::Truncated { layer: Layer::Arp });
        }
        Ok(())
    }
    pub fn into_inner(self) -> T {
        self.buffer
    }
    #[inline]
    pub fn hardware_type(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::HTYPE])
    }
    #[inline]
    pub fn protocol_type(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::PTYPE])
    }
    #[inline]
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }
    #[inline]
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }
    #[inline]
    pub fn operation(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::OPER])
    }
    fn lens(&self) -> (usize, usize) {
        (
            usize::from(self.hardware_len()),
            usize::from(self.protocol_len()),
        )
    }
    /// 8 + 2·hlen + 2·plen.
    #[inline]
    pub fn packet_len(&self) -> usize {
        let (h, p) = self.lens();
        field::tpa(h, p).end
    }
    #[inline]
    pub fn source_hardware_addr(&self) -> &[u8] {
        let (h, p) = self.lens();
        &self.buffer.as_ref()[field::sha(h, p)]
    }
    #[inline]
    pub fn source_protocol_addr(&self) -> &[u8] {
        let (h, p) = self.lens();
        &self.buffer.as_ref()[field::spa(h, p)]
    }
    #[inline]
    pub fn target_hardware_addr(&self) -> &[u8] {
        let (h, p) = self.lens();
        &self.buffer.as_ref()[field::tha(h, p)]
    }
    #[inline]
    pub fn target_protocol_addr(&self) -> &[u8] {
        let (h, p) = self.lens();
        &self.buffer.as_ref()[field::tpa(h, p)]
    }
    /// What follows the packet (Ethernet padding).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.packet_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    pub fn set_hardware_type(&mut self, v: u16) {
        write_u16(&mut self.buffer.as_mut()[field::HTYPE], v);
    }
    #[inline]
    pub fn set_protocol_type(&mut self, v: u16) {
        write_u16(&mut self.buffer.as_mut()[field::PTYPE], v);
    }
    #[inline]
    pub fn set_hardware_len(&mut self, v: u8) {
        self.buffer.as_mut()[field::HLEN] = v;
    }
    #[inline]
    pub fn set_protocol_len(&mut self, v: u8) {
        self.buffer.as_mut()[field::PLEN] = v;
    }
    #[inline]
    pub fn set_operation(&mut self, v: u16) {
        write_u16(&mut self.buffer.as_mut()[field::OPER], v);
    }
    /// Copies `a` into the sender hardware address. The address setters copy
    /// as many bytes as both the field (hlen/plen) and `a` have: they never
    /// panic on a length mismatch.
    #[inline]
    pub fn set_source_hardware_addr(&mut self, a: &[u8]) {
        let (h, p) = self.lens();
        copy_prefix(&mut self.buffer.as_mut()[field::sha(h, p)], a);
    }
    #[inline]
    pub fn set_source_protocol_addr(&mut self, a: &[u8]) {
        let (h, p) = self.lens();
        copy_prefix(&mut self.buffer.as_mut()[field::spa(h, p)], a);
    }
    #[inline]
    pub fn set_target_hardware_addr(&mut self, a: &[u8]) {
        let (h, p) = self.lens();
        copy_prefix(&mut self.buffer.as_mut()[field::tha(h, p)], a);
    }
    #[inline]
    pub fn set_target_protocol_addr(&mut self, a: &[u8]) {
        let (h, p) = self.lens();
        copy_prefix(&mut self.buffer.as_mut()[field::tpa(h, p)], a);
    }
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let l = self.packet_len();
        &mut self.buffer.as_mut()[l..]
    }
}

fn copy_prefix(dst: &mut [u8], src: &[u8]) {
    let n = dst.len().min(src.len());
    dst[..n].copy_from_slice(&src[..n]);
}

/// An Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    pub operation: u16,
    pub source_hardware_addr: MacAddr,
    pub source_protocol_addr: Ipv4Addr,
    pub target_hardware_addr: MacAddr,
    pub target_protocol_addr: Ipv4Addr,
}

impl Repr {
    /// # Errors
    /// [`WireError::Truncated`], or [`WireError::Unsupported`] for another
    /// hardware/protocol type or address lengths than Ethernet/IPv4.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr, WireError> {
        p.check_len()?;
        if p.hardware_type() != HTYPE_ETHERNET
            || p.protocol_type() != ethertype::IPV4
            || p.hardware_len() != 6
            || p.protocol_len() != 4
        {
            return Err(WireError::Unsupported { layer: Layer::Arp });
        }
        Ok(Repr {
            operation: p.operation(),
            source_hardware_addr: MacAddr(read_array(p.source_hardware_addr())),
            source_protocol_addr: read_array::<4>(p.source_protocol_addr()).into(),
            target_hardware_addr: MacAddr(read_array(p.target_hardware_addr())),
            target_protocol_addr: read_array::<4>(p.target_protocol_addr()).into(),
        })
    }

    /// The reply to this request from `mac` (which owns the target address).
    pub fn reply(&self, mac: MacAddr) -> Repr {
        Repr {
            operation: operation::REPLY,
            source_hardware_addr: mac,
            source_protocol_addr: self.target_protocol_addr,
            target_hardware_addr: self.source_hardware_addr,
            target_protocol_addr: self.source_protocol_addr,
        }
    }

    pub const fn buffer_len(&self) -> usize {
        ETH_IPV4_LEN
    }

    /// Writes the 28-byte packet.
    ///
    /// # Errors
    /// [`WireError::Truncated`] when `buf` is shorter than 28 bytes.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), WireError> {
        let out = buf
            .get_mut(..ETH_IPV4_LEN)
            .ok_or(WireError::Truncated { layer: Layer::Arp })?;
        let mut p = Packet::new_unchecked(out);
        p.set_hardware_type(HTYPE_ETHERNET);
        p.set_protocol_type(ethertype::IPV4);
        p.set_hardware_len(6);
        p.set_protocol_len(4);
        p.set_operation(self.operation);
        p.set_source_hardware_addr(&self.source_hardware_addr.0);
        p.set_source_protocol_addr(&self.source_protocol_addr.octets());
        p.set_target_hardware_addr(&self.target_hardware_addr.0);
        p.set_target_protocol_addr(&self.target_protocol_addr.octets());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // ARP request from Wireshark's "arp-storm" sample: who has 24.166.173.159?
    // tell 24.166.172.1 (sender 00:07:0d:af:f4:54).
    const REQ: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x00, 0x07, 0x0d, 0xaf, 0xf4, 0x54, 0x18,
        0xa6, 0xac, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x18, 0xa6, 0xad, 0x9f,
    ];

    #[test]
    fn parse_request() {
        let p = Packet::new_checked(&REQ[..]).unwrap();
        assert_eq!(p.hardware_type(), 1);
        assert_eq!(p.protocol_type(), 0x0800);
        assert_eq!(p.operation(), operation::REQUEST);
        let r = Repr::parse(&p).unwrap();
        assert_eq!(
            r.source_hardware_addr,
            MacAddr([0x00, 0x07, 0x0d, 0xaf, 0xf4, 0x54])
        );
        assert_eq!(r.source_protocol_addr, Ipv4Addr::new(24, 166, 172, 1));
        assert_eq!(r.target_protocol_addr, Ipv4Addr::new(24, 166, 173, 159));
        let mut out = [0u8; 28];
        r.emit(&mut out).unwrap();
        assert_eq!(out, REQ);
        let reply = r.reply(MacAddr([2, 0, 0, 0, 0, 1]));
        assert_eq!(reply.operation, operation::REPLY);
        assert_eq!(reply.target_protocol_addr, r.source_protocol_addr);
    }

    #[test]
    fn malformed() {
        assert!(Packet::new_checked(&REQ[..7]).is_err());
        assert!(Packet::new_checked(&REQ[..27]).is_err());
        let mut other = REQ;
        other[0] = 0;
        other[1] = 6; // IEEE 802
        let p = Packet::new_checked(&other[..]).unwrap();
        assert_eq!(
            Repr::parse(&p).unwrap_err(),
            WireError::Unsupported { layer: Layer::Arp }
        );
        // Odd lengths: hlen 0, plen 0 -> 8 bytes.
        let p = Packet::new_checked(&[0u8, 1, 8, 0, 0, 0, 0, 1][..]).unwrap();
        assert!(p.source_hardware_addr().is_empty());
    }
}
