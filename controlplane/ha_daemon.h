// The daemon's high-availability side, driven from its event loop: decides
// whether this instance serves (dataplane heartbeats, `instance drain`,
// SIGTERM), keeps the BGP announcement in BIRD in step (bgp_announcer), keeps
// the per-service table digests current and exchanges them with the peer
// instances (peer_sync). Adds the API commands instance.drain,
// instance.undrain, bgp and peers, and their metrics. One thread: every call
// comes from the event loop.
#pragma once

#include <boost/program_options.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "bgp_announcer.h"
#include "peer_sync.h"
#include "publisher.h"
#include "restart_hold.h"
#include "shm_region.h"
#include "state.h"

namespace sluice::cp {

struct ha_options {
  bgp_options bgp;
  peer_options peers;
  std::vector<std::string> neighbor_texts, community_texts;
  bool no_bfd = false;
  std::string flow_snapshot;    // the dataplane's --flow-snapshot (restart hold)
  uint32_t restart_hold_ms = 0; // 0: no hold
};

// The --bgp-*, --bfd-*, --peer* options, bound to `o`.
void add_ha_options(boost::program_options::options_description& d, ha_options& o);
// Parses the texts gathered by the options; the message names the option.
result<void> finish_ha_options(ha_options& o);

class ha_daemon {
public:
  using log_fn = std::function<void(const std::string&)>;
  ha_daemon(ha_options o, std::string instance, std::vector<ip_addr> nat_pool, log_fn log);

  result<void> start(); // binds the peer socket
  // Every tick: serving state, announcement, digests (when the generation
  // moved), peer exchange.
  void tick(const cp_state& state, const shm_region& region, const publisher& pub);
  // API commands this module answers; nullopt for any other command.
  std::optional<nlohmann::json> handle(const std::string& cmd, const nlohmann::json& req,
                                       const cp_state& state, const shm_region& region,
                                       const publisher& pub);
  std::string metrics() const;
  // SIGTERM: withdraw every route before the process exits.
  void shutdown();

private:
  void refresh(const cp_state& state, const shm_region& region, const publisher& pub);

  ha_options opts_;
  std::vector<ip_addr> nat_pool_;
  log_fn log_;
  bgp_announcer bgp_;
  peer_sync peers_;
  restart_hold hold_;
  bool drained_ = false;
  serving_state serving_;
  std::map<std::string, uint64_t> digests_;
  uint64_t digest_generation_ = UINT64_MAX;
};

} // namespace sluice::cp
