#include "bgp_announcer.h"

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <fmt/format.h>
#include <map>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "publisher.h"
#include "shm_atomic.h"
#include "state_file.h"
#include "stats_reader.h"

namespace sluice::cp {

namespace {

std::optional<uint64_t> number(std::string_view s, uint64_t max) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v > max)
    return std::nullopt;
  return v;
}

std::string prefix_text(const ip_addr& a) {
  return fmt::format("{}/{}", format_ip(a), a.is_v4() ? 32 : 128);
}

size_t healthy_backends(const service_config& s) {
  size_t n = 0;
  for (const auto& b : s.backends)
    n += b.state == abi::backend_state::up && b.weight > 0 ? 1 : 0;
  return n;
}

// Whether service i qualifies on its own, and why (or why not).
std::pair<bool, std::string> qualifies(const named_service& s, const service_config& eff,
                                       const serving_state& serving) {
  if (s.announce == announce_policy::never)
    return {false, "announce never"};
  if (!serving.serving())
    return {false, serving.reason};
  if (s.announce == announce_policy::always)
    return {true, "announce always"};
  const size_t healthy = healthy_backends(eff);
  if (healthy >= s.quorum)
    return {true, fmt::format("{} healthy, quorum {}", healthy, s.quorum)};
  return {false, fmt::format("{} healthy of quorum {}", healthy, s.quorum)};
}

} // namespace

result<bgp_neighbor> parse_neighbor(const std::string& s) {
  auto comma = s.find(',');
  if (comma == std::string::npos)
    return make_error(fmt::format("--bgp-neighbor: expected ADDR,AS, got '{}'", s));
  auto a = parse_ip(s.substr(0, comma));
  auto as = number(std::string_view(s).substr(comma + 1), 0xffffffffull);
  if (!a)
    return make_error(fmt::format("--bgp-neighbor: '{}' is not an IP address", s.substr(0, comma)));
  if (!as || *as == 0)
    return make_error(
        fmt::format("--bgp-neighbor: AS must be 1..4294967295, got '{}'", s.substr(comma + 1)));
  return bgp_neighbor{*a, uint32_t(*as)};
}

result<std::pair<uint16_t, uint16_t>> parse_community(const std::string& s) {
  auto colon = s.find(':');
  auto hi = number(std::string_view(s).substr(0, colon), 65535);
  auto lo = colon == std::string::npos ? std::nullopt
                                       : number(std::string_view(s).substr(colon + 1), 65535);
  if (!hi || !lo)
    return make_error(fmt::format("--bgp-community: expected HI:LO (0..65535 each), got '{}'", s));
  return std::pair{uint16_t(*hi), uint16_t(*lo)};
}

result<void> validate_bgp_options(const bgp_options& o) {
  if (o.include_file.empty()) {
    if (!o.neighbors.empty() || o.med >= 0 || o.prepend || !o.communities.empty())
      return make_error("--bgp-neighbor/--bgp-med/--bgp-prepend/--bgp-community need "
                        "--bgp-include FILE");
    return {};
  }
  if ((!o.neighbors.empty() || o.prepend) && o.local_as == 0)
    return make_error("--bgp-local-as is required with --bgp-neighbor or --bgp-prepend");
  if (o.med > 0xffffffffll)
    return make_error(fmt::format("--bgp-med must be 0..4294967295, got {}", o.med));
  if (o.prepend > 8)
    return make_error(fmt::format("--bgp-prepend must be 0..8, got {}", o.prepend));
  if (o.bfd_interval_ms < 10 || o.bfd_interval_ms > 10000)
    return make_error(
        fmt::format("--bfd-interval-ms must be 10..10000, got {}", o.bfd_interval_ms));
  if (o.bfd_multiplier < 2 || o.bfd_multiplier > 255)
    return make_error(fmt::format("--bfd-multiplier must be 2..255, got {}", o.bfd_multiplier));
  if (o.hold_time_s != 0 && (o.hold_time_s < 3 || o.hold_time_s > 65535))
    return make_error(fmt::format("--bgp-hold-time must be 3..65535, got {}", o.hold_time_s));
  return {};
}

void check_dataplane(const shm_region& region, uint32_t max_age_ms, serving_state& s) {
  s.dataplane = false;
  const uint64_t now = monotonic_ns(), max_age = uint64_t(max_age_ms) * 1'000'000;
  auto stale = [&](uint64_t hb) { return hb != 0 && now > hb && now - hb > max_age; };
  if (!dataplane_alive(region)) {
    s.reason = "dataplane not running";
    return;
  }
  const auto* h = region.header();
  if (stale(load_acquire(h->procs.dp_heartbeat_ns))) {
    s.reason = "dataplane heartbeat stale";
    return;
  }
  uint32_t live = 0;
  for (uint32_t w = 0; w < region.caps().max_workers; ++w) {
    const auto* ack = region.worker_ack(w);
    if (!load_acquire(ack->live))
      continue;
    if (stale(load_acquire(ack->heartbeat_ns))) {
      s.reason = fmt::format("worker {} heartbeat stale", w);
      return;
    }
    ++live;
  }
  if (live == 0) {
    s.reason = "no dataplane worker running";
    return;
  }
  s.dataplane = true;
  s.reason.clear();
}

