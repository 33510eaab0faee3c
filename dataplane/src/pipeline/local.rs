//! Local delivery: ARP for our addresses, ICMP echo to the router (and to
//! pool addresses no session claims), NDP, and everything else addressed
//! to the router itself (counted `local_not_served`).

use super::*;

impl Pipeline {
    pub(super) fn arp(
        &mut self,
        ingress: PortId,
        f: &mut [u8],
        cls: &Classified,
        now: Timestamp,
        out: &mut Output,
    ) -> Disposition {
        let l3 = usize::from(cls.l3_offset);
        let Some(Ok(pkt)) = f.get(l3..).map(arp::Packet::new_checked) else {
            return Disposition::Drop(DropReason::Malformed);
        };
        // Only Ethernet/IPv4 ARP is ours to answer or learn from.
        let Ok(req) = arp::Repr::parse(&pkt) else {
            return Disposition::Drop(DropReason::ArpNotForUs);
        };
        let (op, smac) = (req.operation, req.source_hardware_addr.0);
        let (sip, tip) = (req.source_protocol_addr, req.target_protocol_addr);
        let port_mac = self.shared.ports[usize::from(ingress)].mac;
        let for_us = self.answers_arp(ingress, tip);
        let onlink = self.shared.config.ports[usize::from(ingress)]
            .ipv4
            .iter()
            .any(|c| c.contains(IpAddr::V4(sip)));
        // Learn the sender when the packet is about us (RFC 826 merge rule,
        // restricted to senders on one of our subnets): a reply sent to our
        // MAC confirms reachability, anything else is a solicitation
        // (`neighbor` module doc). A gratuitous ARP (sender address =
        // target address) updates an entry that exists.
        let garp = sip == tip && !for_us;
        let mut learned = false;
        if (for_us || garp) && onlink && !sip.is_unspecified() && !self.shared.is_own_v4(sip) {
            let ev = if garp {
                Evidence::GRATUITOUS_ARP
            } else if op == arp::operation::REPLY && wire::dst_mac(f) == port_mac {
                Evidence::ARP_REPLY
            } else {
                Evidence::SOLICITATION
            };
            learned = self.learn(ingress, IpAddr::V4(sip), smac, ev, now, out);
        }
        match op {
            arp::operation::REQUEST if for_us => {
                if wire::arp_to_reply(f, l3, port_mac) {
                    bump(&self.shared.counters.workers[self.worker].arp_replies);
                    Disposition::Tx(ingress)
                } else {
                    Disposition::Drop(DropReason::Malformed)
                }
            }
            arp::operation::REPLY if for_us => Disposition::Consumed,
            _ if learned => Disposition::Consumed,
            _ => Disposition::Drop(DropReason::ArpNotForUs),
        }
    }

    pub(super) fn local_v4(
        &mut self,
        ingress: PortId,
        f: &mut [u8],
        cls: &Classified,
        l2_mcast: bool,
    ) -> Step {
        let l3 = usize::from(cls.l3_offset);
        let Some((src, dst)) =
            wire::ipv4_view(f, l3, usize::from(cls.l3_end)).map(|p| (p.src_addr(), p.dst_addr()))
        else {
            return Step::Done(Disposition::Drop(DropReason::Malformed));
        };
        if src.is_multicast()
            || src.is_broadcast()
            || src.is_loopback()
            || self.shared.is_own_v4(src)
        {
            return Step::Done(Disposition::Drop(DropReason::Martian));
        }
        if dst.is_multicast() || dst.is_broadcast() || l2_mcast {
            return Step::Done(Disposition::Drop(DropReason::Multicast));
        }
        if !self.shared.is_own_v4(dst) {
            return Step::Continue;
        }
        if cls.l4 == L4Kind::Icmpv4 && cls.icmp_type_code == Some((8, 0)) && cls.frag.is_none() {
            let mac = self.shared.ports[usize::from(ingress)].mac;
            let (l4, end) = (usize::from(cls.l4_offset), usize::from(cls.l3_end));
            if wire::icmpv4_echo_to_reply(f, l3, l4, end, mac) {
                bump(&self.shared.counters.workers[self.worker].echo_replies);
                return Step::Done(Disposition::Tx(ingress));
            }
            return Step::Done(Disposition::Drop(DropReason::Malformed));
        }
        // Our address may also be a NAT pool address (masquerade to the
        // port address): let the NAT stage decide.
        if self.shared.nat.as_ref().is_some_and(|n| n.is_pool(dst)) {
            return Step::Continue;
        }
        Step::Done(Disposition::Drop(DropReason::LocalNotServed))
    }

