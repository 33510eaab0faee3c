//! Free-port bitmap over one contiguous port range.
//!
//! Bit `i` of the bitmap is port `base + i`, where `base` is the range's
//! first port rounded down to a multiple of 64: word `w` covers exactly
//! the ports of port block `base / 64 + w` (a block is 64 ports,
//! [`crate::blocks`]). Bits outside the range are never set.
//!
//! A set is either *whole* (every port of its range usable: one worker, or
//! no blocks) or *granted* (with several workers: only the blocks this
//! worker owns are usable; [`PortSet::grant`] and [`PortSet::revoke`] add
//! and remove one block's ports).

use crate::config::PortRange;

/// Ports per block and bitmap word.
pub const BLOCK_PORTS: u16 = 64;

/// Free-port bitmap over one contiguous port range.
#[derive(Debug, Clone)]
pub struct PortSet {
    /// First port of the range.
    first: u16,
    /// Ports in the range.
    n: u32,
    /// Port of bit 0: `first` rounded down to a multiple of 64.
    base: u16,
    /// Bit set = port free (and, in a granted set, in an owned block).
    words: Vec<u64>,
    /// Bit w set = `words[w] != 0`.
    summary: Vec<u64>,
    /// Granted sets: bit w set = block of word w granted.
    granted: Option<Vec<u64>>,
    free: u32,
}

impl PortSet {
    /// All ports of `range` free. Cost O(range/64).
    #[must_use]
    pub fn new(range: PortRange) -> Self {
        let mut s = Self::granted(range);
        s.granted = None;
        let nw = s.words.len();
        if nw == 0 {
            return s;
        }
        // Every word full but the first and last (the range's edges).
        s.words.fill(u64::MAX);
        s.words[0] = s.word_mask(0);
        s.words[nw - 1] = s.word_mask(nw - 1);
        s.summary.fill(u64::MAX);
        if !nw.is_multiple_of(64)
            && let Some(last) = s.summary.last_mut()
        {
            *last = (1u64 << (nw % 64)) - 1;
        }
        s.free = s.n;
        s
    }

    /// No port usable until its block is granted ([`PortSet::grant`]).
    #[must_use]
    pub fn granted(range: PortRange) -> Self {
        let n = range.len();
        let base = range.first & !(BLOCK_PORTS - 1);
        let bits = if n == 0 {
            0
        } else {
            u32::from(range.first - base) + n
        };
        let nw = bits.div_ceil(64) as usize;
        Self {
            first: range.first,
            n,
            base,
            words: vec![0; nw],
            summary: vec![0; nw.div_ceil(64)],
            granted: Some(vec![0; nw.div_ceil(64)]),
            free: 0,
        }
    }

    /// The bits of word `w` inside the range.
    #[must_use]
    pub fn word_mask(&self, w: usize) -> u64 {
        let off = u32::from(self.first - self.base);
        let lo = (w as u32) * 64;
        let hi = lo + 64;
        let (a, b) = (off.max(lo), (off + self.n).min(hi));
        if a >= b {
            return 0;
        }
        let len = b - a;
        let m = if len == 64 {
            u64::MAX
        } else {
            (1u64 << len) - 1
        };
        m << (a - lo)
    }

    /// Number of words (blocks the range touches).
    #[must_use]
    pub fn words(&self) -> usize {
        self.words.len()
    }

    /// The block number (port / 64) of word `w`.
    #[must_use]
    pub fn block_of_word(&self, w: usize) -> u16 {
        (self.base / BLOCK_PORTS) + w as u16
    }

    /// The word of `port`, if the port is in range.
    #[must_use]
    pub fn word_of(&self, port: u16) -> Option<usize> {
        self.index(port).map(|i| i / 64)
    }

    /// Whether word `w`'s block is granted (always, for a whole set).
    #[must_use]
    pub fn is_granted(&self, w: usize) -> bool {
        match &self.granted {
            None => w < self.words.len(),
            Some(g) => g.get(w / 64).is_some_and(|x| x & (1 << (w % 64)) != 0),
        }
    }

    /// The free bits of word `w`.
    #[must_use]
    pub fn word_bits(&self, w: usize) -> u64 {
        self.words.get(w).copied().unwrap_or(0)
    }

