//! A hierarchical timing wheel (Varghese & Lauck, "Hashed and Hierarchical
//! Timing Wheels", SOSP 1987), in integer ticks, that knows nothing of flows.
//!
//! Items are `u32` indices into the caller's slab. The wheel keeps an
//! intrusive doubly linked list per slot through [`Link`]s that the caller
//! stores next to each item (the [`Store`] trait), so arming and cancelling
//! are O(1) and allocation-free, and an item's memory belongs to the slab,
//! never to the wheel. The caller checks its generation when an index comes
//! back (it cancels before freeing, so a stale index never comes back).
//!
//! Each level has 64 slots and an `occupied: u64` bit set; the next non-empty
//! slot is found with a rotate and `trailing_zeros`, never a scan.
//!
//! | level | slot span (ticks) | level range (ticks) | at 100 ms/tick |
//! |------:|------------------:|--------------------:|---------------:|
//! | 0 | 1 | 64 | slot 0.1 s, range 6.4 s |
//! | 1 | 64 | 4 096 | slot 6.4 s, range 6 min 50 s |
//! | 2 | 4 096 | 262 144 | slot 6 min 50 s, range 7 h 17 min |
//! | 3 | 262 144 | 16 777 216 | slot 7 h 17 min, range 19.4 days |
//! | 4 | 16 777 216 | 2^30 | slot 19.4 days, range 3.4 years |
//! | 5 | 2^30 | 2^36 | slot 3.4 years, range 218 years |
//!
//! A wheel is built with 1..=6 levels. A deadline beyond the top level is
//! clamped into the top level; when that slot fires, the item's deadline is
//! still in the future and it is re-armed (the same path as a deadline that
//! was extended while armed).
//!
//! Poll semantics: [`Wheel::next_due`] advances `elapsed` slot by slot. When a
//! slot fires, its items move to the *pending* list; each pending item whose
//! [`Store::deadline`] is `<= now` is returned as due, any other is re-armed
//! at its (later) deadline — that is both cascading and "the deadline moved
//! later". Items stay in FIFO order within a slot, so the order in which
//! items come out depends only on the order of operations.
//!
//! A deadline at or before `elapsed` (already past) is explicit: [`Wheel::arm`]
//! returns [`Armed::Overdue`] and the item goes to the pending list, due on
//! the next poll.

/// "No item" in links and heads.
pub const NIL: u32 = u32::MAX;
/// Slots per level.
pub const SLOTS: usize = 64;
/// Maximum number of levels.
pub const MAX_LEVELS: usize = 6;
const SLOT_BITS: u32 = 6;
const SLOT_MASK: u64 = SLOTS as u64 - 1;

const POS_NONE: u16 = u16::MAX;
const POS_PENDING: u16 = u16::MAX - 1;

/// The intrusive links of one item (12 bytes; the caller stores it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    prev: u32,
    next: u32,
    /// `level * 64 + slot`, or `POS_PENDING`, or `POS_NONE` (not armed).
    pos: u16,
    /// A byte the wheel never touches, for the caller (fills padding).
    pub user: u8,
}

impl Link {
    /// A link that is in no list.
    pub const UNLINKED: Link = Link {
        prev: NIL,
        next: NIL,
        pos: POS_NONE,
        user: 0,
    };
    /// Whether the item is armed (in a slot or pending).
    #[inline]
    pub fn is_armed(&self) -> bool {
        self.pos != POS_NONE
    }
    /// The `next` field, free for the caller's use while the item is not armed
    /// (e.g. a slab free list).
    #[inline]
    pub fn spare(&self) -> u32 {
        debug_assert!(!self.is_armed());
        self.next
    }
    /// Sets the spare field of an unarmed link.
    #[inline]
    pub fn set_spare(&mut self, v: u32) {
        debug_assert!(!self.is_armed());
        self.next = v;
    }
}

impl Default for Link {
    fn default() -> Self {
        Self::UNLINKED
    }
}

