#include "steer_control.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <map>

#include <bpf/bpf.h>

#include "xdp_util.h"

namespace sluice::bpf {

const char* const steer_counter_names[sluice_steer_counter_count] = {
#define SLUICE_X(name, help) #name,
    SLUICE_STEER_COUNTERS(SLUICE_X)
#undef SLUICE_X
};

namespace {

constexpr const char* prog_name = "vip_steer";

sluice_steer_vip_key key_of(const steer_vip& v) {
  sluice_steer_vip_key k{};
  k.addr = to_bpf_addr(v.addr);
  k.port_be = uint16_t((v.port >> 8) | (v.port << 8));
  k.proto = v.proto;
  return k;
}

// All keys of a hash map.
template <typename Key> std::vector<Key> keys_of(int fd) {
  std::vector<Key> keys;
  Key key{}, next{};
  const Key* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    keys.push_back(next);
    key = next;
    prev = &key;
  }
  return keys;
}

// Writes `wanted` (key → value), then deletes keys not in it.
template <typename Key>
status replace_map(int fd, const std::vector<std::pair<Key, uint32_t>>& wanted, const char* name) {
  for (const auto& [k, v] : wanted)
    if (bpf_map_update_elem(fd, &k, &v, BPF_ANY))
      return make_error(fmt::format("updating {}: {}", name, std::strerror(errno)));
  for (const auto& k : keys_of<Key>(fd)) {
    bool keep = std::any_of(wanted.begin(), wanted.end(), [&](const auto& w) {
      return std::memcmp(&w.first, &k, sizeof(Key)) == 0;
    });
    if (!keep && bpf_map_delete_elem(fd, &k) && errno != ENOENT)
      return make_error(fmt::format("deleting from {}: {}", name, std::strerror(errno)));
  }
  return {};
}

} // namespace

steer_set steer_set_of(const std::vector<service_config>& services) {
  steer_set out;
  for (const auto& s : services) {
    out.vips.push_back(steer_vip{s.vip, s.port, s.proto});
    if (s.mode == abi::fwd_mode::dnat)
      for (const auto& b : s.backends)
        out.replies.push_back(steer_vip{b.addr, b.port ? b.port : s.port, s.proto});
  }
  return out;
}

status steer_fill(int vips_fd, int replies_fd, int addrs_fd, const steer_set& set) {
  if (set.vips.size() > SLUICE_STEER_MAX_VIPS || set.replies.size() > SLUICE_STEER_MAX_VIPS)
    return make_error(fmt::format("at most {} VIP services and {} dnat backends",
                                  SLUICE_STEER_MAX_VIPS, SLUICE_STEER_MAX_VIPS));
  std::vector<std::pair<sluice_steer_vip_key, uint32_t>> vips, replies;
  for (const auto& r : set.replies)
    replies.emplace_back(key_of(r), 1u);
  std::map<ip_addr, uint32_t> flags;
  for (const auto& v : set.vips) {
    vips.emplace_back(key_of(v), 1u);
    flags[v.addr] |= SLUICE_STEER_ADDR_VIP;
  }
  for (const auto& a : set.nat_pool)
    flags[a] |= SLUICE_STEER_ADDR_NAT_POOL;
  for (const auto& a : set.own)
    flags[a] |= SLUICE_STEER_ADDR_OWN;
  for (const auto& a : set.host)
    flags[a] |= SLUICE_STEER_ADDR_HOST;
  if (flags.size() > SLUICE_STEER_MAX_ADDRS)
    return make_error(fmt::format("at most {} steered addresses", SLUICE_STEER_MAX_ADDRS));
  std::vector<std::pair<sluice_bpf_addr, uint32_t>> addrs;
  for (const auto& [a, f] : flags)
    addrs.emplace_back(to_bpf_addr(a), f);
  // Addresses first: a new VIP's port entry is useless without its address.
  if (auto st = replace_map(addrs_fd, addrs, "steer_addrs"); !st)
    return st;
  if (auto st = replace_map(replies_fd, replies, "steer_replies"); !st)
    return st;
  return replace_map(vips_fd, vips, "steer_vips");
}

namespace {

struct steer_maps {
  fd_guard vips, replies, addrs, stats;
};

result<std::pair<attached_prog, steer_maps>> find_steer(const std::string& iface, bool required) {
  auto ifindex = ifindex_of(iface);
  if (!ifindex)
    return ifindex.err();
  auto current = attached_xdp(*ifindex);
  if (!current)
    return current.err();
  if (!current->has_value() || (*current)->name != prog_name) {
    if (!required)
      return std::pair{attached_prog{}, steer_maps{}};
    return make_error(fmt::format("{}: vip_steer is not attached ({})", iface,
                                  current->has_value() ? "XDP program '" + (*current)->name + "'"
                                                       : std::string("no XDP program")));
  }
  auto vips = prog_map((*current)->id, "steer_vips");
  auto replies = prog_map((*current)->id, "steer_replies");
  auto addrs = prog_map((*current)->id, "steer_addrs");
  auto stats = prog_map((*current)->id, "steer_stats");
  for (auto* r : {&vips, &replies, &addrs, &stats})
    if (!*r)
      return r->err();
  return std::pair{**current, steer_maps{std::move(*vips), std::move(*replies), std::move(*addrs),
                                         std::move(*stats)}};
}

} // namespace

status steer_update(const std::string& iface, const steer_set& set) {
  auto found = find_steer(iface, true);
  if (!found)
    return found.err();
  auto host = host_addresses();
  if (!host)
    return host.err();
  steer_set with_host = set;
  with_host.host.insert(with_host.host.end(), host->begin(), host->end());
  const auto& m = found->second;
  return steer_fill(m.vips.get(), m.replies.get(), m.addrs.get(), with_host);
}

result<std::optional<steer_state>> steer_query(const std::string& iface) {
  auto found = find_steer(iface, false);
  if (!found)
    return found.err();
  if (found->first.id == 0)
    return std::optional<steer_state>{};
  steer_state st;
  st.prog_id = found->first.id;
  st.mode = found->first.mode;
  for (const auto& k : keys_of<sluice_steer_vip_key>(found->second.vips.get()))
    st.set.vips.push_back(
        steer_vip{from_bpf_addr(k.addr), uint16_t((k.port_be >> 8) | (k.port_be << 8)), k.proto});
  for (const auto& k : keys_of<sluice_steer_vip_key>(found->second.replies.get()))
    st.set.replies.push_back(
        steer_vip{from_bpf_addr(k.addr), uint16_t((k.port_be >> 8) | (k.port_be << 8)), k.proto});
  for (const auto& a : keys_of<sluice_bpf_addr>(found->second.addrs.get())) {
    uint32_t f = 0;
    bpf_map_lookup_elem(found->second.addrs.get(), &a, &f);
    if (f & SLUICE_STEER_ADDR_NAT_POOL)
      st.set.nat_pool.push_back(from_bpf_addr(a));
    if (f & SLUICE_STEER_ADDR_OWN)
      st.set.own.push_back(from_bpf_addr(a));
    if (f & SLUICE_STEER_ADDR_HOST)
      st.set.host.push_back(from_bpf_addr(a));
  }
  auto counters = sum_percpu_counters(found->second.stats.get(), sluice_steer_counter_count);
  if (!counters)
    return counters.err();
  for (size_t i = 0; i < st.counters.size(); ++i)
    st.counters[i] = (*counters)[i];
  return std::optional<steer_state>{std::move(st)};
}

} // namespace sluice::bpf
