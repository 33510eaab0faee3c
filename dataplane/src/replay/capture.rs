//! Reading capture files: pcap and pcapng (detected by the magic number),
//! parsed with the `pcap-file` crate, each record turned into Ethernet by
//! its link type ([`super::linktype`]).
//!
//! Where the crate refuses what tcpdump and Wireshark read, this module
//! works around it instead of parsing by hand:
//! - pcap records whose timestamp fraction is ≥ 1 s: read raw and carried
//!   into the seconds;
//! - pcapng blocks are framed here (type and length) and each block that
//!   matters (section header, interface description, packets) is parsed by
//!   the crate; a string option that is not valid UTF-8 has its invalid
//!   bytes replaced by `?` before parsing (the crate rejects the whole
//!   block otherwise). Other blocks (name resolution, statistics, custom,
//!   decryption secrets) are not needed for a replay and are skipped
//!   unparsed.
//!
//! Reading stops at the next record when SIGINT/SIGTERM was received
//! ([`super::stop`]), also when blocked on a FIFO.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Chain, Cursor, ErrorKind, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::Block;
use pcap_file::pcapng::PcapNgParser;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketOption;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::{Endianness, PcapError, TsResolution};

use super::linktype::{Decoder, Fcs, LinkKind, linktype_name, split_pcap_linktype};
use super::{MAX_CAPTURE_NS, Packet, PacketSource, ReplayError, SkipReason, stop};
use crate::wire::Mac;

/// Largest pcapng block accepted (a corrupted length is an error, not an
/// allocation).
const MAX_BLOCK: usize = 64 << 20;

const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 1;
const PB: u32 = 2;
const SPB: u32 = 3;
const EPB: u32 = 6;

/// The file, with the magic bytes read to detect the format put back in
/// front (so a FIFO works), ending early when a stop was requested.
/// Bytes read from one file, and optionally added to a total shared by
/// several files (a replay's progress display).
#[derive(Default)]
struct ReadCount {
    own: AtomicU64,
    total: OnceLock<Arc<AtomicU64>>,
}

impl ReadCount {
    fn add(&self, n: u64) {
        self.own.fetch_add(n, Ordering::Relaxed);
        if let Some(t) = self.total.get() {
            t.fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// Bytes read are counted (progress display).
struct Input(Chain<Cursor<Vec<u8>>, File>, Arc<ReadCount>);

impl Read for Input {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if stop::requested().is_some() {
                return Ok(0);
            }
            match self.0.read(buf) {
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Ok(n) => {
                    self.1.add(n as u64);
                    return Ok(n);
                }
                r => return r,
            }
        }
    }
}

enum Reader {
    Pcap {
        r: Box<PcapReader<Input>>,
        snaplen: u32,
        ns: bool,
        dec: Decoder,
    },
    PcapNg(Box<NgReader>),
}

/// A pcap or pcapng file (detected by its magic number), replayed into a
/// port whose MAC becomes the destination of synthesised Ethernet headers.
pub struct FileSource {
    path: String,
    reader: Reader,
    index: u64,
    /// Bytes read from the file so far (shared with whoever shows progress).
    read: Arc<ReadCount>,
}

impl FileSource {
    /// Open a capture file (synthesised Ethernet headers go to
    /// 00:00:00:00:00:00; [`FileSource::open_for_port`] gives the port's MAC).
    ///
    /// # Errors
    /// I/O errors, unknown format, a link type that cannot be replayed.
    pub fn open(path: &Path) -> Result<FileSource, ReplayError> {
        Self::open_for_port(path, [0; 6])
    }

