// Small libbpf helpers shared by the loaders (sluice-decap, sluice-steer) and
// the control-plane entry points: interface lookup, the XDP program attached to
// an interface and its maps, per-CPU counter sums. No state; every function
// returns a result with a message that names the interface or map.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ip_addr.h"
#include "result.h"
#include "sluice_bpf_abi.h"

namespace sluice::bpf {

// Owns a file descriptor (program or map); closes it on destruction.
class fd_guard {
public:
  fd_guard() = default;
  explicit fd_guard(int fd) : fd_(fd) {}
  fd_guard(fd_guard&& o) noexcept : fd_(o.release()) {}
  fd_guard& operator=(fd_guard&& o) noexcept;
  fd_guard(const fd_guard&) = delete;
  fd_guard& operator=(const fd_guard&) = delete;
  ~fd_guard();
  int get() const { return fd_; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }

private:
  int fd_ = -1;
};

result<unsigned> ifindex_of(const std::string& iface);

// The XDP program attached to an interface, if any.
struct attached_prog {
  uint32_t id = 0;
  std::string name; // kernel program name (at most 15 characters)
  std::string mode; // "native", "generic" or "offload"
};
result<std::optional<attached_prog>> attached_xdp(unsigned ifindex);

// An fd for the map called `map_name` used by program `prog_id`.
result<fd_guard> prog_map(uint32_t prog_id, std::string_view map_name);

// Sums a BPF_MAP_TYPE_PERCPU_ARRAY of u64 counters over all possible CPUs.
result<std::vector<uint64_t>> sum_percpu_counters(int map_fd, uint32_t count);

// Converts between sluice::ip_addr and the BPF key (same 16-byte layout).
sluice_bpf_addr to_bpf_addr(const ip_addr& a);
ip_addr from_bpf_addr(const sluice_bpf_addr& a);

// The addresses the kernel of this network namespace owns, on every interface
// (getifaddrs): IPv4 and IPv6, link-local included, loopback included.
result<std::vector<ip_addr>> host_addresses();

// Attaches prog_fd in native mode, falling back to generic (skb) mode; never
// replaces a program that is already attached. Returns the mode used.
result<std::string> attach_xdp(unsigned ifindex, int prog_fd);

// Detaches whatever XDP program is attached in `mode` (from attached_prog).
status detach_xdp(unsigned ifindex, const std::string& mode);

} // namespace sluice::bpf
