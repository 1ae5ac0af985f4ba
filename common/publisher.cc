#include "publisher.h"

#include <cerrno>
#include <cstdio>
#include <fmt/format.h>
#include <signal.h>
#include <thread>
#include <time.h>
#include <unistd.h>

#include "shm_atomic.h"

namespace sluice {

namespace {

uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

// Polls `done` until it returns true or `timeout` passes; checks at least once
// (and once more after the deadline).
template <typename F> bool poll_until(F done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (unsigned spins = 0;; ++spins) {
    if (done())
      return true;
    if (std::chrono::steady_clock::now() >= deadline)
      return done();
    if (spins < 64)
      std::this_thread::yield();
    else
      std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

std::string worker_list(const std::vector<uint32_t>& w) {
  std::string s = "[";
  for (size_t i = 0; i < w.size(); ++i)
    s += (i ? ", " : "") + std::to_string(w[i]);
  return s + "]";
}

} // namespace

bool process_running(int pid) {
  if (pid <= 0)
    return false;
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
  std::FILE* f = std::fopen(path, "re");
  if (!f)
    return ::kill(pid, 0) == 0 || errno == EPERM; // no /proc: existence only
  char buf[512];
  const size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  // "PID (COMM) STATE ...": COMM may hold spaces and parentheses; the state
  // follows the last ')'.
  const std::string s(buf, n);
  const auto close = s.rfind(')');
  if (close == std::string::npos || close + 2 >= s.size())
    return false;
  const char state = s[close + 2];
  return state != 'Z' && state != 'X' && state != 'x';
}

bool dataplane_alive(const shm_region& region) {
  return process_running(load_acquire(region.header()->procs.dp_pid));
}

publisher::publisher(shm_region& region) : region_(region), builder_(region.caps()) {
  const uint64_t g = load_acquire(region_.header()->generation);
  if (g > 0) {
    const table_view cur = region_.view(unsigned(g % 2));
    const table_view prev = region_.view(unsigned((g + 1) % 2));
    // Best effort: a slot that fails validation is not adopted and the next
    // publication assigns indices afresh (incarnations still start above both
    // slots').
    if (!builder_.adopt(cur, &prev)) {
      table_builder fresh(region_.caps());
      builder_ = fresh;
    }
  }
}

uint64_t publisher::generation() const {
  return load_acquire(region_.header()->generation);
}

void publisher::heartbeat() {
  abi::process_info& p = region_.header()->procs;
  store_release(p.cp_pid, int32_t(::getpid()));
  store_release(p.cp_heartbeat_ns, monotonic_ns());
}

std::vector<uint32_t> publisher::lagging_workers(uint64_t gen) const {
  std::vector<uint32_t> lagging;
  if (!dataplane_alive(region_))
    return lagging;
  for (uint32_t w = 0; w < region_.caps().max_workers; ++w) {
    const abi::worker_ack& a = *region_.worker_ack(w);
    if (load_acquire(a.live) != 0 && load_acquire(a.acked_generation) < gen)
      lagging.push_back(w);
  }
  return lagging;
}

result<void> publisher::wait_acked(uint64_t gen, std::chrono::milliseconds timeout) const {
  if (poll_until([&] { return lagging_workers(gen).empty(); }, timeout))
    return {};
  return make_error(fmt::format("workers {} did not acknowledge generation {} within {} ms",
                                worker_list(lagging_workers(gen)), gen, timeout.count()));
}

result<uint64_t> publisher::publish(const std::vector<service_config>& services,
                                    std::chrono::milliseconds ack_timeout) {
  heartbeat();
  if (auto r = builder_.validate(services); !r)
    return r.err();
  abi::shm_header& h = *region_.header();
  const uint64_t g = load_acquire(h.generation);
  // 1. Nobody may still read the slot we are about to overwrite.
  if (!poll_until([&] { return lagging_workers(g).empty(); }, ack_timeout))
    return make_error(fmt::format("cannot publish generation {}: workers {} have not "
                                  "acknowledged generation {} after {} ms (they may still read "
                                  "the slot to be rewritten)",
                                  g + 1, worker_list(lagging_workers(g)), g, ack_timeout.count()));
  // 2. Build into the free slot.
  const uint64_t ng = g + 1;
  if (auto r = builder_.build(services, make_slot_target(region_, unsigned(ng % 2)), ng); !r)
    return r.err();
  // 3. Publish: the slot's contents happen-before any acquire that sees ng.
  store_release(h.generation, ng);
  // Pairs with the fence a worker runs between setting `live` and loading the
  // generation (table_reader): either the worker's first load sees ng, or our
  // later loads of `live` see the worker and wait for its acknowledgement.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  heartbeat();
  // 4. Wait for the workers to switch.
  if (!poll_until([&] { return lagging_workers(ng).empty(); }, ack_timeout))
    return make_error(fmt::format("published generation {} but workers {} did not acknowledge "
                                  "within {} ms",
                                  ng, worker_list(lagging_workers(ng)), ack_timeout.count()));
  return ng;
}

table_reader::table_reader(const shm_region& region, uint32_t worker)
    : region_(region), worker_(worker) {
  // Become live before loading the generation (store, full fence, load): a
  // publisher that does not see us yet has not published past what we load.
  store_release(region_.worker_ack(worker_)->acked_generation,
                load_acquire(region_.header()->generation));
  store_release(region_.worker_ack(worker_)->live, 1u);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  refresh();
}

table_reader::~table_reader() {
  store_release(region_.worker_ack(worker_)->live, 0u);
}

const table_view& table_reader::refresh() {
  const uint64_t g = load_acquire(region_.header()->generation);
  if (g != generation_ || view_.hdr == nullptr) {
    view_ = region_.view(unsigned(g % 2));
    generation_ = g;
  }
  // Release: every read of the previous slot (previous bursts) happens before
  // the publisher sees this acknowledgement and reuses that slot.
  store_release(region_.worker_ack(worker_)->acked_generation, g);
  return view_;
}

table_view current_view(const shm_region& region) {
  const uint64_t g = load_acquire(region.header()->generation);
  return region.view(unsigned(g % 2));
}

} // namespace sluice