std::vector<route_reason> wanted_routes(const cp_config& config,
                                        const std::vector<service_config>& effective,
                                        const serving_state& serving,
                                        const std::vector<ip_addr>& nat_pool) {
  std::vector<route_reason> out;
  std::map<ip_addr, size_t> at; // VIP -> index in out
  bool nat_announced = false;
  for (size_t i = 0; i < config.services.size() && i < effective.size(); ++i) {
    const auto& s = config.services[i];
    auto [ok, why] = qualifies(s, effective[i], serving);
    auto [it, fresh] = at.emplace(s.cfg.vip, out.size());
    if (fresh)
      out.push_back({s.cfg.vip, false, "", {}});
    auto& r = out[it->second];
    r.announced = r.announced || ok;
    r.why += fmt::format("{}{}: {}", r.why.empty() ? "" : "; ", s.name, why);
    r.services.push_back(s.name);
    nat_announced = nat_announced || (ok && s.cfg.mode == abi::fwd_mode::nat);
  }
  for (const auto& a : nat_pool) {
    if (at.count(a))
      continue; // already there as a VIP
    at.emplace(a, out.size());
    out.push_back({a,
                   nat_announced,
                   nat_announced ? "NAT pool: a nat service is announced"
                                 : "NAT pool: no nat service announced",
                   {}});
  }
  return out;
}

std::string render_bird_include(const bgp_options& o, const std::string& instance,
                                const std::vector<route_reason>& routes) {
  std::string t = fmt::format("# Generated by sluice-controlplane for instance '{}': rewritten on "
                              "every change, do not edit.\n"
                              "# Include it from bird.conf (docs/high-availability.md).\n\n",
                              instance);
  t += "filter sluice_export {\n"
       "  if proto != \"sluice_vips4\" && proto != \"sluice_vips6\" then reject;\n";
  if (o.med >= 0)
    t += fmt::format("  bgp_med = {};\n", o.med);
  for (uint32_t i = 0; i < o.prepend; ++i)
    t += fmt::format("  bgp_path.prepend({});\n", o.local_as);
  for (auto [hi, lo] : o.communities)
    t += fmt::format("  bgp_community.add(({}, {}));\n", hi, lo);
  t += "  accept;\n}\n\n";
  for (bool v4 : {true, false}) {
    t += fmt::format("protocol static sluice_vips{} {{\n  {};\n", v4 ? 4 : 6, v4 ? "ipv4" : "ipv6");
    for (const auto& r : routes)
      if (r.announced && r.prefix.is_v4() == v4)
        t += fmt::format("  route {} blackhole;\n", prefix_text(r.prefix));
    t += "}\n\n";
  }
  if (o.neighbors.empty())
    return t;
  if (o.bfd)
    t += fmt::format("protocol bfd sluice_bfd {{\n  interface \"*\" {{\n"
                     "    min rx interval {} ms;\n    min tx interval {} ms;\n"
                     "    multiplier {};\n  }};\n}}\n\n",
                     o.bfd_interval_ms, o.bfd_interval_ms, o.bfd_multiplier);
  for (size_t i = 0; i < o.neighbors.size(); ++i) {
    const auto& n = o.neighbors[i];
    t += fmt::format("protocol bgp sluice_peer{} {{\n  local as {};\n  neighbor {} as {};\n", i + 1,
                     o.local_as, format_ip(n.address), n.as);
    if (o.hold_time_s)
      t += fmt::format("  hold time {};\n", o.hold_time_s);
    // Reconnect quickly after a restart of either side instead of BIRD's
    // default 120 s retry.
    t += "  connect delay time 1;\n  connect retry time 5;\n  error wait time 1, 10;\n";
    if (o.bfd)
      t += "  bfd on;\n";
    t += fmt::format("  {} {{\n    import none;\n    export filter sluice_export;\n"
                     "    next hop self;\n  }};\n}}\n\n",
                     n.address.is_v4() ? "ipv4" : "ipv6");
  }
  return t;
}

