//! Flow table figures for [`Shard`] (one shard, one thread, as the NAT
//! uses it: N sessions, each with a forward and a reverse [`FlowKey`]), one
//! JSON object per line per table size:
//!
//! ```sh
//! cargo run --release -p flow-entry --example flowbench -- --json [--flows N]...
//! ```
//!
//! Fields (exactly): `flows`, `insert_ns` (per session: both keys),
//! `lookup_hit_ns` (random existing keys, both directions, in bursts of 64
//! prefetched as the NAT does: `prefetch_index` of every key of the burst,
//! then `prefetch_entry` of every key, then the lookups; the value is read),
//! `lookup_miss_ns` (the same with keys never inserted), `refresh_ns`
//! (`set_expires_at` to a later deadline, random order, one id each),
//! `expire_ns` (one `poll` expiring all N, per session), `bytes_per_flow`
//! (allocator bytes held by the shard / N, from a counting global
//! allocator), `baseline_hashbrown_lookup_ns` (a plain
//! `hashbrown::HashMap<FlowKey, u32>` holding the same 2N keys, foldhash,
//! the same random lookup sequence, same run; lookups interleaved over
//! three rounds, best round kept). Extra figures (lookups without prefetch,
//! ratios) go to stderr. Up to 1e6 flows, insert/refresh/expire are also
//! best of three fresh-shard cycles.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::net::Ipv4Addr;
use std::num::NonZeroU16;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use flow_entry::{EntryId, FlowKey, FlowTableConfig, ReleaseReason, Shard, Timestamp};

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

/// Lookups of a prefetched burst.
const BURST: usize = 64;

/// Releases need nothing here (a `Session` owns nothing).
fn nothing(_: Session, _: ReleaseReason) {}

/// Looks `keys` up in bursts of [`BURST`]: every key's hash and index
/// prefetch, then every entry prefetch, then the lookups (reading the
/// value). Returns how many hit.
fn lookup_bursts(s: &mut Shard<FlowKey, Session>, keys: &[FlowKey], now: Timestamp) -> usize {
    let mut found = 0;
    let mut hashes = [0u64; BURST];
    for burst in keys.chunks(BURST) {
        let hashes = &mut hashes[..burst.len()];
        for (h, k) in hashes.iter_mut().zip(burst) {
            *h = s.hash(k);
            s.prefetch_index(*h);
        }
        for h in hashes.iter() {
            s.prefetch_entry(*h);
        }
        for (k, h) in burst.iter().zip(hashes.iter()) {
            if let Some((id, _)) = s.lookup(k, *h, now, &mut nothing) {
                // Read the value, as the NAT does (the baseline reads its u32).
                found += 1 + s.get(id).map_or(0, |v| usize::from(v._flags));
            }
        }
    }
    found
}

/// A fresh shard with all N sessions inserted: (shard, ids, ns per insert).
fn filled(
    n: usize,
    cfg: &FlowTableConfig,
    now: Timestamp,
) -> (Shard<FlowKey, Session>, Vec<EntryId>, f64) {
    let mut s = Shard::new(n, cfg, Timestamp::ZERO).expect("config");
    let mut ids = Vec::with_capacity(n);
    let port = NonZeroU16::MIN;
    let t0 = Instant::now();
    for i in 0..n as u64 {
        let exp = now + Duration::from_millis(60_000 + (i % 20_000));
        let v = Session {
            _port: port,
            _flags: 0,
        };
        match s.insert(fwd(i), Some(rev(i)), v, exp, now, &mut nothing) {
            Ok(id) => ids.push(id),
            Err(e) => panic!("insert {i}: {e}"),
        }
    }
    let insert = ns_per(t0.elapsed(), n);
    (s, ids, insert)
}

/// Refreshes every session in `order` to a later deadline: ns per refresh.
fn refresh_all(
    s: &mut Shard<FlowKey, Session>,
    ids: &[EntryId],
    order: &[usize],
    now: Timestamp,
) -> f64 {
    let t0 = Instant::now();
    for &i in order {
        let exp = now + Duration::from_millis(90_000 + (i as u64 % 20_000));
        assert!(s.set_expires_at(ids[i], exp), "live");
    }
    ns_per(t0.elapsed(), order.len())
}

