//! The workers of a replay: which worker receives each input frame, the
//! hand-offs between workers, and writing what each batch produced.
//!
//! With `--workers N` the replay runs N pipelines in one thread, in a
//! fixed order, with the real hand-off between them:
//! 1. each input burst is split by *receiving* worker, as a NIC's
//!    receive-side scaling would spread it over N queues ([`receiver`]: a
//!    symmetric hash of the IP addresses, so both directions of an address
//!    pair and every fragment of a datagram reach one worker);
//! 2. the receivers run their part of the burst in worker order 0..N;
//! 3. a frame whose NAT session another worker owns is handed to it
//!    (`Disposition::HandOff`) through a bounded queue per worker pair
//!    (`handoff_queue` frames per burst; beyond it a counted drop,
//!    `handoff_queue_full`); the hand-offs a batch produced run after
//!    every batch queued before them, grouped by destination worker in
//!    worker order.
//!
//! Output records are written as frames finish, so within a port the order
//! is: the receivers' frames in worker order, then the handed-off frames.
//! With one-frame bursts (the default) every frame finishes before the
//! next is read, and each port's frames come out in input order whatever
//! N is. N = 1 is exactly the one-pipeline replay.

use std::collections::{BTreeMap, VecDeque};

use crate::Timestamp;
use crate::pipeline::{Disposition, DropReason, Output, Pipeline, PortId, Prefetch};

use super::{FrameVerdict, PacketSink, ReplayError, VerdictSink};

/// One input frame on its way through the workers.
pub(super) struct Item {
    pub frame: Vec<u8>,
    pub ts: u64,
    /// Its number in its input file.
    pub number: u64,
    /// The frame as it came in (only for a verdict sink that wants it).
    pub input: Option<Vec<u8>>,
    /// Gets a verdict line when it finishes (false for the copies a worker
    /// hands on of frames whose verdict was written already: fragments it
    /// held before their first fragment went to another worker).
    pub verdict: bool,
}

/// Frames one worker processes in one call.
pub(super) struct Batch {
    pub worker: usize,
    pub ingress: PortId,
    /// Handed over by another worker (`Some(hairpin)`), or received.
    pub handed: Option<bool>,
    pub items: Vec<Item>,
    /// The read-ahead's classifications (received batches; may be empty).
    pub pres: Vec<Prefetch>,
}

/// Buffers `run_batches` and the driver reuse from burst to burst (a
/// replay allocates nothing per frame or burst once they have grown).
#[derive(Default)]
pub(super) struct Scratch {
    frames: Vec<Vec<u8>>,
    sent: Vec<usize>,
    next: Vec<Option<Batch>>,
    bufs: Bufs,
}

/// Spare batch vectors.
#[derive(Default)]
struct Bufs {
    items: Vec<Vec<Item>>,
    pres: Vec<Vec<Prefetch>>,
}

impl Scratch {
    /// An empty batch for `worker` (its vectors recycled).
    pub fn batch(&mut self, worker: usize, ingress: PortId, handed: Option<bool>) -> Batch {
        self.bufs.batch(worker, ingress, handed)
    }
}

impl Bufs {
    /// An empty batch for `worker` (its vectors recycled).
    pub fn batch(&mut self, worker: usize, ingress: PortId, handed: Option<bool>) -> Batch {
        Batch {
            worker,
            ingress,
            handed,
            items: self.items.pop().unwrap_or_default(),
            pres: self.pres.pop().unwrap_or_default(),
        }
    }

    /// Keep a processed batch's vectors for the next ones.
    fn recycle(&mut self, mut b: Batch) {
        b.items.clear();
        b.pres.clear();
        self.items.push(b.items);
        self.pres.push(b.pres);
    }
}

