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
//! unchanged, and the rewrite precomputed ([`Rewrite`]). [`serve`] then
//! rewrites, decrements the TTL and sets the MACs: the same bytes and
//! counters as the general stages, which every other frame takes (see
//! `Pipeline::candidate` for the per-frame conditions).
//!
//! The cache is set-associative by a hash of the key, eight ways per set (a
//! set's keys in two cache lines, prefetched together, each entry in its
//! own: a probe reads three lines; with four ways a half-full cache lost 7 %
//! of its flows to sets that overflow, with eight about 1 %), and only
//! filled from frames the general path translated and
//! forwarded by a session lookup; an entry is a hint — a stale one fails
//! the NAT's check or the neighbour generation and the frame takes the
//! general path (which refills it). A [`Gate`] turns it off while it
//! thrashes.

use core::net::{IpAddr, Ipv4Addr};

use net::{Classified, FiveTuple, L3Kind, L4Kind};

use crate::pipeline::PortId;
use crate::wire::Mac;

/// What [`lean`] found in a frame (24 bytes): its cache key words, TCP
/// flags (0 for UDP), TTL and IPv4 total length; [`Lean::cls`] builds its
/// classification (equal to `net::classify`'s) when the general path needs
/// it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Lean {
    pub key: (u64, u64),
    pub tcp_flags: u8,
    pub ttl: u8,
    total_len: u16,
}

impl Lean {
    /// The frame's classification, exactly `net::classify`'s.
    #[inline]
    pub fn cls(&self) -> Classified {
        const L3: usize = 14;
        const L4: usize = L3 + 20;
        let (src, dst) = ((self.key.0 >> 32) as u32, self.key.0 as u32);
        let proto = (self.key.1 >> 8) as u8;
        Classified {
            vlans: [0, 0],
            vlan_count: 0,
            ethertype: 0x0800,
            l3_offset: L3 as u16,
            l3: L3Kind::Ipv4,
            l4_offset: L4 as u16,
            l4: if proto == 6 { L4Kind::Tcp } else { L4Kind::Udp },
            l3_end: L3 as u16 + self.total_len,
            frag: None,
            tuple: Some(FiveTuple {
                src: IpAddr::V4(Ipv4Addr::from(src)),
                dst: IpAddr::V4(Ipv4Addr::from(dst)),
                proto,
                src_port: (self.key.1 >> 32) as u16,
                dst_port: (self.key.1 >> 16) as u16,
            }),
            icmp_type_code: None,
        }
    }
}

/// Parses `f` if it is an untagged IPv4 frame with a 20-byte header, not a
/// fragment, carrying a TCP or UDP header that `net::classify` accepts;
/// `None` for anything else (the general path decides those). The
/// classification is exactly `net::classify(f)`'s (a property test checks
/// it). Reads the first 54 bytes at most.
#[inline(always)]
pub fn lean(f: &[u8]) -> Option<Lean> {
    // Fixed offsets read as words from a 42-byte prefix (Ethernet, a
    // 20-byte IPv4 header, 8 bytes of TCP/UDP): one length check.
    if f.len() > usize::from(u16::MAX) {
        return None;
    }
    let h: &[u8; 42] = f.get(..42)?.try_into().ok()?;
    let w = |i: usize| {
        u64::from_le_bytes([
            h[i],
            h[i + 1],
            h[i + 2],
            h[i + 3],
            h[i + 4],
            h[i + 5],
            h[i + 6],
            h[i + 7],
        ])
    };
    // Bytes 12..20: EtherType 0x0800, version 4 with a 20-byte header
    // (0x45), TOS, total length, identification.
    let a = w(12);
    if a & 0x00ff_ffff != 0x0045_0008 {
        return None;
    }
    let tl = usize::from(((a >> 32) as u16).swap_bytes());
    // Bytes 20..28: flags and fragment offset, TTL, protocol, checksum.
    let b = w(20);
    if tl < 20 || tl > f.len() - 14 || b & 0xff3f != 0 {
        return None;
    }
    let proto = (b >> 24) as u8;
    let seg = tl - 20;
    let tcp_flags = match proto {
        6 => {
            let &[off, flags] = f.get(46..48)? else {
                return None;
            };
            let hl = usize::from(off >> 4) * 4;
            if seg < 20 || hl < 20 || hl > seg {
                return None;
            }
            flags
        }
        17 => {
            let l = usize::from(u16::from_be_bytes([h[38], h[39]]));
            if l < 8 || l > seg {
                return None;
            }
            0
        }
        _ => return None,
    };
    // Addresses (bytes 26..34) and ports (34..38), big-endian.
    let addrs = w(26).swap_bytes();
    let ports = u32::from_be_bytes([h[34], h[35], h[36], h[37]]);
    Some(Lean {
        key: (addrs, u64::from(ports) << 16 | u64::from(proto) << 8),
        tcp_flags,
        ttl: (b >> 16) as u8,
        total_len: tl as u16,
    })
}

