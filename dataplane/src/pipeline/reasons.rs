//! Why a frame was dropped: one closed enum, one counter each, with the
//! snake_case names counters, JSON and metrics use.

use serde::Serialize;

/// Why a frame was dropped: one closed enum, one counter each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[repr(u8)]
pub enum DropReason {
    /// Headers truncated or malformed (IPv4 header faults have their own
    /// reasons below).
    Malformed,
    /// Neither IPv4, IPv6 nor ARP.
    UnsupportedEthertype,
    /// Destination MAC is not ours, broadcast or multicast.
    NotForUs,
    /// ARP not asking for one of our addresses (and not a reply to us).
    ArpNotForUs,
    /// Addressed to us but not a service we answer (only ARP, echo and NDP are).
    LocalNotServed,
    /// Multicast/broadcast IP traffic (not forwarded).
    Multicast,
    /// IPv4 TTL or IPv6 hop limit would reach zero (time exceeded sent).
    TtlExceeded,
    /// No route to the destination.
    NoRoute,
    /// Hold queue for an unresolved next hop is full.
    NeighborQueueFull,
    /// A held frame's next hop did not resolve in time.
    NeighborUnresolved,
    /// No neighbour entry could be made for the next hop: the table holds
    /// `neighbor.max_entries` entries and none is `STALE` (evictable).
    NeighborTableFull,
    /// No neighbour entry could be made for the next hop: already
    /// `neighbor.max_incomplete` entries wait for an answer.
    NeighborIncompleteFull,
    /// Outside → inside traffic that matches no NAT session, port forward or
    /// IPv6 flow.
    UnsolicitedInbound,
    /// Source address is one of ours or invalid (martian).
    Martian,
    /// The NAT stage dropped it (detail per reason in the NAT stats).
    Nat,
    /// The IPv6 flow table refused a new flow (full).
    FlowTableFull,
    /// NAT: the inside host's port quota or the pool is exhausted.
    NatExhausted,
    /// IPv4 header checksum wrong (RFC 1812 §5.2.2).
    BadIpv4Checksum,
    /// IPv4 total length below the header length or past the frame.
    BadIpv4Length,
    /// IPv4 IHL below 5, or a header (with options) longer than the frame.
    BadIpv4Header,
    /// An ICMP error the NAT would translate whose ICMP checksum or quoted
    /// IPv4 header checksum is wrong (RFC 5508 REQ-3).
    BadIcmpChecksum,
    /// Several workers: the queue to the worker owning the frame's session
    /// was full (never waited on).
    HandoffQueueFull,
    /// IPv4 larger than the egress port's MTU with DF set (ICMP
    /// fragmentation needed sent, RFC 1191).
    FragNeededDf,
    /// IPv4 larger than the egress MTU that cannot be fragmented (a header
    /// with options too long for the MTU, malformed options, an offset past
    /// the field).
    CannotFragment,
    /// IPv6 larger than the egress port's MTU (ICMPv6 Packet Too Big sent,
    /// RFC 8201).
    PacketTooBig,
    /// A generated ICMP error not sent: its port's token bucket
    /// (`[icmp_rate]`) was empty. Counts errors, not input frames (the
    /// frame that caused it has its own reason).
    IcmpRateLimited,
    /// An 802.1Q-tagged frame on a port without `vlan` (priority-tagged
    /// frames, VLAN id 0, included).
    TaggedOnUntaggedPort,
    /// A port with `vlan = ID` received an untagged frame or one tagged
    /// with another VLAN id.
    VlanMismatch,
    /// Two or more VLAN tags (QinQ, 802.1ad), or an 802.1ad S-tag: not
    /// supported on any port.
    VlanQinq,
    /// A frame to send on a VLAN port had no room for its tag at the front
    /// (a borrowed-slice frame; an mbuf without 4 bytes of headroom).
    VlanNoHeadroom,
}

impl DropReason {
    pub const COUNT: usize = 30;
    pub const ALL: [DropReason; Self::COUNT] = [
        DropReason::Malformed,
        DropReason::UnsupportedEthertype,
        DropReason::NotForUs,
        DropReason::ArpNotForUs,
        DropReason::LocalNotServed,
        DropReason::Multicast,
        DropReason::TtlExceeded,
        DropReason::NoRoute,
        DropReason::NeighborQueueFull,
        DropReason::NeighborUnresolved,
        DropReason::NeighborTableFull,
        DropReason::NeighborIncompleteFull,
        DropReason::UnsolicitedInbound,
        DropReason::Martian,
        DropReason::Nat,
        DropReason::FlowTableFull,
        DropReason::NatExhausted,
        DropReason::BadIpv4Checksum,
        DropReason::BadIpv4Length,
        DropReason::BadIpv4Header,
        DropReason::BadIcmpChecksum,
        DropReason::HandoffQueueFull,
        DropReason::FragNeededDf,
        DropReason::CannotFragment,
        DropReason::PacketTooBig,
        DropReason::IcmpRateLimited,
        DropReason::TaggedOnUntaggedPort,
        DropReason::VlanMismatch,
        DropReason::VlanQinq,
        DropReason::VlanNoHeadroom,
    ];

    /// Stable snake_case name (counter label, JSON key).
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::UnsupportedEthertype => "unsupported_ethertype",
            DropReason::NotForUs => "not_for_us",
            DropReason::ArpNotForUs => "arp_not_for_us",
            DropReason::LocalNotServed => "local_not_served",
            DropReason::Multicast => "multicast",
            DropReason::TtlExceeded => "ttl_exceeded",
            DropReason::NoRoute => "no_route",
            DropReason::NeighborQueueFull => "neighbor_queue_full",
            DropReason::NeighborUnresolved => "neighbor_unresolved",
            DropReason::NeighborTableFull => "neighbor_table_full",
            DropReason::NeighborIncompleteFull => "neighbor_incomplete_full",
            DropReason::UnsolicitedInbound => "unsolicited_inbound",
            DropReason::Martian => "martian",
            DropReason::Nat => "nat",
            DropReason::FlowTableFull => "flow_table_full",
            DropReason::NatExhausted => "nat_exhausted",
            DropReason::BadIpv4Checksum => "bad_ipv4_checksum",
            DropReason::BadIpv4Length => "bad_ipv4_length",
            DropReason::BadIpv4Header => "bad_ipv4_header",
            DropReason::BadIcmpChecksum => "bad_icmp_checksum",
            DropReason::HandoffQueueFull => "handoff_queue_full",
            DropReason::FragNeededDf => "frag_needed_df",
            DropReason::CannotFragment => "cannot_fragment",
            DropReason::PacketTooBig => "packet_too_big",
            DropReason::IcmpRateLimited => "icmp_rate_limited",
            DropReason::TaggedOnUntaggedPort => "tagged_on_untagged_port",
            DropReason::VlanMismatch => "vlan_mismatch",
            DropReason::VlanQinq => "vlan_qinq",
            DropReason::VlanNoHeadroom => "vlan_no_headroom",
        }
    }
}
