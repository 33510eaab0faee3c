//! Hand-off between workers: which frames another worker owns (their NAT
//! session or IPv6 flow is its), and running the frames other workers
//! handed over.

use super::*;

impl Pipeline {
    /// The worker owning the NAT session or IPv6 flow of frame `f`
    /// (classified as `cls`, unicast to the port) received on `ingress`,
    /// if it is not this one. IPv6: the worker of the inside host (the
    /// source from an inside port, the destination from outside).
    #[inline]
    pub(super) fn foreign_owner(
        &self,
        ingress: PortId,
        f: &[u8],
        cls: &Classified,
    ) -> Option<usize> {
        let port = self.shared.ports.get(usize::from(ingress))?;
        // Only unicast frames for this port go on: the rest (not for us,
        // broadcast, multicast) is decided here without a hand-off.
        if f.get(..6)? != port.mac {
            return None;
        }
        let w = match cls.l3 {
            L3Kind::Ipv6 => {
                let t = cls.tuple?;
                let host = match (port.role, t.src, t.dst) {
                    (Role::Inside, IpAddr::V6(a), _) | (Role::Outside, _, IpAddr::V6(a)) => a,
                    _ => return None,
                };
                if self.is_own_v6_addr(host) {
                    return None;
                }
                crate::v6flow::owner(host, self.shared.v6flows.workers())
            }
            _ => self.shared.nat.as_ref()?.owner_of(f, cls, port.role)?,
        };
        (w != self.worker).then_some(w)
    }

    fn is_own_v6_addr(&self, a: Ipv6Addr) -> bool {
        self.shared.ports.iter().any(|p| p.v6.contains(&a))
    }

    /// Run frames another worker handed to this one
    /// ([`Disposition::HandOff`]), received on `ingress`: with `hairpin`
    /// false the whole pipeline (as [`Pipeline::process`], without
    /// handing any on); with `hairpin` true the second half of a hairpin
    /// (the NAT translates the destination, then L3 forwarding). Counted
    /// as handed in, not as received. Same `out` contract as `process`.
    pub fn process_handoff<F: Frame>(
        &mut self,
        ingress: PortId,
        hairpin: bool,
        frames: &mut [F],
        now: Timestamp,
        out: &mut Output,
    ) {
        if !hairpin {
            self.handed = true;
            self.process_prefetched(ingress, frames, &[], now, out);
            self.handed = false;
            return;
        }
        out.clear();
        for (port, f) in self.pending.drain(..) {
            out.generated.push((port, f));
            out.generated_cause.push(None);
        }
        add(
            &self.shared.counters.workers[self.worker].handed_in,
            frames.len() as u64,
        );
        let ok_port = usize::from(ingress) < self.shared.ports.len();
        for (i, frame) in frames.iter_mut().enumerate() {
            let f = frame.data_mut();
            let before = out.generated.len();
            let d = match (ok_port, wire::classify(f), &self.shared.nat) {
                (true, Ok(cls), Some(nat)) if cls.l3 == L3Kind::Ipv4 => {
                    let dst = v4_dst(f, &cls);
                    let outcome = nat.lock(self.worker).process_hairpin(f, &cls, now);
                    self.after_nat_v4(ingress, f, &cls, outcome, dst, now, out)
                }
                _ => Disposition::Drop(DropReason::Malformed),
            };
            for _ in before..out.generated.len() {
                out.generated_cause.push(Some(i as u32));
            }
            let d = if self.shared.vlan_any {
                self.vlan_egress(frame, d)
            } else {
                d
            };
            self.account(d);
            out.dispositions.push(d);
        }
        self.vlan_tag_generated(&mut out.generated, Some(&mut out.generated_cause), 0);
        let c = &self.shared.counters.workers[self.worker];
        for (p, _) in &out.generated {
            if let Some(t) = c.tx.get(usize::from(*p)) {
                bump(t);
            }
            bump(&c.generated);
        }
    }

    /// Count `n` frames a driver could not hand to their owner (its queue
    /// to that worker was full) as dropped.
    pub fn handoff_dropped(&self, n: u64) {
        self.drop_count(DropReason::HandoffQueueFull, n);
    }
}
