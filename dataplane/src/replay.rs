//! The pcap replay harness: one capture per input port (pcap or pcapng, read
//! with the `pcap-file` crate, any link type of [`linktype`] turned into
//! Ethernet), merged by timestamp, driven through one [`Pipeline`] with the
//! capture timestamps as the clock, written to one output pcap per port.
//!
//! Determinism: the output depends only on the inputs and the config. `now`
//! is the packet's capture timestamp (never the wall clock; if a capture goes
//! backwards in time, `now` stays at the latest time seen); ties between
//! inputs are broken by the order of the `--in` arguments; each output record
//! carries the capture timestamp of the input packet that caused it (frames
//! emitted by timers carry the `now` of the poll). Outputs are nanosecond
//! pcap files (magic `a1b23c4d`), link type Ethernet, snap length 262144,
//! written to temporary files in the output directory and renamed at the
//! end; an output that names an input is refused before anything is written.
//!
//! Errors: an unreadable or corrupted capture, or one whose link type cannot
//! be replayed, is a [`ReplayError`] naming the file and the packet number. A
//! record longer than its file's snap length is skipped and counted
//! (`skipped.snaplen_exceeded`); frames the pipeline cannot parse are counted
//! drops. SIGINT/SIGTERM ([`stop`]) end the reading early: the outputs are
//! finished and the summary says it was interrupted.
//!
//! Modules: [`capture`] (reading files), `feed` (sources, their merge,
//! the read-ahead), [`linktype`] (link types to Ethernet), [`output`]
//! (sinks), [`summary`], [`stop`] (signals), [`verdicts`] and
//! [`sessions`] (what happened to each frame, the sessions at a time),
//! `workers` (several pipelines and the hand-off between them).

pub mod capture;
mod feed;
pub mod linktype;
pub mod output;
pub mod sessions;
pub mod stop;
pub mod summary;
pub mod verdicts;
mod workers;

use workers::Counting;

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

pub use capture::FileSource;
use feed::Ahead;
pub use feed::{Feed, Merge, PacketSource, VecSource};
pub use output::{
    CountSink, MemSink, PacketSink, PcapDirSink, check_outputs_are_not_inputs, out_header,
};
pub use summary::{DriveStats, PortCounts, Summary};
pub use verdicts::{FrameVerdict, VerdictFiles, VerdictSink};

use crate::Timestamp;
use crate::config::Config;
use crate::pipeline::{BuildError, Output, Pipeline, PortId, Prefetch, Shared};

/// Snap length written in output headers.
pub const OUT_SNAPLEN: u32 = 262_144;

/// Latest accepted capture timestamp (2^62 ns, year 2116): later ones are
/// treated as corruption, so `now + timeout` arithmetic downstream can never
/// overflow.
pub const MAX_CAPTURE_NS: u64 = 1 << 62;

/// Replay failures (input or output), each naming the file.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a pcap or pcapng capture ({reason})")]
    NotACapture { path: String, reason: String },
    #[error(
        "{path}: link type {name} cannot be replayed (replayed: Ethernet, Linux cooked SLL/SLL2, raw IPv4/IPv6, BSD loopback NULL/LOOP; see docs/replay.md)"
    )]
    UnsupportedLinkType {
        path: String,
        /// The link type number (without the FCS bits of a pcap header).
        linktype: u32,
        /// Its name and number, e.g. `IEEE802_11 (105)`.
        name: String,
    },
    #[error("{path}: packet #{index}: corrupted or truncated capture: {reason}")]
    Corrupt {
        path: String,
        index: u64,
        reason: String,
    },
    #[error("--in {0}: want PORT=FILE")]
    BadInputArg(String),
    #[error("--in {port}=…: no port named `{port}` in the configuration (its ports: {known})")]
    UnknownPort {
        port: String,
        /// The configured port names, comma-separated.
        known: String,
    },
    #[error(
        "output {output} is the input {input}: refusing to overwrite it (choose another {flag})"
    )]
    OutputIsInput {
        output: String,
        input: String,
        /// The option that named the output (`--out-dir`, `--verdicts`, …).
        flag: String,
    },
    #[error("{flag} {path}: is also the output of {other}: choose another file")]
    OutputClash {
        flag: String,
        path: String,
        other: String,
    },
    #[error("--in {port}=…: given twice")]
    DuplicatePort { port: String },
    #[error("{0}")]
    Build(#[from] BuildError),
}

