#include "flow_snapshot.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

namespace sluice::dp {

namespace {

constexpr char magic[8] = {'S', 'L', 'U', 'F', 'L', 'O', 'W', 'S'};
constexpr uint32_t format_version = 1;
// More than any table could hold: a larger count means a damaged header.
constexpr uint64_t max_records = 1ull << 28;

struct snapshot_header {
  char magic[8];
  uint32_t version;
  uint32_t record_size;
  uint64_t count;
  uint16_t n_workers;
  uint16_t reserved;
  uint32_t checksum; // FNV-1a over the records
};
static_assert(sizeof(snapshot_header) == 32);

uint32_t fnv1a(const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; ++i)
    h = (h ^ b[i]) * 16777619u;
  return h;
}

bool write_all(int fd, const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  while (n) {
    ssize_t w = ::write(fd, b, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return false;
    b += w;
    n -= size_t(w);
  }
  return true;
}

bool read_all(int fd, void* p, size_t n) {
  auto* b = static_cast<uint8_t*>(p);
  while (n) {
    ssize_t r = ::read(fd, b, n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return false;
    b += r;
    n -= size_t(r);
  }
  return true;
}

} // namespace

result<void> write_flow_snapshot(const std::string& path, const flow_snapshot& snap) {
  const std::string tmp = path + ".tmp";
  ::unlink(tmp.c_str());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    return make_error(
        fmt::format("flow snapshot {}: cannot create: {}", tmp, std::strerror(errno)));
  snapshot_header h{};
  std::memcpy(h.magic, magic, sizeof(magic));
  h.version = format_version;
  h.record_size = sizeof(flow_sync_record);
  h.count = snap.records.size();
  h.n_workers = snap.n_workers;
  h.checksum = fnv1a(snap.records.data(), snap.records.size() * sizeof(flow_sync_record));
  bool ok = write_all(fd, &h, sizeof(h)) &&
            write_all(fd, snap.records.data(), snap.records.size() * sizeof(flow_sync_record)) &&
            ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = ok ? errno : err;
    ::unlink(tmp.c_str());
    return make_error(fmt::format("flow snapshot {}: cannot write: {}", path, std::strerror(e)));
  }
  return {};
}

result<flow_snapshot> read_flow_snapshot(const std::string& path) {
  flow_snapshot snap;
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT)
      return snap;
    return make_error(fmt::format("flow snapshot {}: cannot open: {}", path, std::strerror(errno)));
  }
  struct stat st {};
  snapshot_header h{};
  std::string why;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
    why = "not a regular file";
  else if (!read_all(fd, &h, sizeof(h)) || std::memcmp(h.magic, magic, sizeof(magic)) != 0)
    why = "not a flow snapshot (bad magic)";
  else if (h.version != format_version || h.record_size != sizeof(flow_sync_record))
    why = fmt::format("format version {} with {}-byte records, this build reads version {} with "
                      "{}-byte records",
                      h.version, h.record_size, format_version, sizeof(flow_sync_record));
  else if (h.count > max_records ||
           uint64_t(st.st_size) != sizeof(h) + h.count * sizeof(flow_sync_record))
    why = fmt::format("truncated or damaged: {} records announced, {} bytes in the file", h.count,
                      uint64_t(st.st_size));
  if (why.empty()) {
    snap.records.resize(h.count);
    if (!read_all(fd, snap.records.data(), h.count * sizeof(flow_sync_record)))
      why = "short read";
    else if (fnv1a(snap.records.data(), h.count * sizeof(flow_sync_record)) != h.checksum)
      why = "checksum mismatch";
  }
  ::close(fd);
  if (!why.empty())
    return make_error(fmt::format("flow snapshot {}: {}", path, why));
  snap.n_workers = h.n_workers;
  return snap;
}

} // namespace sluice::dp
