#include "ctl_drain.h"

#include <chrono>
#include <fmt/format.h>
#include <thread>

#include "ip_addr.h"

namespace sluice::ctl {

namespace {

// Active flows of the backend in a stats answer; nullopt when not found.
std::optional<uint64_t> active_of(const nlohmann::json& stats, const drain_wait& w,
                                  const std::string& addr) {
  for (const auto& s : stats.value("services", nlohmann::json::array())) {
    if (s.value("name", std::string()) != w.service)
      continue;
    std::optional<uint64_t> hit;
    for (const auto& b : s.value("backends", nlohmann::json::array())) {
      if (b.value("address", std::string()) != addr)
        continue;
      if (w.port && b.value("port", int64_t(0)) != *w.port)
        continue;
      if (!hit) // the first match: the service's port comes first in practice
        hit = b.value("active_flows", uint64_t(0));
    }
    return hit;
  }
  return std::nullopt;
}

} // namespace

result<bool> wait_drained(api_client& c, const drain_wait& w,
                          const std::function<void(uint64_t active)>& progress) {
  auto parsed = parse_ip(w.address);
  if (!parsed)
    return make_error(fmt::format("'{}' is not an IPv4 or IPv6 address", w.address));
  const std::string addr = format_ip(*parsed);
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(int64_t(w.timeout_s * 1000));
  std::optional<uint64_t> last;
  for (;;) {
    auto st = c.call({{"cmd", "stats"}});
    if (!st)
      return make_error(st.error_message());
    auto n = active_of(st.value(), w, addr);
    if (!n)
      return make_error(fmt::format("service '{}' has no backend {}", w.service, w.address));
    if (n != last && progress)
      progress(*n);
    last = n;
    if (*n == 0)
      return true;
    if (std::chrono::steady_clock::now() >= deadline)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(w.poll_ms));
  }
}

} // namespace sluice::ctl
