#include "worker_watch.h"

#include <fmt/format.h>

#include "shm_atomic.h"

namespace sluice::cp {

std::vector<worker_liveness> watch_workers(const shm_region& region, uint64_t now_ns,
                                           uint32_t stall_ms) {
  std::vector<worker_liveness> out;
  for (uint32_t w = 0; w < region.caps().max_workers; ++w) {
    const auto* ack = region.worker_ack(w);
    if (!load_acquire(ack->live))
      continue;
    worker_liveness l;
    l.worker = w;
    const uint64_t hb = load_relaxed(ack->heartbeat_ns);
    if (hb) {
      l.heartbeat_age_s = now_ns > hb ? double(now_ns - hb) / 1e9 : 0.0;
      l.stalled = l.heartbeat_age_s * 1000 > stall_ms;
    }
    out.push_back(l);
  }
  return out;
}

std::string render_worker_metrics(const std::vector<worker_liveness>& w) {
  std::string o =
      "# HELP sluice_worker_stalled 1 when a live worker's heartbeat is older than --stall-ms\n"
      "# TYPE sluice_worker_stalled gauge\n";
  for (const auto& l : w)
    o += fmt::format("sluice_worker_stalled{{worker=\"{}\"}} {}\n", l.worker, l.stalled ? 1 : 0);
  o += "# HELP sluice_worker_heartbeat_age_seconds age of the worker's last loop iteration\n"
       "# TYPE sluice_worker_heartbeat_age_seconds gauge\n";
  for (const auto& l : w)
    if (l.heartbeat_age_s >= 0)
      o += fmt::format("sluice_worker_heartbeat_age_seconds{{worker=\"{}\"}} {:.3f}\n", l.worker,
                       l.heartbeat_age_s);
  return o;
}

void stall_logger::update(const std::vector<worker_liveness>& w) {
  for (const auto& l : w) {
    if (stalled_.size() <= l.worker)
      stalled_.resize(l.worker + 1, false);
    if (l.stalled != stalled_[l.worker])
      log_(l.stalled ? fmt::format("worker {} stalled: no heartbeat for {:.1f} s", l.worker,
                                   l.heartbeat_age_s)
                     : fmt::format("worker {} running again", l.worker));
    stalled_[l.worker] = l.stalled;
  }
}

} // namespace sluice::cp
