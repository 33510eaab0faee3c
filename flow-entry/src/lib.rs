//! `flow-entry`: flow tables with a hierarchical timer wheel per shard.
//!
//! - [`FlowKey`]: one direction of a flow (IPv4/IPv6 5-tuple + zone), 40 bytes.
//! - [`Shard`]: a single-writer table (`&mut self`, no lock or atomic): the
//!   NAT's sessions, each with a forward and a reverse key ([`ShardKey`]).
//! - [`FlowTable`]: sharded, shared by all workers via `Arc`; entries hold a
//!   caller value, a deadline, a status and one or two keys (a session's
//!   forward and reverse direction), inserted and removed as one.
//! - [`wheel`]: the hierarchical timing wheel (knows nothing of flows).
//! - [`Timestamp`], [`Clock`], [`VirtualClock`]: time is always an argument.
//!
//! Every way an entry leaves runs the release hook exactly once with a
//! [`ReleaseReason`]. See `README.md` for the design and the cost of each
//! operation.
#![deny(unsafe_code)]

mod config;
mod key;
mod shard;
pub mod sync;
mod table;
mod time;
pub mod wheel;

pub use config::{ConfigError, FlowTableConfig, MAX_SHARDS};
pub use key::FlowKey;
pub use shard::{EntryId, Shard, ShardInsertError, ShardKey, ShardStats};
pub use table::{
    Direction, EntryMut, FlowHandle, FlowHash, FlowTable, FlowTableStats, Gone, InsertError,
    Inserted, Located, Peek, PeekTicks, ReleaseHook, ReleaseReason, TableClock, prefetch,
};
pub use time::{Clock, Timestamp, VirtualClock};