/// One cached translation (`T`: what the NAT's check needs,
/// `nat::Check`), with its rewrite precomputed: one cache line. Its key is
/// in the cache's key array.
#[derive(Debug, Clone, Copy)]
#[repr(align(64))]
pub struct Entry<T> {
    pub check: T,
    pub rewrite: Rewrite,
    pub egress: PortId,
    pub mac: Mac,
    /// The neighbour table generation `mac` was read at.
    pub nh_gen: u64,
}

/// A translation of one [`Lean`] key precomputed for [`serve`]: the new
/// addresses and ports as they go on the wire, and the one's-complement
/// change (RFC 1624 eqn. 3, folded) they and the TTL decrement make to the
/// IPv4 header checksum, and the addresses and ports to the TCP/UDP
/// checksum (through the pseudo-header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewrite {
    /// Source address, destination address, source port, destination port
    /// (bytes 12..20 of the IPv4 header and 0..4 of the TCP/UDP header).
    hdr: [u8; 12],
    ip_delta: u16,
    l4_delta: u16,
}

impl Rewrite {
    /// The rewrite of frames with key `key` (from [`lean`]) to the given
    /// addresses and ports.
    pub fn new(key: (u64, u64), src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) -> Rewrite {
        use net::checksum::Delta;
        let mut addr = Delta::default();
        addr.add_u32((key.0 >> 32) as u32, src.to_bits());
        addr.add_u32(key.0 as u32, dst.to_bits());
        let mut l4 = addr;
        l4.add_u16((key.1 >> 32) as u16, sport);
        l4.add_u16((key.1 >> 16) as u16, dport);
        // The TTL/protocol word loses 0x0100: ~m + m' = 0xffff - 0x0100.
        let mut ip = addr;
        ip.add_u16(0x0100, 0);
        let mut hdr = [0u8; 12];
        hdr[0..4].copy_from_slice(&src.octets());
        hdr[4..8].copy_from_slice(&dst.octets());
        hdr[8..10].copy_from_slice(&sport.to_be_bytes());
        hdr[10..12].copy_from_slice(&dport.to_be_bytes());
        Rewrite {
            hdr,
            ip_delta: ip.folded(),
            l4_delta: l4.folded(),
        }
    }
}

