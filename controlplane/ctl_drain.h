// `sluicectl backend drain --wait`: after the drain is committed, polls the
// daemon's `stats` (the dataplane's per-worker active_flows, summed) until the
// backend has no active flow or the timeout passes. Deploy scripts use it to
// know when a backend can be stopped.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "ctl_client.h"
#include "result.h"

namespace sluice::ctl {

struct drain_wait {
  std::string service, address;
  std::optional<int64_t> port; // nullopt: the service's port / the only backend with the address
  double timeout_s = 300;
  uint32_t poll_ms = 100;
};

// true: drained (0 active flows); false: the timeout passed first.
// `progress` is called whenever the count changes.
result<bool> wait_drained(api_client& c, const drain_wait& w,
                          const std::function<void(uint64_t active)>& progress);

} // namespace sluice::ctl
