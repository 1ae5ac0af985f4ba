// Statistics of the AF_XDP sockets behind net_af_xdp ports. The PMD keeps its
// sockets private and folds only rx_dropped into imissed, so what vip_steer
// redirects but a socket cannot take (RX ring full, fill ring empty) would be
// invisible. We find the socket of each RX queue by noting which AF_XDP
// descriptor appears while that queue is set up (af_xdp_fds() before and
// after rte_eth_rx_queue_setup), and read XDP_STATISTICS with getsockopt from
// the telemetry thread. Trade-off: this relies on the PMD creating one socket
// per RX queue inside rx_queue_setup (true for DPDK 22.11 without shared UMEM);
// when that does not hold the queue simply has no socket (-1) and no figures,
// never wrong ones. Nothing here is on the packet path.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "result.h"

namespace sluice::dp {

// X(name, help): the fields of struct xdp_statistics (linux/if_xdp.h), in order.
#define SLUICE_XSK_COUNTERS(X)                                                                     \
  X(rx_dropped, "frames the socket dropped for other reasons (e.g. no buffer in the fill ring)")   \
  X(rx_invalid_descs, "RX descriptors dropped as invalid")                                         \
  X(tx_invalid_descs, "TX descriptors dropped as invalid")                                         \
  X(rx_ring_full, "frames dropped because the socket's RX ring was full")                          \
  X(rx_fill_ring_empty_descs, "times the fill ring was empty when a frame arrived")                \
  X(tx_ring_empty_descs, "times the TX ring was empty when the kernel looked")

inline constexpr size_t xsk_counter_count = 6;
extern const char* const xsk_counter_names[xsk_counter_count];
extern const char* const xsk_counter_help[xsk_counter_count];
using xsk_counters = std::array<uint64_t, xsk_counter_count>;

// AF_XDP sockets open in this process (from /proc/self/fd), ascending.
std::vector<int> af_xdp_fds();

// The one AF_XDP socket in af_xdp_fds() that is not in `before` (ascending),
// or -1 when there is none or more than one.
int new_af_xdp_fd(const std::vector<int>& before);

// getsockopt(XDP_STATISTICS); errors name the descriptor.
result<xsk_counters> read_xsk_counters(int fd);

} // namespace sluice::dp
