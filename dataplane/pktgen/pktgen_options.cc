#include "pktgen_options.h"

#include <boost/program_options.hpp>
#include <cmath>
#include <exception>
#include <fmt/format.h>
#include <sstream>

#include "ip_addr.h"

namespace sluice::pktgen {
namespace po = boost::program_options;

namespace {

po::options_description make_description() {
  po::options_description d("sluice-pktgen options (after the EAL arguments and \"--\")");
  // clang-format off
  d.add_options()
    ("help,h", "print this help and exit")
    ("profile", po::value<std::string>()->value_name("FILE"),
     "traffic profile (YAML, see docs/benchmarking.md); required")
    ("validate", "check the profile, print what it generates and exit (no EAL, no ports)")
    ("client-port", po::value<unsigned>()->value_name("P"),
     "DPDK port facing the balancer's client side (default 0)")
    ("backend-port", po::value<unsigned>()->value_name("Q"),
     "DPDK port facing the balancer's backend side (default 1)")
    ("peer-mac-client", po::value<std::string>()->value_name("MAC"),
     "destination MAC of client traffic (the balancer's client port; default broadcast)")
    ("peer-mac-backend", po::value<std::string>()->value_name("MAC"),
     "destination MAC of backend replies (the balancer's backend port; default broadcast)")
    ("duration", po::value<double>()->value_name("S"),
     "seconds of traffic, overrides the profile's duration_s")
    ("scale", po::value<double>()->value_name("X"),
     "multiply every rate of the profile by X (default 1)")
    ("ndr", "search the zero-loss rate (binary search on the scale, profile rates as upper bound)")
    ("ndr-precision", po::value<double>()->value_name("F"),
     "stop the search when (hi - lo) / hi < F (default 0.02)")
    ("ndr-trial", po::value<double>()->value_name("S"),
     "seconds per search trial (default: the duration)")
    ("warmup-pps", po::value<unsigned>()->value_name("N"),
     "rate of the warm-up packets that open established flows (default 1000000)")
    ("stats-interval-ms", po::value<unsigned>()->value_name("N"),
     "print rates every N ms, 0 = never (default 1000)")
    ("mbufs", po::value<unsigned>()->value_name("N"),
     "mbufs in the pool (default 65535)")
    ("loopback", "no balancer between the ports: expect every frame unchanged (the generator's "
                 "own ceiling)")
    ("json", po::value<std::string>()->value_name("FILE"),
     "also write the final JSON summary to FILE")
    ("wait-peer-close", po::value<double>()->value_name("S"),
     "after the summary, stop polling and wait up to S seconds for the balancer to close "
     "the links before closing ours (memif: avoids tearing rings down under a peer that "
     "still polls them; default 0 = close at once)");
  // clang-format on
  return d;
}

error bad(const std::string& option, const std::string& why) {
  return make_error(fmt::format("--{}: {}", option, why));
}

} // namespace

std::string pktgen_usage(const char* prog) {
  std::ostringstream os;
  os << "usage: " << prog << " [EAL options] -- --profile FILE [options]\n"
     << "  Plays the clients and the backends of a load balancer on two DPDK ports.\n"
     << "  Example (memif peers of sluice-dataplane):\n"
     << "    " << prog
     << " -l 0 --file-prefix pg --vdev net_memif0,role=client,socket=/run/lb.sock,id=0 \\\n"
     << "        --vdev net_memif1,role=client,socket=/run/lb.sock,id=1 -- \\\n"
     << "        --profile scripts/profiles/established-nat.yaml\n\n"
     << make_description();
  return os.str();
}

result<pktgen_options> parse_pktgen_options(int argc, const char* const* argv) {
  pktgen_options o;
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
  if (!vm.count("profile"))
    return bad("profile", "missing; give the traffic profile, e.g. --profile established.yaml");
  o.profile_path = vm["profile"].as<std::string>();
  o.validate = vm.count("validate") > 0;
  if (vm.count("client-port")) {
    auto v = vm["client-port"].as<unsigned>();
    if (v > 65534)
      return bad("client-port", "expected a port id 0..65534");
    o.client_port = uint16_t(v);
  }
  if (vm.count("backend-port")) {
    auto v = vm["backend-port"].as<unsigned>();
    if (v > 65534)
      return bad("backend-port", "expected a port id 0..65534");
    o.backend_port = uint16_t(v);
  }
  if (o.client_port == o.backend_port)
    return bad("backend-port",
               fmt::format("must differ from --client-port (both {})", o.client_port));
  for (auto [name, out] : {std::pair{"peer-mac-client", &o.peer_mac_client},
                           std::pair{"peer-mac-backend", &o.peer_mac_backend}}) {
    if (!vm.count(name))
      continue;
    auto mac = parse_mac(vm[name].as<std::string>());
    if (!mac)
      return bad(name,
                 fmt::format("expected aa:bb:cc:dd:ee:ff (got '{}')", vm[name].as<std::string>()));
    *out = *mac;
  }
  auto positive = [&](const char* name, double lo, double hi) -> result<double> {
    double v = vm[name].as<double>();
    if (!std::isfinite(v) || v < lo || v > hi)
      return bad(name, fmt::format("expected a number in {}..{} (got {})", lo, hi, v));
    return v;
  };
  if (vm.count("duration")) {
    auto v = positive("duration", 0.1, 86400);
    if (!v)
      return v.err();
    o.duration_s = *v;
  }
  if (vm.count("scale")) {
    auto v = positive("scale", 1e-6, 1e6);
    if (!v)
      return v.err();
    o.scale = *v;
  }
  o.ndr = vm.count("ndr") > 0;
  if (vm.count("ndr-precision")) {
    auto v = positive("ndr-precision", 0.001, 0.5);
    if (!v)
      return v.err();
    o.ndr_precision = *v;
  }
  if (vm.count("ndr-trial")) {
    auto v = positive("ndr-trial", 0.1, 3600);
    if (!v)
      return v.err();
    o.ndr_trial_s = *v;
  }
  if (vm.count("warmup-pps")) {
    o.warmup_pps = vm["warmup-pps"].as<unsigned>();
    if (o.warmup_pps < 1000)
      return bad("warmup-pps", "expected at least 1000");
  }
  if (vm.count("stats-interval-ms"))
    o.stats_interval_ms = vm["stats-interval-ms"].as<unsigned>();
  if (vm.count("mbufs")) {
    o.mbufs = vm["mbufs"].as<unsigned>();
    if (o.mbufs < 4095)
      return bad("mbufs", "expected at least 4095");
  }
  o.loopback = vm.count("loopback") > 0;
  if (vm.count("json"))
    o.json_path = vm["json"].as<std::string>();
  if (vm.count("wait-peer-close")) {
    o.wait_peer_close_s = vm["wait-peer-close"].as<double>();
    if (!(o.wait_peer_close_s >= 0 && o.wait_peer_close_s <= 3600))
      return bad("wait-peer-close", "expected seconds between 0 and 3600");
  }
  return o;
}

} // namespace sluice::pktgen
