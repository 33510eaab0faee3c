//! IPv4 packets (RFC 791), options left opaque.
//!
//! ```text
//!  0       4       8               16      19                      31
//! +-------+-------+---------------+-------------------------------+
//! |Version|  IHL  |   DSCP/ECN    |         Total Length          |
//! +-------+-------+---------------+-----+-------------------------+
//! |        Identification         |Flags|     Fragment Offset     |
//! +---------------+---------------+-----+-------------------------+
//! |      TTL      |   Protocol    |        Header Checksum        |
//! +---------------+---------------+-------------------------------+
//! |                        Source Address                         |
//! |                      Destination Address                      |
//! |                    Options (IHL > 5)  ...                     |
//! ```
//!
//! [`Packet::check_len`] validates IHL ≥ 5, header length ≤ buffer, and
//! header length ≤ total length ≤ buffer length (the buffer may be longer:
//! Ethernet padding). Once it passed no accessor panics, and
//! [`Packet::payload`] ends at the total length. The version nibble is
//! checked by [`Repr::parse`] (and by the classifier), not by `check_len`.

use core::net::Ipv4Addr;

use crate::bytes::{read_array, read_u16, write_array, write_u16};
use crate::checksum;
use crate::error::{Layer, WireError};

mod field {
    use core::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLG_OFF: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC_ADDR: Range<usize> = 12..16;
    pub const DST_ADDR: Range<usize> = 16..20;
    pub const OPTIONS: usize = 20;
}

