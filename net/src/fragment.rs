//! IPv4 fragmentation (RFC 791 §2.3 and §3.2 "Fragmentation and
//! Reassembly", RFC 1812 §5.2.6): one IPv4 packet split into fragments no
//! longer than an MTU, without allocating. A router fragments a datagram
//! whose DF bit is clear when it is larger than the next hop's MTU.
//!
//! What each fragment gets:
//! - the original header's fixed 20 bytes (identification, TTL, protocol,
//!   addresses, DF, DSCP/ECN unchanged), its own total length and header
//!   checksum;
//! - options: the first fragment carries all of them; later fragments only
//!   those whose copy bit (0x80 in the option type) is set, padded with
//!   end-of-list bytes to a multiple of 4 (RFC 791 §3.1: "copied flag
//!   indicates that this option is copied into all fragments on
//!   fragmentation"); a malformed option list is refused
//!   ([`FragmentError::BadOptions`]);
//! - offset: the original offset plus where its data starts; data lengths
//!   are multiples of 8 except in the last fragment ("the fragment offset is
//!   measured in units of 8 octets");
//! - MF: set on every fragment but the last, which keeps the original MF (an
//!   input that is itself a non-last fragment stays non-last).
//!
//! ```
//! use net::fragment::Fragmenter;
//! let frame = net::build::udp4("10.0.0.1:1".parse().unwrap(), "10.0.0.2:2".parse().unwrap(), &[7u8; 3000]);
//! let mut pkt = frame[14..].to_vec();
//! let mut ip = net::ipv4::Packet::new_checked(&mut pkt[..]).unwrap();
//! ip.set_dont_frag(false);
//! ip.fill_checksum();
//! let f = Fragmenter::new(&pkt, 1500).unwrap();
//! assert_eq!(f.count(), 3);
//! let mut buf = [0u8; 1500];
//! let n = f.emit(0, &mut buf).unwrap();
//! assert_eq!(n, 1500);
//! let first = net::ipv4::Packet::new_checked(&buf[..n]).unwrap();
//! assert!(first.more_frags() && first.verify_checksum());
//! ```
//!
//! Cost: `new` is O(options); each `emit` copies one fragment.

use crate::error::WireError;
use crate::ipv4;

/// Why a packet cannot be fragmented to the MTU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum FragmentError {
    /// The packet does not parse as IPv4 (view or version check).
    #[error("not a well-formed IPv4 packet: {0}")]
    Malformed(WireError),
    /// The MTU cannot carry a header and 8 data bytes (RFC 791: 68 is the
    /// least every link must carry).
    #[error("MTU {mtu} cannot carry a {header_len}-byte header and 8 data bytes")]
    MtuTooSmall { mtu: usize, header_len: usize },
    /// The packet has DF set and is larger than the MTU.
    #[error("DF set on a packet larger than the MTU")]
    DontFragment,
    /// An option's length runs past the options or is below 2.
    #[error("malformed IPv4 options")]
    BadOptions,
    /// A fragment's offset would not fit the 13-bit field.
    #[error("fragment offset past 65528")]
    OffsetOverflow,
    /// The output buffer is shorter than the fragment, or the index is past
    /// [`Fragmenter::count`].
    #[error("fragment index past the count or buffer too short")]
    Buffer,
}

/// The largest fragment offset the 13-bit field holds, in bytes.
const MAX_OFFSET: usize = 0x1fff << 3;
/// Longest options part of an IPv4 header.
const MAX_OPTIONS: usize = 40;

/// One packet's fragmentation plan: how many fragments, what each carries.
/// Borrows the packet; [`emit`](Self::emit) writes fragment `i` into a
/// caller buffer.
#[derive(Debug, Clone)]
pub struct Fragmenter<'a> {
    /// The packet up to its total length.
    packet: &'a [u8],
    /// Header length of the first fragment (the original's).
    first_hl: usize,
    /// Options copied into later fragments, padded to a multiple of 4.
    later_opts: [u8; MAX_OPTIONS],
    later_opts_len: usize,
    /// Data bytes in the first fragment (when there are several).
    first_data: usize,
    /// Data bytes in every later fragment but the last.
    later_data: usize,
    payload_len: usize,
    count: usize,
    /// Original offset (bytes) and MF.
    offset: usize,
    more_frags: bool,
}

