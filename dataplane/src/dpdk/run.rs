//! `dataplane run`: the pipeline on DPDK ports.
//!
//! One [`Shared`] per process, one [`Pipeline`] per worker. Worker `w` runs
//! on an EAL lcore (worker 0 on the main lcore, the others on worker lcores)
//! and owns RX and TX queue `w` of every port and its own mbuf pool. Its loop:
//!
//! ```text
//! for each port p:  rx_burst(p, w, burst) → now = clock (once per burst)
//!                   → pipeline.process(p, mbufs, now) → per frame Tx(port),
//!                     HandOff(worker) or free (the worker's own NAT locked
//!                     once for the burst's NAT pass)
//!                   → generated frames copied into fresh mbufs
//!                   → tx_burst per output port (unsent frames are freed, counted)
//! each loop:        what other workers handed over (one bounded queue per
//!                   worker pair, `handoff_queue`; all it holds, a burst at a
//!                   time) → process_handoff → as above
//! every ≥ 1 ms:     pipeline.poll_timers(now) (neighbour timers, its NAT's
//!                   expiry; IPv6 flow expiry on worker 0 only)
//! every ≥ 1 s:      (main lcore only) rte_eth_stats_get + rte_eth_link_get_nowait
//!                   per port → PortStatsBoard (atomics) for the control thread
//! ```
//!
//! Device statistics while running: DPDK does not promise that ethdev control
//! calls such as `rte_eth_stats_get` are thread-safe, so the control thread
//! (Prometheus `/metrics`, `dataplane ctl`) never calls them. The worker on
//! the main lcore samples every port about once a second ([`STATS_PERIOD`])
//! into a [`PortStatsBoard`] of relaxed atomics, which the control thread
//! reads; neither side waits for the other. The cost on the packet path is
//! one `rte_eth_stats_get` + `rte_eth_link_get_nowait` per port per second
//! on worker 0.
//!
//! Stop: SIGINT/SIGTERM (a flag set by the handler), or a [`RunLimits`]
//! bound. Then workers return, ports are stopped and closed (the pcap PMD
//! flushes its `tx_pcap` on close), pools freed, and a [`RunReport`] with
//! `rte_eth_stats`, link status and the pipeline counters is returned.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::eal::Eal;
use super::error::DpdkError;
use super::lcore;
use super::mbuf::Mbuf;
use super::mempool::Mempool;
use super::port::{Port, PortInfo, PortSetup, PortStats};
use crate::config::Config;
use crate::metrics::{CounterSnapshot, PortStatsBoard, PortStatsSource};
use crate::pipeline::{Disposition, Frame, Output, Pipeline, PortId, Shared};
use crate::time::{CycleClock, Timestamp};

impl Frame for Mbuf {
    #[inline]
    fn data(&self) -> &[u8] {
        Mbuf::data(self)
    }
    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        Mbuf::data_mut(self)
    }
    fn grow_front(&mut self, n: usize) -> bool {
        u16::try_from(n).is_ok_and(|n| self.prepend(n))
    }
    fn shrink_front(&mut self, n: usize) -> bool {
        u16::try_from(n).is_ok_and(|n| self.adj(n))
    }
}

/// Optional bounds on a run (tests, benchmarks). Unbounded by default: the
/// run ends on SIGINT/SIGTERM.
#[derive(Debug, Clone, Default)]
pub struct RunLimits {
    /// Stop after this much wall time.
    pub duration: Option<Duration>,
    /// Stop once the workers together received at least this many frames
    /// (checked after each burst, so with one worker it is exact).
    pub rx_packets: Option<u64>,
    /// Stop after no frame was received for this long, once at least one was.
    pub idle: Option<Duration>,
    /// Stop once another thread sets this flag (checked once per loop).
    pub stop: Option<Arc<AtomicBool>>,
}

