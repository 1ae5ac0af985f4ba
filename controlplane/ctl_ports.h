// `sluicectl ports`: the dataplane's ports as the operator on call reads them
// (like `ethtool -S` and `ip -s link` side by side): per port the totals with
// the loss counters that matter (imissed, ierrors, rx_nombuf), per queue the
// packets and, for AF_XDP, the socket's drops (RX ring full, fill ring empty),
// then the driver's non-zero xstats and vip_steer's counters. A pure function
// of the API's `ports` answer, so it is testable without a daemon.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace sluice::ctl {

// `xstats`: also list the driver's extended statistics.
std::string render_ports(const nlohmann::json& answer, bool xstats);

} // namespace sluice::ctl
