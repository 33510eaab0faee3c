//! UDP datagrams (RFC 768).
//!
//! ```text
//!  0               16              31
//! +---------------+---------------+
//! |  Source Port  |   Dest Port   |
//! +---------------+---------------+
//! |    Length     |   Checksum    |
//! +---------------+---------------+
//! ```
//!
//! [`Packet::check_len`] validates 8 ≤ length field ≤ buffer length; once
//! it passed no accessor panics and [`Packet::payload`] ends at the length
//! field. A checksum of 0 means "none" over IPv4 (RFC 768) and is
//! invalid over IPv6 (RFC 8200 §8.1).

use core::net::IpAddr;

use crate::bytes::{read_u16, write_u16};
use crate::checksum;
use crate::error::{Layer, WireError};
use crate::ip_protocol;

mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const CHECKSUM: Range<usize> = 6..8;
}

/// Length of the UDP header.
pub const HEADER_LEN: usize = field::CHECKSUM.end;
/// Offset of the checksum within the header.
pub(crate) const CHECKSUM_OFFSET: usize = field::CHECKSUM.start;

/// A view of a UDP datagram.
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
    /// [`WireError::Truncated`] below 8 bytes; [`WireError::BadUdpLength`]
    /// when the length field is below 8 or past the buffer.
    #[inline]
    pub fn check_len(&self) -> Result<(), WireError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(WireError::Truncated { layer: Layer::Udp });
        }
        let l = usize::from(self.len());
        if l < HEADER_LEN || l > len {
            return Err(WireError::BadUdpLength);
        }
        Ok(())
    }
    pub fn into_inner(self) -> T {
        self.buffer
    }
    #[inline]
    pub fn src_port(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::SRC_PORT])
    }
    #[inline]
    pub fn dst_port(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::DST_PORT])
    }
    /// The length field (header + payload).
    #[inline]
    pub fn len(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::LENGTH])
    }
    /// The length field says nothing follows the header... or less.
    #[inline]
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) <= HEADER_LEN
    }
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::CHECKSUM])
    }
    /// The datagram as the length field delimits it.
    #[inline]
    pub fn datagram(&self) -> &[u8] {
        &self.buffer.as_ref()[..usize::from(self.len())]
    }
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }
    /// Verifies the checksum with the pseudo-header of `src`/`dst`. A zero
    /// checksum verifies over IPv4 (none sent) and fails over IPv6.
    pub fn verify_checksum(&self, src: &IpAddr, dst: &IpAddr) -> bool {
        if self.checksum() == 0 {
            return src.is_ipv4();
        }
        let d = self.datagram();
        let ph = checksum::pseudo_header(src, dst, ip_protocol::UDP, d.len() as u32);
        checksum::verifies(checksum::accumulate(u64::from(ph), d))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    pub fn set_src_port(&mut self, p: u16) {
        write_u16(&mut self.buffer.as_mut()[field::SRC_PORT], p);
    }
    #[inline]
    pub fn set_dst_port(&mut self, p: u16) {
        write_u16(&mut self.buffer.as_mut()[field::DST_PORT], p);
    }
    #[inline]
    pub fn set_len(&mut self, l: u16) {
        write_u16(&mut self.buffer.as_mut()[field::LENGTH], l);
    }
    #[inline]
    pub fn set_checksum(&mut self, c: u16) {
        write_u16(&mut self.buffer.as_mut()[field::CHECKSUM], c);
    }
    /// Computes the checksum (a computed 0 is sent as 0xffff, RFC 768).
    pub fn fill_checksum(&mut self, src: &IpAddr, dst: &IpAddr) {
        self.set_checksum(0);
        let d = self.datagram();
        let ph = checksum::pseudo_header(src, dst, ip_protocol::UDP, d.len() as u32);
        let c = !checksum::fold(checksum::accumulate(u64::from(ph), d));
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let l = usize::from(self.len());
        &mut self.buffer.as_mut()[HEADER_LEN..l]
    }
}

/// The owned content of a UDP header plus a borrowed payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: &'a [u8],
}