/// One captured packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Capture timestamp, nanoseconds since the Unix epoch (or any epoch).
    pub ts_ns: u64,
    pub data: Vec<u8>,
}

/// Why a capture record was not fed to the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// Record longer than the file's snap length.
    SnaplenExceeded,
    /// pcapng packet on an interface whose link type cannot be replayed.
    UnsupportedLinkType,
}

impl SkipReason {
    /// The snake_case name (JSON key, table row).
    pub fn name(self) -> &'static str {
        match self {
            SkipReason::SnaplenExceeded => "snaplen_exceeded",
            SkipReason::UnsupportedLinkType => "unsupported_link_type",
        }
    }
}

/// Parse `PORT=FILE` arguments against the config's port names.
///
/// # Errors
/// Malformed argument, unknown or duplicate port.
pub fn parse_inputs(cfg: &Config, args: &[String]) -> Result<Vec<(PortId, PathBuf)>, ReplayError> {
    let mut v: Vec<(PortId, PathBuf)> = Vec::new();
    for a in args {
        let (port, file) = a
            .split_once('=')
            .ok_or_else(|| ReplayError::BadInputArg(a.clone()))?;
        if file.is_empty() {
            return Err(ReplayError::BadInputArg(a.clone()));
        }
        let unknown = || ReplayError::UnknownPort {
            port: port.to_string(),
            known: cfg
                .ports
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        };
        let idx = cfg.port_index(port).ok_or_else(unknown)?;
        let idx = PortId::try_from(idx).map_err(|_| unknown())?;
        if v.iter().any(|(p, _)| *p == idx) {
            return Err(ReplayError::DuplicatePort {
                port: port.to_string(),
            });
        }
        v.push((idx, PathBuf::from(file)));
    }
    Ok(v)
}

/// Progress reporting hook (called every `PROGRESS_EVERY` packets).
pub const PROGRESS_EVERY: u64 = 65_536;

/// Something `drive_full` hands the pipelines' state to at one capture
/// time (`replay --sessions`).
pub trait Snapshot {
    /// The capture time (ns) to take it at, given the first packet's;
    /// `None`: after the last packet.
    fn at_ns(&self, first_ns: u64) -> Option<u64>;

    /// Take it, with `now` the capture time it is taken at: after every
    /// packet up to that time went through (one-frame bursts: exactly;
    /// with bursts, at the first burst starting later).
    ///
    /// # Errors
    /// Output errors.
    fn take(&mut self, shared: &Shared, now: Timestamp) -> Result<(), ReplayError>;
}

/// Drive `pipeline` with `feed`, one packet per `process` call (exact:
/// every packet sees its own timestamp as `now`), writing to `sink`.
/// Returns the skip counts and the capture span in ns.
///
/// # Errors
/// The first input or output error.
pub fn drive(
    pipeline: &mut Pipeline,
    feed: &mut dyn Feed,
    sink: &mut dyn PacketSink,
    progress: impl FnMut(u64),
) -> Result<(BTreeMap<SkipReason, u64>, u64), ReplayError> {
    drive_bursts(pipeline, feed, sink, 1, progress)
}

/// [`drive`] with bursts: up to `burst` consecutive packets of the same
/// input port go through one `process` call, as a DPDK rx burst would, with
/// `now` = the burst's first timestamp (so expiry is exact only to within a
/// burst's time span; `burst = 1` is exact). Output records still carry each
/// packet's own timestamp.
///
/// # Errors
/// The first input or output error.
pub fn drive_bursts(
    pipeline: &mut Pipeline,
    feed: &mut dyn Feed,
    sink: &mut dyn PacketSink,
    burst: usize,
    progress: impl FnMut(u64),
) -> Result<(BTreeMap<SkipReason, u64>, u64), ReplayError> {
    let d = drive_full(
        core::slice::from_mut(pipeline),
        feed,
        sink,
        burst,
        None,
        None,
        progress,
    )?;
    let span = d.span_ns();
    Ok((d.skipped, span))
}

