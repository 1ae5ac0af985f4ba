#include "health_fsm.h"

namespace sluice::cp {

std::string_view health_status_name(health_status s) {
  return s == health_status::up ? "up" : "down";
}

bool health_fsm::record(bool ok) {
  if (ok) {
    ++ok_run_;
    fail_run_ = 0;
    if (status_ == health_status::down && ok_run_ >= rise_) {
      status_ = health_status::up;
      return true;
    }
  } else {
    ++fail_run_;
    ok_run_ = 0;
    if (status_ == health_status::up && fail_run_ >= fall_) {
      status_ = health_status::down;
      return true;
    }
  }
  return false;
}

} // namespace sluice::cp
