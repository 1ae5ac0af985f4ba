// publish_tables: publishes a service set into an instance's shared memory, the
// way the control plane will, so the dataplane can be tested before the control
// plane exists. Each --service starts a service; the --backend options after it
// belong to it.
//
//   publish_tables --shm-path /dev/shm/sluice-test
//       --service tcp:192.0.2.10:80:dsr-ipip --backend 10.0.0.11:80:1
//       --service udp:[2001:db8::10]:53:dsr-ipip --backend [fd00:10::11]:53
//
// --timeout-fin S sets every service's FIN/RST timeout (default 120 s).
//
// Service: PROTO:VIP:PORT:MODE (PROTO tcp|udp; MODE nat|dnat|dsr-l2|dsr-ipip|
// dsr-gue; IPv6 VIPs in brackets). Backend: ADDR[:PORT[:WEIGHT]] (PORT 0 or
// omitted = the service's port, WEIGHT default 1). Exit 0 and "generation N" on
// success, 2 for a bad argument, 1 when publishing fails.
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "publisher.h"
#include "service_config.h"
#include "shm_region.h"

namespace {

using namespace sluice;

[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "publish_tables: %s\n", msg.c_str());
  std::exit(2);
}

std::optional<uint32_t> to_uint(std::string_view s, uint32_t max) {
  uint32_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v > max)
    return std::nullopt;
  return v;
}

// Splits "ADDR:rest" where ADDR may be "[v6]"; returns {addr, rest}.
std::optional<std::pair<std::string_view, std::string_view>> split_addr(std::string_view s) {
  if (!s.empty() && s.front() == '[') {
    auto close = s.find(']');
    if (close == std::string_view::npos)
      return std::nullopt;
    auto rest = s.substr(close + 1);
    if (!rest.empty() && rest.front() == ':')
      rest.remove_prefix(1);
    return std::pair{s.substr(1, close - 1), rest};
  }
  auto colon = s.find(':');
  if (colon == std::string_view::npos)
    return std::pair{s, std::string_view{}};
  return std::pair{s.substr(0, colon), s.substr(colon + 1)};
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  if (s.empty())
    return out;
  size_t start = 0;
  for (;;) {
    auto pos = s.find(sep, start);
    out.push_back(s.substr(start, pos - start));
    if (pos == std::string_view::npos)
      return out;
    start = pos + 1;
  }
}

std::optional<abi::fwd_mode> parse_mode(std::string_view m) {
  if (m == "nat")
    return abi::fwd_mode::nat;
  if (m == "dnat")
    return abi::fwd_mode::dnat;
  if (m == "dsr-l2")
    return abi::fwd_mode::dsr_l2;
  if (m == "dsr-ipip")
    return abi::fwd_mode::dsr_ipip;
  if (m == "dsr-gue")
    return abi::fwd_mode::dsr_gue;
  return std::nullopt;
}

service_config parse_service(std::string_view text) {
  auto bad = [&] {
    usage_error("--service: expected PROTO:VIP:PORT:MODE, e.g. tcp:192.0.2.10:80:dsr-ipip (got '" +
                std::string(text) + "')");
  };
  service_config s;
  auto colon = text.find(':');
  if (colon == std::string_view::npos)
    bad();
  auto proto = text.substr(0, colon);
  if (proto == "tcp")
    s.proto = 6;
  else if (proto == "udp")
    s.proto = 17;
  else
    bad();
  auto a = split_addr(text.substr(colon + 1));
  if (!a)
    bad();
  auto vip = parse_ip(a->first);
  auto parts = split(a->second, ':');
  if (!vip || parts.size() != 2)
    bad();
  auto port = to_uint(parts[0], 65535);
  auto mode = parse_mode(parts[1]);
  if (!port || *port == 0 || !mode)
    bad();
  s.vip = *vip;
  s.port = uint16_t(*port);
  s.mode = *mode;
  return s;
}

