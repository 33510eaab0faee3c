//! `rte_ring`s of mbufs and ring-backed ports (`rte_eth_from_rings`): a port
//! whose RX and TX are rings the program itself fills and drains. Used by
//! tests and benchmarks to feed the real driver path without a device.

use std::ffi::CString;
use std::ptr::NonNull;

use super::eal::Eal;
use super::error::{DpdkError, RteError};
use super::mbuf::Mbuf;
use super::port::Port;

/// A multi-producer/multi-consumer ring of mbuf pointers. Freed on drop
/// (mbufs still in it are freed too).
#[derive(Debug)]
pub struct Ring {
    ptr: NonNull<dpdk_sys::rte_ring>,
}

// SAFETY: rte_ring (default MP/MC flags) is safe for concurrent use.
unsafe impl Send for Ring {}
// SAFETY: as above.
unsafe impl Sync for Ring {}

impl Ring {
    /// Creates a ring of `count` slots (a power of two; usable capacity
    /// `count - 1`).
    ///
    /// # Errors
    /// [`DpdkError::Ring`] with `rte_errno`.
    pub fn new(_eal: &Eal, name: &str, count: u32) -> Result<Ring, DpdkError> {
        let cn = CString::new(name).map_err(|_| DpdkError::NulInArgument(name.to_owned()))?;
        // SAFETY: EAL initialised; valid name; SOCKET_ID_ANY (-1); MP/MC flags (0).
        let p = unsafe { dpdk_sys::rte_ring_create(cn.as_ptr(), count, -1, 0) };
        let ptr = NonNull::new(p).ok_or_else(|| DpdkError::Ring {
            name: name.to_owned(),
            err: RteError::from_rte_errno(),
        })?;
        Ok(Ring { ptr })
    }

    /// Enqueues as many of `frames` as fit, removing them from the front;
    /// returns how many were enqueued.
    pub fn enqueue(&self, frames: &mut Vec<Mbuf>) -> usize {
        let len = frames.len();
        let n = u32::try_from(len).unwrap_or(u32::MAX);
        // SAFETY: frames holds `len` owned mbufs (transparent pointers); the
        // ring takes ownership of the first `k`, which we forget by shifting.
        unsafe {
            let base = frames.as_mut_ptr();
            let k = dpdk_sys::dpdk_shim_ring_enqueue_burst(
                self.ptr.as_ptr(),
                base.cast::<*mut core::ffi::c_void>(),
                n,
            ) as usize;
            core::ptr::copy(base.add(k), base, len - k);
            frames.set_len(len - k);
            k
        }
    }

    /// Dequeues up to `max` mbufs, appending them to `out`; returns how many.
    pub fn dequeue(&self, out: &mut Vec<Mbuf>, max: u32) -> usize {
        out.reserve(max as usize);
        let len = out.len();
        // SAFETY: room for `max` pointers; the ring only holds mbufs that were
        // enqueued as owned mbufs, so each dequeued pointer is ours.
        unsafe {
            let dst = out.as_mut_ptr().add(len).cast::<*mut core::ffi::c_void>();
            let k = dpdk_sys::dpdk_shim_ring_dequeue_burst(self.ptr.as_ptr(), dst, max) as usize;
            out.set_len(len + k);
            k
        }
    }

    /// Entries in the ring. O(1).
    pub fn len(&self) -> usize {
        // SAFETY: valid ring.
        unsafe { dpdk_sys::dpdk_shim_ring_count(self.ptr.as_ptr()) as usize }
    }

    /// Whether the ring is empty. O(1).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn as_ptr(&self) -> *mut dpdk_sys::rte_ring {
        self.ptr.as_ptr()
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        let mut v = Vec::new();
        while self.dequeue(&mut v, 256) > 0 {
            v.clear();
        }
        // SAFETY: we own the ring; the port using it must be closed first.
        unsafe { dpdk_sys::rte_ring_free(self.ptr.as_ptr()) }
    }
}

/// Creates an ethdev port named `name` whose single RX queue reads `rx` and
/// whose single TX queue writes `tx` (`rte_eth_from_rings`). The rings must
/// outlive the port.
///
/// # Errors
/// [`DpdkError::Vdev`] with `rte_errno`.
pub fn ring_port(_eal: &Eal, name: &str, rx: &Ring, tx: &Ring) -> Result<Port, DpdkError> {
    let cn = CString::new(name).map_err(|_| DpdkError::NulInArgument(name.to_owned()))?;
    let rxs = [rx.as_ptr()];
    let txs = [tx.as_ptr()];
    // SAFETY: EAL initialised; arrays of one valid ring each; numa 0.
    let id =
        unsafe { dpdk_sys::rte_eth_from_rings(cn.as_ptr(), rxs.as_ptr(), 1, txs.as_ptr(), 1, 0) };
    let id = u16::try_from(id).map_err(|_| DpdkError::Vdev {
        device: format!("{name} (rte_eth_from_rings)"),
        err: RteError::from_rte_errno(),
    })?;
    Ok(Port::from_id(id, name, &format!("ring:{name}")))
}
