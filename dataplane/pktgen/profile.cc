#include "profile.h"

#include <arpa/inet.h>
#include <charconv>
#include <cmath>
#include <fmt/format.h>
#include <set>
#include <yaml-cpp/yaml.h>

#include "mode_names.h"

namespace sluice::pktgen {

const std::array<uint16_t, 12> imix_sizes = {64, 594, 64, 64, 594, 64, 1518, 64, 594, 64, 594, 64};

const char* item_type_name(item_type t) {
  switch (t) {
  case item_type::established:
    return "established";
  case item_type::churn:
    return "churn";
  case item_type::syn_flood:
    return "syn-flood";
  case item_type::ack_flood:
    return "ack-flood";
  case item_type::udp_flood:
    return "udp-flood";
  }
  return "?";
}

std::array<uint8_t, 6> backend_mac(uint32_t addr_be) {
  std::array<uint8_t, 6> m{0x02, 0xb0, 0, 0, 0, 0};
  std::memcpy(&m[2], &addr_be, 4);
  return m;
}

namespace {

// Thrown inside the loader only and turned into an error at its boundary.
struct bad_field {
  std::string msg;
};

[[noreturn]] void fail(const std::string& where, const std::string& why) {
  throw bad_field{fmt::format("{}: {}", where, why)};
}

void only_keys(const YAML::Node& n, const std::string& where, std::set<std::string> allowed) {
  if (!n.IsMap())
    fail(where, "expected a mapping");
  for (const auto& kv : n) {
    auto k = kv.first.as<std::string>();
    if (!allowed.count(k))
      fail(where + "." + k, "unknown field");
  }
}

double number(const YAML::Node& n, const std::string& where, double lo, double hi) {
  double v = 0;
  try {
    v = n.as<double>();
  } catch (const YAML::Exception&) {
    fail(where, "expected a number");
  }
  if (!std::isfinite(v) || v < lo || v > hi)
    fail(where, fmt::format("expected a number in {}..{} (got {})", lo, hi, v));
  return v;
}

uint64_t integer(const YAML::Node& n, const std::string& where, uint64_t lo, uint64_t hi) {
  double v = number(n, where, double(lo), double(hi));
  if (v != std::floor(v))
    fail(where, "expected an integer");
  return uint64_t(v);
}

uint32_t ipv4(const YAML::Node& n, const std::string& where) {
  auto text = n.as<std::string>();
  auto ip = parse_ip(text);
  if (!ip || !ip->is_v4())
    fail(where,
         fmt::format("expected an IPv4 address (got '{}'; IPv6 is not generated yet)", text));
  return ip->v4_be();
}

void prefix4(const YAML::Node& n, const std::string& where, uint32_t& base_be, uint32_t& size,
             uint32_t& mask_be) {
  auto text = n.as<std::string>();
  auto p = parse_prefix(text);
  if (!p || !p->addr.is_v4() || text.find('/') == std::string::npos || p->prefix_len < 8)
    fail(where,
         fmt::format("expected an IPv4 prefix /8../32, e.g. 198.19.0.0/16 (got '{}')", text));
  uint32_t mask = p->prefix_len == 32 ? 0xffffffffu : ~(0xffffffffu >> p->prefix_len);
  base_be = htonl(ntohl(p->addr.v4_be()) & mask);
  mask_be = htonl(mask);
  size = uint32_t((uint64_t(1) << (32 - p->prefix_len)));
}

backend_addr parse_backend(const YAML::Node& n, const std::string& where, uint16_t dflt_port) {
  auto text = n.as<std::string>();
  backend_addr b;
  auto colon = text.find(':');
  auto ip = parse_ip(text.substr(0, colon));
  if (!ip || !ip->is_v4())
    fail(where, fmt::format("expected IPv4[:PORT] (got '{}')", text));
  b.addr_be = ip->v4_be();
  b.port = dflt_port;
  if (colon != std::string::npos) {
    unsigned v = 0;
    auto s = text.substr(colon + 1);
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || v == 0 || v > 65535)
      fail(where, fmt::format("expected a port 1..65535 after ':' (got '{}')", text));
    b.port = uint16_t(v);
  }
  return b;
}

service_def parse_service(const YAML::Node& n, const std::string& where) {
  only_keys(n, where, {"name", "vip", "port", "proto", "mode", "gue_port", "backends"});
  service_def s;
  if (!n["name"] || !n["vip"] || !n["port"] || !n["backends"])
    fail(where, "name, vip, port and backends are required");
  s.name = n["name"].as<std::string>();
  s.vip_be = ipv4(n["vip"], where + ".vip");
  s.port = uint16_t(integer(n["port"], where + ".port", 1, 65535));
  if (n["proto"]) {
    auto p = n["proto"].as<std::string>();
    if (p == "tcp")
      s.proto = 6;
    else if (p == "udp")
      s.proto = 17;
    else
      fail(where + ".proto", fmt::format("expected tcp or udp (got '{}')", p));
  }
  if (n["mode"]) {
    auto m = fwd_mode_from_name(n["mode"].as<std::string>());
    if (!m)
      fail(where + ".mode", "expected nat, dnat, dsr-l2, dsr-ipip or dsr-gue");
    s.mode = *m;
  }
  if (n["gue_port"])
    s.gue_port = uint16_t(integer(n["gue_port"], where + ".gue_port", 1, 65535));
  if (!n["backends"].IsSequence() || n["backends"].size() == 0)
    fail(where + ".backends", "expected a non-empty list of IPv4[:PORT]");
  for (size_t i = 0; i < n["backends"].size(); ++i) {
    auto b = parse_backend(n["backends"][i], fmt::format("{}.backends[{}]", where, i), s.port);
    bool dsr = s.mode != abi::fwd_mode::nat && s.mode != abi::fwd_mode::dnat;
    if (dsr && b.port != s.port)
      fail(fmt::format("{}.backends[{}]", where, i), "DSR modes cannot change the port");
    s.backends.push_back(b);
  }
  return s;
}

std::vector<uint16_t> parse_frames(const YAML::Node& n, const std::string& where) {
  if (n.IsScalar() && n.as<std::string>() == "imix")
    return {imix_sizes.begin(), imix_sizes.end()};
  std::vector<uint16_t> out;
  if (n.IsSequence()) {
    for (size_t i = 0; i < n.size(); ++i)
      out.push_back(uint16_t(integer(n[i], fmt::format("{}[{}]", where, i), 64, 1518)));
  } else {
    out.push_back(uint16_t(integer(n, where, 64, 1518)));
  }
  if (out.empty())
    fail(where, "expected 64..1518, a list of sizes, or imix");
  return out;
}

traffic_item parse_item(const YAML::Node& n, const std::string& where, const profile& p) {
  only_keys(n, where,
            {"type", "service", "weight", "rate_pps", "conns_per_s", "flows", "direction", "frame",
             "requests", "request_bytes", "response_bytes", "close", "held_open",
             "request_delay_ms"});
  traffic_item it;
  if (!n["type"] || !n["service"])
    fail(where, "type and service are required");
  auto type = n["type"].as<std::string>();
  if (type == "established")
    it.type = item_type::established;
  else if (type == "churn")
    it.type = item_type::churn;
  else if (type == "syn-flood")
    it.type = item_type::syn_flood;
  else if (type == "ack-flood")
    it.type = item_type::ack_flood;
  else if (type == "udp-flood")
    it.type = item_type::udp_flood;
  else
    fail(where + ".type", fmt::format("expected established, churn, syn-flood, ack-flood or "
                                      "udp-flood (got '{}'); a mixed profile lists several items",
                                      type));
  auto svc = n["service"].as<std::string>();
  bool found = false;
  for (uint32_t i = 0; i < p.services.size(); ++i)
    if (p.services[i].name == svc) {
      it.service = i;
      found = true;
    }
  if (!found)
    fail(where + ".service", fmt::format("no service named '{}'", svc));
  const service_def& s = p.services[it.service];
  bool churn = it.type == item_type::churn;
  if (churn && n["rate_pps"])
    fail(where + ".rate_pps", "churn takes conns_per_s");
  if (!churn && n["conns_per_s"])
    fail(where + ".conns_per_s", "only churn takes conns_per_s");
  if (n["rate_pps"])
    it.rate = number(n["rate_pps"], where + ".rate_pps", 0, 1e9);
  if (n["conns_per_s"])
    it.rate = number(n["conns_per_s"], where + ".conns_per_s", 1, 1e8);
  if (n["weight"])
    it.weight = number(n["weight"], where + ".weight", 0, 1e6);
  if (n["flows"])
    it.flows = uint32_t(integer(n["flows"], where + ".flows", 1, 10'000'000));
  if (n["frame"])
    it.frame_sizes = parse_frames(n["frame"], where + ".frame");
  if (n["direction"]) {
    auto d = n["direction"].as<std::string>();
    if (d == "forward")
      it.dir = direction::forward;
    else if (d == "reverse")
      it.dir = direction::reverse;
    else if (d == "both")
      it.dir = direction::both;
    else
      fail(where + ".direction", "expected forward, reverse or both");
    bool nat = s.mode == abi::fwd_mode::nat || s.mode == abi::fwd_mode::dnat;
    if (it.dir != direction::forward && !nat)
      fail(where + ".direction", "reverse traffic crosses the balancer only in nat/dnat modes "
                                 "(DSR replies bypass it)");
  }
  if (n["requests"])
    it.requests = uint32_t(integer(n["requests"], where + ".requests", 1, 1000));
  if (n["request_bytes"])
    it.request_bytes = uint16_t(integer(n["request_bytes"], where + ".request_bytes", 16, 1400));
  if (n["response_bytes"])
    it.response_bytes = uint16_t(integer(n["response_bytes"], where + ".response_bytes", 16, 1400));
  if (n["close"]) {
    auto c = n["close"].as<std::string>();
    if (c != "fin" && c != "rst")
      fail(where + ".close", "expected fin or rst");
    it.close_rst = c == "rst";
  }
  if (n["held_open"])
    it.held_open = uint32_t(integer(n["held_open"], where + ".held_open", 0, 10'000'000));
  if (n["request_delay_ms"])
    it.request_delay_ms =
        uint32_t(integer(n["request_delay_ms"], where + ".request_delay_ms", 0, 10'000));
  bool tcp_only = churn || it.type == item_type::syn_flood || it.type == item_type::ack_flood;
  if (tcp_only && s.proto != 6)
    fail(where + ".service", fmt::format("{} needs a tcp service", type));
  if (it.type == item_type::udp_flood && s.proto != 17)
    fail(where + ".service", "udp-flood needs a udp service");
  return it;
}

profile parse(const YAML::Node& root) {
  only_keys(root, "profile",
            {"name", "duration_s", "rate_pps", "drain_ms", "clients", "spoofed", "balancer",
             "services", "traffic"});
  profile p;
  p.name = root["name"] ? root["name"].as<std::string>() : "unnamed";
  if (root["duration_s"])
    p.duration_s = number(root["duration_s"], "duration_s", 0.1, 86400);
  if (root["rate_pps"])
    p.rate_pps = number(root["rate_pps"], "rate_pps", 0, 1e9);
  if (root["drain_ms"])
    p.drain_ms = uint32_t(integer(root["drain_ms"], "drain_ms", 10, 60000));
  uint32_t mask = 0;
  prefix4(root["clients"] ? root["clients"] : YAML::Node("198.19.0.0/16"), "clients",
          p.clients_base_be, p.clients_size, mask);
  prefix4(root["spoofed"] ? root["spoofed"] : YAML::Node("100.64.0.0/10"), "spoofed",
          p.spoofed_base_be, p.spoofed_size, mask);
  prefix4(YAML::Node("172.16.0.0/16"), "balancer.encap_src4", p.encap_src4_be, mask,
          p.encap_src4_mask_be);
  if (auto b = root["balancer"]) {
    only_keys(b, "balancer", {"nat_pool", "nat_ports", "encap_src4"});
    if (b["nat_pool"])
      for (size_t i = 0; i < b["nat_pool"].size(); ++i)
        p.nat_pool_be.push_back(ipv4(b["nat_pool"][i], fmt::format("balancer.nat_pool[{}]", i)));
    if (b["nat_ports"]) {
      auto t = b["nat_ports"].as<std::string>();
      unsigned lo = 0, hi = 0;
      if (std::sscanf(t.c_str(), "%u-%u", &lo, &hi) != 2 || lo < 1 || lo > hi || hi > 65535)
        fail("balancer.nat_ports", fmt::format("expected LO-HI in 1..65535 (got '{}')", t));
      p.nat_port_min = uint16_t(lo);
      p.nat_port_max = uint16_t(hi);
    }
    if (b["encap_src4"]) {
      uint32_t size = 0;
      prefix4(b["encap_src4"], "balancer.encap_src4", p.encap_src4_be, size, p.encap_src4_mask_be);
    }
  }
  if (!root["services"] || !root["services"].IsSequence() || root["services"].size() == 0)
    fail("services", "expected a non-empty list");
  for (size_t i = 0; i < root["services"].size(); ++i)
    p.services.push_back(parse_service(root["services"][i], fmt::format("services[{}]", i)));
  for (size_t i = 0; i < p.services.size(); ++i) {
    if (p.services[i].mode == abi::fwd_mode::nat && p.nat_pool_be.empty())
      fail(fmt::format("services[{}].mode", i), "nat needs balancer.nat_pool");
    for (size_t j = 0; j < i; ++j) {
      const auto &a = p.services[i], &b = p.services[j];
      if (a.name == b.name)
        fail(fmt::format("services[{}].name", i), "duplicate service name");
      if (a.vip_be == b.vip_be && a.port == b.port && a.proto == b.proto)
        fail(fmt::format("services[{}]", i), "duplicate VIP, port and protocol");
      // The stateless backend finds a NAT flow's service from its backend
      // address and port alone.
      for (const auto& x : a.backends)
        for (const auto& y : b.backends)
          if (x.addr_be == y.addr_be && x.port == y.port && a.proto == b.proto)
            fail(fmt::format("services[{}].backends", i),
                 "a backend address:port serves one service per protocol");
    }
  }
  if (!root["traffic"] || !root["traffic"].IsSequence() || root["traffic"].size() == 0)
    fail("traffic", "expected a non-empty list of items");
  for (size_t i = 0; i < root["traffic"].size(); ++i)
    p.items.push_back(parse_item(root["traffic"][i], fmt::format("traffic[{}]", i), p));

  // A total rate splits over the items that give a weight.
  if (p.rate_pps > 0) {
    double total = 0;
    for (const auto& it : p.items)
      total += it.weight;
    if (total <= 0)
      fail("rate_pps", "a total rate needs a weight on at least one item");
    for (auto& it : p.items)
      if (it.weight > 0)
        it.rate = p.rate_pps * it.weight / total;
  }

  // Client flow space: established items take `flows` slots, churn the rest.
  const uint64_t space = uint64_t(p.clients_size) * client_ports;
  uint64_t next = 0;
  size_t n_churn = 0;
  for (auto& it : p.items) {
    if (it.type == item_type::established) {
      it.flow_base = next;
      it.flow_count = it.flows;
      next += it.flows;
    }
    n_churn += it.type == item_type::churn;
  }
  if (next > space)
    fail("traffic", fmt::format("{} established flows do not fit the {} client address/port "
                                "pairs of 'clients'; use a larger prefix",
                                next, space));
  if (n_churn > 0) {
    uint64_t share = (space - next) / n_churn;
    if (share < 1024)
      fail("clients", "too small for the churn items' connections");
    for (auto& it : p.items)
      if (it.type == item_type::churn) {
        it.flow_base = next;
        it.flow_count = share;
        next += share;
      }
  }
  return p;
}

} // namespace

result<profile> load_profile(const std::string& path) {
  try {
    YAML::Node root = YAML::LoadFile(path);
    auto p = parse(root);
    return p;
  } catch (const bad_field& e) {
    return make_error(fmt::format("{}: {}", path, e.msg));
  } catch (const YAML::Exception& e) {
    return make_error(fmt::format("{}: {}", path, e.what()));
  }
}

} // namespace sluice::pktgen
