// The writer side of the publication protocol (see shm_abi.h and
// docs/shared-memory.md), and the reader side as a small helper for tests and
// tools.
//
// Generation g lives in slot g % 2. To publish g + 1 the publisher
//   1. waits until every live worker has acknowledged g, so no worker still
//      reads slot (g + 1) % 2 (which held g - 1);
//   2. builds the new tables into that slot, stamped with g + 1;
//   3. store-releases header.generation = g + 1;
//   4. waits until every live worker acknowledges g + 1, or reports which did
//      not (the publication stands: they will pick it up on their next burst).
// A worker that starts sets acked_generation to the current generation, then
// live = 1, then runs a seq_cst fence before its first load of the generation
// (table_reader does this; the publisher fences after storing a generation).
// A worker is live when its worker_ack.live is non-zero AND the dataplane
// process recorded in header.procs.dp_pid exists: the workers of a dead
// dataplane never block a publication.
//
// Owning thread: one publisher per object, used from one thread (the control
// plane's). Waiting polls the ack lines (yield, then 50 us sleeps).
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include "result.h"
#include "service_config.h"
#include "shm_region.h"
#include "table_builder.h"
#include "table_view.h"

namespace sluice {

class publisher {
public:
  // Adopts the assignments of the currently published slot when it holds a
  // generation > 0 (control-plane restart), so indices and incarnations stay
  // stable; otherwise starts empty.
  explicit publisher(shm_region& region);

  // Publishes `services` as the next generation and returns it. Errors: the
  // config is invalid, or the previous generation is still unacknowledged after
  // `ack_timeout` (nothing changed in either case), or the new generation was
  // published but not acknowledged within `ack_timeout` (the publication
  // stays; the message names the workers).
  result<uint64_t> publish(const std::vector<service_config>& services,
                           std::chrono::milliseconds ack_timeout);

  // Waits until every live worker has acknowledged `gen` (or later).
  result<void> wait_acked(uint64_t gen, std::chrono::milliseconds timeout) const;

  // Live workers whose acknowledged generation is below `gen`.
  std::vector<uint32_t> lagging_workers(uint64_t gen) const;

  // Records this process as the control plane (pid, CLOCK_MONOTONIC heartbeat).
  void heartbeat();

  uint64_t generation() const;
  table_builder& builder() { return builder_; }
  const table_builder& builder() const { return builder_; }
  shm_region& region() { return region_; }

private:
  shm_region& region_;
  table_builder builder_;
};

// True when the dataplane recorded in the header is running: the pid exists
// and is not a zombie (a dataplane that died under a parent which has not
// reaped it still answers kill(pid, 0)).
bool dataplane_alive(const shm_region& region);
// The state in /proc/PID/stat: false for a zombie (Z), a dead task (X) or a
// pid that does not exist.
bool process_running(int pid);

// The reader side as one worker sees it: once per burst, refresh() load-acquires
// the generation, switches to its slot when it changed and acknowledges it. The
// returned view is valid until the next refresh().
class table_reader {
public:
  // Marks worker `worker` live (and its acknowledgement as the current generation).
  table_reader(const shm_region& region, uint32_t worker);
  ~table_reader(); // marks the worker not live
  table_reader(const table_reader&) = delete;
  table_reader& operator=(const table_reader&) = delete;

  const table_view& refresh();
  const table_view& view() const { return view_; }
  uint64_t generation() const { return generation_; }

private:
  const shm_region& region_;
  uint32_t worker_;
  uint64_t generation_ = 0;
  table_view view_;
};

// The view of the currently published generation (load-acquire of the
// generation word). For tools and tests; a worker uses table_reader so that it
// acknowledges what it reads.
table_view current_view(const shm_region& region);

} // namespace sluice
