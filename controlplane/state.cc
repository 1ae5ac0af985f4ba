#include "state.h"

#include <algorithm>
#include <fmt/format.h>

#include "config_diff.h"
#include "config_load.h"
#include "config_validate.h"
#include "issue_naming.h"
#include "scheduler_names.h"

namespace sluice::cp {

cp_state::cp_state(const abi::capacities& caps, publish_fn publish, persist_fn persist)
    : caps_(caps), publish_(std::move(publish)), persist_(std::move(persist)) {}

bool soft_only_change(const std::vector<service_config>& published,
                      const std::vector<service_config>& next) {
  if (published.size() != next.size())
    return false;
  for (size_t i = 0; i < next.size(); ++i) {
    const service_config& a = published[i];
    if (a.backends.size() != next[i].backends.size())
      return false;
    service_config b = next[i];
    const bool weights_soft = !uses_maglev_table(a.scheduler);
    for (size_t j = 0; j < b.backends.size(); ++j) {
      backend_config& nb = b.backends[j];
      const backend_config& pb = a.backends[j];
      nb.rtt_hint_us = pb.rtt_hint_us;
      if (weights_soft && nb.weight > 0 && pb.weight > 0)
        nb.weight = pb.weight;
    }
    if (!(a == b))
      return false;
  }
  return true;
}

result<publish_outcome> cp_state::publish_table(const std::vector<service_config>& table) {
  auto pub = publish_(table);
  if (!pub)
    return pub;
  published_ = table;
  // The new slot carries these values already; the soft words of backends that
  // kept their incarnation still hold older ones, which would override them.
  if (soft_)
    soft_(table);
  return pub;
}

result<change_result> cp_state::commit(cp_config next, bool dry_run, bool force) {
  std::vector<located_issue> issues;
  for (auto& i : validate_config(next, caps_))
    issues.push_back({0, i});
  name_issue_paths(issues, next);
  if (!issues.empty())
    return make_error(format_issues("", std::move(issues)));
  change_result r;
  r.diff = config_diff(desired_, next);
  r.generation = generation_;
  if (dry_run || (r.diff.empty() && !force))
    return r;
  auto pub = publish_table(effective(next));
  if (!pub)
    return make_error("publish failed, nothing changed: " + pub.error_message());
  generation_ = pub->generation;
  r.generation = pub->generation;
  r.warning = pub->warning;
  desired_ = std::move(next);
  if (persist_)
    if (auto p = persist_(desired_); !p)
      r.warning +=
          (r.warning.empty() ? "" : "; ") + ("published but not persisted: " + p.error_message());
  return r;
}

result<change_result> cp_state::load(cp_config c) {
  desired_.instance = c.instance;
  return commit(std::move(c), false, true);
}

result<change_result> cp_state::apply(cp_config next, bool dry_run) {
  if (next.instance != desired_.instance)
    return make_error(fmt::format("instance: cannot change the instance of a running control "
                                  "plane (running '{}', got '{}')",
                                  desired_.instance, next.instance));
  return commit(std::move(next), dry_run);
}

result<change_result> cp_state::add_service(named_service s) {
  if (desired_.find(s.name))
    return make_error(fmt::format("service '{}' already exists", s.name));
  cp_config next = desired_;
  next.services.push_back(std::move(s));
  return commit(std::move(next), false);
}

result<change_result> cp_state::del_service(const std::string& name) {
  if (!desired_.find(name))
    return make_error(fmt::format("service '{}' does not exist", name));
  cp_config next = desired_;
  std::erase_if(next.services, [&](const named_service& s) { return s.name == name; });
  return commit(std::move(next), false);
}

result<change_result> cp_state::set_service(const std::string& name, named_service s) {
  cp_config next = desired_;
  auto* old = next.find(name);
  if (!old)
    return make_error(fmt::format("service '{}' does not exist", name));
  *old = std::move(s);
  return commit(std::move(next), false);
}

result<backend_config*> cp_state::find_backend(cp_config& c, const std::string& service,
                                               const backend_ref& ref) {
  auto* s = c.find(service);
  if (!s)
    return make_error(fmt::format("service '{}' does not exist", service));
  backend_config* hit = nullptr;
  unsigned addr_matches = 0;
  for (auto& b : s->cfg.backends) {
    if (b.addr != ref.addr)
      continue;
    uint16_t eff = b.port ? b.port : s->cfg.port;
    if (ref.port != 0 && eff == ref.port)
      return &b;
    if (ref.port == 0) {
      ++addr_matches;
      if (eff == s->cfg.port || !hit)
        hit = &b;
    }
  }
  if (ref.port == 0 && hit &&
      (addr_matches == 1 || (hit->port ? hit->port : s->cfg.port) == s->cfg.port))
    return hit;
  return make_error(
      fmt::format("service '{}' has no backend {}", service,
                  ref.port ? format_endpoint(ref.addr, ref.port) : format_ip(ref.addr)));
}

result<change_result> cp_state::add_backend(const std::string& service, backend_config b) {
  cp_config next = desired_;
  auto* s = next.find(service);
  if (!s)
    return make_error(fmt::format("service '{}' does not exist", service));
  uint16_t eff = b.port ? b.port : s->cfg.port;
  if (find_backend(next, service, {b.addr, eff}))
    return make_error(
        fmt::format("service '{}' already has backend {}", service, format_endpoint(b.addr, eff)));
  s->cfg.backends.push_back(b);
  return commit(std::move(next), false);
}

result<change_result> cp_state::del_backend(const std::string& service, const backend_ref& ref) {
  cp_config next = desired_;
  auto b = find_backend(next, service, ref);
  if (!b)
    return b.err();
  auto* svc = next.find(service);
  auto& list = svc->cfg.backends;
  svc->backend_health.erase(
      format_endpoint(b.value()->addr, b.value()->port ? b.value()->port : svc->cfg.port));
  list.erase(list.begin() + (b.value() - list.data()));
  return commit(std::move(next), false);
}

result<change_result> cp_state::set_weight(const std::string& service, const backend_ref& ref,
                                           uint16_t weight) {
  cp_config next = desired_;
  auto b = find_backend(next, service, ref);
  if (!b)
    return b.err();
  b.value()->weight = weight;
  return commit(std::move(next), false);
}

result<change_result> cp_state::drain(const std::string& service, const backend_ref& ref) {
  cp_config next = desired_;
  auto b = find_backend(next, service, ref);
  if (!b)
    return b.err();
  b.value()->state = abi::backend_state::draining;
  return commit(std::move(next), false);
}

result<change_result> cp_state::undrain(const std::string& service, const backend_ref& ref) {
  cp_config next = desired_;
  auto b = find_backend(next, service, ref);
  if (!b)
    return b.err();
  b.value()->state = abi::backend_state::up;
  return commit(std::move(next), false);
}

std::vector<service_config> cp_state::effective(const cp_config& c) const {
  auto out = c.table_input();
  if (overlay_.empty())
    return out;
  for (size_t i = 0; i < c.services.size(); ++i)
    for (auto& b : out[i].backends) {
      auto it =
          overlay_.find(overlay_key(c.services[i].name, b.addr, b.port ? b.port : out[i].port));
      if (it == overlay_.end())
        continue;
      const backend_overlay& o = it->second;
      if (o.down && b.state == abi::backend_state::up)
        b.state = abi::backend_state::down;
      if (o.rtt_us)
        b.rtt_hint_us = o.rtt_us;
      if (o.weight_pct < 100 && b.weight > 0)
        b.weight = uint16_t(std::max<uint32_t>(1, uint32_t(b.weight) * o.weight_pct / 100));
    }
  return out;
}

result<change_result> cp_state::set_health(const std::vector<overlay_update>& updates) {
  auto next = overlay_;
  change_result r;
  r.generation = generation_;
  for (const auto& u : updates) {
    if (u.value == backend_overlay{})
      next.erase(u.key);
    else
      next[u.key] = u.value;
    if (!u.reason.empty())
      r.diff.push_back(u.reason);
  }
  if (next == overlay_)
    return r;
  std::swap(overlay_, next);
  const auto table = effective(desired_);
  if (soft_ && soft_only_change(published_, table)) {
    soft_(table); // workers read it in place: no rebuild, no new generation
    published_ = table;
    return r;
  }
  auto pub = publish_table(table);
  if (!pub) {
    std::swap(overlay_, next); // nothing changed
    return make_error("publish failed, health changes not applied: " + pub.error_message());
  }
  generation_ = pub->generation;
  r.generation = pub->generation;
  r.warning = pub->warning;
  return r;
}

} // namespace sluice::cp
