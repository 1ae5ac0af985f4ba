// The loop every worker lcore runs: poll the RX queue of each side and the
// worker's handoff ring, run the pipeline, transmit, free drops, queue
// exceptions for the main lcore, and back off when idle. One worker_context per
// worker, owned by main() and read only by that worker's lcore.
//
// Idle back-off (unless busy_poll): after `threshold` consecutive iterations
// without a packet the worker spins with rte_pause for `pause_polls` more
// iterations, then sleeps: `sleep_us` the first time, doubling with every
// further empty iteration up to `sleep_max_us`. The first packet (RX or
// handoff) puts it straight back to busy polling with the sleep reset, so a
// loaded worker polls exactly as with busy_poll while a worker idle for long
// wakes about 1000 times a second (at the 1 ms default cap) instead of 20000.
// The price is wake-up latency after a long idle spell: up to one capped sleep.
// A sleeping worker still calls begin_burst and housekeeping every iteration,
// so table publications complete and flows expire while idle.
#pragma once

#include <atomic>
#include <cstdint>

#include <rte_ring.h>

#include "pipeline.h"

namespace sluice::dp {

struct idle_config {
  bool busy_poll = false;
  uint32_t threshold = 256;
  uint32_t pause_polls = 1024;
  uint32_t sleep_us = 50;       // first sleep
  uint32_t sleep_max_us = 1000; // cap of the doubling (>= sleep_us)
};

struct queue_ref {
  uint16_t port = 0;
  uint16_t queue = 0;
};

struct worker_context {
  uint16_t worker_id = 0;
  pipeline* pl = nullptr;
  uint8_t n_rx_sides = 1;        // 1: one-armed (the port's packets are client_side), 2: two-armed
  queue_ref rx[2];               // RX queue per side
  queue_ref tx[2];               // TX queue per side (the same port in a one-armed layout)
  rte_ring* handoff = nullptr;   // this worker's inbound ring (nullptr: none)
  rte_ring* exception = nullptr; // to the main lcore
  idle_config idle;
};

// Set by SIGINT/SIGTERM; every loop polls it once per iteration.
void request_stop();
bool stop_requested();
// Installs the SIGINT/SIGTERM handlers that call request_stop().
void install_stop_handlers();

// rte_lcore_function_t: `arg` is a worker_context*. Returns 0.
int worker_main(void* arg);

} // namespace sluice::dp
