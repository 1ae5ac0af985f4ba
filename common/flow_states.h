// The states of a tracked flow, with the names the dataplane's introspection,
// the control plane's API and sluicectl show. Written once here (no DPDK) so
// the dataplane's state machine (dataplane/tcp_fsm.h) and the control plane's
// filters cannot drift apart; docs/forwarding.md describes each state.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sluice {

// Values 0..4 keep the numbering of earlier releases (introspection clients).
enum class flow_state : uint8_t {
  syn = 0,
  established = 1,
  fin = 2,
  closed = 3,
  udp = 4,
  syn_recv = 5,
  last_ack = 6,
  time_wait = 7,
  adopted = 8,
  udp_unanswered = 9,
};
inline constexpr size_t flow_state_count = 10;
inline constexpr std::array<std::string_view, flow_state_count> flow_state_names = {
    "syn",      "established", "fin",       "closed",  "udp",
    "syn_recv", "last_ack",    "time_wait", "adopted", "udp_unanswered"};

inline constexpr std::string_view flow_state_name(uint8_t s) {
  return s < flow_state_count ? flow_state_names[s] : std::string_view("unknown");
}

} // namespace sluice
