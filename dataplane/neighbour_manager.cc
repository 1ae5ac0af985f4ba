#include "neighbour_manager.h"

#include <cstdio>
#include <cstring>
#include <ctime>
#include <fmt/format.h>
#include <string>
#include <utility>

#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include "arp_nd.h"
#include "counters.h"
#include "shm_atomic.h"

namespace sluice::dp {

namespace {

constexpr uint64_t ms = 1000 * 1000;

} // namespace

uint64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

neighbour_manager::neighbour_manager(neighbour_manager_config cfg, neighbour_table& table,
                                     shm_region& shm)
    : cfg_(std::move(cfg)), table_(table), shm_(shm) {}

bool neighbour_manager::add_static(const std::vector<static_neighbour>& entries) {
  for (const auto& e : entries)
    if (!table_.set(e.ip, e.mac.data(), true))
      return false;
  dirty_ = true;
  return true;
}

std::optional<ip_addr> neighbour_manager::next_hop(const ip_addr& dst, side s) const {
  for (const auto& a : cfg_.addresses)
    if (on_side(a, s) && prefix_contains(a.prefix, dst))
      return dst;
  for (const auto& g : cfg_.gateways[s])
    if (g.is_v4() == dst.is_v4())
      return g;
  return std::nullopt;
}

void neighbour_manager::run() {
  while (!stop_requested()) {
    poll(monotonic_ns());
    timespec ts{0, long(poll_sleep_us) * 1000};
    nanosleep(&ts, nullptr);
  }
}

void neighbour_manager::poll(uint64_t now_ns) {
  store_release(shm_.header()->procs.dp_heartbeat_ns, now_ns);
  drain_exceptions();
  const uint64_t gen = load_acquire(shm_.header()->generation);
  if (dirty_ || gen != last_generation_ || now_ns - last_refresh_ns_ >= refresh_interval_ms * ms)
    refresh(now_ns);
  if (cfg_.on_poll)
    cfg_.on_poll();
  if (cfg_.stats_interval_ms != 0 && now_ns - last_stats_ns_ >= cfg_.stats_interval_ms * ms) {
    if (last_stats_ns_ != 0)
      print_stats();
    last_stats_ns_ = now_ns;
  }
}

void neighbour_manager::drain_exceptions() {
  if (cfg_.exception == nullptr)
    return;
  rte_mbuf* pkts[32];
  unsigned n;
  while ((n = rte_ring_dequeue_burst(cfg_.exception, reinterpret_cast<void**>(pkts), 32, nullptr)) >
         0) {
    for (unsigned i = 0; i < n; ++i) {
      rte_mbuf* m = pkts[i];
      auto learned =
          parse_neighbour_packet(rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m));
      if (learned && table_.lookup(learned->ip) != pack_mac(learned->mac)) {
        if (table_.set(learned->ip, learned->mac, false)) {
          ++learned_;
          dirty_ = true;
        }
      }
    }
    rte_pktmbuf_free_bulk(pkts, n);
  }
}

