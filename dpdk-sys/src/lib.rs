//! `dpdk-sys`: raw FFI bindings to the system DPDK (22.11), generated at build
//! time by bindgen against the headers pkg-config finds (`libdpdk-dev`).
//!
//! Two parts:
//! - DPDK's exported functions and types, allowlisted by prefix (`rte_eal_*`,
//!   `rte_eth_*`, `rte_pktmbuf_*`, `rte_mempool_*`, `rte_lcore_*`, `rte_ring_*`,
//!   `rte_vdev_*`, …). Enums are plain integer constants.
//! - `dpdk_shim_*`: real functions (a small C file compiled with `cc`) that wrap
//!   DPDK's `static inline` hot-path API and function-like macros, which have no
//!   symbol to link against: `rte_eth_rx_burst`/`tx_burst`, `rte_pktmbuf_alloc`/
//!   `free`/`mtod`/`append`, `rte_errno`, `rte_lcore_id`, `rte_rdtsc`, ring
//!   bursts, RSS hash-function bit sets. Each has exactly the semantics of the
//!   call it wraps; the cost is one non-inlined call.
//!
//! Everything here is `unsafe` FFI: the safe wrapper is `dataplane::dpdk`.
//! With a shared DPDK build, poll-mode drivers are loaded by `rte_eal_init` from
//! DPDK's plugin directory; `librte_bus_vdev` and `librte_net_ring` are linked
//! explicitly because their functions (`rte_vdev_init`, `rte_eth_from_rings`)
//! are called directly.

#![allow(
    non_upper_case_globals,
    non_camel_case_types,
    non_snake_case,
    dead_code,
    unsafe_op_in_unsafe_fn,
    clippy::all,
    clippy::pedantic,
    missing_docs
)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_string_is_dpdk_22_11_or_later() {
        // SAFETY: rte_version returns a pointer to a static NUL-terminated string;
        // it needs no EAL initialisation.
        let v = unsafe { std::ffi::CStr::from_ptr(dpdk_shim_version()) };
        let v = v.to_str().expect("ascii");
        assert!(v.starts_with("DPDK "), "{v}");
        let mut nums = v[5..].split('.').map(|x| x.parse::<u32>().unwrap_or(0));
        let (maj, min) = (nums.next().unwrap_or(0), nums.next().unwrap_or(0));
        assert!((maj, min) >= (22, 11), "{v}");
    }

    #[test]
    fn rss_bits_cover_ip_tcp_udp() {
        // SAFETY: pure functions returning compile-time constants.
        let (ip, tcp, udp) = unsafe {
            (
                dpdk_shim_rss_hf_ip(),
                dpdk_shim_rss_hf_tcp(),
                dpdk_shim_rss_hf_udp(),
            )
        };
        assert_ne!(ip, 0);
        assert_ne!(tcp, 0);
        assert_ne!(udp, 0);
        // RTE_ETH_RSS_NONFRAG_IPV4_TCP is RTE_BIT64(RTE_ETH_FLOW_NONFRAG_IPV4_TCP).
        let v4tcp = 1u64 << RTE_ETH_FLOW_NONFRAG_IPV4_TCP;
        assert_eq!(tcp & v4tcp, v4tcp);
    }

    #[test]
    fn mbuf_layout_is_two_cache_lines() {
        assert_eq!(core::mem::size_of::<rte_mbuf>(), 128);
    }
}
