//! The Internet checksum (RFC 1071), pseudo-headers, RFC 1624 incremental
//! updates, and frame-level helpers to verify, fill and NAT-rewrite.
//!
//! # The arithmetic
//! All sums here are one's-complement sums of big-endian 16-bit words. A
//! *sum* (`u16`, folded, not complemented) is what [`sum`] and
//! [`pseudo_header`] return; a *checksum* is the complement of a sum, as
//! stored in a header. A buffer whose checksum field is correct sums to
//! `0xffff`.
//!
//! # Zero and minus zero
//! In one's complement `0x0000` and `0xffff` are both zero. A checksum
//! field of `0xffff` verifies exactly like `0x0000`, which is why UDP
//! (RFC 768) sends a computed zero checksum as `0xffff` and reserves
//! `0x0000` for "no checksum" (IPv4 only). [`Delta::apply_udp`] keeps both
//! rules: it leaves a `0x0000` UDP checksum alone and never produces one.
//! Incremental updates use RFC 1624 eqn. 3, which has no `-0` pitfall
//! (eqn. 2 does: see RFC 1624 §3).
//!
//! # Frame-level helpers
//! For the NAT and for tests, these work on a whole Ethernet frame and the
//! [`Classified`] that [`crate::classify()`] returned for it:
//! - [`rewrite_ipv4_src`] / [`rewrite_ipv4_dst`]: new address and port (or
//!   ICMP echo identifier), fixing the IPv4 header checksum and the
//!   TCP/UDP/ICMP checksum incrementally. [`rewrite_ipv4_src_addr`] /
//!   [`rewrite_ipv4_dst_addr`] change the address only (any IPv4 packet,
//!   fragments and ICMP errors included). [`rewrite_ipv4_src_dst`] and
//!   [`rewrite_ipv4_addrs`] change both sides in one pass (hairpinning).
//! - [`rewrite_icmpv4_embedded_src`] / [`rewrite_icmpv4_embedded_dst`] /
//!   [`rewrite_icmpv4_embedded`] (both sides): for an ICMPv4 error, rewrite
//!   the embedded (quoted) packet's address and port, fixing the inner IPv4
//!   header checksum, the inner TCP/UDP/ICMP checksum when the quoted bytes
//!   contain it, and the outer ICMP checksum. [`icmpv4_embedded_tuple`]
//!   reads the quoted packet's 5-tuple (what a NAT looks its session up by).
//! - [`verify_frame`] / [`fill_frame`]: check or compute every checksum of a
//!   frame (IPv4 header, TCP, UDP, ICMPv4, ICMPv6). Finer-grained:
//!   [`verify_ipv4_header`], [`verify_l4`], [`fill_ipv4_header`], [`fill_l4`].
//!
//! None of these allocates or panics; a `Classified` that does not match
//! the frame yields [`RewriteError::Mismatch`].

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[allow(unused_imports)]
use crate::classify::Classified;

pub use crate::rewrite::{
    ChecksumError, RewriteError, fill_frame, fill_ipv4_header, fill_l4, icmpv4_embedded_tuple,
    rewrite_icmpv4_embedded, rewrite_icmpv4_embedded_dst, rewrite_icmpv4_embedded_src,
    rewrite_ipv4_addrs, rewrite_ipv4_dst, rewrite_ipv4_dst_addr, rewrite_ipv4_src,
    rewrite_ipv4_src_addr, rewrite_ipv4_src_dst, verify_frame, verify_ipv4_header, verify_l4,
};

/// Folds a wide one's-complement accumulator to 16 bits (end-around carry).
#[inline(always)]
pub const fn fold(mut acc: u64) -> u16 {
    // Two rounds bring any u64 below 2^17; two more settle the carry.
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc as u16
}

/// Adds `data` (big-endian 16-bit words, an odd last byte padded with a zero
/// byte on the right, RFC 1071 §4.1) to a wide accumulator.
#[inline]
pub fn accumulate(mut acc: u64, data: &[u8]) -> u64 {
    // 2^16 ≡ 1 (mod 2^16 - 1): summing 32-bit big-endian words and folding
    // later gives the same one's-complement sum as summing 16-bit words.
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        acc += (w >> 32) + (w & 0xffff_ffff);
    }
    let mut rest = chunks.remainder();
    while let [a, b, tail @ ..] = rest {
        acc += u64::from(u16::from_be_bytes([*a, *b]));
        rest = tail;
    }
    if let [a] = rest {
        acc += u64::from(*a) << 8;
    }
    acc
}

/// One's-complement sum of `data`, folded (not complemented).
#[inline]
pub fn sum(data: &[u8]) -> u16 {
    fold(accumulate(0, data))
}

/// The Internet checksum of `data` (RFC 1071): the complement of [`sum`].
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !sum(data)
}

