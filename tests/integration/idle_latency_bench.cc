// idle_latency_bench: wake-up latency of the worker loop's idle back-off.
//
// Runs the real worker loop (worker_main) with a real pipeline on a net_ring
// port built from two rings this process owns. For each sample the main lcore
// waits until the worker is idle (backed off to sleeping, unless --busy-poll),
// enqueues an ARP request for an own address on the RX ring and spins on the TX
// ring until the ARP reply appears. The time between the enqueue and the
// dequeue is the sample: wake-up delay plus one pass through the pipeline.
//
//   idle_latency_bench [EAL args] -- [--samples N] [--busy-poll]
//       [--idle-threshold N] [--idle-pause-polls N] [--idle-sleep-us N]
//       [--idle-sleep-max-us N] [--settle-ms N]
//
// --settle-ms N: idle spell before each sample is N ms plus 0.2..2.2 ms
// (default 0): with the adaptive back-off a longer spell means a longer sleep
// (the cap after a few ms), so this measures the worst-case wake-up.
//
// Prints one line: mode, samples, median, p90, p99 and max in microseconds.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fmt/format.h>
#include <random>
#include <string>
#include <unistd.h>
#include <vector>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "counters.h"
#include "neighbour_table.h"
#include "pipeline.h"
#include "port_setup.h"
#include "shm_atomic.h"
#include "shm_region.h"
#include "worker_loop.h"

namespace {

using namespace sluice;
using namespace sluice::dp;

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "idle_latency_bench: %s\n", msg.c_str());
  std::exit(1);
}

uint32_t to_u32(const char* opt, const char* v) {
  char* end = nullptr;
  unsigned long x = std::strtoul(v, &end, 10);
  if (end == v || *end != '\0' || x > 100000000ul)
    die(fmt::format("{}: expected a number, got '{}'", opt, v));
  return uint32_t(x);
}

// An ARP request "who has 192.0.2.1 tell 192.0.2.254" from 02:00:00:00:00:fe.
void fill_arp_request(rte_mbuf* m) {
  constexpr uint8_t frame[42] = {
      0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0xfe, 0x08, 0x06,
      0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0xfe,
      192,  0,    2,    254,  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 192,  0,    2,    1,
  };
  char* p = rte_pktmbuf_append(m, sizeof(frame));
  std::memcpy(p, frame, sizeof(frame));
}

double percentile(std::vector<double>& v, double q) {
  size_t i = std::min(v.size() - 1, size_t(q * double(v.size() - 1) + 0.5));
  std::nth_element(v.begin(), v.begin() + long(i), v.end());
  return v[i];
}

} // namespace

