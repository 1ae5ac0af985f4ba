#include "pipeline.h"

#include <algorithm>
#include <fmt/format.h>

#include <rte_cycles.h>
#include <rte_ether.h>
#include <rte_malloc.h>
#include <rte_prefetch.h>
#include <rte_thash.h>

#include "flow_hash.h"
#include "packet_rewrite.h"
#include "pipeline_impl.h"
#include "shm_atomic.h"

namespace sluice::dp {

using abi::fwd_mode;

// ---------------------------------------------------------------------------
// Set-up

pipeline_impl::pipeline_impl(const pipeline_config& cfg, shm_region& shm,
                             const neighbour_table& neigh, std::vector<rte_ring*> rings)
    : cfg_(cfg), shm_(shm), neigh_(neigh), rings_(std::move(rings)) {}

result<void> pipeline_impl::init() {
  if (cfg_.worker_id >= shm_.caps().max_workers)
    return make_error(fmt::format("worker {} exceeds the shared memory's {} worker slots",
                                  cfg_.worker_id, shm_.caps().max_workers));
  // With several workers, which packets need an ownership check depends on
  // the mode and on whether the ports hash as the model does
  // (pipeline_steering.cc).
  multi_worker_ = cfg_.n_workers > 1;
  hardware_rss_ = multi_worker_ && !cfg_.steering.software;
  if (multi_worker_) {
    if (cfg_.steering.reta.empty())
      for (uint16_t i = 0; i < 128; ++i)
        cfg_.steering.reta.push_back(i % cfg_.n_workers);
    if (rings_.size() < cfg_.n_workers)
      return make_error("pipeline: one handoff ring per worker is required with several workers");
    for (uint16_t w : cfg_.steering.reta)
      if (w >= cfg_.n_workers)
        return make_error(fmt::format("pipeline: RETA names worker {} of {}", w, cfg_.n_workers));
    rss_ = rss_model(cfg_.steering.rss_key, cfg_.steering.reta);
  }
  ack_ = shm_.worker_ack(cfg_.worker_id);
  ctr_ = shm_.counters(cfg_.worker_id);
  svc_ctr_ = shm_.service_stats(cfg_.worker_id);
  be_ctr_ = shm_.backend_stats(cfg_.worker_id);
  // Counters of a previous run of this worker slot restart from zero; gauges
  // would otherwise be wrong for the new, empty flow tables.
  std::memset(static_cast<void*>(ctr_), 0, shm_.layout().worker_stats_size);

  std::string n4 = fmt::format("sluice_flows4_w{}", cfg_.worker_id);
  std::string n6 = fmt::format("sluice_flows6_w{}", cfg_.worker_id);
  // A seed per worker and start: a remote sender cannot aim at one bucket.
  uint64_t seed = mix64(rte_rdtsc() ^ (uint64_t(cfg_.worker_id) << 48));
  // DPDK memory: hugepages when the EAL has them, on the worker's NUMA node.
  flow_table_memory mem;
  mem.alloc = [](size_t bytes, void* ctx) {
    return rte_zmalloc_socket("sluice_flows", bytes, RTE_CACHE_LINE_SIZE,
                              int(reinterpret_cast<intptr_t>(ctx)));
  };
  mem.release = [](void* p, void*) { rte_free(p); };
  mem.ctx = reinterpret_cast<void*>(intptr_t(cfg_.socket_id));
  if (auto r = ft4_.init(n4.c_str(), cfg_.flow_capacity, seed, mem); !r)
    return r;
  uint32_t cap6 = cfg_.flow_capacity6 ? cfg_.flow_capacity6 : cfg_.flow_capacity;
  if (auto r = ft6_.init(n6.c_str(), cap6, mix64(seed), mem); !r)
    return r;

  if (auto r = init_defence(); !r)
    return r;
  vip_addrs_.reserve(shm_.caps().max_services);
  start_tsc_ = rte_rdtsc();
  uint64_t hz = rte_get_tsc_hz();
  tsc_per_ms_ = hz / 1000 ? hz / 1000 : 1;
  tsc_per_us_ = hz / 1000000 ? hz / 1000000 : 1;
  if (auto r =
          sched_.init(shm_, cfg_.worker_id, cfg_.n_workers, cfg_.socket_id, cfg_.affinity_capacity,
                      start_tsc_, &ctr_->worker[size_t(worker_counter::sh_affinity_full)]);
      !r)
    return r;
  return {};
}

// ---------------------------------------------------------------------------
// Per burst

void pipeline_impl::begin_burst(uint64_t now_tsc) {
  now_ms_ = uint32_t((now_tsc - start_tsc_) / tsc_per_ms_);
  now_us_ = uint32_t((now_tsc - start_tsc_) / tsc_per_us_);
  abs_ms_ = uint32_t(now_tsc / tsc_per_ms_);
  uint64_t g = load_acquire(shm_.header()->generation);
  if (g == gen_)
    return;
  view_ = shm_.view(unsigned(g & 1));
  gen_ = g;
  vip_addrs_.clear();
  for (uint32_t i = 0; i < view_.hdr->service_limit; ++i) {
    const abi::service_entry& s = view_.services[i];
    if (!(s.flags & abi::service_in_use))
      continue;
    ip_addr a;
    std::memcpy(a.bytes.data(), s.vip, 16);
    bool seen = false;
    for (const ip_addr& v : vip_addrs_)
      seen = seen || v == a;
    if (!seen && vip_addrs_.size() < vip_addrs_.capacity())
      vip_addrs_.push_back(a);
  }
  publish_defence();
  note_generation_modes();
  store_release(ack_->acked_generation, g);
  count(worker_counter::generation_changes);
}

// ---------------------------------------------------------------------------
// Public wrapper

pipeline::pipeline(std::unique_ptr<pipeline_impl> impl) : impl_(std::move(impl)) {}
pipeline::~pipeline() = default;

result<std::unique_ptr<pipeline>> pipeline::create(const pipeline_config& cfg, shm_region& shm,
                                                   const neighbour_table& neighbours,
                                                   std::vector<rte_ring*> handoff_rings) {
  auto impl = std::make_unique<pipeline_impl>(cfg, shm, neighbours, std::move(handoff_rings));
  if (auto r = impl->init(); !r)
    return r.err();
  return std::unique_ptr<pipeline>(new pipeline(std::move(impl)));
}

void pipeline::begin_burst(uint64_t now_tsc) {
  impl_->begin_burst(now_tsc);
}
void pipeline::process(rte_mbuf** pkts, uint16_t n, side rx_side, bool from_handoff,
                       burst_output& out) {
  impl_->process(pkts, n, rx_side, from_handoff, out);
}
void pipeline::housekeeping(uint64_t now_tsc) {
  impl_->housekeeping(now_tsc);
}
void pipeline::count_drop(drop_reason r, uint32_t n) {
  counter_add(impl_->ctr_->drops[size_t(r)], n);
  counter_add(impl_->ctr_->worker[size_t(worker_counter::dropped)], n);
}
void pipeline::count_tx(uint32_t packets, uint64_t bytes) {
  impl_->count(worker_counter::tx_packets, packets);
  impl_->count(worker_counter::tx_bytes, bytes);
}
void pipeline::count_idle_sleep() {
  impl_->count(worker_counter::idle_sleeps);
}
void pipeline::count_poll(bool empty) {
  impl_->count(empty ? worker_counter::empty_polls : worker_counter::busy_polls);
}
void pipeline::set_live(bool live) {
  abi::worker_ack* a = impl_->ack_;
  store_relaxed(a->lcore, uint32_t(rte_lcore_id()));
  if (live) {
    // Pairs with the publisher's fence after it stores a generation: either
    // the publisher sees this worker live (and waits for its acknowledgement)
    // or this worker's next begin_burst sees the newest generation. Without the
    // fence, the store of `live` could pass the load of `generation` and the
    // worker could read a slot the publisher is rewriting.
    store_release(a->acked_generation, load_acquire(impl_->shm_.header()->generation));
    store_release(a->live, 1u);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    impl_->gen_ = ~0ull; // re-read and re-acknowledge on the next burst
  } else {
    store_release(a->live, 0u);
  }
}
// Lists matching flows of one table from position `pos`; returns where to
// resume (the table's positions() when done).
template <typename Key>
static uint32_t list_table(const flow_table<Key>& ft, const pipeline_impl& pl,
                           std::vector<flow_row>& out, size_t max, const flow_filter& f,
                           uint32_t pos) {
  uint32_t now_ms = uint32_t((rte_rdtsc() - pl.start_tsc_) / pl.tsc_per_ms_);
  flow_record<Key> rec;
  for (; pos < ft.positions() && out.size() < max; ++pos) {
    uint32_t deadline;
    if (!ft.read_consistent(int32_t(pos), rec, deadline))
      continue;
    const flow_entry& e = rec.e;
    const Key& k = rec.key;
    if (e.kind != flow_kind::forward || (f.service >= 0 && e.service != uint16_t(f.service)) ||
        (f.backend >= 0 && e.backend != uint32_t(f.backend)) ||
        (f.state >= 0 && uint8_t(e.state) != uint8_t(f.state)))
      continue;
    flow_row r;
    if constexpr (sizeof(Key) == sizeof(flow_key6)) {
      r.client = ip_addr::from_v6(k.src);
      r.vip = ip_addr::from_v6(k.dst);
    } else {
      r.client = ip_addr::from_v4_be(k.src);
      r.vip = ip_addr::from_v4_be(k.dst);
    }
    if (f.client && !prefix_contains(*f.client, r.client))
      continue;
    r.client_port = rte_be_to_cpu_16(k.sport);
    r.vip_port = rte_be_to_cpu_16(k.dport);
    r.proto = k.proto;
    r.state = uint8_t(e.state);
    r.mode = e.mode;
    r.worker = pl.cfg_.worker_id;
    r.service = e.service;
    r.backend = e.backend;
    // Idle time: how much of the state's timeout has run since the last packet
    // in either direction (a reply refreshes its own entry's deadline).
    if (e.peer)
      deadline = later_deadline(deadline, ft.deadline(int32_t(e.peer - 1)));
    int32_t left = int32_t(deadline - now_ms);
    int64_t idle = int64_t(e.timeout_ms) - left;
    r.idle_ms = idle > 0 ? uint32_t(idle) : 0;
    out.push_back(r);
  }
  return pos;
}

uint64_t pipeline::list_flows(std::vector<flow_row>& out, size_t max, const flow_filter& filter,
                              uint64_t cursor, uint32_t reader_id) const {
  (void)reader_id; // the seqlock protocol needs no reader registration
  const uint64_t n4 = impl_->ft4_.positions();
  const uint64_t n6 = impl_->ft6_.positions();
  if (cursor < n4) {
    cursor = list_table(impl_->ft4_, *impl_, out, max, filter, uint32_t(cursor));
    if (cursor < n4)
      return cursor;
  }
  if (cursor - n4 < n6) {
    cursor = n4 + list_table(impl_->ft6_, *impl_, out, max, filter, uint32_t(cursor - n4));
    if (cursor - n4 < n6)
      return cursor;
  }
  return flow_cursor_end;
}

uint64_t pipeline::flows_active() const {
  return load_relaxed(impl_->ctr_->worker[size_t(worker_counter::flows_active)]);
}

void pipeline::export_flows(std::vector<flow_sync_record>& out) const {
  impl_->export_flows<false>(out);
  impl_->export_flows<true>(out);
}

void pipeline::adopt_flows(const flow_sync_record* recs, size_t n, adopt_summary& sum) {
  impl_->adopt_flows(recs, n, sum);
}

uint16_t pipeline::owner_of_flow(const flow_sync_record& r) const {
  return impl_->owner_of_flow(r);
}

} // namespace sluice::dp
