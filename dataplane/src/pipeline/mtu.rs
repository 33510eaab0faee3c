//! The egress MTU step of L3 forwarding, and the rate limit on generated
//! ICMP errors.
//!
//! A frame leaving a port (routed or translated) whose IP packet is longer
//! than the port's `mtu`:
//! - IPv4, DF clear: fragmented (RFC 791 §2.3, RFC 1812 §5.2.6) after
//!   translation and TTL decrement, by `net::fragment::Fragmenter`; each
//!   fragment leaves through the normal L2 step as a generated frame, the
//!   original is consumed (counters `fragmented`, `fragments`);
//! - IPv4, DF set: dropped (`frag_needed_df`) and answered with ICMP
//!   destination unreachable, fragmentation needed (3/4) carrying the
//!   egress MTU (RFC 1191 §4). The error quotes the packet as it is after
//!   the NAT, so it goes through the NAT (as if it arrived from the egress
//!   side) to reach the untranslated sender with the original packet
//!   quoted (RFC 5508 §3.2), and is then routed like any frame;
//! - IPv6: dropped (`packet_too_big`) and answered with ICMPv6 Packet Too
//!   Big carrying the MTU (RFC 8201, RFC 4443 §3.2) out of the ingress port.
//!
//! No error is sent about an ICMP error or a non-first IPv4 fragment (RFC
//! 1812 §4.3.2.7, RFC 4443 §2.4 (e)). Every ICMP error the pipeline
//! generates (and the NAT's own, routed by `route_nat_frames`) draws a token from the bucket of the port it is sent on
//! ([`Pipeline::icmp_allowed`], RFC 1812 §4.3.2.8); without one it is not
//! sent (`icmp_rate_limited`).
//!
//! Cost: the check is one comparison per forwarded frame (the classified
//! IP length against the port's MTU); everything else is the slow path and
//! allocates one `Vec` per fragment or error.

use core::net::{IpAddr, Ipv4Addr};

use net::fragment::Fragmenter;
use net::{Classified, L4Kind};

use super::{Disposition, DropReason, Pipeline, PortId};
use crate::Timestamp;
use crate::metrics::{add, bump};
use crate::natglue::NatOutcome;
use crate::wire;

/// The IP packet's length (header included) of a classified frame.
#[inline]
fn ip_len(cls: &Classified) -> usize {
    usize::from(cls.l3_end.saturating_sub(cls.l3_offset))
}

/// Whether the classified IPv4 frame is an ICMP error message.
pub(super) fn is_icmpv4_error(cls: &Classified) -> bool {
    cls.l4 == L4Kind::Icmpv4
        && cls
            .icmp_type_code
            .is_some_and(|(t, _)| net::icmpv4::is_error(t))
}

/// Whether an ICMPv4 error may be sent about this packet (RFC 1812
/// §4.3.2.7): not about an ICMP error, not about a non-first fragment.
pub(super) fn may_answer_v4(cls: &Classified) -> bool {
    !is_icmpv4_error(cls) && cls.l4 != L4Kind::Fragment
}

impl Pipeline {
    /// Whether the IP packet of the classified frame fits `egress`'s MTU.
    /// O(1).
    #[inline]
    pub(super) fn fits_mtu(&self, egress: PortId, cls: &Classified) -> bool {
        self.shared
            .ports
            .get(usize::from(egress))
            .is_none_or(|p| ip_len(cls) <= usize::from(p.mtu))
    }

    /// Takes a token from `port`'s ICMP error bucket at `now`; `false` (and
    /// an `icmp_rate_limited` drop counted) when it is empty.
    pub(super) fn icmp_allowed(&self, port: PortId, now: Timestamp) -> bool {
        let ok = self
            .shared
            .icmp_buckets
            .get(usize::from(port))
            .is_some_and(|b| b.lock().try_take(now));
        if !ok {
            self.drop_count(DropReason::IcmpRateLimited, 1);
        }
        ok
    }

