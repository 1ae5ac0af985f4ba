#include "shm_publish.h"

#include <algorithm>

#include "shm_atomic.h"

namespace sluice::cp {

publish_fn make_shm_publish(publisher& pub, std::chrono::milliseconds ack_timeout,
                            publish_stats& stats) {
  return [&pub, ack_timeout,
          &stats](const std::vector<service_config>& services) -> result<publish_outcome> {
    const uint64_t before = pub.generation();
    const auto t0 = std::chrono::steady_clock::now();
    auto r = pub.publish(services, ack_timeout);
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (r) {
      ++stats.count;
      stats.last_ms = ms;
      stats.max_ms = std::max(stats.max_ms, ms);
      stats.sum_ms += ms;
      return publish_outcome{r.value(), {}};
    }
    ++stats.failures;
    // The publisher reports two kinds of failure; tell them apart by whether
    // the generation moved: if it did, the tables are out and must be
    // committed, only the acknowledgement is missing.
    if (pub.generation() != before)
      return publish_outcome{pub.generation(), r.error_message()};
    return r.err();
  };
}

soft_fn make_soft_writer(publisher& pub, publish_stats& stats) {
  return [&pub, &stats](const std::vector<service_config>& services) {
    abi::backend_soft* soft = pub.region().backend_soft();
    bool changed = false;
    auto put = [&](uint64_t& word, uint64_t v) {
      if (load_relaxed(word) != v) {
        store_relaxed(word, v);
        changed = true;
      }
    };
    for (const auto& s : services)
      for (const auto& b : s.backends) {
        auto a = pub.builder().backend(key_of(s, b));
        if (!a || a->slot >= pub.region().caps().max_backends)
          continue;
        const uint64_t inc = uint64_t(a->incarnation) << 32;
        put(soft[a->slot].rtt, inc | b.rtt_hint_us);
        put(soft[a->slot].weight, inc | b.weight);
      }
    if (changed)
      ++stats.soft_updates;
  };
}

} // namespace sluice::cp
