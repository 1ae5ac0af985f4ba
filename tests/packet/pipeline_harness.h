// Drives the real worker pipeline (the same object sluice-dataplane runs) on
// mbufs built from byte vectors, without ports: EAL runs in-memory without
// hugepages or PCI, tables are published through the real shared-memory
// publisher, and every output is read back as bytes with the side it left on.
#pragma once

#include <algorithm>
#include <atomic>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <vector>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include "backend_scheduler.h"
#include "neighbour_table.h"
#include "packet_builder.h"
#include "pipeline.h"
#include "publisher.h"
#include "shm_region.h"

namespace sluice::test {

inline void ensure_eal() {
  static bool done = false;
  if (done)
    return;
  // --in-memory cannot be combined with --no-huge; --no-shconf plus a unique
  // prefix keeps parallel test processes from sharing runtime files.
  static std::string prefix = "--file-prefix=sluice-test-" + std::to_string(getpid());
  const char* argv[] = {
      "sluice-packet-test", "--no-huge",     "-m", "512", "--no-pci", "--no-shconf",
      prefix.c_str(),       "--log-level=3", "-l", "0"};
  int argc = int(sizeof(argv) / sizeof(argv[0]));
  if (rte_eal_init(argc, const_cast<char**>(argv)) < 0)
    throw std::runtime_error("rte_eal_init failed");
  done = true;
}

inline rte_mempool* test_pool() {
  static rte_mempool* pool = nullptr;
  if (!pool) {
    pool = rte_pktmbuf_pool_create("sluice_test_pool", 2047, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                   SOCKET_ID_ANY);
    if (!pool)
      throw std::runtime_error("mempool creation failed");
  }
  return pool;
}

// MAC the tests give every backend: 02:00:00:00:01:<last address byte>.
inline mac_t backend_mac_for(const ip_addr& a) {
  return mac_t{0x02, 0, 0, 0, 0x01, a.bytes[15]};
}

inline const mac_t client_mac = {0x02, 0, 0, 0, 0, 0x01};
inline const mac_t own_mac = {0x02, 0, 0, 0, 0, 0xaa};

struct out_packet {
  dp::side side;
  bytes data;
};

struct run_result {
  std::vector<out_packet> tx;
  uint32_t dropped = 0;
  uint32_t exceptions = 0;
};

inline dp::pipeline_config default_pipeline_config() {
  dp::pipeline_config c;
  c.mac[0] = own_mac;
  c.mac[1] = own_mac;
  c.addresses.push_back({*parse_prefix("192.0.2.1/24"), dp::client_side});
  c.addresses.push_back({*parse_prefix("2001:db8:f::1/64"), dp::client_side});
  c.nat_pool = {ip("192.0.2.200"), ip("2001:db8:f::200")};
  c.encap_src4 = *parse_prefix("172.16.0.1/32");
  c.encap_src6 = *parse_prefix("fd00:5100::1/128");
  c.flow_capacity = 4096;
  c.affinity_capacity = 4096;
  c.sweep_cycle_ms = 1000; // tests jump seconds ahead: one tick sweeps everything
  return c;
}

class harness {
public:
  // `workers` > 1 builds that many pipelines sharing the tables, with one
  // handoff ring each, the way sluice-dataplane runs several worker cores.
  // `caps`: capacities of the shared-memory object (small ones make a harness
  // cheap to create, as the fuzz target does per input).
  explicit harness(const std::vector<service_config>& services,
                   dp::pipeline_config cfg = default_pipeline_config(), uint16_t workers = 1,
                   const abi::capacities& caps = abi::default_capacities)
      : neigh_(64, caps.max_backends) {
    ensure_eal();
    static std::atomic<int> seq{0};
    int id = seq++;
    path_ = "/dev/shm/sluice-ptest-" + std::to_string(getpid()) + "-" + std::to_string(id);
    auto r = shm_region::create_or_attach(path_, caps);
    if (!r)
      throw std::runtime_error(r.error_message());
    shm_ = std::make_unique<shm_region>(std::move(r.value()));
    pub_ = std::make_unique<publisher>(*shm_);
    publish(services);
    std::vector<rte_ring*> rings;
    if (workers > 1)
      for (uint16_t w = 0; w < workers; ++w) {
        std::string name = "ptest_ring_" + std::to_string(id) + "_" + std::to_string(w);
        rte_ring* ring = rte_ring_create(name.c_str(), 1024, SOCKET_ID_ANY, RING_F_SC_DEQ);
        if (!ring)
          throw std::runtime_error("ring creation failed");
        rings_.push_back(ring);
      }
    cfg.n_workers = workers;
    for (uint16_t w = 0; w < workers; ++w) {
      cfg.worker_id = w;
      auto p = dp::pipeline::create(cfg, *shm_, neigh_, rings_);
      if (!p)
        throw std::runtime_error(p.error_message());
      pl_.push_back(std::move(p.value()));
    }
    base_tsc_ = rte_rdtsc();
  }
  ~harness() {
    pl_.clear();
    dp::backend_scheduler::release_shared(path_);
    for (rte_ring* r : rings_)
      rte_ring_free(r);
    pub_.reset();
    shm_.reset();
    unlink(path_.c_str());
  }

