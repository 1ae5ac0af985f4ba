#include "dataplane_options.h"

#include <boost/program_options.hpp>
#include <charconv>
#include <exception>
#include <fmt/format.h>
#include <limits>
#include <optional>
#include <sstream>
#include <string_view>

namespace sluice::dp {
namespace po = boost::program_options;

namespace {

constexpr uint16_t min_mtu = 576;
constexpr uint16_t max_mtu = 9000;
constexpr uint32_t max_flow_table_size = 1u << 27;
constexpr uint32_t max_idle_sleep_us = 1000;
constexpr uint32_t max_idle_sleep_cap_us = 100000;

po::options_description make_description() {
  po::options_description d("sluice-dataplane options (after the EAL arguments and \"--\")");
  // clang-format off
  d.add_options()
    ("help,h", "print this help and exit")
    ("instance", po::value<std::string>()->value_name("NAME"),
     "instance name; shared memory /dev/hugepages/sluice-NAME or /dev/shm/sluice-NAME "
     "(default: default)")
    ("shm-path", po::value<std::string>()->value_name("PATH"),
     "shared-memory object path, overrides the one derived from --instance")
    ("flow-snapshot", po::value<std::string>()->value_name("PATH"),
     "hitless restart: adopt the flows saved in PATH (then remove it) before taking traffic, "
     "and save every flow there on a clean stop (SIGINT/SIGTERM)")
    ("port", po::value<std::string>()->value_name("P"),
     "one-armed layout: DPDK port id used for clients and backends")
    ("client-port", po::value<std::string>()->value_name("P"),
     "two-armed layout: DPDK port id facing the clients")
    ("backend-port", po::value<std::string>()->value_name("Q"),
     "two-armed layout: DPDK port id facing the backends")
    ("addr", po::value<std::vector<std::string>>()->value_name("IP/LEN[@client|@backend]"),
     "own address and on-link prefix (repeatable); the side is required when two-armed")
    ("nat-pool", po::value<std::vector<std::string>>()->value_name("IP"),
     "full-NAT source address (repeatable)")
    ("gateway", po::value<std::vector<std::string>>()->value_name("IP[@client|@backend]"),
     "default next hop (repeatable, one per family and side); the side is required when "
     "two-armed")
    ("neigh", po::value<std::vector<std::string>>()->value_name("IP=MAC"),
     "static neighbour entry (repeatable)")
    ("mtu", po::value<std::string>()->value_name("N"),
     "egress L3 MTU, 576..9000 (default: 1500)")
    ("encap-src4", po::value<std::string>()->value_name("CIDR"),
     "outer IPv4 source prefix for IPIP/GUE (default: 172.16.0.0/16)")
    ("encap-src6", po::value<std::string>()->value_name("CIDR"),
     "outer IPv6 source prefix for IPIP/GUE (default: fd00:5100::/96)")
    ("flow-table-size", po::value<std::string>()->value_name("N"),
     "flow entries per worker per family (default: 1048576)")
    ("nat-ports", po::value<std::string>()->value_name("LO-HI"),
     "full-NAT source port range (default: 1024-65535)")
    ("rx-desc", po::value<std::string>()->value_name("N"),
     "descriptors per RX queue, 64..16384, a power of two for net_af_xdp (its socket's RX ring; "
     "default: 1024)")
    ("tx-desc", po::value<std::string>()->value_name("N"),
     "descriptors per TX queue, 64..16384 (default: 1024)")
    ("busy-poll", "never back off when idle (lowest latency, burns the cores)")
    ("idle-threshold", po::value<std::string>()->value_name("N"),
     "consecutive empty polls before backing off (default: 256)")
    ("idle-pause-polls", po::value<std::string>()->value_name("N"),
     "polls with rte_pause before sleeping (default: 1024)")
    ("idle-sleep-us", po::value<std::string>()->value_name("N"),
     "first sleep once backed off, 1..1000 us; doubles per empty poll (default: 50)")
    ("idle-sleep-max-us", po::value<std::string>()->value_name("N"),
     "cap of the doubling sleep, idle-sleep-us..100000 us (default: 1000)")
    ("new-flow-budget", po::value<std::string>()->value_name("N"),
     "new flows per second for the whole balancer, each worker taking 1/n; a new flow over it "
     "is dropped (counter new_flow_budget), 0..100000000 (default: 0, unlimited)")
    ("new-flow-budget-burst", po::value<std::string>()->value_name("N"),
     "depth of the new-flow budget's token bucket in flows, whole balancer, 0..100000000 "
     "(default: 0, the same as --new-flow-budget); needs --new-flow-budget")
    ("mid-flow-rst-rate", po::value<std::string>()->value_name("N"),
     "RSTs per second, whole balancer, answering nat packets without state; over it such a "
     "packet is dropped (counter mid_flow_rst_limited), 0..100000000, 0 = unlimited "
     "(default: 10000)")
    ("stats-interval-ms", po::value<std::string>()->value_name("N"),
     "print summed worker counters every N ms (default: 0, off)");
  // clang-format on
  return d;
}

error bad(std::string_view option, std::string_view value, std::string_view why) {
  return make_error(fmt::format("--{}: {} (got '{}')", option, why, value));
}

template <typename T> std::optional<T> parse_uint(std::string_view text, uint64_t lo, uint64_t hi) {
  uint64_t v = 0;
  if (text.empty())
    return std::nullopt;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < lo || v > hi)
    return std::nullopt;
  return T(v);
}

// Splits "VALUE@SIDE" into VALUE and an optional side.
struct sided {
  std::string_view value;
  std::optional<side> on;
  bool bad_side = false;
};
sided split_side(std::string_view text) {
  sided s{text, std::nullopt, false};
  auto at = text.rfind('@');
  if (at == std::string_view::npos)
    return s;
  s.value = text.substr(0, at);
  auto name = text.substr(at + 1);
  if (name == "client")
    s.on = client_side;
  else if (name == "backend")
    s.on = backend_side;
  else
    s.bad_side = true;
  return s;
}

template <typename T> std::optional<T> get(const po::variables_map& vm, const char* name) {
  if (!vm.count(name))
    return std::nullopt;
  return vm[name].as<T>();
}

std::vector<std::string> get_all(const po::variables_map& vm, const char* name) {
  if (!vm.count(name))
    return {};
  return vm[name].as<std::vector<std::string>>();
}

// Reads an unsigned option into `out` when present.
template <typename T>
status read_uint(const po::variables_map& vm, const char* name, uint64_t lo, uint64_t hi, T& out) {
  auto text = get<std::string>(vm, name);
  if (!text)
    return {};
  auto v = parse_uint<T>(*text, lo, hi);
  if (!v)
    return bad(name, *text, fmt::format("expected an integer in {}..{}", lo, hi));
  out = *v;
  return {};
}

status read_port(const po::variables_map& vm, const char* name, uint16_t& out) {
  return read_uint<uint16_t>(vm, name, 0, 65534, out); // existence is checked after EAL init
}

} // namespace

