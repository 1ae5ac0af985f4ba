#include "xsk_stats.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fmt/format.h>
#include <linux/if_xdp.h>
#include <sys/socket.h>

namespace sluice::dp {

const char* const xsk_counter_names[xsk_counter_count] = {
#define SLUICE_X(name, help) #name,
    SLUICE_XSK_COUNTERS(SLUICE_X)
#undef SLUICE_X
};
const char* const xsk_counter_help[xsk_counter_count] = {
#define SLUICE_X(name, help) help,
    SLUICE_XSK_COUNTERS(SLUICE_X)
#undef SLUICE_X
};

static_assert(sizeof(xdp_statistics) == xsk_counter_count * sizeof(uint64_t),
              "SLUICE_XSK_COUNTERS must list every field of struct xdp_statistics");

std::vector<int> af_xdp_fds() {
  std::vector<int> out;
  DIR* d = opendir("/proc/self/fd");
  if (!d)
    return out;
  while (const dirent* e = readdir(d)) {
    char* end = nullptr;
    long fd = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || fd == dirfd(d))
      continue;
    int domain = 0;
    socklen_t len = sizeof(domain);
    if (getsockopt(int(fd), SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 && domain == AF_XDP)
      out.push_back(int(fd));
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

int new_af_xdp_fd(const std::vector<int>& before) {
  int found = -1;
  for (int fd : af_xdp_fds()) {
    if (std::binary_search(before.begin(), before.end(), fd))
      continue;
    if (found >= 0)
      return -1; // ambiguous: better no figures than another queue's
    found = fd;
  }
  return found;
}

result<xsk_counters> read_xsk_counters(int fd) {
  xdp_statistics s{};
  socklen_t len = sizeof(s);
  if (getsockopt(fd, SOL_XDP, XDP_STATISTICS, &s, &len) != 0)
    return make_error(
        fmt::format("AF_XDP socket {}: XDP_STATISTICS: {}", fd, std::strerror(errno)));
  xsk_counters c{};
  // Older kernels fill only the first three fields (len says how much).
  std::memcpy(c.data(), &s, std::min<size_t>(len, sizeof(s)));
  return c;
}

} // namespace sluice::dp