  // Publishes a new generation and resolves every backend's MAC.
  void publish(const std::vector<service_config>& services) {
    auto g = pub_->publish(services, std::chrono::milliseconds(2000));
    if (!g)
      throw std::runtime_error(g.error_message());
    table_view v = shm_->view(unsigned(g.value() & 1));
    for (uint32_t i = 0; i < v.hdr->backend_limit; ++i) {
      const auto& b = v.backends[i];
      if (!(b.flags & abi::backend_in_use))
        continue;
      ip_addr a;
      std::memcpy(a.bytes.data(), b.addr, 16);
      neigh_.set_backend_mac(i, dp::pack_mac(backend_mac_for(a).data()));
    }
  }

  // Runs one burst. `at_s` is the time since the harness started, in seconds.
  run_result run(const std::vector<bytes>& frames, dp::side rx = dp::client_side, double at_s = 0,
                 uint16_t worker = 0) {
    std::vector<rte_mbuf*> in;
    for (const bytes& f : frames) {
      rte_mbuf* m = rte_pktmbuf_alloc(test_pool());
      if (!m)
        throw std::runtime_error("mbuf pool exhausted");
      char* d = rte_pktmbuf_append(m, uint16_t(f.size()));
      if (!d)
        throw std::runtime_error("frame too large for an mbuf");
      std::memcpy(d, f.data(), f.size());
      in.push_back(m);
    }
    return run_mbufs(in, rx, at_s, worker, false);
  }

  // Processes what other workers handed to `worker`.
  run_result drain_handoff(uint16_t worker, double at_s = 0) {
    std::vector<rte_mbuf*> in(dp::max_burst);
    unsigned n = rte_ring_sc_dequeue_burst(rings_.at(worker), reinterpret_cast<void**>(in.data()),
                                           dp::max_burst, nullptr);
    in.resize(n);
    return run_mbufs(in, dp::client_side, at_s, worker, true);
  }

  unsigned handoff_pending(uint16_t worker) const { return rte_ring_count(rings_.at(worker)); }

  run_result run_mbufs(std::vector<rte_mbuf*>& in, dp::side rx, double at_s, uint16_t worker,
                       bool from_handoff) {
    uint64_t now = base_tsc_ + uint64_t(at_s * double(rte_get_tsc_hz()));
    dp::pipeline& pl = *pl_.at(worker);
    pl.begin_burst(now);
    dp::burst_output out;
    pl.process(in.data(), uint16_t(in.size()), rx, from_handoff, out);
    pl.housekeeping(now);
    check_unique(out);
    run_result r;
    for (int s = 0; s < 2; ++s)
      for (uint16_t i = 0; i < out.n_tx[s]; ++i) {
        rte_mbuf* m = out.tx[s][i];
        const uint8_t* d = rte_pktmbuf_mtod(m, const uint8_t*);
        r.tx.push_back({dp::side(s), bytes(d, d + m->data_len)});
        rte_pktmbuf_free(m);
      }
    r.dropped = out.n_dropped;
    r.exceptions = out.n_exception;
    for (uint16_t i = 0; i < out.n_dropped; ++i)
      rte_pktmbuf_free(out.dropped[i]);
    for (uint16_t i = 0; i < out.n_exception; ++i)
      rte_pktmbuf_free(out.exception[i]);
    return r;
  }

