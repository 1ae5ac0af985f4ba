#include "instance_lock.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

namespace sluice::cp {

result<instance_lock> instance_lock::acquire(const std::string& lock_path) {
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0660);
  if (fd < 0)
    return make_error(fmt::format("cannot open lock file {}: {}", lock_path, std::strerror(errno)));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    std::string holder;
    char buf[32] = {};
    if (::pread(fd, buf, sizeof buf - 1, 0) > 0)
      holder = fmt::format(" (pid {})", std::string(buf).substr(0, std::string(buf).find('\n')));
    ::close(fd);
    if (e == EWOULDBLOCK)
      return make_error(fmt::format("another control plane{} already runs this instance (lock {} "
                                    "is held)",
                                    holder, lock_path));
    return make_error(fmt::format("cannot lock {}: {}", lock_path, std::strerror(e)));
  }
  const std::string pid = fmt::format("{}\n", ::getpid());
  if (::ftruncate(fd, 0) == 0 && ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    // The pid is only informational.
  }
  return instance_lock(fd);
}

instance_lock::~instance_lock() {
  if (fd_ >= 0)
    ::close(fd_);
}

} // namespace sluice::cp
