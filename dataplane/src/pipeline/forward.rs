//! L3 forwarding and L2 out: the TTL check before the NAT, the post-NAT
//! checks (ICMP 3/13, the stateful edge), the route lookup, the egress MTU
//! ([`super::mtu`]), the TTL decrement and the MAC rewrite from the
//! worker's next-hop cache or the neighbour table.

use super::*;

impl Pipeline {
    /// IPv4 forwarding up to the NAT: TTL check; without NAT, the whole
    /// forwarding path.
    pub(super) fn forward_v4(
        &mut self,
        ingress: PortId,
        f: &mut [u8],
        cls: &Classified,
        now: Timestamp,
        out: &mut Output,
    ) -> Pre {
        let l3 = usize::from(cls.l3_offset);
        let ttl = wire::ipv4_view(f, l3, usize::from(cls.l3_end)).map_or(0, |p| p.ttl());
        if ttl <= 1
            && self.shared.ports[usize::from(ingress)].role == Role::Outside
            && cls.l4 == L4Kind::Icmpv4
            && cls.icmp_type_code == Some((8, 0))
            && cls.frag.is_none()
            && let Some(nat) = &self.shared.nat
            && nat.is_pool(v4_dst(f, cls))
            && !nat.lock(self.worker).has_session(f, cls, now)
        {
            // For the gateway itself (see `after_nat_v4`): no TTL check, as
            // for a port address.
            return Pre::Done(self.answer_echo(ingress, f, cls));
        }
        if ttl <= 1 {
            // RFC 1812 §4.3.2.7: no ICMP error about an ICMP error or a
            // non-first fragment.
            let is_icmp_err = cls.l4 == L4Kind::Icmpv4
                && cls
                    .icmp_type_code
                    .is_some_and(|(t, _)| !matches!(t, 0 | 8 | 13 | 14));
            let non_first = cls.l4 == L4Kind::Fragment;
            if !is_icmp_err
                && !non_first
                && let Some(src) = self.icmp_source_v4(ingress)
            {
                let mac = self.shared.ports[usize::from(ingress)].mac;
                let peer = wire::src_mac(f);
                let e = wire::icmpv4_error(mac, peer, src, f, l3, usize::from(cls.l3_end), 11, 0);
                self.push_icmp_error(ingress, e, now, out);
            }
            return Pre::Done(Disposition::Drop(DropReason::TtlExceeded));
        }
        let dst_before = v4_dst(f, cls);
        if self.shared.nat.is_some() {
            return Pre::Nat(*cls, dst_before);
        }
        Pre::Done(self.route_v4(ingress, f, cls, now, out))
    }

