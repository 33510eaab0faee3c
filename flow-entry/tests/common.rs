//! Shared test helpers (included with `mod common;`).
#![allow(dead_code)]

use flow_entry::{FlowKey, FlowTable, FlowTableConfig, ReleaseReason};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub type Log = Arc<Mutex<Vec<(u32, ReleaseReason)>>>;

/// A table of `u32` values whose hook logs every release.
pub fn table(cfg: FlowTableConfig) -> (FlowTable<u32>, Log) {
    let log: Log = Arc::default();
    let l2 = log.clone();
    let t = FlowTable::new(cfg, move |v: &u32, r| l2.lock().unwrap().push((*v, r)))
        .expect("valid config");
    (t, log)
}

pub fn cfg(shards: usize, capacity: usize) -> FlowTableConfig {
    FlowTableConfig {
        shards,
        capacity,
        tick: Duration::from_secs(1),
        hash_seed: Some(42),
        ..FlowTableConfig::default()
    }
}

/// The forward key of session `i` (inside host -> remote).
pub fn fwd(i: u32) -> FlowKey {
    FlowKey::v4(
        Ipv4Addr::from(0x0a00_0000 | (i >> 16)),
        Ipv4Addr::new(8, 8, 8, 8),
        17,
        (i & 0xffff) as u16,
        53,
        0,
    )
}

/// The reverse key of session `i` as a NAT would make it (remote -> pool).
pub fn rev(i: u32) -> FlowKey {
    FlowKey::v4(
        Ipv4Addr::new(8, 8, 8, 8),
        Ipv4Addr::new(203, 0, 113, 1 + (i >> 16) as u8),
        17,
        53,
        (i & 0xffff) as u16,
        0,
    )
}

pub fn released(log: &Log) -> Vec<(u32, ReleaseReason)> {
    log.lock().unwrap().clone()
}
