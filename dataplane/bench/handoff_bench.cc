// sluice-handoff-bench: what handing packets to another worker costs, the
// figure that limits scaling when steering cannot deliver a flow to its owner
// (dnat replies without rte_flow; docs/dataplane.md, "Steering").
//
// Two lcores, the way two workers run: the main lcore plays the worker that
// received the packets, a worker lcore plays their owner. Per packet the
// sender allocates an mbuf (the NIC's RX), writes 64 bytes of headers into it
// (the parse touches them) and stages it; at the end of each burst it hands
// the burst over with one multi-producer enqueue on the owner's rte_ring
// (what pipeline_impl::flush_handoffs does). The owner dequeues in bursts,
// reads the headers and rewrites 14 bytes (the pipeline's work on the lines
// the sender touched: they cross the interconnect), then frees the mbufs (its
// TX). The local baseline does the same on one lcore without the ring.
//
// Reported, median of --runs runs, cycles per packet (rte_rdtsc), each run's
// figure being the median over its bursts of the burst's cycles divided by its
// packets: on a shared machine a burst during which the thread was preempted
// is an outlier the median ignores, where a total would not.
//   local        alloc + touch + rewrite + free on one core
//   sender       alloc + touch + the enqueue (its share of a handoff)
//   enqueue      the enqueue alone (the cost to the sender beyond its work)
//   owner        dequeue + rewrite + free on the owner, busy polls only
//   handoff_overhead = sender + owner - local: the cycles a handoff adds
//   handoff Mpps: packets through the pair per second of wall time.
// Performance figures belong in docs/performance.md, not in a test: CI runs
// this with --quick only to check that it works.
#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_pause.h>
#include <rte_ring.h>

