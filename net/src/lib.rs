//! `net`: zero-copy packet views over byte slices, the one-pass classifier
//! and checksums.
//!
//! # Views (smoltcp style)
//! Each protocol module has a `Packet<T: AsRef<[u8]>>` (or `Frame`, `Tag`)
//! view with `new_unchecked`, `check_len`, `new_checked`, getters, `set_*`
//! setters (where `T: AsMut<[u8]>`) and `payload`/`payload_mut`, plus a
//! `Repr` with `parse` / `emit` / `buffer_len`. Byte offsets live in one
//! private `mod field` per module; no other module indexes packet bytes.
//! **Once `new_checked` (or `check_len`) succeeded, no accessor panics.**
//!
//! | module | covers |
//! |---|---|
//! | [`ethernet`] | Ethernet II, [`MacAddr`], EtherTypes |
//! | [`vlan`] | 802.1Q / 802.1ad tags (QinQ = two of them) |
//! | [`arp`] | ARP (any address lengths; `Repr` = Ethernet/IPv4) |
//! | [`ipv4`] | IPv4 with opaque options, fragment fields, total length vs buffer |
//! | [`ipv6`] | IPv6, extension headers (hop-by-hop, routing, destination options, fragment, AH) |
//! | [`tcp`] | TCP, flags, opaque options |
//! | [`udp`] | UDP |
//! | [`icmpv4`] | echo, destination unreachable (incl. frag-needed MTU), time exceeded, parameter problem, embedded packet |
//! | [`icmpv6`] | echo, destination unreachable, packet too big, time exceeded, parameter problem, neighbour solicitation/advertisement |
//! | [`fragment`] | IPv4 fragmentation to an MTU (RFC 791 §3.2, copy-bit options, no allocation) |
//! | [`classify()`] | the one-pass classifier: offsets, kinds, 5-tuple |
//! | [`checksum`] | RFC 1071 sums, pseudo-headers, RFC 1624 updates, NAT rewrite and verify/fill helpers (also as [`rewrite`]) |
//! | [`build`] | whole-frame builders for tests and for emitting replies |
//!
//! # Errors
//! Views, `Repr`s and emitters return [`WireError`]; the classifier
//! returns [`ClassifyError`]; the frame-level checksum helpers return
//! [`checksum::RewriteError`] / [`checksum::ChecksumError`]. All derive
//! `thiserror::Error`, are `Copy`, and carry no allocation.
//!
//! # Allocation
//! Nothing in parsing, classification, checksumming or rewriting
//! allocates. Only [`build`] returns `Vec`s.
#![deny(unsafe_code)]
#![warn(missing_debug_implementations)]

mod bytes;

pub mod arp;
pub mod build;
pub mod checksum;
pub mod classify;
pub mod error;
pub mod ethernet;
pub mod fragment;
pub mod icmpv4;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod rewrite;
pub mod tcp;
pub mod udp;
pub mod vlan;

pub use classify::{Classified, ClassifyError, FiveTuple, FragInfo, L3Kind, L4Kind, classify};
pub use error::{Layer, WireError};
pub use ethernet::MacAddr;

/// IP protocol numbers (IANA) this crate knows.
pub mod ip_protocol {
    /// IPv6 hop-by-hop options.
    pub const IPV6_HOPOPT: u8 = 0;
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    /// IPv6 routing header.
    pub const IPV6_ROUTE: u8 = 43;
    /// IPv6 fragment header.
    pub const IPV6_FRAG: u8 = 44;
    pub const GRE: u8 = 47;
    pub const ESP: u8 = 50;
    /// Authentication header (RFC 4302).
    pub const AH: u8 = 51;
    pub const ICMPV6: u8 = 58;
    /// IPv6 "no next header".
    pub const IPV6_NONXT: u8 = 59;
    /// IPv6 destination options.
    pub const IPV6_OPTS: u8 = 60;
}
