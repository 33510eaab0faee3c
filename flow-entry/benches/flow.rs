//! Criterion benches mirroring `examples/flowbench.rs` at a size that runs
//! quickly (100k sessions), plus 2-thread mixed lookup/insert throughput.
//! Each group runs the plain `hashbrown` reference beside the subject.

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use flow_entry::{FlowKey, FlowTable, FlowTableConfig, Inserted, Timestamp};

const N: u64 = 100_000;

fn fwd(i: u64) -> FlowKey {
    FlowKey::v4(
        Ipv4Addr::from(0x0a00_0000 | (i >> 16) as u32),
        Ipv4Addr::new(93, 184, (i >> 8) as u8, i as u8),
        6,
        (i & 0xffff) as u16,
        443,
        0,
    )
}

fn rev(i: u64) -> FlowKey {
    FlowKey::v4(
        Ipv4Addr::new(93, 184, (i >> 8) as u8, i as u8),
        Ipv4Addr::from(0xcb00_7100 | (i >> 16) as u32),
        6,
        443,
        (i & 0xffff) as u16,
        0,
    )
}

fn cfg() -> FlowTableConfig {
    FlowTableConfig {
        capacity: (N as usize) * 2,
        high_watermark: 1.0,
        low_watermark: 0.9,
        ..FlowTableConfig::default()
    }
}

fn now() -> Timestamp {
    Timestamp::from_secs(1)
}

fn filled() -> FlowTable<u32> {
    let t = FlowTable::new(cfg(), |_, _| {}).unwrap();
    for i in 0..N {
        t.insert_pair(
            fwd(i),
            rev(i),
            i as u32,
            now() + Duration::from_secs(60),
            now(),
        )
        .unwrap();
    }
    t
}

/// Random-order key sample (xorshift), both directions.
fn sample(n: usize) -> Vec<FlowKey> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let i = x % N;
            if x & 1 == 0 { fwd(i) } else { rev(i) }
        })
        .collect()
}

fn lookups(c: &mut Criterion) {
    let t = filled();
    let keys = sample(4096);
    let mut g = c.benchmark_group("lookup_hit");
    g.throughput(Throughput::Elements(keys.len() as u64));
    g.bench_function("single", |b| {
        b.iter(|| {
            let mut s = 0u64;
            for k in &keys {
                s += u64::from(t.lookup_with(k, now(), |e| *e.value()).unwrap());
            }
            black_box(s)
        })
    });
    g.bench_function("batch256", |b| {
        b.iter(|| {
            let mut s = 0u64;
            for chunk in keys.chunks(256) {
                t.lookup_batch(chunk, now(), |_, e| s += u64::from(*e.unwrap().value()));
            }
            black_box(s)
        })
    });
    let mut map: hashbrown::HashMap<FlowKey, u32, foldhash::fast::RandomState> =
        hashbrown::HashMap::default();
    for i in 0..N {
        map.insert(fwd(i), i as u32);
        map.insert(rev(i), i as u32);
    }
    g.bench_function("baseline_hashbrown", |b| {
        b.iter(|| {
            let mut s = 0u64;
            for k in &keys {
                s += u64::from(map[k]);
            }
            black_box(s)
        })
    });
    g.finish();
    let misses: Vec<FlowKey> = (0..4096).map(|i| fwd(N + i)).collect();
    let mut g = c.benchmark_group("lookup_miss");
    g.throughput(Throughput::Elements(misses.len() as u64));
    g.bench_function("batch256", |b| {
        b.iter(|| {
            let mut s = 0usize;
            for chunk in misses.chunks(256) {
                t.lookup_batch(chunk, now(), |_, e| s += usize::from(e.is_some()));
            }
            black_box(s)
        })
    });
    g.finish();
}

fn insert_refresh_expire(c: &mut Criterion) {
    let mut g = c.benchmark_group("lifecycle_10k");
    g.throughput(Throughput::Elements(10_000));
    g.sample_size(10);
    g.bench_function("insert", |b| {
        b.iter_batched(
            || FlowTable::<u32>::new(cfg(), |_, _| {}).unwrap(),
            |t| {
                for i in 0..10_000 {
                    t.insert_pair(fwd(i), rev(i), 0, now() + Duration::from_secs(60), now())
                        .unwrap();
                }
                t
            },
            BatchSize::LargeInput,
        )
    });
    let t = filled();
    let handles: Vec<_> = (0..10_000)
        .map(|i| t.lookup(&fwd(i), now()).unwrap())
        .collect();
    let mut k = 0u64;
    g.bench_function("refresh", |b| {
        b.iter(|| {
            k += 1;
            for h in &handles {
                t.refresh(*h, now() + Duration::from_secs(60 + k), now())
                    .unwrap();
            }
        })
    });
    g.bench_function("expire", |b| {
        b.iter_batched(
            || {
                let t = FlowTable::<u32>::new(cfg(), |_, _| {}).unwrap();
                for i in 0..10_000 {
                    t.insert_pair(fwd(i), rev(i), 0, now() + Duration::from_secs(5), now())
                        .unwrap();
                }
                t
            },
            |t| {
                assert_eq!(t.poll(now() + Duration::from_secs(10), usize::MAX), 10_000);
                t
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn two_threads_mixed(c: &mut Criterion) {
    // Two workers, each doing 7 lookups per insert (new flows) on a shared
    // table: ops per second across both.
    let mut g = c.benchmark_group("mixed_2_threads");
    const OPS: u64 = 20_000;
    g.throughput(Throughput::Elements(2 * OPS));
    g.sample_size(10);
    let t = Arc::new(filled());
    let keys = Arc::new(sample(4096));
    let mut round = 0u64;
    g.bench_function("lookup7_insert1", |b| {
        b.iter(|| {
            round += 1;
            let r = round;
            let hs: Vec<_> = (0..2u64)
                .map(|w| {
                    let t = t.clone();
                    let keys = keys.clone();
                    std::thread::spawn(move || {
                        let mut hits = 0;
                        for o in 0..OPS {
                            if o % 8 == 7 {
                                let i = N + (r * 2 + w) * OPS + o;
                                let e = now() + Duration::from_secs(1);
                                if let Ok(Inserted::New(h)) =
                                    t.insert_pair(fwd(i), rev(i), 0, e, now())
                                {
                                    t.remove(h, flow_entry::ReleaseReason::Removed);
                                }
                            } else {
                                let k = &keys[(o as usize * 7 + w as usize) % keys.len()];
                                hits += usize::from(t.lookup(k, now()).is_some());
                            }
                        }
                        hits
                    })
                })
                .collect();
            for h in hs {
                black_box(h.join().unwrap());
            }
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    targets = lookups, insert_refresh_expire, two_threads_mixed
}
criterion_main!(benches);