int main(int argc, char** argv) {
  int sep = argc;
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], "--") == 0) {
      sep = i;
      break;
    }
  uint32_t samples = 200;
  idle_config idle;
  uint32_t settle_ms = 0;
  for (int i = sep + 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc)
        die(a + ": missing value");
      return argv[++i];
    };
    if (a == "--samples")
      samples = std::max(1u, to_u32("--samples", next()));
    else if (a == "--busy-poll")
      idle.busy_poll = true;
    else if (a == "--idle-threshold")
      idle.threshold = to_u32("--idle-threshold", next());
    else if (a == "--idle-pause-polls")
      idle.pause_polls = to_u32("--idle-pause-polls", next());
    else if (a == "--idle-sleep-us")
      idle.sleep_us = to_u32("--idle-sleep-us", next());
    else if (a == "--settle-ms")
      settle_ms = to_u32("--settle-ms", next());
    else if (a == "--idle-sleep-max-us")
      idle.sleep_max_us = to_u32("--idle-sleep-max-us", next());
    else
      die("unknown option " + a);
  }

  if (rte_eal_init(sep, argv) < 0)
    die(fmt::format("EAL: {}", rte_strerror(rte_errno)));
  unsigned worker_lcore = rte_get_next_lcore(-1, 1, 0);
  if (worker_lcore >= RTE_MAX_LCORE)
    die("need two lcores (-l 0,1)");
  const int socket = int(rte_socket_id());

  auto pool = create_mempool(1, 1, 1500, socket);
  if (!pool)
    die(pool.error_message());
  rte_ring* rx = rte_ring_create("bench_rx", 1024, socket, RING_F_SP_ENQ | RING_F_SC_DEQ);
  rte_ring* tx = rte_ring_create("bench_tx", 1024, socket, RING_F_SP_ENQ | RING_F_SC_DEQ);
  if (rx == nullptr || tx == nullptr)
    die("cannot create rings");
  int port = rte_eth_from_rings("bench_ring", &rx, 1, &tx, 1, socket);
  if (port < 0)
    die(fmt::format("rte_eth_from_rings: {}", rte_strerror(rte_errno)));
  auto info = setup_port(port_request{uint16_t(port), 1, 1500, pool.value(), socket});
  if (!info)
    die(info.error_message());

  const std::string shm_path = fmt::format("/dev/shm/sluice-idle-bench-{}", getpid());
  auto shm = shm_region::create_or_attach(shm_path, abi::default_capacities);
  if (!shm)
    die(shm.error_message());
  neighbour_table neighbours(64, shm->caps().max_backends);

  pipeline_config cfg;
  std::memcpy(cfg.mac[0].data(), info->mac.addr_bytes, 6);
  std::memcpy(cfg.mac[1].data(), info->mac.addr_bytes, 6);
  cfg.addresses.push_back(own_address{*parse_prefix("192.0.2.1/24"), client_side});
  cfg.encap_src4 = *parse_prefix("172.16.0.0/16");
  cfg.encap_src6 = *parse_prefix("fd00:5100::/96");
  cfg.flow_capacity = 4096;
  cfg.steering = make_steering({info.value()}, 1);
  cfg.socket_id = socket;
  auto pl = pipeline::create(cfg, shm.value(), neighbours, {});
  if (!pl)
    die(pl.error_message());

  worker_context ctx;
  ctx.pl = pl->get();
  ctx.rx[0] = ctx.tx[0] = ctx.rx[1] = ctx.tx[1] = queue_ref{uint16_t(port), 0};
  ctx.exception = rte_ring_create("bench_exc", 1024, socket, RING_F_SC_DEQ);
  ctx.idle = idle;
  if (rte_eal_remote_launch(worker_main, &ctx, worker_lcore) != 0)
    die("cannot launch the worker");

  const uint64_t* idle_sleeps = &shm->counters(0)->worker[size_t(worker_counter::idle_sleeps)];
  const double tsc_per_us = double(rte_get_tsc_hz()) / 1e6;
  std::mt19937 rng(42);
  std::uniform_int_distribution<long> jitter_ns(0, 2000000);
  std::vector<double> lat_us;
  uint32_t timeouts = 0;
  for (uint32_t s = 0; s < samples; ++s) {
    // Let the worker settle: wait a random 0..2 ms (plus --settle-ms), and
    // until it sleeps.
    const long settle_ns = long(settle_ms) * 1000000 + 200000 + jitter_ns(rng);
    timespec ts{settle_ns / 1000000000, settle_ns % 1000000000};
    nanosleep(&ts, nullptr);
    if (!idle.busy_poll) {
      uint64_t before = load_relaxed(*idle_sleeps);
      uint64_t deadline = rte_rdtsc() + rte_get_tsc_hz();
      while (load_relaxed(*idle_sleeps) < before + 2 && rte_rdtsc() < deadline)
        rte_pause();
    }
    rte_mbuf* m = rte_pktmbuf_alloc(pool.value());
    if (m == nullptr)
      die("mbuf pool empty");
    fill_arp_request(m);
    void* out = nullptr;
    const uint64_t t0 = rte_rdtsc();
    if (rte_ring_enqueue(rx, m) != 0)
      die("rx ring full");
    const uint64_t deadline = t0 + rte_get_tsc_hz();
    while (rte_ring_dequeue(tx, &out) != 0 && rte_rdtsc() < deadline)
      ;
    const uint64_t t1 = rte_rdtsc();
    if (out == nullptr) {
      ++timeouts;
      continue;
    }
    rte_pktmbuf_free(static_cast<rte_mbuf*>(out));
    lat_us.push_back(double(t1 - t0) / tsc_per_us);
  }

  request_stop();
  rte_eal_mp_wait_lcore();
  pl->reset();
  shutdown_port(uint16_t(port));
  unlink(shm_path.c_str());

  if (lat_us.empty())
    die(fmt::format("no ARP reply came back in {} samples (pipeline did not answer)", samples));
  std::string mode = idle.busy_poll
                         ? "busy-poll"
                         : fmt::format("back-off (threshold {}, pause {}, sleep {}..{} us, "
                                       "idle spell {}+0.2..2.2 ms)",
                                       idle.threshold, idle.pause_polls, idle.sleep_us,
                                       idle.sleep_max_us, settle_ms);
  double med = percentile(lat_us, 0.5), p90 = percentile(lat_us, 0.9),
         p99 = percentile(lat_us, 0.99), mx = *std::max_element(lat_us.begin(), lat_us.end());
  std::printf("%s: %zu samples, median %.1f us, p90 %.1f us, p99 %.1f us, max %.1f us%s\n",
              mode.c_str(), lat_us.size(), med, p90, p99, mx,
              timeouts ? fmt::format(" ({} timeouts)", timeouts).c_str() : "");
  rte_eal_cleanup();
  return 0;
}
