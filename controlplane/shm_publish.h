// The production publish_fn: the common/ publisher with an acknowledgement
// timeout, timed, so status and metrics can report publish latency. And the
// production soft_fn: writes backends' soft values (abi::backend_soft) into the
// region in place, at the slots and incarnations the publisher assigned.
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
  uint64_t soft_updates = 0; // soft-state writes in place (no publication)
};

publish_fn make_shm_publish(publisher& pub, std::chrono::milliseconds ack_timeout,
                            publish_stats& stats);

// Counts in stats.soft_updates each call that changed at least one word.
soft_fn make_soft_writer(publisher& pub, publish_stats& stats);

} // namespace sluice::cp
