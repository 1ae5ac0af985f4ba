// Operator-facing names of the forwarding modes (config files, the API,
// sluicectl, error messages) and their shared-memory values, in one list.
#pragma once

#include <array>
#include <optional>
#include <string_view>
#include <utility>

#include "shm_abi.h"

namespace sluice {

inline constexpr std::array<std::pair<std::string_view, abi::fwd_mode>, 5> fwd_mode_names = {{
    {"nat", abi::fwd_mode::nat},
    {"dnat", abi::fwd_mode::dnat},
    {"dsr-l2", abi::fwd_mode::dsr_l2},
    {"dsr-ipip", abi::fwd_mode::dsr_ipip},
    {"dsr-gue", abi::fwd_mode::dsr_gue},
}};

inline std::string_view fwd_mode_name(abi::fwd_mode m) {
  for (const auto& [n, k] : fwd_mode_names)
    if (k == m)
      return n;
  return "?";
}

inline std::optional<abi::fwd_mode> fwd_mode_from_name(std::string_view name) {
  for (const auto& [n, k] : fwd_mode_names)
    if (n == name)
      return k;
  return std::nullopt;
}

} // namespace sluice
