// sluice-cp-bench: how long the control plane takes to rebuild a service's
// tables (validation, Maglev population, VIP index, slot write) for Maglev
// sizes M = 65537 and 655373 with 10, 100 and 1000 backends. One service,
// build into a private buffer laid out like a shared-memory slot; set-up is
// untimed. Reports median, min and max over --runs rebuilds, each a weight
// change of one backend (what `sluicectl backend set-weight` triggers).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "service_config.h"
#include "shm_abi.h"
#include "table_builder.h"

using namespace sluice;

namespace {

std::vector<service_config> config(uint32_t m, unsigned backends, unsigned run) {
  service_config s;
  s.vip = ip_addr::from_v4_be(0x0a00020a);
  s.port = 80;
  s.mode = abi::fwd_mode::dsr_ipip;
  s.maglev_size = m;
  for (unsigned i = 0; i < backends; ++i) {
    backend_config b;
    b.addr = ip_addr::from_v4_be(__builtin_bswap32(0x0a000000u + 1 + i));
    b.weight = uint16_t(1 + (i == 0 ? run % 7 : 0)); // one weight changes per run
    s.backends.push_back(b);
  }
  return {s};
}

} // namespace

int main(int argc, char** argv) {
  int runs = 21;
  if (argc > 2 && std::string(argv[1]) == "--runs")
    runs = std::max(3, std::atoi(argv[2]));
  const abi::capacities caps{16, 4096, 1u << 20, 4};
  const abi::layout l = abi::compute_layout(caps);
  auto* raw = static_cast<uint8_t*>(std::aligned_alloc(4096, l.slot_size));
  std::unique_ptr<uint8_t, decltype(&std::free)> buf(raw, &std::free);
  std::printf("%-8s %-9s %10s %10s %10s  (ms per rebuild, %d runs)\n", "M", "backends", "median",
              "min", "max", runs);
  for (uint32_t m : {65537u, 655373u}) {
    for (unsigned n : {10u, 100u, 1000u}) {
      table_builder builder(caps);
      std::fill(raw, raw + l.slot_size, 0);
      auto target = make_slot_target(raw, l, caps);
      if (auto r = builder.build(config(m, n, 0), target, 1); !r) { // warm-up, untimed
        std::fprintf(stderr, "build failed: %s\n", r.error_message().c_str());
        return 1;
      }
      std::vector<double> ms;
      for (int i = 1; i <= runs; ++i) {
        auto cfg = config(m, n, unsigned(i));
        auto t0 = std::chrono::steady_clock::now();
        auto r = builder.build(cfg, target, uint64_t(i + 1));
        auto t1 = std::chrono::steady_clock::now();
        if (!r) {
          std::fprintf(stderr, "build failed: %s\n", r.error_message().c_str());
          return 1;
        }
        ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      }
      std::sort(ms.begin(), ms.end());
      std::printf("%-8u %-9u %10.3f %10.3f %10.3f\n", m, n, ms[ms.size() / 2], ms.front(),
                  ms.back());
    }
  }
  return 0;
}