/// Length of the IPv4 header without options.
pub const HEADER_LEN: usize = field::DST_ADDR.end;

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// A view of an IPv4 packet.
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
    /// - [`WireError::Truncated`]: buffer shorter than 20 bytes or than IHL·4;
    /// - [`WireError::BadIhl`]: IHL below 5;
    /// - [`WireError::BadTotalLength`]: total length below IHL·4 or past the buffer.
    #[inline]
    pub fn check_len(&self) -> Result<(), WireError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(WireError::Truncated { layer: Layer::Ipv4 });
        }
        let hl = self.header_len();
        if hl < HEADER_LEN {
            return Err(WireError::BadIhl);
        }
        if hl > len {
            return Err(WireError::Truncated { layer: Layer::Ipv4 });
        }
        let tl = usize::from(self.total_len());
        if tl < hl || tl > len {
            return Err(WireError::BadTotalLength);
        }
        Ok(())
    }

    /// The header-only check for a *quoted* packet (the invoking packet in
    /// an ICMP error, whose total length exceeds what was quoted): 20 bytes,
    /// IHL ≥ 5, IHL·4 ≤ buffer. The total length is not checked; every
    /// accessor is still panic-free ([`payload`](Self::payload) ends at the
    /// buffer's end).
    ///
    /// # Errors
    /// [`WireError::Truncated`], [`WireError::BadIhl`].
    #[inline]
    pub fn check_header_len(&self) -> Result<(), WireError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(WireError::Truncated { layer: Layer::Ipv4 });
        }
        let hl = self.header_len();
        if hl < HEADER_LEN {
            return Err(WireError::BadIhl);
        }
        if hl > len {
            return Err(WireError::Truncated { layer: Layer::Ipv4 });
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }
    /// Header length in bytes (IHL · 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }
    #[inline]
    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] >> 2
    }
    #[inline]
    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] & 0x03
    }
    #[inline]
    pub fn total_len(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::LENGTH])
    }
    #[inline]
    pub fn ident(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::IDENT])
    }
    #[inline]
    pub fn dont_frag(&self) -> bool {
        read_u16(&self.buffer.as_ref()[field::FLG_OFF]) & FLAG_DF != 0
    }
    #[inline]
    pub fn more_frags(&self) -> bool {
        read_u16(&self.buffer.as_ref()[field::FLG_OFF]) & FLAG_MF != 0
    }
    /// Fragment offset in bytes (the field · 8).
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (read_u16(&self.buffer.as_ref()[field::FLG_OFF]) & OFFSET_MASK) << 3
    }
    /// More-fragments set or a non-zero offset.
    #[inline]
    pub fn is_fragment(&self) -> bool {
        read_u16(&self.buffer.as_ref()[field::FLG_OFF]) & (FLAG_MF | OFFSET_MASK) != 0
    }
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }
    #[inline]
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::CHECKSUM])
    }
    #[inline]
    pub fn src_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(read_array::<4>(&self.buffer.as_ref()[field::SRC_ADDR]))
    }
    #[inline]
    pub fn dst_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(read_array::<4>(&self.buffer.as_ref()[field::DST_ADDR]))
    }
    /// The options bytes (empty when IHL is 5).
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[field::OPTIONS..self.header_len()]
    }
    /// The header bytes, options included.
    #[inline]
    pub fn header(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.header_len()]
    }
    /// True when the header checksum is correct.
    pub fn verify_checksum(&self) -> bool {
        checksum::verifies(checksum::accumulate(0, self.header()))
    }
    /// The payload: from the end of the header to the total length (or to
    /// the end of the buffer if that comes first, which only happens for a
    /// view checked with [`check_header_len`](Self::check_header_len)).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        let end = usize::from(self.total_len()).min(b.len());
        b.get(self.header_len()..end).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    pub fn set_version(&mut self, v: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0x0f) | (v << 4);
    }
    /// Sets IHL from a length in bytes (rounded down to a multiple of 4).
    #[inline]
    pub fn set_header_len(&mut self, len: usize) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0xf0) | ((len / 4) as u8 & 0x0f);
    }
    #[inline]
    pub fn set_dscp(&mut self, dscp: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & 0x03) | (dscp << 2);
    }
    #[inline]
    pub fn set_ecn(&mut self, ecn: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & 0xfc) | (ecn & 0x03);
    }
    #[inline]
    pub fn set_total_len(&mut self, len: u16) {
        write_u16(&mut self.buffer.as_mut()[field::LENGTH], len);
    }
    #[inline]
    pub fn set_ident(&mut self, id: u16) {
        write_u16(&mut self.buffer.as_mut()[field::IDENT], id);
    }
    fn set_flg_off(&mut self, v: u16) {
        write_u16(&mut self.buffer.as_mut()[field::FLG_OFF], v);
    }
    fn flg_off(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::FLG_OFF])
    }
    #[inline]
    pub fn set_dont_frag(&mut self, df: bool) {
        let v = (self.flg_off() & !FLAG_DF) | if df { FLAG_DF } else { 0 };
        self.set_flg_off(v);
    }
    #[inline]
    pub fn set_more_frags(&mut self, mf: bool) {
        let v = (self.flg_off() & !FLAG_MF) | if mf { FLAG_MF } else { 0 };
        self.set_flg_off(v);
    }
    /// Sets the fragment offset from a byte count (must be a multiple of 8;
    /// the low three bits are dropped).
    #[inline]
    pub fn set_frag_offset(&mut self, bytes: u16) {
        let v = (self.flg_off() & !OFFSET_MASK) | ((bytes >> 3) & OFFSET_MASK);
        self.set_flg_off(v);
    }
    #[inline]
    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::TTL] = ttl;
    }
    #[inline]
    pub fn set_protocol(&mut self, p: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = p;
    }
    #[inline]
    pub fn set_checksum(&mut self, c: u16) {
        write_u16(&mut self.buffer.as_mut()[field::CHECKSUM], c);
    }
    #[inline]
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        write_array(&mut self.buffer.as_mut()[field::SRC_ADDR], a.octets());
    }
    #[inline]
    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        write_array(&mut self.buffer.as_mut()[field::DST_ADDR], a.octets());
    }
    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[field::OPTIONS..hl]
    }
    /// Recomputes the header checksum.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.header());
        self.set_checksum(c);
    }
    /// Decrements the TTL and updates the checksum incrementally
    /// (RFC 1624). Returns the new TTL; a TTL of 0 stays 0.
    pub fn decrement_ttl(&mut self) -> u8 {
        let ttl = self.ttl();
        if ttl == 0 {
            return 0;
        }
        let old = u16::from_be_bytes([ttl, self.protocol()]);
        let new = u16::from_be_bytes([ttl - 1, self.protocol()]);
        let c = checksum::update_u16(self.checksum(), old, new);
        self.set_ttl(ttl - 1);
        self.set_checksum(c);
        ttl - 1
    }
    /// Mutable [`payload`](Self::payload).
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        let b = self.buffer.as_mut();
        let end = usize::from(read_u16(&b[field::LENGTH])).min(b.len());
        b.get_mut(hl..end).unwrap_or(&mut [])
    }
}

