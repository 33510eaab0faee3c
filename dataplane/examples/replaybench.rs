//! Replay throughput: the full pipeline (classify, local delivery, NAT,
//! routing, neighbour lookup, MAC rewrite) beside a pass-through pipeline
//! (frames forwarded untouched) over the same generated capture, in the same
//! run, through the same replay driver (merge, clock, sink).
//!
//! ```sh
//! cargo run --release -p dataplane --example replaybench            # 1.2M packets, 120k flows
//! BENCH_FLOWS=200000 BENCH_ROUNDS=3 cargo run --release -p dataplane --example replaybench
//! ```
//!
//! The capture: `BENCH_FLOWS` flows (UDP and TCP, 64 inside hosts → 4096
//! remote endpoints), each `BENCH_PKTS_PER_DIR` (5) packets out and as many
//! replies in, replies addressed to the endpoint the NAT chose (found by a
//! first replay, as a real capture would show). Two I/O variants, each with
//! both pipelines: `files` is what `dataplane replay` does (pcap files read,
//! per-port pcap files written); `memory` keeps frames in memory and counts
//! output, so it isolates the pipeline. A third loop, the *floor*
//! (`floor_files`, `floor_memory`), does the least a NAT has to do per
//! packet with the same feed and sink (classify, one lookup or insert in a
//! flat prefetched table, rewrite, TTL, MACs; no locks, allocator, expiry,
//! state or counters): what a minimal lookup-and-rewrite loop achieves on
//! this harness; `floor_table_*` is the same loop with the product's
//! session table (`flow_entry::Shard<u128, _>`, as the NAT keeps it) in
//! place of the flat table. Prints one JSON line; per-round figures on
//! stderr. Best of `BENCH_ROUNDS` (2).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use core::net::{IpAddr, Ipv4Addr};
use dataplane::config::Config;
use dataplane::pipeline::{Pipeline, PortId, Shared};
use dataplane::replay::{
    self, CountSink, FileSource, MemSink, Merge, Packet, PacketSource, PcapDirSink, VecSource,
};
use dataplane::traffic::{self, tcp};
use dataplane::wire::{self, PROTO_TCP, PROTO_UDP};
use pcap_file::pcap::{PcapPacket, PcapWriter};

#[path = "common/flat.rs"]
mod flat;
use flat::FlatTable;

const LAN: PortId = 0;
const WAN: PortId = 1;
const LAN_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x01];
const WAN_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x02, 0x01];
const ROUTER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x02, 0xfe];
const GW: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);

/// CPU time of the calling thread (s): less disturbed than wall time when
/// other work shares the cores (printed beside the wall-clock figures).
#[allow(unsafe_code)]
fn thread_cpu() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn bench_config(flows: u64) -> Config {
    let text = dataplane::config::DEFAULT_CONFIG
        .replace(
            "addresses = [\"203.0.113.10\", \"203.0.113.11\"]",
            "addresses = [\"203.0.113.16/28\"]",
        )
        .replace("per_host_port_quota = 4096", "per_host_port_quota = 0")
        .replace(
            "capacity = 262144",
            &format!("capacity = {}", (flows * 2).next_power_of_two()),
        );
    Config::from_toml_str(&text).expect("bench config")
}

fn host(i: u64) -> (Ipv4Addr, [u8; 6]) {
    let ip = Ipv4Addr::new(192, 168, 1, 10 + (i % 64) as u8);
    (ip, [0x02, 0, 0, 0, 0x10, ip.octets()[3]])
}

