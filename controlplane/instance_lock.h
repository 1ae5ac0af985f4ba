// One control plane per instance: an exclusive flock on "SHM_PATH.lock",
// held for the life of the process (the kernel drops it when the process dies,
// however it dies, so a crash never leaves a stale lock).
#pragma once

#include <string>

#include "result.h"

namespace sluice::cp {

class instance_lock {
public:
  static result<instance_lock> acquire(const std::string& lock_path);
  instance_lock(instance_lock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  instance_lock& operator=(instance_lock&&) = delete;
  instance_lock(const instance_lock&) = delete;
  ~instance_lock();

private:
  explicit instance_lock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

} // namespace sluice::cp
