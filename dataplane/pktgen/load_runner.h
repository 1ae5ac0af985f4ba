// The pktgen lcore's loop: pace the generators, poll both ports, hand frames
// to the client and backend roles, flush TX, print once per interval. A run
// is warm-up (open every established flow once, until the backends saw them
// all), then one or more timed trials, each followed by a drain so packets
// still in flight are not counted as lost. The NDR search (ndr_search.h)
// calls run_trial repeatedly at different scales.
#pragma once

#include <cstdint>

#include "backend_responder.h"
#include "pktgen_context.h"
#include "result.h"
#include "traffic_generator.h"

namespace sluice::pktgen {

struct runner_config {
  uint32_t stats_interval_ms = 1000; // 0: no per-second lines
  uint32_t warmup_pps = 1'000'000;
  uint32_t warmup_passes = 5;
};

class load_runner {
public:
  load_runner(pktgen_context& ctx, const runner_config& cfg);

  // Opens every established flow; fails naming how many the backends saw.
  status warm_up();
  // One trial at `scale` times the profile's rates for `duration_s`; returns
  // its statistics (also left in ctx.stats).
  run_stats run_trial(double scale, double duration_s);

private:
  uint32_t poll(uint64_t now_tsc); // returns frames received
  void drain(uint64_t quiet_ms);

  pktgen_context& ctx_;
  runner_config cfg_;
  traffic_generator gen_;
  backend_responder backends_;
};

} // namespace sluice::pktgen
