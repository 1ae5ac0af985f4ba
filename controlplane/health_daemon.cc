#include "health_daemon.h"

#include <fmt/format.h>

#include "stats_reader.h"

namespace sluice::cp {

namespace {

bool passive_enabled(const cp_config& c) {
  for (const auto& s : c.services) {
    if (s.health.passive_threshold_pct)
      return true;
    for (const auto& [ep, h] : s.backend_health)
      if (h.passive_threshold_pct)
        return true;
  }
  return false;
}

} // namespace

health_daemon::health_daemon(cp_state& state, health_manager::log_fn log)
    : state_(state), log_(log), mgr_(std::move(log)) {}

result<void> health_daemon::start() {
  mgr_.configure(state_.desired());
  configured_gen_ = state_.generation();
  return mgr_.start();
}

void health_daemon::tick(const shm_region* region, const table_builder* builder) {
  if (state_.generation() != configured_gen_) {
    configured_gen_ = state_.generation();
    mgr_.configure(state_.desired());
  }
  const int64_t now = steady_now_ns();
  if (region && builder && now - last_counters_ns_ >= 500'000'000 &&
      passive_enabled(state_.desired())) {
    last_counters_ns_ = now;
    mgr_.observe_counters(state_.desired(), read_counters(*region, *builder, state_.desired()));
  }
  auto u = mgr_.take_updates();
  pending_.insert(pending_.end(), std::make_move_iterator(u.begin()),
                  std::make_move_iterator(u.end()));
  if (pending_.empty())
    return;
  auto r = state_.set_health(pending_);
  if (!r) {
    if (log_)
      log_(r.error_message() + " (retried on the next tick)");
    return;
  }
  pending_.clear();
  configured_gen_ = r->generation; // our own publication: the desired config did not change
  if (!r->warning.empty() && log_)
    log_("warning: " + r->warning);
}

void health_daemon::annotate(const std::string& service, nlohmann::json& backends) const {
  const auto* s = state_.desired().find(service);
  if (!s)
    return;
  size_t idx = 0;
  for (size_t i = 0; i < state_.desired().services.size(); ++i)
    if (&state_.desired().services[i] == s)
      idx = i;
  const auto eff = state_.effective(state_.desired());
  const auto snap = mgr_.snapshot();
  for (size_t j = 0; j < backends.size() && j < s->cfg.backends.size(); ++j) {
    const auto& b = s->cfg.backends[j];
    const auto& e = eff[idx].backends[j];
    auto& out = backends[j];
    out["effective_state"] = std::string(state_name(e.state));
    out["effective_weight"] = e.weight;
    out["rtt_hint_us"] = e.rtt_hint_us;
    auto it = snap.find(overlay_key(service, b.addr, b.port ? b.port : s->cfg.port));
    if (it == snap.end())
      continue;
    const auto& h = it->second;
    out["check"] = {{"kind", std::string(check_kind_name(h.kind))},
                    {"status", std::string(health_status_name(h.status))},
                    {"passive_ejected", h.passive_ejected},
                    {"last_ok", h.last_ok},
                    {"last_result", h.last_result},
                    {"last_latency_us", h.last_latency_us},
                    {"in_row", h.in_row},
                    {"checks", h.checks},
                    {"failures", h.failures},
                    {"transitions", h.transitions},
                    {"weight_pct", h.weight_pct}};
  }
}

std::string health_daemon::metrics() const {
  const auto snap = mgr_.snapshot();
  std::string o = "# HELP sluice_backend_check_up Active health check status (1 up, 0 down).\n"
                  "# TYPE sluice_backend_check_up gauge\n";
  std::string lat = "# HELP sluice_backend_check_latency_seconds Latency of the last check.\n"
                    "# TYPE sluice_backend_check_latency_seconds gauge\n";
  std::string tot = "# HELP sluice_backend_checks_total Active checks run.\n"
                    "# TYPE sluice_backend_checks_total counter\n";
  std::string fail = "# HELP sluice_backend_check_failures_total Active checks failed.\n"
                     "# TYPE sluice_backend_check_failures_total counter\n";
  std::string tr = "# HELP sluice_backend_check_transitions_total Up/down transitions.\n"
                   "# TYPE sluice_backend_check_transitions_total counter\n";
  for (const auto& [key, h] : snap) {
    if (h.kind == check_kind::none)
      continue;
    const auto sp = key.find(' ');
    const std::string labels =
        fmt::format("{{service=\"{}\",backend=\"{}\",check=\"{}\"}}", key.substr(0, sp),
                    key.substr(sp + 1), check_kind_name(h.kind));
    o += fmt::format("sluice_backend_check_up{} {}\n", labels,
                     h.status == health_status::up && !h.passive_ejected ? 1 : 0);
    lat += fmt::format("sluice_backend_check_latency_seconds{} {:.6f}\n", labels,
                       h.last_latency_us / 1e6);
    tot += fmt::format("sluice_backend_checks_total{} {}\n", labels, h.checks);
    fail += fmt::format("sluice_backend_check_failures_total{} {}\n", labels, h.failures);
    tr += fmt::format("sluice_backend_check_transitions_total{} {}\n", labels, h.transitions);
  }
  return o + lat + tot + fail + tr;
}

} // namespace sluice::cp
