#include "instance_lock.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include "file_trust.h"

namespace sluice::cp {

result<instance_lock> instance_lock::acquire(const std::string& lock_path) {
  // The lock lives next to the shared memory, often in /dev/shm (world-
  // writable, sticky): O_NOFOLLOW so a planted symlink cannot make root
  // truncate another file, and the file must be ours.
  if (auto d = check_trusted_dir(dir_of(lock_path)); !d)
    return make_error(fmt::format("lock file {}: {}", lock_path, d.error_message()));
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0660);
  if (fd < 0)
    return make_error(
        fmt::format("cannot open lock file {}: {}", lock_path,
                    errno == ELOOP ? "it is a symbolic link (remove it)" : std::strerror(errno)));
  if (auto t = check_owned_file(fd, lock_path); !t) {
    ::close(fd);
    return make_error("lock file " + t.error_message());
  }
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
