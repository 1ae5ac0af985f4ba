#include "restart_hold.h"

#include <chrono>
#include <fmt/format.h>
#include <sys/stat.h>
#include <time.h>

namespace sluice::cp {

int64_t restart_hold::snapshot_age_ms() const {
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0)
    return -1;
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  const int64_t age = (int64_t(now.tv_sec) - int64_t(st.st_mtim.tv_sec)) * 1000 +
                      (int64_t(now.tv_nsec) - int64_t(st.st_mtim.tv_nsec)) / 1'000'000;
  return age < 0 ? 0 : age;
}

void restart_hold::apply(serving_state& s, uint64_t now_ns) {
  if (s.dataplane) {
    if (holding_)
      log_("dataplane restarted: announcement no longer held");
    holding_ = false;
    last_ok_ns_ = now_ns;
    return;
  }
  if (hold_ms_ == 0 || last_ok_ns_ == 0)
    return; // off, or the dataplane never served since we started
  const int64_t age = snapshot_age_ms();
  // Once a restart is seen, it is held for hold_ms from its start even after
  // the new process consumed the snapshot (it adopts, then starts its workers).
  const bool restarting = (age >= 0 && age < int64_t(hold_ms_)) ||
                          (holding_ && now_ns - hold_start_ns_ < uint64_t(hold_ms_) * 1'000'000);
  const bool just_stopped = now_ns - last_ok_ns_ < debounce_ns;
  if (!restarting && !just_stopped) {
    if (holding_)
      log_(fmt::format("dataplane not back within --restart-hold-ms {} ({}): withdrawing", hold_ms_,
                       s.reason));
    holding_ = false;
    return;
  }
  if (!holding_ && restarting) {
    hold_start_ns_ = now_ns;
    log_(fmt::format("dataplane restarting (flow snapshot {} saved {} ms ago): announcement held "
                     "up to {} ms",
                     path_, age, hold_ms_));
  }
  holding_ = holding_ || restarting;
  s.dataplane = true;
  s.reason.clear();
}

} // namespace sluice::cp
