// Decoding of a config tree (YAML from a file, or JSON from the API converted
// to the same tree) into the model, reporting every problem with its field
// path and, for file input, its line. Unknown fields and repeated keys are
// errors: a typo must never silently fall back to a default.
#pragma once

#include <map>
#include <string>
#include <vector>
#include <yaml-cpp/yaml.h>

#include "config_model.h"

namespace sluice::cp {

struct located_issue {
  int line = 0; // 1-based; 0 when unknown (API input)
  issue what;
};

struct decode_result {
  cp_config config;
  std::vector<located_issue> issues;
  std::map<std::string, int> lines; // field path -> line, for semantic errors
};

// The whole file's tree.
decode_result decode_config(const YAML::Node& root);
// One service (`path` names it in messages, e.g. "service").
decode_result decode_service(const YAML::Node& n, const std::string& path, named_service& out);
// One backend.
decode_result decode_backend(const YAML::Node& n, const std::string& path, backend_config& out);

// The line of `path` or of its closest recorded ancestor (0 when none).
int line_of(const std::map<std::string, int>& lines, std::string path);

} // namespace sluice::cp
