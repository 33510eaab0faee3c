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
    /// Frames this worker handed to the worker owning their session.
    pub handed_off: AtomicU64,
    /// Frames this worker took over from another worker.
    pub handed_in: AtomicU64,
    /// IPv4 frames larger than their egress MTU split into fragments.
    pub fragmented: AtomicU64,
    /// Fragments made from them (each also counts as generated).
    pub fragments: AtomicU64,
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
            handed_off: AtomicU64::new(0),
            handed_in: AtomicU64::new(0),
            fragmented: AtomicU64::new(0),
            fragments: AtomicU64::new(0),
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
            s.handed_off += ld(&w.handed_off);
            s.handed_in += ld(&w.handed_in);
            s.fragmented += ld(&w.fragmented);
            s.fragments += ld(&w.fragments);
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
    /// Frames handed from the receiving worker to the session's owner.
    pub handed_off: u64,
    pub handed_in: u64,
    /// IPv4 frames fragmented to fit their egress MTU.
    pub fragmented: u64,
    /// Fragments made.
    pub fragments: u64,
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
        ("handed_off_frames", s.handed_off),
        ("handed_in_frames", s.handed_in),
        ("fragmented_frames", s.fragmented),
        ("fragments", s.fragments),
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

/// A device's `rte_eth_stats` plus link status, as the DPDK driver reads them
/// (`Port::stats`). Plain data: this module does not depend on DPDK.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PortStats {
    pub ipackets: u64,
    pub opackets: u64,
    pub ibytes: u64,
    pub obytes: u64,
    /// Frames the hardware dropped because RX queues were full.
    pub imissed: u64,
    pub ierrors: u64,
    pub oerrors: u64,
    /// RX mbuf allocation failures.
    pub rx_nombuf: u64,
    pub link_up: bool,
    /// Link speed in Mbit/s (0 = unknown).
    pub link_speed_mbps: u32,
}

/// One port's last sampled [`PortStats`], labelled with the configured port
/// name (`ctl ports` prints these).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PortSample {
    pub port: String,
    #[serde(flatten)]
    pub stats: PortStats,
}

/// Where the control thread gets device statistics from. The DPDK driver
/// registers one ([`PortStatsBoard`]); replay and the demo have none.
///
/// Contract: `port_stats` is called on the control thread for every scrape
/// and `ctl ports`; it must return promptly from memory (no device call, no
/// lock a worker holds, never wait for the packet path). Cost O(ports).
pub trait PortStatsSource: Send + Sync {
    /// The latest sample of every port, in port order.
    fn port_stats(&self) -> Vec<PortSample>;
}

/// The atomics one port's sample is published in.
#[derive(Debug)]
struct PortCells {
    name: String,
    // Field order = [`PortStats`] order; link_up as 0/1.
    cells: [AtomicU64; 10],
}

/// Device statistics published by one sampler and read by anyone: the DPDK
/// driver's main lcore samples `rte_eth_stats_get`/`rte_eth_link_get_nowait`
/// about once a second and [`publish`](Self::publish)es here; the control
/// thread reads with [`PortStatsSource::port_stats`]. No lock, no DPDK call
/// on the reading side, and the writer never waits for a reader.
///
/// Consistency: each field is a relaxed atomic, so one read may mix fields
/// of two consecutive samples of a port (each field on its own is exact and
/// monotonic for counters). [`samples`](Self::samples) counts publications.
#[derive(Debug)]
pub struct PortStatsBoard {
    ports: Box<[PortCells]>,
    samples: AtomicU64,
}

impl PortStatsBoard {
    /// A board for these ports (all zero, link down, until published).
    pub fn new(names: &[String]) -> Self {
        PortStatsBoard {
            ports: names
                .iter()
                .map(|n| PortCells {
                    name: n.clone(),
                    cells: core::array::from_fn(|_| AtomicU64::new(0)),
                })
                .collect(),
            samples: AtomicU64::new(0),
        }
    }