result<std::string> bird_command(const std::string& socket, const std::string& command,
                                 int timeout_ms) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (socket.size() >= sizeof sa.sun_path)
    return make_error(fmt::format("BIRD socket path too long: {}", socket));
  std::memcpy(sa.sun_path, socket.c_str(), socket.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return make_error(fmt::format("socket: {}", std::strerror(errno)));
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    auto e = make_error(fmt::format("cannot reach BIRD on {}: {} (is bird running with -s {}?)",
                                    socket, std::strerror(errno), socket));
    ::close(fd);
    return e;
  }
  std::string buf;
  // One reply: lines "NNNN-text" / " text" continue it, "NNNN text" ends it.
  auto read_reply = [&]() -> result<std::string> {
    std::string reply;
    for (;;) {
      auto nl = buf.find('\n');
      if (nl == std::string::npos) {
        char chunk[4096];
        ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
        if (n <= 0)
          return make_error(fmt::format("BIRD on {}: {}", socket,
                                        n == 0 ? "connection closed" : std::strerror(errno)));
        buf.append(chunk, size_t(n));
        continue;
      }
      std::string line = buf.substr(0, nl);
      buf.erase(0, nl + 1);
      reply += line + "\n";
      if (line.size() >= 5 && std::isdigit(uint8_t(line[0])) && line[4] == ' ') {
        if (line[0] >= '8')
          return make_error(fmt::format("BIRD: {}", line.substr(5)));
        return reply;
      }
    }
  };
  auto hello = read_reply();
  if (!hello) {
    ::close(fd);
    return hello.err();
  }
  std::string cmd = command + "\n";
  if (::send(fd, cmd.data(), cmd.size(), MSG_NOSIGNAL) != ssize_t(cmd.size())) {
    ::close(fd);
    return make_error(fmt::format("BIRD on {}: send: {}", socket, std::strerror(errno)));
  }
  auto r = read_reply();
  ::close(fd);
  return r;
}

bgp_announcer::bgp_announcer(bgp_options o, std::string instance, log_fn log)
    : opts_(std::move(o)), instance_(std::move(instance)), log_(std::move(log)) {}

result<void> bgp_announcer::write_and_reload(const std::string& text) {
  const int64_t t0 = int64_t(monotonic_ns());
  last_attempt_ns_ = t0;
  if (auto w = write_file_atomic(opts_.include_file, text); !w)
    return w;
  auto r = bird_command(opts_.bird_socket, "configure");
  last_reload_ms_ = double(int64_t(monotonic_ns()) - t0) / 1e6;
  if (!r)
    return r.err();
  written_ = text;
  ++reloads_;
  return {};
}

void bgp_announcer::update(const cp_config& config, const std::vector<service_config>& effective,
                           const serving_state& serving, const std::vector<ip_addr>& nat_pool) {
  if (!enabled())
    return;
  auto next = wanted_routes(config, effective, serving, nat_pool);
  if (serving.serving() != serving_.serving() || serving.reason != serving_.reason)
    log_(serving.serving() ? "BGP: instance serving again"
                           : fmt::format("BGP: instance not serving: {}", serving.reason));
  serving_ = serving;
  std::string text = render_bird_include(opts_, instance_, next);
  const bool changed = text != written_;
  if (changed) {
    for (const auto& r : next) {
      bool before = false;
      for (const auto& o : routes_)
        if (o.prefix == r.prefix)
          before = o.announced;
      if (before != r.announced)
        log_(fmt::format("BGP: {} {} ({})", r.announced ? "announce" : "withdraw",
                         prefix_text(r.prefix), r.why));
    }
  }
  routes_ = std::move(next);
  if (!changed)
    return;
  const bool retry_due = int64_t(monotonic_ns()) - last_attempt_ns_ >= 1'000'000'000;
  if (!last_error_.empty() && !retry_due)
    return;
  if (auto r = write_and_reload(text); !r) {
    if (last_error_ != r.error_message())
      log_(fmt::format("BGP: {} (retrying every second)", r.error_message()));
    last_error_ = r.error_message();
    ++failures_;
  } else {
    if (!last_error_.empty())
      log_("BGP: BIRD reloaded again");
    last_error_.clear();
  }
}

result<void> bgp_announcer::withdraw_all() {
  if (!enabled())
    return {};
  for (auto& r : routes_) {
    r.announced = false;
    r.why = "stopping";
  }
  serving_.stopping = true;
  serving_.reason = "stopping";
  auto r = write_and_reload(render_bird_include(opts_, instance_, routes_));
  if (!r)
    ++failures_;
  return r;
}

nlohmann::json bgp_announcer::status() const {
  nlohmann::json routes = nlohmann::json::array();
  for (const auto& r : routes_)
    routes.push_back({{"prefix", prefix_text(r.prefix)},
                      {"announced", r.announced},
                      {"why", r.why},
                      {"services", r.services}});
  return {{"enabled", enabled()},
          {"include_file", opts_.include_file},
          {"bird_socket", opts_.bird_socket},
          {"serving", serving_.serving()},
          {"drained", serving_.drained},
          {"not_serving_reason", serving_.reason},
          {"routes", routes},
          {"reloads", reloads_},
          {"reload_failures", failures_},
          {"last_reload_ms", last_reload_ms_},
          {"last_error", last_error_},
          {"med", opts_.med},
          {"prepend", opts_.prepend},
          {"neighbors", opts_.neighbors.size()},
          {"bfd", opts_.bfd && !opts_.neighbors.empty()}};
}

} // namespace sluice::cp
