//! [`FlowKey`]: one direction of a flow (IPv4 or IPv6 5-tuple plus a zone).
//!
//! Layout: five `u64` words (40 bytes), so equality is five word compares
//! and hashing feeds five words to the keyed hasher. The words are a
//! bijection of the fields (addresses, ports, protocol, family, zone), and
//! both `Eq` and `Hash` are derived from the same words, so keys equal under
//! `Eq` always hash equally (property-tested in `tests/key.rs`).

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const FAMILY_V4: u64 = 4;
const FAMILY_V6: u64 = 6;

/// One direction of a flow. 40 bytes, `Copy`.
///
/// For ICMP queries both ports carry the identifier (as `net` reports it).
/// IPv4 keys store the address in the first 4 of 16 bytes (the rest zero);
/// a key mixing families (never produced by the classifier) is stored as
/// IPv6 with the IPv4 side IPv4-mapped (`::ffff:a.b.c.d`), so construction
/// is total and never panics.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    w: [u64; 5],
}

fn v4_bytes(a: Ipv4Addr) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..4].copy_from_slice(&a.octets());
    b
}

fn addr_words(b: [u8; 16]) -> (u64, u64) {
    let mut lo = [0u8; 8];
    let mut hi = [0u8; 8];
    lo.copy_from_slice(&b[..8]);
    hi.copy_from_slice(&b[8..]);
    (u64::from_le_bytes(lo), u64::from_le_bytes(hi))
}

fn words_addr(lo: u64, hi: u64) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&lo.to_le_bytes());
    b[8..].copy_from_slice(&hi.to_le_bytes());
    b
}

impl FlowKey {
    fn from_parts(
        family: u64,
        src: [u8; 16],
        dst: [u8; 16],
        proto: u8,
        src_port: u16,
        dst_port: u16,
        zone: u16,
    ) -> Self {
        let (s0, s1) = addr_words(src);
        let (d0, d1) = addr_words(dst);
        let w4 = u64::from(src_port)
            | (u64::from(dst_port) << 16)
            | (u64::from(proto) << 32)
            | (family << 40)
            | (u64::from(zone) << 48);
        Self {
            w: [s0, s1, d0, d1, w4],
        }
    }

    /// An IPv4 key.
    pub fn v4(
        src: Ipv4Addr,
        dst: Ipv4Addr,
        proto: u8,
        src_port: u16,
        dst_port: u16,
        zone: u16,
    ) -> Self {
        Self::from_parts(
            FAMILY_V4,
            v4_bytes(src),
            v4_bytes(dst),
            proto,
            src_port,
            dst_port,
            zone,
        )
    }

    /// An IPv6 key.
    pub fn v6(
        src: Ipv6Addr,
        dst: Ipv6Addr,
        proto: u8,
        src_port: u16,
        dst_port: u16,
        zone: u16,
    ) -> Self {
        Self::from_parts(
            FAMILY_V6,
            src.octets(),
            dst.octets(),
            proto,
            src_port,
            dst_port,
            zone,
        )
    }

    /// A key from addresses of any family (mixed families: see the type doc).
    pub fn new(
        src: IpAddr,
        dst: IpAddr,
        proto: u8,
        src_port: u16,
        dst_port: u16,
        zone: u16,
    ) -> Self {
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => Self::v4(s, d, proto, src_port, dst_port, zone),
            (s, d) => Self::v6(to_v6(s), to_v6(d), proto, src_port, dst_port, zone),
        }
    }

    /// The key of a classified packet's 5-tuple in `zone` (no packet copy).
    #[inline]
    pub fn from_tuple(t: &net::classify::FiveTuple, zone: u16) -> Self {
        Self::new(t.src, t.dst, t.proto, t.src_port, t.dst_port, zone)
    }

    /// The same flow seen from the other side: addresses and ports swapped.
    #[inline]
    #[must_use]
    pub fn reversed(&self) -> Self {
        let w4 = self.w[4];
        let sp = w4 & 0xffff;
        let dp = (w4 >> 16) & 0xffff;
        let rest = w4 & !0xffff_ffff;
        Self {
            w: [
                self.w[2],
                self.w[3],
                self.w[0],
                self.w[1],
                rest | (sp << 16) | dp,
            ],
        }
    }

    #[inline]
    pub fn is_ipv6(&self) -> bool {
        (self.w[4] >> 40) & 0xff == FAMILY_V6
    }
    fn addr(&self, lo: u64, hi: u64) -> IpAddr {
        let b = words_addr(lo, hi);
        if self.is_ipv6() {
            IpAddr::V6(Ipv6Addr::from(b))
        } else {
            IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
        }
    }
    pub fn src(&self) -> IpAddr {
        self.addr(self.w[0], self.w[1])
    }
    pub fn dst(&self) -> IpAddr {
        self.addr(self.w[2], self.w[3])
    }
    #[inline]
    pub fn src_port(&self) -> u16 {
        (self.w[4] & 0xffff) as u16
    }
    #[inline]
    pub fn dst_port(&self) -> u16 {
        ((self.w[4] >> 16) & 0xffff) as u16
    }
    #[inline]
    pub fn proto(&self) -> u8 {
        ((self.w[4] >> 32) & 0xff) as u8
    }
    #[inline]
    pub fn zone(&self) -> u16 {
        (self.w[4] >> 48) as u16
    }

    /// The five words (what [`ShardKey::hash`](crate::ShardKey::hash) mixes).
    #[inline]
    pub(crate) fn words(&self) -> [u64; 5] {
        self.w
    }
}

