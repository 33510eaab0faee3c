//! Stopping a replay with SIGINT or SIGTERM, as tcpreplay does: the first
//! signal stops the reading (the packets already read are still processed),
//! the outputs are finished and the partial summary printed; a second signal
//! exits at once.
//!
//! Before the outputs exist ([`arm`] not called yet: the inputs are being
//! opened, e.g. waiting for a FIFO's writer) there is nothing to finish and
//! a signal exits at once too.
//!
//! The handler only flips an atomic (async-signal-safe) or calls `_exit`.
//! It is installed without `SA_RESTART`, so a read blocked on a FIFO or a
//! terminal returns `EINTR` and the reader sees the stop at once.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// The signal that asked the replay to stop (0: none yet).
static STOP: AtomicI32 = AtomicI32::new(0);
/// Whether there are outputs to finish (a signal then stops the reading
/// instead of exiting).
static ARMED: AtomicBool = AtomicBool::new(false);

/// Whether a stop was asked for, and by which signal (`SIGINT` = 2,
/// `SIGTERM` = 15).
pub fn requested() -> Option<i32> {
    match STOP.load(Ordering::Relaxed) {
        0 => None,
        s => Some(s),
    }
}

/// The signal's name, for messages.
pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

/// From now on a first signal stops the reading and lets the replay finish
/// its outputs (called once they are created).
pub fn arm() {
    ARMED.store(true, Ordering::SeqCst);
}

extern "C" fn on_signal(sig: libc::c_int) {
    if !ARMED.load(Ordering::SeqCst) || STOP.swap(sig, Ordering::SeqCst) != 0 {
        // Nothing to finish yet, or a second signal: exit now, as the shell
        // would have without us.
        // SAFETY: `_exit` is async-signal-safe.
        #[allow(unsafe_code)]
        unsafe {
            libc::_exit(128 + sig)
        };
    }
}

/// Install the SIGINT/SIGTERM handlers (`dataplane replay` does; the
/// library never does it on its own).
///
/// # Errors
/// `sigaction` failing.
pub fn install() -> std::io::Result<()> {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed `sigaction` is a valid value; the handler only
        // touches an atomic or calls `_exit`; no SA_RESTART on purpose.
        #[allow(unsafe_code)]
        let rc = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            sa.sa_flags = 0;
            libc::sigemptyset(&raw mut sa.sa_mask);
            libc::sigaction(sig, &raw const sa, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
