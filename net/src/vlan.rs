//! IEEE 802.1Q VLAN tags (TPID 0x8100) and 802.1ad service tags (0x88a8).
//!
//! The view covers the four bytes *after* the TPID (the TPID is the
//! EtherType of the enclosing header):
//!
//! ```text
//!  0       2       4
//! +-------+-------+---------
//! | TCI   | type  | payload
//! +-------+-------+---------
//!  TCI = PCP(3) | DEI(1) | VID(12)
//! ```
//!
//! Once [`Tag::new_checked`] succeeded no accessor panics.

use crate::bytes::{read_u16, write_u16};
use crate::error::{Layer, WireError};

mod field {
    use core::ops::{Range, RangeFrom};
    pub const TCI: Range<usize> = 0..2;
    pub const ETHERTYPE: Range<usize> = 2..4;
    pub const PAYLOAD: RangeFrom<usize> = 4..;
}

/// Length of one tag after its TPID.
pub const HEADER_LEN: usize = field::PAYLOAD.start;

/// A view of one VLAN tag.
#[derive(Debug, Clone)]
pub struct Tag<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Tag<T> {
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Tag { buffer }
    }

    /// # Errors
    /// [`WireError::Truncated`] when the buffer is shorter than 4 bytes.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let t = Self::new_unchecked(buffer);
        t.check_len()?;
        Ok(t)
    }

    /// # Errors
    /// [`WireError::Truncated`] when the buffer is shorter than 4 bytes.
    #[inline]
    pub fn check_len(&self) -> Result<(), WireError> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated { layer: Layer::Vlan });
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn tci(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::TCI])
    }
    /// Priority code point (3 bits).
    #[inline]
    pub fn pcp(&self) -> u8 {
        (self.tci() >> 13) as u8
    }
    /// Drop eligible indicator.
    #[inline]
    pub fn dei(&self) -> bool {
        self.tci() & 0x1000 != 0
    }
    /// VLAN identifier (12 bits).
    #[inline]
    pub fn vid(&self) -> u16 {
        self.tci() & 0x0fff
    }
    /// EtherType of what follows the tag.
    #[inline]
    pub fn ethertype(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::ETHERTYPE])
    }
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Tag<T> {
    #[inline]
    pub fn set_tci(&mut self, tci: u16) {
        write_u16(&mut self.buffer.as_mut()[field::TCI], tci);
    }
    #[inline]
    pub fn set_pcp(&mut self, pcp: u8) {
        let tci = (self.tci() & 0x1fff) | (u16::from(pcp & 7) << 13);
        self.set_tci(tci);
    }
    #[inline]
    pub fn set_dei(&mut self, dei: bool) {
        let tci = (self.tci() & !0x1000) | if dei { 0x1000 } else { 0 };
        self.set_tci(tci);
    }
    /// Sets the 12-bit VLAN id (higher bits of `vid` are ignored).
    #[inline]
    pub fn set_vid(&mut self, vid: u16) {
        let tci = (self.tci() & 0xf000) | (vid & 0x0fff);
        self.set_tci(tci);
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

/// The owned content of one VLAN tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    pub pcp: u8,
    pub dei: bool,
    /// 12-bit VLAN id.
    pub vid: u16,
    /// EtherType of what follows.
    pub ethertype: u16,
}

impl Repr {
    /// # Errors
    /// [`WireError::Truncated`] when the tag is shorter than 4 bytes.
    pub fn parse<T: AsRef<[u8]>>(tag: &Tag<T>) -> Result<Repr, WireError> {
        tag.check_len()?;
        Ok(Repr {
            pcp: tag.pcp(),
            dei: tag.dei(),
            vid: tag.vid(),
            ethertype: tag.ethertype(),
        })
    }

    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the 4 bytes after the TPID.
    ///
    /// # Errors
    /// [`WireError::Truncated`] when `buf` is shorter than 4 bytes.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), WireError> {
        let mut t = Tag::new_checked(buf)?;
        t.set_tci(0);
        t.set_pcp(self.pcp);
        t.set_dei(self.dei);
        t.set_vid(self.vid);
        t.set_ethertype(self.ethertype);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Wireshark sample "vlan.cap" style tag: PCP 0, VID 32, then IPv4.
    const TAG: [u8; 6] = [0x00, 0x20, 0x08, 0x00, 0x45, 0x00];

    #[test]
    fn parse_fields() {
        let t = Tag::new_checked(&TAG[..]).unwrap();
        assert_eq!(t.vid(), 32);
        assert_eq!(t.pcp(), 0);
        assert!(!t.dei());
        assert_eq!(t.ethertype(), 0x0800);
        assert_eq!(t.payload(), &[0x45, 0x00]);
    }

    #[test]
    fn pcp_dei_vid_bits() {
        // TCI 0xb064: PCP 5, DEI 1, VID 100.
        let t = Tag::new_checked(&[0xb0, 0x64, 0x86, 0xdd][..]).unwrap();
        assert_eq!((t.pcp(), t.dei(), t.vid()), (5, true, 100));
        let r = Repr::parse(&t).unwrap();
        let mut buf = [0u8; 4];
        r.emit(&mut buf).unwrap();
        assert_eq!(buf, [0xb0, 0x64, 0x86, 0xdd]);
    }

    #[test]
    fn truncated() {
        assert!(Tag::new_checked(&TAG[..3]).is_err());
    }
}