/// Serves a frame from its cache entry: the precomputed rewrite, the TTL
/// decrement, the next hop's MAC as destination and `src_mac` as source.
/// The frame must be one [`lean`] parsed (to the entry's key) with a TTL
/// above 1. The bytes are those the general stages write: the same
/// incremental checksum arithmetic (RFC 1624 eqn. 3), and UDP's rules (a
/// zero checksum stays zero, a computed zero is sent as `0xffff`).
#[inline(always)]
pub fn serve<T>(f: &mut [u8], e: &Entry<T>, src_mac: Mac) {
    const L3: usize = 14;
    const L4: usize = L3 + 20;
    // One bounds check: the TCP checksum (bytes 50..52) is the farthest
    // field written; a shorter frame is UDP (`lean` accepted it: 42 bytes
    // or more), whose checksum ends at byte 42.
    let tcp = f.get(L3 + 9) == Some(&6);
    let Some(h) = f.get_mut(..if tcp { L4 + 18 } else { L4 + 8 }) else {
        return;
    };
    h[0..6].copy_from_slice(&e.mac);
    h[6..12].copy_from_slice(&src_mac);
    h[L3 + 12..L3 + 20].copy_from_slice(&e.rewrite.hdr[..8]);
    h[L4..L4 + 4].copy_from_slice(&e.rewrite.hdr[8..]);
    h[L3 + 8] = h[L3 + 8].wrapping_sub(1);
    let hc = u16::from_be_bytes([h[L3 + 10], h[L3 + 11]]);
    h[L3 + 10..L3 + 12].copy_from_slice(&apply(hc, e.rewrite.ip_delta).to_be_bytes());
    let at = if tcp { L4 + 16 } else { L4 + 6 };
    let hc = u16::from_be_bytes([h[at], h[at + 1]]);
    let c = match apply(hc, e.rewrite.l4_delta) {
        // UDP: a zero checksum (none) stays zero, a computed zero is sent
        // as 0xffff.
        _ if !tcp && hc == 0 => 0,
        0 if !tcp => 0xffff,
        c => c,
    };
    h[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

/// RFC 1624 eqn. 3 with a folded change word: `~(~hc + d)` in
/// one's-complement arithmetic (a sum of two 16-bit words needs one
/// end-around carry).
#[inline(always)]
fn apply(hc: u16, d: u16) -> u16 {
    let (s, carry) = (!hc).overflowing_add(d);
    !s.wrapping_add(u16::from(carry))
}

/// Ways per set of a [`FlowCache`].
pub const WAYS: usize = 8;

/// The keys of one set: [`Lean::key`] with the ingress port in the low
/// byte of the second word (never 0 there: the protocol byte is 6 or 17),
/// `(0, 0)` for an empty way. Two cache lines.
#[derive(Debug, Clone, Copy, Default)]
#[repr(align(64))]
struct SetKeys([(u64, u64); WAYS]);

impl SetKeys {
    /// Starts loading both cache lines.
    #[inline(always)]
    fn prefetch(&self) {
        flow_entry::prefetch(&self.0[0]);
        flow_entry::prefetch(&self.0[WAYS - 1]);
    }
}

/// The per-worker cache: `WAYS × sets` entries, a set chosen by key hash,
/// [`WAYS`] ways per set (a new key takes an empty way, else the ways of
/// full sets are replaced in turn). A set's keys share two cache lines,
/// each entry has its own: a probe reads three. Never shared, no locks.
pub struct FlowCache<T> {
    keys: Vec<SetKeys>,
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
            keys: vec![SetKeys::default(); n / WAYS],
            entries: vec![None; n],
            mask: (n / WAYS).saturating_sub(1),
            victim: 0,
        }
    }

    pub fn enabled(&self) -> bool {
        !self.keys.is_empty()
    }

    #[inline(always)]
    fn full_key(key: (u64, u64), ingress: PortId) -> (u64, u64) {
        (key.0, key.1 | u64::from(ingress))
    }

    #[inline(always)]
    fn set(&self, k: (u64, u64)) -> usize {
        let p = u128::from(k.0 ^ k.1.rotate_left(23))
            .wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
        ((p as u64) ^ ((p >> 64) as u64)) as usize & self.mask
    }

    /// Starts loading the keys of `key`'s set (first stage of a probe);
    /// returns the set, for [`FlowCache::find_in`].
    #[inline]
    pub fn prefetch(&self, key: (u64, u64), ingress: PortId) -> usize {
        let set = self.set(Self::full_key(key, ingress));
        if let Some(k) = self.keys.get(set) {
            k.prefetch();
        }
        set
    }

    /// Starts loading the keys of `key`'s set and all its entries (for a
    /// caller that reads the entry before it could prefetch it alone).
    #[inline]
    pub fn prefetch_all(&self, key: (u64, u64), ingress: PortId) {
        let set = self.set(Self::full_key(key, ingress));
        if let Some(k) = self.keys.get(set) {
            k.prefetch();
            for e in &self.entries[set * WAYS..set * WAYS + WAYS] {
                flow_entry::prefetch(e);
            }
        }
    }

    /// Starts loading the entry at a position [`FlowCache::find`] returned.
    #[inline]
    pub fn prefetch_at(&self, i: usize) {
        if let Some(e) = self.entries.get(i) {
            flow_entry::prefetch(e);
        }
    }

    /// The entry of `key` from `ingress`, if cached.
    #[inline]
    pub fn get(&self, key: (u64, u64), ingress: PortId) -> Option<&Entry<T>> {
        self.find(key, ingress).and_then(|i| self.at(i))
    }

    /// Where the entry of `key` from `ingress` is, if cached (valid for
    /// [`FlowCache::at`] until the next [`FlowCache::put`]). Reads the
    /// set's key line only.
    #[inline]
    pub fn find(&self, key: (u64, u64), ingress: PortId) -> Option<usize> {
        self.find_in(self.set(Self::full_key(key, ingress)), key, ingress)
    }

    /// [`FlowCache::find`] in the set [`FlowCache::prefetch`] returned for
    /// the same key and port (the hash not computed again).
    #[inline]
    pub fn find_in(&self, set: usize, key: (u64, u64), ingress: PortId) -> Option<usize> {
        let k = Self::full_key(key, ingress);
        let w = self.keys.get(set)?.0.iter().position(|x| *x == k)?;
        Some(set * WAYS + w)
    }

    /// The entry at a position [`FlowCache::find`] returned.
    #[inline]
    pub fn at(&self, i: usize) -> Option<&Entry<T>> {
        self.entries.get(i)?.as_ref()
    }

    /// Caches the check part of a session, its rewrite and the forwarding
    /// decision for `key` from `ingress` (replacing an entry of the same
    /// key).
    pub fn put(
        &mut self,
        key: (u64, u64),
        ingress: PortId,
        (check, rewrite): (T, Rewrite),
        (egress, mac, nh_gen): (PortId, Mac, u64),
    ) {
        if !self.enabled() {
            return;
        }
        let k = Self::full_key(key, ingress);
        let set = self.set(k);
        let ways = &mut self.keys[set].0;
        // The key's own way, else an empty one, else the next victim in
        // turn (no moves: a fill writes one entry).
        let w = ways
            .iter()
            .position(|x| *x == k)
            .or_else(|| ways.iter().position(|x| *x == (0, 0)))
            .unwrap_or_else(|| {
                self.victim = self.victim.wrapping_add(1);
                self.victim % WAYS
            });
        ways[w] = k;
        self.entries[set * WAYS + w] = Some(Entry {
            check,
            rewrite,
            egress,
            mac,
            nh_gen,
        });
    }
}

