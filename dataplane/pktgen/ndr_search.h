// Zero-loss throughput (NDR) by binary search on the offered rate, as RFC 2544
// section 26.1 and TRex's NDR search do: trials at a scale of the profile's
// rates; a trial passes when nothing was lost, no connection failed and no
// packet failed the rewrite check. The profile's rates are the upper bound:
// if a trial at scale 1 passes, the search stops there and says so.
#pragma once

#include <nlohmann/json.hpp>

#include "load_runner.h"

namespace sluice::pktgen {

struct ndr_config {
  double precision = 0.02; // stop when (hi - lo) / hi falls below this
  double trial_s = 2;
  uint32_t max_trials = 12;
};

// Returns {"ndr_scale", "ndr_rates" per item, "limited_by_profile_rate",
// "generator_limited" (the best passing trial sent under 95 % of what it
// offered: the generator, not the balancer, was the limit), "trials": [...],
// "summary": the last passing trial's summary (or the lowest trial's)}.
nlohmann::json ndr_search(load_runner& runner, const profile& p, const ndr_config& cfg);

} // namespace sluice::pktgen
