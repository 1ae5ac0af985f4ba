// dsr_decap on a backend's interface: attach, reconfigure, detach, query. Used
// by sluice-decap and by tests; the program object is embedded in the binary
// (bpftool skeleton), so nothing needs to be installed next to it.
//
// Attaching to an interface that already runs dsr_decap only rewrites its
// configuration (counters are kept); an interface running another XDP program
// is refused rather than replaced.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ip_addr.h"
#include "result.h"
#include "sluice_bpf_abi.h"

namespace sluice::bpf {

struct decap_settings {
  uint16_t gue_port = SLUICE_DECAP_DEFAULT_GUE_PORT;
  // Outer destinations accepted; empty = any destination (see docs/dsr-backends.md).
  std::vector<ip_addr> local_addrs;
};

using decap_counters = std::array<uint64_t, sluice_decap_counter_count>;
extern const char* const decap_counter_names[sluice_decap_counter_count];

struct decap_state {
  uint32_t prog_id = 0;
  std::string mode; // "native" / "generic"
  decap_settings settings;
  decap_counters counters{};
};

// Writes settings into the program's maps (config_fd: decap_config,
// addrs_fd: decap_addrs), replacing the previous address set.
status decap_configure(int config_fd, int addrs_fd, const decap_settings& s);

// Returns the attach mode ("native", "generic", or "updated" when dsr_decap was
// already attached and only its configuration changed).
result<std::string> decap_attach(const std::string& iface, const decap_settings& s);
// Detaches dsr_decap; true when it was attached, false when nothing was.
result<bool> decap_detach(const std::string& iface);
// nullopt when dsr_decap is not attached to the interface.
result<std::optional<decap_state>> decap_query(const std::string& iface);

} // namespace sluice::bpf