/// Turns a worker's cache off while it thrashes: traffic with many more
/// live flows than entries (a capture of 120 000 interleaved flows) fills
/// an entry per frame and is served from almost none, so probing and
/// filling only cost. Counted over windows of [`Gate::WINDOW`] frames: a
/// window that served fewer frames than it filled entries closes the gate
/// for [`Gate::OFF_WINDOWS`] windows, then one open window measures again.
/// The cache changes no result, so neither does the gate.
#[derive(Debug, Clone)]
pub struct Gate {
    closed_for: u32,
    frames: u32,
    fills: u32,
    served: u32,
    window: u32,
    off_windows: u32,
}

impl Default for Gate {
    fn default() -> Gate {
        Gate::new(Gate::WINDOW, Gate::OFF_WINDOWS)
    }
}

impl Gate {
    pub const WINDOW: u32 = 1 << 16;
    pub const OFF_WINDOWS: u32 = 8;

    /// A gate measuring windows of `window` frames and staying closed for
    /// `off_windows` of them (tests use small ones).
    pub fn new(window: u32, off_windows: u32) -> Gate {
        Gate {
            closed_for: 0,
            frames: 0,
            fills: 0,
            served: 0,
            window: window.max(1),
            off_windows,
        }
    }

    /// Whether the cache is in use for the next burst.
    #[inline]
    pub fn open(&self) -> bool {
        self.closed_for == 0
    }

