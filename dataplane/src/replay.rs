//! The pcap replay harness: one capture per input port (pcap or pcapng, read
//! with the `pcap-file` crate), merged by timestamp, driven through one
//! [`Pipeline`] with the capture timestamps as the clock, written to one
//! output pcap per port.
//!
//! Determinism: the output depends only on the inputs and the config. `now`
//! is the packet's capture timestamp (never the wall clock; if a capture goes
//! backwards in time, `now` stays at the latest time seen); ties between
//! inputs are broken by the order of the `--in` arguments; each output record
//! carries the capture timestamp of the input packet that caused it (frames
//! emitted by timers carry the `now` of the poll). Outputs are nanosecond
//! pcap files (magic `a1b23c4d`), link type Ethernet, snap length 262144.
//!
//! Errors: an unreadable or corrupted capture, or one whose link type is not
//! Ethernet, is a [`ReplayError`] naming the file and the packet number. A
//! record longer than its file's snap length is skipped and counted
//! (`skipped.snaplen_exceeded`); frames the pipeline cannot parse are counted
//! drops.

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter};
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::{DataLink, PcapError, TsResolution};
use serde::Serialize;

use crate::Timestamp;
use crate::config::Config;
use crate::pipeline::{BuildError, Disposition, Output, Pipeline, PortId, Prefetch, Shared};

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
    #[error("{path}: unsupported link type {linktype:?} (only Ethernet captures can be replayed)")]
    UnsupportedLinkType { path: String, linktype: DataLink },
    #[error("{path}: packet #{index}: corrupted or truncated capture: {reason}")]
    Corrupt {
        path: String,
        index: u64,
        reason: String,
    },
    #[error("--in {0}: want PORT=FILE")]
    BadInputArg(String),
    #[error("--in {port}=…: no port named `{port}` in the configuration")]
    UnknownPort { port: String },
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
    /// pcapng packet on an interface whose link type is not Ethernet.
    NonEthernetInterface,
}

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

enum Reader {
    Pcap {
        r: PcapReader<BufReader<File>>,
        snaplen: u32,
        ns: bool,
    },
    PcapNg {
        r: PcapNgReader<BufReader<File>>,
        last_ts: u64,
    },
}

/// A pcap or pcapng file (detected by its magic number).
pub struct FileSource {
    path: String,
    reader: Reader,
    index: u64,
}

impl FileSource {
    /// Open a capture file.
    ///
    /// # Errors
    /// I/O errors, unknown format, non-Ethernet link type.
    pub fn open(path: &Path) -> Result<FileSource, ReplayError> {
        let p = path.display().to_string();
        let io = |source| ReplayError::Io {
            path: p.clone(),
            source,
        };
        let mut f = File::open(path).map_err(io)?;
        let mut magic = [0u8; 4];
        let n = read_full(&mut f, &mut magic).map_err(io)?;
        drop(f);
        let f = BufReader::with_capacity(1 << 16, File::open(path).map_err(io)?);
        let not = |reason: String| ReplayError::NotACapture {
            path: p.clone(),
            reason,
        };
        if n < 4 {
            return Err(not("file shorter than a capture header".into()));
        }
        let reader = if magic == [0x0a, 0x0d, 0x0d, 0x0a] {
            let r = PcapNgReader::new(f).map_err(|e| not(e.to_string()))?;
            Reader::PcapNg { r, last_ts: 0 }
        } else {
            let r = PcapReader::new(f).map_err(|e| not(e.to_string()))?;
            let h: PcapHeader = r.header();
            if h.datalink != DataLink::ETHERNET {
                return Err(ReplayError::UnsupportedLinkType {
                    path: p,
                    linktype: h.datalink,
                });
            }
            let snaplen = if h.snaplen == 0 { u32::MAX } else { h.snaplen };
            Reader::Pcap {
                r,
                snaplen,
                ns: h.ts_resolution == TsResolution::NanoSecond,
            }
        };
        Ok(FileSource {
            path: p,
            reader,
            index: 0,
        })
    }