/// The options of `opts` whose copy bit is set, padded with zeros (EOL) to
/// a multiple of 4: `(buffer, length)`.
fn copied_options(opts: &[u8]) -> Result<([u8; MAX_OPTIONS], usize), FragmentError> {
    let mut out = [0u8; MAX_OPTIONS];
    let mut n = 0;
    let mut i = 0;
    while let Some(&t) = opts.get(i) {
        match t {
            0 => break,
            1 => i += 1,
            _ => {
                let len = usize::from(*opts.get(i + 1).ok_or(FragmentError::BadOptions)?);
                let opt = opts
                    .get(i..i + len)
                    .filter(|_| len >= 2)
                    .ok_or(FragmentError::BadOptions)?;
                if t & 0x80 != 0 {
                    out[n..n + len].copy_from_slice(opt);
                    n += len;
                }
                i += len;
            }
        }
    }
    Ok((out, n.next_multiple_of(4)))
}

impl<'a> Fragmenter<'a> {
    /// Plans the fragmentation of the IPv4 packet `packet` (starting at its
    /// header; bytes past its total length, e.g. Ethernet padding, are
    /// ignored) for an MTU of `mtu` bytes. A packet that fits is one
    /// "fragment": itself.
    ///
    /// # Errors
    /// [`FragmentError::Malformed`], [`FragmentError::BadOptions`],
    /// [`FragmentError::MtuTooSmall`] (header + 8 bytes do not fit),
    /// [`FragmentError::DontFragment`] (it does not fit and DF is set),
    /// [`FragmentError::OffsetOverflow`].
    pub fn new(packet: &'a [u8], mtu: usize) -> Result<Self, FragmentError> {
        let p = ipv4::Packet::new_checked(packet).map_err(FragmentError::Malformed)?;
        if p.version() != 4 {
            return Err(FragmentError::Malformed(WireError::BadVersion));
        }
        let total = usize::from(p.total_len());
        let first_hl = p.header_len();
        let (later_opts, later_opts_len) = copied_options(p.options())?;
        let payload_len = total - first_hl;
        let offset = usize::from(p.frag_offset());
        let mut f = Fragmenter {
            packet: &packet[..total],
            first_hl,
            later_opts,
            later_opts_len,
            first_data: payload_len,
            later_data: 0,
            payload_len,
            count: 1,
            offset,
            more_frags: p.more_frags(),
        };
        if total <= mtu {
            return Ok(f);
        }
        if p.dont_frag() {
            return Err(FragmentError::DontFragment);
        }
        let later_hl = ipv4::HEADER_LEN + later_opts_len;
        for hl in [first_hl, later_hl] {
            if mtu < hl + 8 {
                return Err(FragmentError::MtuTooSmall {
                    mtu,
                    header_len: hl,
                });
            }
        }
        let eight = |n: usize| n & !7;
        f.first_data = eight(mtu - first_hl);
        f.later_data = eight(mtu - later_hl);
        // The last fragment may carry up to `mtu - later_hl` bytes (its
        // length need not be a multiple of 8); every other one carries
        // `later_data`.
        let rest = payload_len - f.first_data;
        let last_room = mtu - later_hl;
        let later = 1 + rest.saturating_sub(last_room).div_ceil(f.later_data);
        f.count = 1 + later;
        if offset + f.data_range(f.count - 1).0 > MAX_OFFSET {
            return Err(FragmentError::OffsetOverflow);
        }
        Ok(f)
    }

    /// How many fragments (1 when the packet fits).
    pub fn count(&self) -> usize {
        self.count
    }

    /// Where fragment `i`'s data starts in the original payload, and its
    /// length.
    fn data_range(&self, i: usize) -> (usize, usize) {
        if i == 0 {
            return (0, self.first_data.min(self.payload_len));
        }
        let start = self.first_data + (i - 1) * self.later_data;
        let len = if i + 1 == self.count {
            self.payload_len - start
        } else {
            self.later_data
        };
        (start, len)
    }