impl RunLimits {
    /// Limits from the environment, for `dataplane run`:
    /// `DATAPLANE_RUN_SECS` (duration, may be fractional),
    /// `DATAPLANE_RUN_PACKETS` (received frames), `DATAPLANE_RUN_IDLE_MS`.
    ///
    /// # Errors
    /// [`DpdkError::Config`] naming the variable when a value does not parse.
    pub fn from_env() -> Result<RunLimits, DpdkError> {
        fn var<T: std::str::FromStr>(name: &str) -> Result<Option<T>, DpdkError> {
            match std::env::var(name) {
                Ok(v) => v.trim().parse().map(Some).map_err(|_| DpdkError::Config {
                    field: name.to_owned(),
                    reason: format!("`{v}` is not a valid number"),
                }),
                Err(_) => Ok(None),
            }
        }
        let secs: Option<f64> = var("DATAPLANE_RUN_SECS")?;
        let duration = match secs {
            Some(s) if s.is_finite() && s >= 0.0 => Some(Duration::from_secs_f64(s)),
            Some(s) => {
                return Err(DpdkError::Config {
                    field: "DATAPLANE_RUN_SECS".into(),
                    reason: format!("{s} is not >= 0"),
                });
            }
            None => None,
        };
        Ok(RunLimits {
            duration,
            rx_packets: var("DATAPLANE_RUN_PACKETS")?,
            idle: var::<u64>("DATAPLANE_RUN_IDLE_MS")?.map(Duration::from_millis),
            stop: None,
        })
    }
}

/// Per-worker driver counters (the pipeline's own counters are in
/// [`RunReport::counters`]).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct WorkerStats {
    pub lcore: u32,
    /// Frames received.
    pub rx: u64,
    /// Frames handed to a TX queue (forwarded + generated).
    pub tx: u64,
    /// Frames the TX queue did not take (queue full), freed.
    pub tx_full: u64,
    /// Forwarded frames freed by the pipeline's decision (drops + consumed).
    pub freed: u64,
    /// Generated frames (ARP, ICMP, …) copied into mbufs.
    pub generated: u64,
    /// Generated frames lost: no mbuf free or too large for one mbuf.
    pub generated_lost: u64,
    /// Multi-segment frames that could not be linearised, freed.
    pub rx_multiseg_dropped: u64,
    /// RX bursts that returned at least one frame.
    pub bursts: u64,
    /// Timer polls.
    pub timer_polls: u64,
    /// Frames other workers handed to this one.
    pub handed_in: u64,
}

/// One port at the end of a run.
#[derive(Debug, Clone, Serialize)]
pub struct PortReport {
    pub name: String,
    pub device: String,
    pub port_id: u16,
    pub info: PortInfo,
    pub stats: PortStats,
}

/// What a run did.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub elapsed_secs: f64,
    /// Why the run ended: "signal N", "duration", "rx_packets", "idle",
    /// "stop flag".
    pub stop_reason: String,
    pub ports: Vec<PortReport>,
    pub workers: Vec<WorkerStats>,
    pub counters: CounterSnapshot,
    /// Frames handed to a worker that had stopped before it took them
    /// (freed at the end of the run, as frames left in an RX ring are).
    pub handoff_unprocessed: u64,
    /// Share of received frames handed from the receiving worker to the
    /// worker owning their NAT session (0 with one worker).
    pub handoff_share: f64,
}

/// `dataplane run --config FILE`: runs until SIGINT/SIGTERM (or the limits in
/// [`RunLimits::from_env`]) and prints the [`RunReport`] as JSON on stdout.
///
/// # Errors
/// Any [`DpdkError`] from EAL, port or pool setup, or a failed worker.
pub fn run(cfg: &Config) -> Result<(), DpdkError> {
    let limits = RunLimits::from_env()?;
    let report = run_with(cfg, &limits)?;
    let json =
        serde_json::to_string_pretty(&report).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    println!("{json}");
    Ok(())
}

/// Initialises EAL (once per process), opens the configured ports and runs
/// the workers until a signal or a limit. See the module doc.
///
/// # Errors
/// As [`run`].
pub fn run_with(cfg: &Config, limits: &RunLimits) -> Result<RunReport, DpdkError> {
    let eal = Eal::init(&cfg.eal_args())?;
    run_on(&eal, cfg, limits)
}

/// Frames per RX burst at most (the `[dpdk] burst` setting is clamped to it).
pub const MAX_BURST: u16 = 256;

/// How often the main lcore samples every port's `rte_eth_stats` and link
/// status for the control thread.
pub const STATS_PERIOD: Duration = Duration::from_secs(1);