void neighbour_manager::refresh(uint64_t now_ns) {
  last_refresh_ns_ = now_ns;
  dirty_ = false;

  // Read the published slot; if a publication lands while we read, the result
  // may mix generations, so look again on the next poll.
  const uint64_t gen = load_acquire(shm_.header()->generation);
  const table_view v = shm_.view(unsigned(gen % 2));
  uint32_t limit = v.hdr->backend_limit;
  if (limit > shm_.caps().max_backends)
    limit = shm_.caps().max_backends;
  for (uint32_t b = 0; b < limit; ++b) {
    const abi::backend_entry& be = v.backends[b];
    packed_mac mac = 0;
    if (be.flags & (abi::backend_in_use | abi::backend_retired)) { // retired: flows kept
      ip_addr addr;
      std::memcpy(addr.bytes.data(), be.addr, 16);
      if (auto nh = next_hop(addr, backend_side)) {
        mac = table_.lookup(*nh);
        if (mac == 0)
          want(*nh, backend_side, now_ns);
      } else if (warned_no_route_.insert(addr).second) {
        std::fprintf(stderr,
                     "neighbour: backend %s is not on-link of any own address and there is no "
                     "%s gateway; its packets are dropped (no_neighbour)\n",
                     format_ip(addr).c_str(), addr.is_v4() ? "IPv4" : "IPv6");
      }
    }
    if (table_.backend_mac(b) != mac)
      table_.set_backend_mac(b, mac);
  }
  for (uint32_t b = limit; b < last_backend_limit_; ++b)
    table_.set_backend_mac(b, 0);
  last_backend_limit_ = limit;

  // Gateways are next hops for clients (NAT replies, ICMP): resolve them too.
  for (int s = 0; s < 2; ++s)
    for (const auto& g : cfg_.gateways[s])
      if (table_.lookup(g) == 0)
        want(g, side(s), now_ns);

  if (load_acquire(shm_.header()->generation) != gen)
    dirty_ = true;
  else
    last_generation_ = gen;
}

void neighbour_manager::want(const ip_addr& nh, side s, uint64_t now_ns) {
  auto [it, fresh] = last_request_ns_.try_emplace(nh, now_ns);
  if (!fresh) {
    if (now_ns - it->second < request_interval_ms * ms)
      return;
    it->second = now_ns;
  }
  send_request(nh, s);
}

void neighbour_manager::send_request(const ip_addr& target, side s) {
  if (!cfg_.can_send[s]) {
    if (!warned_no_tx_[s]) {
      warned_no_tx_[s] = true;
      std::fprintf(stderr,
                   "neighbour: cannot resolve %s: the %s port has no TX queue for the main "
                   "lcore; give its MAC with --neigh\n",
                   format_ip(target).c_str(), s == client_side ? "client" : "backend");
    }
    return;
  }
  const ip_addr* src = nullptr;
  for (const auto& a : cfg_.addresses) {
    if (!on_side(a, s) || a.prefix.addr.is_v4() != target.is_v4())
      continue;
    if (src == nullptr || prefix_contains(a.prefix, target))
      src = &a.prefix.addr;
  }
  if (src == nullptr)
    return; // no own address of the family on that side: nothing to ask from
  rte_mbuf* m = rte_pktmbuf_alloc(cfg_.pool);
  if (m == nullptr)
    return;
  if (!build_neighbour_request(m, target, *src, cfg_.mac[s].data())) {
    rte_pktmbuf_free(m);
    return;
  }
  if (rte_eth_tx_burst(cfg_.tx[s].port, cfg_.tx[s].queue, &m, 1) == 1)
    ++requests_sent_;
  else
    rte_pktmbuf_free(m);
}

void neighbour_manager::print_stats() const {
  uint64_t worker[worker_counter_count] = {};
  uint64_t drops[drop_reason_count] = {};
  for (uint32_t w = 0; w < cfg_.n_workers; ++w) {
    const abi::worker_counters_block* c = shm_.counters(w);
    for (size_t i = 0; i < worker_counter_count; ++i)
      worker[i] += load_relaxed(c->worker[i]);
    for (size_t i = 0; i < drop_reason_count; ++i)
      drops[i] += load_relaxed(c->drops[i]);
  }
  std::string line = "stats:";
  for (size_t i = 0; i < worker_counter_count; ++i)
    if (worker[i] != 0)
      line += fmt::format(" {}={}", worker_counter_names[i], worker[i]);
  std::string dropped;
  for (size_t i = 0; i < drop_reason_count; ++i)
    if (drops[i] != 0)
      dropped += fmt::format(" {}={}", drop_reason_names[i], drops[i]);
  if (!dropped.empty())
    line += " | drops:" + dropped;
  std::fprintf(stdout, "%s\n", line.c_str());
  std::fflush(stdout);
}

} // namespace sluice::dp
