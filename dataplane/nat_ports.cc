#include "nat_ports.h"

#include <fmt/format.h>
#include <utility>

#include <rte_byteorder.h>
#include <rte_thash.h>

namespace sluice::dp {

namespace {

// The reply tuple as DPDK's software Toeplitz (and a NIC hashing IPv4/IPv6
// TCP/UDP 5-tuples) reads it: addresses, then source port << 16 | destination
// port, in host-order 32-bit words.
uint32_t tuple_words(const ip_addr& src, const ip_addr& dst, uint16_t sport_host,
                     uint16_t dport_host, uint32_t* w) {
  auto word = [](const uint8_t* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return rte_be_to_cpu_32(v);
  };
  if (src.is_v4()) {
    w[0] = word(src.v4_ptr());
    w[1] = word(dst.v4_ptr());
    w[2] = uint32_t(sport_host) << 16 | dport_host;
    return 3;
  }
  for (int i = 0; i < 4; ++i) {
    w[i] = word(src.bytes.data() + 4 * i);
    w[4 + i] = word(dst.bytes.data() + 4 * i);
  }
  w[8] = uint32_t(sport_host) << 16 | dport_host;
  return 9;
}

} // namespace

result<void> nat_ports::init(const nat_ports_params& p) {
  if (p.port_min == 0 || p.port_min > p.port_max)
    return make_error(fmt::format("NAT port range {}-{} is empty", p.port_min, p.port_max));
  if (p.n_workers > 1 && p.reta.empty())
    return make_error("NAT ports: several workers need the RSS redirection table");
  for (uint16_t w : p.reta)
    if (w >= p.n_workers)
      return make_error(fmt::format("NAT ports: RETA names worker {} of {}", w, p.n_workers));
  worker_ = p.worker_id;
  port_min_ = p.port_min;
  port_max_ = p.port_max;
  pool_ = p.pool;
  if (pool_.size() > 0xffff)
    return make_error("NAT ports: more than 65,535 pool addresses");
  for (uint16_t i = 0; i < pool_.size(); ++i)
    (pool_[i].is_v4() ? pool4_ : pool6_).push_back(i);
  key_ = p.rss_key;
  if (p.n_workers > 1)
    reta_ = p.reta;
  slots_.assign(p.max_backend_slots, slot_binding{});
  if (reta_.empty())
    return {};
  // Contribution of the destination port alone. Zero addresses and source port
  // contribute nothing (Toeplitz of zero bits is zero), so these are exactly
  // the terms to XOR onto a set's base hash.
  ip_addr zero4 = ip_addr::from_v4_be(0), zero6{};
  port_hash4_.assign(size_t(port_max_) + 1, 0);
  port_hash6_.assign(size_t(port_max_) + 1, 0);
  for (uint32_t port = port_min_; port <= port_max_; ++port) {
    uint32_t w[9];
    uint32_t n = tuple_words(zero4, zero4, 0, uint16_t(port), w);
    port_hash4_[port] = rte_softrss(w, n, key_.data());
    n = tuple_words(zero6, zero6, 0, uint16_t(port), w);
    port_hash6_[port] = rte_softrss(w, n, key_.data());
  }
  return {};
}

uint32_t nat_ports::base_hash(const ip_addr& backend, uint16_t bport_host,
                              const ip_addr& pool) const {
  uint32_t w[9];
  uint32_t n = tuple_words(backend, pool, bport_host, 0, w);
  return rte_softrss(w, n, key_.data());
}

uint16_t nat_ports::reply_owner(const ip_addr& backend, uint16_t bport_be, const ip_addr& pool,
                                uint16_t port_be) const {
  if (reta_.empty())
    return worker_;
  uint32_t w[9];
  uint32_t n = tuple_words(backend, pool, rte_be_to_cpu_16(bport_be), rte_be_to_cpu_16(port_be), w);
  return owner_of_hash(rte_softrss(w, n, key_.data()));
}

void nat_ports::fill_set(port_set& s, const ip_addr& backend, uint16_t bport_host) {
  s.fifo.clear();
  s.leased.assign(1024, 0);
  uint32_t base = reta_.empty() ? 0 : base_hash(backend, bport_host, pool_[s.pool]);
  const std::vector<uint32_t>& ph = pool_[s.pool].is_v4() ? port_hash4_ : port_hash6_;
  // Ascending order: the first connections get the lowest ports; after that
  // the FIFO order is the order of release.
  for (uint32_t port = port_min_; port <= port_max_; ++port)
    if (reta_.empty() || owner_of_hash(base ^ ph[port]) == worker_)
      s.fifo.push_back(uint16_t(port));
  s.fifo.shrink_to_fit();
  s.head = 0;
  s.free_count = uint32_t(s.fifo.size());
  s.closing.assign(std::min<size_t>(closing_capacity, std::max<size_t>(s.fifo.size(), 1)), 0);
  s.closing_head = s.closing_count = 0;
  s.in_use = true;
}

bool nat_ports::reserve(uint32_t slot, const ip_addr& pool, uint16_t port_be, nat_lease& out) {
  if (slot >= slots_.size())
    return false;
  const slot_binding& b = slots_[slot];
  const uint16_t port = uint16_t(port_be >> 8 | port_be << 8);
  for (uint32_t t = 0; t < b.count; ++t) {
    const uint16_t si = uint16_t(b.first + t);
    port_set& s = sets_[si];
    if (!(pool_[s.pool] == pool))
      continue;
    if ((s.leased[port >> 6] >> (port & 63)) & 1)
      return false;
    const uint32_t n = uint32_t(s.fifo.size());
    for (uint32_t k = 0; k < s.free_count; ++k) {
      uint32_t i = s.head + k >= n ? s.head + k - n : s.head + k;
      if (s.fifo[i] != port)
        continue;
      // The head's port takes this one's place; the reserved one leaves at the head.
      std::swap(s.fifo[i], s.fifo[s.head]);
      s.head = s.head + 1 == n ? 0 : s.head + 1;
      --s.free_count;
      s.leased[port >> 6] |= 1ull << (port & 63);
      out.set = si;
      out.port_be = port_be;
      return true;
    }
    return false; // not this worker's port
  }
  return false;
}

bool nat_ports::owns(uint16_t set, uint16_t port_host) const {
  const port_set& s = sets_[set];
  for (uint16_t p : s.fifo)
    if (p == port_host)
      return true;
  // fifo holds only free ports once some are leased; a leased port is owned too.
  return (s.leased[port_host >> 6] >> (port_host & 63)) & 1;
}

void nat_ports::begin_publication() {
  for (auto& [k, ep] : endpoints_)
    ep.bound = false;
  for (slot_binding& b : slots_)
    b = slot_binding{};
}

result<void> nat_ports::bind(uint32_t slot, const ip_addr& backend, uint16_t backend_port_host) {
  if (slot >= slots_.size())
    return make_error(fmt::format("NAT ports: backend slot {} beyond {}", slot, slots_.size()));
  const std::vector<uint16_t>& fam = backend.is_v4() ? pool4_ : pool6_;
  if (fam.empty())
    return {}; // no pool address of this family: new flows count nat_no_pool_address
  endpoint_key k{backend.bytes, backend_port_host};
  auto it = endpoints_.find(k);
  if (it == endpoints_.end()) {
    auto& free_first = backend.is_v4() ? free_first4_ : free_first6_;
    uint16_t first;
    if (!free_first.empty()) {
      first = free_first.back();
      free_first.pop_back();
    } else {
      if (sets_.size() + fam.size() > max_sets)
        return make_error(fmt::format("NAT ports: more than {} port sets (pool addresses x "
                                      "backend endpoints) on worker {}",
                                      max_sets, worker_));
      first = uint16_t(sets_.size());
      sets_.resize(sets_.size() + fam.size());
    }
    for (size_t i = 0; i < fam.size(); ++i) {
      sets_[first + i].pool = fam[i];
      fill_set(sets_[first + i], backend, backend_port_host);
    }
    it = endpoints_.emplace(k, endpoint{first, uint16_t(fam.size()), false}).first;
  }
  it->second.bound = true;
  slots_[slot] = slot_binding{it->second.first, it->second.count};
  return {};
}

void nat_ports::end_publication() {
  // An endpoint no slot names any more is recycled once none of its ports is
  // leased; until then its flows keep releasing into it.
  for (auto it = endpoints_.begin(); it != endpoints_.end();) {
    endpoint& ep = it->second;
    bool idle = !ep.bound;
    for (uint16_t i = 0; idle && i < ep.count; ++i)
      idle = sets_[ep.first + i].free_count == sets_[ep.first + i].fifo.size();
    if (!idle) {
      ++it;
      continue;
    }
    bool v4 = pool_[sets_[ep.first].pool].is_v4();
    for (uint16_t i = 0; i < ep.count; ++i) {
      port_set& s = sets_[ep.first + i];
      s = port_set{}; // frees the vectors
      s.leased.assign(1024, 0);
    }
    (v4 ? free_first4_ : free_first6_).push_back(ep.first);
    it = endpoints_.erase(it);
  }
}

uint32_t nat_ports::sets_in_use() const {
  uint32_t n = 0;
  for (const port_set& s : sets_)
    n += s.in_use;
  return n;
}

size_t nat_ports::memory_bytes() const {
  size_t b = (port_hash4_.size() + port_hash6_.size()) * 4 + slots_.size() * sizeof(slot_binding);
  for (const port_set& s : sets_)
    b += s.fifo.capacity() * 2 + s.leased.capacity() * 8 + s.closing.capacity() * 4;
  return b;
}

} // namespace sluice::dp
