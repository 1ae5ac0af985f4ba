#include "stats_reader.h"

#include <ctime>

#include "shm_atomic.h"

namespace sluice::cp {

uint64_t monotonic_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000ull + uint64_t(ts.tv_nsec);
}

namespace {

template <typename T> void add_all(T& sum, const T& c) {
  // The counter structs are arrays of uint64_t; add field by field atomically.
  static_assert(sizeof(T) % 8 == 0);
  auto* d = reinterpret_cast<uint64_t*>(&sum);
  const auto* s = reinterpret_cast<const uint64_t*>(&c);
  for (size_t i = 0; i < sizeof(T) / 8; ++i)
    d[i] += load_relaxed(s[i]);
}

} // namespace

counter_snapshot read_counters(const shm_region& region, const table_builder& builder,
                               const cp_config& config) {
  counter_snapshot snap;
  snap.time_ns = monotonic_ns();
  const auto& caps = region.caps();
  snap.services.resize(config.services.size());
  snap.backends.resize(config.services.size());
  for (size_t i = 0; i < config.services.size(); ++i)
    snap.backends[i].resize(config.services[i].cfg.backends.size());
  for (uint32_t w = 0; w < caps.max_workers; ++w) {
    const auto* blk = region.counters(w);
    counter_snapshot::per_worker one;
    one.worker = w;
    bool any = load_acquire(region.worker_ack(w)->live) != 0;
    for (size_t k = 0; k < drop_reason_count; ++k) {
      one.drops[k] = load_relaxed(blk->drops[k]);
      snap.drops[k] += one.drops[k];
      any |= one.drops[k] != 0;
    }
    for (size_t k = 0; k < worker_counter_count; ++k) {
      one.counters[k] = load_relaxed(blk->worker[k]);
      snap.worker[k] += one.counters[k];
      any |= one.counters[k] != 0;
    }
    if (any)
      snap.workers.push_back(one);
    const auto* sc = region.service_stats(w);
    const auto* bc = region.backend_stats(w);
    for (size_t i = 0; i < config.services.size(); ++i) {
      const auto& s = config.services[i].cfg;
      if (auto idx = builder.service_index(key_of(s)))
        add_all(snap.services[i], sc[*idx]);
      for (size_t j = 0; j < s.backends.size(); ++j)
        if (auto a = builder.backend(key_of(s, s.backends[j])))
          add_all(snap.backends[i][j], bc[a->slot]);
    }
  }
  return snap;
}

} // namespace sluice::cp
