// A digest of each service's published lookup table, so instances can check
// "same config => bit-identical Maglev tables" without shipping the tables.
// Each entry is hashed as the backend it names (address and port), not as its
// slot index: slot numbers depend on an instance's history of changes, the
// backend an entry sends a flow to is what must agree. Read from the shared
// memory's active slot, i.e. what the dataplane actually uses.
//
// Cost: one 64-bit multiply per lookup entry (about 0.1 ms for M = 65537), so
// the daemon recomputes only when the generation changes.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "config_model.h"
#include "shm_region.h"
#include "table_builder.h"

namespace sluice::cp {

// Service name -> digest of its lookup table (0 when nothing is published or
// the service is not in the active slot). An empty table has a fixed digest.
std::map<std::string, uint64_t>
service_digests(const shm_region& region, const table_builder& builder, const cp_config& config);

// The same over a table view (tests build one without shared memory).
uint64_t table_digest(const table_view& v, uint32_t service_index, uint16_t service_port);

std::string digest_hex(uint64_t d);

} // namespace sluice::cp
