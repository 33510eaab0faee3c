//! `flow-entry`: a single-writer flow table with a hierarchical timer wheel.
//!
//! - [`Shard`]: the table (`&mut self`, no lock or atomic), owned by one
//!   thread: the NAT's sessions, each with a forward and a reverse key, and
//!   the IPv6 flow tracker's flows. Keys implement [`ShardKey`].
//! - [`FlowKey`]: one direction of a flow (IPv4/IPv6 5-tuple + zone), 40 bytes.
//! - [`FlowTableConfig`]: watermarks, tick, range, drain and eviction limits.
//! - [`ReleaseReason`], [`Direction`], [`prefetch`]: what a shard reports
//!   about an entry, and the cache hint its prefetch stages use.
//! - [`TagIndex`]: the open-addressing hash → payload index a shard keys
//!   its entries with (the NAT's mapping tables use it too).
//! - [`wheel`]: the hierarchical timing wheel (knows nothing of flows).
//! - [`Timestamp`], [`Clock`], [`VirtualClock`]: time is always an argument.
//!
//! Every way an entry leaves passes its value to the caller's release
//! callback exactly once, with a [`ReleaseReason`]. See `README.md` for the
//! design and the cost of each operation.
#![deny(unsafe_code)]

mod config;
mod index;
mod key;
mod release;
mod shard;
mod time;
pub mod wheel;

pub use config::{ConfigError, FlowTableConfig, MAX_SHARDS};
pub use index::TagIndex;
pub use key::FlowKey;
pub use release::{Direction, ReleaseReason, prefetch};
pub use shard::{EntryId, Shard, ShardInsertError, ShardKey, ShardStats};
pub use time::{Clock, Timestamp, VirtualClock};
