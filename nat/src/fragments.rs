//! Fragments through the NAT: the first fragment's translation recorded
//! (`frag::FragTable`), later ones rewritten the same way, held when they
//! come first; with several workers, sent on to the worker that
//! translates the datagram.

use super::*;

impl Nat {
    /// Several workers: the receiving worker hands the first fragment
    /// `frame` (classified as `cls`, arriving from `ingress`) of a
    /// fragmented datagram to worker `owner`, which owns its session;
    /// later fragments of the datagram carry no ports, so this worker
    /// remembers the datagram and its NAT answers them with
    /// [`Verdict::Owner`]. Returns the later fragments this worker held
    /// for it (they came first), untouched, for the caller to hand to
    /// `owner` after the first. No-op for anything but a first fragment.
    pub fn direct_fragment(
        &mut self,
        frame: &[u8],
        cls: &Classified,
        owner: u16,
        now: Timestamp,
    ) -> Vec<Vec<u8>> {
        let Some(fi) = cls.frag else {
            return Vec::new();
        };
        if !fi.more_fragments || cls.l4 == L4Kind::Fragment || cls.l3 != L3Kind::Ipv4 {
            return Vec::new();
        }
        let l3 = usize::from(cls.l3_offset);
        let Some(h) = frame.get(l3..l3 + 20) else {
            return Vec::new();
        };
        let ip = ipv4::Packet::new_unchecked(h);
        let t = Tuple {
            src: ip.src_addr(),
            dst: ip.dst_addr(),
            proto: ip.protocol(),
            sport: 0,
            dport: 0,
        };
        self.first_fragment(t, t, fi.id as u16, FragNext::Owner(owner), now.as_nanos())
    }

    /// Record the translation a first fragment decided; fragments held
    /// for it are rewritten into `released` (`next == Here`), returned
    /// untouched (`Owner`: the caller hands them on after the first), or
    /// dropped and counted (`Hairpin`).
    pub(crate) fn first_fragment(
        &mut self,
        from: Tuple,
        to: Tuple,
        id: u16,
        next: FragNext,
        now: u64,
    ) -> Vec<Vec<u8>> {
        let key = FragKey {
            src: from.src,
            dst: from.dst,
            proto: from.proto,
            id,
        };
        let x = FragXlat {
            src: to.src,
            dst: to.dst,
            next,
        };
        let held = self.frags.record(key, x, now);
        if held.is_empty() {
            return Vec::new();
        }
        match next {
            FragNext::Here => {}
            FragNext::Owner(_) => return held.into_iter().map(|h| h.frame).collect(),
            FragNext::Hairpin(_) => {
                // Held here before the first fragment showed that the
                // datagram is a hairpin another worker finishes: not handed
                // on (counted).
                for _ in held {
                    self.drop_(DropReason::FragmentOtherWorker);
                }
                return Vec::new();
            }
        }
        let mut out = Vec::with_capacity(held.len());
        for mut h in held {
            // Held frames are copies: classify again (slow path, out of order only).
            let ok = net::classify(&h.frame).is_ok_and(|c| {
                c.l3_offset as usize == h.l3_offset
                    && rw::rewrite_ipv4_addrs(&mut h.frame, &c, x.src, x.dst).is_ok()
            });
            if ok {
                self.counters.fragments += 1;
                out.push(h.frame);
            } else {
                self.drop_(DropReason::Malformed);
            }
        }
        self.released.append(&mut out);
        Vec::new()
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn non_first_fragment(
        &mut self,
        frame: &mut [u8],
        cls: &Classified,
        l3: usize,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        proto: u8,
        ingress: Side,
        now: u64,
    ) -> Verdict {
        let Some(fi) = cls.frag else {
            return self.drop_(DropReason::Malformed);
        };
        let key = FragKey {
            src,
            dst,
            proto,
            id: fi.id as u16,
        };
        if let Some(x) = self.frags.lookup(&key, now) {
            if let FragNext::Owner(w) = x.next {
                return Verdict::Owner(w);
            }
            if rw::rewrite_ipv4_addrs(frame, cls, x.src, x.dst).is_err() {
                return self.drop_(DropReason::Malformed);
            }
            self.counters.fragments += 1;
            return match x.next {
                FragNext::Hairpin(w) => Verdict::HandOff(w),
                _ => Verdict::Forward,
            };
        }
        // Unknown datagram: only hold what NAT would translate.
        let ours = match ingress {
            Side::Inside => self.is_inside(src) && !self.is_inside(dst),
            Side::Outside => self.is_nat_address(dst),
        };
        if !ours {
            self.counters.untouched += 1;
            return Verdict::Forward;
        }
        match self.frags.hold(key, l3, frame, now) {
            Ok(()) => self.drop_(DropReason::FragmentHeld),
            Err(_) => self.drop_(DropReason::FragmentBudget),
        }
    }
}
