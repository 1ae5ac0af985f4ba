// Unique shared-memory paths for tests, removed when the guard goes away.
#pragma once

#include <atomic>
#include <string>
#include <unistd.h>

namespace sluice::test {

struct temp_shm_path {
  std::string path;
  explicit temp_shm_path(const std::string& tag) {
    static std::atomic<unsigned> counter{0};
    path = "/dev/shm/sluice-unittest-" + std::to_string(::getpid()) + "-" +
           std::to_string(counter++) + "-" + tag;
    ::unlink(path.c_str());
  }
  ~temp_shm_path() { ::unlink(path.c_str()); }
  temp_shm_path(const temp_shm_path&) = delete;
  temp_shm_path& operator=(const temp_shm_path&) = delete;
};

inline bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

} // namespace sluice::test