/// One's-complement addition of two sums.
#[inline]
pub const fn combine(a: u16, b: u16) -> u16 {
    fold(a as u64 + b as u64)
}

/// Sum of the IPv4 pseudo-header (RFC 793 §3.1, RFC 768).
#[inline]
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, len: u16) -> u16 {
    let s = u64::from(src.to_bits());
    let d = u64::from(dst.to_bits());
    fold((s >> 16) + (s & 0xffff) + (d >> 16) + (d & 0xffff) + u64::from(protocol) + u64::from(len))
}

/// Sum of the IPv6 pseudo-header (RFC 8200 §8.1): upper-layer length is 32 bits.
#[inline]
pub fn pseudo_header_v6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, len: u32) -> u16 {
    let acc = accumulate(accumulate(0, &src.octets()), &dst.octets());
    fold(acc + u64::from(len >> 16) + u64::from(len & 0xffff) + u64::from(next_header))
}

/// Pseudo-header sum for any address pair. Two addresses of one family give
/// the RFC pseudo-header; a mixed pair (meaningless on the wire) sums each
/// address's octets so the function stays total.
#[inline]
pub fn pseudo_header(src: &IpAddr, dst: &IpAddr, protocol: u8, len: u32) -> u16 {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) if len <= 0xffff => {
            pseudo_header_v4(*s, *d, protocol, len as u16)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => pseudo_header_v6(*s, *d, protocol, len),
        _ => {
            let mut acc = 0u64;
            acc = match src {
                IpAddr::V4(a) => accumulate(acc, &a.octets()),
                IpAddr::V6(a) => accumulate(acc, &a.octets()),
            };
            acc = match dst {
                IpAddr::V4(a) => accumulate(acc, &a.octets()),
                IpAddr::V6(a) => accumulate(acc, &a.octets()),
            };
            fold(acc + u64::from(len >> 16) + u64::from(len & 0xffff) + u64::from(protocol))
        }
    }
}

/// RFC 1624 incremental update of checksum `hc` when one 16-bit word changes
/// from `old` to `new`.
#[inline]
pub const fn update_u16(hc: u16, old: u16, new: u16) -> u16 {
    // RFC 1624 §3, eqn. 3:  HC' = ~(~HC + ~m + m')
    !fold(!hc as u64 + !old as u64 + new as u64)
}

/// RFC 1624 incremental update for a 32-bit field (two words).
#[inline]
pub const fn update_u32(hc: u16, old: u32, new: u32) -> u16 {
    // RFC 1624 §3, eqn. 3 applied to both 16-bit halves at once:
    // HC' = ~(~HC + ~m_hi + ~m_lo + m'_hi + m'_lo)
    !fold(
        !hc as u64
            + !(old >> 16) as u16 as u64
            + !(old as u16) as u64
            + (new >> 16) as u64
            + (new & 0xffff) as u64,
    )
}

/// The accumulated change of several 16-bit words, to be applied to one or
/// more checksums that cover them (RFC 1624 eqn. 3, summed).
///
/// ```
/// use net::checksum::{Delta, checksum};
/// let mut data = [0x45u8, 0x00, 0x12, 0x34, 0xab, 0xcd];
/// let hc = checksum(&data);
/// let mut d = Delta::default();
/// d.add_u16(0xabcd, 0x1111);
/// data[4] = 0x11;
/// data[5] = 0x11;
/// assert_eq!(d.apply(hc), checksum(&data));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delta(u64);

impl Delta {
    /// Records that a word changed from `old` to `new`.
    #[inline]
    pub fn add_u16(&mut self, old: u16, new: u16) {
        // The ~m + m' part of RFC 1624 eqn. 3.
        self.0 += u64::from(!old) + u64::from(new);
    }
    /// Records a 32-bit field change (e.g. an IPv4 address).
    #[inline]
    pub fn add_u32(&mut self, old: u32, new: u32) {
        self.add_u16((old >> 16) as u16, (new >> 16) as u16);
        self.add_u16(old as u16, new as u16);
    }
    /// Records an IPv4 address change.
    #[inline]
    pub fn add_ipv4(&mut self, old: Ipv4Addr, new: Ipv4Addr) {
        self.add_u32(old.to_bits(), new.to_bits());
    }
    /// Adds another delta.
    #[inline]
    pub fn merge(&mut self, other: Delta) {
        self.0 += other.0;
    }
    /// No change recorded (or only no-op changes).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.0 == 0 || fold(self.0) == 0xffff
    }
    /// The change folded to one word, for storing: adding it in place of
    /// the delta (`!fold(!hc + word)`) gives the same checksum as
    /// [`apply`](Self::apply), since folding keeps both the sum modulo
    /// `0xffff` and whether it is zero, all that eqn. 3 depends on.
    #[inline]
    pub fn folded(self) -> u16 {
        fold(self.0)
    }
    /// The new checksum for a field that held `hc`.
    #[inline]
    pub fn apply(self, hc: u16) -> u16 {
        // RFC 1624 §3, eqn. 3:  HC' = ~(~HC + ~m + m')
        !fold(u64::from(!hc) + self.0)
    }
    /// [`apply`](Self::apply) with the UDP rules (RFC 768): a `0x0000`
    /// checksum means "none" and stays `0x0000`; a result of `0x0000` is
    /// sent as `0xffff`.
    #[inline]
    pub fn apply_udp(self, hc: u16) -> u16 {
        if hc == 0 {
            return 0;
        }
        match self.apply(hc) {
            0 => 0xffff,
            c => c,
        }
    }
}