std::string dataplane_usage(const char* prog) {
  std::ostringstream os;
  os << "usage: " << prog << " [EAL options] -- [options]\n"
     << "  The EAL main lcore runs the neighbour manager; every other lcore (-l/--lcores)\n"
     << "  runs a worker. Example:\n"
     << "    " << prog
     << " -l 0,1 --vdev net_pcap0,rx_pcap=in.pcap,tx_pcap=out.pcap -- --port 0 \\\n"
     << "        --addr 192.0.2.1/24 --neigh 192.0.2.254=02:00:00:00:00:fe\n\n"
     << make_description();
  return os.str();
}

result<dataplane_options> parse_dataplane_options(int argc, const char* const* argv) {
  dataplane_options o;
  o.encap_src4 = *parse_prefix("172.16.0.0/16");
  o.encap_src6 = *parse_prefix("fd00:5100::/96");

  po::variables_map vm;
  try {
    auto desc = make_description();
    po::store(
        po::command_line_parser(argc, argv)
            .options(desc)
            .style(po::command_line_style::default_style & ~po::command_line_style::allow_guessing)
            .run(),
        vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    return make_error(e.what());
  }
  if (vm.count("help")) {
    o.help = true;
    return o;
  }

  if (auto v = get<std::string>(vm, "instance")) {
    if (v->empty() || v->find('/') != std::string::npos)
      return bad("instance", *v, "expected a name without '/'");
    o.instance = *v;
  }
  if (auto v = get<std::string>(vm, "shm-path")) {
    if (v->empty())
      return bad("shm-path", *v, "expected a path");
    o.shm_path = *v;
  }
  if (auto v = get<std::string>(vm, "flow-snapshot")) {
    if (v->empty() || v->back() == '/')
      return bad("flow-snapshot", *v, "expected a file path");
    o.flow_snapshot = *v;
  }

  // Port layout.
  bool one = vm.count("port") > 0;
  bool client = vm.count("client-port") > 0;
  bool backend = vm.count("backend-port") > 0;
  if (one && (client || backend))
    return make_error("--port: use either --port (one-armed) or --client-port and "
                      "--backend-port (two-armed), not both");
  if (client != backend)
    return make_error(client ? "--backend-port: required with --client-port"
                             : "--client-port: required with --backend-port");
  if (!one && !client)
    return make_error("--port: missing; give --port P (one-armed) or --client-port P "
                      "--backend-port Q (two-armed)");
  o.two_armed = client;
  if (auto s = read_port(vm, "port", o.port); !s)
    return s.err();
  if (auto s = read_port(vm, "client-port", o.client_port); !s)
    return s.err();
  if (auto s = read_port(vm, "backend-port", o.backend_port); !s)
    return s.err();
  if (o.two_armed && o.client_port == o.backend_port)
    return make_error(fmt::format("--backend-port: must differ from --client-port (both {}); "
                                  "use --port for a one-armed layout",
                                  o.client_port));

  // In a one-armed layout both sides are the same port: addresses are attached
  // to the client side (the side packets are received on) and gateways apply to
  // both sides. Two-armed needs the side spelled out.
  for (const auto& text : get_all(vm, "addr")) {
    auto s = split_side(text);
    if (s.bad_side)
      return bad("addr", text, "side must be @client or @backend");
    if (o.two_armed && !s.on)
      return bad("addr", text, "two-armed layout: append @client or @backend");
    auto p = parse_prefix(s.value);
    if (!p || s.value.find('/') == std::string_view::npos)
      return bad("addr", text, "expected IP/LEN, e.g. 192.0.2.1/24");
    o.addresses.push_back(own_address{*p, o.two_armed ? *s.on : client_side});
  }
  for (const auto& text : get_all(vm, "nat-pool")) {
    auto ip = parse_ip(text);
    if (!ip)
      return bad("nat-pool", text, "expected an IPv4 or IPv6 address");
    o.nat_pool.push_back(*ip);
  }
  for (const auto& text : get_all(vm, "gateway")) {
    auto s = split_side(text);
    if (s.bad_side)
      return bad("gateway", text, "side must be @client or @backend");
    if (o.two_armed && !s.on)
      return bad("gateway", text, "two-armed layout: append @client or @backend");
    auto ip = parse_ip(s.value);
    if (!ip)
      return bad("gateway", text, "expected an IPv4 or IPv6 address");
    for (int sd = 0; sd < 2; ++sd) {
      if (o.two_armed && sd != *s.on)
        continue;
      for (const auto& g : o.gateways[sd])
        if (g.family() == ip->family())
          return bad("gateway", text, "one gateway per family and side");
      o.gateways[sd].push_back(*ip);
    }
  }
  for (const auto& text : get_all(vm, "neigh")) {
    auto eq = text.find('=');
    if (eq == std::string::npos)
      return bad("neigh", text, "expected IP=MAC, e.g. 192.0.2.254=02:00:00:00:00:fe");
    auto ip = parse_ip(std::string_view(text).substr(0, eq));
    auto mac = parse_mac(std::string_view(text).substr(eq + 1));
    if (!ip)
      return bad("neigh", text, "expected IP=MAC; the IP is invalid");
    if (!mac)
      return bad("neigh", text, "expected IP=MAC; the MAC is invalid (aa:bb:cc:dd:ee:ff)");
    o.neighbours.push_back(static_neighbour{*ip, *mac});
  }

  if (auto s = read_uint<uint16_t>(vm, "mtu", min_mtu, max_mtu, o.mtu); !s)
    return s.err();
  if (auto v = get<std::string>(vm, "encap-src4")) {
    auto p = parse_prefix(*v);
    if (!p || !p->addr.is_v4() || v->find('/') == std::string::npos || p->prefix_len == 0)
      return bad("encap-src4", *v, "expected an IPv4 prefix with length 1..32, e.g. 172.16.0.0/16");
    o.encap_src4 = *p;
  }
  if (auto v = get<std::string>(vm, "encap-src6")) {
    auto p = parse_prefix(*v);
    if (!p || p->addr.is_v4() || v->find('/') == std::string::npos || p->prefix_len == 0)
      return bad("encap-src6", *v,
                 "expected an IPv6 prefix with length 1..128, e.g. fd00:5100::/96");
    o.encap_src6 = *p;
  }
  if (auto s =
          read_uint<uint32_t>(vm, "flow-table-size", 1024, max_flow_table_size, o.flow_table_size);
      !s)
    return s.err();
  if (auto v = get<std::string>(vm, "nat-ports")) {
    auto dash = v->find('-');
    std::optional<uint16_t> lo, hi;
    if (dash != std::string::npos) {
      lo = parse_uint<uint16_t>(std::string_view(*v).substr(0, dash), 1, 65535);
      hi = parse_uint<uint16_t>(std::string_view(*v).substr(dash + 1), 1, 65535);
    }
    if (!lo || !hi || *lo > *hi)
      return bad("nat-ports", *v, "expected LO-HI with 1 <= LO <= HI <= 65535");
    o.nat_port_min = *lo;
    o.nat_port_max = *hi;
  }
  if (auto s = read_uint<uint16_t>(vm, "rx-desc", 64, 16384, o.rx_desc); !s)
    return s.err();
  if (auto s = read_uint<uint16_t>(vm, "tx-desc", 64, 16384, o.tx_desc); !s)
    return s.err();
  o.busy_poll = vm.count("busy-poll") > 0;
  constexpr uint64_t u32max = std::numeric_limits<uint32_t>::max();
  if (auto s = read_uint<uint32_t>(vm, "idle-threshold", 1, u32max, o.idle_threshold); !s)
    return s.err();
  if (auto s = read_uint<uint32_t>(vm, "idle-pause-polls", 0, u32max, o.idle_pause_polls); !s)
    return s.err();
  if (auto s = read_uint<uint32_t>(vm, "idle-sleep-us", 1, max_idle_sleep_us, o.idle_sleep_us); !s)
    return s.err();
  if (auto s = read_uint<uint32_t>(vm, "idle-sleep-max-us", o.idle_sleep_us, max_idle_sleep_cap_us,
                                   o.idle_sleep_max_us);
      !s)
    return s.err();
  if (auto s = read_uint<uint32_t>(vm, "stats-interval-ms", 0, 3600u * 1000, o.stats_interval_ms);
      !s)
    return s.err();
  // The same bound as the services' client_rate (config_validate).
  constexpr uint32_t max_budget = 100000000;
  if (auto s = read_uint<uint32_t>(vm, "new-flow-budget", 0, max_budget, o.new_flow_budget); !s)
    return s.err();
  if (auto s =
          read_uint<uint32_t>(vm, "new-flow-budget-burst", 0, max_budget, o.new_flow_budget_burst);
      !s)
    return s.err();
  if (auto s = read_uint<uint32_t>(vm, "mid-flow-rst-rate", 0, max_budget, o.mid_flow_rst_rate); !s)
    return s.err();
  if (o.new_flow_budget_burst && !o.new_flow_budget)
    return bad("new-flow-budget-burst", std::to_string(o.new_flow_budget_burst),
               "needs --new-flow-budget");
  return o;
}

} // namespace sluice::dp
