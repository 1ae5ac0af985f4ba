// Keeps the announcement through a planned dataplane restart
// (--restart-hold-ms with --flow-snapshot; docs/high-availability.md,
// "Hitless dataplane restart"). A dataplane stopping cleanly writes its flow
// snapshot for its successor; while that file is fresh the instance keeps
// announcing, so an ECMP router does not move the instance's connections to
// peers that have no state for them (full NAT would reset them there) for the
// few seconds the new process needs. Packets sent during the gap are lost and
// retransmitted instead. Trade-off: a dataplane that stops cleanly and never
// comes back is withdrawn only after the hold, and any dataplane failure is
// withdrawn `debounce` later than without the option (the snapshot is written
// just after the workers stop).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "bgp_announcer.h"

namespace sluice::cp {

class restart_hold {
public:
  static constexpr uint64_t debounce_ns = 300'000'000;

  restart_hold(std::string snapshot_path, uint32_t hold_ms,
               std::function<void(const std::string&)> log)
      : path_(std::move(snapshot_path)), hold_ms_(hold_ms), log_(std::move(log)) {}

  // Turns a "dataplane not serving" verdict into serving while a restart is
  // under way. `now_ns` is CLOCK_MONOTONIC.
  void apply(serving_state& s, uint64_t now_ns);
  bool holding() const { return holding_; }

private:
  // Age of the snapshot file in ms, or -1 when there is none.
  int64_t snapshot_age_ms() const;

  std::string path_;
  uint32_t hold_ms_ = 0;
  std::function<void(const std::string&)> log_;
  uint64_t last_ok_ns_ = 0;
  uint64_t hold_start_ns_ = 0;
  bool holding_ = false;
};

} // namespace sluice::cp