/// Samples every port into `board`. Call from one thread at a time (the
/// main lcore: DPDK's ethdev control calls are not promised thread-safe).
/// A port whose sample fails keeps its previous values; the failure is
/// logged once per port (`warned`).
fn sample_ports(ports: &[Port], board: &PortStatsBoard, warned: &mut [bool]) {
    for (i, p) in ports.iter().enumerate() {
        match p.stats() {
            Ok(st) => board.publish(i, &st),
            Err(e) => {
                if let Some(w) = warned.get_mut(i)
                    && !*w
                {
                    *w = true;
                    tracing::warn!(port = p.name(), error = %e, "cannot sample port statistics; metrics keep the last sample");
                }
            }
        }
    }
}

/// Like [`run_with`] with an already initialised EAL.
///
/// # Errors
/// As [`run`].
pub fn run_on(eal: &Eal, cfg: &Config, limits: &RunLimits) -> Result<RunReport, DpdkError> {
    let workers = cfg.workers.max(1);
    let worker_lcores = eal.worker_lcores();
    if worker_lcores.len() + 1 < workers {
        return Err(DpdkError::NotEnoughLcores {
            workers,
            available: worker_lcores.len() + 1,
        });
    }
    let burst = cfg.dpdk.burst.clamp(1, MAX_BURST);
    let queues = u16::try_from(workers).map_err(|_| DpdkError::Config {
        field: "workers".into(),
        reason: "too many".into(),
    })?;

    // SAFETY-free setup: handlers only set a flag.
    // SAFETY: installs async-signal-safe handlers (they store one flag).
    if unsafe { dpdk_sys::dpdk_shim_install_stop_handlers() } != 0 {
        tracing::warn!("could not install SIGINT/SIGTERM handlers");
    }

    let mut pools = Vec::with_capacity(workers);
    for w in 0..workers {
        pools.push(Arc::new(Mempool::new(
            eal,
            &format!("dp_pool_{w}"),
            cfg.dpdk.mempool_size,
            -1,
        )?));
    }

    // Ports in config order: PortId = index.
    let mut ports = Vec::with_capacity(cfg.ports.len());
    let mut infos = Vec::with_capacity(cfg.ports.len());
    for (i, p) in cfg.ports.iter().enumerate() {
        let device = p.device.as_deref().ok_or_else(|| DpdkError::Config {
            field: format!("ports[{i}].device"),
            reason: "the DPDK driver needs a device (PCI address or vdev string)".into(),
        })?;
        let mut port = Port::open(eal, &p.name, device)?;
        let setup = PortSetup {
            queues,
            rx_desc: cfg.dpdk.rx_desc,
            tx_desc: cfg.dpdk.tx_desc,
            promiscuous: true,
            // The device MAC is set only on physical ports. A vdev's "MAC"
            // is a kernel interface's (tap) or meaningless (pcap, ring): on a
            // tap enslaved to a bridge, the bridge would take frames for that
            // MAC as its own. Promiscuous mode receives the configured MAC.
            mac: (!p.is_vdev()).then_some(p.mac.0),
            mtu: Some(p.mtu),
        };
        let pool_refs: Vec<&Mempool> = pools.iter().map(|p| &**p).collect();
        let info = port.configure(&setup, &pool_refs)?;
        tracing::info!(port = %p.name, device, id = port.id(), ?info, "port started");
        ports.push(port);
        infos.push(info);
    }
    let ports = Arc::new(ports);
    let names: Vec<String> = ports.iter().map(|p| p.name().to_owned()).collect();
    let board = Arc::new(PortStatsBoard::new(&names));
    let mut warned = vec![false; ports.len()];
    // First sample before any worker runs, so a scrape never sees zeros
    // standing for "not sampled yet".
    sample_ports(&ports, &board, &mut warned);

    let shared =
        Shared::new(cfg.clone(), workers).map_err(|e| DpdkError::Pipeline(e.to_string()))?;
    // The control thread (Prometheus `/metrics`, the `dataplane ctl` socket)
    // reads the same shared counters; it never touches the packet path and
    // stops when `_control` drops at the end of the run.
    let source: Arc<dyn PortStatsSource> = board.clone();
    let _control = crate::control::spawn_with_ports(shared.clone(), &cfg.control, Some(source))
        .map_err(|e| DpdkError::Pipeline(format!("control thread: {e}")))?;
    let ctl = Arc::new(Control {
        stop: AtomicBool::new(false),
        rx_total: AtomicU64::new(0),
        stats: (0..workers)
            .map(|_| Mutex::new(WorkerStats::default()))
            .collect(),
    });
    let epoch = Instant::now();
    let handoffs = Arc::new(Handoffs::new(workers, cfg.handoff_queue));

    let mut jobs = Vec::new();
    let mut launch_err = None;
    for (w, &lcore) in (1..workers).zip(&worker_lcores) {
        let ctx = WorkerCtx {
            worker: w,
            pipeline: Pipeline::new(shared.clone(), w),
            ports: ports.clone(),
            pool: pools[w].clone(),
            ctl: ctl.clone(),
            burst,
            epoch,
            clock: CycleClock::new(eal.tsc_hz()),
            limits: None,
            port_stats: None,
            handoffs: handoffs.clone(),
        };
        match lcore::launch(eal, w, lcore, move || {
            ctx.run();
            0
        }) {
            Ok(j) => jobs.push((w, j)),
            Err(e) => {
                ctl.stop.store(true, Ordering::SeqCst);
                launch_err = Some(e);
                break;
            }
        }
    }
    let stop_reason = if launch_err.is_none() {
        let ctx = WorkerCtx {
            worker: 0,
            pipeline: Pipeline::new(shared.clone(), 0),
            ports: ports.clone(),
            pool: pools[0].clone(),
            ctl: ctl.clone(),
            burst,
            epoch,
            clock: CycleClock::new(eal.tsc_hz()),
            limits: Some(limits.clone()),
            port_stats: Some((board.clone(), warned.clone())),
            handoffs: handoffs.clone(),
        };
        ctx.run()
    } else {
        String::from("launch error")
    };
    ctl.stop.store(true, Ordering::SeqCst);
    let mut worker_err = None;
    for (w, j) in jobs {
        if j.wait() != 0 && worker_err.is_none() {
            worker_err = Some(DpdkError::Worker {
                worker: w,
                reason: "panicked".into(),
            });
        }
    }
    let elapsed = epoch.elapsed();
    // Frames still queued between workers go back to their pools now.
    let handoff_unprocessed: u64 = handoffs.q.iter().map(|q| q.len() as u64).sum();
    drop(handoffs);

    // Stats before close (close resets them on some PMDs).
    let mut reports = Vec::with_capacity(ports.len());
    for (port, info) in ports.iter().zip(infos) {
        let stats = match port.stats() {
            Ok(st) => {
                // The last scrapes before the control thread stops see the
                // final figures.
                board.publish(reports.len(), &st);
                st
            }
            Err(e) => {
                tracing::warn!(port = port.name(), error = %e, "final port statistics");
                PortStats::default()
            }
        };
        reports.push(PortReport {
            name: port.name().to_owned(),
            device: port.device().to_owned(),
            port_id: port.id(),
            info,
            stats,
        });
    }
    let counters = shared.counters.snapshot(&shared.port_names());
    // Close ports (flushes pcap output) before the pools go.
    let mut close_err = None;
    match Arc::try_unwrap(ports) {
        Ok(ports) => {
            for mut p in ports {
                if let Err(e) = p.close() {
                    close_err.get_or_insert(e);
                }
            }
        }
        Err(_) => tracing::error!("ports still referenced after workers stopped; not closing"),
    }
    drop(pools);
    if let Some(e) = launch_err.or(worker_err).or(close_err) {
        return Err(e);
    }
    let workers_stats = ctl
        .stats
        .iter()
        .map(|m| *m.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
        .collect();
    let rx: u64 = counters.rx.values().sum();
    let handoff_share = if rx == 0 {
        0.0
    } else {
        counters.handed_off as f64 / rx as f64
    };
    Ok(RunReport {
        elapsed_secs: elapsed.as_secs_f64(),
        stop_reason,
        ports: reports,
        workers: workers_stats,
        counters,
        handoff_unprocessed,
        handoff_share,
    })
}

/// A frame handed from one worker to the worker owning its NAT session.
struct Handed {
    m: Mbuf,
    port: PortId,
    hairpin: bool,
}

/// The hand-off queues: `q[from * n + to]`, bounded (`handoff_queue`),
/// single producer (`from`) and single consumer (`to`); a full queue is a
/// counted drop, never a wait. Frames left in them at the end are freed
/// when this drops (before the mempools go).
struct Handoffs {
    n: usize,
    q: Vec<crossbeam_queue::ArrayQueue<Handed>>,
}

impl Handoffs {
    fn new(n: usize, cap: usize) -> Self {
        Handoffs {
            n,
            q: (0..n * n)
                .map(|_| crossbeam_queue::ArrayQueue::new(cap.max(1)))
                .collect(),
        }
    }
}

struct Control {
    stop: AtomicBool,
    rx_total: AtomicU64,
    stats: Vec<Mutex<WorkerStats>>,
}

struct WorkerCtx {
    worker: usize,
    pipeline: Pipeline,
    ports: Arc<Vec<Port>>,
    pool: Arc<Mempool>,
    ctl: Arc<Control>,
    burst: u16,
    epoch: Instant,
    /// The worker's clock: the TSC, re-anchored to `epoch`'s monotonic clock
    /// every millisecond (`CycleClock`).
    clock: CycleClock,
    /// Only the worker on the main lcore evaluates limits and signals.
    limits: Option<RunLimits>,
    /// Only the worker on the main lcore samples port statistics (with the
    /// per-port "failure already logged" flags).
    port_stats: Option<(Arc<PortStatsBoard>, Vec<bool>)>,
    handoffs: Arc<Handoffs>,
}

/// Timer polls at most this often per worker (ns).
const TIMER_PERIOD: u64 = 1_000_000;

/// `d` in nanoseconds (saturating).
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The CPU's cycle counter (what `rte_get_tsc_hz` measures).
#[inline(always)]
fn cycles() -> u64 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `rdtsc` reads the time-stamp counter; no memory is accessed
    // (x86-64 baseline).
    #[allow(unused_unsafe)]
    let c = unsafe { core::arch::x86_64::_rdtsc() };
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: reads the counter `rte_get_tsc_hz` is the frequency of.
    let c = unsafe { dpdk_sys::dpdk_shim_rdtsc() };
    c
}

