#include "steer_hook.h"

#include <fmt/format.h>
#include <utility>

#ifdef SLUICE_HAVE_BPF
#include "steer_control.h"
#endif

namespace sluice::cp {

#ifdef SLUICE_HAVE_BPF

bool steer_hook_available() {
  return true;
}

namespace {

// The set to write: the published services plus the dataplane's addresses
// (from the options, or from the map when the options give none).
result<bpf::steer_set> wanted_set(const steer_hook_options& o,
                                  const std::vector<service_config>& services) {
  auto set = bpf::steer_set_of(services);
  set.nat_pool = o.nat_pool;
  set.own = o.own;
  if (o.nat_pool.empty() || o.own.empty()) {
    auto current = bpf::steer_query(o.iface);
    if (!current)
      return current.err();
    if (current->has_value()) {
      if (o.nat_pool.empty())
        set.nat_pool = (*current)->set.nat_pool;
      if (o.own.empty())
        set.own = (*current)->set.own;
    }
  }
  return set;
}

} // namespace

publish_fn with_steer_update(publish_fn inner, steer_hook_options o,
                             std::function<void(const std::string&)> log) {
  if (o.iface.empty())
    return inner;
  return [inner = std::move(inner), o = std::move(o), log = std::move(log)](
             const std::vector<service_config>& services) -> result<publish_outcome> {
    auto r = inner(services);
    if (!r)
      return r; // nothing published: the maps stay as they are
    auto set = wanted_set(o, services);
    auto st = set ? bpf::steer_update(o.iface, set.value()) : status(set.err());
    if (!st) {
      auto msg = fmt::format("vip_steer on {} not updated: {}", o.iface, st.error_message());
      log(msg);
      auto out = r.value();
      out.warning = out.warning.empty() ? msg : out.warning + "; " + msg;
      return out;
    }
    return r;
  };
}

result<bool> steer_refill_if_new(const steer_hook_options& o,
                                 const std::vector<service_config>& services,
                                 uint32_t& filled_prog_id) {
  auto cur = bpf::steer_query(o.iface);
  if (!cur)
    return cur.err();
  if (!cur->has_value() || (*cur)->prog_id == filled_prog_id)
    return false;
  auto set = wanted_set(o, services);
  if (!set)
    return set.err();
  if (auto st = bpf::steer_update(o.iface, set.value()); !st)
    return make_error(st.error_message());
  filled_prog_id = (*cur)->prog_id;
  return true;
}

nlohmann::json steer_counters(const std::string& iface) {
  auto st = bpf::steer_query(iface);
  if (!st)
    return {{"iface", iface}, {"error", st.error_message()}};
  if (!st->has_value())
    return {{"iface", iface}, {"error", "vip_steer is not attached"}};
  nlohmann::json c = nlohmann::json::object();
  for (size_t i = 0; i < (*st)->counters.size(); ++i)
    c[bpf::steer_counter_names[i]] = (*st)->counters[i];
  return {{"iface", iface}, {"program_id", (*st)->prog_id}, {"counters", c}};
}

#else

nlohmann::json steer_counters(const std::string& iface) {
  return {{"iface", iface}, {"error", "this build has no libbpf"}};
}

bool steer_hook_available() {
  return false;
}

publish_fn with_steer_update(publish_fn inner, steer_hook_options,
                             std::function<void(const std::string&)>) {
  return inner;
}

result<bool> steer_refill_if_new(const steer_hook_options&, const std::vector<service_config>&,
                                 uint32_t&) {
  return false;
}

#endif

} // namespace sluice::cp
