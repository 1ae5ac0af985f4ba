#include "decap_control.h"

#include <cerrno>
#include <cstring>
#include <fmt/format.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "dsr_decap.skel.h"
#include "xdp_util.h"

namespace sluice::bpf {

const char* const decap_counter_names[sluice_decap_counter_count] = {
#define SLUICE_X(name, help) #name,
    SLUICE_DECAP_COUNTERS(SLUICE_X)
#undef SLUICE_X
};

namespace {

constexpr const char* prog_name = "dsr_decap";

// Deletes every key of a hash map whose key is a sluice_bpf_addr.
status clear_addr_map(int fd) {
  sluice_bpf_addr key{};
  while (bpf_map_get_next_key(fd, nullptr, &key) == 0)
    if (bpf_map_delete_elem(fd, &key))
      return make_error(fmt::format("clearing decap_addrs: {}", std::strerror(errno)));
  return {};
}

struct decap_maps {
  fd_guard config, addrs, stats;
};

result<decap_maps> maps_of(uint32_t prog_id) {
  auto config = prog_map(prog_id, "decap_config");
  auto addrs = prog_map(prog_id, "decap_addrs");
  auto stats = prog_map(prog_id, "decap_stats");
  for (auto* r : {&config, &addrs, &stats})
    if (!*r)
      return r->err();
  return decap_maps{std::move(*config), std::move(*addrs), std::move(*stats)};
}

} // namespace

status decap_configure(int config_fd, int addrs_fd, const decap_settings& s) {
  if (s.local_addrs.size() > SLUICE_DECAP_MAX_LOCAL_ADDRS)
    return make_error(fmt::format("at most {} local addresses", SLUICE_DECAP_MAX_LOCAL_ADDRS));
  // Count 0 first so the program accepts any destination while the set is
  // rewritten, then publish the new count.
  uint32_t zero = 0;
  sluice_decap_config cfg{s.gue_port, 0, 0};
  if (bpf_map_update_elem(config_fd, &zero, &cfg, BPF_ANY))
    return make_error(fmt::format("writing decap_config: {}", std::strerror(errno)));
  if (auto st = clear_addr_map(addrs_fd); !st)
    return st;
  for (const auto& a : s.local_addrs) {
    auto key = to_bpf_addr(a);
    uint8_t one = 1;
    if (bpf_map_update_elem(addrs_fd, &key, &one, BPF_ANY))
      return make_error(
          fmt::format("adding {} to decap_addrs: {}", format_ip(a), std::strerror(errno)));
  }
  cfg.local_addr_count = uint32_t(s.local_addrs.size());
  if (bpf_map_update_elem(config_fd, &zero, &cfg, BPF_ANY))
    return make_error(fmt::format("writing decap_config: {}", std::strerror(errno)));
  return {};
}

result<std::string> decap_attach(const std::string& iface, const decap_settings& s) {
  auto ifindex = ifindex_of(iface);
  if (!ifindex)
    return ifindex.err();
  auto current = attached_xdp(*ifindex);
  if (!current)
    return current.err();
  if (current->has_value()) {
    const auto& p = **current;
    if (p.name != prog_name)
      return make_error(fmt::format("{}: XDP program '{}' (id {}) is attached; detach it first",
                                    iface, p.name, p.id));
    auto maps = maps_of(p.id);
    if (!maps)
      return maps.err();
    if (auto st = decap_configure(maps->config.get(), maps->addrs.get(), s); !st)
      return st.err();
    return std::string("updated");
  }

  dsr_decap_bpf* skel = dsr_decap_bpf__open_and_load();
  if (!skel)
    return make_error(fmt::format("loading dsr_decap: {}", std::strerror(errno)));
  auto mode = [&]() -> result<std::string> {
    if (auto st = decap_configure(bpf_map__fd(skel->maps.decap_config),
                                  bpf_map__fd(skel->maps.decap_addrs), s);
        !st)
      return st.err();
    return attach_xdp(*ifindex, bpf_program__fd(skel->progs.dsr_decap));
  }();
  // The interface holds its own reference to the program (and so to its maps).
  dsr_decap_bpf__destroy(skel);
  if (!mode)
    return make_error(fmt::format("{}: {}", iface, mode.error_message()));
  return mode;
}

result<bool> decap_detach(const std::string& iface) {
  auto ifindex = ifindex_of(iface);
  if (!ifindex)
    return ifindex.err();
  auto current = attached_xdp(*ifindex);
  if (!current)
    return current.err();
  if (!current->has_value())
    return false;
  if ((*current)->name != prog_name)
    return make_error(fmt::format("{}: XDP program '{}' is attached, not {}; left alone", iface,
                                  (*current)->name, prog_name));
  if (auto st = detach_xdp(*ifindex, (*current)->mode); !st)
    return st.err();
  return true;
}

result<std::optional<decap_state>> decap_query(const std::string& iface) {
  auto ifindex = ifindex_of(iface);
  if (!ifindex)
    return ifindex.err();
  auto current = attached_xdp(*ifindex);
  if (!current)
    return current.err();
  if (!current->has_value() || (*current)->name != prog_name)
    return std::optional<decap_state>{};
  decap_state st;
  st.prog_id = (*current)->id;
  st.mode = (*current)->mode;
  auto maps = maps_of(st.prog_id);
  if (!maps)
    return maps.err();
  uint32_t zero = 0;
  sluice_decap_config cfg{};
  if (bpf_map_lookup_elem(maps->config.get(), &zero, &cfg))
    return make_error(fmt::format("reading decap_config: {}", std::strerror(errno)));
  st.settings.gue_port = cfg.gue_port ? cfg.gue_port : SLUICE_DECAP_DEFAULT_GUE_PORT;
  sluice_bpf_addr key{}, next{};
  const sluice_bpf_addr* prev = nullptr;
  while (bpf_map_get_next_key(maps->addrs.get(), prev, &next) == 0) {
    st.settings.local_addrs.push_back(from_bpf_addr(next));
    key = next;
    prev = &key;
  }
  auto counters = sum_percpu_counters(maps->stats.get(), sluice_decap_counter_count);
  if (!counters)
    return counters.err();
  for (size_t i = 0; i < st.counters.size(); ++i)
    st.counters[i] = (*counters)[i];
  return std::optional<decap_state>{std::move(st)};
}

} // namespace sluice::bpf
