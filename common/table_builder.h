// Turns the desired state (service_config list) into one table slot of the
// shared-memory ABI: service entries, backend entries, the VIP index and the
// per-service Maglev tables.
//
// Trade-offs and invariants:
// - Indices are STABLE across builds: a service keeps its index and a backend
//   its slot for as long as it stays in the config, so per-worker counters and
//   flow entries keep their meaning. Freed indices go to the back of a FIFO and
//   never-used indices are handed out first, so a freed slot is reused as late
//   as possible; every (re)assignment of a backend slot takes a new incarnation
//   from a global counter (never 0), so a flow pointing at a reused slot is
//   recognised as stale even when the slot is reused at once.
// - build() is all-or-nothing: it validates first, computes the new
//   assignments on a copy and commits them only after the slot is written.
// - The builder only writes the slot it is given; making it visible to the
//   dataplane (and making sure nobody reads it meanwhile) is the publisher's job.
// - Lookup-pool capacity is checked against the M of EVERY service, not only
//   those that currently have a backend up, so a health change never makes a
//   publish fail.
#pragma once

#include <compare>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <vector>

#include "ip_addr.h"
#include "result.h"
#include "service_config.h"
#include "shm_abi.h"
#include "table_view.h"

namespace sluice {

class shm_region;

// Where build() writes: one slot, as raw pointers (into shared memory or a test
// buffer) plus the capacities that bound it.
struct slot_target {
  abi::slot_header* hdr = nullptr;
  abi::service_entry* services = nullptr;
  abi::backend_entry* backends = nullptr;
  abi::vip_index_entry* vip_index = nullptr;
  uint32_t* lookup = nullptr;
  abi::capacities caps{};
  uint32_t vip_index_capacity = 0; // power of two
};

// The target for slot `slot` (0 or 1) of a mapped object.
slot_target make_slot_target(const shm_region& region, unsigned slot);
// The target for a slot laid out per `l` starting at `slot_base` (for example a
// test buffer of l.slot_size bytes, 64-byte aligned).
slot_target make_slot_target(uint8_t* slot_base, const abi::layout& l, const abi::capacities& caps);
// The read-only view of such a buffer (what make_table_view gives for a mapping).
table_view make_slot_view(const uint8_t* slot_base, const abi::layout& l);

struct service_key {
  ip_addr vip;
  uint16_t port = 0;
  uint8_t proto = 0;
  friend auto operator<=>(const service_key&, const service_key&) = default;
  friend bool operator==(const service_key&, const service_key&) = default;
};

// A backend is identified by its service and its address and effective port
// (a config port of 0 means the service's port, so 0 and the explicit port name
// the same backend).
struct backend_key {
  service_key service;
  ip_addr addr;
  uint16_t port = 0;
  friend auto operator<=>(const backend_key&, const backend_key&) = default;
  friend bool operator==(const backend_key&, const backend_key&) = default;
};

struct backend_assignment {
  uint32_t slot = 0;
  uint32_t incarnation = 0;
};

struct backend_assignment_of_key {
  backend_key key;
  uint32_t incarnation = 0;
};

service_key key_of(const service_config& s);
backend_key key_of(const service_config& s, const backend_config& b);

// Checks a slot as a reader must be able to trust it: limits within the
// capacities, every index in range, every VIP index entry pointing at an in-use
// service with the same key (and every in-use service reachable through
// find_service), every lookup entry pointing at an in-use backend of that
// service, incarnations non-zero. Used on attach and in tests.
result<void> validate_slot(const table_view& v, const abi::capacities& caps);

class table_builder {
public:
  explicit table_builder(const abi::capacities& caps);

  // Human-readable reasons why `services` cannot be published; nothing changes.
  result<void> validate(const std::vector<service_config>& services) const;

  // Validates, assigns stable indices and writes the whole slot, stamping it
  // with `generation`. On error neither the assignments nor the slot change.
  result<void> build(const std::vector<service_config>& services, const slot_target& target,
                     uint64_t generation);

  // Takes over the assignments recorded in a published slot (a control plane
  // restarting against a running dataplane), so indices stay stable and new
  // incarnations are above every incarnation seen in `v` and `other` (the
  // previous slot, whose entries flows may still reference). The slot must pass
  // validate_slot; on error the builder is unchanged.
  result<void> adopt(const table_view& v, const table_view* other = nullptr);

  std::optional<uint32_t> service_index(const service_key& k) const;
  std::optional<backend_assignment> backend(const backend_key& k) const;
  const abi::capacities& caps() const { return caps_; }
  // The incarnation the next new backend assignment will get.
  uint32_t next_incarnation() const { return state_.next_incarnation; }

private:
  struct state {
    std::map<service_key, uint32_t> services;
    std::map<backend_key, backend_assignment> backends;
    std::deque<uint32_t> free_services; // freed indices, oldest first
    std::deque<uint32_t> free_backends;
    // Freed backend slots whose flows may still run: what the slot held.
    std::map<uint32_t, backend_assignment_of_key> retired;
    uint32_t service_high = 0; // indices >= this were never used
    uint32_t backend_high = 0;
    uint32_t next_incarnation = 1;
  };
  abi::capacities caps_;
  state state_;
};

} // namespace sluice
