#include "state_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include "config_load.h"
#include "file_trust.h"
#include "input_limits.h"

namespace sluice::cp {

namespace {

error sys_error(const std::string& what, const std::string& path) {
  return make_error(fmt::format("{} {}: {}", what, path, std::strerror(errno)));
}

constexpr std::string_view trailer_tag = "# sluice-state-end bytes=";

uint64_t fnv1a64(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

} // namespace

result<void> write_file_atomic(const std::string& path, const std::string& content) {
  const std::string dir = dir_of(path);
  if (auto d = check_trusted_dir(dir); !d)
    return make_error(fmt::format("state file {}: {}", path, d.error_message()));
  const std::string tmp = fmt::format("{}.tmp.{}", path, ::getpid());
  ::unlink(tmp.c_str()); // ours, left by a crash of this pid number
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
  if (fd < 0)
    return sys_error("cannot create", tmp);
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      auto e = sys_error("cannot write", tmp);
      ::close(fd);
      ::unlink(tmp.c_str());
      return e;
    }
    done += size_t(n);
  }
  if (::fsync(fd) != 0) {
    auto e = sys_error("cannot fsync", tmp);
    ::close(fd);
    ::unlink(tmp.c_str());
    return e;
  }
  ::close(fd);
  // Keep the file being replaced as PATH.prev (a hard link: PATH itself never
  // disappears, whenever a crash happens).
  // Replaced only when PATH exists, so a fallback start (PATH refused and
  // moved aside) keeps the last good PATH.prev.
  const std::string prev = previous_state_path(path);
  const std::string prev_tmp = prev + ".tmp";
  ::unlink(prev_tmp.c_str());
  if (::link(path.c_str(), prev_tmp.c_str()) == 0 && ::rename(prev_tmp.c_str(), prev.c_str()) != 0)
    ::unlink(prev_tmp.c_str()); // best effort: the new file is still written durably
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    auto e = sys_error("cannot rename to", path);
    ::unlink(tmp.c_str());
    return e;
  }
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return sys_error("cannot open directory", dir);
  int rc = ::fsync(dfd);
  ::close(dfd);
  if (rc != 0)
    return sys_error("cannot fsync directory", dir);
  return {};
}

std::string seal_state(const std::string& yaml) {
  std::string out = yaml;
  if (!out.empty() && out.back() != '\n')
    out += '\n';
  out += fmt::format("{}{} fnv1a64={:016x}\n", trailer_tag, out.size(), fnv1a64(out));
  return out;
}

result<std::string> unseal_state(const std::string& text) {
  const auto at = text.rfind(trailer_tag);
  if (at == std::string::npos || (at > 0 && text[at - 1] != '\n'))
    return make_error("no end marker ('# sluice-state-end ...' line): the file is empty, cut "
                      "short or was not written by sluice-controlplane");
  unsigned long long bytes = 0, sum = 0;
  char nl = 0;
  const std::string line = text.substr(at);
  if (std::sscanf(line.c_str(), "# sluice-state-end bytes=%llu fnv1a64=%llx%c", &bytes, &sum,
                  &nl) != 3 ||
      nl != '\n' || at + line.find('\n') + 1 != text.size())
    return make_error("malformed end marker, or bytes after it");
  if (bytes != at)
    return make_error(fmt::format("the end marker says {} bytes, the file holds {} before it: "
                                  "cut short or edited",
                                  bytes, at));
  const std::string body = text.substr(0, at);
  if (fnv1a64(body) != sum)
    return make_error("checksum mismatch: the file was damaged or edited by hand");
  return body;
}

result<cp_config> load_state_file(const std::string& path, const abi::capacities& caps) {
  auto text = read_file_bounded(path, input_limits::max_config_bytes);
  if (!text)
    return text.err();
  auto body = unseal_state(text.value());
  if (!body)
    return make_error(fmt::format("{}: {}", path, body.error_message()));
  return load_config_text(body.value(), path, caps);
}

} // namespace sluice::cp
