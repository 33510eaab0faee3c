//! Where replay output goes: one pcap per port in a directory (written to
//! temporary files there and renamed at the end, never over an input), in
//! memory (tests), or only counted (benchmarks).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, TsResolution};

use super::{OUT_SNAPLEN, Packet, ReplayError};
use crate::pipeline::PortId;

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

/// The output file of each port: `DIR/PORT.pcap`.
pub fn output_paths(dir: &Path, port_names: &[String]) -> Vec<PathBuf> {
    port_names
        .iter()
        .map(|n| dir.join(format!("{n}.pcap")))
        .collect()
}

/// Refuse an output path that names an input file (same device and inode,
/// whatever the spelling: `./a.pcap`, a symlink, a hard link). Call before
/// anything is written.
///
/// # Errors
/// [`ReplayError::OutputIsInput`] for the first such pair.
pub fn check_outputs_are_not_inputs(
    out_dir: &Path,
    port_names: &[String],
    inputs: &[PathBuf],
) -> Result<(), ReplayError> {
    for out in output_paths(out_dir, port_names) {
        check_path_is_not_input(&out, "--out-dir", inputs)?;
    }
    Ok(())
}

/// Refuse `out` (named by option `flag`) when it is one of `inputs` (same
/// device and inode).
///
/// # Errors
/// [`ReplayError::OutputIsInput`].
pub fn check_path_is_not_input(
    out: &Path,
    flag: &str,
    inputs: &[PathBuf],
) -> Result<(), ReplayError> {
    use std::os::unix::fs::MetadataExt;
    let Ok(m) = std::fs::metadata(out) else {
        return Ok(());
    };
    for input in inputs {
        if let Ok(i) = std::fs::metadata(input)
            && i.dev() == m.dev()
            && i.ino() == m.ino()
        {
            return Err(ReplayError::OutputIsInput {
                output: out.display().to_string(),
                input: input.display().to_string(),
                flag: flag.to_string(),
            });
        }
    }
    Ok(())
}

struct Out {
    /// Where the file ends up.
    path: PathBuf,
    /// Where it is written until then (same directory).
    tmp: PathBuf,
    w: PcapWriter<BufWriter<File>>,
}

/// `DIR/PORT.pcap` for every configured port (created even if empty).
/// Each is written to `DIR/.PORT.pcap.PID.tmp` and renamed over
/// `DIR/PORT.pcap` by [`PacketSink::finish`]; dropped without `finish`
/// (an error), the temporary files are removed and earlier outputs stay.
pub struct PcapDirSink {
    outs: Vec<Out>,
    /// A write failed: `finish` renames nothing.
    failed: bool,
}

impl PcapDirSink {
    /// Create the directory and one temporary file per port.
    ///
    /// # Errors
    /// I/O errors.
    pub fn create(dir: &Path, port_names: &[String]) -> Result<Self, ReplayError> {
        std::fs::create_dir_all(dir).map_err(|source| ReplayError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let mut sink = PcapDirSink {
            outs: Vec::new(),
            failed: false,
        };
        for (n, path) in port_names.iter().zip(output_paths(dir, port_names)) {
            let tmp = dir.join(format!(".{n}.pcap.{}.tmp", std::process::id()));
            let p = tmp.display().to_string();
            let f = File::create(&tmp).map_err(|source| ReplayError::Io {
                path: p.clone(),
                source,
            })?;
            // Registered before the header is written, so an error removes it.
            let w = PcapWriter::with_header(BufWriter::with_capacity(1 << 16, f), out_header());
            let w = match w {
                Ok(w) => w,
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(ReplayError::Io {
                        path: p,
                        source: std::io::Error::other(e.to_string()),
                    });
                }
            };
            sink.outs.push(Out { path, tmp, w });
        }
        Ok(sink)
    }

    /// Whether a write failed (the outputs are not worth keeping).
    pub fn failed(&self) -> bool {
        self.failed
    }
}

