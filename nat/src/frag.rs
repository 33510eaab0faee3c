//! Fragment tracking (RFC 4787 REQ-14, RFC 5382 §5.3 / REQ-14 analogue).
//!
//! NAT translates a fragmented datagram whole without reassembling it: the
//! first fragment carries the ports, finds or creates the session and its
//! translation (new source and destination address) is remembered here under
//! the datagram's identity `(src, dst, proto, IP id)` as seen on ingress.
//! Later fragments get the same address rewrite.
//!
//! A non-first fragment that arrives before its first fragment is **held** (a
//! copy of the frame) until the first fragment arrives, within a byte budget
//! (`fragments.max_held_bytes`); over budget it is counted and dropped. When
//! the first fragment arrives, held fragments are rewritten and queued; the
//! dataplane collects them with `Nat::take_released` right after the burst.
//!
//! Entries live `fragments.timeout_ms` from creation; held fragments of an
//! expired entry are counted and dropped. At `max_entries` the oldest entry
//! is evicted (counted) to make room: a bounded table never refuses silently.
//!
//! Cost: a hash lookup per fragment; expiry O(expired) (a FIFO of creation
//! times, since every entry has the same lifetime).

use std::collections::VecDeque;

use crate::FastMap as HashMap;

use core::net::Ipv4Addr;

use serde::Serialize;

use crate::config::FragmentConfig;

/// Identity of a fragmented datagram as seen on ingress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragKey {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub proto: u8,
    pub id: u16,
}

/// The address rewrite decided by the first fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragXlat {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    /// Where the later fragments go after the rewrite.
    pub next: FragNext,
}

/// Where a datagram's later fragments go (several workers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FragNext {
    /// Nowhere else: this worker's rewrite is the whole translation.
    Here,
    /// A hairpin: after the source rewrite, to this worker, which owns the
    /// destination's session and translates the destination.
    Hairpin(u16),
    /// Unchanged to this worker, which owns the session (the first
    /// fragment was handed there; later ones carry no ports to dispatch by).
    Owner(u16),
}

/// A held frame: its L3 offset and bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldFrame {
    pub l3_offset: usize,
    pub frame: Vec<u8>,
}

#[derive(Debug)]
struct Entry {
    xlat: Option<FragXlat>,
    held: Vec<HeldFrame>,
    expires_at: u64,
}

/// Counters of the fragment table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FragStats {
    /// Datagrams whose translation was recorded from a first fragment.
    pub tracked: u64,
    /// Non-first fragments translated from a recorded entry.
    pub translated: u64,
    /// Non-first fragments held (arrived before their first fragment).
    pub held: u64,
    /// Held fragments released after their first fragment arrived.
    pub released: u64,
    /// Fragments dropped because the held-bytes budget was full.
    pub dropped_budget: u64,
    /// Held fragments dropped because their entry expired or was evicted.
    pub dropped_expired: u64,
    /// Entries evicted because the table was full.
    pub evicted: u64,
    /// Entries currently tracked.
    pub entries: u64,
    /// Bytes currently held.
    pub held_bytes: u64,
}

/// Why a fragment could not be held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldError {
    /// The held-bytes budget is full.
    Budget,
}

/// The bounded fragment-tracking table (not thread-safe; `Nat` locks it).
#[derive(Debug)]
pub struct FragTable {
    map: HashMap<FragKey, Entry>,
    order: VecDeque<(u64, FragKey)>,
    held_bytes: usize,
    timeout_ns: u64,
    max_entries: usize,
    max_held_bytes: usize,
    stats: FragStats,
}

impl FragTable {
    #[must_use]
    pub fn new(cfg: &FragmentConfig) -> Self {
        Self {
            map: HashMap::default(),
            order: VecDeque::new(),
            held_bytes: 0,
            timeout_ns: cfg.timeout_ms.saturating_mul(1_000_000),
            max_entries: cfg.max_entries.max(1),
            max_held_bytes: cfg.max_held_bytes,
            stats: FragStats::default(),
        }
    }

    /// Drop entries created more than the timeout ago. O(expired).
    pub fn expire(&mut self, now: u64) {
        while let Some(&(t, k)) = self.order.front() {
            if t > now {
                break;
            }
            self.order.pop_front();
            // The FIFO may hold stale records of entries already replaced.
            if self.map.get(&k).is_some_and(|e| e.expires_at == t) {
                self.remove(&k);
            }
        }
    }