impl WorkerCtx {
    /// Now, in nanoseconds since the run's epoch: once per burst. The TSC
    /// scaled by its frequency, re-anchored to the monotonic clock every
    /// millisecond (`CycleClock`: bounded error, never decreasing), so a
    /// burst pays a counter read, not a system clock call.
    #[inline]
    fn now(&mut self) -> (u64, Timestamp) {
        let epoch = self.epoch;
        let ns = self.clock.read(cycles(), || {
            nanos(Instant::now().saturating_duration_since(epoch))
        });
        (ns, Timestamp::from_nanos(ns))
    }

    /// The worker loop; returns why it stopped.
    fn run(mut self) -> String {
        let q = u16::try_from(self.worker).unwrap_or(u16::MAX);
        let nports = self.ports.len();
        let mut st = WorkerStats {
            lcore: super::eal::current_lcore().unwrap_or(u32::MAX),
            ..WorkerStats::default()
        };
        let mut rx: Vec<Mbuf> = Vec::with_capacity(usize::from(self.burst));
        let mut txq: Vec<Vec<Mbuf>> = (0..nports)
            .map(|_| Vec::with_capacity(2 * usize::from(self.burst)))
            .collect();
        let mut out = Output::default();
        let mut handed: Vec<Mbuf> = Vec::with_capacity(usize::from(self.burst));
        // One reference for the loop (no reference counting per burst).
        let handoffs = self.handoffs.clone();
        let mut timer_gen = Vec::new();
        let (start, _) = self.now();
        let mut last_poll = start;
        let mut last_rx = None::<u64>;
        let limits = self.limits.take();
        let mut port_stats = self.port_stats.take();
        let mut last_sample = start;
        let reason = loop {
            if self.ctl.stop.load(Ordering::Relaxed) {
                break String::from("stopped by another worker");
            }
            let mut got = 0u64;
            // The last burst's clock reading, reused for the timer check
            // below (one clock read per burst, not two).
            let mut read = None;
            for p in 0..nports {
                let (n, dropped) = self.ports[p].rx_burst(q, &mut rx, self.burst);
                st.rx_multiseg_dropped += dropped as u64;
                if n == 0 {
                    rx.clear();
                    continue;
                }
                got += n as u64;
                st.rx += n as u64;
                st.bursts += 1;
                let (inow, now) = self.now();
                read = Some((inow, now));
                let ingress = PortId::try_from(p).unwrap_or(PortId::MAX);
                self.pipeline.process(ingress, &mut rx[..], now, &mut out);
                self.dispose(ingress, &mut rx, &mut out, &mut txq, &mut st);
                self.flush(q, &mut txq, &mut st);
            }
            // What other workers handed over.
            if handoffs.n > 1 {
                let n = self.take_handoffs(&handoffs, &mut handed, &mut txq, &mut out, &mut st);
                if n > 0 {
                    self.flush(q, &mut txq, &mut st);
                }
            }
            let (inow, now) = read.unwrap_or_else(|| self.now());
            if inow.saturating_sub(last_poll) >= TIMER_PERIOD {
                last_poll = inow;
                st.timer_polls += 1;
                self.pipeline.poll_timers(now);
                self.pipeline.take_generated(&mut timer_gen);
                if !timer_gen.is_empty() {
                    self.queue_generated(&mut timer_gen, &mut txq, &mut st);
                    self.flush(q, &mut txq, &mut st);
                }
            }
            if got > 0 {
                last_rx = Some(inow);
            }
            if let Some((board, warned)) = &mut port_stats
                && inow.saturating_sub(last_sample) >= nanos(STATS_PERIOD)
            {
                last_sample = inow;
                sample_ports(&self.ports, board, warned);
            }
            if let Some(l) = &limits {
                // SAFETY: reads a sig_atomic_t flag.
                if unsafe { dpdk_sys::dpdk_shim_stop_requested() } != 0 {
                    // SAFETY: as above.
                    break format!("signal {}", unsafe { dpdk_sys::dpdk_shim_stop_signal() });
                }
                if l.stop.as_ref().is_some_and(|f| f.load(Ordering::Relaxed)) {
                    break String::from("stop flag");
                }
                if l.duration
                    .is_some_and(|d| inow.saturating_sub(start) >= nanos(d))
                {
                    break String::from("duration");
                }
                if let Some(max) = l.rx_packets {
                    let total = if got > 0 {
                        self.ctl.rx_total.fetch_add(got, Ordering::Relaxed) + got
                    } else {
                        self.ctl.rx_total.load(Ordering::Relaxed)
                    };
                    if total >= max {
                        break String::from("rx_packets");
                    }
                }
                if let (Some(idle), Some(t)) = (l.idle, last_rx)
                    && inow.saturating_sub(t) >= nanos(idle)
                {
                    break String::from("idle");
                }
            } else if got > 0 {
                self.ctl.rx_total.fetch_add(got, Ordering::Relaxed);
            }
        };
        self.ctl.stop.store(true, Ordering::SeqCst);
        // Send what timers still produced; drop anything left.
        self.pipeline.take_generated(&mut timer_gen);
        self.queue_generated(&mut timer_gen, &mut txq, &mut st);
        self.flush(q, &mut txq, &mut st);
        if let Some(slot) = self.ctl.stats.get(self.worker) {
            *slot
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = st;
        }
        reason
    }

