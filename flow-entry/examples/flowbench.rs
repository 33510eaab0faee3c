//! Flow table figures, one JSON object per line per table size:
//!
//! ```sh
//! cargo run --release -p flow-entry --example flowbench -- --json [--flows N]...
//! ```
//!
//! Fields (exactly): `flows`, `insert_ns`, `lookup_hit_ns` (batched lookups
//! of random existing keys, both directions), `lookup_miss_ns`,
//! `refresh_ns`, `expire_ns` (one poll expiring all N, per flow),
//! `bytes_per_flow` (allocator bytes held by the table / N, from a counting
//! global allocator), `baseline_hashbrown_lookup_ns` (a plain
//! `hashbrown::HashMap<FlowKey, u32>` holding the same 2N keys, same hasher,
//! same random lookup sequence, same run; lookups interleaved over three
//! rounds, best round kept). Extra figures (single-key lookup, ratios) go to
//! stderr. Up to 1e6 flows, insert/refresh/expire are also best of three
//! fresh-table cycles.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::net::Ipv4Addr;
use std::num::NonZeroU16;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use flow_entry::{FlowHandle, FlowKey, FlowTable, FlowTableConfig, Inserted, Timestamp};

/// Counts live heap bytes.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the same arguments and only
// adds relaxed counter updates; it upholds GlobalAlloc's contract exactly as
// `System` does.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            LIVE.fetch_add(l.size(), Ordering::Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let p = unsafe { System.alloc_zeroed(l) };
        if !p.is_null() {
            LIVE.fetch_add(l.size(), Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            LIVE.fetch_sub(l.size(), Ordering::Relaxed);
            LIVE.fetch_add(new, Ordering::Relaxed);
        }
        q
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A NAT-like session value: 4 bytes with a niche (the port is non-zero).
#[derive(Clone, Copy, Debug)]
struct Session {
    _port: NonZeroU16,
    _flags: u16,
}

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

/// xorshift: a deterministic random permutation source.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn ns_per(d: Duration, n: usize) -> f64 {
    d.as_nanos() as f64 / n.max(1) as f64
}