/// Expires every session in one poll: ns per session.
fn expire_all(s: &mut Shard<FlowKey, Session>, later: Timestamp) -> f64 {
    let n = s.len();
    let t0 = Instant::now();
    let expired = s.poll(later, usize::MAX, &mut nothing);
    let d = t0.elapsed();
    assert_eq!(expired, n);
    assert!(s.is_empty());
    ns_per(d, n)
}

fn run(n: usize) {
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

    // Capacity N exactly, no draining (high watermark 1.0): every insert
    // is a plain insert, as in a NAT below its watermark.
    let cfg = FlowTableConfig {
        high_watermark: 1.0,
        low_watermark: 0.9,
        hash_seed: None,
        ..FlowTableConfig::default()
    };
    let now = Timestamp::from_secs(1);
    let later = now + Duration::from_secs(200);
    let before = LIVE.load(Ordering::Relaxed);
    let (mut shard, ids, insert) = filled(n, &cfg, now);
    let bytes = (LIVE.load(Ordering::Relaxed) - before) as f64 / n as f64;
    let self_reported = shard.memory_bytes() as f64 / n as f64;

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

    // Lookups: prefetched bursts (the JSON figure), one at a time without
    // prefetch (stderr) and the baseline, interleaved over three rounds;
    // each figure is its best round (the machine is shared: the minimum is
    // the least disturbed).
    let (mut hit_burst, mut hit_single, mut baseline) = (f64::MAX, f64::MAX, f64::MAX);
    for _ in 0..3 {
        let t0 = Instant::now();
        let found = lookup_bursts(&mut shard, &hits, now);
        hit_burst = hit_burst.min(ns_per(t0.elapsed(), sample));
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
            let h = shard.hash(k);
            if let Some((id, _)) = shard.lookup(k, h, now, &mut nothing) {
                found += 1 + shard.get(id).map_or(0, |v| usize::from(v._flags));
            }
        }
        hit_single = hit_single.min(ns_per(t0.elapsed(), sample));
        assert_eq!(found, sample);
    }
    drop(map);
    let t0 = Instant::now();
    let found = lookup_bursts(&mut shard, &misses, now);
    let miss = ns_per(t0.elapsed(), sample);
    assert_eq!(found, 0);

    let mut refresh = refresh_all(&mut shard, &ids, &refresh_order, now);
    let mut expire = expire_all(&mut shard, later);
    drop(shard);

    // Up to 1e6 flows, two more insert/refresh/expire cycles on fresh
    // shards; keep each figure's best round (as for lookups).
    let mut insert = insert;
    let rounds = if n <= 1_000_000 { 2 } else { 0 };
    for _ in 0..rounds {
        let (mut shard, ids, ins) = filled(n, &cfg, now);
        insert = insert.min(ins);
        refresh = refresh.min(refresh_all(&mut shard, &ids, &refresh_order, now));
        expire = expire.min(expire_all(&mut shard, later));
    }

    println!(
        "{{\"flows\":{n},\"insert_ns\":{insert:.1},\"lookup_hit_ns\":{hit_burst:.1},\"lookup_miss_ns\":{miss:.1},\"refresh_ns\":{refresh:.1},\"expire_ns\":{expire:.1},\"bytes_per_flow\":{bytes:.1},\"baseline_hashbrown_lookup_ns\":{baseline:.1}}}"
    );
    eprintln!(
        "# flows={n}: lookup without prefetch {hit_single:.1} ns ({:.2}x baseline), prefetched bursts {hit_burst:.1} ns ({:.2}x); expire/insert {:.2}; shard self-reported {self_reported:.1} B/flow; baseline map {base_bytes:.1} B/flow, {base_insert:.1} ns per pair insert",
        hit_single / baseline,
        hit_burst / baseline,
        expire / insert,
    );
}

fn main() {
    let mut flows = vec![];
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
            other => {
                eprintln!("usage: flowbench --json [--flows N]... (unknown: {other})");
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
        run(n);
    }
}