    /// Whether every port of word `w`'s block is free.
    #[must_use]
    pub fn is_idle(&self, w: usize) -> bool {
        self.words.get(w).is_some_and(|&x| x == self.word_mask(w))
    }

    /// Make the ports of word `w` usable (a block this worker now owns).
    /// False if already granted, out of range, or the set is whole.
    pub fn grant(&mut self, w: usize) -> bool {
        if w >= self.words.len() || self.is_granted(w) {
            return false;
        }
        let m = self.word_mask(w);
        let Some(g) = &mut self.granted else {
            return false;
        };
        g[w / 64] |= 1 << (w % 64);
        self.words[w] = m;
        if m != 0 {
            self.summary[w / 64] |= 1 << (w % 64);
        }
        self.free += m.count_ones();
        true
    }

    /// Take word `w`'s block back (every port of it free). False if it
    /// is not granted, a port of it is in use, or the set is whole.
    pub fn revoke(&mut self, w: usize) -> bool {
        if self.granted.is_none() || !self.is_granted(w) || !self.is_idle(w) {
            return false;
        }
        let m = self.word_mask(w);
        if let Some(g) = &mut self.granted {
            g[w / 64] &= !(1 << (w % 64));
        }
        self.words[w] = 0;
        self.summary[w / 64] &= !(1 << (w % 64));
        self.free -= m.count_ones();
        true
    }

    /// Free ports. O(1).
    #[must_use]
    pub fn free(&self) -> u32 {
        self.free
    }
    /// Ports in the range. O(1).
    #[must_use]
    pub fn capacity(&self) -> u32 {
        self.n
    }

    fn index(&self, port: u16) -> Option<usize> {
        let i = u32::from(port.wrapping_sub(self.first));
        (port >= self.first && i < self.n).then(|| usize::from(port - self.base))
    }

    /// Whether `port` is in range and free.
    #[must_use]
    pub fn is_free(&self, port: u16) -> bool {
        self.index(port)
            .is_some_and(|i| self.words[i / 64] & (1 << (i % 64)) != 0)
    }

    /// Mark `port` used; false if out of range or already used.
    pub fn take(&mut self, port: u16) -> bool {
        let Some(i) = self.index(port) else {
            return false;
        };
        let (w, b) = (i / 64, i % 64);
        if self.words[w] & (1 << b) == 0 {
            return false;
        }
        self.words[w] &= !(1 << b);
        if self.words[w] == 0 {
            self.summary[w / 64] &= !(1 << (w % 64));
        }
        self.free -= 1;
        true
    }

    /// Mark `port` free; false if out of range, already free, or (granted
    /// set) in a block not granted.
    pub fn put(&mut self, port: u16) -> bool {
        let Some(i) = self.index(port) else {
            return false;
        };
        let (w, b) = (i / 64, i % 64);
        if self.words[w] & (1 << b) != 0 || !self.is_granted(w) {
            return false;
        }
        self.words[w] |= 1 << b;
        self.summary[w / 64] |= 1 << (w % 64);
        self.free += 1;
        true
    }

    /// Next word index at or after `w` (wrapping) with a free port.
    fn next_word(&self, w: usize) -> Option<usize> {
        let nw = self.words.len();
        if nw == 0 || self.free == 0 {
            return None;
        }
        let ns = self.summary.len();
        let (s0, b0) = (w / 64, w % 64);
        let first = self.summary[s0] & (u64::MAX << b0);
        if first != 0 {
            return Some(s0 * 64 + first.trailing_zeros() as usize);
        }
        for k in 1..=ns {
            let s = (s0 + k) % ns;
            let bits = if k == ns {
                self.summary[s] & !(u64::MAX << b0)
            } else {
                self.summary[s]
            };
            if bits != 0 {
                return Some(s * 64 + bits.trailing_zeros() as usize);
            }
        }
        None
    }

