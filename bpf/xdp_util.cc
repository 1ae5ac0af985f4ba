#include "xdp_util.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <ifaddrs.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <netinet/in.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

namespace sluice::bpf {

fd_guard& fd_guard::operator=(fd_guard&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0)
      ::close(fd_);
    fd_ = o.release();
  }
  return *this;
}

fd_guard::~fd_guard() {
  if (fd_ >= 0)
    ::close(fd_);
}

result<std::vector<ip_addr>> host_addresses() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0)
    return make_error(fmt::format("listing the host's addresses: {}", std::strerror(errno)));
  std::vector<ip_addr> out;
  for (const ifaddrs* i = list; i; i = i->ifa_next) {
    if (!i->ifa_addr)
      continue;
    if (i->ifa_addr->sa_family == AF_INET) {
      const auto* sin = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
      out.push_back(ip_addr::from_v4_be(sin->sin_addr.s_addr));
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(i->ifa_addr);
      out.push_back(ip_addr::from_v6(sin6->sin6_addr.s6_addr));
    }
  }
  freeifaddrs(list);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

result<unsigned> ifindex_of(const std::string& iface) {
  unsigned index = if_nametoindex(iface.c_str());
  if (index == 0)
    return make_error(fmt::format("interface '{}': {}", iface, std::strerror(errno)));
  return index;
}

result<std::optional<attached_prog>> attached_xdp(unsigned ifindex) {
  LIBBPF_OPTS(bpf_xdp_query_opts, q);
  if (int err = bpf_xdp_query(int(ifindex), 0, &q); err)
    return make_error(fmt::format("querying XDP on ifindex {}: {}", ifindex, std::strerror(-err)));
  uint32_t id = 0;
  std::string mode;
  if (q.drv_prog_id) {
    id = q.drv_prog_id;
    mode = "native";
  } else if (q.skb_prog_id) {
    id = q.skb_prog_id;
    mode = "generic";
  } else if (q.hw_prog_id) {
    id = q.hw_prog_id;
    mode = "offload";
  }
  if (id == 0)
    return std::optional<attached_prog>{};
  fd_guard fd(bpf_prog_get_fd_by_id(id));
  if (fd.get() < 0)
    return make_error(fmt::format("XDP program id {}: {}", id, std::strerror(errno)));
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd.get(), &info, &len))
    return make_error(fmt::format("XDP program id {}: {}", id, std::strerror(errno)));
  return std::optional<attached_prog>{attached_prog{id, info.name, mode}};
}

result<fd_guard> prog_map(uint32_t prog_id, std::string_view map_name) {
  fd_guard prog(bpf_prog_get_fd_by_id(prog_id));
  if (prog.get() < 0)
    return make_error(fmt::format("program id {}: {}", prog_id, std::strerror(errno)));
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(prog.get(), &info, &len))
    return make_error(fmt::format("program id {}: {}", prog_id, std::strerror(errno)));
  std::vector<uint32_t> ids(info.nr_map_ids);
  uint32_t n = info.nr_map_ids;
  info = bpf_prog_info{};
  info.nr_map_ids = n;
  info.map_ids = reinterpret_cast<uintptr_t>(ids.data());
  len = sizeof(info);
  if (bpf_obj_get_info_by_fd(prog.get(), &info, &len))
    return make_error(fmt::format("program id {}: {}", prog_id, std::strerror(errno)));
  for (uint32_t id : ids) {
    fd_guard map(bpf_map_get_fd_by_id(id));
    if (map.get() < 0)
      continue;
    bpf_map_info minfo{};
    uint32_t mlen = sizeof(minfo);
    if (bpf_obj_get_info_by_fd(map.get(), &minfo, &mlen) == 0 && map_name == minfo.name)
      return map;
  }
  return make_error(
      fmt::format("program id {} ({}) has no map '{}'", prog_id, info.name, map_name));
}

result<std::vector<uint64_t>> sum_percpu_counters(int map_fd, uint32_t count) {
  int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0)
    return make_error("cannot read the number of possible CPUs");
  std::vector<uint64_t> sums(count);
  std::vector<uint64_t> per_cpu(static_cast<size_t>(cpus));
  for (uint32_t i = 0; i < count; ++i) {
    if (bpf_map_lookup_elem(map_fd, &i, per_cpu.data()))
      return make_error(fmt::format("reading counter {}: {}", i, std::strerror(errno)));
    for (auto v : per_cpu)
      sums[i] += v;
  }
  return sums;
}

sluice_bpf_addr to_bpf_addr(const ip_addr& a) {
  sluice_bpf_addr k;
  std::memcpy(k.bytes, a.bytes.data(), sizeof(k.bytes));
  return k;
}

ip_addr from_bpf_addr(const sluice_bpf_addr& a) {
  return ip_addr::from_v6(a.bytes);
}

result<std::string> attach_xdp(unsigned ifindex, int prog_fd) {
  if (bpf_xdp_attach(int(ifindex), prog_fd, XDP_FLAGS_UPDATE_IF_NOEXIST | XDP_FLAGS_DRV_MODE,
                     nullptr) == 0)
    return std::string("native");
  int err = bpf_xdp_attach(int(ifindex), prog_fd, XDP_FLAGS_UPDATE_IF_NOEXIST | XDP_FLAGS_SKB_MODE,
                           nullptr);
  if (err)
    return make_error(fmt::format("attaching XDP to ifindex {}: {}", ifindex, std::strerror(-err)));
  return std::string("generic");
}

status detach_xdp(unsigned ifindex, const std::string& mode) {
  uint32_t flags = mode == "native"    ? XDP_FLAGS_DRV_MODE
                   : mode == "generic" ? XDP_FLAGS_SKB_MODE
                                       : XDP_FLAGS_HW_MODE;
  if (int err = bpf_xdp_detach(int(ifindex), flags, nullptr); err)
    return make_error(
        fmt::format("detaching XDP from ifindex {}: {}", ifindex, std::strerror(-err)));
  return {};
}

} // namespace sluice::bpf
