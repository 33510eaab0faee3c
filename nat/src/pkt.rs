// TEAM NOTE FROM THE LEAD (17:10 UTC): `net` now provides all of this (commit 16124fc):
// net::classify / Classified::five_tuple, net::checksum (Delta incremental updates),
// net::rewrite (rewrite_ipv4_src/dst[_addr], rewrite_icmpv4_embedded_src/dst, verify_*/fill_*),
// net::build (ethernet/ipv4/ipv6/arp frames, udp4/tcp4/icmp4_echo/icmp4_error, v6 builders) and the
// header views + Reprs. Please switch to them and delete this local copy (one implementation,
// tested once), unless a measured gap remains — then say so in your report. Remove this note.
//! Local IPv4 rewrite and checksum helpers.
//!
//! NOTE: the `net` crate is meant to provide these (`net::checksum` NAT
//! rewrite helpers); they were not available when this crate was written, so
//! NAT carries this small, self-contained version (RFC 1071 sum, RFC 1624
//! incremental update). Every access is bounds-checked: a short or
//! malformed frame yields `Err(Malformed)`, never a panic, and on error the
//! frame is left unmodified (all checks happen before the first write).

use core::net::Ipv4Addr;

/// The frame is too short or inconsistent for the rewrite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed packet for NAT rewrite")]
pub struct Malformed;

/// Ones-complement sum of `data` (RFC 1071), not folded.
#[must_use]
pub fn sum(data: &[u8]) -> u32 {
    let mut s: u64 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        s += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        s += u64::from(*b) << 8;
    }
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u32
}

/// Fold a 32-bit sum to 16 bits.
#[must_use]
pub fn fold(mut s: u32) -> u16 {
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// Full internet checksum of `data`.
#[must_use]
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(data))
}

/// RFC 1624 eqn. 3: checksum after a 16-bit word changes from `old` to `new`.
#[must_use]
pub fn incr16(ck: u16, old: u16, new: u16) -> u16 {
    !fold(u32::from(!ck) + u32::from(!old) + u32::from(new))
}

/// Incremental update for a 32-bit field (an IPv4 address).
#[must_use]
pub fn incr32(ck: u16, old: u32, new: u32) -> u16 {
    let ck = incr16(ck, (old >> 16) as u16, (new >> 16) as u16);
    incr16(ck, old as u16, new as u16)
}

/// Incremental update for a changed region whose old and new (unfolded)
/// sums are known (RFC 1624 generalised to many words).
#[must_use]
pub fn incr_sum(ck: u16, old_sum: u32, new_sum: u32) -> u16 {
    !fold(u32::from(!ck) + u32::from(!fold(old_sum)) + new_sum)
}

fn rd16(b: &[u8], o: usize) -> u16 {
    u16::from_be_bytes([b[o], b[o + 1]])
}
fn wr16(b: &mut [u8], o: usize, v: u16) {
    b[o..o + 2].copy_from_slice(&v.to_be_bytes());
}
fn rd32(b: &[u8], o: usize) -> u32 {
    u32::from_be_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
fn wr32(b: &mut [u8], o: usize, v: u32) {
    b[o..o + 4].copy_from_slice(&v.to_be_bytes());
}

/// IP protocol numbers.
pub const TCP: u8 = 6;
pub const UDP: u8 = 17;
pub const ICMP: u8 = 1;

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
}

/// Offsets of an L4 header's port/identifier and checksum fields.
fn l4_fields(proto: u8) -> Option<(usize, usize, usize, bool)> {
    // (sport offset, dport offset, checksum offset, pseudo-header covered)
    match proto {
        TCP => Some((0, 2, 16, true)),
        UDP => Some((0, 2, 6, true)),
        ICMP => Some((4, 4, 2, false)),
        _ => None,
    }
}

