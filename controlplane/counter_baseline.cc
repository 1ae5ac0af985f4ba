#include "counter_baseline.h"

#include "backend_overlay.h"

namespace sluice::cp {

namespace {

// The counting fields (gauges left out).
constexpr uint64_t abi::service_counters::*service_fields[] = {
    &abi::service_counters::packets,       &abi::service_counters::bytes,
    &abi::service_counters::reply_packets, &abi::service_counters::reply_bytes,
    &abi::service_counters::new_flows,     &abi::service_counters::no_backend,
    &abi::service_counters::limited};
constexpr uint64_t abi::backend_counters::*backend_fields[] = {
    &abi::backend_counters::packets,
    &abi::backend_counters::bytes,
    &abi::backend_counters::new_flows,
    &abi::backend_counters::syn_unanswered,
    &abi::backend_counters::rst_from_backend,
    &abi::backend_counters::icmp_unreachable,
    &abi::backend_counters::nat_port_exhausted,
    &abi::backend_counters::conn_limited};

uint64_t minus(uint64_t v, uint64_t base) {
  return v >= base ? v - base : v;
}

template <typename T, size_t N>
void subtract(T& v, const T& base, uint64_t T::*const (&fields)[N]) {
  for (auto f : fields)
    v.*f = minus(v.*f, base.*f);
}

std::string backend_key(const named_service& s, const backend_config& b) {
  return overlay_key(s.name, b.addr, b.port ? b.port : s.cfg.port);
}

} // namespace

void counter_baseline::zero(const cp_config& c, const counter_snapshot& snap,
                            const std::string& only) {
  for (size_t i = 0; i < c.services.size() && i < snap.services.size(); ++i) {
    const auto& s = c.services[i];
    if (!only.empty() && s.name != only)
      continue;
    services_[s.name] = snap.services[i];
    for (size_t j = 0; j < s.cfg.backends.size() && j < snap.backends[i].size(); ++j)
      backends_[backend_key(s, s.cfg.backends[j])] = snap.backends[i][j];
  }
  if (only.empty()) {
    drops_ = snap.drops;
    worker_ = snap.worker;
  }
}

void counter_baseline::apply(const cp_config& c, counter_snapshot& snap) const {
  for (size_t i = 0; i < c.services.size() && i < snap.services.size(); ++i) {
    const auto& s = c.services[i];
    if (auto it = services_.find(s.name); it != services_.end())
      subtract(snap.services[i], it->second, service_fields);
    for (size_t j = 0; j < s.cfg.backends.size() && j < snap.backends[i].size(); ++j)
      if (auto it = backends_.find(backend_key(s, s.cfg.backends[j])); it != backends_.end())
        subtract(snap.backends[i][j], it->second, backend_fields);
  }
  if (drops_)
    for (size_t k = 0; k < drop_reason_count; ++k)
      snap.drops[k] = minus(snap.drops[k], (*drops_)[k]);
  if (worker_)
    for (size_t k = 0; k < worker_counter_count; ++k)
      if (worker_counter_names[k] != "flows_active")
        snap.worker[k] = minus(snap.worker[k], (*worker_)[k]);
}

} // namespace sluice::cp
