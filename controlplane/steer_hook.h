// Keeps vip_steer's maps in step with the published services
// (--steer-iface IF). The hook wraps the control plane's publish function:
// after every publication that moved the generation, it writes the published
// VIPs and dnat backends into the maps of the vip_steer program attached to
// IF (bpf/steer_control.h), so traffic for a new VIP reaches the dataplane's
// AF_XDP socket and a removed VIP goes back to the kernel.
//
// vip_steer's address map also holds the dataplane's own addresses and NAT
// pool (options of the dataplane, not of the config): they come from
// --steer-own / --steer-nat-pool when given, else the ones already in the map
// are kept.
//
// A failed map update does not undo the publication (the dataplane already
// uses the tables): it is logged and reported as the change's warning.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ip_addr.h"
#include "state.h"

namespace sluice::cp {

struct steer_hook_options {
  std::string iface;             // empty: no hook
  std::vector<ip_addr> nat_pool; // empty: keep the map's
  std::vector<ip_addr> own;      // empty: keep the map's
};

// False when the control plane was built without libbpf (the option is then refused).
bool steer_hook_available();

// `inner` followed by the map update on `o.iface`; `log` gets one line per failure.
publish_fn with_steer_update(publish_fn inner, steer_hook_options o,
                             std::function<void(const std::string&)> log);

// Fills the maps of the vip_steer program attached to `o.iface` with
// `services` when that program is not `filled_prog_id` (then updated): a
// restarted dataplane attaches a new program whose maps are empty, and no
// publication follows a dataplane restart. True when it filled; one query
// when nothing changed.
result<bool> steer_refill_if_new(const steer_hook_options& o,
                                 const std::vector<service_config>& services,
                                 uint32_t& filled_prog_id);

// vip_steer's per-CPU counters on `iface`, summed: {"iface", "program_id",
// "counters": {NAME: N}}, or {"iface", "error"} when they cannot be read.
nlohmann::json steer_counters(const std::string& iface);

} // namespace sluice::cp
