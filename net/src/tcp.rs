//! TCP segments (RFC 9293); options are left opaque.
//!
//! ```text
//!  0               16              31
//! +---------------+---------------+
//! |  Source Port  |   Dest Port   |
//! +---------------+---------------+
//! |        Sequence Number        |
//! |     Acknowledgment Number     |
//! +-------+-------+---------------+
//! |Offset | Flags |    Window     |
//! +-------+-------+---------------+
//! |   Checksum    | Urgent Pointer|
//! +---------------+---------------+
//! ```
//!
//! [`Packet::check_len`] validates data offset ≥ 5 and header length ≤
//! buffer length; once it passed no accessor panics.

use core::net::IpAddr;

use crate::bytes::{read_u16, read_u32, write_u16, write_u32};
use crate::checksum;
use crate::error::{Layer, WireError};
use crate::ip_protocol;

mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const SEQ_NUM: Range<usize> = 4..8;
    pub const ACK_NUM: Range<usize> = 8..12;
    pub const FLAGS: Range<usize> = 12..14;
    pub const WIN_SIZE: Range<usize> = 14..16;
    pub const CHECKSUM: Range<usize> = 16..18;
    pub const URGENT: Range<usize> = 18..20;
    pub const OPTIONS: usize = 20;
}

/// Length of the TCP header without options.
pub const HEADER_LEN: usize = field::URGENT.end;
/// Offset of the checksum within the header.
pub(crate) const CHECKSUM_OFFSET: usize = field::CHECKSUM.start;

/// TCP flag bits as they sit in the low 9 bits of bytes 12..14.
pub mod flags {
    pub const FIN: u16 = 0x001;
    pub const SYN: u16 = 0x002;
    pub const RST: u16 = 0x004;
    pub const PSH: u16 = 0x008;
    pub const ACK: u16 = 0x010;
    pub const URG: u16 = 0x020;
    pub const ECE: u16 = 0x040;
    pub const CWR: u16 = 0x080;
    /// ECN nonce (RFC 3540, historic).
    pub const NS: u16 = 0x100;
    pub const MASK: u16 = 0x1ff;
}