    /// Take a free port starting the search at a pseudo-random point `r`,
    /// preferring ports whose parity equals `parity` (0/1). Returns the port
    /// and whether the parity was kept. Expected O(1).
    pub fn take_near(&mut self, r: u64, parity: u16) -> Option<(u16, bool)> {
        if self.free == 0 {
            return None;
        }
        // Bit i ↔ port base+i, base even: the wanted parity is at bits of
        // parity `parity`.
        let pmask = if parity & 1 == 0 {
            0x5555_5555_5555_5555u64
        } else {
            0xAAAA_AAAA_AAAA_AAAAu64
        };
        let start = (u64::from(self.first - self.base) + r % u64::from(self.n)) as usize;
        let (w0, b0) = (start / 64, start % 64);
        // Same word, at or after the start bit, with parity.
        let bits = self.words[w0] & (u64::MAX << b0) & pmask;
        let mut pick = (bits != 0).then(|| w0 * 64 + bits.trailing_zeros() as usize);
        if pick.is_none() {
            // Up to 8 further non-empty words, looking for the parity.
            let mut w = w0;
            let mut fallback = None;
            for _ in 0..8 {
                let Some(nw) = self.next_word((w + 1) % self.words.len()) else {
                    break;
                };
                fallback.get_or_insert(nw);
                let bits = self.words[nw] & pmask;
                if bits != 0 {
                    pick = Some(nw * 64 + bits.trailing_zeros() as usize);
                    break;
                }
                w = nw;
            }
            if pick.is_none() {
                // Any free port: the start word first, then the next non-empty one.
                let bits = self.words[w0] & (u64::MAX << b0);
                pick = if bits != 0 {
                    Some(w0 * 64 + bits.trailing_zeros() as usize)
                } else {
                    let nw = fallback.or_else(|| self.next_word(w0))?;
                    Some(nw * 64 + self.words[nw].trailing_zeros() as usize)
                };
            }
        }
        let i = pick?;
        let port = self.base.wrapping_add(i as u16);
        let ok = self.take(port);
        debug_assert!(ok, "picked a used port");
        Some((port, port & 1 == parity & 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alloc::splitmix64;

    #[test]
    fn take_put_and_summary() {
        let mut s = PortSet::new(PortRange::new(1000, 1199));
        assert_eq!(s.free(), 200);
        assert!(s.take(1000));
        assert!(!s.take(1000));
        assert!(!s.take(999) && !s.take(1200));
        let mut got = std::collections::HashSet::new();
        got.insert(1000);
        let mut r = 1;
        while let Some((p, _)) = s.take_near(splitmix64(&mut r), 0) {
            assert!((1000..1200).contains(&p));
            assert!(got.insert(p), "port {p} handed out twice");
        }
        assert_eq!(got.len(), 200);
        assert_eq!(s.free(), 0);
        assert!(s.put(1150));
        assert!(!s.put(1150));
        assert_eq!(s.take_near(7, 1), Some((1150, false)));
    }

    #[test]
    fn prefers_parity() {
        let mut s = PortSet::new(PortRange::new(1025, 65535));
        let mut r = 3;
        for _ in 0..1000 {
            let (p, par) = s.take_near(splitmix64(&mut r), 1).unwrap();
            assert!(par && p % 2 == 1);
        }
    }

    #[test]
    fn words_are_blocks_and_grants_add_only_their_ports() {
        // 1000..=1199 touches blocks 15 (960..1023) to 18 (1152..1215).
        let mut s = PortSet::granted(PortRange::new(1000, 1199));
        assert_eq!((s.words(), s.free()), (4, 0));
        assert_eq!(s.block_of_word(0), 15);
        assert!(!s.take(1000), "nothing granted");
        assert!(s.grant(0));
        assert!(!s.grant(0));
        assert_eq!(s.free(), 24, "1000..=1023 of block 15");
        assert!(s.take(1000));
        assert!(!s.revoke(0), "a port of the block is in use");
        assert!(!s.put(1100), "not granted: block 17");
        assert!(s.put(1000));
        assert!(s.revoke(0));
        assert_eq!(s.free(), 0);
        assert!(s.grant(3));
        let mut seen = 0;
        while let Some((p, _)) = s.take_near(5, 0) {
            assert!((1152..=1199).contains(&p));
            seen += 1;
        }
        assert_eq!(seen, 48);
    }
}
