//! Shuttle model check of what workers share: the port-block map. Three
//! workers' allocators claim, use and give back blocks at once (hold-down
//! 0, so releases race claims); in every explored interleaving no port is
//! held by two workers, every held port is in a block its worker owns, and
//! a block is given back once. Run by `./scripts/test` with
//! `--features shuttle` (bounded iterations; `SHUTTLE_ITERATIONS` raises it).
#![cfg(feature = "shuttle")]

use std::net::Ipv4Addr;
use std::sync::Arc;

use nat::blocks::{BlockOwner, PortBlocks};
use nat::{Allocator, NatConfig, PortRange};

fn config() -> NatConfig {
    let mut c = NatConfig::masquerade(
        vec!["10.0.0.0/8".parse().unwrap()],
        vec!["203.0.113.1/32".parse().unwrap()],
    );
    // Three blocks in all: workers compete for them.
    c.pools[0].ports = PortRange::new(1024, 1215);
    c.pools[0].low_ports = None;
    c.per_host_port_quota = 0;
    c.port_block_hold_down = 0;
    c
}

fn iterations() -> usize {
    std::env::var("SHUTTLE_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000)
}

#[test]
fn workers_claim_and_release_blocks_without_sharing_a_port() {
    shuttle::check_random(
        || {
            let cfg = config();
            let map = Arc::new(PortBlocks::new(&cfg, 3));
            let handles: Vec<_> = (0..3usize)
                .map(|w| {
                    let (cfg, map) = (cfg.clone(), map.clone());
                    shuttle::thread::spawn(move || {
                        let mut a = Allocator::for_worker(&cfg, map.clone(), w);
                        let host = Ipv4Addr::new(10, 0, 0, w as u8 + 1);
                        let mut held = Vec::new();
                        for round in 0..3u64 {
                            for k in 0..3u16 {
                                // Source ports in every block: preservation claims.
                                if let Ok((e, p, _)) =
                                    a.allocate(17, host, 1024 + 64 * k + w as u16, round)
                                {
                                    assert_eq!(map.owner(17, e, p), BlockOwner::Worker(w));
                                    held.push((e, p));
                                }
                            }
                            // Give back all but the last: blocks go idle and,
                            // at the next call, back to the map.
                            let keep = held.pop();
                            for (e, p) in held.drain(..) {
                                a.release(17, host, e, p, round);
                            }
                            held.extend(keep);
                            a.expire_holds(round + 1);
                            for &(e, p) in &held {
                                assert_eq!(
                                    map.owner(17, e, p),
                                    BlockOwner::Worker(w),
                                    "a held port's block stays"
                                );
                            }
                        }
                        assert_eq!(a.stats().double_free, 0);
                        held
                    })
                })
                .collect();
            let mut all: Vec<(Ipv4Addr, u16)> = Vec::new();
            for h in handles {
                all.extend(h.join().unwrap());
            }
            let n = all.len();
            all.sort();
            all.dedup();
            assert_eq!(all.len(), n, "a port held by two workers");
            let s = map.stats();
            assert_eq!(s.owned, s.claimed - s.released);
            assert!(s.owned as usize <= 3);
        },
        iterations(),
    );
}
