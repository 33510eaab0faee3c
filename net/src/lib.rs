//! `net`: zero-copy packet views over byte slices, the one-pass classifier and checksums.
#![deny(unsafe_code)]
pub mod classify;
pub use classify::{Classified, FiveTuple, FragInfo, L3Kind, L4Kind};