/// Outbound packets: per flow `pkts` packets, the first one opening it.
fn outbound(flows: u64, pkts: u64) -> Vec<Packet> {
    let mut v = Vec::with_capacity((flows * pkts + 64) as usize);
    for h in 0..64 {
        let (ip, mac) = host(h);
        v.push(Packet {
            ts_ns: h * 1000,
            data: wire::arp_request(mac, ip, GW),
        });
    }
    let span = 10_000_000_000u64;
    for k in 0..pkts {
        for f in 0..flows {
            let (ip, mac) = host(f);
            let dst = Ipv4Addr::new(198, 51, (f / 4096 % 200) as u8 + 1, (f % 250) as u8 + 1);
            let sport = 10_000 + (f / 64 % 50_000) as u16;
            let dport = 1000 + (f % 4096) as u16;
            let ts = 1_000_000_000 + k * span + f * (span / flows.max(1));
            let data = if f % 2 == 0 {
                traffic::ipv4(
                    mac,
                    LAN_MAC,
                    ip,
                    dst,
                    64,
                    k as u16,
                    PROTO_UDP,
                    &traffic::udp_dgram(sport, dport, &[0u8; 18]),
                )
            } else {
                let flags = if k == 0 {
                    tcp::SYN
                } else {
                    tcp::ACK | tcp::PSH
                };
                traffic::ipv4(
                    mac,
                    LAN_MAC,
                    ip,
                    dst,
                    64,
                    k as u16,
                    PROTO_TCP,
                    &traffic::tcp_seg(sport, dport, k as u32, 1, flags, &[0u8; 6]),
                )
            };
            v.push(Packet { ts_ns: ts, data });
        }
    }
    v
}

/// Replies to every translated outbound frame, 1 ms later.
fn replies(translated: &[Packet]) -> Vec<Packet> {
    let mut v = Vec::with_capacity(translated.len());
    for p in translated {
        let Ok(c) = wire::classify(&p.data) else {
            continue;
        };
        let Some(t) = c.tuple else { continue };
        let (IpAddr::V4(s), IpAddr::V4(d)) = (t.src, t.dst) else {
            continue;
        };
        let l4 = if t.proto == PROTO_UDP {
            traffic::udp_dgram(t.dst_port, t.src_port, &[0u8; 18])
        } else {
            let flags = if c.l4_offset > 0
                && p.data.get(usize::from(c.l4_offset) + 13) == Some(&tcp::SYN)
            {
                tcp::SYN | tcp::ACK
            } else {
                tcp::ACK
            };
            traffic::tcp_seg(t.dst_port, t.src_port, 1, 2, flags, &[0u8; 6])
        };
        v.push(Packet {
            ts_ns: p.ts_ns + 1_000_000,
            data: traffic::ipv4(ROUTER_MAC, WAN_MAC, d, s, 60, 1, t.proto, &l4),
        });
    }
    v.sort_by_key(|p| p.ts_ns);
    v
}

/// Where the capture comes from and where output goes.
enum Io<'a> {
    /// Frames in memory, output counted.
    Memory(&'a [Packet], &'a [Packet]),
    /// pcap files in, pcap files out (what `dataplane replay` does).
    Files(&'a Path, &'a Path),
}

/// Build `io`'s feed (the two captures merged) and sink, time `f` over
/// them (wall and thread CPU seconds; in memory, the clone of the frames is
/// not timed). Returns `f`'s result and, in memory, the packets the sink
/// counted.
fn with_io<R>(
    io: &Io<'_>,
    names: &[String],
    f: impl FnOnce(&mut dyn replay::Feed, &mut dyn replay::PacketSink) -> R,
) -> (f64, f64, R, Option<u64>) {
    match io {
        Io::Memory(lan, wan) => {
            let srcs: Vec<(PortId, Box<dyn PacketSource>)> = vec![
                (LAN, Box::new(VecSource::new(lan.to_vec()))),
                (WAN, Box::new(VecSource::new(wan.to_vec()))),
            ];
            let mut feed = Merge::new(srcs);
            let mut sink = CountSink::default();
            let (t0, c0) = (Instant::now(), thread_cpu());
            let r = f(&mut feed, &mut sink);
            let cpu = thread_cpu() - c0;
            (t0.elapsed().as_secs_f64(), cpu, r, Some(sink.packets))
        }
        Io::Files(dir, out) => {
            let (t0, c0) = (Instant::now(), thread_cpu());
            let srcs: Vec<(PortId, Box<dyn PacketSource>)> = vec![
                (
                    LAN,
                    Box::new(FileSource::open(&dir.join("lan.pcap")).expect("open")),
                ),
                (
                    WAN,
                    Box::new(FileSource::open(&dir.join("wan.pcap")).expect("open")),
                ),
            ];
            let mut feed = Merge::new(srcs);
            let mut sink = PcapDirSink::create(out, names).expect("out dir");
            let r = f(&mut feed, &mut sink);
            let cpu = thread_cpu() - c0;
            (t0.elapsed().as_secs_f64(), cpu, r, None)
        }
    }
}