/// [`drive_bursts`], also handing each input frame's verdict to
/// `verdicts` (in input order; [`verdicts::FrameVerdict`]) and returning
/// what the driver measured ([`DriveStats`]: skipped records, first and
/// last capture time, bytes in and out per port). The verdict sink is
/// finished only on success (the caller decides after an error).
///
/// # Errors
/// The first input or output error.
pub fn drive_full(
    pipelines: &mut [Pipeline],
    feed: &mut dyn Feed,
    sink: &mut dyn PacketSink,
    burst: usize,
    mut verdicts: Option<&mut dyn VerdictSink>,
    mut snapshot: Option<&mut dyn Snapshot>,
    mut progress: impl FnMut(u64),
) -> Result<DriveStats, ReplayError> {
    let burst = burst.clamp(1, 1024);
    let mut snapped = false;
    let Some(first_pipeline) = pipelines.first() else {
        return Ok(DriveStats::default());
    };
    let nw = pipelines.len();
    let cap = first_pipeline.shared().config.handoff_queue;
    let mut skipped = BTreeMap::new();
    let mut out = Output::default();
    let mut now: Option<Timestamp> = None;
    let mut first_ts: Option<u64> = None;
    let mut count = 0u64;
    let mut sink = Counting {
        inner: sink,
        bytes: Vec::new(),
    };
    let mut bytes_in: Vec<u64> = Vec::new();
    // Frames seen per input port (numbers for feeds that give none).
    let mut seen: Vec<u64> = Vec::new();
    let mut carry: Option<(PortId, Packet, u64)> = None;
    let mut carry_pre = Prefetch::default();
    let mut scratch = workers::Scratch::default();
    let keep_inputs = verdicts.as_ref().is_some_and(|v| v.wants_input());
    // Classifications from the read-ahead (empty without read-ahead).
    let mut pres: Vec<Prefetch> = Vec::with_capacity(burst);
    let mut items: Vec<workers::Item> = Vec::with_capacity(burst);
    let mut ahead = Ahead::new(
        burst,
        feed.may_read_ahead() && first_pipeline.uses_prefetch(),
    );
    let mut queue: VecDeque<workers::Batch> = VecDeque::new();
    loop {
        pres.clear();
        let (port, first, first_n) = match carry.take() {
            Some(x) => {
                if ahead.prefetching {
                    pres.push(carry_pre);
                }
                x
            }
            None => match ahead.next(feed, &pipelines[0], &mut skipped)? {
                Some(x) => {
                    if ahead.prefetching {
                        pres.push(ahead.last);
                    }
                    x
                }
                None => break,
            },
        };
        let item = |p: Packet, number: u64| workers::Item {
            input: keep_inputs.then(|| p.data.clone()),
            frame: p.data,
            ts: p.ts_ns,
            number,
            verdict: true,
        };
        items.clear();
        items.push(item(first, first_n));
        while items.len() < burst {
            match ahead.next(feed, &pipelines[0], &mut skipped)? {
                Some((p, pk, n)) if p == port => {
                    items.push(item(pk, n));
                    if ahead.prefetching {
                        pres.push(ahead.last);
                    }
                }
                Some(other) => {
                    carry = Some(other);
                    if ahead.prefetching {
                        carry_pre = ahead.last;
                    }
                    break;
                }
                None => break,
            }
        }
        let pi = usize::from(port);
        if pi >= bytes_in.len() {
            bytes_in.resize(pi + 1, 0);
            seen.resize(pi + 1, 0);
        }
        for it in &mut items {
            bytes_in[pi] += it.frame.len() as u64;
            seen[pi] += 1;
            if it.number == 0 {
                it.number = seen[pi];
            }
        }
        let ts0 = items[0].ts;
        let last = items.iter().map(|i| i.ts).max().unwrap_or(ts0);
        let first = *first_ts.get_or_insert(ts0);
        if !snapped
            && let Some(s) = snapshot.as_deref_mut()
            && let Some(t) = s.at_ns(first)
            && ts0 > t
        {
            s.take(pipelines[0].shared(), Timestamp::from_nanos(t))?;
            snapped = true;
        }
        let t = Timestamp::from_nanos(ts0);
        let n = match now {
            Some(prev) if prev >= t => prev,
            _ => {
                for p in pipelines.iter_mut() {
                    p.poll_timers(t);
                }
                t
            }
        };
        let before = count;
        count += items.len() as u64;
        // The burst, split by receiving worker (in worker order).
        if nw == 1 {
            let mut b = scratch.batch(0, port, None);
            core::mem::swap(&mut b.items, &mut items);
            core::mem::swap(&mut b.pres, &mut pres);
            queue.push_back(b);
        } else {
            let mut parts: Vec<workers::Batch> =
                (0..nw).map(|w| scratch.batch(w, port, None)).collect();
            for (k, it) in items.drain(..).enumerate() {
                let r = workers::receiver(&it.frame, nw);
                if let Some(p) = pres.get(k) {
                    parts[r].pres.push(*p);
                }
                parts[r].items.push(it);
            }
            queue.extend(parts.into_iter().filter(|b| !b.items.is_empty()));
        }
        workers::run_batches(
            pipelines,
            &mut queue,
            n,
            &mut out,
            &mut sink,
            verdicts.as_deref_mut(),
            cap,
            &mut scratch,
        )?;
        // `now` never moves backwards; remember the latest capture time.
        now = Some(n.max(Timestamp::from_nanos(last)));
        if before / PROGRESS_EVERY != count / PROGRESS_EVERY {
            progress(count);
        }
    }
    if !snapped && let Some(s) = snapshot {
        let t = s
            .at_ns(first_ts.unwrap_or(0))
            .map(Timestamp::from_nanos)
            .or(now)
            .unwrap_or(Timestamp::ZERO);
        s.take(pipelines[0].shared(), t)?;
    }
    if let Some(n) = now {
        let mut rest = Vec::new();
        for p in pipelines.iter_mut() {
            p.flush_timers(n);
            p.take_generated(&mut rest);
        }
        for (p, f) in rest {
            sink.write(p, n.as_nanos(), &f)?;
        }
    }
    sink.inner.finish()?;
    if let Some(v) = verdicts {
        v.finish()?;
    }
    progress(count);
    Ok(DriveStats {
        skipped,
        first_ns: first_ts,
        last_ns: now.map(Timestamp::as_nanos),
        bytes_in,
        bytes_out: sink.bytes,
    })
}

