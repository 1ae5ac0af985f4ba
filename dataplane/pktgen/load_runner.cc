#include "load_runner.h"

#include <cstdio>
#include <fmt/format.h>

#include "worker_loop.h"

namespace sluice::pktgen {

namespace {
constexpr uint16_t rx_burst = 64;
}

load_runner::load_runner(pktgen_context& ctx, const runner_config& cfg)
    : ctx_(ctx), cfg_(cfg), gen_(ctx), backends_(ctx, gen_) {}

uint32_t load_runner::poll(uint64_t now_tsc) {
  rte_mbuf* pkts[rx_burst];
  uint16_t nb = rte_eth_rx_burst(ctx_.port_id[backend_port], 0, pkts, rx_burst);
  for (uint16_t i = 0; i < nb; ++i) {
    ctx_.stats.port[backend_port].rx_bytes += pkts[i]->pkt_len;
    backends_.on_packet(pkts[i], now_tsc);
  }
  ctx_.stats.port[backend_port].rx_packets += nb;
  if (nb)
    rte_pktmbuf_free_bulk(pkts, nb);
  uint16_t nc = rte_eth_rx_burst(ctx_.port_id[client_port], 0, pkts, rx_burst);
  for (uint16_t i = 0; i < nc; ++i) {
    ctx_.stats.port[client_port].rx_bytes += pkts[i]->pkt_len;
    gen_.on_packet(pkts[i], now_tsc);
  }
  ctx_.stats.port[client_port].rx_packets += nc;
  if (nc)
    rte_pktmbuf_free_bulk(pkts, nc);
  for (int side = 0; side < 2; ++side)
    ctx_.tx[side].flush(ctx_.port_id[side], 0, ctx_.stats.port[side]);
  return uint32_t(nb) + nc;
}

// Polls until nothing arrived for `quiet_ms` and nothing waits to be sent, or
// for at most ten times that: on a busy machine packets still in the rings
// when the traffic stops must not count as lost.
void load_runner::drain(uint64_t quiet_ms) {
  const uint64_t start = ctx_.now_tsc();
  const uint64_t quiet = quiet_ms * ctx_.tsc_hz / 1000;
  uint64_t last = start;
  for (uint64_t now = start; now - start < 10 * quiet; now = ctx_.now_tsc()) {
    if (poll(now) > 0 || ctx_.tx[0].size() > 0 || ctx_.tx[1].size() > 0)
      last = now;
    else if (now - last >= quiet)
      break;
  }
}

status load_runner::warm_up() {
  const uint64_t total = gen_.warmup_flows();
  if (total == 0)
    return {};
  auto learned = [&] {
    uint64_t n = 0;
    for (auto c : ctx_.learned_count)
      n += c;
    return n;
  };
  for (uint32_t pass = 0; pass < cfg_.warmup_passes && !dp::stop_requested(); ++pass) {
    uint64_t cursor = 0, sent = 0;
    const uint64_t t0 = ctx_.now_tsc();
    // Bounded in time too: a port that takes nothing must not hang us.
    const uint64_t deadline =
        t0 + (uint64_t(double(total) / cfg_.warmup_pps * 4) + 5) * ctx_.tsc_hz;
    while (cursor < total && !dp::stop_requested()) {
      uint64_t now = ctx_.now_tsc();
      if (now > deadline)
        break;
      uint64_t allowed = uint64_t(double(now - t0) * cfg_.warmup_pps / double(ctx_.tsc_hz));
      if (allowed > sent)
        sent += gen_.warmup(uint32_t(std::min<uint64_t>(allowed - sent, 32)), cursor);
      poll(now);
    }
    drain(200);
    std::printf("warm-up pass %u: backends saw %lu of %lu established flows\n", pass + 1,
                static_cast<unsigned long>(learned()), static_cast<unsigned long>(total));
    if (learned() == total)
      return {};
  }
  return make_error(fmt::format("warm-up: the backends saw only {} of {} established flows "
                                "after {} passes (is the balancer forwarding? lower "
                                "--warmup-pps?)",
                                learned(), total, cfg_.warmup_passes));
}

run_stats load_runner::run_trial(double scale, double duration_s) {
  ctx_.stats = run_stats(ctx_.prof.items.size());
  const uint64_t hz = ctx_.tsc_hz;
  const uint64_t t0 = ctx_.now_tsc();
  const uint64_t end = t0 + uint64_t(duration_s * double(hz));
  const uint64_t interval = uint64_t(cfg_.stats_interval_ms) * hz / 1000;
  gen_.start(t0, scale);
  run_stats prev = ctx_.stats;
  uint64_t last = t0;
  uint64_t now = t0;
  for (; now < end && !dp::stop_requested(); now = ctx_.now_tsc()) {
    gen_.generate(now);
    poll(now);
    if (interval && now - last >= interval) {
      ctx_.stats.elapsed_s = double(now - t0) / double(hz);
      std::printf("%s\n",
                  per_second_line(prev, ctx_.stats, double(now - last) / double(hz)).c_str());
      prev = ctx_.stats;
      last = now;
    }
  }
  const double elapsed = double(now - t0) / double(hz);
  gen_.close_held(now);
  drain(ctx_.prof.drain_ms);
  ctx_.stats.elapsed_s = elapsed;
  return ctx_.stats;
}

} // namespace sluice::pktgen