    /// Open a capture file replayed into the port with MAC `port_mac`.
    ///
    /// # Errors
    /// I/O errors, unknown format, a link type that cannot be replayed.
    pub fn open_for_port(path: &Path, port_mac: Mac) -> Result<FileSource, ReplayError> {
        let p = path.display().to_string();
        let io = |source| ReplayError::Io {
            path: p.clone(),
            source,
        };
        let mut f = File::open(path).map_err(io)?;
        let mut magic = vec![0u8; 4];
        let n = read_full(&mut f, &mut magic).map_err(io)?;
        magic.truncate(n);
        let is_ng = magic == [0x0a, 0x0d, 0x0d, 0x0a];
        let read = Arc::new(ReadCount::default());
        let input = Input(Cursor::new(magic).chain(f), Arc::clone(&read));
        let not = |reason: String| ReplayError::NotACapture {
            path: p.clone(),
            reason,
        };
        if n < 4 {
            return Err(not("file shorter than a capture header".into()));
        }
        let reader = if is_ng {
            let r = NgReader::new(input, port_mac, &p).map_err(|e| match e {
                NgError::Io(e) => io(e),
                NgError::Format(reason) => not(reason),
            })?;
            Reader::PcapNg(Box::new(r))
        } else {
            let r = PcapReader::new(input).map_err(|e| not(e.to_string()))?;
            let h = r.header();
            let (lt, fcs) = split_pcap_linktype(u32::from(h.datalink));
            let kind =
                LinkKind::from_linktype(lt).ok_or_else(|| ReplayError::UnsupportedLinkType {
                    path: p.clone(),
                    linktype: lt,
                    name: linktype_name(lt),
                })?;
            Reader::Pcap {
                r: Box::new(r),
                snaplen: if h.snaplen == 0 { u32::MAX } else { h.snaplen },
                ns: h.ts_resolution == TsResolution::NanoSecond,
                dec: Decoder {
                    kind,
                    fcs,
                    port_mac,
                },
            }
        };
        Ok(FileSource {
            path: p,
            reader,
            index: 0,
            read,
        })
    }

    /// Bytes read from the file so far (the header and buffered read-ahead
    /// included).
    pub fn bytes_read(&self) -> u64 {
        self.read.own.load(Ordering::Relaxed)
    }

    /// Also add the bytes read from now on to `total` (one counter for all
    /// the inputs of a replay: its progress display).
    #[must_use]
    pub fn count_bytes(self, total: Arc<AtomicU64>) -> FileSource {
        total.fetch_add(self.bytes_read(), Ordering::Relaxed);
        let _ = self.read.total.set(total);
        self
    }

