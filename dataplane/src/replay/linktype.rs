//! Capture link types, and turning each record into the Ethernet frame the
//! pipeline expects.
//!
//! Replayed: Ethernet (1; an FCS is stripped when the capture says there is
//! one), Linux cooked captures (`LINUX_SLL` 113, `LINUX_SLL2` 276, what
//! `tcpdump -i any` writes), raw IP (101, and the old 12 and 14: IPv4 or
//! IPv6 by the version nibble; 228 IPv4; 229 IPv6) and BSD loopback (`NULL`
//! 0, address family in the capturing host's byte order; `LOOP` 108,
//! network byte order). Frames without an Ethernet header get one:
//!
//! - destination: the ingress port's MAC, except broadcast for a Linux
//!   cooked frame marked broadcast and for an IPv4 broadcast, and the
//!   multicast MAC (01:00:5e:…, 33:33:…) of a multicast IP destination;
//! - source: the sender's MAC when a Linux cooked header carries a 6-byte
//!   address, otherwise [`SYNTH_SRC_MAC`] (02:70:63:61:70:00);
//! - EtherType: the cooked header's protocol, the loopback header's address
//!   family (2 = IPv4; 10, 24, 28, 30 = IPv6), or the IP version.
//!
//! Every other link type is refused, naming it.

use pcap_file::DataLink;

use crate::wire::{ETHERTYPE_IPV4, ETHERTYPE_IPV6, Mac};

/// Source MAC of synthesised Ethernet headers when the capture does not
/// carry the sender's MAC: 02:70:63:61:70:00 (locally administered; "pcap"
/// in ASCII).
pub const SYNTH_SRC_MAC: Mac = [0x02, 0x70, 0x63, 0x61, 0x70, 0x00];

const BROADCAST: Mac = [0xff; 6];
const ETH_HDR: usize = 14;
const SLL_HDR: usize = 16;
const SLL2_HDR: usize = 20;
const LOOP_HDR: usize = 4;

/// How a record's link-layer header is turned into Ethernet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// Ethernet (1): the frame as captured, less its FCS.
    Ethernet,
    /// Linux cooked capture v1 (113).
    LinuxSll,
    /// Linux cooked capture v2 (276).
    LinuxSll2,
    /// Raw IP (101, 12, 14): IPv4 or IPv6 by the version nibble.
    RawIp,
    /// Raw IPv4 (228).
    Ipv4,
    /// Raw IPv6 (229).
    Ipv6,
    /// BSD loopback `NULL` (0): address family in host byte order.
    Null,
    /// OpenBSD loopback `LOOP` (108): address family in network byte order.
    Loop,
}

impl LinkKind {
    /// The link type number (low 16 bits of a pcap link-type field, or a
    /// pcapng interface's link type) → how to replay it, `None` if it
    /// cannot be replayed.
    pub fn from_linktype(lt: u32) -> Option<LinkKind> {
        Some(match lt {
            1 => LinkKind::Ethernet,
            113 => LinkKind::LinuxSll,
            276 => LinkKind::LinuxSll2,
            101 | 12 | 14 => LinkKind::RawIp,
            228 => LinkKind::Ipv4,
            229 => LinkKind::Ipv6,
            0 => LinkKind::Null,
            108 => LinkKind::Loop,
            _ => return None,
        })
    }
}

/// A link type for messages: `IEEE802_11 (105)`, `Unknown(147) (147)`.
pub fn linktype_name(lt: u32) -> String {
    format!("{:?} ({lt})", DataLink::from(lt))
}

/// What the capture says about a trailing Ethernet FCS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fcs {
    /// No FCS (or nothing said: frames are taken as they are).
    None,
    /// Every frame ends with this many FCS bytes.
    Bytes(u8),
    /// The link-type field has FCS bits but not the "length known" bit:
    /// the last 4 bytes are stripped from frames where they are a valid
    /// CRC-32 of the rest.
    Detect,
}

/// The parts of a pcap header's 32-bit link-type field: the link type (low
/// 16 bits) and the FCS information (`P` bit 0x0400_0000; FCS length in the
/// top 4 bits, in 16-bit words).
pub fn split_pcap_linktype(field: u32) -> (u32, Fcs) {
    let lt = field & 0xffff;
    let words = field >> 28;
    let fcs = if field & 0x0400_0000 != 0 {
        if words == 0 {
            Fcs::None
        } else {
            Fcs::Bytes(u8::try_from(words * 2).unwrap_or(0))
        }
    } else if field & 0xffff_0000 != 0 {
        Fcs::Detect
    } else {
        Fcs::None
    };
    (lt, fcs)
}