    fn corrupt(&self, e: &PcapError) -> ReplayError {
        ReplayError::Corrupt {
            path: self.path.clone(),
            index: self.index,
            reason: e.to_string(),
        }
    }
}

fn read_full(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Nanoseconds from a pcapng raw timestamp (`raw` units of `if_tsresol`,
/// default 10^-6 s; high bit set = negative power of two), plus `if_tsoffset`
/// seconds.
fn pcapng_ns(raw: u64, tsresol: u8, offset_s: u64) -> u64 {
    let raw = u128::from(raw);
    let ns = if tsresol & 0x80 != 0 {
        let k = u32::from(tsresol & 0x7f).min(127);
        (raw * 1_000_000_000) >> k
    } else {
        let r = u32::from(tsresol).min(38);
        if r <= 9 {
            raw * 10u128.pow(9 - r)
        } else {
            raw / 10u128.pow(r - 9)
        }
    };
    u64::try_from(ns)
        .unwrap_or(u64::MAX)
        .saturating_add(offset_s.saturating_mul(1_000_000_000))
}

impl PacketSource for FileSource {
    fn next_packet(
        &mut self,
        skipped: &mut BTreeMap<SkipReason, u64>,
    ) -> Result<Option<Packet>, ReplayError> {
        loop {
            self.index += 1;
            match &mut self.reader {
                Reader::Pcap { r, snaplen, ns } => {
                    let (snaplen, ns) = (*snaplen, *ns);
                    let raw = match r.next_raw_packet() {
                        None => return Ok(None),
                        Some(Ok(p)) => p.into_owned(),
                        Some(Err(e)) => return Err(self.corrupt(&e)),
                    };
                    if raw.incl_len as usize != raw.data.len() {
                        let e = PcapError::InvalidField("record length disagrees with data");
                        return Err(self.corrupt(&e));
                    }
                    if raw.incl_len > snaplen {
                        *skipped.entry(SkipReason::SnaplenExceeded).or_default() += 1;
                        continue;
                    }
                    let frac = u64::from(raw.ts_frac);
                    let frac_ns = if ns { frac } else { frac * 1000 };
                    if frac_ns >= 1_000_000_000 {
                        let e = PcapError::InvalidField("timestamp fraction over one second");
                        return Err(self.corrupt(&e));
                    }
                    let ts_ns = u64::from(raw.ts_sec) * 1_000_000_000 + frac_ns;
                    return Ok(Some(Packet {
                        ts_ns,
                        data: raw.data.into_owned(),
                    }));
                }
                Reader::PcapNg { r, last_ts } => {
                    let block = match r.next_block() {
                        None => return Ok(None),
                        Some(Ok(b)) => b.into_owned(),
                        Some(Err(e)) => {
                            let path = self.path.clone();
                            return Err(ReplayError::Corrupt {
                                path,
                                index: self.index,
                                reason: e.to_string(),
                            });
                        }
                    };
                    let (iface, ts, data) = match block {
                        Block::EnhancedPacket(p) => {
                            let raw = u64::try_from(p.timestamp.as_nanos()).unwrap_or(u64::MAX);
                            (p.interface_id, Some(raw), p.data.into_owned())
                        }
                        Block::SimplePacket(p) => (0, None, p.data.into_owned()),
                        Block::Packet(p) => (
                            u32::from(p.interface_id),
                            Some(p.timestamp),
                            p.data.into_owned(),
                        ),
                        _ => {
                            self.index -= 1;
                            continue;
                        }
                    };
                    let Some(idb) = r.interfaces().get(iface as usize) else {
                        let path = self.path.clone();
                        let reason = format!("packet on undeclared interface {iface}");
                        return Err(ReplayError::Corrupt {
                            path,
                            index: self.index,
                            reason,
                        });
                    };
                    if idb.linktype != DataLink::ETHERNET {
                        *skipped.entry(SkipReason::NonEthernetInterface).or_default() += 1;
                        continue;
                    }
                    if idb.snaplen != 0 && data.len() > idb.snaplen as usize {
                        *skipped.entry(SkipReason::SnaplenExceeded).or_default() += 1;
                        continue;
                    }
                    let mut tsresol = 6u8;
                    let mut offset = 0u64;
                    for o in &idb.options {
                        match o {
                            pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption::IfTsResol(r) => {
                                tsresol = *r;
                            }
                            pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption::IfTsOffset(o) => {
                                offset = *o;
                            }
                            _ => {}
                        }
                    }
                    let ts_ns = ts.map_or(*last_ts, |raw| pcapng_ns(raw, tsresol, offset));
                    if ts_ns > MAX_CAPTURE_NS {
                        let path = self.path.clone();
                        let reason = format!("timestamp {ts_ns} ns is out of range");
                        return Err(ReplayError::Corrupt {
                            path,
                            index: self.index,
                            reason,
                        });
                    }
                    *last_ts = ts_ns;
                    return Ok(Some(Packet { ts_ns, data }));
                }
            }
        }
    }
}

/// Where replay output goes.
pub trait PacketSink {
    /// Record `data` sent on `port` at `ts_ns`.
    ///
    /// # Errors
    /// I/O errors writing the output.
    fn write(&mut self, port: PortId, ts_ns: u64, data: &[u8]) -> Result<(), ReplayError>;

    /// Flush everything.
    ///
    /// # Errors
    /// I/O errors.
    fn finish(&mut self) -> Result<(), ReplayError> {
        Ok(())
    }
}

/// A new output pcap header (nanosecond, Ethernet, little endian).
pub fn out_header() -> PcapHeader {
    PcapHeader {
        version_major: 2,
        version_minor: 4,
        ts_correction: 0,
        ts_accuracy: 0,
        snaplen: OUT_SNAPLEN,
        datalink: DataLink::ETHERNET,
        ts_resolution: TsResolution::NanoSecond,
        endianness: pcap_file::Endianness::Little,
    }
}

/// `DIR/PORT.pcap` for every configured port (created even if empty).
pub struct PcapDirSink {
    writers: Vec<(PathBuf, PcapWriter<BufWriter<File>>)>,
}

impl PcapDirSink {
    /// Create the directory and one file per port.
    ///
    /// # Errors
    /// I/O errors.
    pub fn create(dir: &Path, port_names: &[String]) -> Result<Self, ReplayError> {
        std::fs::create_dir_all(dir).map_err(|source| ReplayError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let mut writers = Vec::new();
        for n in port_names {
            let path = dir.join(format!("{n}.pcap"));
            let p = path.display().to_string();
            let f = File::create(&path).map_err(|source| ReplayError::Io {
                path: p.clone(),
                source,
            })?;
            let w = PcapWriter::with_header(BufWriter::with_capacity(1 << 16, f), out_header())
                .map_err(|e| ReplayError::Io {
                    path: p.clone(),
                    source: std::io::Error::other(e.to_string()),
                })?;
            writers.push((path, w));
        }
        Ok(PcapDirSink { writers })
    }
}

impl PacketSink for PcapDirSink {
    fn write(&mut self, port: PortId, ts_ns: u64, data: &[u8]) -> Result<(), ReplayError> {
        let Some((path, w)) = self.writers.get_mut(usize::from(port)) else {
            return Ok(());
        };
        let ts = core::time::Duration::from_nanos(ts_ns);
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        w.write_packet(&PcapPacket::new(ts, len, data))
            .map_err(|e| ReplayError::Io {
                path: path.display().to_string(),
                source: std::io::Error::other(e.to_string()),
            })?;
        Ok(())
    }

    fn finish(&mut self) -> Result<(), ReplayError> {
        // PcapWriter has no flush: take the BufWriter back and flush it.
        let writers = std::mem::take(&mut self.writers);
        for (path, w) in writers {
            let mut bw = w.into_writer();
            bw.flush().map_err(|source| ReplayError::Io {
                path: path.display().to_string(),
                source,
            })?;
        }
        Ok(())
    }
}

/// Keeps every output in memory (tests).
#[derive(Debug, Default)]
pub struct MemSink {
    pub ports: BTreeMap<PortId, Vec<Packet>>,
}

impl PacketSink for MemSink {
    fn write(&mut self, port: PortId, ts_ns: u64, data: &[u8]) -> Result<(), ReplayError> {
        self.ports.entry(port).or_default().push(Packet {
            ts_ns,
            data: data.to_vec(),
        });
        Ok(())
    }
}

/// Counts and checksums output without storing it (benchmarks).
#[derive(Debug, Default)]
pub struct CountSink {
    pub packets: u64,
    pub bytes: u64,
}

impl PacketSink for CountSink {
    fn write(&mut self, _port: PortId, _ts: u64, data: &[u8]) -> Result<(), ReplayError> {
        self.packets += 1;
        self.bytes += data.len() as u64;
        Ok(())
    }
}

/// Per-port packet counts.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct PortCounts {
    pub packets_in: u64,
    pub packets_out: u64,
}

/// What a replay did. `packets_per_second` is the only wall-clock figure.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub packets_in: u64,
    pub packets_out: u64,
    pub ports: BTreeMap<String, PortCounts>,
    /// Pipeline drops by reason (every reason listed, zero or not).
    pub drops: BTreeMap<String, u64>,
    /// NAT drops by the NAT's own reason (the `nat` drop bucket, detailed).
    pub nat_drops: BTreeMap<String, u64>,
    /// Capture records not fed to the pipeline, by reason.
    pub skipped: BTreeMap<SkipReason, u64>,
    pub flows_created: u64,
    pub flows_expired: u64,
    pub flows_evicted: u64,
    pub nat_sessions_active: u64,
    pub nat_ports_in_use: u64,
    pub ipv6_flows_active: u64,
    pub generated: u64,
    pub arp_replies: u64,
    pub echo_replies: u64,
    pub neighbors_learned: u64,
    /// First to last capture timestamp, seconds.
    pub capture_seconds: f64,
    pub wall_seconds: f64,
    pub packets_per_second: f64,
}

impl Summary {
    /// Build from the shared state's counters after a run.
    pub fn collect(
        shared: &Shared,
        skipped: BTreeMap<SkipReason, u64>,
        capture_ns: u64,
        wall_s: f64,
    ) -> Summary {
        let names = shared.port_names();
        let c = shared.counters.snapshot(&names);
        let mut s = Summary {
            skipped,
            ..Summary::default()
        };
        for n in &names {
            let pi = c.rx.get(n).copied().unwrap_or(0);
            let po = c.tx.get(n).copied().unwrap_or(0);
            s.packets_in += pi;
            s.packets_out += po;
            s.ports.insert(
                n.clone(),
                PortCounts {
                    packets_in: pi,
                    packets_out: po,
                },
            );
        }
        for r in crate::pipeline::DropReason::ALL {
            s.drops.insert(
                r.name().to_string(),
                c.drops.get(r.name()).copied().unwrap_or(0),
            );
        }
        let (v6_active, v6_created, v6_expired) = shared.v6flows.stats();
        s.ipv6_flows_active = v6_active as u64;
        s.flows_created = v6_created;
        s.flows_expired = v6_expired;
        if let Some(nat) = &shared.nat {
            let n = nat.summary();
            s.flows_created += n.created;
            s.flows_expired += n.expired;
            s.flows_evicted += n.evicted;
            s.nat_sessions_active = n.sessions_active;
            s.nat_ports_in_use = n.ports_in_use;
            s.nat_drops = n.drops;
        }
        s.generated = c.generated;
        s.arp_replies = c.arp_replies;
        s.echo_replies = c.echo_replies;
        s.neighbors_learned = c.neighbors_learned;
        s.capture_seconds = capture_ns as f64 / 1e9;
        s.wall_seconds = wall_s;
        s.packets_per_second = if wall_s > 0.0 {
            s.packets_in as f64 / wall_s
        } else {
            0.0
        };
        s
    }

    /// A readable table.
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let mut o = String::new();
        let _ = writeln!(
            o,
            "{:<24} {:>14} {:>14}",
            "port", "packets in", "packets out"
        );
        for (n, p) in &self.ports {
            let _ = writeln!(o, "{:<24} {:>14} {:>14}", n, p.packets_in, p.packets_out);
        }
        let _ = writeln!(
            o,
            "{:<24} {:>14} {:>14}",
            "total", self.packets_in, self.packets_out
        );
        let _ = writeln!(o);
        let _ = writeln!(o, "{:<32} {:>14}", "drops by reason", "packets");
        let mut any = false;
        for (r, n) in &self.drops {
            if *n > 0 {
                any = true;
                let _ = writeln!(o, "  {:<30} {:>14}", r, n);
            }
        }
        for (r, n) in &self.nat_drops {
            if *n > 0 {
                let _ = writeln!(o, "    nat: {:<25} {:>14}", r, n);
            }
        }
        if !any {
            let _ = writeln!(o, "  (none)");
        }
        for (r, n) in &self.skipped {
            let _ = writeln!(o, "  skipped {:<22} {:>14}", format!("{r:?}"), n);
        }
        let _ = writeln!(o);
        let rows: [(&str, String); 11] = [
            ("flows created", self.flows_created.to_string()),
            ("flows expired", self.flows_expired.to_string()),
            ("flows evicted", self.flows_evicted.to_string()),
            ("NAT sessions active", self.nat_sessions_active.to_string()),
            ("NAT ports in use", self.nat_ports_in_use.to_string()),
            ("IPv6 flows active", self.ipv6_flows_active.to_string()),
            ("frames generated", self.generated.to_string()),
            (
                "ARP replies / echo replies",
                format!("{} / {}", self.arp_replies, self.echo_replies),
            ),
            ("capture span", format!("{:.3} s", self.capture_seconds)),
            ("wall time", format!("{:.3} s", self.wall_seconds)),
            ("packets/s", format!("{:.0}", self.packets_per_second)),
        ];
        for (k, v) in rows {
            let _ = writeln!(o, "{:<32} {:>14}", k, v);
        }
        o
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
        let idx = cfg
            .port_index(port)
            .ok_or_else(|| ReplayError::UnknownPort {
                port: port.to_string(),
            })?;
        let idx = PortId::try_from(idx).map_err(|_| ReplayError::UnknownPort {
            port: port.to_string(),
        })?;
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
    heads: Vec<Option<Packet>>,
    primed: bool,
}

impl<'a> Merge<'a> {
    pub fn new(inputs: Vec<(PortId, Box<dyn PacketSource + 'a>)>) -> Self {
        Merge {
            inputs,
            heads: Vec::new(),
            primed: false,
        }
    }
}

impl Feed for Merge<'_> {
    fn next(
        &mut self,
        skipped: &mut BTreeMap<SkipReason, u64>,
    ) -> Result<Option<(PortId, Packet)>, ReplayError> {
        if !self.primed {
            self.primed = true;
            for (_, s) in &mut self.inputs {
                self.heads.push(s.next_packet(skipped)?);
            }
        }
        let mut best: Option<usize> = None;
        for (i, h) in self.heads.iter().enumerate() {
            if let Some(p) = h
                && best.is_none_or(|b| self.heads[b].as_ref().is_some_and(|q| p.ts_ns < q.ts_ns))
            {
                best = Some(i);
            }
        }
        let Some(i) = best else { return Ok(None) };
        let next = self.inputs[i].1.next_packet(skipped)?;
        let pkt = std::mem::replace(&mut self.heads[i], next);
        Ok(pkt.map(|p| (self.inputs[i].0, p)))
    }
}

/// Packets read ahead of the pipeline, each classified when read
/// ([`Pipeline::prefetch`]; the pipeline reuses the classification). Only
/// a hint: the pipeline sees the same packets in the same order with the
/// same timestamps; an input error is returned only after every packet
/// read before it.
struct Ahead {
    q: VecDeque<(PortId, Packet)>,
    /// What `Pipeline::prefetch` found for each packet of `q` (same order;
    /// empty when not reading ahead, so the pass-through baseline moves
    /// nothing extra).
    pre: VecDeque<Prefetch>,
    /// The prefetch record of the packet `next` returned last.
    last: Prefetch,
    /// Packets kept read ahead beyond those being processed.
    window: usize,
    prefetching: bool,
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
    fn new(burst: usize, read_ahead: bool) -> Self {
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
    fn next(
        &mut self,
        feed: &mut dyn Feed,
        pipeline: &Pipeline,
        skipped: &mut BTreeMap<SkipReason, u64>,
    ) -> Result<Option<(PortId, Packet)>, ReplayError> {
        if !self.prefetching {
            // Nothing to prefetch: read each packet when it is needed.
            return feed.next(skipped);
        }
        self.next_ahead(feed, pipeline, skipped)
    }

    fn next_ahead(
        &mut self,
        feed: &mut dyn Feed,
        pipeline: &Pipeline,
        skipped: &mut BTreeMap<SkipReason, u64>,
    ) -> Result<Option<(PortId, Packet)>, ReplayError> {
        while !self.done && self.err.is_none() && self.q.len() < self.window {
            match feed.next(skipped) {
                Ok(Some((port, p))) => {
                    self.pre.push_back(pipeline.prefetch(port, &p.data));
                    self.q.push_back((port, p));
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
    mut progress: impl FnMut(u64),
) -> Result<(BTreeMap<SkipReason, u64>, u64), ReplayError> {
    let burst = burst.clamp(1, 1024);
    let mut skipped = BTreeMap::new();
    let mut out = Output::default();
    let mut now: Option<Timestamp> = None;
    let mut first_ts: Option<u64> = None;
    let mut count = 0u64;
    let mut carry: Option<(PortId, Packet)> = None;
    let mut carry_pre = Prefetch::default();
    let mut stamps: Vec<u64> = Vec::with_capacity(burst);
    let mut frames: Vec<Vec<u8>> = Vec::with_capacity(burst);
    // Classifications from the read-ahead (empty without read-ahead).
    let mut pres: Vec<Prefetch> = Vec::with_capacity(burst);
    let mut ahead = Ahead::new(burst, feed.may_read_ahead() && pipeline.uses_prefetch());
    loop {
        pres.clear();
        let (port, first) = match carry.take() {
            Some(x) => {
                if ahead.prefetching {
                    pres.push(carry_pre);
                }
                x
            }
            None => match ahead.next(feed, pipeline, &mut skipped)? {
                Some(x) => {
                    if ahead.prefetching {
                        pres.push(ahead.last);
                    }
                    x
                }
                None => break,
            },
        };
        stamps.clear();
        frames.clear();
        stamps.push(first.ts_ns);
        frames.push(first.data);
        while frames.len() < burst {
            match ahead.next(feed, pipeline, &mut skipped)? {
                Some((p, pk)) if p == port => {
                    stamps.push(pk.ts_ns);
                    frames.push(pk.data);
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
        first_ts.get_or_insert(stamps[0]);
        let t = Timestamp::from_nanos(stamps[0]);
        let n = match now {
            Some(prev) if prev >= t => prev,
            _ => {
                pipeline.poll_timers(t);
                t
            }
        };
        pipeline.process_prefetched(port, &mut frames, &pres, n, &mut out);
        // `now` never moves backwards; remember the latest capture time.
        let last = stamps.iter().copied().max().unwrap_or(stamps[0]);
        now = Some(n.max(Timestamp::from_nanos(last)));
        // Timer output first (it happened before this burst), then each
        // packet followed by what it caused.
        for ((p, f), cause) in out.generated.iter().zip(&out.generated_cause) {
            if cause.is_none() {
                sink.write(*p, n.as_nanos(), f)?;
            }
        }
        for (i, (d, f)) in out.dispositions.iter().zip(&frames).enumerate() {
            if let Disposition::Tx(p) = d {
                sink.write(*p, stamps[i], f)?;
            }
            for ((p, g), cause) in out.generated.iter().zip(&out.generated_cause) {
                if *cause == Some(i as u32) {
                    sink.write(*p, stamps[i], g)?;
                }
            }
        }
        let before = count;
        count += frames.len() as u64;
        if before / PROGRESS_EVERY != count / PROGRESS_EVERY {
            progress(count);
        }
    }
    if let Some(n) = now {
        pipeline.flush_timers(n);
        let mut rest = Vec::new();
        pipeline.take_generated(&mut rest);
        for (p, f) in rest {
            sink.write(p, n.as_nanos(), &f)?;
        }
    }
    sink.finish()?;
    let span = match (first_ts, now) {
        (Some(a), Some(b)) => b.as_nanos().saturating_sub(a),
        _ => 0,
    };
    progress(count);
    Ok((skipped, span))
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
    let (skipped, span) = drive(&mut pipeline, &mut feed, sink, |_| {})?;
    let wall = t0.elapsed().as_secs_f64();
    Ok((Summary::collect(&shared, skipped, span, wall), shared))
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
    let total_bytes: u64 = inputs
        .iter()
        .filter_map(|(_, p)| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let mut srcs: Vec<(PortId, Box<dyn PacketSource>)> = Vec::new();
    for (port, path) in inputs {
        srcs.push((*port, Box::new(FileSource::open(path)?)));
    }
    tracing::info!(inputs = inputs.len(), bytes = total_bytes, out = %out_dir.display(), "replay starting");
    let shared = Shared::new(cfg, 1)?;
    let mut sink = PcapDirSink::create(out_dir, &shared.port_names())?;
    let mut pipeline = Pipeline::new(Arc::clone(&shared), 0);
    // A progress bar for captures big enough to take over a second (~16 MiB);
    // indicatif hides it when stderr is not a terminal.
    let bar = (total_bytes > 16 << 20).then(|| {
        let b = indicatif::ProgressBar::new_spinner();
        b.set_message("replaying");
        b
    });
    let t0 = Instant::now();
    let mut feed = Merge::new(srcs);
    let (skipped, span) = drive_bursts(&mut pipeline, &mut feed, &mut sink, burst, |n| {
        if let Some(b) = &bar {
            b.set_position(n);
            b.set_message(format!("{n} packets"));
        }
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let wall = t0.elapsed().as_secs_f64();
    tracing::info!(
        wall_seconds = wall,
        capture_ns = span,
        skipped = skipped.values().sum::<u64>(),
        "replay finished"
    );
    Ok(Summary::collect(&shared, skipped, span, wall))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcapng_timestamp_units() {
        assert_eq!(pcapng_ns(1_500_000, 6, 0), 1_500_000_000);
        assert_eq!(pcapng_ns(7, 9, 0), 7);
        assert_eq!(pcapng_ns(1, 0x80 | 1, 0), 500_000_000);
        assert_eq!(pcapng_ns(0, 6, 2), 2_000_000_000);
    }
}