/// A view of a TCP segment.
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
    /// [`WireError::Truncated`] below 20 bytes or below the data offset;
    /// [`WireError::BadDataOffset`] when the data offset is below 5.
    #[inline]
    pub fn check_len(&self) -> Result<(), WireError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(WireError::Truncated { layer: Layer::Tcp });
        }
        let hl = self.header_len();
        if hl < HEADER_LEN {
            return Err(WireError::BadDataOffset);
        }
        if hl > len {
            return Err(WireError::Truncated { layer: Layer::Tcp });
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
    #[inline]
    pub fn seq_number(&self) -> u32 {
        read_u32(&self.buffer.as_ref()[field::SEQ_NUM])
    }
    #[inline]
    pub fn ack_number(&self) -> u32 {
        read_u32(&self.buffer.as_ref()[field::ACK_NUM])
    }
    /// Header length in bytes (data offset · 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::FLAGS.start] >> 4) * 4
    }
    /// The 9 flag bits (see [`flags`]).
    #[inline]
    pub fn flags(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::FLAGS]) & flags::MASK
    }
    #[inline]
    pub fn fin(&self) -> bool {
        self.flags() & flags::FIN != 0
    }
    #[inline]
    pub fn syn(&self) -> bool {
        self.flags() & flags::SYN != 0
    }
    #[inline]
    pub fn rst(&self) -> bool {
        self.flags() & flags::RST != 0
    }
    #[inline]
    pub fn psh(&self) -> bool {
        self.flags() & flags::PSH != 0
    }
    #[inline]
    pub fn ack(&self) -> bool {
        self.flags() & flags::ACK != 0
    }
    #[inline]
    pub fn urg(&self) -> bool {
        self.flags() & flags::URG != 0
    }
    #[inline]
    pub fn ece(&self) -> bool {
        self.flags() & flags::ECE != 0
    }
    #[inline]
    pub fn cwr(&self) -> bool {
        self.flags() & flags::CWR != 0
    }
    #[inline]
    pub fn window_len(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::WIN_SIZE])
    }
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::CHECKSUM])
    }
    #[inline]
    pub fn urgent_at(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::URGENT])
    }
    /// The options bytes, opaque.
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[field::OPTIONS..self.header_len()]
    }
    /// Everything after the header (the buffer's end delimits the segment).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
    /// Verifies the checksum over the whole buffer with the pseudo-header.
    pub fn verify_checksum(&self, src: &IpAddr, dst: &IpAddr) -> bool {
        let b = self.buffer.as_ref();
        let ph = checksum::pseudo_header(src, dst, ip_protocol::TCP, b.len() as u32);
        checksum::verifies(checksum::accumulate(u64::from(ph), b))
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
    pub fn set_seq_number(&mut self, v: u32) {
        write_u32(&mut self.buffer.as_mut()[field::SEQ_NUM], v);
    }
    #[inline]
    pub fn set_ack_number(&mut self, v: u32) {
        write_u32(&mut self.buffer.as_mut()[field::ACK_NUM], v);
    }
    /// Sets the data offset from a header length in bytes.
    #[inline]
    pub fn set_header_len(&mut self, len: usize) {
        let b = &mut self.buffer.as_mut()[field::FLAGS.start];
        *b = (*b & 0x0f) | (((len / 4) as u8) << 4);
    }
    /// Sets the 9 flag bits, keeping the data offset.
    #[inline]
    pub fn set_flags(&mut self, f: u16) {
        let old = read_u16(&self.buffer.as_ref()[field::FLAGS]);
        write_u16(
            &mut self.buffer.as_mut()[field::FLAGS],
            (old & !flags::MASK) | (f & flags::MASK),
        );
    }
    #[inline]
    pub fn set_window_len(&mut self, w: u16) {
        write_u16(&mut self.buffer.as_mut()[field::WIN_SIZE], w);
    }
    #[inline]
    pub fn set_checksum(&mut self, c: u16) {
        write_u16(&mut self.buffer.as_mut()[field::CHECKSUM], c);
    }
    #[inline]
    pub fn set_urgent_at(&mut self, u: u16) {
        write_u16(&mut self.buffer.as_mut()[field::URGENT], u);
    }
    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[field::OPTIONS..hl]
    }
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[hl..]
    }
    /// Computes the checksum over the whole buffer.
    pub fn fill_checksum(&mut self, src: &IpAddr, dst: &IpAddr) {
        self.set_checksum(0);
        let b = self.buffer.as_ref();
        let ph = checksum::pseudo_header(src, dst, ip_protocol::TCP, b.len() as u32);
        let c = !checksum::fold(checksum::accumulate(u64::from(ph), b));
        self.set_checksum(c);
    }
}

/// The owned content of a TCP header plus borrowed options and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq_number: u32,
    pub ack_number: u32,
    /// The 9 flag bits (see [`flags`]).
    pub flags: u16,
    pub window_len: u16,
    pub urgent_at: u16,
    /// Raw options; their length must be a multiple of 4 and at most 40.
    pub options: &'a [u8],
    pub payload: &'a [u8],
}

impl<'a> Repr<'a> {
    /// A segment with the given ports and flags, everything else zero.
    pub fn new(src_port: u16, dst_port: u16, flags: u16, payload: &'a [u8]) -> Self {
        Repr {
            src_port,
            dst_port,
            seq_number: 0,
            ack_number: 0,
            flags,
            window_len: 65535,
            urgent_at: 0,
            options: &[],
            payload,
        }
    }

