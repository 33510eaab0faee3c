//! The NAT's view of a packet: its [`Tuple`].
//!
//! Rewriting and checksums are `net`'s (`net::rewrite`: RFC 1624
//! incremental updates, ICMP error embedded packets; one implementation,
//! tested in `net`); this module only holds what is NAT-specific.

use core::net::{IpAddr, Ipv4Addr};

/// Addresses and ports of an IPv4 packet (for ICMP query: identifier as both ports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tuple {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub proto: u8,
    pub sport: u16,
    pub dport: u16,
}

impl Tuple {
    /// The reply direction's tuple. For ICMP query the identifier stays in both ports.
    #[must_use]
    pub fn reversed(&self) -> Self {
        Self {
            src: self.dst,
            dst: self.src,
            proto: self.proto,
            sport: self.dport,
            dport: self.sport,
        }
    }

    /// `net`'s 5-tuple as a NAT tuple; `None` unless both addresses are IPv4.
    #[must_use]
    pub fn from_five(t: &net::FiveTuple) -> Option<Self> {
        match (t.src, t.dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => Some(Self {
                src,
                dst,
                proto: t.proto,
                sport: t.src_port,
                dport: t.dst_port,
            }),
            _ => None,
        }
    }
}