impl<'a> Repr<'a> {
    /// Reads ports and payload; the checksum is not verified (see
    /// [`Packet::verify_checksum`]).
    ///
    /// # Errors
    /// The errors of [`Packet::check_len`].
    pub fn parse<T: AsRef<[u8]> + ?Sized>(p: &Packet<&'a T>) -> Result<Repr<'a>, WireError> {
        p.check_len()?;
        let b: &'a [u8] = p.buffer.as_ref();
        let l = usize::from(p.len());
        Ok(Repr {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            payload: &b[HEADER_LEN..l],
        })
    }

    /// Header + payload.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }

    /// Writes header and payload and fills the checksum for `src` → `dst`.
    ///
    /// # Errors
    /// [`WireError::Truncated`] when `buf` is shorter than
    /// [`buffer_len`](Self::buffer_len); [`WireError::BadUdpLength`] when
    /// it does not fit the 16-bit length field.
    pub fn emit(&self, buf: &mut [u8], src: &IpAddr, dst: &IpAddr) -> Result<(), WireError> {
        let n = self.buffer_len();
        let len = u16::try_from(n).map_err(|_| WireError::BadUdpLength)?;
        let out = buf
            .get_mut(..n)
            .ok_or(WireError::Truncated { layer: Layer::Udp })?;
        out[HEADER_LEN..].copy_from_slice(self.payload);
        let mut p = Packet::new_unchecked(out);
        p.set_src_port(self.src_port);
        p.set_dst_port(self.dst_port);
        p.set_len(len);
        p.fill_checksum(src, dst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    // A hand-made DNS query for "www.example.com" A, 192.168.1.100:53439 ->
    // 192.168.1.1:53, length 40, sent without a checksum (0).
    fn dns() -> (Vec<u8>, IpAddr, IpAddr) {
        let mut v = vec![0xd0, 0xbf, 0x00, 0x35, 0x00, 0x28, 0x00, 0x00];
        v.extend_from_slice(&[
            0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 3, b'w', b'w',
            b'w', 7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 3, b'c', b'o', b'm', 0, 0x00, 0x01,
            0x00, 0x01,
        ]);
        (
            v,
            Ipv4Addr::new(192, 168, 1, 100).into(),
            Ipv4Addr::new(192, 168, 1, 1).into(),
        )
    }

    #[test]
    fn parse_and_checksum() {
        let (mut v, s, d) = dns();
        let mut p = Packet::new_checked(&mut v[..]).unwrap();
        assert_eq!(p.src_port(), 53439);
        assert_eq!(p.dst_port(), 53);
        assert_eq!(p.len(), 40);
        // Checksum 0 over IPv4: none, verifies; over IPv6 it would not.
        assert!(p.verify_checksum(&s, &d));
        p.fill_checksum(&s, &d);
        assert!(p.verify_checksum(&s, &d));
        let c = p.checksum();
        // Independent computation from the pseudo-header + datagram bytes.
        let mut all = vec![192, 168, 1, 100, 192, 168, 1, 1, 0, 17, 0, 40];
        let mut dg = p.datagram().to_vec();
        dg[6] = 0;
        dg[7] = 0;
        all.extend_from_slice(&dg);
        assert_eq!(c, checksum::checksum(&all));
        assert_eq!(p.payload().len(), 32);
    }

    #[test]
    fn bad_lengths() {
        let (v, _, _) = dns();
        assert_eq!(
            Packet::new_checked(&v[..7]).unwrap_err(),
            WireError::Truncated { layer: Layer::Udp }
        );
        assert_eq!(
            Packet::new_checked(&v[..39]).unwrap_err(),
            WireError::BadUdpLength
        );
        let mut bad = v.clone();
        bad[5] = 7;
        assert_eq!(
            Packet::new_checked(&bad[..]).unwrap_err(),
            WireError::BadUdpLength
        );
        let mut pad = v.clone();
        pad.extend_from_slice(&[0, 0]);
        assert_eq!(Packet::new_checked(&pad[..]).unwrap().payload().len(), 32);
    }

    #[test]
    fn round_trip() {
        let (v, s, d) = dns();
        let r = Repr::parse(&Packet::new_checked(&v[..]).unwrap()).unwrap();
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut out, &s, &d).unwrap();
        let p = Packet::new_checked(&out[..]).unwrap();
        assert!(p.verify_checksum(&s, &d));
        assert_eq!(
            Repr::parse(&Packet::new_checked(&out[..]).unwrap()).unwrap(),
            r
        );
    }
}
