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
#include <cstring>
#include <vector>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include "flow_space.h"
#include "frame_template.h"
#include "frame_writer.h"
#include "profile.h"
#include "run_stats.h"

namespace sluice::pktgen {

enum port_side : uint8_t { client_port = 0, backend_port = 1 };

class tx_buffer {
public:
  // Generators pause above high water; replies to received packets can still
  // fill the rest while the peer is not draining its ring (a descheduled
  // balancer on a shared machine): room for several RX bursts of them.
  static constexpr uint32_t capacity = 4096;
  static constexpr uint32_t high_water = 512;

  // False when full: the frame is freed (counted by the caller as tx_dropped,
  // a loss of the generator's own, not the balancer's).
  bool push(rte_mbuf* m) {
    if (n_ == capacity) {
      rte_pktmbuf_free(m);
      return false;
    }
    pkts_[n_++] = m;
    return true;
  }
  uint32_t size() const { return n_; }
  bool has_room() const { return n_ < high_water; }

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
  // `n` fresh mbufs straight from the pool (one access for the burst).
  bool alloc_bulk(rte_mbuf** ms, uint32_t n) {
    if (rte_pktmbuf_alloc_bulk(pool, ms, n) == 0)
      return true;
    stats.alloc_failures += n;
    return false;
  }
  // A frame built from a spec (variable layout: churn, warm-up, replies), or
  // null when the pool is empty (counted).
  rte_mbuf* build(const frame_spec& f) {
    rte_mbuf* m = alloc();
    if (m == nullptr)
      return nullptr;
    uint8_t* p = rte_pktmbuf_mtod(m, uint8_t*);
    uint32_t len = write_frame(p, f);
    if (len < min_frame) {
      std::memset(p + len, 0, min_frame - len);
      len = min_frame;
    }
    m->data_len = uint16_t(len);
    m->pkt_len = len;
    return m;
  }
  // The one way a generated frame leaves: counted in its stream (if any) and
  // on its port, then queued.
  void emit(port_side side, stream_stats* ss, rte_mbuf* const* ms, uint32_t n) {
    uint64_t bytes = 0;
    for (uint32_t k = 0; k < n; ++k) {
      bytes += ms[k]->pkt_len;
      if (!tx[side].push(ms[k]))
        ++stats.port[side].tx_dropped;
    }
    stats.port[side].tx_packets += n;
    stats.port[side].tx_bytes += bytes;
    if (ss) {
      ss->tx_packets += n;
      ss->tx_bytes += bytes;
    }
  }
  void release_spares() {
    for (uint32_t i = 0; i < n_spare_; ++i)
      rte_pktmbuf_free(spare_[i]);
    n_spare_ = 0;
  }
};

} // namespace sluice::pktgen
