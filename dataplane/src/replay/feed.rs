//! Where the replay's packets come from: a source per input
//! ([`PacketSource`]), their merge by timestamp ([`Feed`], [`Merge`]), and
//! the read-ahead that classifies packets before the pipeline needs them.

use std::collections::{BTreeMap, VecDeque};

use super::{Packet, ReplayError, SkipReason};
use crate::pipeline::{Pipeline, PortId, Prefetch};

/// A stream of packets for one input port.
pub trait PacketSource {
    /// The next packet, `Ok(None)` at the end.
    ///
    /// # Errors
    /// [`ReplayError`] when the capture is corrupted.
    fn next_packet(
        &mut self,
        skipped: &mut BTreeMap<SkipReason, u64>,
    ) -> Result<Option<Packet>, ReplayError>;

    /// The number of the packet [`PacketSource::next_packet`] returned
    /// last, as Wireshark numbers frames (1-based, records skipped
    /// included); 0 when the source does not know (the driver then numbers
    /// the port's packets itself).
    fn frame_number(&self) -> u64 {
        0
    }
}

/// In-memory packets (the demo, tests and benches).
pub struct VecSource {
    packets: std::vec::IntoIter<Packet>,
}

impl VecSource {
    pub fn new(packets: Vec<Packet>) -> Self {
        VecSource {
            packets: packets.into_iter(),
        }
    }
}

impl PacketSource for VecSource {
    fn next_packet(
        &mut self,
        _: &mut BTreeMap<SkipReason, u64>,
    ) -> Result<Option<Packet>, ReplayError> {
        Ok(self.packets.next())
    }
}

/// A time-ordered stream of `(ingress port, packet)`.
pub trait Feed {
    /// The next packet, `Ok(None)` at the end.
    ///
    /// # Errors
    /// Corrupted input.
    fn next(
        &mut self,
        skipped: &mut BTreeMap<SkipReason, u64>,
    ) -> Result<Option<(PortId, Packet)>, ReplayError>;

    /// [`Feed::next`] with the packet's frame number in its input (see
    /// [`PacketSource::frame_number`]; 0: unknown, the driver counts).
    ///
    /// # Errors
    /// Corrupted input.
    fn next_numbered(
        &mut self,
        skipped: &mut BTreeMap<SkipReason, u64>,
    ) -> Result<Option<(PortId, Packet, u64)>, ReplayError> {
        Ok(self.next(skipped)?.map(|(p, k)| (p, k, 0)))
    }

    /// Whether packets may be read before the earlier ones are processed
    /// (the replay reads a few ahead and classifies them early). `false`
    /// for a feed whose later packets depend on the pipeline's output, such
    /// as the demo's simulated network.
    fn may_read_ahead(&self) -> bool {
        true
    }
}

/// K-way merge of per-port sources by timestamp; ties go to the earlier
/// input (the order of `--in`). O(inputs) per packet.
pub struct Merge<'a> {
    inputs: Vec<(PortId, Box<dyn PacketSource + 'a>)>,
    /// Each input's next packet and its frame number.
    heads: Vec<Option<(Packet, u64)>>,
    primed: bool,
    /// An input error met while refilling a head: returned after the
    /// packet that was already read (so it is processed, as every packet
    /// read before an error is).
    err: Option<ReplayError>,
}

impl<'a> Merge<'a> {
    pub fn new(inputs: Vec<(PortId, Box<dyn PacketSource + 'a>)>) -> Self {
        Merge {
            inputs,
            heads: Vec::new(),
            primed: false,
            err: None,
        }
    }
}

impl Feed for Merge<'_> {
    fn next(
        &mut self,
        skipped: &mut BTreeMap<SkipReason, u64>,
    ) -> Result<Option<(PortId, Packet)>, ReplayError> {
        Ok(self.next_numbered(skipped)?.map(|(p, k, _)| (p, k)))
    }

