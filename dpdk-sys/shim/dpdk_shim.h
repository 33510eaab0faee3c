/*
 * dpdk-sys C shim: DPDK's hot-path API is `static inline` (rx/tx burst, mbuf
 * alloc/free, rte_errno, rte_lcore_id, ring burst ops) or function-like macros
 * (RSS hash-function bit sets), none of which has a symbol to link against.
 * Each `dpdk_shim_*` below is a real function that calls the inline one, so
 * Rust can call it through bindgen. Contract: every wrapper has exactly the
 * semantics of the DPDK call it wraps; see the DPDK 22.11 API docs.
 * Cost: one extra (non-inlined) call per burst; per-packet helpers (mtod,
 * data_len) are cheap but the driver uses them once per packet at most.
 */
#ifndef DPDK_SHIM_H
#define DPDK_SHIM_H

#include <stdint.h>
#include <rte_config.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_launch.h>
#include <rte_cycles.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ethdev.h>
#include <rte_ring.h>
#include <rte_bus_vdev.h>
#include <rte_eth_ring.h>
#include <rte_version.h>

/* rte_errno is a per-lcore (thread-local) macro. */
int dpdk_shim_errno(void);
void dpdk_shim_set_errno(int v);
/* rte_lcore_id() is an inline reading a per-lcore variable. */
unsigned dpdk_shim_lcore_id(void);
uint64_t dpdk_shim_rdtsc(void);
uint64_t dpdk_shim_get_tsc_hz(void);

uint16_t dpdk_shim_eth_rx_burst(uint16_t port_id, uint16_t queue_id,
                                struct rte_mbuf **rx_pkts, uint16_t nb_pkts);
uint16_t dpdk_shim_eth_tx_burst(uint16_t port_id, uint16_t queue_id,
                                struct rte_mbuf **tx_pkts, uint16_t nb_pkts);

struct rte_mbuf *dpdk_shim_pktmbuf_alloc(struct rte_mempool *mp);
int dpdk_shim_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs,
                                 unsigned count);
void dpdk_shim_pktmbuf_free(struct rte_mbuf *m);
/* Pointer to the first data byte of the first segment (rte_pktmbuf_mtod). */
void *dpdk_shim_pktmbuf_mtod(struct rte_mbuf *m);
uint16_t dpdk_shim_pktmbuf_data_len(const struct rte_mbuf *m);
uint32_t dpdk_shim_pktmbuf_pkt_len(const struct rte_mbuf *m);
uint16_t dpdk_shim_pktmbuf_nb_segs(const struct rte_mbuf *m);
/* Appends len bytes to the last segment; NULL when there is no room. */
char *dpdk_shim_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
uint16_t dpdk_shim_pktmbuf_tailroom(const struct rte_mbuf *m);
/* Grow the data at the front by len bytes (rte_pktmbuf_prepend): the new
 * first byte, or NULL (nothing changed) when the headroom is too small. */
char *dpdk_shim_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len);
/* Remove len bytes from the front (rte_pktmbuf_adj): the new first byte, or
 * NULL (nothing changed) when the first segment is shorter. */
char *dpdk_shim_pktmbuf_adj(struct rte_mbuf *m, uint16_t len);
int dpdk_shim_pktmbuf_linearize(struct rte_mbuf *m);
unsigned dpdk_shim_mempool_avail_count(const struct rte_mempool *mp);
unsigned dpdk_shim_mempool_in_use_count(const struct rte_mempool *mp);

unsigned dpdk_shim_ring_enqueue_burst(struct rte_ring *r, void *const *obj_table,
                                      unsigned n);
unsigned dpdk_shim_ring_dequeue_burst(struct rte_ring *r, void **obj_table,
                                      unsigned n);
unsigned dpdk_shim_ring_count(const struct rte_ring *r);

/* RSS hash-function bit sets (function-like macros in rte_ethdev.h). */
uint64_t dpdk_shim_rss_hf_ip(void);
uint64_t dpdk_shim_rss_hf_tcp(void);
uint64_t dpdk_shim_rss_hf_udp(void);
/* RTE_MBUF_DEFAULT_BUF_SIZE */
uint16_t dpdk_shim_mbuf_default_buf_size(void);
/* RTE_MAX_LCORE, RTE_MAX_ETHPORTS */
unsigned dpdk_shim_max_lcore(void);
unsigned dpdk_shim_max_ethports(void);
/* rte_version() string, e.g. "DPDK 22.11.11". */
const char *dpdk_shim_version(void);


/* Stop signals: installs SIGINT and SIGTERM handlers (sigaction, SA_RESTART)
 * that only set a flag (async-signal-safe); the driver's loops poll it.
 * Returns 0, or -1 with errno set. */
int dpdk_shim_install_stop_handlers(void);
/* 1 once SIGINT or SIGTERM arrived since install (or a request_stop call). */
int dpdk_shim_stop_requested(void);
void dpdk_shim_request_stop(void);
/* Signal number that requested the stop (0 if none / programmatic). */
int dpdk_shim_stop_signal(void);

#endif
