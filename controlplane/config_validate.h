// Semantic checks of a whole desired config: names, uniqueness of services and
// backends, limits, mode-specific rules and whatever the table builder refuses.
// The loader, the API and the state module all validate through this one
// function, so a config the daemon accepts from one front end it accepts from
// every other.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "config_model.h"
#include "shm_abi.h"

namespace sluice::cp {

// What the caller knows from decoding: where fields are (so a duplicate can
// point at the line of its twin) and which services failed to decode. Those
// are left out of the semantic checks, whose findings on fields a decode
// error left at their defaults would only confuse; every other service is
// still checked, so one run reports every independent mistake.
struct validate_hints {
  const std::map<std::string, int>* lines = nullptr;
  std::set<size_t> undecoded;
};

// Every problem found, in config order. Empty when `c` can be published into
// an object with capacities `caps`.
std::vector<issue> validate_config(const cp_config& c, const abi::capacities& caps,
                                   const validate_hints& hints = {});

} // namespace sluice::cp
