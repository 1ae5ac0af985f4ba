// Config file in, validated model out (or every error, one per line, each of
// the form "FILE:LINE: PATH: MESSAGE"). YAML through yaml-cpp: it reports
// line/column marks for every node, which the error messages need, and it is a
// well-kept, widely packaged library.
#pragma once

#include <string>
#include <vector>

#include "config_decode.h"
#include "config_model.h"
#include "result.h"
#include "shm_abi.h"

namespace sluice::cp {

// The YAML tree of `text`, refused before decoding when it is larger than
// input_limits allow, not UTF-8, more than one document, too deep or too many
// nodes with aliases expanded. Messages start with `label`.
result<YAML::Node> parse_yaml_bounded(const std::string& text, const std::string& label);

// The whole of a regular file, refused when larger than `max_bytes`.
result<std::string> read_file_bounded(const std::string& path, size_t max_bytes);

// Parses and validates `text`; `label` names it in messages (a file name).
result<cp_config> load_config_text(const std::string& text, const std::string& label,
                                   const abi::capacities& caps);
result<cp_config> load_config_file(const std::string& path, const abi::capacities& caps);

// "LABEL:LINE: PATH: MESSAGE" lines (without LABEL/LINE when unknown), sorted
// by line, joined by '\n'.
std::string format_issues(const std::string& label, std::vector<located_issue> issues);

// Decoding issues plus validate_config issues located through `lines`.
std::vector<located_issue> all_issues(const decode_result& d, const abi::capacities& caps);

} // namespace sluice::cp
