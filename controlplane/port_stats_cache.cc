#include "port_stats_cache.h"

#include "port_stats_query.h"

namespace sluice::cp {

port_stats_cache::port_stats_cache(std::string shm_path, std::chrono::milliseconds query_timeout,
                                   std::chrono::milliseconds scrape_wait)
    : shm_path_(std::move(shm_path)), query_timeout_(query_timeout), scrape_wait_(scrape_wait),
      thread_([this] { run(); }) {}

port_stats_cache::~port_stats_cache() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void port_stats_cache::run() {
  std::unique_lock lk(mu_);
  for (;;) {
    wake_.wait(lk, [&] { return stop_ || wanted_; });
    if (stop_)
      return;
    wanted_ = false;
    in_flight_ = true;
    started_at_ = std::chrono::steady_clock::now();
    lk.unlock();
    auto r = query_port_stats(shm_path_, query_timeout_);
    lk.lock();
    in_flight_ = false;
    last_ok_ = bool(r);
    // A query that failed fast (no dataplane yet, socket refused) is cheap to
    // wait for next time; one that ran into its timeout is not.
    last_timed_out_ = !r && std::chrono::steady_clock::now() - started_at_ >= query_timeout_;
    if (r) {
      ports_ = std::move(r.value());
      read_at_ = std::chrono::steady_clock::now();
      error_.clear();
    } else {
      error_ = r.error_message();
    }
    ++completed_;
    done_.notify_all();
  }
}

port_stats_snapshot port_stats_cache::get() {
  std::unique_lock lk(mu_);
  // The reading must start after this request: one already in flight may
  // have read the counters before the event the scraper is looking for.
  const uint64_t target = completed_ + (in_flight_ ? 2 : 1);
  wanted_ = true;
  wake_.notify_one();
  // Wait only for a query this scrape starts, and only when the dataplane
  // answers: one that let a query time out is not waited for again until it
  // answers a background query. So after the dataplane stops answering, at
  // most one scrape waits (scrape_wait); the others return at once.
  if (target == completed_ + 1 && !last_timed_out_)
    done_.wait_for(lk, scrape_wait_, [&] { return completed_ >= target; });
  port_stats_snapshot s;
  s.ports = ports_;
  s.up = last_ok_ && ports_ &&
         !(in_flight_ && std::chrono::steady_clock::now() - started_at_ > query_timeout_);
  if (ports_)
    s.age_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - read_at_).count();
  s.error = error_;
  return s;
}

} // namespace sluice::cp