fn run(n: usize, shards: usize) {
    let n64 = n as u64;
    let sample = (2 * n).min(4_000_000);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // Lookup sequences, built before measuring memory.
    let hits: Vec<FlowKey> = (0..sample)
        .map(|_| {
            let i = rng.below(n64);
            if rng.next() & 1 == 0 { fwd(i) } else { rev(i) }
        })
        .collect();
    let misses: Vec<FlowKey> = (0..sample).map(|_| fwd(n64 + rng.below(n64))).collect();
    let mut refresh_order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        refresh_order.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let mut handles: Vec<FlowHandle> = Vec::with_capacity(n);
    let port = NonZeroU16::MIN;

    let before = LIVE.load(Ordering::Relaxed);
    let cfg = FlowTableConfig {
        shards,
        capacity: n + n / 4 + 1024,
        high_watermark: 1.0,
        low_watermark: 0.9,
        hash_seed: None,
        ..FlowTableConfig::default()
    };
    let table: FlowTable<Session> = FlowTable::new(cfg.clone(), |_, _| {}).expect("config");
    let now = Timestamp::from_secs(1);
    let t0 = Instant::now();
    for i in 0..n64 {
        let exp = now + Duration::from_millis(60_000 + (i % 20_000));
        match table.insert_pair(
            fwd(i),
            rev(i),
            Session {
                _port: port,
                _flags: 0,
            },
            exp,
            now,
        ) {
            Ok(Inserted::New(h)) => handles.push(h),
            other => panic!("insert {i}: {other:?}"),
        }
    }
    let insert = ns_per(t0.elapsed(), n);
    let bytes = (LIVE.load(Ordering::Relaxed) - before) as f64 / n as f64;
    let self_reported = table.memory_bytes() as f64 / n as f64;

    // Baseline: plain hashbrown, same keys, same hasher family, same order.
    let base_bytes_before = LIVE.load(Ordering::Relaxed);
    let mut map: hashbrown::HashMap<FlowKey, u32, foldhash::fast::RandomState> =
        hashbrown::HashMap::with_hasher(Default::default());
    let t0 = Instant::now();
    for i in 0..n64 {
        map.insert(fwd(i), i as u32);
        map.insert(rev(i), i as u32);
    }
    let base_insert = ns_per(t0.elapsed(), n);
    let base_bytes = (LIVE.load(Ordering::Relaxed) - base_bytes_before) as f64 / n as f64;

    // Lookups: batched (the JSON figure), single-key (stderr) and the
    // baseline, interleaved over three rounds; each figure is its best round
    // (the machine is shared: the minimum is the least disturbed).
    let (mut hit_batch, mut hit_single, mut baseline) = (f64::MAX, f64::MAX, f64::MAX);
    for _ in 0..3 {
        let mut found = 0usize;
        let t0 = Instant::now();
        for chunk in hits.chunks(256) {
            table.lookup_batch(chunk, now, |_, e| {
                // Read the value, as a NAT worker would (the baseline reads its u32).
                found += e.map_or(0, |e| 1 + usize::from(e.value()._flags));
            });
        }
        hit_batch = hit_batch.min(ns_per(t0.elapsed(), sample));
        assert_eq!(found, sample);
        let t0 = Instant::now();
        let mut sum = 0u64;
        for k in &hits {
            sum += u64::from(*map.get(k).expect("baseline hit"));
        }
        baseline = baseline.min(ns_per(t0.elapsed(), sample));
        black_box(sum);
        let t0 = Instant::now();
        let mut found = 0usize;
        for k in &hits {
            found += usize::from(table.lookup_with(k, now, |e| e.value()._flags).is_some());
        }
        hit_single = hit_single.min(ns_per(t0.elapsed(), sample));
        assert_eq!(found, sample);
    }
    drop(map);
    let mut found = 0usize;
    let t0 = Instant::now();
    for chunk in misses.chunks(256) {
        table.lookup_batch(chunk, now, |_, e| {
            found += usize::from(e.is_some());
        });
    }
    let miss = ns_per(t0.elapsed(), sample);
    assert_eq!(found, 0);

    // Refresh: random order, one handle each.
    let t0 = Instant::now();
    for &i in &refresh_order {
        let exp = now + Duration::from_millis(90_000 + (i as u64 % 20_000));
        table.refresh(handles[i], exp, now).expect("live");
    }
    let refresh = ns_per(t0.elapsed(), n);

    // Expire everything in one poll.
    let later = now + Duration::from_secs(200);
    let t0 = Instant::now();
    let expired = table.poll(later, usize::MAX);
    let mut expire = ns_per(t0.elapsed(), n);
    assert_eq!(expired, n);
    assert!(table.is_empty());
    drop(table);

    // Up to 1e6 flows, two more insert/refresh/expire cycles on fresh
    // tables; keep each figure's best round (as for lookups).
    let (mut insert, mut refresh) = (insert, refresh);
    let rounds = if n <= 1_000_000 { 2 } else { 0 };
    for _ in 0..rounds {
        handles.clear();
        let table: FlowTable<Session> = FlowTable::new(cfg.clone(), |_, _| {}).expect("config");
        let t0 = Instant::now();
        for i in 0..n64 {
            let exp = now + Duration::from_millis(60_000 + (i % 20_000));
            let v = Session {
                _port: port,
                _flags: 0,
            };
            match table.insert_pair(fwd(i), rev(i), v, exp, now) {
                Ok(Inserted::New(h)) => handles.push(h),
                other => panic!("insert {i}: {other:?}"),
            }
        }
        insert = insert.min(ns_per(t0.elapsed(), n));
        let t0 = Instant::now();
        for &i in &refresh_order {
            let exp = now + Duration::from_millis(90_000 + (i as u64 % 20_000));
            table.refresh(handles[i], exp, now).expect("live");
        }
        refresh = refresh.min(ns_per(t0.elapsed(), n));
        let t0 = Instant::now();
        assert_eq!(table.poll(later, usize::MAX), n);
        expire = expire.min(ns_per(t0.elapsed(), n));
    }

    println!(
        "{{\"flows\":{n},\"insert_ns\":{insert:.1},\"lookup_hit_ns\":{hit_batch:.1},\"lookup_miss_ns\":{miss:.1},\"refresh_ns\":{refresh:.1},\"expire_ns\":{expire:.1},\"bytes_per_flow\":{bytes:.1},\"baseline_hashbrown_lookup_ns\":{baseline:.1}}}"
    );
    eprintln!(
        "# flows={n} shards={shards}: lookup single {hit_single:.1} ns ({:.2}x baseline), batched {hit_batch:.1} ns ({:.2}x); expire/insert {:.2}; table self-reported {self_reported:.1} B/flow; baseline map {base_bytes:.1} B/flow, {base_insert:.1} ns per pair insert",
        hit_single / baseline,
        hit_batch / baseline,
        expire / insert,
    );
}

fn main() {
    let mut flows = vec![];
    let mut shards = 16;
    let mut json = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--json" => json = true,
            "--flows" => match args.next().and_then(|v| v.parse::<f64>().ok()) {
                Some(v) if v >= 1.0 => flows.push(v as usize),
                _ => {
                    eprintln!("--flows needs a positive number (e.g. 1e6)");
                    std::process::exit(2);
                }
            },
            "--shards" => match args.next().and_then(|v| v.parse().ok()) {
                Some(v) => shards = v,
                None => {
                    eprintln!("--shards needs a power of two");
                    std::process::exit(2);
                }
            },
            other => {
                eprintln!("usage: flowbench --json [--flows N]... [--shards S] (unknown: {other})");
                std::process::exit(2);
            }
        }
    }
    if !json {
        eprintln!("note: output is JSON lines either way (--json accepted for the contract)");
    }
    if flows.is_empty() {
        flows = vec![1_000, 100_000, 1_000_000, 10_000_000];
    }
    for n in flows {
        run(n, shards);
    }
}