fn run(cfg: Config, io: &Io<'_>, passthrough: bool, burst: usize) -> (f64, f64, u64, Arc<Shared>) {
    let shared = Shared::new(cfg, 1).expect("shared");
    let mut p = if passthrough {
        Pipeline::passthrough(Arc::clone(&shared), 0)
    } else {
        Pipeline::new(Arc::clone(&shared), 0)
    };
    let (secs, cpu, (), counted) = with_io(io, &shared.port_names(), |feed, sink| {
        replay::drive_bursts(&mut p, feed, sink, burst, |_| {}).expect("replay");
    });
    let out = counted.unwrap_or_else(|| {
        shared
            .counters
            .snapshot(&shared.port_names())
            .tx
            .values()
            .sum()
    });
    (secs, cpu, out, shared)
}

/// How far the floor reads ahead to prefetch its table slots.
const FLOOR_AHEAD: usize = 8;

/// A floor packet's session key: (source, destination, protocol, source
/// port, destination port); replies use the pool address as destination.
type FloorKey = (Ipv4Addr, Ipv4Addr, u8, u16, u16);

/// The floor's session store: the flat table, or the product's session
/// table (`flow_entry::Shard`: single writer, with its wheel, lazy expiry
/// and draining; `u128` keys as the NAT packs them) in its place, to see
/// what the table alone costs. One store per run, so the variants' size
/// difference costs nothing (boxing the shard would add a load per access).
#[allow(clippy::large_enum_variant)]
enum FloorStore {
    Flat(FlatTable),
    Shard(flow_entry::Shard<u128, u32>),
}

/// A prefetched position in a [`FloorStore`].
#[derive(Clone, Copy)]
enum FloorPos {
    Flat((u64, u64), usize),
    /// The key and its hash.
    Shard(u128, u64),
}

/// A floor key packed into a `u128` (addresses, ports, protocol).
fn shard_key((a, b, proto, p1, p2): FloorKey) -> u128 {
    u128::from(u32::from(a)) << 96
        | u128::from(u32::from(b)) << 64
        | u128::from(p1) << 48
        | u128::from(p2) << 32
        | u128::from(proto)
}

/// Releases need nothing here (the value is an address).
fn nothing(_: u32, _: flow_entry::ReleaseReason) {}