/// The owned content of an IPv4 header without options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    pub src_addr: Ipv4Addr,
    pub dst_addr: Ipv4Addr,
    pub protocol: u8,
    /// Length of what follows the header.
    pub payload_len: u16,
    pub ttl: u8,
    pub dscp: u8,
    pub ecn: u8,
    pub ident: u16,
    pub dont_frag: bool,
    pub more_frags: bool,
    /// Fragment offset in bytes (a multiple of 8).
    pub frag_offset: u16,
}

impl Repr {
    /// A plain unfragmented header with DF set, TTL 64 and ident 0.
    pub fn new(src_addr: Ipv4Addr, dst_addr: Ipv4Addr, protocol: u8, payload_len: u16) -> Self {
        Repr {
            src_addr,
            dst_addr,
            protocol,
            payload_len,
            ttl: 64,
            dscp: 0,
            ecn: 0,
            ident: 0,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
        }
    }

    /// Reads the header; options are skipped (not represented). The
    /// checksum is not verified (see [`Packet::verify_checksum`]).
    ///
    /// # Errors
    /// The errors of [`Packet::check_len`], and [`WireError::BadVersion`].
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr, WireError> {
        p.check_len()?;
        if p.version() != 4 {
            return Err(WireError::BadVersion);
        }
        Ok(Repr {
            src_addr: p.src_addr(),
            dst_addr: p.dst_addr(),
            protocol: p.protocol(),
            payload_len: p.total_len() - p.header_len() as u16,
            ttl: p.ttl(),
            dscp: p.dscp(),
            ecn: p.ecn(),
            ident: p.ident(),
            dont_frag: p.dont_frag(),
            more_frags: p.more_frags(),
            frag_offset: p.frag_offset(),
        })
    }

    /// Header length (20: options are never emitted).
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the 20-byte header (total length = 20 + `payload_len`) with its
    /// checksum. The payload is not touched.
    ///
    /// # Errors
    /// [`WireError::Truncated`] when `buf` is shorter than 20 bytes;
    /// [`WireError::BadTotalLength`] when 20 + `payload_len` overflows u16.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), WireError> {
        let hdr = buf
            .get_mut(..HEADER_LEN)
            .ok_or(WireError::Truncated { layer: Layer::Ipv4 })?;
        let total = self
            .payload_len
            .checked_add(HEADER_LEN as u16)
            .ok_or(WireError::BadTotalLength)?;
        let mut p = Packet::new_unchecked(hdr);
        p.set_version(4);
        p.set_header_len(HEADER_LEN);
        p.set_dscp(self.dscp);
        p.set_ecn(self.ecn);
        p.set_total_len(total);
        p.set_ident(self.ident);
        p.set_flg_off(0);
        p.set_dont_frag(self.dont_frag);
        p.set_more_frags(self.more_frags);
        p.set_frag_offset(self.frag_offset);
        p.set_ttl(self.ttl);
        p.set_protocol(self.protocol);
        p.set_src_addr(self.src_addr);
        p.set_dst_addr(self.dst_addr);
        p.fill_checksum();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Frame 1 of Wireshark's "http.cap" sample, IPv4 header + TCP start:
    // 145.254.160.237 -> 65.208.228.223, TCP, id 0x0f41, DF, TTL 128, checksum 0x9010.
    const HDR: [u8; 24] = [
        0x45, 0x00, 0x00, 0x30, 0x0f, 0x41, 0x40, 0x00, 0x80, 0x06, 0x91, 0xeb, 0x91, 0xfe, 0xa0,
        0xed, 0x41, 0xd0, 0xe4, 0xdf, 0x0d, 0x2c, 0x00, 0x50,
    ];

