// Operator-facing names of the schedulers (config files, the API, sluicectl,
// metrics) and their mapping to the shared-memory enum. One list, so a name
// can never mean different things in different front ends.
#pragma once

#include <array>
#include <optional>
#include <string_view>
#include <utility>

#include "shm_abi.h"

namespace sluice {

inline constexpr std::array<std::pair<std::string_view, abi::scheduler_kind>, 10> scheduler_names =
    {{
        {"maglev", abi::scheduler_kind::maglev},
        {"rr", abi::scheduler_kind::rr},
        {"wrr", abi::scheduler_kind::wrr},
        {"lc", abi::scheduler_kind::lc},
        {"wlc", abi::scheduler_kind::wlc},
        {"sh", abi::scheduler_kind::sh},
        {"random", abi::scheduler_kind::random},
        {"two-choices", abi::scheduler_kind::two_choices},
        {"least-bandwidth", abi::scheduler_kind::least_bandwidth},
        {"least-response-time", abi::scheduler_kind::least_response_time},
    }};

inline std::optional<abi::scheduler_kind> scheduler_from_name(std::string_view name) {
  for (const auto& [n, k] : scheduler_names)
    if (n == name)
      return k;
  return std::nullopt;
}

inline std::string_view scheduler_name(abi::scheduler_kind k) {
  for (const auto& [n, kind] : scheduler_names)
    if (kind == k)
      return n;
  return "unknown";
}

// Schedulers that look flows up in a Maglev table; the others read the
// service's list of eligible backends.
inline bool uses_maglev_table(abi::scheduler_kind k) {
  return k == abi::scheduler_kind::maglev || k == abi::scheduler_kind::sh;
}

} // namespace sluice