namespace {

constexpr uint32_t header_bytes = 64; // Ethernet + IP + TCP with options
constexpr uint32_t rewrite_bytes = 14;

struct options {
  uint64_t packets = 20'000'000;
  unsigned runs = 5;
  unsigned burst = 32;
};

struct shared_state {
  rte_ring* ring = nullptr;
  uint64_t packets = 0;
  unsigned burst = 32;
  std::atomic<bool> go{false};
  std::atomic<bool> done{false};
  // Owner's results (written before done): cycles per packet of each burst.
  std::vector<double> owner_samples;
  uint64_t owner_received = 0;
  uint64_t checksum = 0;
};

double median(std::vector<double> v) {
  if (v.empty())
    return 0;
  auto mid = v.begin() + std::ptrdiff_t(v.size() / 2);
  std::nth_element(v.begin(), mid, v.end());
  return *mid;
}

// The owner's work on a packet the sender parsed: read the headers, rewrite
// the Ethernet header (the lines move to this core in the modified state).
inline uint64_t owner_touch(rte_mbuf* m) {
  uint8_t* d = rte_pktmbuf_mtod(m, uint8_t*);
  uint64_t sum = 0;
  for (uint32_t i = 0; i < header_bytes; i += 8) {
    uint64_t v;
    std::memcpy(&v, d + i, 8);
    sum += v;
  }
  std::memset(d, int(sum & 0xff), rewrite_bytes);
  return sum;
}

inline void sender_touch(rte_mbuf* m, uint64_t seq) {
  uint8_t* d = rte_pktmbuf_mtod(m, uint8_t*);
  for (uint32_t i = 0; i < header_bytes; i += 8)
    std::memcpy(d + i, &seq, 8);
  m->data_len = m->pkt_len = 64;
}

int owner_main(void* arg) {
  auto* s = static_cast<shared_state*>(arg);
  while (!s->go.load(std::memory_order_acquire))
    rte_pause();
  std::vector<rte_mbuf*> pkts(s->burst);
  s->owner_samples.reserve(s->packets / s->burst * 2);
  uint64_t got = 0, sum = 0;
  while (got < s->packets) {
    const uint64_t t0 = rte_rdtsc();
    unsigned n = rte_ring_sc_dequeue_burst(s->ring, reinterpret_cast<void**>(pkts.data()), s->burst,
                                           nullptr);
    if (n == 0) {
      rte_pause();
      continue;
    }
    for (unsigned i = 0; i < n; ++i)
      sum += owner_touch(pkts[i]);
    rte_pktmbuf_free_bulk(pkts.data(), n);
    s->owner_samples.push_back(double(rte_rdtsc() - t0) / n);
    got += n;
  }
  s->owner_received = got;
  s->checksum = sum;
  s->done.store(true, std::memory_order_release);
  return 0;
}

struct run_result {
  double local = 0, sender = 0, enqueue = 0, owner = 0, mpps = 0, ring_full_retries = 0;
};

double local_run(rte_mempool* pool, const options& o) {
  std::vector<rte_mbuf*> pkts(o.burst);
  std::vector<double> samples;
  samples.reserve(o.packets / o.burst);
  uint64_t sum = 0;
  for (uint64_t done = 0; done < o.packets; done += o.burst) {
    const uint64_t t0 = rte_rdtsc();
    if (rte_pktmbuf_alloc_bulk(pool, pkts.data(), o.burst) != 0)
      std::abort();
    for (unsigned i = 0; i < o.burst; ++i)
      sender_touch(pkts[i], done + i);
    for (unsigned i = 0; i < o.burst; ++i)
      sum += owner_touch(pkts[i]);
    rte_pktmbuf_free_bulk(pkts.data(), o.burst);
    samples.push_back(double(rte_rdtsc() - t0) / o.burst);
  }
  if (sum == 42) // keeps the work observable
    std::puts("");
  return median(std::move(samples));
}

run_result handoff_run(rte_mempool* pool, rte_ring* ring, unsigned owner_lcore, const options& o) {
  shared_state s;
  s.ring = ring;
  s.packets = o.packets;
  s.burst = o.burst;
  if (rte_eal_remote_launch(owner_main, &s, owner_lcore) != 0) {
    std::fprintf(stderr, "cannot launch the owner on lcore %u\n", owner_lcore);
    std::exit(1);
  }
  s.go.store(true, std::memory_order_release);
  std::vector<rte_mbuf*> pkts(o.burst);
  std::vector<double> sender_samples, enqueue_samples;
  sender_samples.reserve(o.packets / o.burst);
  enqueue_samples.reserve(o.packets / o.burst);
  uint64_t retries = 0;
  const uint64_t wall0 = rte_rdtsc();
  for (uint64_t sent = 0; sent < o.packets; sent += o.burst) {
    while (rte_pktmbuf_alloc_bulk(pool, pkts.data(), o.burst) != 0)
      rte_pause(); // the owner has not freed enough yet (not timed: waiting)
    const uint64_t t0 = rte_rdtsc();
    for (unsigned i = 0; i < o.burst; ++i)
      sender_touch(pkts[i], sent + i);
    const uint64_t t1 = rte_rdtsc();
    unsigned q =
        rte_ring_mp_enqueue_burst(ring, reinterpret_cast<void**>(pkts.data()), o.burst, nullptr);
    const uint64_t t2 = rte_rdtsc();
    // A full ring: the pipeline drops here (handoff_ring_full); the bench
    // waits untimed, and only bursts that went in whole count as samples.
    if (q == o.burst) {
      sender_samples.push_back(double(t2 - t0) / o.burst);
      enqueue_samples.push_back(double(t2 - t1) / o.burst);
    }
    while (q < o.burst) {
      ++retries;
      rte_pause();
      q += rte_ring_mp_enqueue_burst(ring, reinterpret_cast<void**>(pkts.data() + q), o.burst - q,
                                     nullptr);
    }
  }
  while (!s.done.load(std::memory_order_acquire))
    rte_pause();
  const uint64_t wall = rte_rdtsc() - wall0;
  rte_eal_wait_lcore(owner_lcore);
  run_result r;
  r.sender = median(std::move(sender_samples));
  r.enqueue = median(std::move(enqueue_samples));
  r.owner = median(std::move(s.owner_samples));
  r.mpps = double(o.packets) / (double(wall) / double(rte_get_tsc_hz())) / 1e6;
  r.ring_full_retries = double(retries);
  return r;
}

int usage(const char* prog) {
  std::fprintf(stderr,
               "usage: %s EAL-ARGS -- [--packets N] [--runs R] [--burst B] [--quick]\n"
               "  needs two lcores (e.g. -l 0,1 --no-huge -m 512 --no-pci)\n",
               prog);
  return 2;
}

} // namespace

