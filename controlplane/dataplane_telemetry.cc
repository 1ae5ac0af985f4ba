#include "dataplane_telemetry.h"

#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <vector>

#include "shm_region.h"

namespace sluice::cp {

namespace {

// Reads one datagram within the deadline.
result<std::string> recv_one(int fd, std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  pollfd p{fd, POLLIN, 0};
  int r = poll(&p, 1, left.count() > 0 ? int(left.count()) : 0);
  if (r <= 0)
    return make_error("the dataplane's telemetry socket did not answer in time");
  std::vector<char> buf(64 * 1024);
  ssize_t n = recv(fd, buf.data(), buf.size(), 0);
  if (n <= 0)
    return make_error(fmt::format("reading the dataplane's telemetry socket: {}",
                                  n == 0 ? "closed" : std::strerror(errno)));
  return std::string(buf.data(), size_t(n));
}

} // namespace

result<nlohmann::json> query_dataplane_telemetry(const std::string& shm_path,
                                                 const std::string& command,
                                                 std::chrono::milliseconds timeout) {
  const std::string link = shm_region::telemetry_link_path(shm_path);
  char target[sizeof(sockaddr_un::sun_path)];
  ssize_t len = readlink(link.c_str(), target, sizeof(target) - 1);
  if (len <= 0)
    return make_error(fmt::format("no dataplane telemetry socket ({} missing: is "
                                  "sluice-dataplane running on this instance?)",
                                  link));
  target[len] = 0;
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return make_error(fmt::format("socket: {}", std::strerror(errno)));
  struct closer {
    int fd;
    ~closer() { close(fd); }
  } c{fd};
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, target, size_t(len) + 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
    return make_error(fmt::format("cannot connect to the dataplane's telemetry socket {}: {}",
                                  target, std::strerror(errno)));
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto greeting = recv_one(fd, deadline); // {"version": ..., "pid": ..., ...}
  if (!greeting)
    return greeting.err();
  if (send(fd, command.data(), command.size(), 0) < 0)
    return make_error(
        fmt::format("writing to the dataplane's telemetry socket: {}", std::strerror(errno)));
  auto reply = recv_one(fd, deadline);
  if (!reply)
    return reply.err();
  nlohmann::json j = nlohmann::json::parse(reply.value(), nullptr, false);
  std::string key = command.substr(0, command.find(','));
  if (j.is_discarded() || !j.is_object() || !j.contains(key))
    return make_error(
        fmt::format("unexpected telemetry reply to {}: {}", key, reply.value().substr(0, 200)));
  return j[key];
}

} // namespace sluice::cp