    fn remove(&mut self, k: &FragKey) {
        if let Some(e) = self.map.remove(k) {
            for h in &e.held {
                self.held_bytes -= h.frame.len();
            }
            self.stats.dropped_expired += e.held.len() as u64;
        }
    }

    fn entry(&mut self, key: FragKey, now: u64) -> &mut Entry {
        if !self.map.contains_key(&key) {
            while self.map.len() >= self.max_entries {
                let Some((t, k)) = self.order.pop_front() else {
                    break;
                };
                if self.map.get(&k).is_some_and(|e| e.expires_at == t) {
                    self.remove(&k);
                    self.stats.evicted += 1;
                }
            }
            let expires_at = now.saturating_add(self.timeout_ns);
            self.order.push_back((expires_at, key));
            self.map.insert(
                key,
                Entry {
                    xlat: None,
                    held: Vec::new(),
                    expires_at,
                },
            );
        }
        self.map.get_mut(&key).expect("present")
    }

    /// Record the translation of a datagram from its first fragment and
    /// return the fragments held for it (to be rewritten and sent). O(1).
    pub fn record(&mut self, key: FragKey, xlat: FragXlat, now: u64) -> Vec<HeldFrame> {
        self.expire(now);
        let e = self.entry(key, now);
        e.xlat = Some(xlat);
        let held = core::mem::take(&mut e.held);
        self.stats.tracked += 1;
        for h in &held {
            self.held_bytes -= h.frame.len();
        }
        self.stats.released += held.len() as u64;
        held
    }

    /// The translation for a non-first fragment, if its first fragment was seen.
    pub fn lookup(&mut self, key: &FragKey, now: u64) -> Option<FragXlat> {
        self.expire(now);
        let x = self.map.get(key).and_then(|e| e.xlat);
        if x.is_some() {
            self.stats.translated += 1;
        }
        x
    }

    /// Hold a copy of an out-of-order non-first fragment.
    ///
    /// # Errors
    /// `Budget` when holding it would exceed `max_held_bytes` (counted).
    pub fn hold(
        &mut self,
        key: FragKey,
        l3_offset: usize,
        frame: &[u8],
        now: u64,
    ) -> Result<(), HoldError> {
        self.expire(now);
        if self.held_bytes + frame.len() > self.max_held_bytes {
            self.stats.dropped_budget += 1;
            return Err(HoldError::Budget);
        }
        self.held_bytes += frame.len();
        self.stats.held += 1;
        let e = self.entry(key, now);
        e.held.push(HeldFrame {
            l3_offset,
            frame: frame.to_vec(),
        });
        Ok(())
    }

    /// Counter snapshot. O(1).
    #[must_use]
    pub fn stats(&self) -> FragStats {
        FragStats {
            entries: self.map.len() as u64,
            held_bytes: self.held_bytes as u64,
            ..self.stats
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u16) -> FragKey {
        FragKey {
            src: "10.0.0.1".parse().unwrap(),
            dst: "192.0.2.1".parse().unwrap(),
            proto: 17,
            id,
        }
    }
    const X: FragXlat = FragXlat {
        src: Ipv4Addr::new(203, 0, 113, 1),
        dst: Ipv4Addr::new(192, 0, 2, 1),
        next: FragNext::Here,
    };

    #[test]
    fn in_order_and_out_of_order() {
        let cfg = FragmentConfig {
            timeout_ms: 1000,
            max_entries: 2,
            max_held_bytes: 100,
        };
        let mut t = FragTable::new(&cfg);
        assert!(t.record(key(1), X, 0).is_empty());
        assert_eq!(t.lookup(&key(1), 10), Some(X));
        t.hold(key(2), 14, &[0; 60], 10).unwrap();
        assert_eq!(t.hold(key(2), 14, &[0; 60], 10), Err(HoldError::Budget));
        assert_eq!(t.lookup(&key(2), 10), None);
        let rel = t.record(key(2), X, 20);
        assert_eq!(rel.len(), 1);
        assert_eq!(t.stats().held_bytes, 0);
        // Expiry.
        assert_eq!(t.lookup(&key(1), 1_000_000_001), None);
        // Eviction at max_entries with held frames counted.
        let mut t = FragTable::new(&cfg);
        t.hold(key(3), 14, &[0; 10], 0).unwrap();
        t.record(key(4), X, 0);
        t.record(key(5), X, 0);
        let s = t.stats();
        assert_eq!(
            (s.evicted, s.dropped_expired, s.entries, s.held_bytes),
            (1, 1, 2, 0)
        );
    }
}
