//! ICMP errors (RFC 5508): found through the quoted packet, translated
//! outer header and quote, never creating or refreshing a session.

use super::*;

impl Nat {
    /// ICMP error: find the session through the embedded packet; translate
    /// outer destination (and source from inside) and the embedded header.
    /// Never creates, refreshes or removes a session (RFC 5508 REQ-6).
    pub(crate) fn icmp_error(
        &mut self,
        frame: &mut [u8],
        cls: &Classified,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        ingress: Side,
        now: u64,
    ) -> Verdict {
        let Some(emb) = rw::icmpv4_embedded_tuple(frame, cls)
            .ok()
            .and_then(|t| Tuple::from_five(&t))
        else {
            return self.other_traffic(src, dst, ingress, DropReason::Malformed);
        };
        let ek = emb.reversed();
        let k = key(&ek);
        let h = self.table.hash(&k);
        let found = self.lookup(k, h, now).and_then(|(id, dir)| {
            let s = self.table.get(id)?;
            Some(if dir == Direction::Reverse {
                s.orig
            } else {
                s.xlat.reversed()
            })
        });
        let Some(new_emb) = found else {
            return self.other_traffic(src, dst, ingress, DropReason::IcmpErrorNoSession);
        };
        // RFC 5508 REQ-3: a corrupted error is dropped, not translated.
        if let Err(r) = icmp_error_checksums(frame, cls) {
            return self.drop_(r);
        }
        let outer_src = if ingress == Side::Inside && self.is_inside(src) {
            new_emb.dst
        } else {
            src
        };
        // Embedded packet first (the check that can refuse), then the outer
        // header; each validates before writing.
        let n = new_emb;
        if rw::rewrite_icmpv4_embedded(frame, cls, n.src, n.sport, n.dst, n.dport).is_err()
            || rw::rewrite_ipv4_addrs(frame, cls, outer_src, n.src).is_err()
        {
            return self.drop_(DropReason::Malformed);
        }
        self.counters.icmp_errors += 1;
        Verdict::Forward
    }
}

/// RFC 5508 REQ-3 for an ICMPv4 error whose quote `icmp_error` already
/// located: the ICMP checksum over the whole message (skipped when the
/// error is itself a fragment, whose checksum covers the reassembled
/// message), then the quoted IPv4 header's checksum. One RFC 1071 sum
/// over the message; only errors about a session pay it.
pub(crate) fn icmp_error_checksums(frame: &[u8], cls: &Classified) -> Result<(), DropReason> {
    if rw::verify_l4(frame, cls).is_err() {
        return Err(DropReason::BadIcmpChecksum);
    }
    let l4 = usize::from(cls.l4_offset) + icmpv4::HEADER_LEN;
    let end = usize::from(cls.l3_end).min(frame.len());
    let ok = frame.get(l4..end).is_some_and(|q| {
        let ip = ipv4::Packet::new_unchecked(q);
        ip.check_header_len().is_ok() && ip.verify_checksum()
    });
    if ok {
        Ok(())
    } else {
        Err(DropReason::BadEmbeddedChecksum)
    }
}