/// Turns records of one link type into Ethernet frames for one port.
#[derive(Debug, Clone, Copy)]
pub struct Decoder {
    pub kind: LinkKind,
    pub fcs: Fcs,
    /// The ingress port's MAC (destination of synthesised headers).
    pub port_mac: Mac,
}

impl Decoder {
    /// The record `data` as an Ethernet frame. `fcs_bytes`: a per-record
    /// FCS length (pcapng `epb_flags`) overriding the capture-wide one.
    /// A record too short for its link-layer header becomes an empty frame
    /// (the pipeline counts it `malformed`).
    #[inline]
    pub fn decode(&self, mut data: Vec<u8>, fcs_bytes: Option<u8>) -> Vec<u8> {
        match self.kind {
            LinkKind::Ethernet => {
                let fcs = fcs_bytes.map_or(self.fcs, Fcs::Bytes);
                strip_fcs(&mut data, fcs);
                data
            }
            LinkKind::LinuxSll => self.cooked(data, SLL_HDR),
            LinkKind::LinuxSll2 => self.cooked(data, SLL2_HDR),
            LinkKind::RawIp => {
                let et = ethertype_from_version(&data);
                self.prepend(data, 0, et)
            }
            LinkKind::Ipv4 => self.prepend(data, 0, ETHERTYPE_IPV4),
            LinkKind::Ipv6 => self.prepend(data, 0, ETHERTYPE_IPV6),
            LinkKind::Null | LinkKind::Loop => {
                let Some(h) = data.first_chunk::<LOOP_HDR>() else {
                    return Vec::new();
                };
                let af = if self.kind == LinkKind::Loop {
                    u32::from_be_bytes(*h)
                } else {
                    // Host byte order of the capturing machine: a family
                    // is small, so a value with high bits set is swapped.
                    let v = u32::from_le_bytes(*h);
                    if v & 0xffff_0000 != 0 {
                        v.swap_bytes()
                    } else {
                        v
                    }
                };
                let et = match af {
                    2 => ETHERTYPE_IPV4,
                    10 | 24 | 28 | 30 => ETHERTYPE_IPV6,
                    _ => ethertype_from_version(&data[LOOP_HDR..]),
                };
                self.prepend(data, LOOP_HDR, et)
            }
        }
    }

    /// Replace a Linux cooked header (`hdr` bytes) with an Ethernet header.
    fn cooked(&self, mut data: Vec<u8>, hdr: usize) -> Vec<u8> {
        if data.len() < hdr {
            return Vec::new();
        }
        // (packet type, address length, address, protocol)
        let (pkttype, halen, addr_at, proto) = if hdr == SLL_HDR {
            (
                u16::from_be_bytes([data[0], data[1]]),
                u16::from_be_bytes([data[4], data[5]]),
                6,
                u16::from_be_bytes([data[14], data[15]]),
            )
        } else {
            (
                u16::from(data[10]),
                u16::from(data[11]),
                12,
                u16::from_be_bytes([data[0], data[1]]),
            )
        };
        let src: Mac = if halen == 6 {
            let mut m = [0u8; 6];
            m.copy_from_slice(&data[addr_at..addr_at + 6]);
            m
        } else {
            SYNTH_SRC_MAC
        };
        let payload = &data[hdr..];
        let dst = match pkttype {
            // LINUX_SLL_BROADCAST
            1 => BROADCAST,
            // LINUX_SLL_MULTICAST
            2 => l3_group_mac(proto, payload).unwrap_or(BROADCAST),
            _ => self.port_mac,
        };
        // The Ethernet header is 2 (SLL) or 6 (SLL2) bytes shorter.
        data.drain(..hdr - ETH_HDR);
        write_eth(&mut data, dst, src, proto);
        data
    }

    /// Drop `strip` bytes of header and put an Ethernet header in front.
    fn prepend(&self, data: Vec<u8>, strip: usize, ethertype: u16) -> Vec<u8> {
        let payload = &data[strip.min(data.len())..];
        let dst = l3_group_mac(ethertype, payload).unwrap_or(self.port_mac);
        let mut f = Vec::with_capacity(ETH_HDR + payload.len());
        f.resize(ETH_HDR, 0);
        write_eth(&mut f, dst, SYNTH_SRC_MAC, ethertype);
        f.extend_from_slice(payload);
        f
    }
}