/// Replay in-memory inputs through a fresh pipeline built from `cfg`.
///
/// # Errors
/// Build or sink errors.
pub fn replay_packets(
    cfg: Config,
    inputs: Vec<(PortId, Vec<Packet>)>,
    sink: &mut dyn PacketSink,
) -> Result<(Summary, Arc<Shared>), ReplayError> {
    let shared = Shared::new(cfg, 1)?;
    let mut pipeline = Pipeline::new(Arc::clone(&shared), 0);
    let srcs: Vec<(PortId, Box<dyn PacketSource>)> = inputs
        .into_iter()
        .map(|(p, v)| (p, Box::new(VecSource::new(v)) as Box<dyn PacketSource>))
        .collect();
    let mut feed = Merge::new(srcs);
    let t0 = Instant::now();
    let d = drive_full(
        core::slice::from_mut(&mut pipeline),
        &mut feed,
        sink,
        1,
        None,
        None,
        |_| {},
    )?;
    let wall = t0.elapsed().as_secs_f64();
    Ok((Summary::from_drive(&shared, d, wall), shared))
}

/// `dataplane replay`: files in, `DIR/PORT.pcap` out.
///
/// # Errors
/// Any [`ReplayError`].
pub fn replay_files(
    cfg: Config,
    inputs: &[(PortId, PathBuf)],
    out_dir: &Path,
) -> Result<Summary, ReplayError> {
    replay_files_burst(cfg, inputs, out_dir, 1)
}

/// [`replay_files`] with bursts of up to `burst` packets per `process` call
/// (see [`drive_bursts`]; 1 = exact per-packet clock).
///
/// # Errors
/// Any [`ReplayError`].
pub fn replay_files_burst(
    cfg: Config,
    inputs: &[(PortId, PathBuf)],
    out_dir: &Path,
    burst: usize,
) -> Result<Summary, ReplayError> {
    replay_files_with(
        cfg,
        inputs,
        out_dir,
        &ReplayOptions {
            burst,
            ..ReplayOptions::default()
        },
    )
}

