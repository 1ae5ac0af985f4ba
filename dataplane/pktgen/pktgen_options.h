// Command line of sluice-pktgen (after the EAL arguments and "--"), parsed
// before EAL starts so a typo costs no hugepages. Same conventions as
// sluice-dataplane: one line naming the option on stderr, exit status 2.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "result.h"

namespace sluice::pktgen {

inline constexpr int exit_usage = 2;

struct pktgen_options {
  bool help = false;
  bool validate = false; // check the profile and exit, no EAL
  std::string profile_path;
  uint16_t client_port = 0, backend_port = 1;
  std::array<uint8_t, 6> peer_mac_client{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  std::array<uint8_t, 6> peer_mac_backend{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  std::optional<double> duration_s; // overrides the profile
  double scale = 1.0;
  bool ndr = false;
  double ndr_precision = 0.02;
  std::optional<double> ndr_trial_s;
  uint32_t warmup_pps = 1'000'000;
  uint32_t stats_interval_ms = 1000;
  uint32_t mbufs = 65535;
  bool loopback = false;
  std::string json_path;
  double wait_peer_close_s = 0;
};

std::string pktgen_usage(const char* prog);
result<pktgen_options> parse_pktgen_options(int argc, const char* const* argv);

} // namespace sluice::pktgen
