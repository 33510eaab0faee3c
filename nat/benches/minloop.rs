//! Min-of-N timing of the NAT fast path (less sensitive to a loaded machine
//! than criterion's medians): for `n` established UDP sessions, the best of
//! `ROUNDS` rounds of copy, flow-table lookup alone, `Nat::process` per
//! frame and `Nat::process_burst` (32), in ns per frame, interleaved so
//! load spikes hit every variant alike. `NAT_MINLOOP_ROUNDS` overrides.

use std::hint::black_box;
use std::time::Instant;

use core::net::Ipv4Addr;

use etherparse::PacketBuilder;
use flow_entry::{FlowKey, FlowTable, FlowTableConfig, Timestamp};
use nat::{Nat, NatConfig, Side, Verdict};

fn udp(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(src.octets(), dst.octets(), 64)
        .udp(sport, dport);
    let mut v = Vec::new();
    b.write(&mut v, &[0u8; 18]).unwrap();
    v
}

fn table_cfg(capacity: usize) -> FlowTableConfig {
    FlowTableConfig {
        shards: 16,
        capacity,
        ..FlowTableConfig::default()
    }
}

fn run(n: usize, rounds: usize) {
    let mut c = NatConfig::masquerade(
        vec!["10.0.0.0/8".parse().unwrap()],
        vec!["203.0.113.0/24".parse().unwrap()],
    );
    c.per_host_port_quota = 0;
    let nat = Nat::new(c, table_cfg((2 * n).next_power_of_two())).unwrap();
    let now = Timestamp::from_secs(1);
    let frames: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            udp(
                Ipv4Addr::from(0x0a00_0000 + i as u32),
                1024 + (i % 60000) as u16,
                Ipv4Addr::new(192, 0, 2, (i % 250) as u8),
                53,
            )
        })
        .collect();
    let cls: Vec<_> = frames.iter().map(|f| net::classify(f).unwrap()).collect();
    for (f, cl) in frames.iter().zip(&cls) {
        let mut g = f.clone();
        assert_eq!(nat.process(&mut g, cl, Side::Inside, now), Verdict::Forward);
    }
    let table: FlowTable<u64> =
        FlowTable::new(table_cfg((2 * n).next_power_of_two()), |_, _| {}).unwrap();
    for (i, cl) in cls.iter().enumerate() {
        let k = FlowKey::from_tuple(&cl.tuple.unwrap(), 0);
        let r = FlowKey::v4(
            Ipv4Addr::new(192, 0, 2, (i % 250) as u8),
            Ipv4Addr::new(203, 0, 113, (i / 65536) as u8),
            17,
            53,
            (i % 65536) as u16,
            0,
        );
        table
            .insert_pair(k, r, i as u64, Timestamp::from_secs(1000), now)
            .unwrap();
    }
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
        let mut s = 0u64;
        for cl in &cls {
            let k = FlowKey::from_tuple(&cl.tuple.unwrap(), 0);
            s += table.lookup_with(&k, now, |e| *e.value()).unwrap_or(0);
        }
        black_box(s);
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