/// What `dataplane replay` writes besides `DIR/PORT.pcap`, and how it
/// drives the pipeline.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Packets per `process` call ([`drive_bursts`]; 1 = exact clock).
    pub burst: usize,
    /// `--verdicts FILE`: one JSON line per input frame ([`verdicts`]).
    pub verdicts: Option<PathBuf>,
    /// `--drops FILE`: the dropped frames, pcapng, reason in a comment.
    pub drops: Option<PathBuf>,
    /// `--workers N`: pipelines run in one thread with the hand-off
    /// between them (`replay/workers.rs`); 1 = one pipeline.
    pub workers: usize,
    /// `--sessions FILE`: the NAT sessions alive at `sessions_at`
    /// ([`sessions`]), as JSON lines with `sessions_json` (`--json`).
    pub sessions: Option<PathBuf>,
    pub sessions_at: sessions::SessionsAt,
    pub sessions_json: bool,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            burst: 1,
            verdicts: None,
            drops: None,
            workers: 1,
            sessions: None,
            sessions_at: sessions::SessionsAt::End,
            sessions_json: false,
        }
    }
}

/// Refuse the `--verdicts`/`--drops` files when one is an input (same
/// device and inode), a per-port output `DIR/PORT.pcap`, or the other one.
/// Call before anything is written.
///
/// # Errors
/// [`ReplayError::OutputIsInput`], [`ReplayError::OutputClash`].
pub fn check_extra_outputs(
    opts: &ReplayOptions,
    out_dir: &Path,
    port_names: &[String],
    inputs: &[PathBuf],
) -> Result<(), ReplayError> {
    let extras: Vec<(&str, &PathBuf)> = [
        ("--verdicts", opts.verdicts.as_ref()),
        ("--drops", opts.drops.as_ref()),
        ("--sessions", opts.sessions.as_ref()),
    ]
    .into_iter()
    .filter_map(|(f, p)| p.map(|p| (f, p)))
    .collect();
    for (flag, path) in &extras {
        output::check_path_is_not_input(path, flag, inputs)?;
    }
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let same = |a: &Path, b: &Path| {
        use std::os::unix::fs::MetadataExt;
        if abs(a) == abs(b) {
            return true;
        }
        match (std::fs::metadata(a), std::fs::metadata(b)) {
            (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
            _ => false,
        }
    };
    let outs = output::output_paths(out_dir, port_names);
    for (i, (flag, path)) in extras.iter().enumerate() {
        if let Some(o) = outs.iter().find(|o| same(path, o)) {
            return Err(ReplayError::OutputClash {
                flag: (*flag).to_string(),
                path: path.display().to_string(),
                other: format!("--out-dir ({})", o.display()),
            });
        }
        if let Some((other, _)) = extras[..i].iter().find(|(_, p)| same(path, p)) {
            return Err(ReplayError::OutputClash {
                flag: (*flag).to_string(),
                path: path.display().to_string(),
                other: (*other).to_string(),
            });
        }
    }
    Ok(())
}

/// [`replay_files`] with [`ReplayOptions`].
///
/// Nothing is written when an output (a port's, `--verdicts`, `--drops`)
/// would be an input file. The outputs are written to temporary files and
/// renamed at the end; after an input error they hold what was processed
/// before it, after an output error the earlier outputs are left as they
/// were. A stop requested by a signal ([`stop::install`]) ends the reading:
/// the outputs are finished and the summary's `interrupted` names the
/// signal.
///
/// # Errors
/// Any [`ReplayError`].
pub fn replay_files_with(
    cfg: Config,
    inputs: &[(PortId, PathBuf)],
    out_dir: &Path,
    opts: &ReplayOptions,
) -> Result<Summary, ReplayError> {
    let names: Vec<String> = cfg.ports.iter().map(|p| p.name.clone()).collect();
    let in_paths: Vec<PathBuf> = inputs.iter().map(|(_, p)| p.clone()).collect();
    check_outputs_are_not_inputs(out_dir, &names, &in_paths)?;
    check_extra_outputs(opts, out_dir, &names, &in_paths)?;
    // Regular files' sizes (a FIFO has none: no percentage then).
    let sizes: Vec<Option<u64>> = inputs
        .iter()
        .map(|(_, p)| {
            std::fs::metadata(p)
                .ok()
                .filter(std::fs::Metadata::is_file)
                .map(|m| m.len())
        })
        .collect();
    let total_bytes: u64 = sizes.iter().flatten().sum();
    let sized = sizes.iter().all(Option::is_some);
    let read = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut srcs: Vec<(PortId, Box<dyn PacketSource>)> = Vec::new();
    for (port, path) in inputs {
        let mac = cfg
            .ports
            .get(usize::from(*port))
            .map_or([0; 6], |p| p.mac.0);
        let src = FileSource::open_for_port(path, mac)?.count_bytes(Arc::clone(&read));
        srcs.push((*port, Box::new(src)));
    }
    tracing::info!(inputs = inputs.len(), bytes = total_bytes, out = %out_dir.display(), "replay starting");
    let nw = opts.workers.clamp(1, crate::config::MAX_WORKERS);
    let shared = Shared::new(cfg, nw)?;
    let mut sink = PcapDirSink::create(out_dir, &shared.port_names())?;
    let mut vfiles = if opts.verdicts.is_some() || opts.drops.is_some() {
        Some(VerdictFiles::create(
            &shared.port_names(),
            opts.verdicts.as_deref(),
            opts.drops.as_deref(),
        )?)
    } else {
        None
    };
    let mut sfile = match &opts.sessions {
        Some(p) => Some(sessions::SessionsFile::create(
            p,
            opts.sessions_at,
            opts.sessions_json,
        )?),
        None => None,
    };
    // Outputs exist: a signal now finishes them (if handlers are installed).
    stop::arm();
    let mut pipelines: Vec<Pipeline> = (0..nw)
        .map(|w| Pipeline::new(Arc::clone(&shared), w))
        .collect();
    let bar = progress_bar(total_bytes, sized);
    let t0 = Instant::now();
    let mut feed = Merge::new(srcs);
    let r = drive_full(
        &mut pipelines,
        &mut feed,
        &mut sink,
        opts.burst,
        vfiles.as_mut().map(|v| v as &mut dyn VerdictSink),
        sfile.as_mut().map(|v| v as &mut dyn Snapshot),
        |n| {
            if let Some(b) = &bar {
                b.set_message(format!("{n} packets"));
                if sized {
                    b.set_position(read.load(std::sync::atomic::Ordering::Relaxed));
                }
            }
        },
    );
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let d = match r {
        Ok(x) => x,
        Err(e) => {
            // An input error: keep what was processed before it (valid
            // files). An output error: `finish` keeps nothing.
            if !sink.failed() {
                let _ = sink.finish();
                if let Some(v) = vfiles.as_mut() {
                    let _ = v.finish();
                }
            }
            return Err(e);
        }
    };
    if let Some(f) = sfile.as_mut() {
        f.finish()?;
    }
    let wall = t0.elapsed().as_secs_f64();
    let interrupted = stop::requested().map(|s| stop::signal_name(s).to_string());
    tracing::info!(
        wall_seconds = wall,
        capture_ns = d.span_ns(),
        skipped = d.skipped.values().sum::<u64>(),
        interrupted = interrupted.as_deref().unwrap_or("no"),
        "replay finished"
    );
    let mut s = Summary::from_drive(&shared, d, wall);
    s.interrupted = interrupted;
    Ok(s)
}

/// The progress display on stderr for inputs over 16 MiB (indicatif hides
/// it when stderr is not a terminal): a bar with the percentage, bytes read
/// and the time left when every input is a regular file (`sized`), a
/// spinner with the packet count otherwise (a FIFO).
fn progress_bar(total_bytes: u64, sized: bool) -> Option<indicatif::ProgressBar> {
    if total_bytes <= 16 << 20 {
        return None;
    }
    let b = if sized {
        let b = indicatif::ProgressBar::new(total_bytes);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "replaying [{bar:30}] {percent:>3}% {bytes}/{total_bytes} {msg}, {eta} left",
        ) {
            b.set_style(style.progress_chars("=> "));
        }
        b
    } else {
        indicatif::ProgressBar::new_spinner()
    };
    b.set_message("0 packets");
    Some(b)
}
