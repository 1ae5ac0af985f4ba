// sluicectl's views of the high-availability commands: `instance drain` /
// `instance undrain` (what is withdrawn or announced now), `bgp` (each
// prefix, announced or not and why) and `peers` (each peer instance, its
// state, messages lost, and whether its table digests equal ours). Pure
// functions from the daemon's JSON answer to text, so tests check them
// without a daemon.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace sluice::ctl {

std::string render_drain(const nlohmann::json& answer);
std::string render_bgp(const nlohmann::json& answer);
std::string render_peers(const nlohmann::json& answer);

} // namespace sluice::ctl