/// Where the wheel finds each item's link and deadline.
pub trait Store {
    fn link(&self, item: u32) -> Link;
    fn link_mut(&mut self, item: u32) -> &mut Link;
    /// The item's current deadline in ticks (may have moved since it was armed).
    fn deadline(&self, item: u32) -> u64;
}

/// Where [`Wheel::arm`] put an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Armed {
    /// In a slot of this level.
    Level(usize),
    /// Beyond the top level: clamped into the top level, re-armed when it fires.
    Clamped,
    /// The deadline is not after `elapsed`: due on the next poll.
    Overdue,
}

/// The level an item with deadline `when` belongs to, seen from `elapsed`:
/// the index of the highest 6-bit group in which they differ (level 0 if
/// they differ only in the lowest group). Requires `when > elapsed`; a result
/// `>= levels` means "beyond the top level". Pure, O(1).
#[inline]
pub fn level_for(elapsed: u64, when: u64) -> usize {
    let masked = (elapsed ^ when) | SLOT_MASK;
    let significant = 63 - masked.leading_zeros();
    (significant / SLOT_BITS) as usize
}

/// The slot of `when` within `level`.
#[inline]
pub fn slot_for(when: u64, level: usize) -> usize {
    ((when >> (level as u32 * SLOT_BITS)) & SLOT_MASK) as usize
}

/// Ticks covered by one slot of `level`.
#[inline]
pub fn slot_span(level: usize) -> u64 {
    1u64 << (level as u32 * SLOT_BITS)
}

#[derive(Debug, Clone)]
struct Level {
    occupied: u64,
    head: [u32; SLOTS],
    tail: [u32; SLOTS],
}

impl Level {
    fn new() -> Self {
        Self {
            occupied: 0,
            head: [NIL; SLOTS],
            tail: [NIL; SLOTS],
        }
    }
}

/// A hierarchical timing wheel. See the module doc.
#[derive(Debug, Clone)]
pub struct Wheel {
    levels: Vec<Level>,
    elapsed: u64,
    pending_head: u32,
    pending_tail: u32,
    len: usize,
}

impl Wheel {
    /// A wheel with `levels` levels (clamped to 1..=6), starting at tick 0.
    pub fn new(levels: usize) -> Self {
        let n = levels.clamp(1, MAX_LEVELS);
        Self {
            levels: (0..n).map(|_| Level::new()).collect(),
            elapsed: 0,
            pending_head: NIL,
            pending_tail: NIL,
            len: 0,
        }
    }

    /// Levels needed so that `range` ticks fit without clamping (1..=6).
    pub fn levels_for_range(range: u64) -> usize {
        let mut levels = 1;
        while levels < MAX_LEVELS && (1u64 << (SLOT_BITS * levels as u32)) < range {
            levels += 1;
        }
        levels
    }