fn to_v6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

impl fmt::Debug for FlowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for FlowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (s, d) = (self.src(), self.dst());
        let (sp, dp) = (self.src_port(), self.dst_port());
        if self.is_ipv6() {
            write!(f, "[{s}]:{sp} -> [{d}]:{dp}")?;
        } else {
            write!(f, "{s}:{sp} -> {d}:{dp}")?;
        }
        write!(f, " proto {} zone {}", self.proto(), self.zone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_is_40() {
        assert_eq!(core::mem::size_of::<FlowKey>(), 40);
    }

    #[test]
    fn accessors_round_trip_v4() {
        let k = FlowKey::v4(
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(8, 8, 8, 8),
            17,
            1234,
            53,
            7,
        );
        assert_eq!(k.src(), IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(k.dst(), IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8)));
        assert_eq!(
            (k.proto(), k.src_port(), k.dst_port(), k.zone()),
            (17, 1234, 53, 7)
        );
        assert!(!k.is_ipv6());
        let r = k.reversed();
        assert_eq!(r.src(), k.dst());
        assert_eq!(r.dst(), k.src());
        assert_eq!((r.src_port(), r.dst_port()), (53, 1234));
        assert_eq!((r.proto(), r.zone()), (17, 7));
        assert_eq!(r.reversed(), k);
        assert_ne!(r, k);
    }

    #[test]
    fn v6_and_mixed() {
        let a: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let b: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let k = FlowKey::v6(a, b, 6, 1, 2, 0);
        assert!(k.is_ipv6());
        assert_eq!(k.src(), IpAddr::V6(a));
        assert_eq!(k.dst(), IpAddr::V6(b));
        let m = FlowKey::new(
            IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4)),
            IpAddr::V6(b),
            6,
            1,
            2,
            0,
        );
        assert!(m.is_ipv6());
        assert_eq!(
            m.src(),
            IpAddr::V6(Ipv4Addr::new(1, 2, 3, 4).to_ipv6_mapped())
        );
        // A v4 key and the v6-mapped form of the same addresses differ.
        let v4 = FlowKey::v4(
            Ipv4Addr::new(1, 2, 3, 4),
            Ipv4Addr::new(5, 6, 7, 8),
            6,
            1,
            2,
            0,
        );
        let mapped = FlowKey::v6(
            Ipv4Addr::new(1, 2, 3, 4).to_ipv6_mapped(),
            Ipv4Addr::new(5, 6, 7, 8).to_ipv6_mapped(),
            6,
            1,
            2,
            0,
        );
        assert_ne!(v4, mapped);
    }

    #[test]
    fn from_tuple_matches_new() {
        let t = net::classify::FiveTuple {
            src: IpAddr::V4(Ipv4Addr::new(192, 168, 1, 2)),
            dst: IpAddr::V4(Ipv4Addr::new(1, 1, 1, 1)),
            proto: 6,
            src_port: 40000,
            dst_port: 443,
        };
        let k = FlowKey::from_tuple(&t, 3);
        assert_eq!(k, FlowKey::new(t.src, t.dst, 6, 40000, 443, 3));
        assert_eq!(
            format!("{k}"),
            "192.168.1.2:40000 -> 1.1.1.1:443 proto 6 zone 3"
        );
    }
}