/// Verifies a buffer that includes its checksum field.
#[inline]
pub fn verifies(acc_with_field: u64) -> bool {
    fold(acc_with_field) == 0xffff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(sum(&data), 0xddf2);
        assert_eq!(checksum(&data), 0x220d);
        // Odd length: a trailing byte is padded with zero on the right.
        assert_eq!(sum(&[0x00, 0x01, 0xf2]), 0xf201);
        assert_eq!(sum(&[]), 0);
    }

    #[test]
    fn ipv4_header_known() {
        // A textbook IPv4 header (Wikipedia "IPv4 header checksum" example):
        // checksum field b861.
        let hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert!(verifies(accumulate(0, &hdr)));
        let mut z = hdr;
        z[10] = 0;
        z[11] = 0;
        assert_eq!(checksum(&z), 0xb861);
    }

    #[test]
    fn long_buffers_match_word_sum() {
        let data: Vec<u8> = (0..1501u32).map(|i| (i * 7 + 3) as u8).collect();
        let mut acc = 0u32;
        for c in data.chunks(2) {
            let w = if c.len() == 2 {
                u16::from_be_bytes([c[0], c[1]])
            } else {
                u16::from(c[0]) << 8
            };
            acc += u32::from(w);
        }
        while acc > 0xffff {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        assert_eq!(u32::from(sum(&data)), acc);
    }

    #[test]
    fn incremental_matches_full() {
        let mut data = [0x12u8, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0];
        let hc = checksum(&data);
        let hc2 = update_u16(hc, 0x5678, 0x0000);
        data[2] = 0;
        data[3] = 0;
        assert_eq!(hc2, checksum(&data));
        let hc3 = update_u32(hc2, 0x9abcdef0, 0xffff_0001);
        data[4..8].copy_from_slice(&[0xff, 0xff, 0x00, 0x01]);
        assert!(verifies(accumulate(u64::from(hc3), &data)));
    }

    #[test]
    fn minus_zero_corners() {
        // All-ones words: ~m = 0. The result must still verify.
        let mut data = [0xffu8, 0xff, 0x00, 0x01];
        let hc = checksum(&data);
        assert_eq!(hc, 0xfffe);
        let hc2 = update_u16(hc, 0xffff, 0x0000);
        data[0] = 0;
        data[1] = 0;
        assert!(verifies(accumulate(u64::from(hc2), &data)));
        // UDP: a "none" checksum stays none; a zero result becomes 0xffff.
        let mut d = Delta::default();
        d.add_u16(0x1234, 0x4321);
        assert_eq!(d.apply_udp(0), 0);
        let mut d = Delta::default();
        // Choose old/new so that the plain result is 0x0000.
        d.add_u16(0x0001, 0x0000);
        assert_eq!(d.apply(0xfffe), 0x0000);
        assert_eq!(d.apply_udp(0xfffe), 0xffff);
        let mut d = Delta::default();
        d.add_u16(0x0000, 0x0001);
        assert_eq!(d.apply(0x0001), 0x0000);
        assert_eq!(d.apply_udp(0x0001), 0xffff);
    }

    #[test]
    fn pseudo_headers() {
        let s = Ipv4Addr::new(192, 168, 0, 1);
        let d = Ipv4Addr::new(192, 168, 0, 199);
        let manual = sum(&[192, 168, 0, 1, 192, 168, 0, 199, 0, 17, 0, 0x5f]);
        assert_eq!(pseudo_header_v4(s, d, 17, 0x5f), manual);
        assert_eq!(pseudo_header(&s.into(), &d.into(), 17, 0x5f), manual);
        let s6: Ipv6Addr = "fe80::1".parse().unwrap();
        let d6: Ipv6Addr = "ff02::1".parse().unwrap();
        let mut buf = Vec::new();
        buf.extend_from_slice(&s6.octets());
        buf.extend_from_slice(&d6.octets());
        buf.extend_from_slice(&[0, 1, 0, 0x20, 0, 0, 0, 58]);
        assert_eq!(pseudo_header_v6(s6, d6, 58, 0x10020), sum(&buf));
    }
}