    /// Store port `index`'s new sample (ignored when out of range). Meant
    /// for one writer at a time. Cost: 10 relaxed stores.
    pub fn publish(&self, index: usize, s: &PortStats) {
        let Some(p) = self.ports.get(index) else {
            return;
        };
        let vals = [
            s.ipackets,
            s.opackets,
            s.ibytes,
            s.obytes,
            s.imissed,
            s.ierrors,
            s.oerrors,
            s.rx_nombuf,
            u64::from(s.link_up),
            u64::from(s.link_speed_mbps),
        ];
        for (c, v) in p.cells.iter().zip(vals) {
            c.store(v, Ordering::Relaxed);
        }
        self.samples.fetch_add(1, Ordering::Release);
    }

    /// How many port samples were published so far.
    pub fn samples(&self) -> u64 {
        self.samples.load(Ordering::Acquire)
    }
}

impl PortStatsSource for PortStatsBoard {
    fn port_stats(&self) -> Vec<PortSample> {
        self.ports
            .iter()
            .map(|p| {
                let v: [u64; 10] = core::array::from_fn(|i| p.cells[i].load(Ordering::Relaxed));
                PortSample {
                    port: p.name.clone(),
                    stats: PortStats {
                        ipackets: v[0],
                        opackets: v[1],
                        ibytes: v[2],
                        obytes: v[3],
                        imissed: v[4],
                        ierrors: v[5],
                        oerrors: v[6],
                        rx_nombuf: v[7],
                        link_up: v[8] != 0,
                        link_speed_mbps: u32::try_from(v[9]).unwrap_or(u32::MAX),
                    },
                }
            })
            .collect()
    }
}

/// Every per-port device metric as (name, type, help), in exposition order
/// (docs/dpdk.md lists them).
pub const PORT_METRICS: [(&str, &str, &str); 10] = [
    (
        "dataplane_port_link_up",
        "gauge",
        "Link status of the DPDK port (1 = up).",
    ),
    (
        "dataplane_port_link_speed_mbps",
        "gauge",
        "Link speed of the DPDK port in Mbit/s (0 = unknown).",
    ),
    (
        "dataplane_port_rx_packets_total",
        "counter",
        "Frames received by the device (rte_eth_stats ipackets).",
    ),
    (
        "dataplane_port_tx_packets_total",
        "counter",
        "Frames sent by the device (rte_eth_stats opackets).",
    ),
    (
        "dataplane_port_rx_bytes_total",
        "counter",
        "Bytes received by the device (rte_eth_stats ibytes).",
    ),
    (
        "dataplane_port_tx_bytes_total",
        "counter",
        "Bytes sent by the device (rte_eth_stats obytes).",
    ),
    (
        "dataplane_port_rx_missed_total",
        "counter",
        "Frames the device dropped because the RX queues were full (rte_eth_stats imissed).",
    ),
    (
        "dataplane_port_rx_errors_total",
        "counter",
        "Erroneous frames received (rte_eth_stats ierrors).",
    ),
    (
        "dataplane_port_tx_errors_total",
        "counter",
        "Failed transmissions (rte_eth_stats oerrors).",
    ),
    (
        "dataplane_port_rx_nombuf_total",
        "counter",
        "RX mbuf allocation failures (rte_eth_stats rx_nombuf).",
    ),
];

/// Value of [`PORT_METRICS`]`[i]` for `s`.
fn port_metric_value(i: usize, s: &PortStats) -> u64 {
    let getters: [fn(&PortStats) -> u64; 10] = [
        |s| u64::from(s.link_up),
        |s| u64::from(s.link_speed_mbps),
        |s| s.ipackets,
        |s| s.opackets,
        |s| s.ibytes,
        |s| s.obytes,
        |s| s.imissed,
        |s| s.ierrors,
        |s| s.oerrors,
        |s| s.rx_nombuf,
    ];
    getters.get(i).map_or(0, |g| g(s))
}

/// Escape a Prometheus label value (`\`, `"`, newline).
fn escape_label(v: &str) -> String {
    let mut o = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '"' => o.push_str("\\\""),
            '\n' => o.push_str("\\n"),
            c => o.push(c),
        }
    }
    o
}

