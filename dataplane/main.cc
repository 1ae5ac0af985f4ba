// sluice-dataplane: EAL arguments, "--", then our options (dataplane_options.h).
// The main lcore sets everything up, launches one worker per other lcore and
// then runs the neighbour manager until SIGINT/SIGTERM. Exit status: 0 after a
// clean stop, 2 for a bad argument (one line on stderr naming it), 1 when
// start-up fails for another reason.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fmt/format.h>
#include <memory>
#include <optional>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_pdump.h>

#include "dataplane_options.h"
#include "dnat_flow_rules.h"
#include "eal_memory.h"
#include "flow_handover.h"
#include "flow_telemetry.h"
#include "neighbour_manager.h"
#include "neighbour_table.h"
#include "pipeline.h"
#include "port_setup.h"
#include "port_stats.h"
#include "shm_atomic.h"
#include "shm_region.h"
#include "version.h"
#include "worker_loop.h"

namespace {

using namespace sluice;
using namespace sluice::dp;

constexpr const char* prog = "sluice-dataplane";
constexpr uint32_t neighbour_capacity = 4096;

// EAL file prefix once EAL is up: a failed start-up releases its hugepages too.
std::string g_eal_prefix;

void release_eal_memory() {
  rte_eal_cleanup();
  // EAL keeps its hugepage files for secondary processes; nobody needs them
  // once we are gone (eal_memory.h).
  if (unsigned n = remove_hugepage_files(g_eal_prefix); n > 0)
    std::printf("%s: released %u hugepage file(s)\n", prog, n);
}

[[noreturn]] void die(int code, const std::string& msg) {
  std::fprintf(stderr, "%s: %s\n", prog, msg.c_str());
  std::fflush(stderr);
  if (!g_eal_prefix.empty())
    release_eal_memory();
  std::exit(code);
}

bool is_help(const char* a) {
  return std::strcmp(a, "--help") == 0 || std::strcmp(a, "-h") == 0;
}

// Workers the EAL arguments ask for (lcores of -l minus the main one), for the
// hugepage hint; 1 when they do not say.
uint32_t workers_in_eal_args(int argc, char** argv) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "-l") != 0 && std::strcmp(argv[i], "--lcores") != 0)
      continue;
    uint32_t n = 0;
    const std::string list = argv[i + 1];
    size_t pos = 0;
    while (pos < list.size()) {
      size_t end = list.find(',', pos);
      const std::string part = list.substr(pos, end == std::string::npos ? end : end - pos);
      const auto dash = part.find('-');
      n += dash == std::string::npos ? 1
                                     : uint32_t(std::max(0L, std::atol(part.c_str() + dash + 1) -
                                                                 std::atol(part.c_str()) + 1));
      pos = end == std::string::npos ? list.size() : end + 1;
    }
    return n > 1 ? n - 1 : 1;
  }
  return 1;
}

bool has_arg(int argc, char** argv, const char* what) {
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], what) == 0)
      return true;
  return false;
}

struct run_state {
  std::vector<uint16_t> ports;
  std::vector<std::unique_ptr<pipeline>> pipelines;
  std::vector<worker_context> contexts;
  std::vector<unsigned> worker_lcores;
};

