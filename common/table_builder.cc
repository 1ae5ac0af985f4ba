#include "table_builder.h"

#include <algorithm>
#include <cstring>
#include <fmt/format.h>
#include <set>
#include <time.h>

#include "flow_hash.h"
#include "maglev.h"
#include "mode_names.h"
#include "scheduler_names.h"
#include "shm_region.h"

namespace sluice {

namespace {

constexpr uint8_t proto_tcp = 6;
constexpr uint8_t proto_udp = 17;

const char* proto_name(uint8_t p) {
  return p == proto_tcp ? "tcp" : p == proto_udp ? "udp" : "?";
}

std::string_view mode_name(abi::fwd_mode m) {
  return fwd_mode_name(m);
}

bool is_dsr(abi::fwd_mode m) {
  return m == abi::fwd_mode::dsr_l2 || m == abi::fwd_mode::dsr_ipip || m == abi::fwd_mode::dsr_gue;
}

std::string service_name(const service_config& s) {
  if (s.vip.is_v4())
    return fmt::format("service {}:{}/{}", format_ip(s.vip), s.port, proto_name(s.proto));
  return fmt::format("service [{}]:{}/{}", format_ip(s.vip), s.port, proto_name(s.proto));
}

std::string backend_name(const backend_config& b) {
  if (b.addr.is_v4())
    return fmt::format("backend {}:{}", format_ip(b.addr), b.port);
  return fmt::format("backend [{}]:{}", format_ip(b.addr), b.port);
}

uint16_t effective_port(const service_config& s, const backend_config& b) {
  return b.port != 0 ? b.port : s.port;
}

// :: or 0.0.0.0 (stored as ::ffff:0.0.0.0).
bool unspecified(const ip_addr& a) {
  return a.is_unspecified() || (a.is_v4() && a.v4_be() == 0);
}

bool accepts_new_flows(const backend_config& b) {
  return b.state == abi::backend_state::up && b.weight > 0;
}

uint64_t realtime_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

} // namespace

service_key key_of(const service_config& s) {
  return service_key{s.vip, s.port, s.proto};
}

backend_key key_of(const service_config& s, const backend_config& b) {
  return backend_key{key_of(s), b.addr, effective_port(s, b)};
}

slot_target make_slot_target(uint8_t* base, const abi::layout& l, const abi::capacities& caps) {
  slot_target t;
  t.hdr = reinterpret_cast<abi::slot_header*>(base);
  t.services = reinterpret_cast<abi::service_entry*>(base + l.services_offset_in_slot);
  t.backends = reinterpret_cast<abi::backend_entry*>(base + l.backends_offset_in_slot);
  t.vip_index = reinterpret_cast<abi::vip_index_entry*>(base + l.vip_index_offset_in_slot);
  t.lookup = reinterpret_cast<uint32_t*>(base + l.lookup_offset_in_slot);
  t.caps = caps;
  t.vip_index_capacity = uint32_t(l.vip_index_capacity);
  return t;
}

slot_target make_slot_target(const shm_region& region, unsigned slot) {
  return make_slot_target(region.base() + region.layout().slot_offset[slot], region.layout(),
                          region.caps());
}

table_view make_slot_view(const uint8_t* slot_base, const abi::layout& l) {
  // make_table_view wants the object base; shift so that slot 0 is slot_base.
  abi::layout shifted = l;
  shifted.slot_offset[0] = 0;
  return make_table_view(const_cast<uint8_t*>(slot_base), shifted, 0);
}

table_builder::table_builder(const abi::capacities& caps) : caps_(caps) {}

result<void> table_builder::validate(const std::vector<service_config>& services) const {
  if (services.size() > caps_.max_services)
    return make_error(fmt::format("too many services: {} configured, capacity {}", services.size(),
                                  caps_.max_services));
  std::set<service_key> seen;
  uint64_t backends_total = 0;
  uint64_t lookup_total = 0;
  for (const service_config& s : services) {
    const std::string name = service_name(s);
    if (unspecified(s.vip))
      return make_error(fmt::format("{}: VIP is unspecified (0.0.0.0 or ::)", name));
    if (s.proto != proto_tcp && s.proto != proto_udp)
      return make_error(
          fmt::format("{}: protocol {} is neither TCP (6) nor UDP (17)", name, unsigned(s.proto)));
    if (s.port == 0)
      return make_error(fmt::format("{}: port 0 is not a valid service port", name));
    if (!seen.insert(key_of(s)).second)
      return make_error(fmt::format("{}: duplicate service (same VIP, port and protocol)", name));
    const auto mode = uint8_t(s.mode);
    if (mode < uint8_t(abi::fwd_mode::nat) || mode > uint8_t(abi::fwd_mode::dsr_gue))
      return make_error(fmt::format("{}: unknown forwarding mode {}", name, unsigned(mode)));
    if (uint8_t(s.scheduler) < uint8_t(abi::scheduler_kind::maglev) ||
        uint8_t(s.scheduler) > abi::scheduler_kind_max)
      return make_error(
          fmt::format("{}: unknown scheduler {}", name, unsigned(uint8_t(s.scheduler))));
    if (s.scheduler == abi::scheduler_kind::sh &&
        (s.sh_prefix4 > 32 || s.sh_prefix6 > 128 || s.sh_timeout_s == 0))
      return make_error(fmt::format("{}: sh needs prefix lengths within 0..32 / 0..128 and a "
                                    "persistence timeout > 0 s (got /{}, /{}, {} s)",
                                    name, unsigned(s.sh_prefix4), unsigned(s.sh_prefix6),
                                    s.sh_timeout_s));
    if (s.mode == abi::fwd_mode::dsr_gue && s.gue_port == 0)
      return make_error(fmt::format("{}: dsr-gue needs a GUE port (got 0)", name));
    for (const auto& tf : flow_timeout_fields)
      if (uint32_t v = s.timeouts.*tf.member; v == 0 || v > max_flow_timeout_s)
        return make_error(fmt::format("{}: flow timeouts must be > 0 s and at most {} s: {} is {}",
                                      name, max_flow_timeout_s, tf.name, v));
    const bool maglev = uses_maglev_table(s.scheduler);
    if (maglev && !is_prime(s.maglev_size))
      return make_error(fmt::format("{}: Maglev table size {} is not prime (e.g. 65537, 251, 4099)",
                                    name, s.maglev_size));
    if (maglev && s.backends.size() > s.maglev_size)
      return make_error(fmt::format("{}: {} backends need a Maglev table size of at least {} "
                                    "(got {}; use a prime well above 100x the backends)",
                                    name, s.backends.size(), s.backends.size(), s.maglev_size));
    std::set<std::pair<ip_addr, uint16_t>> seen_backends;
    for (const backend_config& b : s.backends) {
      // Formatted only when an error names it: validation runs on every publish.
      auto bname = [&] { return backend_name(b); };
      if (unspecified(b.addr))
        return make_error(fmt::format("{}: {}: address is unspecified", name, bname()));
      if (!seen_backends.insert({b.addr, effective_port(s, b)}).second)
        return make_error(fmt::format("{}: {}: duplicate backend", name, bname()));
      const auto st = uint8_t(b.state);
      if (st < uint8_t(abi::backend_state::up) || st > uint8_t(abi::backend_state::disabled))
        return make_error(fmt::format("{}: {}: unknown state {}", name, bname(), unsigned(st)));
      const bool vip4 = s.vip.is_v4(), be4 = b.addr.is_v4();
      switch (s.mode) {
      case abi::fwd_mode::nat:
      case abi::fwd_mode::dnat:
        if (vip4 != be4)
          return make_error(fmt::format("{}: {}: {} needs a backend of the VIP's family (IPv{}), "
                                        "got IPv{}",
                                        name, bname(), mode_name(s.mode), vip4 ? 4 : 6,
                                        be4 ? 4 : 6));
        break;
      case abi::fwd_mode::dsr_ipip:
      case abi::fwd_mode::dsr_gue:
        if (!vip4 && be4)
          return make_error(fmt::format("{}: {}: {} cannot carry an IPv6 VIP to an IPv4 "
                                        "backend (4in6 is supported, 6in4 is not)",
                                        name, bname(), mode_name(s.mode)));
        break;
      case abi::fwd_mode::dsr_l2:
        break; // the backend address only resolves the next-hop MAC
      }
      // DSR forwards the client's packet unchanged (or encapsulated): the
      // backend must listen on the VIP's port.
      if (is_dsr(s.mode) && b.port != 0 && b.port != s.port)
        return make_error(fmt::format("{}: {}: {} cannot rewrite the port: backend port must "
                                      "be 0 or {}",
                                      name, bname(), mode_name(s.mode), s.port));
    }
    backends_total += s.backends.size();
    // Other schedulers keep the list of eligible backends in the pool.
    lookup_total += maglev ? s.maglev_size : uint32_t(s.backends.size());
  }
  if (backends_total > caps_.max_backends)
    return make_error(fmt::format("too many backends: {} configured, capacity {}", backends_total,
                                  caps_.max_backends));
  if (lookup_total > caps_.lookup_entries)
    return make_error(fmt::format("Maglev tables need {} lookup entries in total, capacity {} "
                                  "(reduce maglev_size or the number of services)",
                                  lookup_total, caps_.lookup_entries));
  return {};
}

result<void> table_builder::build(const std::vector<service_config>& services, const slot_target& t,
                                  uint64_t generation) {
  if (auto r = validate(services); !r)
    return r;
  if (t.caps.max_services != caps_.max_services || t.caps.max_backends != caps_.max_backends ||
      t.caps.lookup_entries != caps_.lookup_entries ||
      t.vip_index_capacity < 2 * caps_.max_services)
    return make_error("table builder: target slot has other capacities than the builder");

  // 1. New assignments, on a copy.
  state next = state_;
  std::vector<uint32_t> svc_index(services.size());
  std::vector<std::vector<backend_assignment>> be_assign(services.size());
  {
    std::set<service_key> live_services;
    std::set<backend_key> live_backends;
    for (const service_config& s : services) {
      live_services.insert(key_of(s));
      for (const backend_config& b : s.backends)
        live_backends.insert(key_of(s, b));
    }
    // Free what disappeared first (oldest first in the FIFO), then assign.
    for (auto it = next.services.begin(); it != next.services.end();) {
      if (!live_services.count(it->first)) {
        next.free_services.push_back(it->second);
        it = next.services.erase(it);
      } else {
        ++it;
      }
    }
    for (auto it = next.backends.begin(); it != next.backends.end();) {
      if (!live_backends.count(it->first)) {
        next.free_backends.push_back(it->second.slot);
        next.retired[it->second.slot] = {it->first, it->second.incarnation};
        it = next.backends.erase(it);
      } else {
        ++it;
      }
    }
    auto take = [](std::deque<uint32_t>& free_list, uint32_t& high, uint32_t cap) {
      if (high < cap)
        return high++;
      uint32_t i = free_list.front(); // validate() guarantees room
      free_list.pop_front();
      return i;
    };
    for (size_t i = 0; i < services.size(); ++i) {
      const service_config& s = services[i];
      auto [it, inserted] = next.services.try_emplace(key_of(s), 0);
      if (inserted)
        it->second = take(next.free_services, next.service_high, caps_.max_services);
      svc_index[i] = it->second;
      for (const backend_config& b : s.backends) {
        auto [bit, binserted] = next.backends.try_emplace(key_of(s, b));
        if (binserted) {
          bit->second.slot = take(next.free_backends, next.backend_high, caps_.max_backends);
          bit->second.incarnation = next.next_incarnation++;
          if (next.next_incarnation == 0)
            next.next_incarnation = 1;
        }
        be_assign[i].push_back(bit->second);
        next.retired.erase(bit->second.slot); // reused: its old flows are stale now
      }
    }
    // A retired backend of a removed service has nothing left to keep.
    for (auto it = next.retired.begin(); it != next.retired.end();)
      it = next.services.count(it->second.key.service) ? std::next(it) : next.retired.erase(it);
  }

  // 2. Write the slot. Unused entries are zeroed so nothing of the slot's
  // previous generation survives.
  std::memset(t.services, 0, sizeof(abi::service_entry) * caps_.max_services);
  std::memset(t.backends, 0, sizeof(abi::backend_entry) * caps_.max_backends);
  std::memset(t.vip_index, 0, sizeof(abi::vip_index_entry) * t.vip_index_capacity);
  const uint32_t vip_mask = t.vip_index_capacity - 1;
  uint32_t service_limit = 0, backend_limit = 0, lookup_used = 0, flags = 0;
  std::vector<maglev_backend> candidates;
  for (size_t i = 0; i < services.size(); ++i) {
    const service_config& s = services[i];
    const uint32_t si = svc_index[i];
    abi::service_entry& e = t.services[si];
    std::memcpy(e.vip, s.vip.bytes.data(), 16);
    e.port = s.port;
    e.proto = s.proto;
    e.family = uint8_t(s.vip.family());
    e.mode = uint8_t(s.mode);
    e.scheduler = uint8_t(s.scheduler);
    e.flags = abi::service_in_use | (s.reset_on_down ? abi::service_reset_on_down : 0);
    e.timeout_syn_s = s.timeouts.syn_s;
    e.timeout_est_s = s.timeouts.established_s;
    e.timeout_fin_s = s.timeouts.fin_s;
    e.timeout_udp_s = s.timeouts.udp_s;
    e.timeout_synrecv_s = s.timeouts.syn_recv_s;
    e.timeout_timewait_s = s.timeouts.time_wait_s;
    e.timeout_closed_s = s.timeouts.closed_s;
    e.timeout_udp_unanswered_s = s.timeouts.udp_unanswered_s;
    e.timeout_adopted_s = s.timeouts.adopted_s;
    e.backend_count = uint32_t(s.backends.size());
    e.gue_port = s.gue_port;
    service_limit = std::max(service_limit, si + 1);
    if (s.mode == abi::fwd_mode::nat)
      flags |= abi::slot_has_nat;
    if (s.mode == abi::fwd_mode::dnat)
      flags |= abi::slot_has_dnat;

    candidates.clear();
    for (size_t j = 0; j < s.backends.size(); ++j) {
      const backend_config& b = s.backends[j];
      const backend_assignment& a = be_assign[i][j];
      abi::backend_entry& be = t.backends[a.slot];
      std::memcpy(be.addr, b.addr.bytes.data(), 16);
      be.port = b.port;
      be.weight = b.weight;
      be.state = uint8_t(b.state);
      be.family = uint8_t(b.addr.family());
      be.service = uint16_t(si);
      be.incarnation = a.incarnation;
      be.flags = abi::backend_in_use;
      be.rtt_hint_us = b.rtt_hint_us;
      backend_limit = std::max(backend_limit, a.slot + 1);
      if (accepts_new_flows(b))
        candidates.push_back(
            maglev_backend{maglev_identity(b.addr, effective_port(s, b)), b.weight, a.slot});
    }
    e.hash_src = s.hash_src ? 1 : 0;
    e.sh_prefix4 = s.sh_prefix4;
    e.sh_prefix6 = s.sh_prefix6;
    e.sh_timeout_s = s.sh_timeout_s;
    if (!candidates.empty() && uses_maglev_table(s.scheduler)) {
      // validate() checked that every M fits in the pool and M >= backends.
      maglev_populate(candidates, s.maglev_size, t.lookup + lookup_used);
      e.lookup_offset = lookup_used;
      e.lookup_size = s.maglev_size;
      lookup_used += s.maglev_size;
    } else if (!candidates.empty()) {
      // The eligible backends, in identity order so every balancer instance
      // lists them alike.
      std::sort(
          candidates.begin(), candidates.end(),
          [](const maglev_backend& a, const maglev_backend& b) { return a.identity < b.identity; });
      e.lookup_offset = lookup_used;
      e.lookup_size = uint32_t(candidates.size());
      for (const maglev_backend& c : candidates)
        t.lookup[lookup_used++] = c.slot;
    }

    // VIP index: linear probing from vip_index_hash, exactly as find_service.
    uint32_t h = vip_index_hash(e.vip, e.port, e.proto) & vip_mask;
    while (t.vip_index[h].service_plus1 != 0)
      h = (h + 1) & vip_mask;
    abi::vip_index_entry& v = t.vip_index[h];
    std::memcpy(v.vip, e.vip, 16);
    v.port = e.port;
    v.proto = e.proto;
    v.service_plus1 = si + 1;
  }
  for (const auto& [slot, r] : next.retired) {
    abi::backend_entry& be = t.backends[slot];
    std::memcpy(be.addr, r.key.addr.bytes.data(), 16);
    be.port = r.key.port;
    be.weight = 0;
    be.state = uint8_t(abi::backend_state::draining);
    be.family = uint8_t(r.key.addr.family());
    be.service = uint16_t(next.services.at(r.key.service));
    be.incarnation = r.incarnation;
    be.flags = abi::backend_retired;
    backend_limit = std::max(backend_limit, slot + 1);
  }
  abi::slot_header& hdr = *t.hdr;
  hdr.generation = generation;
  hdr.service_limit = service_limit;
  hdr.backend_limit = backend_limit;
  hdr.lookup_used = lookup_used;
  hdr.vip_index_mask = vip_mask;
  hdr.flags = flags;
  hdr.reserved0 = 0;
  hdr.published_ns = realtime_ns();
  std::memset(hdr.reserved, 0, sizeof(hdr.reserved));

  // 3. Commit.
  state_ = std::move(next);
  return {};
}

result<void> table_builder::adopt(const table_view& v, const table_view* other) {
  if (auto r = validate_slot(v, caps_); !r)
    return make_error("cannot adopt the published tables: " + r.error_message());
  state next;
  uint32_t max_inc = 0;
  for (uint32_t i = 0; i < v.hdr->service_limit; ++i) {
    const abi::service_entry& s = v.services[i];
    if (!(s.flags & abi::service_in_use)) {
      next.free_services.push_back(i);
      continue;
    }
    service_key k;
    std::memcpy(k.vip.bytes.data(), s.vip, 16);
    k.port = s.port;
    k.proto = s.proto;
    next.services[k] = i;
  }
  next.service_high = v.hdr->service_limit;
  for (uint32_t i = 0; i < v.hdr->backend_limit; ++i) {
    const abi::backend_entry& b = v.backends[i];
    if (!(b.flags & abi::backend_in_use)) {
      next.free_backends.push_back(i);
      if ((b.flags & abi::backend_retired) && b.service < v.hdr->service_limit &&
          (v.services[b.service].flags & abi::service_in_use)) {
        const abi::service_entry& s = v.services[b.service];
        backend_key k;
        std::memcpy(k.service.vip.bytes.data(), s.vip, 16);
        k.service.port = s.port;
        k.service.proto = s.proto;
        std::memcpy(k.addr.bytes.data(), b.addr, 16);
        k.port = b.port;
        next.retired[i] = {k, b.incarnation};
        max_inc = std::max(max_inc, b.incarnation);
      }
      continue;
    }
    const abi::service_entry& s = v.services[b.service];
    backend_key k;
    std::memcpy(k.service.vip.bytes.data(), s.vip, 16);
    k.service.port = s.port;
    k.service.proto = s.proto;
    std::memcpy(k.addr.bytes.data(), b.addr, 16);
    k.port = b.port != 0 ? b.port : s.port;
    next.backends[k] = backend_assignment{i, b.incarnation};
    max_inc = std::max(max_inc, b.incarnation);
  }
  next.backend_high = v.hdr->backend_limit;
  if (other && other->hdr)
    for (uint32_t i = 0; i < std::min(other->hdr->backend_limit, caps_.max_backends); ++i)
      if (other->backends[i].flags & abi::backend_in_use)
        max_inc = std::max(max_inc, other->backends[i].incarnation);
  next.next_incarnation = std::max(max_inc + 1, state_.next_incarnation);
  if (next.next_incarnation == 0)
    next.next_incarnation = 1;
  state_ = std::move(next);
  return {};
}

std::optional<uint32_t> table_builder::service_index(const service_key& k) const {
  auto it = state_.services.find(k);
  if (it == state_.services.end())
    return std::nullopt;
  return it->second;
}

std::optional<backend_assignment> table_builder::backend(const backend_key& k) const {
  auto it = state_.backends.find(k);
  if (it == state_.backends.end())
    return std::nullopt;
  return it->second;
}

result<void> validate_slot(const table_view& v, const abi::capacities& caps) {
  if (!v.hdr)
    return make_error("slot: no header");
  const abi::slot_header& h = *v.hdr;
  const uint64_t vip_cap = uint64_t(v.vip_mask) + 1;
  if (h.service_limit > caps.max_services)
    return make_error(fmt::format("slot generation {}: service_limit {} exceeds capacity {}",
                                  h.generation, h.service_limit, caps.max_services));
  if (h.backend_limit > caps.max_backends)
    return make_error(fmt::format("slot generation {}: backend_limit {} exceeds capacity {}",
                                  h.generation, h.backend_limit, caps.max_backends));
  if (h.lookup_used > caps.lookup_entries)
    return make_error(fmt::format("slot generation {}: lookup_used {} exceeds capacity {}",
                                  h.generation, h.lookup_used, caps.lookup_entries));
  if (h.vip_index_mask != v.vip_mask || (vip_cap & (vip_cap - 1)) != 0 ||
      vip_cap < 2ull * caps.max_services)
    return make_error(fmt::format("slot generation {}: vip_index_mask {} does not match the "
                                  "layout's {}",
                                  h.generation, h.vip_index_mask, v.vip_mask));
  uint64_t empty = 0;
  for (uint64_t i = 0; i < vip_cap; ++i) {
    const abi::vip_index_entry& e = v.vip_index[i];
    if (e.service_plus1 == 0) {
      ++empty;
      continue;
    }
    const uint32_t si = e.service_plus1 - 1;
    if (si >= h.service_limit || !(v.services[si].flags & abi::service_in_use) ||
        v.services[si].port != e.port || v.services[si].proto != e.proto ||
        std::memcmp(v.services[si].vip, e.vip, 16) != 0)
      return make_error(fmt::format("slot: VIP index entry {} points at service {}, which is "
                                    "not in use or has another key",
                                    i, si));
  }
  if (empty == 0)
    return make_error("slot: VIP index has no empty entry (lookups would not terminate)");
  for (uint32_t i = 0; i < h.service_limit; ++i) {
    const abi::service_entry& s = v.services[i];
    if (!(s.flags & abi::service_in_use))
      continue;
    if (s.proto != proto_tcp && s.proto != proto_udp)
      return make_error(fmt::format("slot: service {} has protocol {}", i, unsigned(s.proto)));
    if (s.mode < uint8_t(abi::fwd_mode::nat) || s.mode > uint8_t(abi::fwd_mode::dsr_gue))
      return make_error(fmt::format("slot: service {} has mode {}", i, unsigned(s.mode)));
    if (s.lookup_size != 0) {
      if (uint64_t(s.lookup_offset) + s.lookup_size > h.lookup_used)
        return make_error(fmt::format("slot: service {} lookup table [{}, +{}) beyond "
                                      "lookup_used {}",
                                      i, s.lookup_offset, s.lookup_size, h.lookup_used));
      for (uint32_t j = 0; j < s.lookup_size; ++j) {
        const uint32_t b = v.lookup[s.lookup_offset + j];
        if (b >= h.backend_limit || !(v.backends[b].flags & abi::backend_in_use) ||
            v.backends[b].service != i)
          return make_error(fmt::format("slot: service {} lookup entry {} points at backend "
                                        "slot {}, which is not an in-use backend of it",
                                        i, j, b));
      }
    }
    if (v.find_service(s.vip, s.port, s.proto) != int32_t(i))
      return make_error(fmt::format("slot: service {} is not found through the VIP index", i));
  }
  for (uint32_t i = h.service_limit; i < caps.max_services; ++i)
    if (v.services[i].flags & abi::service_in_use)
      return make_error(
          fmt::format("slot: service {} in use beyond service_limit {}", i, h.service_limit));
  for (uint32_t i = 0; i < caps.max_backends; ++i) {
    const abi::backend_entry& b = v.backends[i];
    if (!(b.flags & abi::backend_in_use))
      continue;
    if (i >= h.backend_limit)
      return make_error(
          fmt::format("slot: backend {} in use beyond backend_limit {}", i, h.backend_limit));
    if (b.service >= h.service_limit || !(v.services[b.service].flags & abi::service_in_use))
      return make_error(fmt::format("slot: backend {} belongs to service {}, which is not in use",
                                    i, unsigned(b.service)));
    if (b.incarnation == 0)
      return make_error(fmt::format("slot: backend {} has incarnation 0", i));
  }
  return {};
}

} // namespace sluice