/// Rewrite the addresses (and, with `l4`, ports / ICMP identifier) of the
/// IPv4 packet at `l3` from `from` to `to`, fixing the IP checksum and the
/// L4 checksum incrementally (UDP checksum 0 stays 0). `l4` is the L4 header
/// offset when this packet carries it (not for non-first fragments).
///
/// # Errors
/// `Malformed` if the headers do not fit in `frame` (nothing written).
pub fn rewrite(
    frame: &mut [u8],
    l3: usize,
    l4: Option<usize>,
    from: &Tuple,
    to: &Tuple,
) -> Result<(), Malformed> {
    if frame.len() < l3 + 20 {
        return Err(Malformed);
    }
    let l4f = match l4 {
        Some(o) => {
            let (sp, dp, ck, pseudo) = l4_fields(from.proto).ok_or(Malformed)?;
            let need = if from.proto == TCP { 18 } else { 8 };
            if frame.len() < o + need {
                return Err(Malformed);
            }
            Some((o, sp, dp, ck, pseudo))
        }
        None => None,
    };
    let (os, od) = (u32::from(from.src), u32::from(from.dst));
    let (ns, nd) = (u32::from(to.src), u32::from(to.dst));
    let mut ipck = rd16(frame, l3 + 10);
    ipck = incr32(ipck, os, ns);
    ipck = incr32(ipck, od, nd);
    wr16(frame, l3 + 10, ipck);
    wr32(frame, l3 + 12, ns);
    wr32(frame, l3 + 16, nd);
    if let Some((o, sp, dp, cko, pseudo)) = l4f {
        let old_ck = rd16(frame, o + cko);
        let skip = from.proto == UDP && old_ck == 0;
        let mut ck = old_ck;
        if pseudo {
            ck = incr32(ck, os, ns);
            ck = incr32(ck, od, nd);
        }
        if sp == dp {
            // ICMP identifier: one field. Echo request carries sport, reply dport
            // — NAT keeps both equal in its tuples.
            let old = rd16(frame, o + sp);
            ck = incr16(ck, old, to.sport);
            wr16(frame, o + sp, to.sport);
        } else {
            ck = incr16(ck, rd16(frame, o + sp), to.sport);
            ck = incr16(ck, rd16(frame, o + dp), to.dport);
            wr16(frame, o + sp, to.sport);
            wr16(frame, o + dp, to.dport);
        }
        if !skip {
            if from.proto == UDP && ck == 0 {
                ck = 0xffff;
            }
            wr16(frame, o + cko, ck);
        }
    }
    Ok(())
}

/// The packet embedded in an ICMPv4 error, located and parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Embedded {
    /// Offset of the embedded IPv4 header.
    pub l3: usize,
    /// Offset of the embedded L4 header.
    pub l4: usize,
    /// Its tuple (ports / identifier).
    pub tuple: Tuple,
}

/// ICMPv4 error types NAT translates (RFC 5508 REQ-3).
#[must_use]
pub fn is_icmp_error(ty: u8) -> bool {
    matches!(ty, 3 | 4 | 5 | 11 | 12)
}

/// Parse the packet embedded in the ICMP error at `l4` (message ends at `end`).
///
/// # Errors
/// `Malformed` unless an IPv4 header and 8 bytes of TCP/UDP/ICMP follow.
pub fn parse_embedded(frame: &[u8], l4: usize, end: usize) -> Result<Embedded, Malformed> {
    let end = end.min(frame.len());
    let e3 = l4 + 8;
    if end < e3 + 20 || frame[e3] >> 4 != 4 {
        return Err(Malformed);
    }
    let ihl = usize::from(frame[e3] & 0x0f) * 4;
    let e4 = e3 + ihl;
    if ihl < 20 || end < e4 + 8 {
        return Err(Malformed);
    }
    // A non-first fragment carries no ports.
    if rd16(frame, e3 + 6) & 0x1fff != 0 {
        return Err(Malformed);
    }
    let proto = frame[e3 + 9];
    let (sport, dport) = match proto {
        TCP | UDP => (rd16(frame, e4), rd16(frame, e4 + 2)),
        ICMP => {
            // Only query messages (echo) carry an identifier worth translating.
            if !matches!(frame[e4], 0 | 8) {
                return Err(Malformed);
            }
            let id = rd16(frame, e4 + 4);
            (id, id)
        }
        _ => return Err(Malformed),
    };
    Ok(Embedded {
        l3: e3,
        l4: e4,
        tuple: Tuple {
            src: Ipv4Addr::from(rd32(frame, e3 + 12)),
            dst: Ipv4Addr::from(rd32(frame, e3 + 16)),
            proto,
            sport,
            dport,
        },
    })
}

