//! The atomics shared between workers (the port-block map), from `std`
//! or, under the `shuttle` feature, from shuttle's model checker.

#[cfg(feature = "shuttle")]
pub use shuttle::sync::atomic::{AtomicU8, AtomicU64, Ordering};
#[cfg(not(feature = "shuttle"))]
pub use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
