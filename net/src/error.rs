//! Typed errors of the views, `Repr`s and emitters.

use core::fmt;

/// The header a length or content problem was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    Ethernet,
    Vlan,
    Arp,
    Ipv4,
    Ipv6,
    /// An IPv6 extension header (hop-by-hop, routing, destination options,
    /// fragment, authentication).
    Ipv6Ext,
    /// The IPv4 authentication header (RFC 4302).
    IpAuth,
    Tcp,
    Udp,
    Icmpv4,
    Icmpv6,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layer::Ethernet => "Ethernet",
            Layer::Vlan => "VLAN",
            Layer::Arp => "ARP",
            Layer::Ipv4 => "IPv4",
            Layer::Ipv6 => "IPv6",
            Layer::Ipv6Ext => "IPv6 extension",
            Layer::IpAuth => "IP authentication",
            Layer::Tcp => "TCP",
            Layer::Udp => "UDP",
            Layer::Icmpv4 => "ICMPv4",
            Layer::Icmpv6 => "ICMPv6",
        })
    }
}

/// Why a view (`new_checked`), a `Repr::parse` or an `emit` refused a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The buffer ends before the header (or a length field's extent) does.
    #[error("buffer too short for the {layer} header")]
    Truncated { layer: Layer },
    /// IPv4 IHL below 5 (20 bytes).
    #[error("IPv4 header length (IHL) below 5")]
    BadIhl,
    /// The IP version nibble is not 4 (IPv4 view) or 6 (IPv6 view).
    #[error("IP version field does not match")]
    BadVersion,
    /// IPv4 total length below the header length or past the buffer, or IPv6
    /// payload length past the buffer.
    #[error("IP total length inconsistent with header or buffer")]
    BadTotalLength,
    /// TCP data offset below 5 (20 bytes).
    #[error("TCP data offset below 5")]
    BadDataOffset,
    /// UDP length field below 8 or past the buffer.
    #[error("UDP length field below 8 or past the buffer")]
    BadUdpLength,
    /// A `Repr` does not model this content (e.g. ARP for another hardware
    /// or protocol type, an ICMP message whose fixed part is malformed).
    #[error("unsupported content in the {layer} header")]
    Unsupported { layer: Layer },
}