    /// An IPv4 frame (classified `cls`, routed to `egress` via `nh`) longer
    /// than `egress`'s MTU: fragments (DF clear; the TTL is decremented
    /// first when `dec_ttl`) or ICMP fragmentation needed (DF set) about
    /// the packet as received. `ingress`: where it arrived (its address is
    /// the error's source), `None` for frames the NAT released. Returns the
    /// original frame's disposition: `Consumed` when fragmented.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn too_big_v4(
        &mut self,
        ingress: Option<PortId>,
        (egress, nh): (PortId, IpAddr),
        f: &mut [u8],
        cls: &Classified,
        dec_ttl: bool,
        now: Timestamp,
        out: &mut super::Output,
    ) -> Disposition {
        let (l3, end) = (usize::from(cls.l3_offset), usize::from(cls.l3_end));
        let mtu = self.shared.ports[usize::from(egress)].mtu;
        let Some(df) = wire::ipv4_view(f, l3, end).map(|p| p.dont_frag()) else {
            return Disposition::Drop(DropReason::Malformed);
        };
        if df {
            if may_answer_v4(cls) {
                let from = ingress.unwrap_or(egress);
                self.frag_needed(from, egress, f, cls, mtu, now, out);
            }
            return Disposition::Drop(DropReason::FragNeededDf);
        }
        if dec_ttl {
            wire::ipv4_dec_ttl(f, l3);
        }
        let Some(Ok(plan)) = f.get(l3..end).map(|p| Fragmenter::new(p, usize::from(mtu))) else {
            return Disposition::Drop(DropReason::CannotFragment);
        };
        let c = &self.shared.counters.workers[self.worker];
        bump(&c.fragmented);
        add(&c.fragments, plan.count() as u64);
        for i in 0..plan.count() {
            let mut frag = vec![0u8; l3 + plan.fragment_len(i)];
            frag[..l3].copy_from_slice(&f[..l3]);
            if plan.emit(i, &mut frag[l3..]).is_err() {
                self.drop_count(DropReason::CannotFragment, 1);
                continue;
            }
            match self.l2_out(egress, nh, &mut frag, now, out) {
                Disposition::Tx(p) => out.generated.push((p, frag)),
                Disposition::Drop(r) => self.drop_count(r, 1),
                Disposition::Consumed | Disposition::HandOff { .. } => {}
            }
        }
        Disposition::Consumed
    }

    /// ICMP 3/4 with `mtu` about the (possibly translated) IPv4 packet of
    /// `f`, from `from`'s address: through the NAT as if from `egress`'s
    /// side, then routed to the sender; rate-limited on the port it leaves.
    ///
    /// Takes the NAT's lock (once): must not run while this thread holds
    /// it (the pipeline calls it in pass 3 and from `route_nat_frames`,
    /// both after the NAT pass released the lock).
    #[allow(clippy::too_many_arguments)]
    fn frag_needed(
        &mut self,
        from: PortId,
        egress: PortId,
        f: &[u8],
        cls: &Classified,
        mtu: u16,
        now: Timestamp,
        out: &mut super::Output,
    ) {
        let (l3, end) = (usize::from(cls.l3_offset), usize::from(cls.l3_end));
        let ports = &self.shared.ports;
        let Some(src) = ports[usize::from(from)].v4.first().copied() else {
            return;
        };
        let mac = ports[usize::from(from)].mac;
        let Some(mut e) = wire::icmpv4_frag_needed(mac, mac, src, f, (l3, end), mtu) else {
            return;
        };
        let Ok(ecls) = wire::classify(&e) else {
            return;
        };
        if let Some(nat) = &self.shared.nat {
            let side = ports[usize::from(egress)].role;
            let o = nat.lock(self.worker).process(&mut e, &ecls, side, now);
            if o != NatOutcome::Forward {
                return;
            }
        }
        let dst = wire::ipv4_view(&e, usize::from(ecls.l3_offset), usize::from(ecls.l3_end))
            .map_or(Ipv4Addr::UNSPECIFIED, |p| p.dst_addr());
        let Some((port, nh)) = self.shared.routes.lookup(IpAddr::V4(dst)) else {
            self.drop_count(DropReason::NoRoute, 1);
            return;
        };
        if !self.icmp_allowed(port, now) {
            return;
        }
        match self.l2_out(port, nh, &mut e, now, out) {
            Disposition::Tx(p) => out.generated.push((p, e)),
            Disposition::Drop(r) => self.drop_count(r, 1),
            Disposition::Consumed | Disposition::HandOff { .. } => {}
        }
    }

    /// An IPv6 frame longer than `egress`'s MTU: dropped, with ICMPv6 Packet
    /// Too Big (rate-limited) back out of `ingress` to its source.
    pub(super) fn too_big_v6(
        &mut self,
        ingress: PortId,
        egress: PortId,
        f: &[u8],
        cls: &Classified,
        now: Timestamp,
        out: &mut super::Output,
    ) -> Disposition {
        let is_icmp_err =
            cls.l4 == L4Kind::Icmpv6 && cls.icmp_type_code.is_some_and(|(t, _)| t < 128);
        let port = &self.shared.ports[usize::from(ingress)];
        if !is_icmp_err
            && let Some(src) = port.v6.first().copied()
            && self.icmp_allowed(ingress, now)
        {
            let mtu = self.shared.ports[usize::from(egress)].mtu;
            let ends = (usize::from(cls.l3_offset), usize::from(cls.l3_end));
            if let Some(e) =
                wire::icmpv6_packet_too_big(port.mac, wire::src_mac(f), src, f, ends, mtu)
            {
                out.generated.push((ingress, e));
            }
        }
        Disposition::Drop(DropReason::PacketTooBig)
    }

    /// A generated ICMP error on `port` if its bucket allows (the TTL and
    /// NAT errors of the other stages).
    pub(super) fn push_icmp_error(
        &self,
        port: PortId,
        e: Option<Vec<u8>>,
        now: Timestamp,
        out: &mut super::Output,
    ) {
        if let Some(e) = e
            && self.icmp_allowed(port, now)
        {
            out.generated.push((port, e));
        }
    }
}