impl PacketSink for PcapDirSink {
    fn write(&mut self, port: PortId, ts_ns: u64, data: &[u8]) -> Result<(), ReplayError> {
        let Some(o) = self.outs.get_mut(usize::from(port)) else {
            return Ok(());
        };
        let ts = core::time::Duration::from_nanos(ts_ns);
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        if let Err(e) = o.w.write_packet(&PcapPacket::new(ts, len, data)) {
            self.failed = true;
            return Err(ReplayError::Io {
                path: o.tmp.display().to_string(),
                source: std::io::Error::other(e.to_string()),
            });
        }
        Ok(())
    }

    /// Flush every file and rename it into place. On an error (or after a
    /// failed write) the temporary files are removed and nothing is renamed.
    fn finish(&mut self) -> Result<(), ReplayError> {
        if self.failed {
            return Err(ReplayError::Io {
                path: self
                    .outs
                    .first()
                    .map(|o| o.path.display().to_string())
                    .unwrap_or_default(),
                source: std::io::Error::other("an earlier write failed; outputs not kept"),
            });
        }
        // PcapWriter has no flush: take the BufWriter back and flush it.
        let outs = std::mem::take(&mut self.outs);
        let mut done = Vec::with_capacity(outs.len());
        let mut err = None;
        for o in outs {
            if err.is_some() {
                let _ = std::fs::remove_file(&o.tmp);
                continue;
            }
            let mut bw = o.w.into_writer();
            match bw.flush() {
                Ok(()) => done.push((o.tmp, o.path)),
                Err(source) => {
                    let _ = std::fs::remove_file(&o.tmp);
                    err = Some(ReplayError::Io {
                        path: o.tmp.display().to_string(),
                        source,
                    });
                }
            }
        }
        if let Some(e) = err {
            for (tmp, _) in done {
                let _ = std::fs::remove_file(tmp);
            }
            return Err(e);
        }
        let mut done = done.into_iter();
        while let Some((tmp, path)) = done.next() {
            if let Err(source) = std::fs::rename(&tmp, &path) {
                let _ = std::fs::remove_file(&tmp);
                for (rest, _) in done {
                    let _ = std::fs::remove_file(rest);
                }
                return Err(ReplayError::Io {
                    path: path.display().to_string(),
                    source,
                });
            }
        }
        Ok(())
    }
}

impl Drop for PcapDirSink {
    fn drop(&mut self) {
        for o in &self.outs {
            let _ = std::fs::remove_file(&o.tmp);
        }
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

/// Counts output without storing it (benchmarks).
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

/// The temporary file `path` is written to: `.NAME.PID.tmp` beside it.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

pub(crate) fn io_err(path: &Path, source: std::io::Error) -> ReplayError {
    ReplayError::Io {
        path: path.display().to_string(),
        source,
    }
}

pub(crate) fn pcap_err(path: &Path, e: &pcap_file::PcapError) -> ReplayError {
    io_err(path, std::io::Error::other(e.to_string()))
}

/// A file written under a temporary name and renamed by `commit`; removed
/// when dropped uncommitted.
pub(crate) struct TmpFile {
    pub(crate) path: PathBuf,
    pub(crate) tmp: PathBuf,
    done: bool,
}

impl TmpFile {
    pub(crate) fn create(path: &Path) -> Result<(TmpFile, BufWriter<File>), ReplayError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        }
        let tmp = temp_path(path);
        let f = File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
        Ok((
            TmpFile {
                path: path.to_path_buf(),
                tmp,
                done: false,
            },
            BufWriter::with_capacity(1 << 16, f),
        ))
    }

    pub(crate) fn commit(&mut self, mut w: BufWriter<File>) -> Result<(), ReplayError> {
        w.flush().map_err(|e| io_err(&self.tmp, e))?;
        drop(w);
        std::fs::rename(&self.tmp, &self.path).map_err(|e| io_err(&self.path, e))?;
        self.done = true;
        Ok(())
    }
}

impl Drop for TmpFile {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}
