//! Packet-buffer pools (`rte_pktmbuf_pool_create`).

use std::ffi::CString;
use std::ptr::NonNull;

use super::eal::Eal;
use super::error::{DpdkError, RteError};
use super::mbuf::Mbuf;

/// A pool of packet buffers. Freed (`rte_mempool_free`) on drop; every port
/// using it must be closed and every mbuf returned first, which the driver
/// guarantees by dropping pools last.
#[derive(Debug)]
pub struct Mempool {
    ptr: NonNull<dpdk_sys::rte_mempool>,
    name: String,
    size: u32,
}

// SAFETY: rte_mempool is designed for concurrent use from several lcores
// (lock-free ring + per-lcore caches); the pointer stays valid until drop.
unsafe impl Send for Mempool {}
// SAFETY: as above; all operations through &Mempool are thread-safe in DPDK.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// Creates a pool of `size` mbufs (best as 2^n − 1) with the default data
    /// room (2048 + headroom bytes), a per-lcore cache of up to 256, on `socket`
    /// (`-1` = any).
    ///
    /// # Errors
    /// [`DpdkError::Mempool`] with `rte_errno` (`ENOMEM`, `EEXIST` for a
    /// duplicate name, …).
    pub fn new(_eal: &Eal, name: &str, size: u32, socket: i32) -> Result<Mempool, DpdkError> {
        let cname = CString::new(name).map_err(|_| DpdkError::NulInArgument(name.to_owned()))?;
        // Cache must be <= size / 1.5 and <= RTE_MEMPOOL_CACHE_MAX_SIZE (512).
        let cache = (size / 4).clamp(0, 256);
        // SAFETY: EAL is initialised (_eal); cname is a valid C string.
        let p = unsafe {
            dpdk_sys::rte_pktmbuf_pool_create(
                cname.as_ptr(),
                size,
                cache,
                0,
                dpdk_sys::dpdk_shim_mbuf_default_buf_size(),
                socket,
            )
        };
        let ptr = NonNull::new(p).ok_or_else(|| DpdkError::Mempool {
            name: name.to_owned(),
            size,
            socket,
            err: RteError::from_rte_errno(),
        })?;
        Ok(Mempool {
            ptr,
            name: name.to_owned(),
            size,
        })
    }

    pub(crate) fn as_ptr(&self) -> *mut dpdk_sys::rte_mempool {
        self.ptr.as_ptr()
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Configured number of mbufs.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Mbufs free in the pool (including per-lcore caches). O(lcores).
    pub fn available(&self) -> u32 {
        // SAFETY: valid pool pointer.
        unsafe { dpdk_sys::dpdk_shim_mempool_avail_count(self.ptr.as_ptr()) }
    }

    /// Mbufs currently allocated. O(lcores).
    pub fn in_use(&self) -> u32 {
        // SAFETY: valid pool pointer.
        unsafe { dpdk_sys::dpdk_shim_mempool_in_use_count(self.ptr.as_ptr()) }
    }

    /// Allocates one mbuf, or `None` when the pool is empty.
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: valid pool pointer; a non-NULL result is a fresh mbuf we own.
        let m = unsafe { dpdk_sys::dpdk_shim_pktmbuf_alloc(self.ptr.as_ptr()) };
        // SAFETY: m is a freshly allocated mbuf owned by nobody else.
        NonNull::new(m).map(|p| unsafe { Mbuf::from_raw(p) })
    }

    /// Allocates an mbuf holding a copy of `bytes`, or `None` when the pool is
    /// empty or `bytes` does not fit one segment.
    pub fn alloc_copy(&self, bytes: &[u8]) -> Option<Mbuf> {
        let mut m = self.alloc()?;
        m.append(bytes).then_some(m)
    }
}

impl Drop for Mempool {
    fn drop(&mut self) {
        // SAFETY: we own the pool; the driver closes ports and drops mbufs first.
        unsafe { dpdk_sys::rte_mempool_free(self.ptr.as_ptr()) }
    }
}
