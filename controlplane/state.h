// The control plane's one logic layer: the desired config and every change to
// it. The config loader, the API handler and the tests all call these
// functions. Each change is a transaction:
//   validate the whole next config -> publish it (all workers acknowledge, or
//   time out) -> only then commit it in memory -> persist it -> answer.
// A change that fails validation or publication leaves everything as it was.
// If the publication went out but was not acknowledged in time (or persisting
// failed), the change IS committed (the dataplane will use it) and the answer
// carries a warning.
//
// Owning thread: one (the daemon's event loop); not thread-safe by design, the
// API serialises clients in front of it.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "backend_overlay.h"
#include "config_model.h"
#include "ip_addr.h"
#include "result.h"
#include "shm_abi.h"

namespace sluice::cp {

struct publish_outcome {
  uint64_t generation = 0;
  std::string warning; // non-empty: published, but not (yet) acknowledged by every worker
};

// Publishes the table input; an error means nothing was published.
using publish_fn = std::function<result<publish_outcome>(const std::vector<service_config>&)>;
// Persists a committed config (the state file).
using persist_fn = std::function<result<void>(const cp_config&)>;
// Writes the soft fields of a published table input (each backend's
// rtt_hint_us and weight) into the shared backend soft-state array, in place
// (shm_publish.h). Backends not in the published tables are skipped.
using soft_fn = std::function<void(const std::vector<service_config>&)>;

// True when `next` differs from `published` only in values the soft-state
// array carries: response-time hints, and weights of backends that stay
// eligible (non-zero) in services whose scheduler reads weights per decision
// (not a Maglev lookup table, which bakes weights in).
bool soft_only_change(const std::vector<service_config>& published,
                      const std::vector<service_config>& next);

struct change_result {
  uint64_t generation = 0;       // generation now published (unchanged when nothing changed)
  std::vector<std::string> diff; // what changed (or would change, for a dry run)
  std::string warning;           // committed, but see the text
};

// Which backend of a service: address and port (0 = the service's port, or
// the only backend with that address).
struct backend_ref {
  ip_addr addr;
  uint16_t port = 0;
};

class cp_state {
public:
  cp_state(const abi::capacities& caps, publish_fn publish, persist_fn persist);

  const cp_config& desired() const { return desired_; }
  uint64_t generation() const { return generation_; }
  // Sets the generation and config without publishing (used at start-up
  // before the first apply).
  void set_generation(uint64_t g) { generation_ = g; }

  // Start-up: validates and publishes `c` unconditionally (even when it equals
  // what is published: a restarted control plane re-asserts its config), then
  // commits and persists it. Takes the instance name from `c`.
  result<change_result> load(cp_config c);
  result<change_result> apply(cp_config next, bool dry_run = false);
  result<change_result> add_service(named_service s);
  result<change_result> del_service(const std::string& name);
  // Replaces service `name` with `s` (which may carry a new name).
  result<change_result> set_service(const std::string& name, named_service s);
  result<change_result> add_backend(const std::string& service, backend_config b);
  result<change_result> del_backend(const std::string& service, const backend_ref& ref);
  result<change_result> set_weight(const std::string& service, const backend_ref& ref,
                                   uint16_t weight);
  result<change_result> drain(const std::string& service, const backend_ref& ref);
  result<change_result> undrain(const std::string& service, const backend_ref& ref);

  // Health checks and slow start (backend_overlay.h): applies the updates in
  // one publication, or, when they only move response-time hints and
  // slow-start weights (soft_only_change) and a soft writer is set, in place
  // through it without a new generation. The desired config and the state
  // file do not change.
  void set_soft_writer(soft_fn soft) { soft_ = std::move(soft); }
  result<change_result> set_health(const std::vector<overlay_update>& updates);
  const std::map<std::string, backend_overlay>& overlay() const { return overlay_; }
  // What is published: `c` with the overlay applied (a backend the operator
  // set `up` that failed its checks is `down`; slow start scales the weight).
  std::vector<service_config> effective(const cp_config& c) const;

private:
  // publish_ plus bookkeeping: what is published, soft values refreshed.
  result<publish_outcome> publish_table(const std::vector<service_config>& table);
  result<change_result> commit(cp_config next, bool dry_run, bool force = false);
  result<backend_config*> find_backend(cp_config& c, const std::string& service,
                                       const backend_ref& ref);

  abi::capacities caps_;
  publish_fn publish_;
  persist_fn persist_;
  soft_fn soft_;
  std::vector<service_config> published_; // the last table input published
  cp_config desired_;
  std::map<std::string, backend_overlay> overlay_; // by overlay_key(); default values absent
  uint64_t generation_ = 0;
};

} // namespace sluice::cp