    fn next_numbered(
        &mut self,
        skipped: &mut BTreeMap<SkipReason, u64>,
    ) -> Result<Option<(PortId, Packet, u64)>, ReplayError> {
        if let Some(e) = self.err.take() {
            return Err(e);
        }
        if !self.primed {
            self.primed = true;
            for (_, s) in &mut self.inputs {
                let p = s.next_packet(skipped)?;
                self.heads.push(p.map(|p| (p, s.frame_number())));
            }
        }
        let mut best: Option<usize> = None;
        for (i, h) in self.heads.iter().enumerate() {
            if let Some((p, _)) = h
                && best.is_none_or(|b| {
                    self.heads[b]
                        .as_ref()
                        .is_some_and(|(q, _)| p.ts_ns < q.ts_ns)
                })
            {
                best = Some(i);
            }
        }
        let Some(i) = best else { return Ok(None) };
        let src = &mut self.inputs[i].1;
        let next = match src.next_packet(skipped) {
            Ok(n) => n.map(|p| (p, src.frame_number())),
            Err(e) => {
                self.err = Some(e);
                None
            }
        };
        let pkt = std::mem::replace(&mut self.heads[i], next);
        Ok(pkt.map(|(p, n)| (self.inputs[i].0, p, n)))
    }
}

/// Packets read ahead of the pipeline, each classified when read
/// ([`Pipeline::prefetch`]; the pipeline reuses the classification). Only
/// a hint: the pipeline sees the same packets in the same order with the
/// same timestamps; an input error is returned only after every packet
/// read before it.
pub(super) struct Ahead {
    q: VecDeque<(PortId, Packet, u64)>,
    /// What `Pipeline::prefetch` found for each packet of `q` (same order;
    /// empty when not reading ahead, so the pass-through baseline moves
    /// nothing extra).
    pre: VecDeque<Prefetch>,
    /// The prefetch record of the packet `next` returned last.
    pub(super) last: Prefetch,
    /// Packets kept read ahead beyond those being processed.
    window: usize,
    pub(super) prefetching: bool,
    err: Option<ReplayError>,
    done: bool,
}

/// Read-ahead window (packets) for one-packet bursts; longer bursts read
/// a burst further.
const AHEAD: usize = 8;

impl Ahead {
    /// `read_ahead == false`: no packet is read before it is needed (a
    /// burst is still read whole, as without read-ahead) and nothing is
    /// prefetched.
    pub(super) fn new(burst: usize, read_ahead: bool) -> Self {
        let window = AHEAD + burst;
        let cap = if read_ahead { window + 1 } else { 0 };
        Self {
            q: VecDeque::with_capacity(cap),
            pre: VecDeque::with_capacity(cap),
            last: Prefetch::default(),
            window,
            prefetching: read_ahead,
            err: None,
            done: false,
        }
    }

    #[inline]
    pub(super) fn next(
        &mut self,
        feed: &mut dyn Feed,
        pipeline: &Pipeline,
        skipped: &mut BTreeMap<SkipReason, u64>,
    ) -> Result<Option<(PortId, Packet, u64)>, ReplayError> {
        if !self.prefetching {
            // Nothing to prefetch: read each packet when it is needed.
            return feed.next_numbered(skipped);
        }
        self.next_ahead(feed, pipeline, skipped)
    }

    fn next_ahead(
        &mut self,
        feed: &mut dyn Feed,
        pipeline: &Pipeline,
        skipped: &mut BTreeMap<SkipReason, u64>,
    ) -> Result<Option<(PortId, Packet, u64)>, ReplayError> {
        while !self.done && self.err.is_none() && self.q.len() < self.window {
            match feed.next_numbered(skipped) {
                Ok(Some((port, p, n))) => {
                    self.pre.push_back(pipeline.prefetch(port, &p.data));
                    self.q.push_back((port, p, n));
                }
                Ok(None) => self.done = true,
                Err(e) => self.err = Some(e),
            }
        }
        match self.q.pop_front() {
            Some(x) => {
                if let Some(p) = self.pre.pop_front() {
                    self.last = p;
                }
                Ok(Some(x))
            }
            None => match self.err.take() {
                Some(e) => Err(e),
                None => Ok(None),
            },
        }
    }
}
