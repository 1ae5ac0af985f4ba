// The dataplane's port statistics for /metrics without blocking the event
// loop. A scrape used to query the dataplane's telemetry socket inline (500 ms
// timeout per command), so a dataplane that stopped answering (stopped,
// overloaded, wedged in a driver) stalled the API, health checks and every
// other client for the length of the scrape. Here one background thread runs
// the queries; a scrape asks for a fresh reading and waits for it only while
// the dataplane is known to answer (a short bound), otherwise it gets the last
// known values at once, with their age and `up` = 0 (sluice_port_stats_up,
// sluice_port_stats_age_seconds). At most one query is in flight; its
// telemetry timeout bounds how long a wedged dataplane occupies the thread.
//
// Owning thread: get() from the event loop thread; the query thread is
// private. The destructor stops it (waits at most one query timeout).
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

namespace sluice::cp {

struct port_stats_snapshot {
  std::optional<nlohmann::json> ports; // last good query_port_stats() answer
  bool up = false;   // the most recent query was answered (none pending past its timeout)
  double age_s = -1; // seconds since `ports` was read (-1: never)
  std::string error; // why the last query failed, if it did
};

class port_stats_cache {
public:
  // `query_timeout` bounds one query (every telemetry command of it);
  // `scrape_wait` bounds how long get() waits for a fresh reading.
  port_stats_cache(std::string shm_path, std::chrono::milliseconds query_timeout,
                   std::chrono::milliseconds scrape_wait);
  ~port_stats_cache();
  port_stats_cache(const port_stats_cache&) = delete;
  port_stats_cache& operator=(const port_stats_cache&) = delete;

  // Requests a fresh reading (unless one is in flight) and returns what is
  // known, after waiting up to scrape_wait when the dataplane answered last.
  port_stats_snapshot get();

private:
  void run();

  const std::string shm_path_;
  const std::chrono::milliseconds query_timeout_, scrape_wait_;
  std::mutex mu_;
  std::condition_variable wake_, done_;
  bool stop_ = false, wanted_ = false, in_flight_ = false;
  bool last_ok_ = false;
  bool last_timed_out_ = false;
  uint64_t completed_ = 0;
  std::chrono::steady_clock::time_point read_at_, started_at_;
  std::optional<nlohmann::json> ports_;
  std::string error_;
  std::thread thread_;
};

} // namespace sluice::cp
