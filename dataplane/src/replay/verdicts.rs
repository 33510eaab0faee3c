//! What happened to each input frame: `--verdicts FILE` (one JSON line per
//! input frame) and `--drops FILE.pcapng` (the dropped frames as they came
//! in, each with its reason as a packet comment).
//!
//! A verdict line:
//!
//! ```json
//! {"port":"lan","frame":3,"time":"2026-12-07T22:22:44.000000001Z","time_ns":1796682164000000001,
//!  "verdict":"forwarded","to":"wan",
//!  "tuple":{"proto":"tcp","src":"203.0.113.1","src_port":1024,"dst":"198.51.100.7","dst_port":80}}
//! ```
//!
//! - `port`, `frame`: the input port and the frame's number in its input
//!   file as Wireshark counts it (1-based, skipped records included);
//!   frames of an in-memory feed are numbered per port.
//! - `verdict`: `forwarded` (with `to`, the egress port, and the `tuple`
//!   of an IPv4/IPv6 TCP/UDP/ICMP frame as it left, i.e. translated),
//!   `dropped` (with `reason`, the pipeline's drop reason, and for a
//!   frame the NAT dropped `nat_reason`, the NAT's own), `generated`
//!   (the pipeline used the frame and answered it: `generated` lists the
//!   ports its answers went to) or `consumed` (used without an answer: a
//!   learned ARP reply, a frame held until its next hop resolves).
//! - `generated`: present whenever the frame caused frames of its own
//!   (an ICMP time exceeded beside a `dropped`, an ARP reply, …).
//!
//! Both files are written to a temporary file in their directory and
//! renamed at the end, like the per-port outputs; an input is never
//! overwritten (checked before anything is written).

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Duration;

use pcap_file::DataLink;
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use serde::Serialize;
use serde_json::Value;

use super::output::{TmpFile, io_err, pcap_err};
use super::summary::rfc3339;
use super::{OUT_SNAPLEN, ReplayError};
use crate::pipeline::{Disposition, PortId};

/// One input frame's fate, as the driver saw it.
#[derive(Debug, Clone, Copy)]
pub struct FrameVerdict<'a> {
    /// Input port.
    pub port: PortId,
    /// Number of the frame in its input file (1-based).
    pub frame: u64,
    pub ts_ns: u64,
    pub disposition: Disposition,
    /// The frame as it came in (before the pipeline rewrote it).
    pub input: &'a [u8],
    /// The frame after the pipeline (what left, for `Tx`).
    pub output: &'a [u8],
    /// Ports of the frames this frame caused the pipeline to generate.
    pub generated: &'a [PortId],
    /// For a frame the NAT dropped: the NAT's own reason, snake_case
    /// (`no_session`, `tcp_not_syn`, …), when the driver could tell.
    pub nat_reason: Option<&'a str>,
}

/// Where verdicts go.
pub trait VerdictSink {
    /// Whether [`FrameVerdict::input`] must be the frame as it came in (a
    /// copy per frame); otherwise it may be the rewritten frame.
    fn wants_input(&self) -> bool {
        false
    }

    /// Record one frame's verdict.
    ///
    /// # Errors
    /// I/O errors.
    fn verdict(&mut self, v: &FrameVerdict<'_>) -> Result<(), ReplayError>;

    /// Flush and put the files in place.
    ///
    /// # Errors
    /// I/O errors.
    fn finish(&mut self) -> Result<(), ReplayError> {
        Ok(())
    }
}

/// `--verdicts` and `--drops` files.
pub struct VerdictFiles {
    names: Vec<String>,
    json: Option<(TmpFile, BufWriter<File>)>,
    drops: Option<(TmpFile, PcapNgWriter<BufWriter<File>>)>,
    failed: bool,
}

/// A `--verdicts` line (fields in this order).
#[derive(Serialize)]
struct Line<'a> {
    port: &'a str,
    frame: u64,
    time: String,
    time_ns: u64,
    verdict: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nat_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tuple: Option<Tuple>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    generated: Vec<&'a str>,
}

/// A verdict's 5-tuple (ICMP queries: the identifier as both ports).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tuple {
    pub proto: &'static str,
    pub src: std::net::IpAddr,
    pub src_port: u16,
    pub dst: std::net::IpAddr,
    pub dst_port: u16,
}

/// The protocol's name in a verdict tuple (`None`: not TCP/UDP/ICMP).
fn proto_name(p: u8) -> Option<&'static str> {
    match p {
        6 => Some("tcp"),
        17 => Some("udp"),
        1 => Some("icmp"),
        58 => Some("icmpv6"),
        _ => None,
    }
}

/// The 5-tuple of an Ethernet frame (TCP/UDP/ICMP over IPv4/IPv6).
pub fn tuple_json(frame: &[u8]) -> Option<Tuple> {
    let t = net::classify(frame).ok()?.tuple?;
    Some(Tuple {
        proto: proto_name(t.proto)?,
        src: t.src,
        src_port: t.src_port,
        dst: t.dst,
        dst_port: t.dst_port,
    })
}

