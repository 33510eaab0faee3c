//! `flow-entry`: the sharded flow table with a hierarchical timer wheel per shard.
#![deny(unsafe_code)]