backend_config parse_backend(std::string_view text) {
  auto bad = [&] {
    usage_error("--backend: expected ADDR[:PORT[:WEIGHT]], e.g. 10.0.0.11:80:1 (got '" +
                std::string(text) + "')");
  };
  backend_config b;
  auto a = split_addr(text);
  if (!a)
    bad();
  auto addr = parse_ip(a->first);
  if (!addr)
    bad();
  b.addr = *addr;
  auto parts = split(a->second, ':');
  if (parts.size() > 2)
    bad();
  if (parts.size() >= 1) {
    auto port = to_uint(parts[0], 65535);
    if (!port)
      bad();
    b.port = uint16_t(*port);
  }
  if (parts.size() == 2) {
    auto weight = to_uint(parts[1], 65535);
    if (!weight)
      bad();
    b.weight = uint16_t(*weight);
  }
  return b;
}

} // namespace

int main(int argc, char** argv) {
  std::string path;
  std::vector<service_config> services;
  uint32_t timeout_ms = 2000;
  uint32_t fin_timeout_s = 0; // 0: the default of service_config
  std::optional<abi::synproxy_mode> synproxy;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto value = [&]() -> std::string_view {
      if (i + 1 >= argc)
        usage_error(std::string(arg) + ": missing value");
      return argv[++i];
    };
    if (arg == "--shm-path") {
      path = value();
    } else if (arg == "--instance") {
      path = shm_region::default_path(std::string(value()));
    } else if (arg == "--service") {
      services.push_back(parse_service(value()));
    } else if (arg == "--backend") {
      auto b = parse_backend(value());
      if (services.empty())
        usage_error("--backend: must follow a --service");
      services.back().backends.push_back(b);
    } else if (arg == "--timeout-fin") {
      // Closed TCP flows keep their NAT port until this expires: load tests
      // of full-NAT connection rates shorten it (sluice-pktgen churn).
      auto v = to_uint(value(), 86400);
      if (!v || *v == 0)
        usage_error("--timeout-fin: expected seconds, 1..86400");
      fin_timeout_s = *v;
    } else if (arg == "--synproxy") {
      // SYN cookies for every TCP nat/dnat service (flood benchmarks).
      auto v = value();
      if (v == "off")
        synproxy = abi::synproxy_mode::off;
      else if (v == "on")
        synproxy = abi::synproxy_mode::on;
      else if (v == "auto")
        synproxy = abi::synproxy_mode::automatic;
      else
        usage_error("--synproxy: expected off, on or auto");
    } else if (arg == "--ack-timeout-ms") {
      auto v = to_uint(value(), 600000);
      if (!v)
        usage_error("--ack-timeout-ms: expected milliseconds");
      timeout_ms = *v;
    } else if (arg == "--help" || arg == "-h") {
      std::printf("usage: publish_tables (--shm-path PATH | --instance NAME) "
                  "[--service PROTO:VIP:PORT:MODE [--backend ADDR[:PORT[:WEIGHT]]]...]... "
                  "[--timeout-fin S] [--synproxy off|on|auto] [--ack-timeout-ms N]\n");
      return 0;
    } else {
      usage_error("unknown option '" + std::string(arg) + "'");
    }
  }
  if (path.empty())
    usage_error("--shm-path or --instance is required");

  auto region = shm_region::create_or_attach(path, abi::default_capacities);
  if (!region) {
    std::fprintf(stderr, "publish_tables: %s: %s\n", path.c_str(), region.error_message().c_str());
    return 1;
  }
  if (fin_timeout_s)
    for (auto& s : services)
      s.timeouts.fin_s = fin_timeout_s;
  if (synproxy)
    for (auto& s : services)
      if (s.proto == 6 && (s.mode == abi::fwd_mode::nat || s.mode == abi::fwd_mode::dnat))
        s.defence.synproxy = *synproxy;
  publisher pub(region.value());
  auto gen = pub.publish(services, std::chrono::milliseconds(timeout_ms));
  if (!gen) {
    std::fprintf(stderr, "publish_tables: %s\n", gen.error_message().c_str());
    return 1;
  }
  std::printf("generation %llu\n", static_cast<unsigned long long>(gen.value()));
  return 0;
}
