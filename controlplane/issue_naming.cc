#include "issue_naming.h"

#include <charconv>
#include <fmt/format.h>
#include <optional>
#include <string_view>

namespace sluice::cp {

namespace {

// Parses "NAME[i]" at the start of `p`; on success `rest` is what follows.
std::optional<size_t> indexed(std::string_view p, std::string_view name, std::string_view& rest) {
  if (p.substr(0, name.size()) != name || p.size() <= name.size() || p[name.size()] != '[')
    return std::nullopt;
  const char* b = p.data() + name.size() + 1;
  const char* e = p.data() + p.size();
  size_t i = 0;
  auto [end, ec] = std::from_chars(b, e, i);
  if (ec != std::errc() || end == e || *end != ']')
    return std::nullopt;
  rest = p.substr(size_t(end - p.data()) + 1);
  return i;
}

// "LABEL" + ": field.sub" for a rest of ".field.sub" (nothing for "").
std::string join(const std::string& label, std::string_view rest) {
  if (rest.empty())
    return label;
  if (rest[0] == '.')
    rest.remove_prefix(1);
  return label + ": " + std::string(rest);
}

// The part of a service path after "services[i]" or "service".
std::string name_in_service(const named_service& s, const std::string& label,
                            std::string_view rest) {
  std::string_view after;
  if (rest.substr(0, 1) == ".")
    if (auto j = indexed(rest.substr(1), "backends", after); j && *j < s.cfg.backends.size())
      return join(label + ": " + backend_label(s.cfg.backends[*j], s.cfg.port, *j), after);
  return join(label, rest);
}

// Only rewrites `root` as a whole word ("service" but not "services").
std::optional<std::string_view> under(const std::string& path, const std::string& root) {
  if (path.compare(0, root.size(), root) != 0)
    return std::nullopt;
  std::string_view rest = std::string_view(path).substr(root.size());
  if (!rest.empty() && rest[0] != '.')
    return std::nullopt;
  return rest;
}

} // namespace

std::string service_label(const named_service& s, size_t index) {
  return valid_name(s.name) ? "service " + s.name : fmt::format("service #{}", index + 1);
}

std::string backend_label(const backend_config& b, uint16_t service_port, size_t index) {
  if (b.addr.is_unspecified())
    return fmt::format("backend #{}", index + 1);
  if (!b.port && !service_port)
    return "backend " + format_ip(b.addr);
  return "backend " + format_endpoint(b.addr, b.port ? b.port : service_port);
}

void name_issue_paths(std::vector<located_issue>& issues, const cp_config& c) {
  for (auto& i : issues) {
    std::string_view rest;
    if (auto k = indexed(i.what.path, "services", rest); k && *k < c.services.size())
      i.what.path = name_in_service(c.services[*k], service_label(c.services[*k], *k), rest);
  }
}

void name_issue_paths(std::vector<located_issue>& issues, const named_service& s,
                      const std::string& root) {
  const std::string label = valid_name(s.name) ? "service " + s.name : "service";
  for (auto& i : issues)
    if (auto rest = under(i.what.path, root))
      i.what.path = name_in_service(s, label, *rest);
}

void name_issue_paths(std::vector<located_issue>& issues, const backend_config& b,
                      const std::string& root) {
  const std::string label = b.addr.is_unspecified() ? "backend" : backend_label(b, 0, 0);
  for (auto& i : issues)
    if (auto rest = under(i.what.path, root))
      i.what.path = join(label, *rest);
}

} // namespace sluice::cp