/// Translate an ICMP error: the outer source/destination become `outer_src`
/// / `outer_dst`, the embedded packet's tuple becomes `to`. Fixes the outer
/// IP checksum, the embedded IP checksum, the embedded L4 checksum when it
/// lies within the quoted bytes (UDP 0 stays 0), and the outer ICMP checksum
/// (RFC 5508 REQ-3/4/5).
///
/// # Errors
/// `Malformed` if offsets do not fit (nothing written).
#[allow(clippy::too_many_arguments)]
pub fn rewrite_icmp_error(
    frame: &mut [u8],
    l3: usize,
    l4: usize,
    end: usize,
    emb: &Embedded,
    outer_src: Ipv4Addr,
    outer_dst: Ipv4Addr,
    to: &Tuple,
) -> Result<(), Malformed> {
    let end = end.min(frame.len());
    if frame.len() < l3 + 20 || end < l4 + 8 || emb.l4 + 8 > end {
        return Err(Malformed);
    }
    // Outer IP header.
    let (os, od) = (rd32(frame, l3 + 12), rd32(frame, l3 + 16));
    let (ns, nd) = (u32::from(outer_src), u32::from(outer_dst));
    let mut ipck = rd16(frame, l3 + 10);
    ipck = incr32(ipck, os, ns);
    ipck = incr32(ipck, od, nd);
    wr16(frame, l3 + 10, ipck);
    wr32(frame, l3 + 12, ns);
    wr32(frame, l3 + 16, nd);

    // The changed region of the ICMP message (even-aligned from l4).
    let region_end = {
        let want = (emb.l4 + 18).min(end);
        if (want - l4) % 2 == 1 && want != end {
            want - 1
        } else {
            want
        }
    };
    let old_sum = sum(&frame[emb.l3..region_end]);

    let from = emb.tuple;
    // Embedded IP header.
    let (es, ed) = (u32::from(from.src), u32::from(from.dst));
    let (nes, ned) = (u32::from(to.src), u32::from(to.dst));
    let mut eck = rd16(frame, emb.l3 + 10);
    eck = incr32(eck, es, nes);
    eck = incr32(eck, ed, ned);
    wr16(frame, emb.l3 + 10, eck);
    wr32(frame, emb.l3 + 12, nes);
    wr32(frame, emb.l3 + 16, ned);
    // Embedded L4.
    let o = emb.l4;
    match from.proto {
        TCP | UDP => {
            let cko = if from.proto == TCP { 16 } else { 6 };
            if o + cko + 2 <= end {
                let old_ck = rd16(frame, o + cko);
                if !(from.proto == UDP && old_ck == 0) {
                    let mut ck = incr32(old_ck, es, nes);
                    ck = incr32(ck, ed, ned);
                    ck = incr16(ck, from.sport, to.sport);
                    ck = incr16(ck, from.dport, to.dport);
                    if from.proto == UDP && ck == 0 {
                        ck = 0xffff;
                    }
                    wr16(frame, o + cko, ck);
                }
            }
            wr16(frame, o, to.sport);
            wr16(frame, o + 2, to.dport);
        }
        ICMP => {
            let ck = incr16(rd16(frame, o + 2), from.sport, to.sport);
            wr16(frame, o + 2, ck);
            wr16(frame, o + 4, to.sport);
        }
        _ => {}
    }
    let new_sum = sum(&frame[emb.l3..region_end]);
    let ick = incr_sum(rd16(frame, l4 + 2), old_sum, new_sum);
    wr16(frame, l4 + 2, ick);
    Ok(())
}

/// Read TCP flags of the TCP header at `l4`, if present.
#[must_use]
pub fn tcp_flags(frame: &[u8], l4: usize) -> Option<u8> {
    frame.get(l4 + 13).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incremental_matches_full() {
        let mut data: Vec<u8> = (0..40u8).map(|i| i.wrapping_mul(37)).collect();
        data[10] = 0;
        data[11] = 0;
        let ck = checksum(&data);
        data[10..12].copy_from_slice(&ck.to_be_bytes());
        assert_eq!(checksum(&data), 0);
        let old = rd32(&data, 12);
        let new = 0xcb00_7101;
        let ck2 = incr32(ck, old, new);
        wr32(&mut data, 12, new);
        data[10..12].copy_from_slice(&ck2.to_be_bytes());
        assert_eq!(checksum(&data), 0);
    }

    #[test]
    fn rejects_short() {
        let mut f = [0u8; 30];
        let t = Tuple {
            src: Ipv4Addr::UNSPECIFIED,
            dst: Ipv4Addr::UNSPECIFIED,
            proto: TCP,
            sport: 1,
            dport: 2,
        };
        assert_eq!(rewrite(&mut f, 14, Some(34), &t, &t), Err(Malformed));
        assert_eq!(f, [0u8; 30]);
        assert_eq!(parse_embedded(&f, 14, 30), Err(Malformed));
    }
}
