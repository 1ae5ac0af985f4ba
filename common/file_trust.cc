#include "file_trust.h"

#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

namespace sluice {

std::string dir_of(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos)
    return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

result<void> check_trusted_dir(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0)
    return make_error(fmt::format("{}: {}", dir, std::strerror(errno)));
  if (!S_ISDIR(st.st_mode))
    return make_error(fmt::format("{}: not a directory", dir));
  if (st.st_uid != 0 && st.st_uid != ::geteuid())
    return make_error(fmt::format("directory {} is owned by uid {}, not by root or uid {}: "
                                  "another user could replace files in it",
                                  dir, st.st_uid, ::geteuid()));
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))
    return make_error(fmt::format("directory {} is writable by group or others (mode {:o}) "
                                  "without the sticky bit: chmod go-w {}",
                                  dir, st.st_mode & 07777, dir));
  return {};
}

result<void> check_owned_file(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0)
    return make_error(fmt::format("{}: fstat: {}", path, std::strerror(errno)));
  if (!S_ISREG(st.st_mode))
    return make_error(fmt::format("{}: not a regular file", path));
  if (st.st_uid != ::geteuid())
    return make_error(fmt::format("{} is owned by uid {}, not by this process's uid {}: another "
                                  "user created it; remove it if it is not yours",
                                  path, st.st_uid, ::geteuid()));
  if (st.st_mode & S_IWOTH)
    return make_error(fmt::format("{} is writable by others (mode {:o}): refused; remove it", path,
                                  st.st_mode & 07777));
  return {};
}

} // namespace sluice
