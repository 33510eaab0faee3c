//! One-pass classifier: offsets and kinds of L2/L3/L4 plus the 5-tuple.
//!
//! CONTRACT (other crates code against these types; extend, do not rename):
//! `classify(frame)` succeeds for every frame whose L2 and L3 headers are
//! valid, including ARP and non-first IPv4/IPv6 fragments (which carry no
//! ports: `l4 == L4Kind::Fragment`). `Classified::five_tuple()` then yields
//! the 5-tuple or the typed reason there is none.

use core::net::IpAddr;

/// L3 protocol found after the Ethernet/VLAN headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum L3Kind {
    Ipv4,
    Ipv6,
    Arp,
}

/// L4 protocol found after the IP header (and IPv6 extension headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum L4Kind {
    Tcp,
    Udp,
    Icmpv4,
    Icmpv6,
    /// A non-first fragment: the L4 header is in another fragment.
    Fragment,
    /// Any other IP protocol number (e.g. GRE, ESP), or no L4 (ARP).
    Other(u8),
    None,
}

/// Fragment identification of an IPv4 (or IPv6 fragment-header) packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragInfo {
    /// IPv4 identification (16 bits) or IPv6 fragment id (32 bits).
    pub id: u32,
    /// Fragment offset in bytes.
    pub offset: u16,
    pub more_fragments: bool,
}

/// The 5-tuple of a packet. For ICMP queries (echo) both ports hold the
/// identifier; for ICMP errors the classifier reports the outer tuple with
/// ports 0 (use the ICMP views to reach the embedded packet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FiveTuple {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    pub src_port: u16,
    pub dst_port: u16,
}

/// What the pipeline needs of every packet, found in one pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classified {
    /// Outer VLAN tags (0, 1 or 2 = QinQ), VLAN ids, outermost first.
    pub vlans: [u16; 2],
    pub vlan_count: u8,
    /// Ethertype after the VLAN tags.
    pub ethertype: u16,
    pub l3_offset: u16,
    pub l3: L3Kind,
    /// Offset of the L4 header (for `Fragment`: of the fragment's payload).
    pub l4_offset: u16,
    pub l4: L4Kind,
    /// End of the IP packet within the frame (IPv4 total length / IPv6
    /// payload length), so Ethernet padding is excluded.
    pub l3_end: u16,
    /// Set for any fragment (first or not).
    pub frag: Option<FragInfo>,
    /// For TCP/UDP: the ports; for ICMP echo: the identifier twice.
    pub tuple: Option<FiveTuple>,
    /// For ICMP: type and code.
    pub icmp_type_code: Option<(u8, u8)>,
}
