// The production publish_fn: the common/ publisher with an acknowledgement
// timeout, timed, so status and metrics can report publish latency.
#pragma once

#include <chrono>
#include <cstdint>

#include "publisher.h"
#include "state.h"

namespace sluice::cp {

struct publish_stats {
  uint64_t count = 0;
  uint64_t failures = 0;
  double last_ms = 0;
  double max_ms = 0;
  double sum_ms = 0;
};

publish_fn make_shm_publish(publisher& pub, std::chrono::milliseconds ack_timeout,
                            publish_stats& stats);

} // namespace sluice::cp