/// The worker a NIC's receive-side scaling would give `frame` among `n`:
/// a symmetric hash of the IPv4 or IPv6 source and destination addresses
/// (worker 0 for anything else). Deterministic.
pub(super) fn receiver(frame: &[u8], n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    let Ok(c) = crate::wire::classify(frame) else {
        return 0;
    };
    let l3 = usize::from(c.l3_offset);
    let (a, b) = match c.l3 {
        net::L3Kind::Ipv4 => (l3 + 12, l3 + 16),
        net::L3Kind::Ipv6 => (l3 + 8, l3 + 24),
        net::L3Kind::Arp => return 0,
    };
    let w = b - a;
    let (Some(x), Some(y)) = (frame.get(a..a + w), frame.get(b..b + w)) else {
        return 0;
    };
    let mut h = 0u64;
    for (p, q) in x.chunks(4).zip(y.chunks(4)) {
        let p = u32::from_be_bytes(p.try_into().unwrap_or([0; 4]));
        let q = u32::from_be_bytes(q.try_into().unwrap_or([0; 4]));
        h = (h ^ u64::from(p ^ q)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    ((u128::from(h) * n as u128) >> 64) as usize
}

/// Counts what goes through to a sink, by port.
pub(super) struct Counting<'a> {
    pub inner: &'a mut dyn PacketSink,
    pub bytes: Vec<u64>,
}

impl Counting<'_> {
    #[inline]
    pub fn write(&mut self, port: PortId, ts_ns: u64, data: &[u8]) -> Result<(), ReplayError> {
        let i = usize::from(port);
        if i >= self.bytes.len() {
            self.bytes.resize(i + 1, 0);
        }
        self.bytes[i] += data.len() as u64;
        self.inner.write(port, ts_ns, data)
    }
}

/// Every worker's NAT drop counters by reason, summed (`None` without NAT).
fn nat_drop_counts(pipeline: &Pipeline) -> Option<BTreeMap<&'static str, u64>> {
    let nat = pipeline.shared().nat.as_ref()?;
    let mut sum = BTreeMap::new();
    for w in 0..nat.workers() {
        for (k, n) in nat.lock(w).stats().drops {
            *sum.entry(k).or_default() += n;
        }
    }
    Some(sum)
}

/// Pipeline drop reasons a NAT verdict can give.
fn is_nat_drop(r: DropReason) -> bool {
    use DropReason as D;
    matches!(
        r,
        D::Nat | D::UnsolicitedInbound | D::NatExhausted | D::FlowTableFull
    )
}

/// The NAT's own reason (snake_case) for the NAT drops of the batch just
/// processed, when it is unambiguous: the NAT counted exactly as many
/// drops as the batch has frames dropped for a NAT reason, all for one
/// reason (always so for one frame whose drop came from the NAT; a drop
/// the NAT did not count, such as an IPv6 flow's, gets none).
fn nat_reason_of_batch(
    pipeline: &Pipeline,
    before: &BTreeMap<&'static str, u64>,
    out: &Output,
) -> Option<String> {
    let after = nat_drop_counts(pipeline)?;
    let mut reason = None;
    let mut delta = 0;
    for (k, n) in &after {
        let d = n - before.get(k).copied().unwrap_or(0);
        if d > 0 {
            if reason.is_some() {
                return None;
            }
            reason = Some(*k);
            delta = d;
        }
    }
    let frames = out
        .dispositions
        .iter()
        .filter(|d| matches!(d, Disposition::Drop(r) if is_nat_drop(*r)))
        .count() as u64;
    (frames == delta && delta > 0)
        .then(|| reason.map(str::to_string))
        .flatten()
}