    /// Act on the dispositions of `frames` (received on `ingress`, just
    /// processed into `out`): to a TX list, to another worker's hand-off
    /// queue (full: counted drop), or freed; then the generated frames.
    fn dispose(
        &self,
        ingress: PortId,
        frames: &mut Vec<Mbuf>,
        out: &mut Output,
        txq: &mut [Vec<Mbuf>],
        st: &mut WorkerStats,
    ) {
        let nports = txq.len();
        for (m, d) in frames.drain(..).zip(out.dispositions.iter()) {
            match *d {
                Disposition::Tx(o) if usize::from(o) < nports => txq[usize::from(o)].push(m),
                Disposition::HandOff { worker, hairpin }
                    if usize::from(worker) < self.handoffs.n =>
                {
                    let h = Handed {
                        m,
                        port: ingress,
                        hairpin,
                    };
                    let i = self.worker * self.handoffs.n + usize::from(worker);
                    if let Err(h) = self.handoffs.q[i].push(h) {
                        self.pipeline.handoff_dropped(1);
                        st.freed += 1;
                        drop(h);
                    }
                }
                _ => {
                    st.freed += 1;
                    drop(m);
                }
            }
        }
        // Copies to hand on after the burst's own hand-offs.
        for (worker, port, bytes) in out.handoffs.drain(..) {
            let ok = usize::from(worker) < self.handoffs.n
                && self.pool.alloc_copy(&bytes).is_some_and(|m| {
                    let i = self.worker * self.handoffs.n + usize::from(worker);
                    self.handoffs.q[i]
                        .push(Handed {
                            m,
                            port,
                            hairpin: false,
                        })
                        .is_ok()
                });
            if !ok {
                self.pipeline.handoff_dropped(1);
            }
        }
        self.queue_generated(&mut out.generated, txq, st);
    }

