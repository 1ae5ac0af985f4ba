// Creation, attachment and validation of the shared-memory object. Creation is
// race-free between the two processes: O_EXCL decides who creates, and the
// creator store-releases `magic` only after the header and the empty
// generation-0 table are complete, so an attacher that load-acquires a valid
// magic sees a fully initialised object.
#include "shm_region.h"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <thread>
#include <unistd.h>

#include "file_trust.h"
#include "shm_atomic.h"

namespace sluice {

namespace {

constexpr uint64_t huge_page_2m = 2ull << 20;
// How long an attacher waits for a concurrently starting creator to finish.
constexpr auto init_wait = std::chrono::milliseconds(2000);

std::string errno_text(int e) {
  return std::strerror(e);
}

bool fd_on_hugetlbfs(int fd) {
  struct statfs st {};
  return fstatfs(fd, &st) == 0 && st.f_type == HUGETLBFS_MAGIC;
}

// Size of the file and of the mapping: hugetlbfs only accepts whole huge pages.
uint64_t mapping_size(uint64_t total_size, bool huge) {
  return huge ? abi::align_up(total_size, huge_page_2m) : total_size;
}

error mismatch(const std::string& path, const char* field, uint64_t expected, uint64_t got) {
  return make_error(fmt::format("shared memory {}: {} expected {}, got {} (built from a "
                                "different Sluice version?)",
                                path, field, expected, got));
}

result<void> check_caps(const std::string& path, const abi::capacities& c) {
  if (c.max_services == 0 || c.max_backends == 0 || c.lookup_entries == 0 || c.max_workers == 0)
    return make_error(fmt::format("shared memory {}: every capacity must be > 0 (services {}, "
                                  "backends {}, lookup entries {}, workers {})",
                                  path, c.max_services, c.max_backends, c.lookup_entries,
                                  c.max_workers));
  // backend_entry::service is 16 bits wide.
  if (c.max_services > 65535)
    return make_error(
        fmt::format("shared memory {}: max_services {} exceeds 65535", path, c.max_services));
  return {};
}

// Everything in the header that must agree with what this build computes from
// the header's own capacities. `expected_caps` (create_or_attach) additionally
// pins the capacities.
result<void> validate_header(const std::string& path, const abi::shm_header& h,
                             const abi::capacities* expected_caps, uint64_t file_size) {
  const uint64_t magic = load_acquire(h.magic);
  if (magic != abi::magic)
    return make_error(fmt::format("shared memory {}: magic expected {:#x}, got {:#x} (not a "
                                  "Sluice object, or a corrupted one)",
                                  path, abi::magic, magic));
  if (h.version_major != abi::version_major)
    return mismatch(path, "version_major", abi::version_major, h.version_major);
  if (h.header_size != sizeof(abi::shm_header))
    return mismatch(path, "header_size", sizeof(abi::shm_header), h.header_size);
  if (expected_caps) {
    auto cap = [&](const char* name, uint32_t want, uint32_t got) -> result<void> {
      if (want == got)
        return {};
      return make_error(fmt::format("shared memory {}: {} expected {}, got {} (the object was "
                                    "created with other capacities; stop both processes and "
                                    "remove {} to recreate it)",
                                    path, name, want, got, path));
    };
    const abi::capacities& e = *expected_caps;
    if (auto r = cap("max_services", e.max_services, h.caps.max_services); !r)
      return r;
    if (auto r = cap("max_backends", e.max_backends, h.caps.max_backends); !r)
      return r;
    if (auto r = cap("lookup_entries", e.lookup_entries, h.caps.lookup_entries); !r)
      return r;
    if (auto r = cap("max_workers", e.max_workers, h.caps.max_workers); !r)
      return r;
  }
  if (auto r = check_caps(path, h.caps); !r)
    return r;
  const abi::layout l = abi::compute_layout(h.caps);
  struct field {
    const char* name;
    uint64_t expected;
    uint64_t got;
  };
  const field fields[] = {
      {"total_size", l.total_size, h.total_size},
      {"service_entry_size", sizeof(abi::service_entry), h.service_entry_size},
      {"backend_entry_size", sizeof(abi::backend_entry), h.backend_entry_size},
      {"vip_entry_size", sizeof(abi::vip_index_entry), h.vip_entry_size},
      {"slot_header_size", sizeof(abi::slot_header), h.slot_header_size},
      {"worker_stats_size", l.worker_stats_size, h.worker_stats_size},
      {"drop_reasons", drop_reason_count, h.drop_reasons},
      {"worker_counters", worker_counter_count, h.worker_counters},
      {"slot_offset[0]", l.slot_offset[0], h.slot_offset[0]},
      {"slot_offset[1]", l.slot_offset[1], h.slot_offset[1]},
      {"slot_size", l.slot_size, h.slot_size},
      {"worker_ack_offset", l.worker_ack_offset, h.worker_ack_offset},
      {"stats_offset", l.stats_offset, h.stats_offset},
      {"soft_offset", l.soft_offset, h.soft_offset},
      {"vip_index_capacity", l.vip_index_capacity, h.vip_index_capacity},
  };
  for (const field& f : fields)
    if (f.expected != f.got)
      return mismatch(path, f.name, f.expected, f.got);
  if (file_size < l.total_size)
    return make_error(fmt::format("shared memory {}: file size {} is smaller than the "
                                  "layout's total_size {} (truncated object?)",
                                  path, file_size, l.total_size));
  return {};
}

void fill_header(abi::shm_header& h, const abi::capacities& c, const abi::layout& l) {
  h.version_major = abi::version_major;
  h.version_minor = abi::version_minor;
  h.header_size = sizeof(abi::shm_header);
  h.total_size = l.total_size;
  h.caps = c;
  h.service_entry_size = sizeof(abi::service_entry);
  h.backend_entry_size = sizeof(abi::backend_entry);
  h.vip_entry_size = sizeof(abi::vip_index_entry);
  h.slot_header_size = sizeof(abi::slot_header);
  h.worker_stats_size = uint32_t(l.worker_stats_size);
  h.drop_reasons = uint32_t(drop_reason_count);
  h.slot_offset[0] = l.slot_offset[0];
  h.slot_offset[1] = l.slot_offset[1];
  h.slot_size = l.slot_size;
  h.worker_ack_offset = l.worker_ack_offset;
  h.stats_offset = l.stats_offset;
  h.soft_offset = l.soft_offset;
  h.worker_counters = uint32_t(worker_counter_count);
  h.vip_index_capacity = uint32_t(l.vip_index_capacity);
  h.generation = 0;
}

struct fd_guard {
  int fd;
  ~fd_guard() {
    if (fd >= 0)
      ::close(fd);
  }
};

} // namespace

shm_region::shm_region(shm_region&& o) noexcept
    : path_(std::move(o.path_)), base_(o.base_), size_(o.size_), layout_(o.layout_),
      created_(o.created_) {
  o.base_ = nullptr;
  o.size_ = 0;
}

shm_region& shm_region::operator=(shm_region&& o) noexcept {
  if (this != &o) {
    if (base_)
      ::munmap(base_, size_);
    path_ = std::move(o.path_);
    base_ = o.base_;
    size_ = o.size_;
    layout_ = o.layout_;
    created_ = o.created_;
    o.base_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

shm_region::~shm_region() {
  if (base_)
    ::munmap(base_, size_);
}

namespace {

// Maps an existing object and validates it. Waits up to init_wait for a creator
// that is still initialising (file too short or magic not yet published).
struct mapping {
  uint8_t* base;
  uint64_t size;
  abi::layout lay;
};

result<mapping> attach_existing(const std::string& path, const abi::capacities* expected) {
  abi::layout lay{};
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return make_error(fmt::format("shared memory {}: cannot open: {}", path,
                                  errno == ELOOP ? "it is a symbolic link" : errno_text(errno)));
  fd_guard guard{fd};
  // An object another user created (or anyone may write) could carry forged
  // tables: refused, whoever we are.
  if (auto t = check_owned_file(fd, path); !t)
    return make_error(fmt::format("shared memory {}", t.error_message()));
  const bool huge = fd_on_hugetlbfs(fd);
  const auto deadline = std::chrono::steady_clock::now() + init_wait;

  // 1. Wait for the creator's ftruncate and magic, looking only at the header.
  const uint64_t header_map = huge ? huge_page_2m : 4096;
  uint64_t file_size = 0;
  for (;;) {
    struct stat st {};
    if (fstat(fd, &st) != 0)
      return make_error(fmt::format("shared memory {}: fstat: {}", path, errno_text(errno)));
    file_size = uint64_t(st.st_size);
    if (file_size >= header_map) {
      void* p = ::mmap(nullptr, header_map, PROT_READ, MAP_SHARED, fd, 0);
      if (p == MAP_FAILED)
        return make_error(
            fmt::format("shared memory {}: mmap header: {}", path, errno_text(errno)));
      const auto* h = static_cast<const abi::shm_header*>(p);
      const uint64_t m = load_acquire(h->magic);
      abi::shm_header copy;
      std::memcpy(&copy, h, sizeof(copy));
      ::munmap(p, header_map);
      if (m != 0) {
        if (auto r = validate_header(path, copy, expected, file_size); !r)
          return r.err();
        lay = abi::compute_layout(copy.caps);
        break;
      }
    }
    if (std::chrono::steady_clock::now() >= deadline)
      return make_error(fmt::format("shared memory {}: not initialised after {} ms (file size "
                                    "{}, magic 0): its creator died while initialising it? "
                                    "Remove {} and restart",
                                    path, init_wait.count(), file_size, path));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

  // 2. Map the whole object.
  const uint64_t size = mapping_size(lay.total_size, huge);
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED)
    return make_error(
        fmt::format("shared memory {}: mmap {} bytes: {}", path, size, errno_text(errno)));
  return mapping{static_cast<uint8_t*>(p), size, lay};
}

} // namespace

result<shm_region> shm_region::create_or_attach(const std::string& path,
                                                const abi::capacities& caps) {
  if (auto r = check_caps(path, caps); !r)
    return r.err();
  shm_region region;
  region.path_ = path;
  int fd = ::open(path.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0660);
  if (fd < 0) {
    if (errno != EEXIST)
      return make_error(
          fmt::format("shared memory {}: cannot create: {}", path, errno_text(errno)));
    auto m = attach_existing(path, &caps);
    if (!m)
      return m.err();
    region.base_ = m->base;
    region.size_ = m->size;
    region.layout_ = m->lay;
    region.created_ = false;
    return region;
  }
  fd_guard guard{fd};
  auto fail = [&](const char* what) -> error {
    int e = errno;
    ::unlink(path.c_str());
    return make_error(fmt::format("shared memory {}: {}: {}", path, what, errno_text(e)));
  };
  const abi::layout l = abi::compute_layout(caps);
  const uint64_t size = mapping_size(l.total_size, fd_on_hugetlbfs(fd));
  if (::ftruncate(fd, off_t(size)) != 0)
    return fail("ftruncate");
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED)
    return fail("mmap");
  region.base_ = static_cast<uint8_t*>(p);
  region.size_ = size;
  region.layout_ = l;
  region.created_ = true;

  // The kernel zero-fills the new object: only non-zero fields are written.
  abi::shm_header& h = *region.header();
  fill_header(h, caps, l);
  for (unsigned s = 0; s < 2; ++s) {
    abi::slot_header* sh = region.slot_header(s);
    sh->generation = 0;
    sh->vip_index_mask = uint32_t(l.vip_index_capacity - 1);
  }
  store_release(h.magic, abi::magic); // last: publishes the initialised object
  return region;
}

result<shm_region> shm_region::attach(const std::string& path) {
  shm_region region;
  region.path_ = path;
  region.created_ = false;
  if (::access(path.c_str(), F_OK) != 0)
    return make_error(fmt::format("shared memory {} does not exist (start sluice-dataplane or "
                                  "sluice-controlplane first)",
                                  path));
  auto m = attach_existing(path, nullptr);
  if (!m)
    return m.err();
  region.base_ = m->base;
  region.size_ = m->size;
  region.layout_ = m->lay;
  return region;
}

std::string shm_region::default_path(const std::string& instance) {
  struct statfs st {};
  if (::statfs("/dev/hugepages", &st) == 0 && st.f_type == HUGETLBFS_MAGIC &&
      ::access("/dev/hugepages", W_OK) == 0)
    return "/dev/hugepages/sluice-" + instance;
  return "/dev/shm/sluice-" + instance;
}

std::string shm_region::telemetry_link_path(const std::string& shm_path) {
  const auto slash = shm_path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : shm_path.substr(0, slash + 1);
  struct statfs st {};
  if (::statfs(dir.c_str(), &st) == 0 && st.f_type == HUGETLBFS_MAGIC)
    return "/run/sluice/" + shm_path.substr(slash + 1) + ".telemetry";
  return shm_path + ".telemetry";
}

} // namespace sluice