  // The pipeline's contract: every mbuf leaves in exactly one output. One
  // listed twice would be freed twice here, corrupting the pool silently.
  static void check_unique(const dp::burst_output& out) {
    std::vector<const rte_mbuf*> all;
    for (int s = 0; s < 2; ++s)
      all.insert(all.end(), out.tx[s], out.tx[s] + out.n_tx[s]);
    all.insert(all.end(), out.dropped, out.dropped + out.n_dropped);
    all.insert(all.end(), out.exception, out.exception + out.n_exception);
    std::sort(all.begin(), all.end());
    if (std::adjacent_find(all.begin(), all.end()) != all.end())
      throw std::logic_error("the pipeline output one mbuf twice (it would be freed twice)");
  }

  // Housekeeping only (expiry sweep) at time `at_s`.
  void tick(double at_s) {
    uint64_t now = base_tsc_ + uint64_t(at_s * double(rte_get_tsc_hz()));
    for (auto& pl : pl_) {
      pl->begin_burst(now);
      for (int i = 0; i < 64; ++i)
        pl->housekeeping(now);
    }
  }

  uint64_t drop_count(drop_reason r, uint16_t w = 0) const {
    return shm_->counters(w)->drops[size_t(r)];
  }
  uint64_t counter(worker_counter c, uint16_t w = 0) const {
    return shm_->counters(w)->worker[size_t(c)];
  }
  std::array<uint64_t, drop_reason_count> drops(uint16_t w = 0) const {
    std::array<uint64_t, drop_reason_count> a;
    for (size_t i = 0; i < drop_reason_count; ++i)
      a[i] = shm_->counters(w)->drops[i];
    return a;
  }
  // Backend slot of `addr` in the current generation, or -1.
  int32_t backend_slot(const ip_addr& addr) const {
    table_view v = shm_->view(unsigned(load_acquire(shm_->header()->generation) & 1));
    for (uint32_t i = 0; i < v.hdr->backend_limit; ++i)
      if ((v.backends[i].flags & abi::backend_in_use) &&
          std::memcmp(v.backends[i].addr, addr.bytes.data(), 16) == 0)
        return int32_t(i);
    return -1;
  }
  const abi::backend_counters& backend_stats(int32_t slot) const {
    return shm_->backend_stats(0)[slot];
  }
  shm_region& shm() { return *shm_; }
  // Worker `w`'s pipeline with its clock at `at_s` and the current generation
  // loaded (flow hand-over: export_flows, adopt_flows).
  dp::pipeline& worker(uint16_t w, double at_s = 0) {
    pl_.at(w)->begin_burst(base_tsc_ + uint64_t(at_s * double(rte_get_tsc_hz())));
    return *pl_.at(w);
  }

private:
  std::string path_;
  std::unique_ptr<shm_region> shm_;
  std::unique_ptr<publisher> pub_;
  dp::neighbour_table neigh_;
  std::vector<std::unique_ptr<dp::pipeline>> pl_;
  std::vector<rte_ring*> rings_;
  uint64_t base_tsc_ = 0;
};

inline service_config make_service(const char* vip, uint16_t port, uint8_t proto,
                                   abi::fwd_mode mode,
                                   std::vector<std::pair<const char*, uint16_t>> backends,
                                   uint16_t backend_port = 0) {
  service_config s;
  s.vip = ip(vip);
  s.port = port;
  s.proto = proto;
  s.mode = mode;
  for (auto& [addr, weight] : backends) {
    backend_config b;
    b.addr = ip(addr);
    b.port = backend_port;
    b.weight = weight;
    s.backends.push_back(b);
  }
  return s;
}

} // namespace sluice::test