    fn corrupt(&self, reason: String) -> ReplayError {
        ReplayError::Corrupt {
            path: self.path.clone(),
            index: self.index,
            reason,
        }
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Nanoseconds from a pcapng raw timestamp (`raw` units of `if_tsresol`,
/// default 10^-6 s; high bit set = negative power of two), plus `if_tsoffset`
/// seconds.
pub(super) fn pcapng_ns(raw: u64, tsresol: u8, offset_s: u64) -> u64 {
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
    /// Records are numbered from 1 in file order, skipped ones included
    /// (Wireshark's frame numbers; pcapng: packet blocks).
    fn frame_number(&self) -> u64 {
        self.index
    }

    fn next_packet(
        &mut self,
        skipped: &mut BTreeMap<SkipReason, u64>,
    ) -> Result<Option<Packet>, ReplayError> {
        loop {
            if stop::requested().is_some() {
                return Ok(None);
            }
            match &mut self.reader {
                Reader::Pcap {
                    r,
                    snaplen,
                    ns,
                    dec,
                } => {
                    self.index += 1;
                    let (snaplen, ns, dec) = (*snaplen, *ns, *dec);
                    let raw = match r.next_raw_packet() {
                        None => return Ok(None),
                        Some(Ok(p)) => p,
                        Some(Err(_)) if stop::requested().is_some() => return Ok(None),
                        Some(Err(e)) => return Err(self.corrupt(e.to_string())),
                    };
                    if raw.incl_len as usize != raw.data.len() {
                        return Err(self.corrupt("record length disagrees with data".into()));
                    }
                    if raw.incl_len > snaplen {
                        *skipped.entry(SkipReason::SnaplenExceeded).or_default() += 1;
                        continue;
                    }
                    // A fraction of one second or more is carried into the
                    // seconds (as tcpdump and Wireshark read it).
                    let frac_ns = u64::from(raw.ts_frac) * if ns { 1 } else { 1000 };
                    let ts_ns = u64::from(raw.ts_sec) * 1_000_000_000 + frac_ns;
                    let data = dec.decode(raw.data.into_owned(), None);
                    return Ok(Some(Packet { ts_ns, data }));
                }
                Reader::PcapNg(r) => {
                    let res = r.next(skipped, &self.path);
                    // Packets are numbered as Wireshark numbers frames: an
                    // error outside a packet block names the next packet.
                    self.index = r.packets + u64::from(!r.in_packet);
                    return match res {
                        Ok(p) => Ok(p),
                        Err(NgError::Io(_)) if stop::requested().is_some() => Ok(None),
                        Err(NgError::Io(e)) if e.kind() == ErrorKind::UnexpectedEof => {
                            Err(self.corrupt("file ends inside a block".into()))
                        }
                        Err(NgError::Io(e)) => Err(self.corrupt(e.to_string())),
                        Err(NgError::Format(reason)) => Err(self.corrupt(reason)),
                    };
                }
            }
        }
    }
}

enum NgError {
    Io(std::io::Error),
    Format(String),
}

impl From<std::io::Error> for NgError {
    fn from(e: std::io::Error) -> Self {
        NgError::Io(e)
    }
}

/// What the replay needs of a pcapng interface.
struct Iface {
    linktype: u32,
    /// `None`: a link type that cannot be replayed.
    dec: Option<Decoder>,
    snaplen: u32,
    tsresol: u8,
    offset_s: u64,
}

impl Iface {
    fn new(idb: &InterfaceDescriptionBlock, port_mac: Mac) -> Iface {
        let linktype = u32::from(idb.linktype) & 0xffff;
        let mut i = Iface {
            linktype,
            dec: None,
            snaplen: idb.snaplen,
            tsresol: 6,
            offset_s: 0,
        };
        let mut fcs = Fcs::None;
        for o in &idb.options {
            match o {
                InterfaceDescriptionOption::IfTsResol(r) => i.tsresol = *r,
                InterfaceDescriptionOption::IfTsOffset(o) => i.offset_s = *o,
                // In bits (pcapng spec); 2 and 4 cannot be bit counts of
                // an FCS and are taken as bytes.
                InterfaceDescriptionOption::IfFcsLen(n) => {
                    fcs = match *n {
                        0 => Fcs::None,
                        n @ (2 | 4) => Fcs::Bytes(n),
                        n => Fcs::Bytes(n / 8),
                    };
                }
                _ => {}
            }
        }
        i.dec = LinkKind::from_linktype(linktype).map(|kind| Decoder {
            kind,
            fcs,
            port_mac,
        });
        i
    }
}

/// pcapng blocks framed here, parsed by the crate's [`PcapNgParser`].
struct NgReader {
    r: BufReader<Input>,
    parser: PcapNgParser,
    ifaces: Vec<Iface>,
    /// Interfaces already warned about (unsupported link type).
    warned: Vec<bool>,
    port_mac: Mac,
    buf: Vec<u8>,
    last_ts: u64,
    /// Packet blocks met so far (skipped ones included).
    packets: u64,
    /// Whether the block being handled is a packet block.
    in_packet: bool,
}

impl NgReader {
    fn new(input: Input, port_mac: Mac, path: &str) -> Result<NgReader, NgError> {
        let mut r = BufReader::with_capacity(1 << 16, input);
        let mut buf = Vec::new();
        if !read_block(&mut r, &mut buf, None)? {
            return Err(NgError::Format("no section header block".into()));
        }
        let parser = match PcapNgParser::new(&buf) {
            Err(e) if is_utf8(&e) => {
                let big = section_big_endian(&buf);
                scrub_utf8(&mut buf, big);
                tracing::warn!("{path}: invalid UTF-8 in a section header option ignored");
                PcapNgParser::new(&buf)
            }
            r => r,
        }
        .map_err(|e| NgError::Format(e.to_string()))?
        .1;
        Ok(NgReader {
            r,
            parser,
            ifaces: Vec::new(),
            warned: Vec::new(),
            port_mac,
            buf,
            last_ts: 0,
            packets: 0,
            in_packet: false,
        })
    }

    fn next(
        &mut self,
        skipped: &mut BTreeMap<SkipReason, u64>,
        path: &str,
    ) -> Result<Option<Packet>, NgError> {
        loop {
            self.in_packet = false;
            let big = self.parser.section().endianness == Endianness::Big;
            if !read_block(&mut self.r, &mut self.buf, Some(big))? {
                return Ok(None);
            }
            let ty = block_type(&self.buf, big);
            if !matches!(ty, SHB | IDB | PB | SPB | EPB) {
                continue;
            }
            if matches!(ty, PB | SPB | EPB) {
                self.packets += 1;
                self.in_packet = true;
            }
            let big = if ty == SHB {
                section_big_endian(&self.buf)
            } else {
                big
            };
            let mut scrubbed = false;
            let block = loop {
                match self.parser.next_block(&self.buf) {
                    Ok((_, b)) => break b,
                    Err(e) if is_utf8(&e) && !scrubbed => {
                        tracing::warn!("{path}: invalid UTF-8 in a pcapng option ignored");
                        scrub_utf8(&mut self.buf, big);
                        scrubbed = true;
                    }
                    Err(e) => return Err(NgError::Format(e.to_string())),
                }
            };
            let (iface, ts, data, flags) = match block {
                Block::SectionHeader(_) => {
                    self.ifaces.clear();
                    self.warned.clear();
                    continue;
                }
                Block::InterfaceDescription(idb) => {
                    self.ifaces.push(Iface::new(&idb, self.port_mac));
                    self.warned.push(false);
                    continue;
                }
                Block::EnhancedPacket(p) => {
                    let raw = u64::try_from(p.timestamp.as_nanos()).unwrap_or(u64::MAX);
                    let flags = p.options.iter().find_map(|o| match o {
                        EnhancedPacketOption::Flags(f) => Some(*f),
                        _ => None,
                    });
                    (p.interface_id, Some(raw), p.data, flags)
                }
                Block::SimplePacket(p) => (0, None, p.data, None),
                Block::Packet(p) => (u32::from(p.interface_id), Some(p.timestamp), p.data, None),
                _ => continue,
            };
            let Some(ifc) = self.ifaces.get(iface as usize) else {
                return Err(NgError::Format(format!(
                    "packet on undeclared interface {iface}"
                )));
            };
            let Some(dec) = ifc.dec else {
                let w = &mut self.warned[iface as usize];
                if !*w {
                    *w = true;
                    tracing::warn!(
                        "{path}: interface {iface}: link type {} cannot be replayed; its packets are skipped (skipped.unsupported_link_type)",
                        linktype_name(ifc.linktype)
                    );
                }
                *skipped.entry(SkipReason::UnsupportedLinkType).or_default() += 1;
                continue;
            };
            if ifc.snaplen != 0 && data.len() > ifc.snaplen as usize {
                *skipped.entry(SkipReason::SnaplenExceeded).or_default() += 1;
                continue;
            }
            let ts_ns = ts.map_or(self.last_ts, |raw| {
                pcapng_ns(raw, ifc.tsresol, ifc.offset_s)
            });
            if ts_ns > MAX_CAPTURE_NS {
                return Err(NgError::Format(format!(
                    "timestamp {ts_ns} ns is out of range"
                )));
            }
            self.last_ts = ts_ns;
            // epb_flags bits 5-8: this frame's FCS length in bytes.
            let fcs = flags.map(|f| ((f >> 5) & 0xf) as u8).filter(|n| *n != 0);
            let data = dec.decode(data.into_owned(), fcs);
            return Ok(Some(Packet { ts_ns, data }));
        }
    }
}

fn is_utf8(e: &PcapError) -> bool {
    matches!(e, PcapError::Utf8Error(_) | PcapError::FromUtf8Error(_))
}

fn rd16(b: &[u8], at: usize, big: bool) -> Option<u16> {
    let x: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
    Some(if big {
        u16::from_be_bytes(x)
    } else {
        u16::from_le_bytes(x)
    })
}

fn rd32(b: &[u8], at: usize, big: bool) -> Option<u32> {
    let x: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(if big {
        u32::from_be_bytes(x)
    } else {
        u32::from_le_bytes(x)
    })
}

fn block_type(block: &[u8], big: bool) -> u32 {
    rd32(block, 0, big).unwrap_or(0)
}

/// A section header's byte order (from its byte-order magic).
fn section_big_endian(block: &[u8]) -> bool {
    block.get(8..12) == Some(&[0x1a, 0x2b, 0x3c, 0x4d])
}

/// Read one whole block into `buf`. `big`: the section's byte order (`None`
/// before the first section header). `Ok(false)` at a clean end of file.
fn read_block(r: &mut impl Read, buf: &mut Vec<u8>, big: Option<bool>) -> Result<bool, NgError> {
    buf.clear();
    buf.resize(8, 0);
    match read_full(r, &mut buf[..8])? {
        0 => return Ok(false),
        8 => {}
        _ => return Err(std::io::Error::from(ErrorKind::UnexpectedEof).into()),
    }
    let big = if buf[..4] == SHB.to_be_bytes() {
        // A new section: its byte order is in the next word.
        buf.resize(12, 0);
        if read_full(r, &mut buf[8..12])? != 4 {
            return Err(std::io::Error::from(ErrorKind::UnexpectedEof).into());
        }
        match &buf[8..12] {
            [0x1a, 0x2b, 0x3c, 0x4d] => true,
            [0x4d, 0x3c, 0x2b, 0x1a] => false,
            _ => {
                return Err(NgError::Format(
                    "section header: bad byte-order magic".into(),
                ));
            }
        }
    } else {
        match big {
            Some(b) => b,
            None => return Err(NgError::Format("no section header block".into())),
        }
    };
    let len = rd32(buf, 4, big).unwrap_or(0) as usize;
    if len < 12 || !len.is_multiple_of(4) || len > MAX_BLOCK {
        return Err(NgError::Format(format!("bad block length {len}")));
    }
    let have = buf.len();
    // Grows as data arrives: a corrupted length on a short file allocates
    // only what the file holds.
    let got = r.take((len - have) as u64).read_to_end(buf)?;
    if have + got != len {
        return Err(std::io::Error::from(ErrorKind::UnexpectedEof).into());
    }
    Ok(true)
}

/// Replace the bytes that are not valid UTF-8 in the string options of a
/// section header, interface description or packet block by `?` (same
/// length, so the block stays well formed).
fn scrub_utf8(block: &mut [u8], big: bool) {
    let end = block.len().saturating_sub(4);
    let body = 8;
    let (mut at, codes): (usize, &[u16]) = match block_type(block, big) {
        SHB => (body + 16, &[1, 2, 3, 4]),
        IDB => (body + 8, &[1, 2, 3, 12, 15]),
        EPB | PB => {
            let cap = rd32(block, body + 12, big).unwrap_or(0) as usize;
            (body + 20 + cap.next_multiple_of(4), &[1])
        }
        _ => return,
    };
    while at + 4 <= end {
        let (Some(code), Some(len)) = (rd16(block, at, big), rd16(block, at + 2, big)) else {
            return;
        };
        let len = usize::from(len);
        if code == 0 || at + 4 + len > end {
            return;
        }
        let v = &mut block[at + 4..at + 4 + len];
        if codes.contains(&code) {
            scrub(v);
        } else if matches!(code, 2988 | 19372) && v.len() >= 4 {
            scrub(&mut v[4..]);
        }
        at += 4 + len.next_multiple_of(4);
    }
}

fn scrub(v: &mut [u8]) {
    let mut i = 0;
    while let Err(e) = std::str::from_utf8(&v[i..]) {
        let bad = i + e.valid_up_to();
        let n = e.error_len().unwrap_or(v.len() - bad);
        v[bad..bad + n].fill(b'?');
        i = bad + n;
    }
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

    #[test]
    fn scrub_keeps_length_and_valid_text() {
        let mut v = b"ok \xff\xfe caf\xc3\xa9 \xc3".to_vec();
        let n = v.len();
        scrub(&mut v);
        assert_eq!(v.len(), n);
        assert_eq!(std::str::from_utf8(&v).unwrap(), "ok ?? café ?");
    }
}
