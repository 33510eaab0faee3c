//! Min-of-N timing of the NAT fast path (less sensitive to a loaded machine
//! than criterion's medians): for `n` established UDP sessions, the best of
//! `ROUNDS` rounds of copy, flow-table lookup alone, `Nat::process` per
//! frame and `Nat::process_burst` (32), in ns per frame, interleaved so
//! load spikes hit every variant alike. `NAT_MINLOOP_ROUNDS` overrides.

use std::hint::black_box;
use std::time::Instant;

use nat::{Side, Verdict};

mod common;
use common::{Established, established, lookup_all};

fn run(n: usize, rounds: usize) {
    let Established {
        mut nat,
        frames,
        cls,
        mut table,
        now,
    } = established(n);
    let mut buf = vec![0u8; frames[0].len()];
    let mut bufs = frames.clone();
    let mut verdicts = vec![Verdict::Forward; 32];
    let mut best = [f64::MAX; 4];
    let per = |t: Instant| t.elapsed().as_nanos() as f64 / n as f64;
    for _ in 0..rounds {
        let t = Instant::now();
        for f in &frames {
            buf.copy_from_slice(f);
            black_box(&mut buf);
        }
        best[0] = best[0].min(per(t));
        let t = Instant::now();
        black_box(lookup_all(&mut table, &cls, now));
        best[1] = best[1].min(per(t));
        let t = Instant::now();
        for (f, cl) in frames.iter().zip(&cls) {
            buf.copy_from_slice(f);
            let v = nat.process(&mut buf, cl, Side::Inside, now);
            black_box((&buf, v));
        }
        best[2] = best[2].min(per(t));
        let t = Instant::now();
        for (fs, (bs, cl)) in frames
            .chunks(32)
            .zip(bufs.chunks_mut(32).zip(cls.chunks(32)))
        {
            for (b, f) in bs.iter_mut().zip(fs) {
                b.copy_from_slice(f);
            }
            let mut refs: Vec<&mut [u8]> = bs.iter_mut().map(Vec::as_mut_slice).collect();
            nat.process_burst(&mut refs, cl, Side::Inside, now, &mut verdicts);
            black_box(&verdicts);
        }
        best[3] = best[3].min(per(t));
    }
    println!(
        "minloop n={n} rounds={rounds}: copy {:.1}  lookup {:.1}  nat {:.1} (-copy {:.1}, {:.2}x lookup)  burst32 {:.1} (-copy {:.1}, {:.2}x lookup)  ns/frame",
        best[0],
        best[1],
        best[2],
        best[2] - best[0],
        (best[2] - best[0]) / best[1],
        best[3],
        best[3] - best[0],
        (best[3] - best[0]) / best[1],
    );
}

fn main() {
    // Under `cargo test --benches` (no `--bench` argument): one quick round.
    let quick = !std::env::args().any(|a| a == "--bench");
    let rounds = std::env::var("NAT_MINLOOP_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if quick { 1 } else { 30 });
    run(4096, rounds);
    if !quick {
        run(3 * 65536, rounds.div_ceil(3));
    }
}