    fn packet() -> Vec<u8> {
        let mut v = HDR.to_vec();
        v.resize(0x30, 0);
        v
    }

    #[test]
    fn parse_fields() {
        let buf = packet();
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 48);
        assert_eq!(p.ident(), 0x0f41);
        assert!(p.dont_frag());
        assert!(!p.more_frags());
        assert_eq!(p.frag_offset(), 0);
        assert_eq!(p.ttl(), 128);
        assert_eq!(p.protocol(), 6);
        assert_eq!(p.src_addr(), Ipv4Addr::new(145, 254, 160, 237));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(65, 208, 228, 223));
        assert_eq!(p.checksum(), 0x91eb);
        assert!(p.verify_checksum());
        assert_eq!(p.payload().len(), 28);
        assert!(p.options().is_empty());
    }

    #[test]
    fn padding_excluded_and_lengths_checked() {
        let mut buf = packet();
        buf.extend_from_slice(&[0; 6]); // Ethernet padding
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.payload().len(), 28);

        let buf = packet();
        assert_eq!(
            Packet::new_checked(&buf[..19]).unwrap_err(),
            WireError::Truncated { layer: Layer::Ipv4 }
        );
        assert_eq!(
            Packet::new_checked(&buf[..40]).unwrap_err(),
            WireError::BadTotalLength
        );
        let mut bad = packet();
        bad[0] = 0x44;
        assert_eq!(
            Packet::new_checked(&bad[..]).unwrap_err(),
            WireError::BadIhl
        );
        let mut bad = packet();
        bad[0] = 0x4f; // 60-byte header > 48-byte buffer
        assert_eq!(
            Packet::new_checked(&bad[..]).unwrap_err(),
            WireError::Truncated { layer: Layer::Ipv4 }
        );
        let mut long = packet();
        long.resize(64, 0);
        long[0] = 0x4f; // 60-byte header > 48-byte total length
        assert_eq!(
            Packet::new_checked(&long[..]).unwrap_err(),
            WireError::BadTotalLength
        );
        let mut bad = packet();
        bad[2] = 0;
        bad[3] = 19;
        assert_eq!(
            Packet::new_checked(&bad[..]).unwrap_err(),
            WireError::BadTotalLength
        );
        let mut bad = packet();
        bad[0] = 0x65;
        let p = Packet::new_checked(&bad[..]).unwrap();
        assert_eq!(Repr::parse(&p).unwrap_err(), WireError::BadVersion);
    }

    #[test]
    fn options_and_fragments() {
        // IHL 6 with a 4-byte option (Router Alert, RFC 2113), MF set, offset 1480.
        let mut buf = vec![
            0x46, 0x00, 0x00, 0x1c, 0xab, 0xcd, 0x20, 0xb9, 0x01, 0x11, 0x00, 0x00, 10, 0, 0, 1,
            10, 0, 0, 2, 0x94, 0x04, 0x00, 0x00, 1, 2, 3, 4,
        ];
        let mut p = Packet::new_checked(&mut buf[..]).unwrap();
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_eq!(p.options(), &[0x94, 0x04, 0, 0]);
        assert!(p.more_frags());
        assert!(!p.dont_frag());
        assert_eq!(p.frag_offset(), 185 * 8);
        assert!(p.is_fragment());
        assert_eq!(p.payload(), &[1, 2, 3, 4]);
    }

    #[test]
    fn emit_round_trip_and_ttl() {
        let buf = packet();
        let r = Repr::parse(&Packet::new_checked(&buf[..]).unwrap()).unwrap();
        let mut out = vec![0u8; 48];
        r.emit(&mut out).unwrap();
        assert_eq!(&out[..20], &HDR[..20]);
        let mut p = Packet::new_checked(&mut out[..]).unwrap();
        assert_eq!(p.decrement_ttl(), 127);
        assert!(p.verify_checksum());
        assert!(r.emit(&mut [0u8; 19]).is_err());
    }
}