int main(int argc, char** argv) {
  const int eal = rte_eal_init(argc, argv);
  if (eal < 0) {
    std::fprintf(stderr, "EAL initialisation failed\n");
    return 1;
  }
  options o;
  for (int i = eal + 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (a == "--quick") {
      o.packets = 200'000;
      o.runs = 1;
    } else if (a == "--packets" && (v = next())) {
      o.packets = std::strtoull(v, nullptr, 10);
    } else if (a == "--runs" && (v = next())) {
      o.runs = unsigned(std::strtoul(v, nullptr, 10));
    } else if (a == "--burst" && (v = next())) {
      o.burst = unsigned(std::strtoul(v, nullptr, 10));
    } else {
      return usage(argv[0]);
    }
  }
  if (o.burst == 0 || o.burst > 256 || o.runs == 0 || o.packets < o.burst)
    return usage(argv[0]);
  o.packets -= o.packets % o.burst;
  const unsigned owner_lcore = rte_get_next_lcore(rte_get_main_lcore(), 1, 0);
  if (owner_lcore >= RTE_MAX_LCORE) {
    std::fprintf(stderr, "needs two lcores (-l 0,1)\n");
    return usage(argv[0]);
  }
  // The pool holds the ring's worth plus bursts in flight on both sides.
  rte_mempool* pool = rte_pktmbuf_pool_create("handoff_bench", 8191, 256, 0,
                                              RTE_MBUF_DEFAULT_BUF_SIZE, int(rte_socket_id()));
  rte_ring* ring = rte_ring_create("handoff_bench", 1024, int(rte_socket_id()), RING_F_SC_DEQ);
  if (!pool || !ring) {
    std::fprintf(stderr, "cannot create the mbuf pool or the ring\n");
    return 1;
  }
  std::printf("handoff bench: %" PRIu64 " packets per run, bursts of %u, %u run(s), "
              "sender lcore %u, owner lcore %u, TSC %.3f GHz\n",
              o.packets, o.burst, o.runs, rte_get_main_lcore(), owner_lcore,
              double(rte_get_tsc_hz()) / 1e9);
  std::vector<double> local, sender, enq, owner, mpps, retries;
  for (unsigned r = 0; r < o.runs; ++r) {
    local.push_back(local_run(pool, o));
    run_result h = handoff_run(pool, ring, owner_lcore, o);
    sender.push_back(h.sender);
    enq.push_back(h.enqueue);
    owner.push_back(h.owner);
    mpps.push_back(h.mpps);
    retries.push_back(h.ring_full_retries);
    std::printf("run %u: local %.1f, sender %.1f (enqueue %.1f), owner %.1f cycles/packet, "
                "%.2f Mpps through the handoff, %.0f ring-full retries\n",
                r + 1, local.back(), h.sender, h.enqueue, h.owner, h.mpps, h.ring_full_retries);
  }
  const double overhead = median(sender) + median(owner) - median(local);
  std::printf("median: local=%.1f sender=%.1f enqueue=%.1f owner=%.1f handoff_overhead=%.1f "
              "cycles/packet handoff_mpps=%.2f\n",
              median(local), median(sender), median(enq), median(owner), overhead, median(mpps));
  rte_ring_free(ring);
  rte_mempool_free(pool);
  rte_eal_cleanup();
  return 0;
}
