// sluice-pktgen: EAL arguments, "--", then our options (pktgen_options.h).
// Loads the profile before EAL starts, sets up the two ports, warms up the
// established flows, runs one trial (or the NDR search) on the main lcore and
// prints a JSON summary. Exit status: 0 after a run (judge it by the summary),
// 2 for a bad argument or profile, 1 when start-up or warm-up fails.
#include <cstdio>
#include <cstring>
#include <fmt/format.h>
#include <fstream>
#include <string>
#include <vector>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>

#include "ip_addr.h"
#include "load_runner.h"
#include "mode_names.h"
#include "ndr_search.h"
#include "pktgen_options.h"
#include "port_setup.h"
#include "profile.h"
#include "worker_loop.h"

namespace {

using namespace sluice;
using namespace sluice::pktgen;

constexpr const char* prog = "sluice-pktgen";
constexpr uint16_t port_mtu = 1500; // memif refuses more; it still receives larger frames

[[noreturn]] void die(int code, const std::string& msg) {
  std::fprintf(stderr, "%s: %s\n", prog, msg.c_str());
  std::fflush(stderr);
  std::exit(code);
}

// What --validate prints: one line per service and item, rates as scaled.
void print_profile(const profile& p) {
  std::printf("profile %s: %zu service(s), %zu item(s), %.1f s\n", p.name.c_str(),
              p.services.size(), p.items.size(), p.duration_s);
  for (const auto& s : p.services)
    std::printf("  service %s: %s %s:%u mode %s, %zu backend(s)\n", s.name.c_str(),
                s.proto == 6 ? "tcp" : "udp", format_ip(ip_addr::from_v4_be(s.vip_be)).c_str(),
                s.port, std::string(fwd_mode_name(s.mode)).c_str(), s.backends.size());
  for (const auto& it : p.items) {
    const char* unit = it.type == item_type::churn ? "conn/s" : "pps";
    std::printf("  %s -> %s: %.0f %s%s", item_type_name(it.type),
                p.services[it.service].name.c_str(), it.rate, unit,
                it.rate <= 0 ? " (as fast as possible)" : "");
    if (it.type == item_type::established)
      std::printf(", %u flows, %zu frame size(s)", it.flows, it.frame_sizes.size());
    std::printf("\n");
  }
}

// DPDK 22.11's memif PMD unmaps a link's shared regions from its control
// thread when the peer disconnects, while the peer's lcore may be inside an
// RX/TX burst on them (nothing orders the two): closing our ports while the
// balancer's worker still polls can crash that worker (docs/benchmarking.md). So the end of a run
// can wait, without polling, until the balancer has stopped and closed the
// links itself (scripts/bench-load.sh stops the dataplane once the summary is
// out), then close ours.
void wait_peer_close(const uint16_t (&ports)[2], double max_s) {
  if (max_s <= 0)
    return;
  std::printf("waiting up to %.0f s for the peer to close the links\n", max_s);
  const uint64_t end = rte_get_tsc_cycles() + uint64_t(max_s * double(rte_get_tsc_hz()));
  while (rte_get_tsc_cycles() < end && !dp::stop_requested()) {
    bool up = false;
    for (int side = 0; side < 2; ++side) {
      rte_eth_link link{};
      up = up || (rte_eth_link_get_nowait(ports[side], &link) == 0 && link.link_status);
    }
    if (!up) {
      // The PMD's control thread marks the link down first and frees the
      // rings after: closing our ports now would run the same teardown
      // concurrently (a crash seen in eal-intr-thread). Let it finish.
      rte_delay_us_sleep(500'000);
      std::printf("peer closed the links\n");
      return;
    }
    rte_delay_us_sleep(10'000);
  }
  std::printf("peer kept the links up for %.0f s: closing them anyway\n", max_s);
}

int run(const pktgen_options& o, const profile& prof) {
  const int socket = int(rte_socket_id());
  const uint16_t ports[2] = {o.client_port, o.backend_port};
  for (int side = 0; side < 2; ++side)
    if (!rte_eth_dev_is_valid_port(ports[side]))
      die(exit_usage, fmt::format("{}: no DPDK port {} ({} ports available; add one with --vdev "
                                  "or -a)",
                                  side == 0 ? "--client-port" : "--backend-port", ports[side],
                                  rte_eth_dev_count_avail()));
  rte_mempool* pool =
      rte_pktmbuf_pool_create("pktgen_mbufs", o.mbufs, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, socket);
  if (pool == nullptr)
    die(1, fmt::format("cannot create the mbuf pool ({} mbufs): {}", o.mbufs,
                       rte_strerror(rte_errno)));

  pktgen_context ctx(prof);
  ctx.pool = pool;
  ctx.loopback = o.loopback;
  ctx.tsc_hz = rte_get_tsc_hz();
  ctx.ns_per_tsc = 1e9 / double(ctx.tsc_hz);
  ctx.peer_mac[client_port] = o.peer_mac_client;
  ctx.peer_mac[backend_port] = o.peer_mac_backend;
  for (int side = 0; side < 2; ++side) {
    auto p = dp::setup_port(dp::port_request{.port_id = ports[side],
                                             .n_workers = 1,
                                             .mtu = port_mtu,
                                             .pool = pool,
                                             .socket_id = socket,
                                             .want_main_tx = false});
    if (!p)
      die(1, p.error_message());
    std::printf("%s port: %s\n", side == 0 ? "client" : "backend",
                dp::describe_port(p.value()).c_str());
    ctx.port_id[side] = ports[side];
    std::memcpy(ctx.own_mac[side].data(), p->mac.addr_bytes, 6);
  }
  ctx.learned.resize(prof.items.size());
  ctx.learned_count.assign(prof.items.size(), 0);
  for (size_t i = 0; i < prof.items.size(); ++i)
    if (prof.items[i].type == item_type::established)
      ctx.learned[i].resize(prof.items[i].flows);

  // Virtual links (memif) come up when the peer connects: wait for both.
  for (int side = 0; side < 2; ++side) {
    rte_eth_link link{};
    for (int tries = 0; tries < 200 && !dp::stop_requested(); ++tries) {
      if (rte_eth_link_get_nowait(ports[side], &link) == 0 && link.link_status)
        break;
      rte_delay_ms(50);
    }
    if (!link.link_status) {
      std::fprintf(stderr, "%s: %s port %u: link still down after 10 s (is the peer running?)\n",
                   prog, side == 0 ? "client" : "backend", ports[side]);
      for (uint16_t p : ports)
        dp::shutdown_port(p);
      return 1;
    }
  }

  runner_config rc;
  rc.stats_interval_ms = o.stats_interval_ms;
  rc.warmup_pps = o.warmup_pps;
  load_runner runner(ctx, rc);
  std::printf("%s: profile %s, %zu service(s), %zu traffic item(s)%s\n", prog, prof.name.c_str(),
              prof.services.size(), prof.items.size(), o.loopback ? ", loopback" : "");
  if (auto s = runner.warm_up(); !s) {
    std::fprintf(stderr, "%s: %s\n", prog, s.error_message().c_str());
    for (int side = 0; side < 2; ++side) {
      ctx.tx[side].drop_all();
      dp::shutdown_port(ports[side]);
    }
    return 1;
  }

  const double duration = o.duration_s.value_or(prof.duration_s);
  nlohmann::json out;
  if (o.ndr) {
    ndr_config nc;
    nc.precision = o.ndr_precision;
    nc.trial_s = o.ndr_trial_s.value_or(duration);
    out = ndr_search(runner, prof, nc);
  } else {
    run_stats s = runner.run_trial(o.scale, duration);
    out = summary_json(prof, s, o.scale);
  }
  std::string text = out.dump();
  std::printf("summary: %s\n", text.c_str());
  if (!o.json_path.empty()) {
    std::ofstream f(o.json_path);
    f << out.dump(2) << "\n";
    if (!f)
      std::fprintf(stderr, "%s: cannot write %s\n", prog, o.json_path.c_str());
  }
  ctx.release_spares();
  for (int side = 0; side < 2; ++side)
    ctx.tx[side].drop_all();
  wait_peer_close(ports, o.wait_peer_close_s);
  for (int side = 0; side < 2; ++side)
    dp::shutdown_port(ports[side]);
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  int sep = -1;
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], "--") == 0) {
      sep = i;
      break;
    }
  if (sep < 0) {
    bool validate = false;
    for (int i = 1; i < argc; ++i) {
      if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
        std::printf("%s", pktgen_usage(prog).c_str());
        return 0;
      }
      validate = validate || std::strcmp(argv[i], "--validate") == 0;
    }
    if (!validate)
      die(exit_usage, "missing \"--\": give EAL arguments, then --, then options (see --help)");
  }
  // Only --validate runs without EAL arguments: then everything is ours.
  std::vector<const char*> ours{prog};
  for (int i = sep < 0 ? 1 : sep + 1; i < argc; ++i)
    ours.push_back(argv[i]);
  auto opts = parse_pktgen_options(int(ours.size()), ours.data());
  if (!opts)
    die(exit_usage, opts.error_message());
  if (opts->help) {
    std::printf("%s", pktgen_usage(prog).c_str());
    return 0;
  }
  auto prof = load_profile(opts->profile_path);
  if (!prof)
    die(exit_usage, prof.error_message());
  if (opts->validate) {
    print_profile(prof.value());
    return 0;
  }
  if (opts->ndr)
    for (size_t i = 0; i < prof->items.size(); ++i)
      if (prof->items[i].rate <= 0)
        die(exit_usage, fmt::format("--ndr: traffic[{}] has no rate; the search needs every "
                                    "item's rate as its upper bound",
                                    i));
  if (opts->loopback)
    for (const auto& it : prof->items)
      if (it.type != item_type::established || it.dir != direction::forward)
        die(exit_usage, "--loopback: only forward established items make sense without a "
                        "balancer");

  dp::install_stop_handlers();
  if (rte_eal_init(sep, argv) < 0)
    die(rte_errno == EINVAL ? exit_usage : 1,
        fmt::format("EAL initialisation failed: {} (check the EAL arguments before \"--\")",
                    rte_strerror(rte_errno)));
  int rc = run(opts.value(), prof.value());
  rte_eal_cleanup();
  return rc;
}
