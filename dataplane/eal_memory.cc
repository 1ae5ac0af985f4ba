#include "eal_memory.h"

#include <cerrno>
#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <fstream>
#include <sstream>
#include <sys/file.h>
#include <unistd.h>
#include <vector>

namespace sluice::dp {

namespace {

// hugetlbfs mount points from /proc/mounts.
std::vector<std::string> hugetlbfs_mounts() {
  std::vector<std::string> out;
  std::ifstream in("/proc/mounts");
  for (std::string line; std::getline(in, line);) {
    std::istringstream w(line);
    std::string dev, dir, type;
    if (w >> dev >> dir >> type && type == "hugetlbfs")
      out.push_back(dir);
  }
  return out;
}

long read_number(const std::string& path) {
  std::ifstream in(path);
  long v = -1;
  in >> v;
  return in ? v : -1;
}

} // namespace

uint32_t estimate_hugepages(uint32_t workers, uint32_t flow_table_size) {
  // Measured (docs/operations.md, "Sizing", after the bucketed flow table's
  // first-bucket layout): one worker took 67 pages at --flow-table-size
  // 65536, 172 at 1048576 and 508 at 4194304; two workers 295 at 1048576. So
  // both flow tables (v4 and v6) cost about 224 bytes per entry, each worker
  // about 22 MiB besides (its queues' mbufs and rings) and EAL with the rest
  // of the mempool about 98 MiB.
  const uint64_t per_worker = uint64_t(flow_table_size) * 224 + (22ull << 20);
  const uint64_t bytes = (98ull << 20) + per_worker * workers;
  return uint32_t((bytes + (2u << 20) - 1) / (2u << 20));
}

std::string hugepage_hint(int eal_errno, uint32_t workers, uint32_t flow_table_size, bool no_huge) {
  if (no_huge)
    return "";
  std::string o;
  const uint32_t need = estimate_hugepages(workers, flow_table_size);
  const std::string sys = "/sys/kernel/mm/hugepages/hugepages-2048kB/";
  const long total = read_number(sys + "nr_hugepages");
  const long free = read_number(sys + "free_hugepages");
  const auto mounts = hugetlbfs_mounts();
  if (geteuid() != 0 && (eal_errno == EACCES || eal_errno == EPERM))
    o += "hint: not running as root: run as root, or give the user write access to the "
         "hugetlbfs mount and /var/run/dpdk and the capabilities in "
         "scripts/systemd/sluice-dataplane@.service (CAP_IPC_LOCK, CAP_SYS_ADMIN, CAP_NET_ADMIN, "
         "CAP_NET_RAW)\n";
  if (mounts.empty())
    o += "hint: no hugetlbfs is mounted: mkdir -p /dev/hugepages && mount -t hugetlbfs "
         "nodev /dev/hugepages\n";
  for (const auto& m : mounts)
    if (access(m.c_str(), W_OK) != 0)
      o += fmt::format("hint: {} (hugetlbfs) is not writable by this user\n", m);
  if (total == 0)
    o += fmt::format("hint: no 2 MiB hugepages are reserved: echo {} > {}nr_hugepages (this "
                     "configuration needs about {})\n",
                     need, sys, need);
  else if (free >= 0 && free < long(need))
    o += fmt::format("hint: {} of {} 2 MiB hugepages are free; {} worker(s) with "
                     "--flow-table-size {} need about {} (free pages, stop what holds them, or "
                     "lower --flow-table-size; leftover files of a crashed dataplane in the "
                     "hugetlbfs mount also hold pages)\n",
                     free, total, workers, flow_table_size, need);
  if (o.empty() && eal_errno == ENOMEM)
    o += fmt::format("hint: EAL could not reserve the memory it was asked for: {} of {} 2 MiB "
                     "hugepages are free ({} MiB); check -m/--socket-mem ({} worker(s) with "
                     "--flow-table-size {} need about {} pages)\n",
                     free, total, free * 2, workers, flow_table_size, need);
  if (!o.empty())
    o += "hint: sizing is in docs/operations.md; for tests without hugepages use EAL "
         "--no-huge -m 512\n";
  return o;
}

unsigned remove_hugepage_files(const std::string& prefix) {
  unsigned removed = 0;
  const std::string stem = prefix + "map_";
  for (const auto& dir : hugetlbfs_mounts()) {
    DIR* d = opendir(dir.c_str());
    if (!d)
      continue;
    while (dirent* e = readdir(d)) {
      const std::string name = e->d_name;
      if (name.rfind(stem, 0) != 0 ||
          name.find_first_not_of("0123456789", stem.size()) != std::string::npos)
        continue;
      const std::string path = dir + "/" + name;
      // A secondary process that still maps the page holds a shared lock.
      int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0)
        continue;
      if (flock(fd, LOCK_EX | LOCK_NB) == 0 && unlink(path.c_str()) == 0)
        ++removed;
      close(fd);
    }
    closedir(d);
  }
  return removed;
}

} // namespace sluice::dp
