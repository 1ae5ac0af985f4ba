// Semantic checks of a whole desired config: names, uniqueness of services and
// backends, limits, mode-specific rules and whatever the table builder refuses.
// The loader, the API and the state module all validate through this one
// function, so a config the daemon accepts from one front end it accepts from
// every other.
#pragma once

#include <vector>

#include "config_model.h"
#include "shm_abi.h"

namespace sluice::cp {

// Every problem found, in config order. Empty when `c` can be published into
// an object with capacities `caps`.
std::vector<issue> validate_config(const cp_config& c, const abi::capacities& caps);

} // namespace sluice::cp