    /// IPv4 after the NAT decided: drops (ICMP 3/13 when asked), the
    /// stateful-edge check, then routing.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn after_nat_v4(
        &mut self,
        ingress: PortId,
        f: &mut [u8],
        cls: &Classified,
        outcome: NatOutcome,
        dst_before: Ipv4Addr,
        now: Timestamp,
        out: &mut Output,
    ) -> Disposition {
        let l3 = usize::from(cls.l3_offset);
        match outcome {
            NatOutcome::Forward => {}
            NatOutcome::Held => return Disposition::Consumed,
            NatOutcome::Hairpin(w) => {
                return Disposition::HandOff {
                    worker: w,
                    hairpin: true,
                };
            }
            NatOutcome::Owner(w) => {
                return Disposition::HandOff {
                    worker: w,
                    hairpin: false,
                };
            }
            NatOutcome::Drop(DropReason::UnsolicitedInbound)
                if self.shared.ports[usize::from(ingress)].role == Role::Outside
                    && cls.l4 == L4Kind::Icmpv4
                    && cls.icmp_type_code == Some((8, 0))
                    && cls.frag.is_none()
                    && self
                        .shared
                        .nat
                        .as_ref()
                        .is_some_and(|n| n.is_pool(dst_before)) =>
            {
                // An echo request to a NAT address that matches no session
                // is for the gateway itself: answered like one to a port
                // address (operators ping their public addresses).
                return self.answer_echo(ingress, f, cls);
            }
            NatOutcome::Drop(r) => return Disposition::Drop(r),
            NatOutcome::DropWithIcmp(r) => {
                // RFC 5508 REQ-8: destination unreachable, code 13
                // (communication administratively prohibited).
                if let Some(src) = self.icmp_source_v4(ingress) {
                    let mac = self.shared.ports[usize::from(ingress)].mac;
                    let peer = wire::src_mac(f);
                    let e =
                        wire::icmpv4_error(mac, peer, src, f, l3, usize::from(cls.l3_end), 3, 13);
                    self.push_icmp_error(ingress, e, now, out);
                }
                return Disposition::Drop(r);
            }
        }
        let role = self.shared.ports[usize::from(ingress)].role;
        let dst_after = v4_dst(f, cls);
        // Stateful edge: from outside only what NAT translated goes in.
        if role == Role::Outside
            && dst_after == dst_before
            && self
                .shared
                .nat
                .as_ref()
                .is_some_and(|n| !n.passes_untranslated(dst_after))
        {
            return Disposition::Drop(DropReason::UnsolicitedInbound);
        }
        self.route_v4(ingress, f, cls, now, out)
    }

    pub(super) fn route_v4(
        &mut self,
        ingress: PortId,
        f: &mut [u8],
        cls: &Classified,
        now: Timestamp,
        out: &mut Output,
    ) -> Disposition {
        let dst = v4_dst(f, cls);
        let Some((egress, nh)) = self.shared.routes.lookup(IpAddr::V4(dst)) else {
            return Disposition::Drop(DropReason::NoRoute);
        };
        if !self.fits_mtu(egress, cls) {
            return self.too_big_v4(Some(ingress), (egress, nh), f, cls, true, now, out);
        }
        wire::ipv4_dec_ttl(f, usize::from(cls.l3_offset));
        self.l2_out(egress, nh, f, now, out)
    }

    pub(super) fn forward_v6(
        &mut self,
        ingress: PortId,
        f: &mut [u8],
        cls: &Classified,
        now: Timestamp,
        out: &mut Output,
    ) -> Disposition {
        let l3 = usize::from(cls.l3_offset);
        let ip = wire::ipv6_view(f, l3, usize::from(cls.l3_end));
        let (hlim, dst) = ip.map_or((0, Ipv6Addr::UNSPECIFIED), |p| {
            (p.hop_limit(), p.dst_addr())
        });
        if hlim <= 1 {
            let is_icmp_err =
                cls.l4 == L4Kind::Icmpv6 && cls.icmp_type_code.is_some_and(|(t, _)| t < 128);
            if !is_icmp_err
                && cls.l4 != L4Kind::Fragment
                && let Some(src) = self.shared.ports[usize::from(ingress)].v6.first().copied()
            {
                let mac = self.shared.ports[usize::from(ingress)].mac;
                let peer = wire::src_mac(f);
                let e = wire::icmpv6_time_exceeded(mac, peer, src, f, l3, usize::from(cls.l3_end));
                self.push_icmp_error(ingress, e, now, out);
            }
            return Disposition::Drop(DropReason::TtlExceeded);
        }
        if dst.segments()[0] & 0xffc0 == 0xfe80 {
            // Link-local destinations are never forwarded.
            return Disposition::Drop(DropReason::LocalNotServed);
        }
        let role = self.shared.ports[usize::from(ingress)].role;
        let allow_inbound = self.shared.config.ipv6.allow_inbound;
        match self
            .shared
            .v6flows
            .track(self.worker, cls, role, allow_inbound, now)
        {
            Ok(created) => {
                if created {
                    bump(&self.shared.counters.workers[self.worker].v6_flows_created);
                }
            }
            Err(r) => return Disposition::Drop(r),
        }
        let Some((egress, nh)) = self.shared.routes.lookup(IpAddr::V6(dst)) else {
            return Disposition::Drop(DropReason::NoRoute);
        };
        if !self.fits_mtu(egress, cls) {
            return self.too_big_v6(ingress, egress, f, cls, now, out);
        }
        wire::ipv6_dec_hlim(f, l3);
        self.l2_out(egress, nh, f, now, out)
    }

    pub(super) fn l2_out(
        &mut self,
        egress: PortId,
        nh: IpAddr,
        f: &mut [u8],
        now: Timestamp,
        out: &mut Output,
    ) -> Disposition {
        let src = self.shared.ports[usize::from(egress)].mac;
        match self.resolve(egress, nh, f, now, out) {
            Ok(mac) => {
                wire::set_macs(f, src, mac);
                Disposition::Tx(egress)
            }
            Err(d) => d,
        }
    }

    /// What `after_nat_v4` does for a `Forward` outcome when nothing needs
    /// more than the route table and the worker's next-hop cache: the
    /// stateful-edge check, TTL decrement (checksum updated incrementally),
    /// MAC rewrite. `None` (nothing written) when the edge check drops, no
    /// route matches or the next hop is not cached: `after_nat_v4` then
    /// does it all.
    #[inline(always)]
    pub(super) fn quick_forward_v4(
        &mut self,
        ingress: PortId,
        f: &mut [u8],
        cls: &Classified,
        dst_before: Ipv4Addr,
    ) -> Option<Disposition> {
        let l3 = usize::from(cls.l3_offset);
        let h = f.get(l3..l3 + 20)?;
        let dst = Ipv4Addr::new(h[16], h[17], h[18], h[19]);
        if h[8] == 0 {
            return None;
        }
        if self.shared.ports.get(usize::from(ingress))?.role == Role::Outside
            && dst == dst_before
            && self
                .shared
                .nat
                .as_ref()
                .is_some_and(|n| !n.passes_untranslated(dst))
        {
            return None;
        }
        let (egress, nh) = self.shared.routes.lookup_v4(dst)?;
        if !self.fits_mtu(egress, cls) {
            return None;
        }
        let mac = match self.nh_last {
            Some((p, ip, m)) if p == egress && ip == nh => m,
            _ => {
                let m = *self.nh_cache.get(&(egress, nh))?;
                self.nh_last = Some((egress, nh, m));
                m
            }
        };
        let src = self.shared.ports.get(usize::from(egress))?.mac;
        wire::ipv4_dec_ttl(f, l3)?;
        f[..6].copy_from_slice(&mac);
        f[6..12].copy_from_slice(&src);
        Some(Disposition::Tx(egress))
    }

    /// Route frames from the NAT (Ethernet frames whose MACs `l2_out`
    /// sets), decrementing the TTL of forwarded ones (`forwarded`), not of
    /// the NAT's own; queue them as generated frames. Drains `frames`.
    pub(super) fn route_nat_frames(
        &mut self,
        frames: &mut Vec<Vec<u8>>,
        forwarded: bool,
        now: Timestamp,
        out: &mut Output,
    ) {
        for mut f in frames.drain(..) {
            let Ok(cls) = wire::classify(&f) else {
                self.drop_count(DropReason::Malformed, 1);
                continue;
            };
            let l3 = usize::from(cls.l3_offset);
            let dst = v4_dst(&f, &cls);
            let Some((egress, nh)) = self.shared.routes.lookup(IpAddr::V4(dst)) else {
                self.drop_count(DropReason::NoRoute, 1);
                continue;
            };
            // The NAT's own ICMP errors (answers to held SYNs) are rate-limited
            // like the pipeline's.
            if !forwarded && mtu::is_icmpv4_error(&cls) && !self.icmp_allowed(egress, now) {
                continue;
            }
            if !self.fits_mtu(egress, &cls) {
                match self.too_big_v4(None, (egress, nh), &mut f, &cls, forwarded, now, out) {
                    Disposition::Drop(r) => self.drop_count(r, 1),
                    Disposition::Tx(_) | Disposition::Consumed | Disposition::HandOff { .. } => {}
                }
                continue;
            }
            if forwarded {
                wire::ipv4_dec_ttl(&mut f, l3);
            }
            match self.l2_out(egress, nh, &mut f, now, out) {
                Disposition::Tx(p) => out.generated.push((p, f)),
                Disposition::Drop(r) => self.drop_count(r, 1),
                // `l2_out` never hands a frame on.
                Disposition::Consumed | Disposition::HandOff { .. } => {}
            }
        }
    }
}