fn write_eth(f: &mut [u8], dst: Mac, src: Mac, ethertype: u16) {
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&ethertype.to_be_bytes());
}

/// EtherType from an IP header's version nibble (0 when neither 4 nor 6:
/// the pipeline drops the frame as an unknown protocol).
fn ethertype_from_version(l3: &[u8]) -> u16 {
    match l3.first().map(|b| b >> 4) {
        Some(4) => ETHERTYPE_IPV4,
        Some(6) => ETHERTYPE_IPV6,
        _ => 0,
    }
}

/// The Ethernet destination an IP broadcast or multicast destination has
/// on the wire (`None` for unicast or an unparsable header).
fn l3_group_mac(ethertype: u16, l3: &[u8]) -> Option<Mac> {
    match ethertype {
        ETHERTYPE_IPV4 => {
            let d = l3.get(16..20)?;
            if d == [255, 255, 255, 255] {
                Some(BROADCAST)
            } else if d[0] & 0xf0 == 0xe0 {
                Some([0x01, 0x00, 0x5e, d[1] & 0x7f, d[2], d[3]])
            } else {
                None
            }
        }
        ETHERTYPE_IPV6 => {
            let d = l3.get(24..40)?;
            (d[0] == 0xff).then(|| [0x33, 0x33, d[12], d[13], d[14], d[15]])
        }
        _ => None,
    }
}

fn strip_fcs(data: &mut Vec<u8>, fcs: Fcs) {
    match fcs {
        Fcs::None => {}
        Fcs::Bytes(n) => {
            let n = usize::from(n);
            if data.len() >= ETH_HDR + n {
                data.truncate(data.len() - n);
            }
        }
        Fcs::Detect => {
            let n = data.len();
            if n >= ETH_HDR + 4 {
                let (body, tail) = data.split_at(n - 4);
                if crc32(body).to_le_bytes() == tail {
                    data.truncate(n - 4);
                }
            }
        }
    }
}

/// The Ethernet CRC-32 (IEEE 802.3, reflected, as stored in a captured FCS).
pub fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    let mut c = !0u32;
    for &b in data {
        c = TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

#[cfg(test)]
mod tests {
    use super::*;

    const PORT: Mac = [2, 0, 0, 0, 1, 1];

    fn dec(kind: LinkKind) -> Decoder {
        Decoder {
            kind,
            fcs: Fcs::None,
            port_mac: PORT,
        }
    }

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn fcs_bits_of_the_pcap_link_type_field() {
        assert_eq!(split_pcap_linktype(1), (1, Fcs::None));
        // P bit, 2 words = 4 bytes.
        assert_eq!(split_pcap_linktype(0x2400_0001), (1, Fcs::Bytes(4)));
        // FCS bits without P: length unknown, detected per frame.
        assert_eq!(split_pcap_linktype(0x3000_0001), (1, Fcs::Detect));
        assert_eq!(split_pcap_linktype(0x0400_0001), (1, Fcs::None));
    }

    #[test]
    fn short_records_become_empty_frames() {
        for k in [LinkKind::LinuxSll, LinkKind::LinuxSll2, LinkKind::Null] {
            assert!(dec(k).decode(vec![1, 2, 3], None).is_empty(), "{k:?}");
        }
    }

    #[test]
    fn null_family_in_either_byte_order() {
        let mut ip = vec![0x45u8; 20];
        ip[16..20].copy_from_slice(&[10, 0, 0, 1]);
        for hdr in [[2u8, 0, 0, 0], [0, 0, 0, 2]] {
            let f = dec(LinkKind::Null).decode([&hdr[..], &ip].concat(), None);
            assert_eq!(&f[12..14], &[0x08, 0x00]);
            assert_eq!(&f[0..6], &PORT);
            assert_eq!(&f[6..12], &SYNTH_SRC_MAC);
            assert_eq!(&f[14..], &ip[..]);
        }
    }

    #[test]
    fn multicast_and_broadcast_destinations() {
        let mut ip = vec![0x45u8; 20];
        ip[16..20].copy_from_slice(&[224, 129, 2, 3]);
        let f = dec(LinkKind::Ipv4).decode(ip.clone(), None);
        assert_eq!(&f[0..6], &[0x01, 0x00, 0x5e, 0x01, 2, 3]);
        ip[16..20].copy_from_slice(&[255; 4]);
        let f = dec(LinkKind::RawIp).decode(ip, None);
        assert_eq!(&f[0..6], &BROADCAST);
    }
}
