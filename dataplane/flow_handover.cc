#include "flow_handover.h"

#include <chrono>
#include <cstdio>
#include <fmt/format.h>
#include <unistd.h>

#include <rte_cycles.h>

#include "flow_snapshot.h"

namespace sluice::dp {

namespace {

constexpr const char* prog = "sluice-dataplane";

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

} // namespace

void adopt_flow_snapshot(const std::string& path,
                         const std::vector<std::unique_ptr<pipeline>>& pipelines) {
  const auto t0 = std::chrono::steady_clock::now();
  auto snap = read_flow_snapshot(path);
  if (!snap) {
    const std::string aside = path + ".rejected";
    std::fprintf(stderr, "%s: warning: %s; starting without its flows (kept as %s)\n", prog,
                 snap.error_message().c_str(), aside.c_str());
    if (::rename(path.c_str(), aside.c_str()) != 0)
      ::unlink(path.c_str());
    return;
  }
  if (snap->n_workers == 0 && snap->records.empty()) {
    std::printf("%s: no flow snapshot at %s: starting with empty flow tables\n", prog,
                path.c_str());
    return;
  }
  // Consumed: a later start must not adopt these flows again.
  ::unlink(path.c_str());
  const auto n_workers = uint16_t(pipelines.size());
  const bool same_workers = snap->n_workers == n_workers;
  std::vector<std::vector<flow_sync_record>> by_worker(n_workers);
  for (auto& p : pipelines)
    p->begin_burst(rte_rdtsc()); // resolve against the generation in shared memory
  for (const flow_sync_record& r : snap->records) {
    uint16_t w =
        same_workers && r.worker < n_workers ? r.worker : pipelines.front()->owner_of_flow(r);
    by_worker[w < n_workers ? w : 0].push_back(r);
  }
  adopt_summary sum;
  for (uint16_t w = 0; w < n_workers; ++w)
    pipelines[w]->adopt_flows(by_worker[w].data(), by_worker[w].size(), sum);
  std::string refused;
  for (size_t i = 0; i < size_t(adopt_refusal::count); ++i)
    if (sum.refused[i])
      refused += fmt::format("{}{} {}", refused.empty() ? "" : ", ", adopt_refusal_names[i],
                             sum.refused[i]);
  std::printf("%s: adopted %lu of %zu flow(s) from %s (saved by %u worker(s)) in %.1f ms%s\n", prog,
              static_cast<unsigned long>(sum.adopted), snap->records.size(), path.c_str(),
              unsigned(snap->n_workers), ms_since(t0),
              refused.empty() ? "" : fmt::format("; not adopted: {}", refused).c_str());
}

bool save_flow_snapshot(const std::string& path,
                        const std::vector<std::unique_ptr<pipeline>>& pipelines) {
  const auto t0 = std::chrono::steady_clock::now();
  flow_snapshot snap;
  snap.n_workers = uint16_t(pipelines.size());
  for (const auto& p : pipelines)
    p->export_flows(snap.records);
  if (auto r = write_flow_snapshot(path, snap); !r) {
    std::fprintf(stderr, "%s: error: %s: the flows are lost for the next start\n", prog,
                 r.error_message().c_str());
    return false;
  }
  std::printf("%s: saved %zu flow(s) to %s in %.1f ms\n", prog, snap.records.size(), path.c_str(),
              ms_since(t0));
  return true;
}

} // namespace sluice::dp