    pub(super) fn local_v6(
        &mut self,
        ingress: PortId,
        f: &mut [u8],
        cls: &Classified,
        now: Timestamp,
        out: &mut Output,
    ) -> Step {
        let l3 = usize::from(cls.l3_offset);
        let (l4, end) = (usize::from(cls.l4_offset), usize::from(cls.l3_end));
        let Some((src, dst, hlim)) =
            wire::ipv6_view(f, l3, end).map(|p| (p.src_addr(), p.dst_addr(), p.hop_limit()))
        else {
            return Step::Done(Disposition::Drop(DropReason::Malformed));
        };
        if src.is_multicast() || src.is_loopback() || self.shared.is_own_v6(src) {
            return Step::Done(Disposition::Drop(DropReason::Martian));
        }
        let own = self.shared.is_own_v6(dst);
        let mcast = dst.is_multicast();
        if !own && !mcast {
            return Step::Continue;
        }
        // Local traffic only (not the forwarding path): the clone is cheap here.
        let shared = Arc::clone(&self.shared);
        let port = &shared.ports[usize::from(ingress)];
        match (cls.l4, cls.icmp_type_code) {
            // Neighbour solicitation (RFC 4861 §7.1.1: hop limit 255).
            (L4Kind::Icmpv6, Some((135, 0))) if hlim == 255 && end >= l4 + 24 => {
                let Some(ns) = wire::icmpv6_view(f, l4, end) else {
                    return Step::Done(Disposition::Drop(DropReason::Malformed));
                };
                let Some(target) = ns.target_addr() else {
                    return Step::Done(Disposition::Drop(DropReason::Malformed));
                };
                if !port.v6.contains(&target) {
                    return Step::Done(Disposition::Drop(DropReason::LocalNotServed));
                }
                let smac = wire::src_mac(f);
                let slla = ns.nd_lladdr(icmpv6::nd_option::SOURCE_LLADDR).map(|m| m.0);
                let mac = port.mac;
                let reply = if src.is_unspecified() {
                    // DAD probe: answer to all-nodes, unsolicited.
                    let all = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
                    wire::ndp_advert(mac, target, wire::ipv6_mcast_mac(all), all, false)
                } else {
                    if let Some(l) = slla {
                        self.learn(
                            ingress,
                            IpAddr::V6(src),
                            l,
                            Evidence::SOLICITATION,
                            now,
                            out,
                        );
                    }
                    wire::ndp_advert(mac, target, slla.unwrap_or(smac), src, true)
                };
                out.generated.push((ingress, reply));
                Step::Done(Disposition::Consumed)
            }
            // Neighbour advertisement.
            (L4Kind::Icmpv6, Some((136, 0))) if hlim == 255 && end >= l4 + 24 => {
                let Some(na) = wire::icmpv6_view(f, l4, end) else {
                    return Step::Done(Disposition::Drop(DropReason::Malformed));
                };
                let Some(target) = na.target_addr() else {
                    return Step::Done(Disposition::Drop(DropReason::Malformed));
                };
                let tlla = na
                    .nd_lladdr(icmpv6::nd_option::TARGET_LLADDR)
                    .map_or_else(|| wire::src_mac(f), |m| m.0);
                let ev = Evidence::advert(na.nd_flags());
                self.learn(ingress, IpAddr::V6(target), tlla, ev, now, out);
                Step::Done(Disposition::Consumed)
            }
            (L4Kind::Icmpv6, Some((128, 0))) if own && cls.frag.is_none() => {
                let mac = port.mac;
                if wire::icmpv6_echo_to_reply(f, l3, l4, end, dst, mac) {
                    bump(&self.shared.counters.workers[self.worker].echo_replies);
                    Step::Done(Disposition::Tx(ingress))
                } else {
                    Step::Done(Disposition::Drop(DropReason::Malformed))
                }
            }
            _ if mcast => Step::Done(Disposition::Drop(DropReason::Multicast)),
            _ => Step::Done(Disposition::Drop(DropReason::LocalNotServed)),
        }
    }

    /// Whether we answer ARP for `ip` on `port`: our own addresses there,
    /// and on outside ports the NAT pool / port-forward addresses.
    pub(super) fn answers_arp(&self, port: PortId, ip: Ipv4Addr) -> bool {
        let p = &self.shared.ports[usize::from(port)];
        p.v4.contains(&ip)
            || (p.role == Role::Outside && self.shared.nat.as_ref().is_some_and(|n| n.is_pool(ip)))
    }

    /// Turn the ICMP echo request `f` into its reply, back out of `ingress`.
    pub(super) fn answer_echo(
        &self,
        ingress: PortId,
        f: &mut [u8],
        cls: &Classified,
    ) -> Disposition {
        let mac = self.shared.ports[usize::from(ingress)].mac;
        let l3 = usize::from(cls.l3_offset);
        let (l4, end) = (usize::from(cls.l4_offset), usize::from(cls.l3_end));
        if wire::icmpv4_echo_to_reply(f, l3, l4, end, mac) {
            bump(&self.shared.counters.workers[self.worker].echo_replies);
            Disposition::Tx(ingress)
        } else {
            Disposition::Drop(DropReason::Malformed)
        }
    }

    pub(super) fn icmp_source_v4(&self, ingress: PortId) -> Option<Ipv4Addr> {
        self.shared.ports[usize::from(ingress)].v4.first().copied()
    }
}