/// Run `queue` through `pipelines` at `now` until no hand-off is left,
/// writing each frame's output (and timer output) to `sink` and each
/// input frame's final verdict to `verdicts` as it finishes. `cap`:
/// frames one worker may hand to another in this call (the queue per
/// worker pair).
///
/// # Errors
/// The first output or verdict error.
#[allow(clippy::too_many_arguments)]
pub(super) fn run_batches<'v>(
    pipelines: &mut [Pipeline],
    queue: &mut VecDeque<Batch>,
    now: Timestamp,
    out: &mut Output,
    sink: &mut Counting<'_>,
    mut verdicts: Option<&mut (dyn VerdictSink + 'v)>,
    cap: usize,
    scratch: &mut Scratch,
) -> Result<(), ReplayError> {
    let nw = pipelines.len();
    let Scratch {
        frames,
        sent,
        next,
        bufs,
    } = scratch;
    sent.clear();
    sent.resize(nw * nw, 0);
    let mut gen_ports: Vec<PortId> = Vec::new();
    while let Some(mut b) = queue.pop_front() {
        let w = b.worker.min(nw - 1);
        let nat_before = verdicts
            .as_ref()
            .and_then(|_| nat_drop_counts(&pipelines[w]));
        frames.clear();
        frames.extend(b.items.iter_mut().map(|i| core::mem::take(&mut i.frame)));
        match b.handed {
            Some(hairpin) => pipelines[w].process_handoff(b.ingress, hairpin, frames, now, out),
            None => pipelines[w].process_prefetched(b.ingress, frames, &b.pres, now, out),
        }
        let nat_reason = nat_before.and_then(|x| nat_reason_of_batch(&pipelines[w], &x, out));
        // Timer output first (it happened before this batch), then each
        // frame followed by what it caused.
        for ((p, f), cause) in out.generated.iter().zip(&out.generated_cause) {
            if cause.is_none() {
                sink.write(*p, now.as_nanos(), f)?;
            }
        }
        // Hand-offs of this batch, by (destination, hairpin).
        next.clear();
        next.resize_with(2 * nw, || None);
        for (i, (d, f)) in out.dispositions.iter().zip(frames.iter_mut()).enumerate() {
            let item = &mut b.items[i];
            let mut d = *d;
            let mut handed = None;
            if let Disposition::HandOff { worker, hairpin } = d {
                let to = usize::from(worker);
                if to < nw && to != w && sent[w * nw + to] < cap {
                    sent[w * nw + to] += 1;
                    handed = Some((to, hairpin));
                } else {
                    pipelines[w].handoff_dropped(1);
                    d = Disposition::Drop(DropReason::HandoffQueueFull);
                }
            }
            // The frame, then what it caused.
            if let Disposition::Tx(p) = d {
                sink.write(p, item.ts, f)?;
            }
            gen_ports.clear();
            for ((p, g), cause) in out.generated.iter().zip(&out.generated_cause) {
                if *cause == Some(i as u32) {
                    sink.write(*p, item.ts, g)?;
                    gen_ports.push(*p);
                }
            }
            if let Some((to, hairpin)) = handed {
                next[2 * to + usize::from(hairpin)]
                    .get_or_insert_with(|| bufs.batch(to, b.ingress, Some(hairpin)))
                    .items
                    .push(Item {
                        frame: core::mem::take(f),
                        ts: item.ts,
                        number: item.number,
                        input: item.input.take(),
                        verdict: item.verdict,
                    });
                continue;
            }
            if let Some(v) = verdicts.as_deref_mut().filter(|_| item.verdict) {
                v.verdict(&FrameVerdict {
                    port: b.ingress,
                    frame: item.number,
                    ts_ns: item.ts,
                    disposition: d,
                    input: item.input.as_deref().unwrap_or(f),
                    output: f,
                    generated: &gen_ports,
                    nat_reason: match d {
                        Disposition::Drop(r) if is_nat_drop(r) => nat_reason.as_deref(),
                        _ => None,
                    },
                })?;
            }
        }
        // Copies handed on after the batch's own hand-offs (to the same
        // worker they follow them in its batch).
        for (to, port, frame) in out.handoffs.drain(..) {
            let to = usize::from(to);
            if to >= nw || to == w || sent[w * nw + to] >= cap {
                pipelines[w].handoff_dropped(1);
                continue;
            }
            sent[w * nw + to] += 1;
            let slot = &mut next[2 * to];
            if slot.is_none() {
                *slot = Some(bufs.batch(to, port, Some(false)));
            }
            match slot {
                Some(b) if b.ingress == port => b.items.push(Item {
                    frame,
                    ts: now.as_nanos(),
                    number: 0,
                    input: None,
                    verdict: false,
                }),
                _ => pipelines[w].handoff_dropped(1),
            }
        }
        queue.extend(next.drain(..).flatten());
        bufs.recycle(b);
    }
    Ok(())
}
