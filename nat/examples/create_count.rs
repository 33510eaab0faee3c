//! Session-creation cost, harness-less (for wall clock and for callgrind):
//! `N` (`NAT_CREATE_N`, default 200 000) outbound UDP frames, each opening
//! a new session (new mapping, port allocation, two-key insert), from 250
//! inside hosts (quota 0) to one remote, through a masquerade to
//! 198.18.0.0/24. Each frame is copied, classified and processed (parse,
//! creation, rewrite), as the dataplane does. Prints ns per session.
//!
//! Steady state: `N` sessions of the same hosts (other source ports)
//! are created first, in chunks of 8192 a tick apart; the timed frames go
//! in chunks too, each right after the (untimed) poll that expires its
//! warm-up chunk, so they reuse the slots, mapping records and ports just
//! freed, as new sessions do between a steady state's polls (no first
//! touch of fresh pages). `NAT_CREATE_PREFILL` (default 0) sessions from
//! other hosts stay live throughout, so the creation runs against a fuller
//! table (800 000: 1 M live at the end).
//! `NAT_CREATE_BURST` (default 1: `Nat::process` per frame) sends the
//! timed frames in bursts of that many through `Nat::process_burst`, as
//! the dataplane does (64). `NAT_CREATE_ROUNDS` (default 1) repeats the
//! whole run, each round on a fresh NAT. Printed: the minimum and median
//! round, and the best chunk of 8192 frames (a loaded machine inflates
//! single runs). The digest (translated addresses and ports of every
//! frame, in order) compares allocation choices across builds.
//!
//! Instruction counts of the timed part only: `NAT_CREATE_N=40000
//! valgrind --tool=callgrind --toggle-collect='*create_count*timed_chunk*'
//! target/release/examples/create_count`, then `callgrind_annotate`.

use std::hint::black_box;
use std::time::Instant;

use core::net::Ipv4Addr;

use etherparse::PacketBuilder;
use flow_entry::{FlowTableConfig, Timestamp};
use nat::{Nat, NatConfig, Side, Verdict};

