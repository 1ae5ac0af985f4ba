#include "worker_loop.h"

#include <csignal>
#include <ctime>
#include <sys/prctl.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_pause.h>

#include "neighbour_manager.h" // monotonic_ns
#include "pipeline_impl.h"
#include "shm_atomic.h"

namespace sluice::dp {

namespace {

std::atomic<bool> g_stop{false};

void on_signal(int) {
  g_stop.store(true, std::memory_order_relaxed);
}

// Transmits, frees and queues everything one process() call produced, then
// clears `out`.
void flush(worker_context& ctx, burst_output& out) {
  pipeline& pl = *ctx.pl;
  for (int s = 0; s < 2; ++s) {
    uint16_t n = out.n_tx[s];
    if (n == 0)
      continue;
    rte_mbuf** pkts = out.tx[s];
    uint64_t bytes = 0;
    for (uint16_t i = 0; i < n; ++i)
      bytes += rte_pktmbuf_pkt_len(pkts[i]);
    uint16_t sent = rte_eth_tx_burst(ctx.tx[s].port, ctx.tx[s].queue, pkts, n);
    if (sent < n) [[unlikely]] {
      for (uint16_t i = sent; i < n; ++i)
        bytes -= rte_pktmbuf_pkt_len(pkts[i]);
      pl.count_drop(drop_reason::tx_ring_full, n - sent);
      rte_pktmbuf_free_bulk(pkts + sent, n - sent);
    }
    pl.count_tx(sent, bytes);
  }
  if (out.n_dropped)
    rte_pktmbuf_free_bulk(out.dropped, out.n_dropped);
  if (out.n_exception) {
    unsigned queued = rte_ring_enqueue_burst(ctx.exception, reinterpret_cast<void**>(out.exception),
                                             out.n_exception, nullptr);
    if (queued < out.n_exception) [[unlikely]] {
      pl.count_drop(drop_reason::exception_ring_full, out.n_exception - queued);
      rte_pktmbuf_free_bulk(out.exception + queued, out.n_exception - queued);
    }
  }
  out.clear();
}

void sleep_us(uint32_t us) {
  timespec ts{0, long(us) * 1000};
  nanosleep(&ts, nullptr);
}

} // namespace

void request_stop() {
  g_stop.store(true, std::memory_order_relaxed);
}
bool stop_requested() {
  return g_stop.load(std::memory_order_relaxed);
}

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

int worker_main(void* arg) {
  auto& ctx = *static_cast<worker_context*>(arg);
  pipeline& pl = *ctx.pl;
  const idle_config idle = ctx.idle;
  const uint32_t sleep_after = idle.threshold + idle.pause_polls;
  burst_output out;
  rte_mbuf* pkts[max_burst];
  uint32_t empty_polls = 0;
  uint32_t next_sleep_us = idle.sleep_us;

  // The kernel's default 50 us timer slack would stretch every idle sleep by
  // up to that much: ask for precise wake-ups on this thread.
  if (!idle.busy_poll)
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);

  pl.set_live(true);
  while (!stop_requested()) {
    const uint64_t now = rte_rdtsc();
    store_relaxed(pl.impl().ack_->heartbeat_ns, monotonic_ns()); // control plane's stall watch
    pl.begin_burst(now);
    uint32_t received = 0;

    for (uint8_t s = 0; s < ctx.n_rx_sides; ++s) {
      uint16_t n = rte_eth_rx_burst(ctx.rx[s].port, ctx.rx[s].queue, pkts, max_burst);
      pl.count_poll(n == 0);
      if (n == 0)
        continue;
      received += n;
      pl.process(pkts, n, side(s), false, out);
      flush(ctx, out);
    }
    if (ctx.handoff != nullptr) {
      unsigned n =
          rte_ring_dequeue_burst(ctx.handoff, reinterpret_cast<void**>(pkts), max_burst, nullptr);
      if (n > 0) {
        received += n;
        if (ctx.n_rx_sides == 1) {
          pl.process(pkts, uint16_t(n), client_side, true, out);
          flush(ctx, out);
        } else {
          // mbuf->port still names the port the packet arrived on: split the
          // burst back into its sides (order within each side is kept).
          rte_mbuf* by_side[2][max_burst];
          uint16_t count[2] = {0, 0};
          for (unsigned i = 0; i < n; ++i) {
            int s = pkts[i]->port == ctx.rx[backend_side].port ? backend_side : client_side;
            by_side[s][count[s]++] = pkts[i];
          }
          for (int s = 0; s < 2; ++s) {
            if (count[s] == 0)
              continue;
            pl.process(by_side[s], count[s], side(s), true, out);
            flush(ctx, out);
          }
        }
      }
    }
    pl.housekeeping(now);

    if (received > 0 || idle.busy_poll) {
      empty_polls = 0;
      next_sleep_us = idle.sleep_us;
      continue;
    }
    if (empty_polls < sleep_after)
      ++empty_polls;
    if (empty_polls < idle.threshold)
      continue;
    if (empty_polls < sleep_after) {
      rte_pause();
      continue;
    }
    pl.count_idle_sleep();
    sleep_us(next_sleep_us);
    next_sleep_us = next_sleep_us >= idle.sleep_max_us / 2 ? idle.sleep_max_us : next_sleep_us * 2;
  }
  pl.set_live(false);
  return 0;
}

} // namespace sluice::dp
