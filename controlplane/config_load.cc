#include "config_load.h"

#include <algorithm>
#include <fmt/format.h>
#include <fstream>
#include <sstream>

#include "config_validate.h"

namespace sluice::cp {

std::string format_issues(const std::string& label, std::vector<located_issue> issues) {
  std::stable_sort(issues.begin(), issues.end(),
                   [](const auto& a, const auto& b) { return a.line < b.line; });
  std::string out;
  for (const auto& i : issues) {
    if (!out.empty())
      out += '\n';
    if (!label.empty())
      out += i.line > 0 ? fmt::format("{}:{}: ", label, i.line) : label + ": ";
    out += i.what.path.empty() ? i.what.message : i.what.path + ": " + i.what.message;
  }
  return out;
}

std::vector<located_issue> all_issues(const decode_result& d, const abi::capacities& caps) {
  auto issues = d.issues;
  // Semantic checks only on a tree that decoded cleanly: otherwise defaults
  // left by a bad field would produce confusing follow-up errors.
  if (issues.empty())
    for (auto& i : validate_config(d.config, caps))
      issues.push_back({line_of(d.lines, i.path), i});
  return issues;
}

result<cp_config> load_config_text(const std::string& text, const std::string& label,
                                   const abi::capacities& caps) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return make_error(fmt::format("{}:{}:{}: malformed YAML: {}", label, e.mark.line + 1,
                                  e.mark.column + 1, e.msg));
  }
  auto d = decode_config(root);
  auto issues = all_issues(d, caps);
  if (!issues.empty())
    return make_error(format_issues(label, std::move(issues)));
  return std::move(d.config);
}

result<cp_config> load_config_file(const std::string& path, const abi::capacities& caps) {
  std::ifstream in(path);
  if (!in)
    return make_error(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  std::stringstream ss;
  ss << in.rdbuf();
  return load_config_text(ss.str(), path, caps);
}

} // namespace sluice::cp
