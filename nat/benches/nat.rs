//! NAT benchmarks (criterion), each beside its baseline in the same run.
//!
//! `fast_path/*` (4096 sessions, cache-resident) and `fast_path_196k/*`
//! (196 608 sessions): established-session translation (lookup, state, rewrite,
//! incremental checksums) of N frames, beside a plain copy of the same
//! frames and beside the flow-table lookup alone (same keys, same table
//! configuration). The NAT figure includes the copy (the frame must be
//! restored before each translation), so compare
//! `nat_copy_and_translate - copy` (and the burst form,
//! `nat_burst32_copy_and_translate - copy`) with `flow_table_lookup_only`.
//!
//! `create/udp_sessions`: sessions created per second (slow path: mapping,
//! allocation, two-key insert). `alloc/fill_percent/*`: allocate + release
//! with the pool 0 %, 90 %, 99 % full.

use std::hint::black_box;
use std::time::{Duration, Instant};

use core::net::Ipv4Addr;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use flow_entry::Timestamp;
use nat::{Allocator, Nat, NatConfig, PortRange, Side, Verdict};

mod common;
use common::{Established, config, established, lookup_all, table_cfg, udp};

fn fast_path(c: &mut Criterion) {
    fast_path_n(c, "fast_path", 4096);
    fast_path_n(c, "fast_path_196k", 3 * 65536);
}

fn fast_path_n(c: &mut Criterion, group: &str, n: usize) {
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
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(n as u64));
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(2));
    g.sample_size(10);
    g.bench_function("copy", |b| {
        b.iter(|| {
            for f in &frames {
                buf.copy_from_slice(f);
                black_box(&mut buf);
            }
        });
    });
    g.bench_function("flow_table_lookup_only", |b| {
        b.iter(|| black_box(lookup_all(&mut table, &cls, now)));
    });
    g.bench_function("nat_copy_and_translate", |b| {
        b.iter(|| {
            for (f, cl) in frames.iter().zip(&cls) {
                buf.copy_from_slice(f);
                let v = nat.process(&mut buf, cl, Side::Inside, now);
                black_box((&buf, v));
            }
        });
    });
    g.bench_function("nat_burst32_copy_and_translate", |b| {
        b.iter(|| {
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
        });
    });
    g.finish();
}

fn create(c: &mut Criterion) {
    let mut g = c.benchmark_group("create");
    g.throughput(Throughput::Elements(1));
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(2));
    g.sample_size(10);
    let template = udp(
        Ipv4Addr::new(10, 0, 0, 1),
        1024,
        Ipv4Addr::new(192, 0, 2, 1),
        53,
    );
    let cl0 = net::classify(&template).unwrap();
    g.bench_function("udp_sessions", |b| {
        b.iter_custom(|iters| {
            let mut nat = Nat::new(
                config(),
                table_cfg((iters as usize).next_power_of_two().max(1 << 16) * 2),
            )
            .unwrap();
            let mut buf = template.clone();
            let start = Instant::now();
            for i in 0..iters {
                buf.copy_from_slice(&template);
                let host = 0x0a00_0000u32 | (i as u32 & 0xffff);
                let sport = 1024 + ((i >> 16) as u16);
                buf[26..30].copy_from_slice(&host.to_be_bytes());
                buf[34..36].copy_from_slice(&sport.to_be_bytes());
                let mut cl = cl0;
                if let Some(t) = cl.tuple.as_mut() {
                    t.src = core::net::IpAddr::V4(host.into());
                    t.src_port = sport;
                }
                black_box(nat.process(&mut buf, &cl, Side::Inside, Timestamp::from_secs(1)));
            }
            start.elapsed()
        });
    });
    g.finish();
}

fn alloc(c: &mut Criterion) {
    let mut g = c.benchmark_group("alloc");
    g.throughput(Throughput::Elements(1));
    g.warm_up_time(Duration::from_millis(300));
    g.measurement_time(Duration::from_secs(1));
    g.sample_size(20);
    for fill in [0u32, 90, 99] {
        let mut cfg = NatConfig::masquerade(
            vec!["10.0.0.0/8".parse().unwrap()],
            vec!["203.0.113.1".parse().unwrap()],
        );
        cfg.per_host_port_quota = 0;
        cfg.pools[0].ports = PortRange::new(1024, 65535);
        let mut a = Allocator::new(&cfg);
        let host = Ipv4Addr::new(10, 0, 0, 1);
        let total = 64512u32;
        let mut r = 99u64;
        for _ in 0..total * fill / 100 {
            let sp = 1024 + (nat::alloc::splitmix64(&mut r) % 64000) as u16;
            a.allocate(17, host, sp, 0).unwrap();
        }
        g.bench_with_input(BenchmarkId::new("fill_percent", fill), &fill, |b, _| {
            b.iter(|| {
                let sp = 1024 + (nat::alloc::splitmix64(&mut r) % 64000) as u16;
                let (e, p, _) = a.allocate(17, host, sp, 0).unwrap();
                a.release(17, host, e, p, 0);
                black_box(p)
            });
        });
    }
    g.finish();
}

criterion_group!(benches, fast_path, create, alloc);
criterion_main!(benches);
