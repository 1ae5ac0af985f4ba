// The model written back out: as YAML text (the state file, which the loader
// reads back, so a restart restores exactly the live config) and as JSON (API
// answers). Defaults are written out explicitly so the text is self-describing.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "config_model.h"

namespace sluice::cp {

std::string to_yaml(const cp_config& c);
nlohmann::json to_json(const cp_config& c);
nlohmann::json to_json(const named_service& s);
nlohmann::json to_json(const backend_config& b);
nlohmann::json to_json(const health_config& h);
nlohmann::json to_json(const flow_defence& d);

} // namespace sluice::cp
