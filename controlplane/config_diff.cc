#include "config_diff.h"

#include <fmt/format.h>

#include "ip_addr.h"
#include "scheduler_names.h"

namespace sluice::cp {

namespace {

uint16_t effective_port(const service_config& s, const backend_config& b) {
  return b.port ? b.port : s.port;
}

const backend_config* find_backend(const service_config& s, const ip_addr& a, uint16_t port) {
  for (const auto& b : s.backends)
    if (b.addr == a && effective_port(s, b) == port)
      return &b;
  return nullptr;
}

template <typename T>
void field(std::vector<std::string>& changes, const char* name, const T& a, const T& b) {
  if (!(a == b))
    changes.push_back(fmt::format("{} {} -> {}", name, a, b));
}

void diff_service(const named_service& a, const named_service& b, std::vector<std::string>& out) {
  std::vector<std::string> ch;
  field(ch, "vip", format_ip(a.cfg.vip), format_ip(b.cfg.vip));
  field(ch, "port", a.cfg.port, b.cfg.port);
  field(ch, "proto", proto_name(a.cfg.proto), proto_name(b.cfg.proto));
  field(ch, "mode", mode_name(a.cfg.mode), mode_name(b.cfg.mode));
  field(ch, "scheduler", scheduler_name(a.cfg.scheduler), scheduler_name(b.cfg.scheduler));
  field(ch, "hash_src", a.cfg.hash_src, b.cfg.hash_src);
  field(ch, "sh_prefix4", unsigned(a.cfg.sh_prefix4), unsigned(b.cfg.sh_prefix4));
  field(ch, "sh_prefix6", unsigned(a.cfg.sh_prefix6), unsigned(b.cfg.sh_prefix6));
  field(ch, "sh_timeout", a.cfg.sh_timeout_s, b.cfg.sh_timeout_s);
  field(ch, "gue_port", a.cfg.gue_port, b.cfg.gue_port);
  field(ch, "on_backend_down", a.cfg.reset_on_down ? "reset" : "keep",
        b.cfg.reset_on_down ? "reset" : "keep");
  field(ch, "announce", announce_name(a.announce), announce_name(b.announce));
  field(ch, "quorum", a.quorum, b.quorum);
  for (const auto& tf : flow_timeout_fields)
    field(ch, (std::string("timeouts.") + tf.name).c_str(), a.cfg.timeouts.*tf.member,
          b.cfg.timeouts.*tf.member);
  if (!(a.health == b.health))
    ch.push_back(fmt::format("health {} -> {}", describe(a.health), describe(b.health)));
  if (a.backend_health != b.backend_health)
    ch.push_back("per-backend health overrides changed");
  for (const auto& c : ch)
    out.push_back(fmt::format("~ service {}: {}", b.name, c));
  for (const auto& ob : a.cfg.backends)
    if (!find_backend(b.cfg, ob.addr, effective_port(a.cfg, ob)))
      out.push_back(fmt::format("- backend {} {}", b.name,
                                format_endpoint(ob.addr, effective_port(a.cfg, ob))));
  for (const auto& nb : b.cfg.backends) {
    const auto* ob = find_backend(a.cfg, nb.addr, effective_port(b.cfg, nb));
    if (!ob) {
      out.push_back(fmt::format("+ backend {} {}", b.name, describe(b.cfg, nb)));
      continue;
    }
    std::vector<std::string> bc;
    field(bc, "weight", ob->weight, nb.weight);
    field(bc, "state", state_name(ob->state), state_name(nb.state));
    field(bc, "port", ob->port, nb.port);
    for (const auto& c : bc)
      out.push_back(fmt::format("~ backend {} {}: {}", b.name,
                                format_endpoint(nb.addr, effective_port(b.cfg, nb)), c));
  }
}

} // namespace

std::string describe(const named_service& s) {
  return fmt::format("{} {} {}", proto_name(s.cfg.proto), format_endpoint(s.cfg.vip, s.cfg.port),
                     mode_name(s.cfg.mode));
}

std::string describe(const service_config& s, const backend_config& b) {
  return fmt::format("{} weight {} {}", format_endpoint(b.addr, effective_port(s, b)), b.weight,
                     state_name(b.state));
}

std::vector<std::string> config_diff(const cp_config& from, const cp_config& to) {
  std::vector<std::string> out;
  std::vector<std::string> lim;
  field(lim, "limits.flow_table_size", from.limits.flow_table_size, to.limits.flow_table_size);
  field(lim, "limits.maglev_size", from.limits.maglev_size, to.limits.maglev_size);
  for (const auto& l : lim)
    out.push_back("~ " + l);
  for (const auto& s : from.services)
    if (!to.find(s.name))
      out.push_back(fmt::format("- service {} {}", s.name, describe(s)));
  for (const auto& s : to.services) {
    const auto* old = from.find(s.name);
    if (!old) {
      out.push_back(fmt::format("+ service {} {}", s.name, describe(s)));
      for (const auto& b : s.cfg.backends)
        out.push_back(fmt::format("+ backend {} {}", s.name, describe(s.cfg, b)));
      continue;
    }
    diff_service(*old, s, out);
  }
  return out;
}

} // namespace sluice::cp