/// Append the per-port device metrics ([`PORT_METRICS`], HELP and TYPE lines,
/// one sample per port labelled `port="<name>"`) to `out`. Nothing at all is
/// written for an empty slice (no DPDK ports: replay, demo). O(ports).
pub fn port_stats_text(out: &mut String, ports: &[PortSample]) {
    use std::fmt::Write;
    if ports.is_empty() {
        return;
    }
    for (i, (name, kind, help)) in PORT_METRICS.iter().enumerate() {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for p in ports {
            let v = port_metric_value(i, &p.stats);
            let _ = writeln!(out, "{name}{{port=\"{}\"}} {v}", escape_label(&p.port));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(base: u64, up: bool) -> PortStats {
        PortStats {
            ipackets: base + 1,
            opackets: base + 2,
            ibytes: base + 3,
            obytes: base + 4,
            imissed: base + 5,
            ierrors: base + 6,
            oerrors: base + 7,
            rx_nombuf: base + 8,
            link_up: up,
            link_speed_mbps: 10_000,
        }
    }

    #[test]
    fn port_stats_text_has_help_type_and_one_line_per_port() {
        let board = PortStatsBoard::new(&["lan".into(), "w\"a\\n".into()]);
        assert_eq!(board.samples(), 0);
        board.publish(0, &stats(100, true));
        board.publish(1, &stats(200, false));
        board.publish(7, &stats(900, true)); // out of range: ignored
        assert_eq!(board.samples(), 2);
        let mut t = String::new();
        port_stats_text(&mut t, &board.port_stats());
        let want = r#"# HELP dataplane_port_link_up Link status of the DPDK port (1 = up).
# TYPE dataplane_port_link_up gauge
dataplane_port_link_up{port="lan"} 1
dataplane_port_link_up{port="w\"a\\n"} 0
# HELP dataplane_port_link_speed_mbps Link speed of the DPDK port in Mbit/s (0 = unknown).
# TYPE dataplane_port_link_speed_mbps gauge
dataplane_port_link_speed_mbps{port="lan"} 10000
dataplane_port_link_speed_mbps{port="w\"a\\n"} 10000
# HELP dataplane_port_rx_packets_total Frames received by the device (rte_eth_stats ipackets).
# TYPE dataplane_port_rx_packets_total counter
dataplane_port_rx_packets_total{port="lan"} 101
dataplane_port_rx_packets_total{port="w\"a\\n"} 201
"#;
        assert!(t.starts_with(want), "{t}");
        for (name, lan, wan) in [
            ("tx_packets", 102, 202),
            ("rx_bytes", 103, 203),
            ("tx_bytes", 104, 204),
            ("rx_missed", 105, 205),
            ("rx_errors", 106, 206),
            ("tx_errors", 107, 207),
            ("rx_nombuf", 108, 208),
        ] {
            let m = format!("dataplane_port_{name}_total");
            assert!(t.contains(&format!("# TYPE {m} counter\n")), "{m}: {t}");
            assert!(
                t.contains(&format!("\n{m}{{port=\"lan\"}} {lan}\n")),
                "{m}: {t}"
            );
            assert!(
                t.contains(&format!("\n{m}{{port=\"w\\\"a\\\\n\"}} {wan}\n")),
                "{m}: {t}"
            );
        }
        // 10 metrics × (HELP + TYPE + 2 ports).
        assert_eq!(t.lines().count(), 40);
        assert_eq!(t.matches("# HELP ").count(), PORT_METRICS.len());
        // Round trip through the board keeps every field.
        assert_eq!(board.port_stats()[1].stats, stats(200, false));
        assert_eq!(board.port_stats()[1].port, "w\"a\\n");
    }

    #[test]
    fn no_ports_no_port_lines() {
        let mut t = String::from("x\n");
        port_stats_text(&mut t, &[]);
        assert_eq!(t, "x\n");
        let board = PortStatsBoard::new(&[]);
        assert!(board.port_stats().is_empty());
    }
}