    /// Accounts a burst of `frames` frames that filled `fills` entries and
    /// was served `served` frames from the cache (0 and 0 while closed:
    /// every burst counts towards the windows).
    #[inline]
    pub fn burst(&mut self, frames: usize, fills: u32, served: u64) {
        self.frames = self.frames.saturating_add(frames as u32);
        self.fills = self.fills.saturating_add(fills);
        self.served = self.served.saturating_add(served as u32);
        if self.frames < self.window {
            return;
        }
        self.closed_for = if self.closed_for > 0 {
            self.closed_for - 1
        } else if self.served < self.fills {
            self.off_windows
        } else {
            0
        };
        self.frames = 0;
        self.fills = 0;
        self.served = 0;
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
            assert_eq!(Ok(l.cls()), net::classify(&f));
            assert_eq!(l.ttl, 64);
        }
        assert_eq!(lean(&frame(true, 1000)).map(|l| l.tcp_flags), Some(0x10));
    }

    #[test]
    fn cache_ways_and_replacement() {
        let mut c = FlowCache::<u32>::new(WAYS); // one set: every key collides
        let l = |p: u16| lean(&frame(false, p)).expect("lean").key;
        assert!(c.get(l(1), 0).is_none());
        let learned = (
            7u32,
            Rewrite::new(l(1), Ipv4Addr::LOCALHOST, 1, Ipv4Addr::LOCALHOST, 2),
        );
        let ways = WAYS as u16;
        for p in 1..=ways {
            c.put(l(p), 0, learned, (1, [p as u8; 6], 0));
        }
        for p in 1..=ways {
            assert_eq!(c.get(l(p), 0).map(|e| e.mac), Some([p as u8; 6]));
        }
        assert!(
            c.get(l(1), 1).is_none(),
            "the ingress port is part of the key"
        );
        c.put(l(3), 0, learned, (1, [99; 6], 0));
        assert_eq!(
            c.get(l(3), 0).map(|e| e.mac),
            Some([99; 6]),
            "replaced in place"
        );
        // Two more keys in the full set: each replaces one way.
        c.put(l(ways + 1), 0, learned, (1, [1; 6], 0));
        c.put(l(ways + 2), 0, learned, (1, [2; 6], 0));
        let present: Vec<u16> = (1..=ways + 2)
            .filter(|&p| c.get(l(p), 0).is_some())
            .collect();
        assert_eq!(present.len(), WAYS, "{present:?}");
        assert!(
            present.contains(&(ways + 1)) && present.contains(&(ways + 2)),
            "new keys are in: {present:?}"
        );
        assert!(!FlowCache::<u32>::new(0).enabled());
    }

    #[test]
    fn gate_closes_while_thrashing_and_measures_again() {
        let mut g = Gate::default();
        let w = Gate::WINDOW as usize;
        assert!(g.open());
        // Serving more than it fills: stays open.
        g.burst(w, 100, 50_000);
        assert!(g.open());
        // Filling an entry per frame, serving few: closed for OFF_WINDOWS.
        g.burst(w / 2, 30_000, 10);
        assert!(g.open(), "only at the end of a window");
        g.burst(w / 2, 30_000, 10);
        assert!(!g.open());
        for _ in 0..Gate::OFF_WINDOWS - 1 {
            g.burst(w, 0, 0);
            assert!(!g.open());
        }
        g.burst(w, 0, 0);
        assert!(g.open(), "open again to measure");
        g.burst(w, 10, 1_000);
        assert!(g.open());
    }

    #[test]
    fn entries_are_one_cache_line() {
        assert_eq!(core::mem::size_of::<Option<Entry<nat::Check>>>(), 64);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// [`serve`] writes the bytes the general stages write: the NAT's
        /// `net::rewrite` of both sides, the TTL decrement, the MACs. Any
        /// addresses, ports, TTL and checksum fields (UDP's zero included).
        #[test]
        fn serve_matches_general_rewrite(
            tcp in any::<bool>(),
            hdr in proptest::array::uniform12(any::<u8>()),
            old in proptest::array::uniform12(any::<u8>()),
            ttl in 2u8..=255,
            ipck in any::<u16>(),
            l4ck in prop_oneof![Just(0u16), Just(0xffff), any::<u16>()],
            macs in proptest::array::uniform12(any::<u8>()),
        ) {
            let mut f = frame(tcp, 1000);
            f[26..34].copy_from_slice(&old[..8]);
            f[34..38].copy_from_slice(&old[8..]);
            f[22] = ttl;
            f[24..26].copy_from_slice(&ipck.to_be_bytes());
            let at = if tcp { 50 } else { 40 };
            f[at..at + 2].copy_from_slice(&l4ck.to_be_bytes());
            let l = lean(&f).expect("lean");
            let ip = |b: &[u8]| Ipv4Addr::new(b[0], b[1], b[2], b[3]);
            let port = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]);
            let (src, dst) = (ip(&hdr[0..4]), ip(&hdr[4..8]));
            let (sport, dport) = (port(&hdr[8..10]), port(&hdr[10..12]));
            let mut want = f.clone();
            net::rewrite::rewrite_ipv4_src_dst(&mut want, &l.cls(), src, sport, dst, dport)
                .expect("rewrite");
            crate::wire::ipv4_dec_ttl(&mut want, 14).expect("ttl");
            want[0..6].copy_from_slice(&macs[..6]);
            want[6..12].copy_from_slice(&macs[6..]);
            let mut c = FlowCache::<u32>::new(WAYS);
            let rw = Rewrite::new(l.key, src, sport, dst, dport);
            let mac: Mac = macs[..6].try_into().expect("6");
            c.put(l.key, 0, (1, rw), (1, mac, 0));
            let e = *c.get(l.key, 0).expect("cached");
            serve(&mut f, &e, macs[6..].try_into().expect("6"));
            prop_assert_eq!(f, want);
        }

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
                prop_assert_eq!(Ok(l.cls()), net::classify(&f));
            }
        }
    }
}