impl FloorStore {
    fn new(shard: bool, flows: usize) -> Self {
        if !shard {
            return FloorStore::Flat(FlatTable::new(flows * 2));
        }
        let cfg = flow_entry::FlowTableConfig {
            tick: core::time::Duration::from_secs(1),
            ..flow_entry::FlowTableConfig::default()
        };
        FloorStore::Shard(
            flow_entry::Shard::new(
                (flows * 2).next_power_of_two(),
                &cfg,
                flow_entry::Timestamp::ZERO,
            )
            .expect("table"),
        )
    }
    /// The key's position, its first cache line(s) prefetched.
    fn locate(&self, k: FloorKey) -> FloorPos {
        let (a, b, proto, p1, p2) = k;
        match self {
            FloorStore::Flat(t) => {
                let key = flat::key(a, b, proto, p1, p2);
                let i = t.index(key);
                t.prefetch(i);
                FloorPos::Flat(key, i)
            }
            FloorStore::Shard(t) => {
                let key = shard_key(k);
                let h = t.hash(&key);
                t.prefetch_index(h);
                FloorPos::Shard(key, h)
            }
        }
    }
    /// Second prefetch stage, half the read-ahead later (the shard's
    /// entry, through the index bucket the first stage loaded).
    fn stage2(&self, pos: &FloorPos) {
        if let (FloorStore::Shard(t), FloorPos::Shard(_, h)) = (self, pos) {
            t.prefetch_entry(*h);
        }
    }
    fn get(&mut self, pos: &FloorPos, now: u64) -> Option<u32> {
        match (self, pos) {
            (FloorStore::Flat(t), FloorPos::Flat(k, i)) => t.get(*k, *i),
            (FloorStore::Shard(t), FloorPos::Shard(k, h)) => {
                let now = flow_entry::Timestamp::from_nanos(now);
                let (id, _) = t.lookup(k, *h, now, &mut nothing)?;
                t.get(id).copied()
            }
            _ => None,
        }
    }
    /// Insert both directions of a new outbound flow: `fwd` (the packet's
    /// position) and the reply key `rev`, the reply mapping to `inside`.
    fn insert(&mut self, fwd: &FloorPos, rev: FloorKey, inside: Ipv4Addr, now: u64) {
        match (self, fwd) {
            (FloorStore::Flat(t), FloorPos::Flat(k, i)) => {
                let (a, b, proto, p1, p2) = rev;
                let rk = flat::key(a, b, proto, p1, p2);
                let ri = t.index(rk);
                let _ = t.insert(*k, 1, *i) && t.insert(rk, u32::from(inside), ri);
            }
            (FloorStore::Shard(t), FloorPos::Shard(k, h)) => {
                let rk = shard_key(rev);
                let rh = t.hash(&rk);
                let now = flow_entry::Timestamp::from_nanos(now);
                let exp = now + core::time::Duration::from_secs(3600);
                let _ = t.insert_hashed(
                    (*k, *h),
                    Some((rk, rh)),
                    u32::from(inside),
                    exp,
                    now,
                    &mut nothing,
                );
            }
            _ => {}
        }
    }
}

/// The floor: the least work a NAT has to do per packet here, with the same
/// feed and sink as the pipelines — classify (`net::classify`), one table
/// lookup (an insert of both directions for a new outbound flow) in a flat
/// open-addressing table whose slots are prefetched `FLOOR_AHEAD` packets
/// ahead, the address/port rewrite with incremental checksums
/// (`net::rewrite`), TTL and MACs. Single-threaded, no locks, no expiry,
/// no TCP state, no counters, no ARP/ICMP/fragment handling: what a
/// minimal lookup-and-rewrite loop achieves, not a NAT. Outbound keeps the
/// source port (keyed with the remote); a reply to a port the real NAT
/// chose differently misses the lookup (counted: the second figure) and is
/// still rewritten and written, so every packet costs the same work.
fn floor(
    feed: &mut dyn replay::Feed,
    sink: &mut dyn replay::PacketSink,
    pool: Ipv4Addr,
    mut store: FloorStore,
) -> (u64, u64) {
    let mut skipped = BTreeMap::new();
    let (mut sent, mut missed) = (0u64, 0u64);
    let mut ahead = std::collections::VecDeque::with_capacity(FLOOR_AHEAD + 1);
    let mut done = false;
    loop {
        while !done && ahead.len() < FLOOR_AHEAD {
            match feed.next(&mut skipped).expect("feed") {
                Some((port, p)) => {
                    let c = wire::classify(&p.data).ok();
                    let pos = c.and_then(|c| {
                        let t = c.tuple?;
                        let (IpAddr::V4(s), IpAddr::V4(d)) = (t.src, t.dst) else {
                            return None;
                        };
                        // Replies are looked up by remote and ports only
                        // (the pool address stands for the real NAT's).
                        let dst = if port == LAN { d } else { pool };
                        Some(store.locate((s, dst, t.proto, t.src_port, t.dst_port)))
                    });
                    ahead.push_back((port, p, c, pos));
                }
                None => done = true,
            }
        }
        if let Some((_, _, _, Some(pos))) = ahead.get(FLOOR_AHEAD / 2) {
            store.stage2(pos);
        }
        let Some((port, mut p, c, pos)) = ahead.pop_front() else {
            break;
        };
        let (Some(c), Some(pos)) = (c, pos) else {
            continue;
        };
        let Some(t) = c.tuple else { continue };
        let (IpAddr::V4(s), IpAddr::V4(d)) = (t.src, t.dst) else {
            continue;
        };
        let ok = if port == LAN {
            if store.get(&pos, p.ts_ns).is_none() {
                let rev = (d, pool, t.proto, t.dst_port, t.src_port);
                store.insert(&pos, rev, s, p.ts_ns);
            }
            net::rewrite::rewrite_ipv4_src(&mut p.data, &c, pool, t.src_port).is_ok()
        } else {
            // A reply to a port the real NAT chose differently still gets
            // the same work (rewrite, write) with a stand-in inside address.
            let inside = store.get(&pos, p.ts_ns).map_or_else(
                || {
                    missed += 1;
                    Ipv4Addr::new(192, 168, 1, 10)
                },
                Ipv4Addr::from,
            );
            net::rewrite::rewrite_ipv4_dst(&mut p.data, &c, inside, t.dst_port).is_ok()
        };
        if !ok {
            continue;
        }
        wire::ipv4_dec_ttl(&mut p.data, usize::from(c.l3_offset));
        let (egress, mac) = if port == LAN {
            (WAN, ROUTER_MAC)
        } else {
            (LAN, [2, 0, 0, 0, 0x10, 1])
        };
        wire::set_macs(
            &mut p.data,
            if port == LAN { WAN_MAC } else { LAN_MAC },
            mac,
        );
        sink.write(egress, p.ts_ns, &p.data).expect("write");
        sent += 1;
    }
    sink.finish().expect("finish");
    (sent, missed)
}