    fn header_len(&self, i: usize) -> usize {
        if i == 0 {
            self.first_hl
        } else {
            ipv4::HEADER_LEN + self.later_opts_len
        }
    }

    /// Length of fragment `i` (header + data), 0 past the count.
    pub fn fragment_len(&self, i: usize) -> usize {
        if i >= self.count {
            return 0;
        }
        self.header_len(i) + self.data_range(i).1
    }

    /// Writes fragment `i` into the start of `buf`, header checksum filled;
    /// returns its length. With one fragment, that is the packet unchanged.
    ///
    /// # Errors
    /// [`FragmentError::Buffer`]: `i` past [`count`](Self::count) or `buf`
    /// shorter than [`fragment_len`](Self::fragment_len).
    pub fn emit(&self, i: usize, buf: &mut [u8]) -> Result<usize, FragmentError> {
        let n = self.fragment_len(i);
        let out = buf
            .get_mut(..n)
            .filter(|_| i < self.count)
            .ok_or(FragmentError::Buffer)?;
        if self.count == 1 {
            out.copy_from_slice(self.packet);
            return Ok(n);
        }
        let hl = self.header_len(i);
        let (start, len) = self.data_range(i);
        if i == 0 {
            out[..hl].copy_from_slice(&self.packet[..hl]);
        } else {
            out[..ipv4::HEADER_LEN].copy_from_slice(&self.packet[..ipv4::HEADER_LEN]);
            out[ipv4::HEADER_LEN..hl].copy_from_slice(&self.later_opts[..self.later_opts_len]);
        }
        let data = &self.packet[self.first_hl + start..self.first_hl + start + len];
        out[hl..].copy_from_slice(data);
        let mut p = ipv4::Packet::new_unchecked(out);
        p.set_header_len(hl);
        // n ≤ the original total length, a u16.
        p.set_total_len(n as u16);
        p.set_more_frags(i + 1 < self.count || self.more_frags);
        // Checked in `new` against MAX_OFFSET.
        p.set_frag_offset((self.offset + start) as u16);
        p.fill_checksum();
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    /// An IPv4 packet: `opts` (a multiple of 4), `payload`, DF clear.
    fn packet(opts: &[u8], payload: &[u8], offset: u16, mf: bool) -> Vec<u8> {
        let hl = ipv4::HEADER_LEN + opts.len();
        let mut v = vec![0u8; hl + payload.len()];
        let r = ipv4::Repr {
            ident: 0x1234,
            dont_frag: false,
            more_frags: mf,
            frag_offset: offset,
            ..ipv4::Repr::new(
                Ipv4Addr::new(10, 0, 0, 1),
                Ipv4Addr::new(10, 0, 0, 2),
                17,
                payload.len() as u16,
            )
        };
        r.emit(&mut v).unwrap();
        v[ipv4::HEADER_LEN..hl].copy_from_slice(opts);
        v[hl..].copy_from_slice(payload);
        let mut p = ipv4::Packet::new_unchecked(&mut v[..]);
        p.set_header_len(hl);
        p.set_total_len((hl + payload.len()) as u16);
        p.fill_checksum();
        v
    }

    fn all(f: &Fragmenter<'_>) -> Vec<Vec<u8>> {
        (0..f.count())
            .map(|i| {
                let mut b = vec![0u8; f.fragment_len(i)];
                f.emit(i, &mut b).unwrap();
                b
            })
            .collect()
    }

    #[test]
    fn rfc791_example_sizes() {
        // 4000 bytes of payload, MTU 1500: 1480 + 1480 + 1040.
        let payload: Vec<u8> = (0..4000u32).map(|i| i as u8).collect();
        let pkt = packet(&[], &payload, 0, false);
        let f = Fragmenter::new(&pkt, 1500).unwrap();
        let frags = all(&f);
        let lens: Vec<_> = frags.iter().map(Vec::len).collect();
        assert_eq!(lens, [1500, 1500, 1060]);
        let fields: Vec<_> = frags
            .iter()
            .map(|b| {
                let p = ipv4::Packet::new_checked(&b[..]).unwrap();
                assert!(p.verify_checksum());
                assert_eq!(p.ident(), 0x1234);
                (p.frag_offset(), p.more_frags())
            })
            .collect();
        assert_eq!(fields, [(0, true), (1480, true), (2960, false)]);
    }

    #[test]
    fn a_fragment_is_refragmented_within_its_own_range() {
        let payload = [9u8; 2000];
        // A middle fragment (offset 800, MF set): every piece keeps MF.
        let pkt = packet(&[], &payload, 800, true);
        let f = Fragmenter::new(&pkt, 1000).unwrap();
        let frags = all(&f);
        assert_eq!(frags.len(), 3);
        for (i, b) in frags.iter().enumerate() {
            let p = ipv4::Packet::new_checked(&b[..]).unwrap();
            assert!(p.more_frags(), "fragment {i}");
        }
        let last = ipv4::Packet::new_checked(&frags[2][..]).unwrap();
        assert_eq!(last.frag_offset(), 800 + 2 * 976);
    }

    #[test]
    fn only_copied_options_go_into_later_fragments() {
        // NOP, record route (7, not copied, 7 bytes), security (130, copied,
        // 11 bytes), EOL, padding: 20 bytes.
        let mut opts = vec![1, 7, 7, 4, 0, 0, 0, 0, 130, 11];
        opts.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 9]);
        opts.push(0);
        assert_eq!(opts.len(), 20);
        let pkt = packet(&opts, &[5u8; 600], 0, false);
        let f = Fragmenter::new(&pkt, 300).unwrap();
        let frags = all(&f);
        let first = ipv4::Packet::new_checked(&frags[0][..]).unwrap();
        assert_eq!(first.options(), &opts[..]);
        for b in &frags[1..] {
            let p = ipv4::Packet::new_checked(&b[..]).unwrap();
            assert_eq!(p.header_len(), 32);
            assert_eq!(&p.options()[..11], &opts[8..19]);
            assert_eq!(&p.options()[11..], &[0; 1]);
            assert!(p.verify_checksum());
        }
    }

    #[test]
    fn refusals() {
        let pkt = packet(&[], &[0u8; 100], 0, false);
        assert_eq!(Fragmenter::new(&pkt, 120).unwrap().count(), 1);
        assert!(matches!(
            Fragmenter::new(&pkt, 27),
            Err(FragmentError::MtuTooSmall { .. })
        ));
        let mut df = pkt.clone();
        let mut p = ipv4::Packet::new_unchecked(&mut df[..]);
        p.set_dont_frag(true);
        p.fill_checksum();
        assert_eq!(
            Fragmenter::new(&df, 100).unwrap_err(),
            FragmentError::DontFragment
        );
        assert_eq!(Fragmenter::new(&df, 120).unwrap().count(), 1);
        let bad = packet(&[68, 9, 0, 0], &[0u8; 100], 0, false);
        assert_eq!(
            Fragmenter::new(&bad, 60).unwrap_err(),
            FragmentError::BadOptions
        );
        assert!(matches!(
            Fragmenter::new(&pkt[..10], 60),
            Err(FragmentError::Malformed(_))
        ));
        let high = packet(&[], &[0u8; 100], 65528, false);
        assert_eq!(
            Fragmenter::new(&high, 68).unwrap_err(),
            FragmentError::OffsetOverflow
        );
        let f = Fragmenter::new(&pkt, 68).unwrap();
        assert_eq!(
            f.emit(f.count(), &mut [0u8; 100]),
            Err(FragmentError::Buffer)
        );
        assert_eq!(f.emit(0, &mut [0u8; 10]), Err(FragmentError::Buffer));
    }

    #[test]
    fn a_packet_that_fits_is_copied_unchanged_even_if_not_a_multiple_of_8() {
        let pkt = packet(&[], &[3u8; 1479], 0, false);
        let f = Fragmenter::new(&pkt, 1500).unwrap();
        assert_eq!(all(&f), [pkt]);
    }
}