    /// Run what the other workers handed to this one: what each queue
    /// holds now, in runs of at most a burst of one ingress port and kind.
    /// Returns the frames taken.
    fn take_handoffs(
        &mut self,
        hs: &Handoffs,
        buf: &mut Vec<Mbuf>,
        txq: &mut [Vec<Mbuf>],
        out: &mut Output,
        st: &mut WorkerStats,
    ) -> usize {
        let (n, me) = (hs.n, self.worker);
        let mut total = 0;
        for from in (0..n).filter(|&f| f != me) {
            let q = &hs.q[from * n + me];
            let mut taken = 0;
            let mut run: Option<(PortId, bool)> = None;
            // Everything queued now (at most the queue's capacity), in
            // runs of a burst: the owner keeps up with its receivers.
            let limit = q.len();
            while taken < limit {
                let Some(h) = q.pop() else { break };
                taken += 1;
                if run.is_some_and(|r| r != (h.port, h.hairpin))
                    || buf.len() >= usize::from(self.burst)
                {
                    self.run_handed(run, buf, txq, out, st);
                }
                run = Some((h.port, h.hairpin));
                buf.push(h.m);
            }
            self.run_handed(run, buf, txq, out, st);
            total += taken;
        }
        total
    }

    fn run_handed(
        &mut self,
        run: Option<(PortId, bool)>,
        buf: &mut Vec<Mbuf>,
        txq: &mut [Vec<Mbuf>],
        out: &mut Output,
        st: &mut WorkerStats,
    ) {
        let Some((port, hairpin)) = run else { return };
        if buf.is_empty() {
            return;
        }
        let (_, now) = self.now();
        st.handed_in += buf.len() as u64;
        self.pipeline
            .process_handoff(port, hairpin, &mut buf[..], now, out);
        self.dispose(port, buf, out, txq, st);
    }

    fn queue_generated(
        &self,
        gen_frames: &mut Vec<(PortId, Vec<u8>)>,
        txq: &mut [Vec<Mbuf>],
        st: &mut WorkerStats,
    ) {
        for (o, bytes) in gen_frames.drain(..) {
            match (txq.get_mut(usize::from(o)), self.pool.alloc_copy(&bytes)) {
                (Some(q), Some(m)) => {
                    q.push(m);
                    st.generated += 1;
                }
                _ => st.generated_lost += 1,
            }
        }
    }

    /// Sends every per-port TX list; a few retries, then frees what the queue
    /// would not take (counted in `tx_full`).
    fn flush(&self, q: u16, txq: &mut [Vec<Mbuf>], st: &mut WorkerStats) {
        for (p, frames) in txq.iter_mut().enumerate() {
            let mut tries = 0;
            while !frames.is_empty() {
                let sent = self.ports[p].tx_burst(q, frames);
                st.tx += sent as u64;
                tries += 1;
                if sent == 0 && tries >= 4 {
                    st.tx_full += frames.len() as u64;
                    frames.clear();
                }
            }
        }
    }
}