    /// Reads the header; the checksum is not verified (see
    /// [`Packet::verify_checksum`]).
    ///
    /// # Errors
    /// The errors of [`Packet::check_len`].
    pub fn parse<T: AsRef<[u8]> + ?Sized>(p: &Packet<&'a T>) -> Result<Repr<'a>, WireError> {
        p.check_len()?;
        let b: &'a [u8] = p.buffer.as_ref();
        let hl = p.header_len();
        Ok(Repr {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            seq_number: p.seq_number(),
            ack_number: p.ack_number(),
            flags: p.flags(),
            window_len: p.window_len(),
            urgent_at: p.urgent_at(),
            options: &b[field::OPTIONS..hl],
            payload: &b[hl..],
        })
    }

    pub const fn header_len(&self) -> usize {
        HEADER_LEN + self.options.len()
    }

    /// Header + options + payload.
    pub const fn buffer_len(&self) -> usize {
        self.header_len() + self.payload.len()
    }

    /// Writes the segment into the first [`buffer_len`](Self::buffer_len)
    /// bytes of `buf` and fills the checksum for `src` → `dst`.
    ///
    /// # Errors
    /// [`WireError::Truncated`] when `buf` is too short;
    /// [`WireError::BadDataOffset`] when the options are not a multiple of 4
    /// or longer than 40 bytes.
    pub fn emit(&self, buf: &mut [u8], src: &IpAddr, dst: &IpAddr) -> Result<(), WireError> {
        if !self.options.len().is_multiple_of(4) || self.options.len() > 40 {
            return Err(WireError::BadDataOffset);
        }
        let hl = self.header_len();
        let out = buf
            .get_mut(..self.buffer_len())
            .ok_or(WireError::Truncated { layer: Layer::Tcp })?;
        out[field::OPTIONS..hl].copy_from_slice(self.options);
        out[hl..].copy_from_slice(self.payload);
        let mut p = Packet::new_unchecked(out);
        p.set_src_port(self.src_port);
        p.set_dst_port(self.dst_port);
        p.set_seq_number(self.seq_number);
        p.set_ack_number(self.ack_number);
        write_u16(&mut p.buffer[field::FLAGS], 0);
        p.set_header_len(hl);
        p.set_flags(self.flags);
        p.set_window_len(self.window_len);
        p.set_urgent_at(self.urgent_at);
        p.fill_checksum(src, dst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    // TCP SYN of Wireshark's "http.cap" frame 1: 3372 -> 80, seq 951057939,
    // data offset 7 (28 bytes: MSS 1460, NOP, NOP, SACK permitted), window 8760,
    // checksum 0xc30c.
    const SYN: [u8; 28] = [
        0x0d, 0x2c, 0x00, 0x50, 0x38, 0xaf, 0xfe, 0x13, 0x00, 0x00, 0x00, 0x00, 0x70, 0x02, 0x22,
        0x38, 0xc3, 0x0c, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x01, 0x01, 0x04, 0x02,
    ];

    fn addrs() -> (IpAddr, IpAddr) {
        (
            Ipv4Addr::new(145, 254, 160, 237).into(),
            Ipv4Addr::new(65, 208, 228, 223).into(),
        )
    }

    #[test]
    fn parse_http_cap_syn() {
        let p = Packet::new_checked(&SYN[..]).unwrap();
        assert_eq!(p.src_port(), 3372);
        assert_eq!(p.dst_port(), 80);
        assert_eq!(p.seq_number(), 951_057_939);
        assert_eq!(p.ack_number(), 0);
        assert_eq!(p.header_len(), 28);
        assert!(p.syn() && !p.ack() && !p.fin() && !p.rst());
        assert_eq!(p.flags(), flags::SYN);
        assert_eq!(p.window_len(), 8760);
        assert_eq!(
            p.options(),
            &[0x02, 0x04, 0x05, 0xb4, 0x01, 0x01, 0x04, 0x02]
        );
        assert!(p.payload().is_empty());
        let (s, d) = addrs();
        assert!(p.verify_checksum(&s, &d));
    }

    #[test]
    fn malformed() {
        assert_eq!(
            Packet::new_checked(&SYN[..19]).unwrap_err(),
            WireError::Truncated { layer: Layer::Tcp }
        );
        assert_eq!(
            Packet::new_checked(&SYN[..24]).unwrap_err(),
            WireError::Truncated { layer: Layer::Tcp }
        );
        let mut bad = SYN;
        bad[12] = 0x40;
        assert_eq!(
            Packet::new_checked(&bad[..]).unwrap_err(),
            WireError::BadDataOffset
        );
        let mut flipped = SYN;
        flipped[25] ^= 1;
        let (s, d) = addrs();
        assert!(
            !Packet::new_checked(&flipped[..])
                .unwrap()
                .verify_checksum(&s, &d)
        );
    }

    #[test]
    fn round_trip() {
        let r = Repr::parse(&Packet::new_checked(&SYN[..]).unwrap()).unwrap();
        let (s, d) = addrs();
        let mut out = [0u8; 28];
        r.emit(&mut out, &s, &d).unwrap();
        assert_eq!(out, SYN);
    }
}