    /// The tick the wheel has advanced to.
    #[inline]
    pub fn elapsed(&self) -> u64 {
        self.elapsed
    }
    /// Armed items (slots and pending). O(1).
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Whether any item is waiting in the pending list (overdue or a fired
    /// slot not yet fully processed). O(1).
    #[inline]
    pub fn has_pending(&self) -> bool {
        self.pending_head != NIL
    }

    fn push_back<S: Store>(&mut self, s: &mut S, item: u32, pos: u16) {
        let (head, tail) = if pos == POS_PENDING {
            (&mut self.pending_head, &mut self.pending_tail)
        } else {
            let lv = &mut self.levels[usize::from(pos) / SLOTS];
            let slot = usize::from(pos) % SLOTS;
            lv.occupied |= 1u64 << slot;
            (&mut lv.head[slot], &mut lv.tail[slot])
        };
        let old_tail = *tail;
        {
            let l = s.link_mut(item);
            debug_assert!(!l.is_armed(), "item {item} armed twice");
            l.prev = old_tail;
            l.next = NIL;
            l.pos = pos;
        }
        if old_tail == NIL {
            *head = item;
        } else {
            s.link_mut(old_tail).next = item;
        }
        *tail = item;
        self.len += 1;
    }

    /// Arms `item` to fire at tick `when`. O(1).
    ///
    /// # Panics
    /// In debug builds, if the item is already armed (cancel first).
    pub fn arm<S: Store>(&mut self, s: &mut S, item: u32, when: u64) -> Armed {
        if when <= self.elapsed {
            self.push_back(s, item, POS_PENDING);
            return Armed::Overdue;
        }
        let top = self.levels.len() - 1;
        let level = level_for(self.elapsed, when);
        let (level, armed) = if level > top {
            (top, Armed::Clamped)
        } else {
            (level, Armed::Level(level))
        };
        let slot = slot_for(when, level);
        self.push_back(s, item, (level * SLOTS + slot) as u16);
        armed
    }

    /// Removes `item` from whatever list it is in; no-op if not armed. O(1).
    pub fn cancel<S: Store>(&mut self, s: &mut S, item: u32) {
        let l = s.link(item);
        if !l.is_armed() {
            return;
        }
        if l.prev != NIL {
            s.link_mut(l.prev).next = l.next;
        }
        if l.next != NIL {
            s.link_mut(l.next).prev = l.prev;
        }
        let (head, tail) = if l.pos == POS_PENDING {
            (&mut self.pending_head, &mut self.pending_tail)
        } else {
            let lv = &mut self.levels[usize::from(l.pos) / SLOTS];
            let slot = usize::from(l.pos) % SLOTS;
            if l.prev == NIL && l.next == NIL {
                lv.occupied &= !(1u64 << slot);
            }
            (&mut lv.head[slot], &mut lv.tail[slot])
        };
        if *head == item {
            *head = l.next;
        }
        if *tail == item {
            *tail = l.prev;
        }
        let l = s.link_mut(item);
        l.prev = NIL;
        l.next = NIL;
        l.pos = POS_NONE;
        self.len -= 1;
    }

    /// The next slot to fire: `(level, slot, tick at which it fires)`.
    /// The lowest non-empty level always holds the earliest slot.
    fn next_expiration(&self) -> Option<(usize, usize, u64)> {
        let top = self.levels.len() - 1;
        for (level, lv) in self.levels.iter().enumerate() {
            if lv.occupied == 0 {
                continue;
            }
            let now_slot = slot_for(self.elapsed, level);
            let rotated = lv.occupied.rotate_right(now_slot as u32);
            let slot = (rotated.trailing_zeros() as usize + now_slot) % SLOTS;
            let span = slot_span(level);
            let range = span << SLOT_BITS;
            let level_start = self.elapsed & !(range - 1);
            let mut deadline = level_start + slot as u64 * span;
            if deadline <= self.elapsed {
                // Only clamped items of the top level wrap around.
                debug_assert_eq!(level, top);
                deadline += range;
            }
            return Some((level, slot, deadline));
        }
        None
    }

    /// The tick at which the next slot fires, if any (`Some(elapsed)` if
    /// items are pending). O(levels).
    pub fn next_fire(&self) -> Option<u64> {
        if self.has_pending() {
            return Some(self.elapsed);
        }
        self.next_expiration().map(|(_, _, d)| d)
    }

    fn fire_slot<S: Store>(&mut self, s: &mut S, level: usize, slot: usize) {
        let lv = &mut self.levels[level];
        let mut it = lv.head[slot];
        let (h, t) = (lv.head[slot], lv.tail[slot]);
        lv.head[slot] = NIL;
        lv.tail[slot] = NIL;
        lv.occupied &= !(1u64 << slot);
        while it != NIL {
            let l = s.link_mut(it);
            l.pos = POS_PENDING;
            it = l.next;
        }
        if h == NIL {
            return;
        }
        // Splice the slot's list at the back of pending (keeps FIFO order).
        if self.pending_tail == NIL {
            self.pending_head = h;
        } else {
            s.link_mut(self.pending_tail).next = h;
            s.link_mut(h).prev = self.pending_tail;
        }
        self.pending_tail = t;
    }

    /// Advances towards `now` and returns the next item whose deadline is
    /// `<= now`, unlinked (its link is [`Link::UNLINKED`]); `None` once no
    /// item is due at `now`. Items met on the way whose deadline moved later
    /// are re-armed. Call it up to a budget: what is left stays pending and
    /// comes out first on the next call (the backlog is carried).
    /// Amortised O(1) per item plus O(levels) per fired slot.
    ///
    /// # Panics
    /// If `now` is before the wheel's `elapsed` (time going backwards).
    pub fn next_due<S: Store>(&mut self, s: &mut S, now: u64) -> Option<u32> {
        assert!(
            now >= self.elapsed,
            "timer wheel polled with time going backwards ({now} < {})",
            self.elapsed
        );
        loop {
            while self.pending_head != NIL {
                let item = self.pending_head;
                self.cancel(s, item);
                let d = s.deadline(item);
                if d <= now {
                    return Some(item);
                }
                self.arm(s, item, d);
            }
            match self.next_expiration() {
                Some((level, slot, deadline)) if deadline <= now => {
                    debug_assert!(deadline >= self.elapsed);
                    self.elapsed = deadline;
                    self.fire_slot(s, level, slot);
                }
                _ => {
                    self.elapsed = self.elapsed.max(now);
                    return None;
                }
            }
        }
    }

    /// Visits armed items in approximate expiry order (pending first, then
    /// level 0 upwards, slots in firing order, FIFO within a slot), at most
    /// `limit` of them, until `f` returns `true`. Returns the item `f`
    /// accepted. O(limit + levels * 64 / 64) — bit operations skip empty slots.
    pub fn scan<S: Store>(
        &self,
        s: &S,
        limit: usize,
        mut f: impl FnMut(u32) -> bool,
    ) -> Option<u32> {
        let mut seen = 0usize;
        let mut walk = |mut it: u32, seen: &mut usize| -> Option<Option<u32>> {
            while it != NIL {
                if *seen >= limit {
                    return Some(None);
                }
                *seen += 1;
                if f(it) {
                    return Some(Some(it));
                }
                it = s.link(it).next;
            }
            None
        };
        if let Some(r) = walk(self.pending_head, &mut seen) {
            return r;
        }
        for (level, lv) in self.levels.iter().enumerate() {
            let now_slot = slot_for(self.elapsed, level);
            let mut bits = lv.occupied.rotate_right(now_slot as u32);
            while bits != 0 {
                let off = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let slot = (off + now_slot) % SLOTS;
                if let Some(r) = walk(lv.head[slot], &mut seen) {
                    return r;
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A trivial store: links and deadlines in vectors.
    struct Vs {
        links: Vec<Link>,
        deadline: Vec<u64>,
    }
    impl Vs {
        fn new(n: usize) -> Self {
            Self {
                links: vec![Link::UNLINKED; n],
                deadline: vec![0; n],
            }
        }
    }
    impl Store for Vs {
        fn link(&self, i: u32) -> Link {
            self.links[i as usize]
        }
        fn link_mut(&mut self, i: u32) -> &mut Link {
            &mut self.links[i as usize]
        }
        fn deadline(&self, i: u32) -> u64 {
            self.deadline[i as usize]
        }
    }

    fn arm(w: &mut Wheel, s: &mut Vs, i: u32, when: u64) -> Armed {
        s.deadline[i as usize] = when;
        w.arm(s, i, when)
    }

    fn drain(w: &mut Wheel, s: &mut Vs, now: u64) -> Vec<u32> {
        let mut out = vec![];
        while let Some(i) = w.next_due(s, now) {
            out.push(i);
        }
        out
    }

    #[test]
    fn level_for_table() {
        // (elapsed, when, level)
        let cases = [
            (0, 1, 0),
            (0, 63, 0),
            (0, 64, 1),
            (0, 4095, 1),
            (0, 4096, 2),
            (0, (1 << 18) - 1, 2),
            (0, 1 << 18, 3),
            (0, 1 << 24, 4),
            (0, 1 << 30, 5),
            (0, 1 << 36, 6),
            (63, 64, 1),
            (64, 127, 0),
            (100, 130, 1),
            (4095, 4096, 2),
            (1 << 20, (1 << 20) + 5, 0),
        ];
        for (e, w, l) in cases {
            assert_eq!(level_for(e, w), l, "level_for({e}, {w})");
        }
        assert_eq!(slot_for(130, 0), 2);
        assert_eq!(slot_for(130, 1), 2);
        assert_eq!(slot_for(4096 * 5 + 7, 2), 5);
        assert_eq!(slot_span(2), 4096);
        assert_eq!(Wheel::levels_for_range(64), 1);
        assert_eq!(Wheel::levels_for_range(65), 2);
        assert_eq!(Wheel::levels_for_range(864_000), 4);
        assert_eq!(Wheel::levels_for_range(u64::MAX), 6);
    }

    #[test]
    fn fires_at_deadline_not_before() {
        let mut w = Wheel::new(4);
        let mut s = Vs::new(8);
        assert_eq!(arm(&mut w, &mut s, 0, 5), Armed::Level(0));
        assert_eq!(arm(&mut w, &mut s, 1, 100), Armed::Level(1));
        assert_eq!(arm(&mut w, &mut s, 2, 5000), Armed::Level(2));
        assert_eq!(w.len(), 3);
        assert!(drain(&mut w, &mut s, 4).is_empty());
        assert_eq!(drain(&mut w, &mut s, 5), vec![0]);
        assert!(drain(&mut w, &mut s, 99).is_empty());
        assert_eq!(drain(&mut w, &mut s, 100), vec![1]);
        assert!(drain(&mut w, &mut s, 4999).is_empty());
        assert_eq!(drain(&mut w, &mut s, 5000), vec![2]);
        assert!(w.is_empty());
        assert_eq!(w.elapsed(), 5000);
        assert!(!s.links[2].is_armed());
    }

    #[test]
    fn late_poll_returns_everything_in_deadline_slot_order() {
        let mut w = Wheel::new(4);
        let mut s = Vs::new(8);
        arm(&mut w, &mut s, 0, 300);
        arm(&mut w, &mut s, 1, 7);
        arm(&mut w, &mut s, 2, 70);
        arm(&mut w, &mut s, 3, 7);
        assert_eq!(drain(&mut w, &mut s, 10_000), vec![1, 3, 2, 0]);
    }

    #[test]
    fn cancel_is_o1_and_clears_occupancy() {
        let mut w = Wheel::new(2);
        let mut s = Vs::new(4);
        arm(&mut w, &mut s, 0, 10);
        arm(&mut w, &mut s, 1, 10);
        arm(&mut w, &mut s, 2, 10);
        w.cancel(&mut s, 1);
        w.cancel(&mut s, 1); // no-op
        assert_eq!(w.len(), 2);
        w.cancel(&mut s, 0);
        w.cancel(&mut s, 2);
        assert_eq!(w.levels[0].occupied, 0);
        assert_eq!(w.next_fire(), None);
        assert!(drain(&mut w, &mut s, 100).is_empty());
    }

    #[test]
    fn far_future_is_clamped_and_rearmed() {
        // 2 levels: range 4096 ticks.
        let mut w = Wheel::new(2);
        let mut s = Vs::new(2);
        assert_eq!(arm(&mut w, &mut s, 0, 100_000), Armed::Clamped);
        // Passing the clamped slot re-arms instead of firing.
        let mut now = 0;
        while now < 99_999 {
            now += 1000;
            let got = drain(&mut w, &mut s, now.min(99_999));
            assert!(got.is_empty(), "fired early at {now}");
        }
        assert_eq!(w.len(), 1);
        assert_eq!(drain(&mut w, &mut s, 100_000), vec![0]);
    }

    #[test]
    fn extended_deadline_is_rearmed() {
        let mut w = Wheel::new(3);
        let mut s = Vs::new(2);
        arm(&mut w, &mut s, 0, 10);
        s.deadline[0] = 500; // refresh: a store, the wheel is not touched
        assert!(drain(&mut w, &mut s, 10).is_empty());
        assert!(s.links[0].is_armed());
        assert!(drain(&mut w, &mut s, 499).is_empty());
        assert_eq!(drain(&mut w, &mut s, 500), vec![0]);
    }

    #[test]
    fn past_deadline_is_overdue_and_fires_next_poll() {
        let mut w = Wheel::new(2);
        let mut s = Vs::new(2);
        drain(&mut w, &mut s, 50);
        assert_eq!(arm(&mut w, &mut s, 0, 20), Armed::Overdue);
        assert_eq!(arm(&mut w, &mut s, 1, 50), Armed::Overdue);
        assert_eq!(w.next_fire(), Some(50));
        assert_eq!(drain(&mut w, &mut s, 50), vec![0, 1]);
    }

    #[test]
    fn budgeted_poll_carries_backlog() {
        let mut w = Wheel::new(3);
        let mut s = Vs::new(100);
        for i in 0..100u32 {
            arm(&mut w, &mut s, i, 10 + u64::from(i % 3));
        }
        let mut out = vec![];
        // Budget 7 per poll.
        loop {
            let mut n = 0;
            while n < 7 {
                match w.next_due(&mut s, 1000) {
                    Some(i) => {
                        out.push(i);
                        n += 1;
                    }
                    None => break,
                }
            }
            if n < 7 {
                break;
            }
        }
        assert_eq!(out.len(), 100);
        // Deadline order, FIFO within a deadline.
        let mut expect: Vec<u32> = (0..100).collect();
        expect.sort_by_key(|i| (10 + u64::from(i % 3), *i));
        assert_eq!(out, expect);
        assert!(w.is_empty());
    }

    #[test]
    fn scan_visits_in_expiry_order() {
        let mut w = Wheel::new(3);
        let mut s = Vs::new(4);
        arm(&mut w, &mut s, 0, 3000);
        arm(&mut w, &mut s, 1, 5);
        arm(&mut w, &mut s, 2, 80);
        arm(&mut w, &mut s, 3, 2);
        let mut seen = vec![];
        assert_eq!(
            w.scan(&s, 10, |i| {
                seen.push(i);
                false
            }),
            None
        );
        assert_eq!(seen, vec![3, 1, 2, 0]);
        assert_eq!(w.scan(&s, 10, |i| i == 2), Some(2));
        assert_eq!(w.scan(&s, 2, |i| i == 2), None);
    }

    #[test]
    fn random_against_sorted_reference() {
        // Deterministic LCG: arm, cancel, extend, poll; compare with a
        // reference of (deadline, seq) order.
        let mut x: u64 = 0x1234_5678;
        let mut rnd = move |m: u64| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) % m
        };
        let n = 300usize;
        let mut w = Wheel::new(3);
        let mut s = Vs::new(n);
        let mut live: std::collections::BTreeMap<u32, u64> = Default::default();
        let mut now = 0u64;
        for _ in 0..5000 {
            match rnd(5) {
                0 | 1 => {
                    let i = rnd(n as u64) as u32;
                    if let std::collections::btree_map::Entry::Vacant(e) = live.entry(i) {
                        let d = now + rnd(20_000);
                        arm(&mut w, &mut s, i, d);
                        e.insert(d);
                    }
                }
                2 => {
                    let i = rnd(n as u64) as u32;
                    if live.remove(&i).is_some() {
                        w.cancel(&mut s, i);
                    }
                }
                3 => {
                    let i = rnd(n as u64) as u32;
                    if let Some(d) = live.get_mut(&i) {
                        *d += rnd(1000);
                        s.deadline[i as usize] = *d;
                    }
                }
                _ => {
                    now += rnd(700);
                    let got = drain(&mut w, &mut s, now);
                    let mut want: Vec<u32> = live
                        .iter()
                        .filter(|(_, d)| **d <= now)
                        .map(|(i, _)| *i)
                        .collect();
                    let mut got_sorted = got.clone();
                    got_sorted.sort();
                    want.sort();
                    assert_eq!(got_sorted, want, "at {now}");
                    for i in got {
                        live.remove(&i);
                    }
                }
            }
            assert_eq!(w.len(), live.len());
        }
    }
}
