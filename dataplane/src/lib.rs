//! `dataplane`: configuration, the per-worker pipeline, the pcap replay
//! harness, the built-in demo, counters/metrics and control. The DPDK driver
//! lives in `dpdk` (feature `dpdk`).
#![deny(unsafe_code)]

pub mod config;
pub mod control;
pub mod demo;
pub mod metrics;
pub mod natglue;
pub mod neighbor;
pub mod pipeline;
pub mod ratelimit;
pub mod replay;
pub mod sessions;
pub mod time;
pub mod traffic;
pub mod v6flow;
pub mod wire;

#[cfg(feature = "dpdk")]
#[allow(unsafe_code)]
pub mod dpdk;

pub use config::Config;
pub use pipeline::{Disposition, DropReason, Frame, Output, Pipeline, PortId, Shared};
pub use time::Timestamp;
