//! Typed errors for every DPDK call the driver makes.
//!
//! DPDK reports failure either as a negative return value (`-errno`) or as a
//! NULL / `-1` return with the reason in the per-lcore `rte_errno`. Both become
//! an [`RteError`] (the errno and DPDK's `rte_strerror` text), wrapped in a
//! [`DpdkError`] variant naming the operation and the object it failed on.

use core::fmt;
use std::ffi::CStr;

/// An errno-style code from DPDK with its `rte_strerror` text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RteError {
    /// The positive errno value (`EINVAL`, `ENOTSUP`, `ENOMEM`, …).
    pub code: i32,
    /// `rte_strerror(code)`.
    pub message: String,
}

impl RteError {
    /// From a DPDK return value that is `-errno` (most `rte_eth_*` calls).
    pub fn from_ret(ret: i32) -> Self {
        Self::from_code(ret.saturating_abs())
    }

    /// From the current thread's `rte_errno` (calls that return NULL or -1).
    pub fn from_rte_errno() -> Self {
        // SAFETY: reads a thread-local integer; no preconditions.
        let code = unsafe { dpdk_sys::dpdk_shim_errno() };
        Self::from_code(code)
    }

    /// From an errno value.
    pub fn from_code(code: i32) -> Self {
        // SAFETY: rte_strerror returns a pointer to a static or thread-local
        // NUL-terminated string for any input; we copy it at once.
        let message = unsafe {
            let p = dpdk_sys::rte_strerror(code);
            if p.is_null() {
                String::from("unknown error")
            } else {
                CStr::from_ptr(p).to_string_lossy().into_owned()
            }
        };
        RteError { code, message }
    }

    /// Whether the code means "the device does not support this" (`ENOTSUP`
    /// or `EOPNOTSUPP`, which DPDK drivers use interchangeably).
    pub fn is_unsupported(&self) -> bool {
        self.code == 95 || self.code == 524 /* ENOTSUPP (kernel-internal, some PMDs) */
    }
}

impl fmt::Display for RteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (errno {})", self.message, self.code)
    }
}

impl std::error::Error for RteError {}

/// Everything the DPDK driver can fail with.
#[derive(Debug, thiserror::Error)]
pub enum DpdkError {
    /// An EAL argument or device string contains a NUL byte.
    #[error("argument {0:?} contains a NUL byte")]
    NulInArgument(String),
    /// `rte_eal_init` failed (bad arguments, no memory, no permissions, …).
    #[error("rte_eal_init({args:?}) failed: {err}")]
    EalInit { args: Vec<String>, err: RteError },
    /// EAL can be initialised once per process, and this process already did.
    #[error(
        "the DPDK EAL is already initialised in this process (it can be initialised only once)"
    )]
    EalAlreadyInitialised,
    /// `rte_vdev_init` failed for a virtual device string.
    #[error("creating virtual device `{device}` failed: {err}")]
    Vdev { device: String, err: RteError },
    /// No ethdev port with this name exists (PCI device not bound to a DPDK
    /// driver, wrong address, or `--no-pci` given).
    #[error(
        "device `{device}` has no DPDK port (is it bound to vfio-pci/uio and not blocked by --no-pci?): {err}"
    )]
    DeviceNotFound { device: String, err: RteError },
    /// The device cannot give each worker its own RX and TX queue.
    #[error(
        "port `{port}`: {workers} workers need {workers} RX and TX queues, the device has at most {max_rx} RX / {max_tx} TX"
    )]
    TooFewQueues {
        port: String,
        workers: u16,
        max_rx: u16,
        max_tx: u16,
    },
    /// The configured MTU is outside what the device supports.
    #[error("port `{port}`: mtu {mtu} is outside the device's {min}..={max} (ports[].mtu)")]
    Mtu {
        port: String,
        mtu: u16,
        min: u16,
        max: u16,
    },
    /// An `rte_eth_*` call on a port failed.
    #[error("port `{port}` (id {port_id}): {op} failed: {err}")]
    Port {
        port: String,
        port_id: u16,
        op: &'static str,
        err: RteError,
    },
    /// `rte_pktmbuf_pool_create` failed.
    #[error("creating mbuf pool `{name}` ({size} mbufs, socket {socket}) failed: {err}")]
    Mempool {
        name: String,
        size: u32,
        socket: i32,
        err: RteError,
    },
    /// `rte_ring_create` failed.
    #[error("creating ring `{name}` failed: {err}")]
    Ring { name: String, err: RteError },
    /// Not enough EAL lcores for the configured workers.
    #[error(
        "{workers} workers need {workers} lcores; EAL has {available} (pass -l/--lcores in [dpdk] eal_args)"
    )]
    NotEnoughLcores { workers: usize, available: usize },
    /// `rte_eal_remote_launch` failed.
    #[error("launching worker {worker} on lcore {lcore} failed: {err}")]
    Launch {
        worker: usize,
        lcore: u32,
        err: RteError,
    },
    /// A worker stopped with an error or panicked.
    #[error("worker {worker} failed: {reason}")]
    Worker { worker: usize, reason: String },
    /// The configuration cannot be run by the DPDK driver.
    #[error("config: {field}: {reason}")]
    Config { field: String, reason: String },
    /// Building the pipeline from the configuration failed.
    #[error("pipeline: {0}")]
    Pipeline(String),
}

impl DpdkError {
    pub(crate) fn port(port: &str, port_id: u16, op: &'static str, ret: i32) -> Self {
        DpdkError::Port {
            port: port.to_owned(),
            port_id,
            op,
            err: RteError::from_ret(ret),
        }
    }
}
