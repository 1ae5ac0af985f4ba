// State shared by the roles of the pktgen lcore (client traffic, stateless
// backends, the run loop): the profile, ports and MACs, the clock, TX buffers
// and the statistics. Everything is owned by that one lcore: no locks.
//
// TX buffers keep packets a queue refused and send them first next time, so a
// full ring delays packets instead of dropping them: sequence numbers stay
// gap-free and loss measures the balancer, not the generator's own queue.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include "flow_space.h"
#include "profile.h"
#include "run_stats.h"

namespace sluice::pktgen {

enum port_side : uint8_t { client_port = 0, backend_port = 1 };

class tx_buffer {
public:
  static constexpr uint32_t capacity = 1024;
  static constexpr uint32_t high_water = 512; // generators pause above this

  void push(rte_mbuf* m) {
    if (n_ == capacity) {
      rte_pktmbuf_free(m); // bounded: only replies can push past high water
      ++overflow_;
      return;
    }
    pkts_[n_++] = m;
  }
  uint32_t size() const { return n_; }
  bool has_room() const { return n_ < high_water; }
  uint64_t overflow() const { return overflow_; }

  // Sends what the queue takes; returns packets sent.
  uint16_t flush(uint16_t port, uint16_t queue, port_stats& st) {
    if (n_ == 0)
      return 0;
    uint16_t sent = rte_eth_tx_burst(port, queue, pkts_.data(), uint16_t(n_ > 512 ? 512 : n_));
    if (sent < n_) {
      st.tx_retries += n_ - sent;
      std::copy(pkts_.begin() + sent, pkts_.begin() + n_, pkts_.begin());
    }
    n_ -= sent;
    return sent;
  }
  void drop_all() {
    for (uint32_t i = 0; i < n_; ++i)
      rte_pktmbuf_free(pkts_[i]);
    n_ = 0;
  }

private:
  std::array<rte_mbuf*, capacity> pkts_{};
  uint32_t n_ = 0;
  uint64_t overflow_ = 0;
};

// What a backend learned about one established flow from its warm-up packet:
// the tuple it sees, so the reverse stream can answer through the balancer.
struct learned_flow {
  uint32_t backend_be = 0;
  uint32_t peer_be = 0; // nat: pool address, dnat: the client
  uint16_t backend_port = 0, peer_port = 0;
  uint8_t valid = 0;
};

struct pktgen_context {
  const profile& prof;
  flow_space flows;
  run_stats stats;
  rte_mempool* pool = nullptr;
  uint16_t port_id[2] = {0, 0};
  std::array<uint8_t, 6> own_mac[2]{};  // our ports' MACs (client side, backend side)
  std::array<uint8_t, 6> peer_mac[2]{}; // the balancer's ports (destination MACs)
  bool loopback = false;                // no balancer in between: expect packets unchanged
  tx_buffer tx[2];
  std::vector<std::vector<learned_flow>> learned; // per item (established only)
  std::vector<uint64_t> learned_count;
  uint64_t tsc_hz = 0;
  double ns_per_tsc = 0;

private:
  std::array<rte_mbuf*, 64> spare_{};
  uint32_t n_spare_ = 0;

public:
  pktgen_context(const profile& p) : prof(p), flows(p), stats(p.items.size()) {}

  uint64_t now_tsc() const { return rte_rdtsc(); }
  uint32_t ns32(uint64_t tsc) const { return uint32_t(uint64_t(double(tsc) * ns_per_tsc)); }
  uint32_t us32(uint64_t tsc) const {
    return uint32_t(uint64_t(double(tsc) * ns_per_tsc / 1000.0));
  }

  // Queues a built frame on a port and counts it.
  void send(port_side side, rte_mbuf* m) {
    stats.port[side].tx_packets++;
    stats.port[side].tx_bytes += m->pkt_len;
    tx[side].push(m);
  }
  // Mbufs come from a small local stack refilled in bulk: one pool access per
  // 64 packets instead of one per packet.
  rte_mbuf* alloc() {
    if (n_spare_ == 0) {
      if (rte_pktmbuf_alloc_bulk(pool, spare_.data(), uint32_t(spare_.size())) != 0) {
        rte_mbuf* m = rte_pktmbuf_alloc(pool); // pool nearly empty: one at a time
        if (m == nullptr)
          ++stats.alloc_failures;
        return m;
      }
      n_spare_ = uint32_t(spare_.size());
    }
    return spare_[--n_spare_];
  }
  void release_spares() {
    for (uint32_t i = 0; i < n_spare_; ++i)
      rte_pktmbuf_free(spare_[i]);
    n_spare_ = 0;
  }
};

// Sets the length of a freshly written frame.
inline void set_len(rte_mbuf* m, uint32_t len) {
  m->data_len = uint16_t(len);
  m->pkt_len = len;
}

} // namespace sluice::pktgen
