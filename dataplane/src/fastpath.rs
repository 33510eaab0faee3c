//! The established-flow fast path: a per-worker cache of translations the
//! NAT already made, and a lean parser for the frames it can serve.
//!
//! A frame takes the fast path when it is an untagged, option-less,
//! unfragmented IPv4 TCP/UDP packet ([`lean`]: what `net::classify` would
//! report for it, built from fixed offsets) whose (ingress port, 5-tuple)
//! is in the worker's [`FlowCache`], and the NAT confirms, reading the
//! session's key cell without a lock (`nat::Nat::fast_check`), that
//! processing it would translate it to the cached tuple and change nothing.
//! The cache entry also holds the egress port and next-hop MAC that
//! routing chose, valid while the shared neighbour table's generation is
//! unchanged. The pipeline then rewrites, decrements the TTL and sets the
//! MACs itself: the same bytes and counters as the general stages, which
//! every other frame takes (see `Pipeline::cached` for the per-frame
//! conditions).
//!
//! The cache is set-associative by a hash of the key, four ways per set
//! (64-byte entries, a set in four cache lines), and
//! only filled from frames the general path translated and forwarded by a
//! session lookup; an entry is a hint — a stale one fails the NAT's check or
//! the neighbour generation and the frame takes the general path (which
//! refills it).

use core::net::{IpAddr, Ipv4Addr};

use net::{Classified, FiveTuple, L3Kind, L4Kind};

use crate::pipeline::PortId;
use crate::wire::Mac;

/// What [`lean`] found in a frame: its classification (equal to
/// `net::classify`'s), cache key words and TCP flags (0 for UDP).
#[derive(Debug, Clone, Copy)]
pub struct Lean {
    pub cls: Classified,
    pub key: (u64, u64),
    pub tcp_flags: u8,
    pub ttl: u8,
}

#[inline(always)]
fn be16(f: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([f[i], f[i + 1]])
}

/// Parses `f` if it is an untagged IPv4 frame with a 20-byte header, not a
/// fragment, carrying a TCP or UDP header that `net::classify` accepts;
/// `None` for anything else (the general path decides those). The
/// classification is exactly `net::classify(f)`'s (a property test checks
/// it). Reads the first 54 bytes at most.
#[inline]
pub fn lean(f: &[u8]) -> Option<Lean> {
    const L3: usize = 14;
    const L4: usize = L3 + 20;
    if f.len() < L4 + 8 || f.len() > usize::from(u16::MAX) {
        return None;
    }
    if f[12] != 0x08 || f[13] != 0x00 || f[L3] != 0x45 {
        return None;
    }
    let tl = usize::from(be16(f, L3 + 2));
    if tl < 20 || tl > f.len() - L3 || be16(f, L3 + 6) & 0x3fff != 0 {
        return None;
    }
    let proto = f[L3 + 9];
    let seg = tl - 20;
    let tcp_flags = match proto {
        6 => {
            let hl = usize::from(f.get(L4 + 12)? >> 4) * 4;
            if seg < 20 || hl < 20 || hl > seg {
                return None;
            }
            f[L4 + 13]
        }
        17 => {
            let l = usize::from(be16(f, L4 + 4));
            if l < 8 || l > seg {
                return None;
            }
            0
        }
        _ => return None,
    };
    let src = u32::from_be_bytes([f[L3 + 12], f[L3 + 13], f[L3 + 14], f[L3 + 15]]);
    let dst = u32::from_be_bytes([f[L3 + 16], f[L3 + 17], f[L3 + 18], f[L3 + 19]]);
    let (sport, dport) = (be16(f, L4), be16(f, L4 + 2));
    let cls = Classified {
        vlans: [0, 0],
        vlan_count: 0,
        ethertype: 0x0800,
        l3_offset: L3 as u16,
        l3: L3Kind::Ipv4,
        l4_offset: L4 as u16,
        l4: if proto == 6 { L4Kind::Tcp } else { L4Kind::Udp },
        l3_end: (L3 + tl) as u16,
        frag: None,
        tuple: Some(FiveTuple {
            src: IpAddr::V4(Ipv4Addr::from(src)),
            dst: IpAddr::V4(Ipv4Addr::from(dst)),
            proto,
            src_port: sport,
            dst_port: dport,
        }),
        icmp_type_code: None,
    };
    Some(Lean {
        cls,
        key: (
            u64::from(src) << 32 | u64::from(dst),
            u64::from(sport) << 32 | u64::from(dport) << 16 | u64::from(proto) << 8,
        ),
        tcp_flags,
        ttl: f[L3 + 8],
    })
}

/// One cached translation (`T`: what the NAT needs, `nat::Learned`).
#[derive(Debug, Clone, Copy)]
pub struct Entry<T> {
    /// [`Lean::key`] with the ingress port in the low byte of the second
    /// word (never 0 there: the protocol byte is 6 or 17).
    key: (u64, u64),
    pub learned: T,
    pub egress: PortId,
    pub mac: Mac,
    /// The neighbour table generation `mac` was read at.
    pub nh_gen: u64,
}

/// Ways per set of a [`FlowCache`].
pub const WAYS: usize = 4;

/// The per-worker cache: `WAYS × sets` entries, a set chosen by key hash,
/// [`WAYS`] ways per set (a new key takes an empty way, else the ways of
/// full sets are replaced in turn). Never shared, no locks.
pub struct FlowCache<T> {
    entries: Vec<Option<Entry<T>>>,
    mask: usize,
    /// Replacement counter (round robin over the ways of full sets).
    victim: usize,
}

