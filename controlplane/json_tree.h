// JSON from the API converted into the tree the config decoder reads, so the
// API and the config file share one decoder (same field names, same checks,
// same messages; API errors simply carry no line).
#pragma once

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

namespace sluice::cp {

YAML::Node to_tree(const nlohmann::json& j);

} // namespace sluice::cp
