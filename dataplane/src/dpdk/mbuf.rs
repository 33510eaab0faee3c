//! An owned `rte_mbuf`, the frame type of the DPDK path.

use std::ptr::NonNull;

/// One packet buffer, owned: freed back to its pool on drop, or handed to a
/// port's TX queue with [`Mbuf::into_raw`].
///
/// Only the first segment is exposed: the driver configures no scatter RX, so
/// received frames are single-segment (a multi-segment frame is linearised
/// or dropped on receive, see `Port::rx_burst`). `data()` is the frame from
/// the Ethernet header on; `data_mut()` is the same bytes, writable, same length;
/// [`Mbuf::prepend`] and [`Mbuf::adj`] move the front (a VLAN tag).
#[derive(Debug)]
#[repr(transparent)]
pub struct Mbuf(NonNull<dpdk_sys::rte_mbuf>);

// SAFETY: an mbuf is plain memory owned by whoever holds the pointer; it can
// be freed from any lcore (rte_pktmbuf_free is thread-safe on the pool).
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Takes ownership of a raw mbuf.
    ///
    /// # Safety
    /// `p` must point to a valid mbuf that nobody else owns or frees.
    pub unsafe fn from_raw(p: NonNull<dpdk_sys::rte_mbuf>) -> Mbuf {
        Mbuf(p)
    }

    /// Gives up ownership (e.g. to `rte_eth_tx_burst`, which frees it after
    /// sending).
    pub fn into_raw(self) -> *mut dpdk_sys::rte_mbuf {
        let p = self.0.as_ptr();
        core::mem::forget(self);
        p
    }

    /// Frame bytes of the first segment. O(1).
    #[inline]
    pub fn data(&self) -> &[u8] {
        // SAFETY: mtod points to data_len initialised bytes inside the mbuf's
        // buffer, valid while we own the mbuf.
        unsafe {
            let p = self.0.as_ptr();
            let len = usize::from((*p).data_len);
            let start = (*p).buf_addr.cast::<u8>().add(usize::from((*p).data_off));
            core::slice::from_raw_parts(start, len)
        }
    }

    /// Frame bytes, writable. O(1).
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: as `data`, and &mut self guarantees exclusive access.
        unsafe {
            let p = self.0.as_ptr();
            let len = usize::from((*p).data_len);
            let start = (*p).buf_addr.cast::<u8>().add(usize::from((*p).data_off));
            core::slice::from_raw_parts_mut(start, len)
        }
    }

    /// Total packet length over all segments.
    pub fn pkt_len(&self) -> u32 {
        // SAFETY: valid mbuf.
        unsafe { (*self.0.as_ptr()).pkt_len }
    }

    /// Number of segments.
    pub fn nb_segs(&self) -> u16 {
        // SAFETY: valid mbuf.
        unsafe { (*self.0.as_ptr()).nb_segs }
    }

    /// Makes a multi-segment mbuf one contiguous segment. Returns false when
    /// it does not fit (the mbuf is left as it was).
    pub fn linearize(&mut self) -> bool {
        // SAFETY: valid mbuf that we own exclusively.
        unsafe { dpdk_sys::dpdk_shim_pktmbuf_linearize(self.0.as_ptr()) == 0 }
    }

    /// Appends `bytes` at the end of the (single-segment) data; false when the
    /// tailroom is too small (nothing is appended then).
    pub fn append(&mut self, bytes: &[u8]) -> bool {
        let Ok(n) = u16::try_from(bytes.len()) else {
            return false;
        };
        // SAFETY: valid mbuf owned exclusively; append returns NULL (and changes
        // nothing) when there is no room, else a pointer to n writable bytes.
        unsafe {
            let dst = dpdk_sys::dpdk_shim_pktmbuf_append(self.0.as_ptr(), n);
            if dst.is_null() {
                return false;
            }
            core::ptr::copy_nonoverlapping(bytes.as_ptr(), dst.cast::<u8>(), bytes.len());
        }
        true
    }
}

impl Mbuf {
    /// Grows the data by `n` bytes at the front (into the headroom; the new
    /// bytes are uninitialised garbage for the caller to write). False
    /// (nothing changed) when the headroom is smaller. O(1).
    pub fn prepend(&mut self, n: u16) -> bool {
        // SAFETY: valid mbuf owned exclusively; prepend returns NULL and
        // changes nothing when the headroom is too small.
        unsafe { !dpdk_sys::dpdk_shim_pktmbuf_prepend(self.0.as_ptr(), n).is_null() }
    }

    /// Removes `n` bytes from the front of the data. False (nothing
    /// changed) when the first segment is shorter. O(1).
    pub fn adj(&mut self, n: u16) -> bool {
        // SAFETY: valid mbuf owned exclusively; adj returns NULL and changes
        // nothing when the first segment holds fewer than n bytes.
        unsafe { !dpdk_sys::dpdk_shim_pktmbuf_adj(self.0.as_ptr(), n).is_null() }
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: we own the mbuf; free returns it (and its chain) to its pool.
        unsafe { dpdk_sys::dpdk_shim_pktmbuf_free(self.0.as_ptr()) }
    }
}
