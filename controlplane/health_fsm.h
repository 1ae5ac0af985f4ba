// The rise/fall state machine of one backend's active checks. Pure: it sees
// check outcomes in order and never reads a clock, so tests drive it directly.
//
// A backend starts `up` (a restarted control plane must not take every backend
// out until it has checked them); `fall` consecutive failures take it down,
// `rise` consecutive successes bring it back. An alternating (flapping) backend
// never completes either run, so it keeps its state.
#pragma once

#include <cstdint>
#include <string_view>

namespace sluice::cp {

enum class health_status : uint8_t { up, down };

std::string_view health_status_name(health_status s);

class health_fsm {
public:
  health_fsm(uint32_t rise, uint32_t fall, health_status initial = health_status::up)
      : rise_(rise ? rise : 1), fall_(fall ? fall : 1), status_(initial) {}

  // Records one outcome; true when the status changed with it.
  bool record(bool ok);

  health_status status() const { return status_; }
  uint32_t successes_in_row() const { return ok_run_; }
  uint32_t failures_in_row() const { return fail_run_; }
  uint32_t rise() const { return rise_; }
  uint32_t fall() const { return fall_; }

private:
  uint32_t rise_, fall_;
  health_status status_;
  uint32_t ok_run_ = 0, fail_run_ = 0;
};

} // namespace sluice::cp
