// What changes between two desired configs, as human-readable lines
// ("+ service ...", "- backend ...", "~ backend ...: weight 1 -> 5"). Shown by
// `sluicectl apply --dry-run` and returned with every change.
#pragma once

#include <string>
#include <vector>

#include "config_model.h"

namespace sluice::cp {

std::vector<std::string> config_diff(const cp_config& from, const cp_config& to);

// "tcp 192.0.2.10:80 dsr-ipip" and "10.0.0.11:80 weight 1 up".
std::string describe(const named_service& s);
std::string describe(const service_config& s, const backend_config& b);

} // namespace sluice::cp