impl<T: Copy> FlowCache<T> {
    /// A cache of about `entries` entries (rounded up to a power of two, at
    /// least one set); 0 disables it.
    pub fn new(entries: usize) -> FlowCache<T> {
        let n = if entries == 0 {
            0
        } else {
            entries.next_power_of_two().max(WAYS)
        };
        FlowCache {
            entries: vec![None; n],
            mask: (n / WAYS).saturating_sub(1),
            victim: 0,
        }
    }

    pub fn enabled(&self) -> bool {
        !self.entries.is_empty()
    }

    #[inline(always)]
    fn full_key(key: (u64, u64), ingress: PortId) -> (u64, u64) {
        (key.0, key.1 | u64::from(ingress))
    }

    #[inline(always)]
    fn set(&self, k: (u64, u64)) -> usize {
        let p = u128::from(k.0 ^ k.1.rotate_left(23))
            .wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
        (((p as u64) ^ ((p >> 64) as u64)) as usize & self.mask) * WAYS
    }

    /// Starts loading the set of `key` from `ingress`.
    #[inline]
    pub fn prefetch(&self, key: (u64, u64), ingress: PortId) {
        if self.enabled() {
            let i = self.set(Self::full_key(key, ingress));
            for e in &self.entries[i..i + WAYS] {
                flow_entry::prefetch(e);
            }
        }
    }

    /// The entry of `key` from `ingress`, if cached.
    #[inline]
    pub fn get(&self, key: (u64, u64), ingress: PortId) -> Option<&Entry<T>> {
        if !self.enabled() {
            return None;
        }
        let k = Self::full_key(key, ingress);
        let i = self.set(k);
        self.entries[i..i + WAYS]
            .iter()
            .flatten()
            .find(|e| e.key == k)
    }

    /// Caches `learned` and the forwarding decision for `key` from
    /// `ingress` (replacing an entry of the same key).
    pub fn put(
        &mut self,
        key: (u64, u64),
        ingress: PortId,
        learned: T,
        (egress, mac, nh_gen): (PortId, Mac, u64),
    ) {
        if !self.enabled() {
            return;
        }
        let k = Self::full_key(key, ingress);
        let i = self.set(k);
        let e = Some(Entry {
            key: k,
            learned,
            egress,
            mac,
            nh_gen,
        });
        let set = &mut self.entries[i..i + WAYS];
        // The key's own way, else an empty one, else the next victim in
        // turn (no moves: a fill writes one entry).
        let w = set
            .iter()
            .position(|x| x.is_some_and(|x| x.key == k))
            .or_else(|| set.iter().position(Option::is_none))
            .unwrap_or_else(|| {
                self.victim = self.victim.wrapping_add(1);
                self.victim % WAYS
            });
        set[w] = e;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// 10.0.0.1 → 198.18.0.1, TCP (an ACK) or UDP, from source port `sp`.
    fn frame(tcp: bool, sp: u16) -> Vec<u8> {
        let l4 = if tcp {
            crate::traffic::tcp_seg(sp, 80, 1, 1, crate::traffic::tcp::ACK, &[0u8; 5])
        } else {
            crate::traffic::udp_dgram(sp, 53, &[0u8; 12])
        };
        crate::traffic::ipv4(
            [2, 0, 0, 0, 0, 1],
            [2, 0, 0, 0, 0, 2],
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(198, 18, 0, 1),
            64,
            7,
            if tcp { 6 } else { 17 },
            &l4,
        )
    }

    #[test]
    fn lean_accepts_plain_tcp_and_udp() {
        for f in [frame(false, 1000), frame(true, 1000)] {
            let l = lean(&f).expect("lean");
            assert_eq!(Ok(l.cls), net::classify(&f));
            assert_eq!(l.ttl, 64);
        }
        assert_eq!(lean(&frame(true, 1000)).map(|l| l.tcp_flags), Some(0x10));
    }

    #[test]
    fn cache_ways_and_replacement() {
        let mut c = FlowCache::<u32>::new(WAYS); // one set: every key collides
        let l = |p: u16| lean(&frame(false, p)).expect("lean").key;
        assert!(c.get(l(1), 0).is_none());
        let learned = 7u32;
        for p in 1..=4u8 {
            c.put(l(u16::from(p)), 0, learned, (1, [p; 6], 0));
        }
        for p in 1..=4u8 {
            assert_eq!(c.get(l(u16::from(p)), 0).map(|e| e.mac), Some([p; 6]));
        }
        assert!(
            c.get(l(1), 1).is_none(),
            "the ingress port is part of the key"
        );
        c.put(l(3), 0, learned, (1, [9; 6], 0));
        assert_eq!(
            c.get(l(3), 0).map(|e| e.mac),
            Some([9; 6]),
            "replaced in place"
        );
        c.put(l(5), 0, learned, (1, [5; 6], 0));
        c.put(l(6), 0, learned, (1, [6; 6], 0));
        let present: Vec<u16> = (1..=6).filter(|&p| c.get(l(p), 0).is_some()).collect();
        assert_eq!(present.len(), WAYS, "{present:?}");
        assert!(
            present.contains(&5) && present.contains(&6),
            "new keys are in: {present:?}"
        );
        assert!(!FlowCache::<u32>::new(0).enabled());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// `lean` never disagrees with `net::classify`: random mutations of
        /// TCP and UDP frames (bytes, lengths, flags, truncation).
        #[test]
        fn lean_matches_classify(
            tcp in any::<bool>(),
            edits in proptest::collection::vec((0usize..64, any::<u8>()), 0..4),
            cut in 0usize..80,
        ) {
            let mut f = frame(tcp, 1000);
            for (i, b) in edits {
                if let Some(x) = f.get_mut(i) {
                    *x = b;
                }
            }
            f.truncate(f.len().saturating_sub(cut % 3 * cut / 2));
            if let Some(l) = lean(&f) {
                prop_assert_eq!(Ok(l.cls), net::classify(&f));
            }
        }
    }
}
