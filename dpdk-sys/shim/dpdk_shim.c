#include "dpdk_shim.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t stop_flag;
static volatile sig_atomic_t stop_sig;

static void on_stop_signal(int sig) {
  stop_sig = sig;
  stop_flag = 1;
}

int dpdk_shim_install_stop_handlers(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  if (sigaction(SIGINT, &sa, NULL) != 0) return -1;
  if (sigaction(SIGTERM, &sa, NULL) != 0) return -1;
  return 0;
}
int dpdk_shim_stop_requested(void) { return stop_flag != 0; }
void dpdk_shim_request_stop(void) { stop_flag = 1; }
int dpdk_shim_stop_signal(void) { return stop_sig; }

int dpdk_shim_errno(void) { return rte_errno; }
void dpdk_shim_set_errno(int v) { rte_errno = v; }
unsigned dpdk_shim_lcore_id(void) { return rte_lcore_id(); }
uint64_t dpdk_shim_rdtsc(void) { return rte_rdtsc(); }
uint64_t dpdk_shim_get_tsc_hz(void) { return rte_get_tsc_hz(); }

uint16_t dpdk_shim_eth_rx_burst(uint16_t port_id, uint16_t queue_id,
                                struct rte_mbuf **rx_pkts, uint16_t nb_pkts) {
  return rte_eth_rx_burst(port_id, queue_id, rx_pkts, nb_pkts);
}
uint16_t dpdk_shim_eth_tx_burst(uint16_t port_id, uint16_t queue_id,
                                struct rte_mbuf **tx_pkts, uint16_t nb_pkts) {
  return rte_eth_tx_burst(port_id, queue_id, tx_pkts, nb_pkts);
}

struct rte_mbuf *dpdk_shim_pktmbuf_alloc(struct rte_mempool *mp) {
  return rte_pktmbuf_alloc(mp);
}
int dpdk_shim_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs,
                                 unsigned count) {
  return rte_pktmbuf_alloc_bulk(mp, mbufs, count);
}
void dpdk_shim_pktmbuf_free(struct rte_mbuf *m) { rte_pktmbuf_free(m); }
void *dpdk_shim_pktmbuf_mtod(struct rte_mbuf *m) { return rte_pktmbuf_mtod(m, void *); }
uint16_t dpdk_shim_pktmbuf_data_len(const struct rte_mbuf *m) { return rte_pktmbuf_data_len(m); }
uint32_t dpdk_shim_pktmbuf_pkt_len(const struct rte_mbuf *m) { return rte_pktmbuf_pkt_len(m); }
uint16_t dpdk_shim_pktmbuf_nb_segs(const struct rte_mbuf *m) { return m->nb_segs; }
char *dpdk_shim_pktmbuf_append(struct rte_mbuf *m, uint16_t len) {
  return rte_pktmbuf_append(m, len);
}
uint16_t dpdk_shim_pktmbuf_tailroom(const struct rte_mbuf *m) { return rte_pktmbuf_tailroom(m); }
char *dpdk_shim_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len) {
  return rte_pktmbuf_prepend(m, len);
}
char *dpdk_shim_pktmbuf_adj(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_adj(m, len); }
int dpdk_shim_pktmbuf_linearize(struct rte_mbuf *m) { return rte_pktmbuf_linearize(m); }
unsigned dpdk_shim_mempool_avail_count(const struct rte_mempool *mp) {
  return rte_mempool_avail_count(mp);
}
unsigned dpdk_shim_mempool_in_use_count(const struct rte_mempool *mp) {
  return rte_mempool_in_use_count(mp);
}

unsigned dpdk_shim_ring_enqueue_burst(struct rte_ring *r, void *const *obj_table,
                                      unsigned n) {
  return rte_ring_enqueue_burst(r, obj_table, n, NULL);
}
unsigned dpdk_shim_ring_dequeue_burst(struct rte_ring *r, void **obj_table, unsigned n) {
  return rte_ring_dequeue_burst(r, obj_table, n, NULL);
}
unsigned dpdk_shim_ring_count(const struct rte_ring *r) { return rte_ring_count(r); }

uint64_t dpdk_shim_rss_hf_ip(void) { return RTE_ETH_RSS_IP; }
uint64_t dpdk_shim_rss_hf_tcp(void) { return RTE_ETH_RSS_TCP; }
uint64_t dpdk_shim_rss_hf_udp(void) { return RTE_ETH_RSS_UDP; }
uint16_t dpdk_shim_mbuf_default_buf_size(void) { return RTE_MBUF_DEFAULT_BUF_SIZE; }
unsigned dpdk_shim_max_lcore(void) { return RTE_MAX_LCORE; }
unsigned dpdk_shim_max_ethports(void) { return RTE_MAX_ETHPORTS; }
const char *dpdk_shim_version(void) { return rte_version(); }