impl VerdictFiles {
    /// Create the temporary files (`port_names`: the configured ports, in
    /// id order: the interfaces of the drops file).
    ///
    /// # Errors
    /// I/O errors.
    pub fn create(
        port_names: &[String],
        verdicts: Option<&Path>,
        drops: Option<&Path>,
    ) -> Result<VerdictFiles, ReplayError> {
        let json = verdicts.map(TmpFile::create).transpose()?;
        let drops = match drops {
            None => None,
            Some(p) => {
                let (t, w) = TmpFile::create(p)?;
                let mut w = PcapNgWriter::new(w).map_err(|e| pcap_err(&t.tmp, &e))?;
                for n in port_names {
                    let idb = InterfaceDescriptionBlock {
                        linktype: DataLink::ETHERNET,
                        snaplen: OUT_SNAPLEN,
                        options: vec![
                            InterfaceDescriptionOption::IfName(Cow::Owned(n.clone())),
                            InterfaceDescriptionOption::IfTsResol(9),
                        ],
                    };
                    w.write_pcapng_block(idb)
                        .map_err(|e| pcap_err(&t.tmp, &e))?;
                }
                Some((t, w))
            }
        };
        Ok(VerdictFiles {
            names: port_names.to_vec(),
            json,
            drops,
            failed: false,
        })
    }

    fn name(&self, p: PortId) -> &str {
        self.names.get(usize::from(p)).map_or("?", String::as_str)
    }

    /// One verdict as a JSON object (what a `--verdicts` line holds).
    pub fn line(&self, v: &FrameVerdict<'_>) -> Value {
        serde_json::to_value(self.record(v)).unwrap_or(Value::Null)
    }

    fn record<'a>(&'a self, v: &FrameVerdict<'a>) -> Line<'a> {
        let (verdict, to, reason, tuple) = match v.disposition {
            Disposition::Tx(p) => ("forwarded", Some(self.name(p)), None, tuple_json(v.output)),
            Disposition::Drop(r) => ("dropped", None, Some(r.name()), None),
            Disposition::Consumed if v.generated.is_empty() => ("consumed", None, None, None),
            Disposition::Consumed => ("generated", None, None, None),
            // A driver hands such a frame on; its verdict is the owner's.
            Disposition::HandOff { .. } => ("handed_off", None, None, None),
        };
        Line {
            port: self.name(v.port),
            frame: v.frame,
            time: rfc3339(v.ts_ns),
            time_ns: v.ts_ns,
            verdict,
            to,
            reason,
            nat_reason: v.nat_reason,
            tuple,
            generated: v.generated.iter().map(|p| self.name(*p)).collect(),
        }
    }

    fn write(&mut self, v: &FrameVerdict<'_>) -> Result<(), ReplayError> {
        if self.json.is_some() {
            let line = serde_json::to_vec(&self.record(v))
                .map_err(|e| io_err(Path::new("--verdicts"), std::io::Error::other(e)))?;
            if let Some((t, w)) = &mut self.json {
                w.write_all(&line).map_err(|e| io_err(&t.tmp, e))?;
                w.write_all(b"\n").map_err(|e| io_err(&t.tmp, e))?;
            }
        }
        if let Disposition::Drop(r) = v.disposition
            && self.drops.is_some()
        {
            let nat = v
                .nat_reason
                .map(|n| format!(", nat: {n}"))
                .unwrap_or_default();
            let comment = format!(
                "dropped: {}{nat} (port {}, frame {})",
                r.name(),
                self.name(v.port),
                v.frame
            );
            if let Some((t, w)) = &mut self.drops {
                let epb = EnhancedPacketBlock {
                    interface_id: u32::from(v.port),
                    timestamp: Duration::from_nanos(v.ts_ns),
                    original_len: u32::try_from(v.input.len()).unwrap_or(u32::MAX),
                    data: Cow::Borrowed(v.input),
                    options: vec![EnhancedPacketOption::Comment(Cow::Owned(comment))],
                };
                w.write_pcapng_block(epb)
                    .map_err(|e| pcap_err(&t.tmp, &e))?;
            }
        }
        Ok(())
    }
}

impl VerdictSink for VerdictFiles {
    fn wants_input(&self) -> bool {
        self.drops.is_some()
    }

    fn verdict(&mut self, v: &FrameVerdict<'_>) -> Result<(), ReplayError> {
        let r = self.write(v);
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    /// Flush both files and rename them into place (nothing is renamed
    /// after a failed write: the temporary files are removed).
    fn finish(&mut self) -> Result<(), ReplayError> {
        let json = self.json.take();
        let drops = self.drops.take();
        if self.failed {
            return Err(ReplayError::Io {
                path: json
                    .as_ref()
                    .map(|(t, _)| &t.path)
                    .or(drops.as_ref().map(|(t, _)| &t.path))
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                source: std::io::Error::other("an earlier write failed; not kept"),
            });
        }
        if let Some((mut t, w)) = json {
            t.commit(w)?;
        }
        if let Some((mut t, w)) = drops {
            t.commit(w.into_inner())?;
        }
        Ok(())
    }
}
