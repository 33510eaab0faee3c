//! RFC 5382 REQ-4: unsolicited inbound SYNs held 6 s (`unsolicited_syn =
//! "hold"`).
//!
//! An unsolicited SYN (remote → NAT address, nothing admits it) is dropped
//! and a copy of its start is kept here. If the inside host sends the SYN
//! of the same connection within 6 s (TCP simultaneous open through the
//! NAT), the copy is discarded silently. Otherwise, when the 6 s are over,
//! the remote gets ICMP port unreachable quoting it.
//!
//! Every hold lasts the same time, so holds expire in arrival order: a FIFO
//! of (deadline, id, key) plus a map key → id of the live ones. A cancel
//! removes the map entry only; the FIFO entry is skipped when it comes due.
//! Bounded: at most [`SYN_HOLD_MAX`] live holds (and FIFO entries), a SYN
//! beyond that is dropped without a hold (counted). Time is an argument.

use core::net::Ipv4Addr;
use std::collections::VecDeque;

use serde::Serialize;

use crate::FastMap;

/// How long an unsolicited SYN is held before it is answered (RFC 5382
/// REQ-4: "at least 6 seconds").
pub const SYN_HOLD_NS: u64 = 6_000_000_000;

/// Most SYNs held at once.
pub const SYN_HOLD_MAX: usize = 1024;

/// Bytes of the SYN kept for the ICMP quote: its IPv4 header (up to 60
/// bytes) and the first 8 bytes after it (RFC 792).
const QUOTE_MAX: usize = 68;

/// A held SYN's connection: remote address and port, NAT address and port
/// it was sent to.
pub type SynKey = (Ipv4Addr, u16, Ipv4Addr, u16);

/// Counters of the SYN hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SynHoldStats {
    /// SYNs held (each later answered or cancelled).
    pub held: u64,
    /// Holds ended by the inside host's SYN for the same connection.
    pub cancelled: u64,
    /// Holds answered with ICMP port unreachable.
    pub answered: u64,
    /// SYNs not held: the same connection already had one held
    /// (retransmission), or the hold was full.
    pub not_held: u64,
    /// Held now.
    pub holding: u64,
}

/// The held SYNs.
#[derive(Debug, Default)]
pub struct SynHolds {
    queue: VecDeque<(u64, u64, SynKey)>,
    live: FastMap<SynKey, (u64, Vec<u8>)>,
    next_id: u64,
    stats: SynHoldStats,
}

impl SynHolds {
    /// Hold the SYN `ip_packet` (its IPv4 header first) of connection `key`
    /// until `now + SYN_HOLD_NS`. Returns whether it was held. O(1).
    pub fn hold(&mut self, key: SynKey, ip_packet: &[u8], now: u64) -> bool {
        if self.live.contains_key(&key) || self.queue.len() >= SYN_HOLD_MAX {
            self.stats.not_held += 1;
            return false;
        }
        let id = self.next_id;
        self.next_id += 1;
        let hl = ip_packet.first().map_or(20, |b| usize::from(b & 0x0f) * 4);
        let quote = ip_packet[..ip_packet.len().min(hl + 8).min(QUOTE_MAX)].to_vec();
        self.queue
            .push_back((now.saturating_add(SYN_HOLD_NS), id, key));
        self.live.insert(key, (id, quote));
        self.stats.held += 1;
        self.stats.holding += 1;
        true
    }

    /// The inside host sent the SYN of connection `key`: a hold for it ends
    /// silently. O(1); nothing to do (no hashing) when nothing is held.
    pub fn cancel(&mut self, key: &SynKey) -> bool {
        if self.live.is_empty() || self.live.remove(key).is_none() {
            return false;
        }
        self.stats.cancelled += 1;
        self.stats.holding -= 1;
        true
    }

    /// Calls `answer` for each hold due by `now` that was not cancelled,
    /// oldest first, with its key and the SYN's quote (IPv4 header + 8
    /// bytes). O(due).
    pub fn expire(&mut self, now: u64, mut answer: impl FnMut(&SynKey, &[u8])) {
        while let Some(&(deadline, id, key)) = self.queue.front() {
            if deadline > now {
                break;
            }
            self.queue.pop_front();
            if self.live.get(&key).is_some_and(|(i, _)| *i == id)
                && let Some((_, quote)) = self.live.remove(&key)
            {
                self.stats.answered += 1;
                self.stats.holding -= 1;
                answer(&key, &quote);
            }
        }
    }

    /// Counters. O(1).
    pub fn stats(&self) -> SynHoldStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(p: u16) -> SynKey {
        (
            Ipv4Addr::new(198, 51, 100, 1),
            p,
            Ipv4Addr::new(203, 0, 113, 10),
            40000,
        )
    }

    #[test]
    fn answered_after_six_seconds_unless_cancelled() {
        let mut h = SynHolds::default();
        assert!(h.hold(key(1), &[0x45; 80], 1_000));
        assert!(h.hold(key(2), &[0x45; 40], 2_000));
        assert!(!h.hold(key(1), &[0x45; 80], 3_000), "retransmission");
        assert!(h.cancel(&key(2)));
        assert!(!h.cancel(&key(2)));
        let mut got = Vec::new();
        h.expire(1_000 + SYN_HOLD_NS - 1, |k, q| got.push((*k, q.len())));
        assert!(got.is_empty(), "not before 6 s");
        h.expire(2_000 + SYN_HOLD_NS, |k, q| got.push((*k, q.len())));
        assert_eq!(got, vec![(key(1), 28)], "the cancelled one is not answered");
        let s = h.stats();
        assert_eq!(
            (s.held, s.cancelled, s.answered, s.not_held, s.holding),
            (2, 1, 1, 1, 0)
        );
        // Held again after the first hold ended.
        assert!(h.hold(key(1), &[0x45; 20], 10 * SYN_HOLD_NS));
    }

    #[test]
    fn bounded() {
        let mut h = SynHolds::default();
        for p in 0..SYN_HOLD_MAX as u16 {
            assert!(h.hold(key(p), &[0x45; 20], 0));
        }
        assert!(!h.hold(key(u16::MAX), &[0x45; 20], 0));
        assert_eq!(h.stats().holding, SYN_HOLD_MAX as u64);
        let mut n = 0;
        h.expire(SYN_HOLD_NS, |_, _| n += 1);
        assert_eq!(n, SYN_HOLD_MAX);
        assert_eq!(h.stats().holding, 0);
    }

    #[test]
    fn a_cancelled_then_reheld_key_is_answered_once_on_time() {
        let mut h = SynHolds::default();
        assert!(h.hold(key(7), &[0x45; 20], 0));
        assert!(h.cancel(&key(7)));
        assert!(h.hold(key(7), &[0x45; 20], 5 * SYN_HOLD_NS / 6));
        let mut n = 0;
        // The first (cancelled) FIFO entry comes due: nothing sent.
        h.expire(SYN_HOLD_NS, |_, _| n += 1);
        assert_eq!(n, 0);
        h.expire(2 * SYN_HOLD_NS, |_, _| n += 1);
        assert_eq!(n, 1);
    }
}