int run(const dataplane_options& o) {
  run_state st;
  unsigned lcore;
  RTE_LCORE_FOREACH_WORKER(lcore) {
    st.worker_lcores.push_back(lcore);
  }
  const auto n_workers = uint16_t(st.worker_lcores.size());
  if (n_workers == 0)
    die(exit_usage, "-l/--lcores: no worker lcore; the main lcore only runs the neighbour "
                    "manager, so give at least two lcores (e.g. -l 0,1)");

  st.ports = o.two_armed ? std::vector<uint16_t>{o.client_port, o.backend_port}
                         : std::vector<uint16_t>{o.port};
  for (size_t i = 0; i < st.ports.size(); ++i)
    if (!rte_eth_dev_is_valid_port(st.ports[i]))
      die(exit_usage,
          fmt::format("{}: no DPDK port {} ({} ports available; add one with "
                      "--vdev or -a)",
                      o.two_armed ? (i == 0 ? "--client-port" : "--backend-port") : "--port",
                      st.ports[i], rte_eth_dev_count_avail()));

  // Shared memory: tables in, counters out.
  const std::string path = o.shm_path.empty() ? shm_region::default_path(o.instance) : o.shm_path;
  auto shm_r = shm_region::create_or_attach(path, abi::default_capacities);
  if (!shm_r)
    die(1, fmt::format("shared memory {}: {}", path, shm_r.error_message()));
  shm_region& shm = shm_r.value();
  if (n_workers > shm.caps().max_workers)
    die(exit_usage, fmt::format("-l/--lcores: {} workers, the shared memory has room for {}",
                                n_workers, shm.caps().max_workers));
  abi::process_info& procs = shm.header()->procs;
  store_release(procs.dp_pid, int32_t(getpid()));
  store_release(procs.dp_start_ns, monotonic_ns());
  store_release(procs.dp_workers, uint32_t(n_workers));
  store_release(procs.dp_heartbeat_ns, monotonic_ns());

  // Mbufs, ports, rings.
  const int socket = int(rte_socket_id());
  auto pool_r =
      create_mempool(uint16_t(st.ports.size()), n_workers, o.mtu, socket, o.rx_desc, o.tx_desc);
  if (!pool_r)
    die(1, pool_r.error_message());
  rte_mempool* pool = pool_r.value();

  std::vector<port_info> infos;
  for (uint16_t port : st.ports) {
    auto p =
        setup_port(port_request{port, n_workers, o.mtu, pool, socket, true, o.rx_desc, o.tx_desc});
    if (!p)
      die(1, p.error_message());
    std::printf("%s\n", describe_port(p.value()).c_str());
    infos.push_back(p.value());
  }
  const steering_config steering = make_steering(infos, n_workers);
  // dnat's replies carry no field the balancer chooses: NICs with rte_flow RSS
  // on a subset of the tuple deliver them to their owner; others hand off.
  std::vector<dnat_flow_steering::port_side> dnat_sides;
  for (size_t i = 0; i < infos.size(); ++i)
    dnat_sides.push_back({infos[i].port_id, !o.two_armed || i == 0, !o.two_armed || i == 1});
  dnat_flow_steering dnat_steer =
      dnat_flow_steering::probe(dnat_sides, n_workers, steering.rss_key, steering.reta);

  auto handoff_r = create_handoff_rings(n_workers, socket);
  if (!handoff_r)
    die(1, handoff_r.error_message());
  auto exception_r = create_exception_ring(socket);
  if (!exception_r)
    die(1, exception_r.error_message());

  neighbour_table neighbours(neighbour_capacity, shm.caps().max_backends);

  // One pipeline per worker.
  const port_info& client = infos.front();
  const port_info& backend = infos.back();
  for (uint16_t w = 0; w < n_workers; ++w) {
    pipeline_config cfg;
    cfg.worker_id = w;
    cfg.n_workers = n_workers;
    std::memcpy(cfg.mac[client_side].data(), client.mac.addr_bytes, 6);
    std::memcpy(cfg.mac[backend_side].data(), backend.mac.addr_bytes, 6);
    cfg.addresses = o.addresses;
    cfg.nat_pool = o.nat_pool;
    cfg.gateways[0] = o.gateways[0];
    cfg.gateways[1] = o.gateways[1];
    cfg.encap_src4 = o.encap_src4;
    cfg.encap_src6 = o.encap_src6;
    cfg.mtu = o.mtu;
    cfg.flow_capacity = o.flow_table_size;
    cfg.nat_port_min = o.nat_port_min;
    cfg.nat_port_max = o.nat_port_max;
    cfg.new_flow_budget = o.new_flow_budget;
    cfg.new_flow_budget_burst = o.new_flow_budget_burst;
    cfg.mid_flow_rst_rate = o.mid_flow_rst_rate;
    cfg.steering = steering;
    int ws = int(rte_lcore_to_socket_id(st.worker_lcores[w]));
    cfg.socket_id = ws < 0 ? socket : ws;
    auto pl = pipeline::create(cfg, shm, neighbours, handoff_r.value());
    if (!pl)
      die(1, fmt::format("worker {}: {}", w, pl.error_message()));
    st.pipelines.push_back(std::move(pl.value()));
  }

  st.contexts.resize(n_workers);
  for (uint16_t w = 0; w < n_workers; ++w) {
    worker_context& c = st.contexts[w];
    c.worker_id = w;
    c.pl = st.pipelines[w].get();
    c.n_rx_sides = o.two_armed ? 2 : 1;
    c.rx[client_side] = c.tx[client_side] = queue_ref{client.port_id, w};
    c.rx[backend_side] = c.tx[backend_side] = queue_ref{backend.port_id, w};
    // With several workers the pipeline checks ownership in software whatever
    // the NIC does, so every worker drains its handoff ring.
    c.handoff = n_workers > 1 ? handoff_r.value()[w] : nullptr;
    c.exception = exception_r.value();
    c.idle = idle_config{o.busy_poll, o.idle_threshold, o.idle_pause_polls, o.idle_sleep_us,
                         o.idle_sleep_max_us};
  }

  neighbour_manager_config ncfg;
  ncfg.two_armed = o.two_armed;
  ncfg.addresses = o.addresses;
  ncfg.gateways[0] = o.gateways[0];
  ncfg.gateways[1] = o.gateways[1];
  const port_info* side_port[2] = {&client, &backend};
  for (int s = 0; s < 2; ++s) {
    ncfg.can_send[s] = side_port[s]->main_tx;
    ncfg.tx[s] = queue_ref{side_port[s]->port_id, side_port[s]->main_tx_queue};
    std::memcpy(ncfg.mac[s].data(), side_port[s]->mac.addr_bytes, 6);
  }
  ncfg.pool = pool;
  ncfg.exception = exception_r.value();
  ncfg.n_workers = n_workers;
  ncfg.stats_interval_ms = o.stats_interval_ms;
  uint64_t dnat_generation = ~uint64_t(0);
  if (dnat_steer.mode() == dnat_steering_mode::rte_flow)
    ncfg.on_poll = [&] {
      const uint64_t gen = load_acquire(shm.header()->generation);
      if (gen == dnat_generation)
        return;
      auto want = dnat_endpoints(shm.view(unsigned(gen % 2)), shm.caps().max_services,
                                 shm.caps().max_backends);
      if (load_acquire(shm.header()->generation) != gen)
        return; // a publication landed while we read: look again next poll
      if (!dnat_steer.sync(want))
        std::fprintf(stderr,
                     "%s: warning: %lu dnat rte_flow rule(s) refused so far; their packets "
                     "are handed to their owner in software\n",
                     prog, static_cast<unsigned long>(dnat_steer.refused()));
      dnat_generation = gen;
    };
  neighbour_manager nm(ncfg, neighbours, shm);
  if (!nm.add_static(o.neighbours))
    die(exit_usage, "--neigh: too many static neighbours");
  nm.poll(monotonic_ns()); // backend MACs known before the first packet

  std::string lcores;
  for (unsigned l : st.worker_lcores)
    lcores += fmt::format("{}{}", lcores.empty() ? "" : ",", l);
  std::printf("%s: instance %s, shm %s (%s), %u worker(s) on lcore(s) %s, %s layout, "
              "steering %s, idle %s\n",
              prog, o.instance.c_str(), path.c_str(), shm.created() ? "created" : "attached",
              n_workers, lcores.c_str(), o.two_armed ? "two-armed" : "one-armed",
              n_workers == 1      ? "none (one worker)"
              : steering.software ? "software (DSR on its queue; nat and dnat checked, "
                                    "handed to their owner)"
                                  : "hardware RSS (DSR and nat on their queue; dnat by its "
                                    "owner, next line)",
              o.busy_poll ? "busy-poll"
                          : fmt::format("back-off after {} polls, {} pause polls, sleep {}..{} us",
                                        o.idle_threshold, o.idle_pause_polls, o.idle_sleep_us,
                                        o.idle_sleep_max_us)
                                .c_str());
  std::printf("%s: dnat steering %s\n", prog, dnat_steer.describe().c_str());

  // Hitless restart: the previous process's flows before the first packet.
  if (!o.flow_snapshot.empty())
    adopt_flow_snapshot(o.flow_snapshot, st.pipelines);

  for (uint16_t w = 0; w < n_workers; ++w) {
    if (int rc = rte_eal_remote_launch(worker_main, &st.contexts[w], st.worker_lcores[w]); rc != 0)
      die(1, fmt::format("cannot launch worker {} on lcore {}: {}", w, st.worker_lcores[w],
                         rte_strerror(-rc)));
  }
  {
    std::vector<pipeline*> pls;
    for (auto& p : st.pipelines)
      pls.push_back(p.get());
    register_flow_telemetry(pls);
    std::vector<port_stats_source> sources;
    for (size_t i = 0; i < infos.size(); ++i)
      sources.push_back(port_stats_source{infos[i].port_id,
                                          o.two_armed ? (i == 0 ? "client" : "backend") : "port",
                                          infos[i].xsk_fds,
                                          n_workers == 1      ? "none"
                                          : steering.software ? "software"
                                                              : "hardware-rss",
                                          dnat_steering_name(dnat_steer.mode())});
    register_port_telemetry(sources);
  }
  // Tell the control plane where our telemetry socket is: a symlink it finds
  // from the shared-memory path (it cannot know our EAL file prefix).
  const std::string telemetry_link = shm_region::telemetry_link_path(path);
  if (telemetry_link.rfind("/run/sluice/", 0) == 0)
    mkdir("/run/sluice", 0755); // EEXIST is fine; any other failure shows in symlink()
  unlink(telemetry_link.c_str());
  if (symlink((std::string(rte_eal_get_runtime_dir()) + "/dpdk_telemetry.v2").c_str(),
              telemetry_link.c_str()) != 0)
    std::fprintf(stderr, "%s: warning: cannot create %s: %s (sluicectl conns unavailable)\n", prog,
                 telemetry_link.c_str(), std::strerror(errno));
  std::printf("%s: forwarding (SIGINT/SIGTERM to stop)\n", prog);

  nm.run();

  rte_eal_mp_wait_lcore();
  // The workers are stopped: their tables are ours to read.
  if (!o.flow_snapshot.empty())
    save_flow_snapshot(o.flow_snapshot, st.pipelines);
  std::printf("%s: stopping; neighbour requests sent %lu, neighbours learned %lu\n", prog,
              static_cast<unsigned long>(nm.requests_sent()),
              static_cast<unsigned long>(nm.learned()));
  nm.print_stats();
  unregister_port_telemetry();
  dnat_steer.remove_all();
  for (uint16_t port : st.ports)
    shutdown_port(port);
  unregister_flow_telemetry();
  unlink(telemetry_link.c_str());
  for (auto& pl : st.pipelines)
    pl->set_live(false);
  st.pipelines.clear();
  store_release(procs.dp_workers, 0u);
  for (rte_ring* r : handoff_r.value())
    rte_ring_free(r);
  rte_ring_free(exception_r.value());
  rte_mempool_free(pool);
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);

  // Our options come after "--"; parse them before EAL touches anything so a
  // typo costs no hugepages and gets a one-line answer.
  int sep = -1;
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], "--") == 0) {
      sep = i;
      break;
    }
  for (int i = 1; i < argc && (sep < 0 || i < sep); ++i)
    if (std::strcmp(argv[i], "--version") == 0) {
      std::printf("%s %s\n", prog, SLUICE_VERSION);
      return 0;
    }
  if (sep < 0) {
    for (int i = 1; i < argc; ++i)
      if (is_help(argv[i])) {
        std::printf("%s", dataplane_usage(prog).c_str());
        return 0;
      }
    die(exit_usage, "missing \"--\": give EAL arguments, then --, then options (see --help)");
  }
  std::vector<const char*> ours{prog};
  for (int i = sep + 1; i < argc; ++i)
    ours.push_back(argv[i]);
  auto opts = parse_dataplane_options(int(ours.size()), ours.data());
  if (!opts)
    die(exit_usage, opts.error_message());
  if (opts->help) {
    std::printf("%s", dataplane_usage(prog).c_str());
    return 0;
  }

  install_stop_handlers();
  if (rte_eal_init(sep, argv) < 0) {
    const int err = rte_errno;
    const std::string hint = hugepage_hint(err, workers_in_eal_args(sep, argv),
                                           opts->flow_table_size, has_arg(sep, argv, "--no-huge"));
    die(err == EINVAL ? exit_usage : 1,
        fmt::format("EAL initialisation failed: {} (check the EAL arguments before \"--\")\n{}",
                    rte_strerror(err), hint.empty() ? "" : hint.substr(0, hint.size() - 1)));
  }
  const std::string runtime_dir = rte_eal_get_runtime_dir();
  g_eal_prefix = runtime_dir.substr(runtime_dir.rfind('/') + 1);
  // Packet capture: dpdk-pdump (a secondary process) attaches through the
  // EAL's multi-process channel, which --no-shconf / --in-memory disable.
  const bool pdump = rte_pdump_init() == 0;
  if (!pdump)
    std::fprintf(stderr,
                 "%s: note: packet capture (dpdk-pdump) unavailable: %s (it needs the EAL's "
                 "multi-process support: no --no-shconf or --in-memory)\n",
                 prog, rte_strerror(rte_errno));
  int rc = run(opts.value());
  if (pdump)
    rte_pdump_uninit();
  release_eal_memory();
  return rc;
}
