//! EAL (environment abstraction layer) initialisation: once per process.

use std::ffi::{CString, c_char, c_int};
use std::sync::atomic::{AtomicBool, Ordering};

use super::error::{DpdkError, RteError};

static INITIALISED: AtomicBool = AtomicBool::new(false);

/// Proof that the EAL is initialised in this process. Cheap to copy around;
/// everything that needs EAL (ports, pools, lcores) takes `&Eal`.
#[derive(Debug)]
pub struct Eal {
    _private: (),
}

impl Eal {
    /// Initialises the EAL with `args` (without the program name, which is
    /// prepended as `dataplane`).
    ///
    /// For virtual devices without hugepages use
    /// `["--no-huge", "--no-pci", "--no-shconf", "--no-telemetry", "-m", "256"]`
    /// (`config::DEFAULT_EAL_ARGS`). With a shared DPDK build, `rte_eal_init`
    /// loads every poll-mode driver from DPDK's plugin directory; this costs
    /// some tens of milliseconds once.
    ///
    /// # Errors
    /// [`DpdkError::EalAlreadyInitialised`] on a second call in the same
    /// process (DPDK cannot re-initialise, even after `rte_eal_cleanup`);
    /// [`DpdkError::NulInArgument`]; [`DpdkError::EalInit`] with `rte_errno`.
    pub fn init<S: AsRef<str>>(args: &[S]) -> Result<Eal, DpdkError> {
        let mut owned = Vec::with_capacity(args.len() + 1);
        owned.push(CString::new("dataplane").expect("no NUL"));
        for a in args {
            let a = a.as_ref();
            owned.push(CString::new(a).map_err(|_| DpdkError::NulInArgument(a.to_owned()))?);
        }
        if INITIALISED.swap(true, Ordering::SeqCst) {
            return Err(DpdkError::EalAlreadyInitialised);
        }
        // rte_eal_init may permute argv (getopt); give it its own pointer array.
        // The CStrings outlive the call; EAL copies what it keeps.
        let mut argv: Vec<*mut c_char> = owned.iter().map(|c| c.as_ptr().cast_mut()).collect();
        let argc = c_int::try_from(argv.len())
            .map_err(|_| DpdkError::NulInArgument("too many arguments".into()))?;
        // SAFETY: argv holds argc valid NUL-terminated strings that live across
        // the call; INITIALISED guarantees a single call per process.
        let ret = unsafe { dpdk_sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        if ret < 0 {
            return Err(DpdkError::EalInit {
                args: args.iter().map(|a| a.as_ref().to_owned()).collect(),
                err: RteError::from_rte_errno(),
            });
        }
        Ok(Eal { _private: () })
    }

    /// Number of lcores EAL runs (main + workers). O(1).
    pub fn lcore_count(&self) -> usize {
        // SAFETY: EAL is initialised (self exists).
        unsafe { dpdk_sys::rte_lcore_count() as usize }
    }

    /// The main lcore's id.
    pub fn main_lcore(&self) -> u32 {
        // SAFETY: EAL is initialised.
        unsafe { dpdk_sys::rte_get_main_lcore() }
    }

    /// The worker lcore ids (every enabled lcore but the main one), ascending.
    pub fn worker_lcores(&self) -> Vec<u32> {
        let mut v = Vec::new();
        // SAFETY: EAL is initialised; rte_get_next_lcore walks the lcore config.
        unsafe {
            let mut i = dpdk_sys::rte_get_next_lcore(u32::MAX, 1, 0);
            while i < dpdk_sys::dpdk_shim_max_lcore() {
                v.push(i);
                i = dpdk_sys::rte_get_next_lcore(i, 1, 0);
            }
        }
        v
    }

    /// TSC frequency in Hz (the workers' clock, `time::CycleClock`; cycle
    /// counts in benchmarks).
    pub fn tsc_hz(&self) -> u64 {
        // SAFETY: EAL is initialised.
        unsafe { dpdk_sys::dpdk_shim_get_tsc_hz() }
    }

    /// Number of ethdev ports currently available.
    pub fn port_count(&self) -> u16 {
        // SAFETY: EAL is initialised.
        unsafe { dpdk_sys::rte_eth_dev_count_avail() }
    }
}

/// Whether the current thread is an EAL lcore, and which: `None` for
/// non-EAL threads.
pub fn current_lcore() -> Option<u32> {
    // SAFETY: reads a thread-local variable.
    let id = unsafe { dpdk_sys::dpdk_shim_lcore_id() };
    // SAFETY: constant.
    (id < unsafe { dpdk_sys::dpdk_shim_max_lcore() }).then_some(id)
}
