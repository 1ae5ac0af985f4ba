// Bounds checked on every request and every config before it is decoded, so
// that no input can exhaust the stack, the memory or the event loop's time:
// sizes, nesting depth, YAML nodes counted with aliases expanded (yaml-cpp
// has no alias limit: a 10 KB "billion laughs" file expands to millions of
// nodes), string lengths and UTF-8 validity (error messages echo input and
// the JSON serializer throws on invalid UTF-8). The checks are linear scans
// that stop at the first limit crossed, so a hostile input costs at most the
// limit, never its expansion. Limits are above any real config: 256 services
// and 4096 backends, each with its own health check, stay under them (about
// 200,000 nodes).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <yaml-cpp/yaml.h>

#include "result.h"

namespace sluice::cp {

struct input_limits {
  static constexpr size_t max_request_bytes = 4u << 20; // one API request line
  static constexpr size_t max_config_bytes = 8u << 20;  // a config or state file
  static constexpr int max_depth = 64;                  // JSON/YAML nesting
  static constexpr size_t max_nodes = 400000;           // YAML nodes, aliases expanded
  static constexpr size_t max_string_bytes = 4096;      // any config string
  static constexpr size_t max_issues = 100;             // errors reported for one input
};

// Byte offset of the first byte that is not well-formed UTF-8 (RFC 3629: no
// overlongs, no surrogates, at most U+10FFFF), or npos.
size_t invalid_utf8_at(std::string_view s);

// "not valid UTF-8 at byte N" for `what`, or ok.
result<void> check_utf8(std::string_view s, std::string_view what);

// Nesting of JSON arrays/objects (outside strings) at most max_depth.
result<void> check_json_depth(std::string_view text, int max_depth = input_limits::max_depth);

// The tree's depth and its node count with aliases expanded, both bounded;
// stops counting at the first limit crossed.
result<void> check_yaml_tree(const YAML::Node& root, int max_depth = input_limits::max_depth,
                             size_t max_nodes = input_limits::max_nodes);

// `s` printable in an error message: invalid UTF-8 bytes and control
// characters escaped as \xHH, cut after `max` bytes with "...".
std::string printable(std::string_view s, size_t max = 80);

} // namespace sluice::cp