fn udp(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(src.octets(), dst.octets(), 64)
        .udp(sport, dport);
    let mut v = Vec::new();
    b.write(&mut v, &[0u8; 18]).unwrap();
    v
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Frame `i` of a run from `hosts` inside hosts starting at `first_host`.
fn frame(first_host: u32, hosts: u32, i: u32) -> Vec<u8> {
    udp(
        Ipv4Addr::from(first_host + i % hosts),
        1024 + (i / hosts) as u16,
        Ipv4Addr::new(192, 0, 2, 1),
        53,
    )
}

/// FNV-1a of the translated address and port (bytes 26..38) of every
/// frame, in order: equal digests, equal allocation choices.
fn digest(d: &mut u64, frame: &[u8]) {
    for &b in &frame[26..38] {
        *d = (*d ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
}

#[inline(never)]
fn run_creates(
    nat: &mut Nat,
    frames: &[Vec<u8>],
    buf: &mut [u8],
    now: Timestamp,
    d: &mut u64,
) -> usize {
    let mut ok = 0;
    for f in frames {
        buf.copy_from_slice(f);
        let cl = net::classify(buf).unwrap();
        if nat.process(buf, &cl, Side::Inside, now) == Verdict::Forward {
            ok += 1;
        }
        digest(d, black_box(&*buf));
    }
    ok
}

/// As [`run_creates`], in bursts of `burst` frames through
/// `Nat::process_burst` (its two prefetch stages first), as the dataplane
/// does (64 frames a call).
#[inline(never)]
fn run_creates_burst(
    nat: &mut Nat,
    frames: &[Vec<u8>],
    bufs: &mut [Vec<u8>],
    burst: usize,
    now: Timestamp,
    d: &mut u64,
) -> usize {
    let mut ok = 0;
    let mut cls = Vec::with_capacity(burst);
    let mut verdicts = vec![Verdict::Forward; burst];
    for fs in frames.chunks(burst) {
        let bs = &mut bufs[..fs.len()];
        cls.clear();
        for (b, f) in bs.iter_mut().zip(fs) {
            b.copy_from_slice(f);
            cls.push(net::classify(b).unwrap());
        }
        let mut refs: Vec<&mut [u8]> = bs.iter_mut().map(Vec::as_mut_slice).collect();
        nat.process_burst(&mut refs, &cls, Side::Inside, now, &mut verdicts);
        for (b, v) in bs.iter().zip(&verdicts) {
            if *v == Verdict::Forward {
                ok += 1;
            }
            digest(d, black_box(b));
        }
    }
    ok
}

/// One round: a fresh NAT, the prefill, then `n` timed creations.
/// Returns ns per session (whole run, best chunk of [`CHUNK`]), the NAT
/// and the digest.
/// One timed chunk of creations (callgrind's `--toggle-collect` target):
/// sessions created.
#[inline(never)]
fn timed_chunk(
    nat: &mut Nat,
    part: &[Vec<u8>],
    buf: &mut [u8],
    bufs: &mut [Vec<u8>],
    burst: usize,
    now: Timestamp,
    d: &mut u64,
) -> usize {
    if burst > 1 {
        run_creates_burst(nat, part, bufs, burst, now, d)
    } else {
        run_creates(nat, part, buf, now, d)
    }
}

/// Frames timed together (a multiple of the dataplane's burst of 64).
const CHUNK: usize = 8192;

fn round(n: usize, prefill: usize, burst: usize) -> (f64, f64, Nat, u64) {
    let mut cfg = NatConfig::masquerade(
        vec!["10.0.0.0/8".parse().unwrap()],
        vec!["198.18.0.0/24".parse().unwrap()],
    );
    cfg.per_host_port_quota = 0;
    // Below the high watermark (0.9): no draining.
    let capacity = ((n + prefill) * 4 / 3).next_power_of_two().max(1 << 16);
    let mut nat = Nat::new(
        cfg,
        FlowTableConfig {
            shards: 1,
            capacity,
            ..FlowTableConfig::default()
        },
    )
    .unwrap();
    let mut buf = frame(0x0a00_0000, 250, 0);
    let mut d = 0xcbf2_9ce4_8422_2325u64;
    // Chunk i of the warm-up is created at `warm_at(i)`; chunk i of the
    // timed frames at its expiry (UDP: 300 s), right after the poll that
    // releases it.
    let tick = 100_000_000u64;
    let warm_at = |i: usize| 1_000_000_000 + i as u64 * tick;
    let warm: Vec<Vec<u8>> = (0..n as u32)
        .map(|i| frame(0x0a00_0000, 250, i + n as u32))
        .collect();
    for (i, part) in warm.chunks(CHUNK).enumerate() {
        let at = Timestamp::from_nanos(warm_at(i));
        let ok = run_creates(&mut nat, part, &mut buf, at, &mut d);
        assert_eq!(ok, part.len(), "warm-up");
    }
    drop(warm);
    if prefill > 0 {
        let pre: Vec<Vec<u8>> = (0..prefill as u32)
            .map(|i| frame(0x0a01_0000, 1000, i))
            .collect();
        let ok = run_creates(&mut nat, &pre, &mut buf, Timestamp::from_secs(100), &mut d);
        assert_eq!(ok, prefill, "prefill");
    }
    let frames: Vec<Vec<u8>> = (0..n as u32).map(|i| frame(0x0a00_0000, 250, i)).collect();
    let mut bufs = vec![buf.clone(); burst.max(1)];
    let (mut ok, mut best, mut el) = (0, f64::MAX, 0u128);
    for (i, part) in frames.chunks(CHUNK).enumerate() {
        // Not timed: the warm-up chunk expires, freeing what the timed
        // chunk reuses (slots, records, ports), as a steady state's polls do.
        let now = Timestamp::from_nanos(warm_at(i) + 300_000_000_000);
        assert_eq!(
            nat.poll(now, usize::MAX),
            part.len(),
            "warm-up chunk expired"
        );
        let t = Instant::now();
        ok += timed_chunk(&mut nat, part, &mut buf, &mut bufs, burst, now, &mut d);
        let e = t.elapsed().as_nanos();
        el += e;
        best = best.min(e as f64 / part.len() as f64);
    }
    assert_eq!(ok, n, "every frame creates a session");
    assert_eq!(nat.stats().created as usize, 2 * n + prefill);
    assert_eq!(nat.stats().sessions_active as usize, n + prefill);
    (el as f64 / n as f64, best, nat, d)
}

fn main() {
    let n = env("NAT_CREATE_N", 200_000);
    let prefill = env("NAT_CREATE_PREFILL", 0);
    let rounds = env("NAT_CREATE_ROUNDS", 1).max(1);
    let burst = env("NAT_CREATE_BURST", 1).max(1);
    let mut ns = Vec::new();
    let mut best = f64::MAX;
    let mut last = None;
    for _ in 0..rounds {
        let (t, b, nat, d) = round(n, prefill, burst);
        ns.push(t);
        best = best.min(b);
        last = Some((nat, d));
    }
    let (nat, d) = last.expect("one round");
    ns.sort_by(f64::total_cmp);
    let st = nat.stats();
    println!(
        "create_count n={n} prefill={prefill} burst={burst} rounds={rounds}: min {:.1} median {:.1} ns/session, best chunk {best:.1} ({:.2} M/s); sessions {} preserved {} parity {} other {} fallback {} digest {d:016x}",
        ns[0],
        ns[ns.len() / 2],
        1e3 / best,
        st.sessions_active,
        st.alloc.preserved,
        st.alloc.parity_kept,
        st.alloc.other,
        st.alloc.fallback_address,
    );
}
