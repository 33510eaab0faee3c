//! Lock and atomic facade: std in production, shuttle's primitives under the
//! `shuttle` feature so model checking explores NAT's interleavings too.

#[cfg(feature = "shuttle")]
pub use shuttle::sync::atomic::{AtomicU64, Ordering};
#[cfg(feature = "shuttle")]
pub use shuttle::sync::{Mutex, MutexGuard};
#[cfg(not(feature = "shuttle"))]
pub use std::sync::atomic::{AtomicU64, Ordering};
#[cfg(not(feature = "shuttle"))]
pub use std::sync::{Mutex, MutexGuard};

/// Lock, ignoring poisoning (a panicked holder leaves plain data behind;
/// NAT state stays consistent because every critical section is panic-free).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
