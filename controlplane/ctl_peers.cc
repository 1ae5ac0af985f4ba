#include "ctl_peers.h"

#include <fmt/format.h>

using nlohmann::json;

namespace sluice::ctl {

namespace {

std::string routes_table(const json& routes) {
  std::string o = fmt::format("{:<44} {:<10} {}\n", "PREFIX", "STATE", "WHY");
  for (const auto& r : routes)
    o += fmt::format("{:<44} {:<10} {}\n", r.value("prefix", ""),
                     r.value("announced", false) ? "announced" : "withdrawn", r.value("why", ""));
  return o;
}

std::string joined(const json& list) {
  std::string o;
  for (const auto& s : list) {
    if (!o.empty())
      o += ',';
    o += s.get<std::string>();
  }
  return o.empty() ? "-" : o;
}

} // namespace

std::string render_drain(const json& a) {
  std::string o = fmt::format("instance {}\n", a.value("drained", false) ? "drained: every route "
                                                                           "withdrawn"
                                                                         : "undrained");
  if (!a.value("bgp_enabled", false))
    return o + "(BGP announcement is off: sluice-controlplane runs without --bgp-include)\n";
  if (!a.value("last_error", std::string()).empty())
    o += fmt::format("warning: BIRD reload failed: {}\n", a.value("last_error", ""));
  return o + routes_table(a.value("routes", json::array()));
}

std::string render_bgp(const json& a) {
  if (!a.value("enabled", false))
    return "BGP announcement is off (sluice-controlplane runs without --bgp-include)\n";
  std::string o = fmt::format(
      "serving: {}{}\ninclude file: {}\nBIRD socket: {}\nreloads: {} (failed {}, last {:.1f} ms)\n",
      a.value("serving", false) ? "yes" : "no",
      a.value("serving", false) ? std::string()
                                : fmt::format(" ({})", a.value("not_serving_reason", "")),
      a.value("include_file", ""), a.value("bird_socket", ""), a.value("reloads", 0),
      a.value("reload_failures", 0), a.value("last_reload_ms", 0.0));
  if (!a.value("last_error", std::string()).empty())
    o += fmt::format("last error: {}\n", a.value("last_error", ""));
  return o + routes_table(a.value("routes", json::array()));
}

std::string render_peers(const json& a) {
  std::string o;
  if (!a.value("enabled", false))
    o += "peer exchange is off (sluice-controlplane runs without --peer-listen)\n";
  else
    o += fmt::format("instance {} on {} (serving: {}), {} messages sent\n", a.value("instance", ""),
                     a.value("listen", ""), a.value("serving", false) ? "yes" : "no",
                     a.value("sent", 0));
  o += fmt::format("{:<24} {:<18}\n", "SERVICE", "TABLE DIGEST");
  const json digests = a.value("digests", json::object());
  for (const auto& [name, d] : digests.items())
    o += fmt::format("{:<24} {:<18}\n", name, d.get<std::string>());
  if (!a.value("enabled", false))
    return o;
  o += fmt::format("\n{:<24} {:<16} {:<8} {:<8} {:>9} {:>6} {:>12} {:<8} {}\n", "PEER", "INSTANCE",
                   "STATE", "SERVING", "MESSAGES", "LOST", "LAST SEEN", "DIGESTS", "DIFFER");
  for (const auto& p : a.value("peers", json::array())) {
    const double seen = p.value("last_seen_ms", -1.0);
    o += fmt::format("{:<24} {:<16} {:<8} {:<8} {:>9} {:>6} {:>12} {:<8} {}\n",
                     p.value("address", ""), p.value("instance", std::string("-")),
                     p.value("state", ""), p.value("serving", false) ? "yes" : "no",
                     p.value("messages", 0), p.value("lost", 0),
                     seen < 0 ? std::string("never") : fmt::format("{:.0f} ms", seen),
                     p.value("digests_equal", false) ? "equal" : "DIFFER",
                     joined(p.value("differ", json::array())));
  }
  return o;
}

} // namespace sluice::ctl
