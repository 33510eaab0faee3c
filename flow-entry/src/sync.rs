//! The `sync` facade: every lock, atomic and thread the table uses goes
//! through here, so the same code runs on real primitives (parking_lot / std)
//! and, with the `shuttle` feature, under shuttle's model checker.
//!
//! The facade exposes one `Mutex` whose `lock()` returns the guard directly
//! (no poisoning: a panic inside the table is a bug, and the release hook is
//! documented as not allowed to panic).

#[cfg(not(feature = "shuttle"))]
mod imp {
    pub use parking_lot::MutexGuard;
    pub use std::sync::Arc;
    pub use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    pub use std::thread;

    /// A mutex (parking_lot).
    #[derive(Debug, Default)]
    pub struct Mutex<T>(parking_lot::Mutex<T>);

    impl<T> Mutex<T> {
        pub fn new(v: T) -> Self {
            Self(parking_lot::Mutex::new(v))
        }
        #[inline]
        pub fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock()
        }
        #[inline]
        pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            self.0.try_lock()
        }
        #[inline]
        pub fn get_mut(&mut self) -> &mut T {
            self.0.get_mut()
        }
    }
}

#[cfg(feature = "shuttle")]
mod imp {
    pub use shuttle::sync::Arc;
    pub use shuttle::sync::MutexGuard;
    pub use shuttle::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    pub use shuttle::thread;

    /// A mutex (shuttle's, so every acquisition is a scheduling point).
    #[derive(Debug, Default)]
    pub struct Mutex<T>(shuttle::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub fn new(v: T) -> Self {
            Self(shuttle::sync::Mutex::new(v))
        }
        #[inline]
        pub fn lock(&self) -> MutexGuard<'_, T> {
            // A poisoned shard means a panic already happened under the lock
            // (a bug); keep going with the data as the model checker will
            // report the panic itself.
            self.0.lock().unwrap_or_else(|e| e.into_inner())
        }
        #[inline]
        pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            match self.0.try_lock() {
                Ok(g) => Some(g),
                Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => None,
            }
        }
        #[inline]
        pub fn get_mut(&mut self) -> &mut T {
            self.0.get_mut().unwrap_or_else(|e| e.into_inner())
        }
    }
}

pub use imp::*;