/// [`floor`] over `io`, timed like [`run`]: (wall s, CPU s, sent, missed).
fn run_floor(cfg: &Config, io: &Io<'_>, flows: usize, shard: bool) -> (f64, f64, u64, u64) {
    let names: Vec<String> = cfg.ports.iter().map(|p| p.name.clone()).collect();
    // The reply side's destination: any pool address works (replies are
    // matched on remote endpoint and port only, see `floor`).
    let pool = Ipv4Addr::new(203, 0, 113, 16);
    let store = FloorStore::new(shard, flows);
    let (secs, cpu, (sent, missed), _) =
        with_io(io, &names, |feed, sink| floor(feed, sink, pool, store));
    (secs, cpu, sent, missed)
}

fn write_pcap(path: &Path, pkts: &[Packet]) {
    let f = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    let mut w = PcapWriter::with_header(f, replay::out_header()).expect("header");
    for p in pkts {
        let ts = core::time::Duration::from_nanos(p.ts_ns);
        w.write_packet(&PcapPacket::new(ts, p.data.len() as u32, &p.data))
            .expect("write");
    }
}

fn main() {
    let flows = env("BENCH_FLOWS", 120_000);
    let pkts = env("BENCH_PKTS_PER_DIR", 5);
    let rounds = env("BENCH_ROUNDS", 2).max(1);
    // Comma-separated variants to run (e.g. `b1_memory_full`), for
    // profiling; the JSON line needs all eight.
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let cfg = bench_config(flows);
    eprintln!("generating {flows} flows x {pkts} packets each way ...");
    let lan = outbound(flows, pkts);
    let mut mem = MemSink::default();
    replay::replay_packets(cfg.clone(), vec![(LAN, lan.clone())], &mut mem).expect("phase 1");
    let wan = replies(mem.ports.get(&WAN).map_or(&[][..], |v| &v[..]));
    drop(mem);
    let total = (lan.len() + wan.len()) as u64;
    eprintln!(
        "capture: {total} packets ({} out, {} in)",
        lan.len(),
        wan.len()
    );
    let dir = std::env::temp_dir().join(format!("replaybench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    write_pcap(&dir.join("lan.pcap"), &lan);
    write_pcap(&dir.join("wan.pcap"), &wan);
    let out_dir = dir.join("out");
    let mut best: BTreeMap<String, f64> = BTreeMap::new();
    let mut full_out = 0;
    let mut stats = None;
    let mut floor_missed = 0;
    for r in 0..rounds {
        for (kind, shard) in [("floor", false), ("floor_table", true)] {
            for (io_name, io) in [
                ("memory", Io::Memory(&lan, &wan)),
                ("files", Io::Files(&dir, &out_dir)),
            ] {
                let label = format!("{kind}_{io_name}");
                if !only.is_empty() && !only.split(',').any(|o| o == label) {
                    continue;
                }
                let (secs, cpu, sent, missed) = run_floor(&cfg, &io, flows as usize, shard);
                let pps = total as f64 / secs;
                eprintln!(
                    "round {r}: {kind:<11} {io_name:<6} {secs:.3} s  {pps:>12.0} packets/s  (cpu {cpu:.3} s, {:>10.0} packets/cpu-s)  ({sent} out, {missed} unmatched)",
                    total as f64 / cpu.max(1e-9)
                );
                let e = best.entry(label).or_insert(0.0);
                *e = e.max(pps);
                floor_missed = missed;
            }
        }
        for burst in [1usize, 32] {
            for (io_name, io) in [
                ("memory", Io::Memory(&lan, &wan)),
                ("files", Io::Files(&dir, &out_dir)),
            ] {
                for (name, pt) in [("passthrough", true), ("full", false)] {
                    let label = format!("b{burst}_{io_name}_{name}");
                    if !only.is_empty() && !only.split(',').any(|o| o == label) {
                        continue;
                    }
                    let (secs, cpu, out, shared) = run(cfg.clone(), &io, pt, burst);
                    let pps = total as f64 / secs;
                    let cpu_pps = total as f64 / cpu.max(1e-9);
                    eprintln!(
                        "round {r}: burst {burst:>2} {io_name:<6} {name:<12} {secs:.3} s  {pps:>12.0} packets/s  (cpu {cpu:.3} s, {cpu_pps:>10.0} packets/cpu-s)  ({out} out)"
                    );
                    let e = best.entry(label).or_insert(0.0);
                    *e = e.max(pps);
                    if !pt {
                        full_out = out;
                        let sum = replay::Summary::collect(&shared, BTreeMap::new(), 0, secs);
                        stats = Some((
                            sum.flows_created,
                            sum.nat_sessions_active,
                            sum.drops.values().sum::<u64>(),
                        ));
                    }
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    if !only.is_empty() {
        return;
    }
    let (created, active, drops) = stats.unwrap_or_default();
    let mut json = format!(
        "{{\"packets\":{total},\"flows\":{flows},\"nat_sessions_created\":{created},\"nat_sessions_active\":{active},\"full_packets_out\":{full_out},\"full_drops\":{drops}"
    );
    for burst in [1, 32] {
        for io in ["files", "memory"] {
            let f = best[&format!("b{burst}_{io}_full")];
            let p = best[&format!("b{burst}_{io}_passthrough")];
            json.push_str(&format!(
                ",\"burst{burst}_{io}_full_pps\":{f:.0},\"burst{burst}_{io}_passthrough_pps\":{p:.0},\"burst{burst}_{io}_ratio\":{:.3}",
                f / p
            ));
        }
    }
    for kind in ["floor", "floor_table"] {
        for io in ["files", "memory"] {
            let f = best[&format!("{kind}_{io}")];
            let p = best[&format!("b1_{io}_passthrough")];
            json.push_str(&format!(
                ",\"{kind}_{io}_pps\":{f:.0},\"{kind}_{io}_ratio\":{:.3}",
                f / p
            ));
        }
    }
    json.push_str(&format!(",\"floor_unmatched\":{floor_missed}"));
    json.push('}');
    println!("{json}");
}
