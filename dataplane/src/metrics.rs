//! Counters: one cache-padded block per worker, written only by its worker
//! (plain load + store, no locked instruction on the packet path), summed on
//! read. Reading is O(workers × counters) and never blocks a worker.

use crossbeam_utils::CachePadded;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::pipeline::DropReason;

/// One worker's counters. Only the owning worker writes; anyone may read.
#[derive(Debug)]
pub struct WorkerCounters {
    pub rx: Box<[AtomicU64]>,
    pub tx: Box<[AtomicU64]>,
    pub drops: [AtomicU64; DropReason::COUNT],
    /// Frames the pipeline emitted itself (ARP, ICMP, NDP, released holds).
    pub generated: AtomicU64,
    pub arp_replies: AtomicU64,
    pub echo_replies: AtomicU64,
    pub neighbors_learned: AtomicU64,
    pub held: AtomicU64,
    pub v6_flows_created: AtomicU64,
}

/// Increment a counter owned by the calling worker (single writer).
#[inline]
pub fn bump(c: &AtomicU64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
}

/// Add `n` to a counter owned by the calling worker (single writer).
#[inline]
pub fn add(c: &AtomicU64, n: u64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

impl WorkerCounters {
    pub fn new(ports: usize) -> Self {
        let z = |n: usize| (0..n).map(|_| AtomicU64::new(0)).collect::<Box<[_]>>();
        WorkerCounters {
            rx: z(ports),
            tx: z(ports),
            drops: core::array::from_fn(|_| AtomicU64::new(0)),
            generated: AtomicU64::new(0),
            arp_replies: AtomicU64::new(0),
            echo_replies: AtomicU64::new(0),
            neighbors_learned: AtomicU64::new(0),
            held: AtomicU64::new(0),
            v6_flows_created: AtomicU64::new(0),
        }
    }
}

/// All workers' counters.
#[derive(Debug)]
pub struct Counters {
    pub workers: Box<[CachePadded<WorkerCounters>]>,
}

impl Counters {
    pub fn new(workers: usize, ports: usize) -> Self {
        Counters {
            workers: (0..workers)
                .map(|_| CachePadded::new(WorkerCounters::new(ports)))
                .collect(),
        }
    }

    /// Sum every worker's counters. O(workers × counters).
    pub fn snapshot(&self, port_names: &[String]) -> CounterSnapshot {
        let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut s = CounterSnapshot::default();
        for (i, name) in port_names.iter().enumerate() {
            let rx = self.workers.iter().map(|w| w.rx.get(i).map_or(0, ld)).sum();
            let tx = self.workers.iter().map(|w| w.tx.get(i).map_or(0, ld)).sum();
            s.rx.insert(name.clone(), rx);
            s.tx.insert(name.clone(), tx);
        }
        for r in DropReason::ALL {
            let n: u64 = self.workers.iter().map(|w| ld(&w.drops[r as usize])).sum();
            if n > 0 {
                s.drops.insert(r.name().to_string(), n);
            }
        }
        for w in self.workers.iter() {
            s.generated += ld(&w.generated);
            s.arp_replies += ld(&w.arp_replies);
            s.echo_replies += ld(&w.echo_replies);
            s.neighbors_learned += ld(&w.neighbors_learned);
            s.held += ld(&w.held);
            s.v6_flows_created += ld(&w.v6_flows_created);
        }
        s
    }
}

/// Summed counters (ordered maps: printing is deterministic).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct CounterSnapshot {
    pub rx: BTreeMap<String, u64>,
    pub tx: BTreeMap<String, u64>,
    pub drops: BTreeMap<String, u64>,
    pub generated: u64,
    pub arp_replies: u64,
    pub echo_replies: u64,
    pub neighbors_learned: u64,
    pub held: u64,
    pub v6_flows_created: u64,
}

/// Render counters and gauges as Prometheus text exposition format 0.0.4.
pub fn prometheus_text(s: &CounterSnapshot, gauges: &[(&str, &str, u64)]) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# HELP dataplane_rx_packets_total Frames received per port."
    );
    let _ = writeln!(o, "# TYPE dataplane_rx_packets_total counter");
    for (p, n) in &s.rx {
        let _ = writeln!(o, "dataplane_rx_packets_total{{port=\"{p}\"}} {n}");
    }
    let _ = writeln!(o, "# HELP dataplane_tx_packets_total Frames sent per port.");
    let _ = writeln!(o, "# TYPE dataplane_tx_packets_total counter");
    for (p, n) in &s.tx {
        let _ = writeln!(o, "dataplane_tx_packets_total{{port=\"{p}\"}} {n}");
    }
    let _ = writeln!(o, "# HELP dataplane_drops_total Dropped frames by reason.");
    let _ = writeln!(o, "# TYPE dataplane_drops_total counter");
    for r in DropReason::ALL {
        let n = s.drops.get(r.name()).copied().unwrap_or(0);
        let _ = writeln!(o, "dataplane_drops_total{{reason=\"{}\"}} {n}", r.name());
    }
    for (name, v) in [
        ("generated_frames", s.generated),
        ("arp_replies", s.arp_replies),
        ("echo_replies", s.echo_replies),
        ("neighbors_learned", s.neighbors_learned),
        ("held_frames", s.held),
        ("ipv6_flows_created", s.v6_flows_created),
    ] {
        let _ = writeln!(o, "# TYPE dataplane_{name}_total counter");
        let _ = writeln!(o, "dataplane_{name}_total {v}");
    }
    for (name, help, v) in gauges {
        let _ = writeln!(o, "# HELP dataplane_{name} {help}");
        let _ = writeln!(o, "# TYPE dataplane_{name} gauge");
        let _ = writeln!(o, "dataplane_{name} {v}");
    }
    o
}
