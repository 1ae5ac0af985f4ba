#include "health_manager.h"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>

namespace sluice::cp {

namespace {

constexpr int64_t ms_ns = 1000000;
constexpr int64_t rtt_min_gap_ns = 1000 * ms_ns; // a backend's hint changes at most once a second
constexpr double rtt_change = 0.2;               // ... and only when it moved by > 20 %
constexpr uint8_t slow_start_first_pct = 10;     // slow start: 10 %, 20 %, ... 100 %

bool nat_mode(abi::fwd_mode m) {
  return m == abi::fwd_mode::nat || m == abi::fwd_mode::dnat;
}

} // namespace

health_manager::health_manager(log_fn log, clock_fn clock)
    : log_(std::move(log)), clock_(std::move(clock)) {}

health_manager::~health_manager() {
  stop();
}

result<void> health_manager::start() {
  auto p = std::make_shared<prober>(clock_, uint64_t(clock_()));
  if (auto r = p->init(); !r)
    return r;
  thread_ = std::thread([this, p] {
    std::vector<probe_outcome> out;
    while (!stop_.load(std::memory_order_relaxed)) {
      reconfigure();
      {
        std::lock_guard g(mu_);
        if (targets_changed_) {
          targets_changed_ = false;
          std::vector<probe_target> ts;
          for (const auto& [id, t] : tracked_)
            if (t.cfg.kind != check_kind::none)
              ts.push_back({id, t.addr, t.port, t.cfg});
          p->set_targets(std::move(ts));
        }
      }
      out.clear();
      p->run_once(20, out);
      process(out);
      ramp();
    }
  });
  return {};
}

void health_manager::stop() {
  stop_ = true;
  if (thread_.joinable())
    thread_.join();
}

void health_manager::configure(const cp_config& c) {
  std::lock_guard g(mu_);
  pending_ = c;
}

std::vector<overlay_update> health_manager::take_updates() {
  std::lock_guard g(mu_);
  return std::exchange(updates_, {});
}

std::map<std::string, backend_health> health_manager::snapshot() const {
  std::lock_guard g(mu_);
  std::map<std::string, backend_health> out;
  for (const auto& [id, t] : tracked_)
    out.emplace(t.service + " " + t.endpoint, t.view);
  return out;
}

std::vector<probe_target> health_manager::targets() const {
  std::lock_guard g(mu_);
  std::vector<probe_target> ts;
  for (const auto& [id, t] : tracked_)
    if (t.cfg.kind != check_kind::none)
      ts.push_back({id, t.addr, t.port, t.cfg});
  return ts;
}

backend_overlay health_manager::desired_overlay(const tracked& t) const {
  backend_overlay o = t.published;
  o.down = t.fsm.status() == health_status::down || t.view.passive_ejected;
  o.weight_pct = t.view.weight_pct;
  return o;
}

void health_manager::emit(tracked& t, backend_overlay v, std::string reason) {
  if (v == t.published)
    return;
  t.published = v;
  if (!reason.empty() && log_)
    log_(reason);
  updates_.push_back({t.service + " " + t.endpoint, v, std::move(reason)});
}

void health_manager::reconfigure() {
  std::lock_guard g(mu_);
  if (!pending_)
    return;
  const cp_config c = std::move(*pending_);
  pending_.reset();
  std::map<uint32_t, tracked> next;
  for (const auto& s : c.services) {
    for (const auto& b : s.cfg.backends) {
      const uint16_t port = b.port ? b.port : s.cfg.port;
      const std::string ep = format_endpoint(b.addr, port);
      const std::string key = s.name + " " + ep;
      auto ov = s.backend_health.find(ep);
      const health_config& cfg = ov != s.backend_health.end() ? ov->second : s.health;
      auto [idit, fresh] = ids_.try_emplace(key, next_id_);
      if (fresh)
        ++next_id_;
      const uint32_t id = idit->second;
      tracked t;
      if (auto old = tracked_.find(id); old != tracked_.end()) {
        t = std::move(old->second);
        tracked_.erase(old);
        if (!(t.cfg == cfg)) {
          targets_changed_ = true;
          t.fsm = health_fsm(cfg.rise, cfg.fall, t.fsm.status());
        }
      } else {
        targets_changed_ = true;
        t.fsm = health_fsm(cfg.rise, cfg.fall);
      }
      t.service = s.name;
      t.endpoint = ep;
      t.addr = b.addr;
      t.port = port;
      t.cfg = cfg;
      t.view.kind = cfg.kind;
      if (cfg.kind == check_kind::none && t.fsm.status() == health_status::down) {
        t.fsm = health_fsm(cfg.rise, cfg.fall);
        t.view.status = health_status::up;
        emit(t, desired_overlay(t),
             fmt::format("backend {} up: checks disabled, service {}", ep, s.name));
      }
      next.emplace(id, std::move(t));
    }
  }
  // Dropped backends: clear their overlay so a re-added one starts clean.
  for (auto& [id, t] : tracked_) {
    targets_changed_ = true;
    if (!(t.published == backend_overlay{}))
      updates_.push_back({t.service + " " + t.endpoint, backend_overlay{}, ""});
    ids_.erase(t.service + " " + t.endpoint);
  }
  tracked_ = std::move(next);
}

void health_manager::process(const std::vector<probe_outcome>& outcomes) {
  if (outcomes.empty())
    return;
  std::lock_guard g(mu_);
  for (const auto& o : outcomes) {
    auto it = tracked_.find(o.id);
    if (it == tracked_.end())
      continue;
    tracked& t = it->second;
    auto& v = t.view;
    ++v.checks;
    v.failures += o.ok ? 0 : 1;
    v.in_row = v.last_ok == o.ok ? v.in_row + 1 : 1;
    v.last_ok = o.ok;
    v.last_result = o.reason;
    v.last_latency_us = o.latency_us;
    const bool changed = t.fsm.record(o.ok);
    if (changed) {
      ++v.transitions;
      v.status = t.fsm.status();
      const bool up = v.status == health_status::up;
      if (up && t.cfg.slow_start_s > 0) {
        v.weight_pct = slow_start_first_pct;
        t.up_since_ns = o.at_ns;
      }
      emit(t, desired_overlay(t),
           fmt::format("backend {} {}: {} ({}/{}), service {}", t.endpoint, up ? "up" : "down",
                       o.reason, up ? t.fsm.successes_in_row() : t.fsm.failures_in_row(),
                       up ? t.fsm.rise() : t.fsm.fall(), t.service));
    }
    if (o.ok) {
      t.rtt_ewma_us = t.rtt_ewma_us == 0 ? o.latency_us : 0.7 * t.rtt_ewma_us + 0.3 * o.latency_us;
      const double pub = t.published.rtt_us;
      if ((pub == 0 || std::fabs(t.rtt_ewma_us - pub) > rtt_change * pub) &&
          o.at_ns - t.rtt_published_ns >= rtt_min_gap_ns) {
        t.rtt_published_ns = o.at_ns;
        backend_overlay n = desired_overlay(t);
        n.rtt_us = std::max<uint32_t>(1, uint32_t(t.rtt_ewma_us));
        emit(t, n, "");
      }
    }
  }
}

void health_manager::ramp() {
  const int64_t now = clock_();
  std::lock_guard g(mu_);
  for (auto& [id, t] : tracked_) {
    if (t.view.passive_ejected && now >= t.ejected_until_ns &&
        t.fsm.status() == health_status::up) {
      t.view.passive_ejected = false;
      emit(t, desired_overlay(t),
           fmt::format("backend {} re-admitted: active checks pass, service {}", t.endpoint,
                       t.service));
    }
    if (t.view.weight_pct >= 100 || t.cfg.slow_start_s == 0)
      continue;
    const double frac = double(now - t.up_since_ns) / (double(t.cfg.slow_start_s) * 1e9);
    uint8_t pct = uint8_t(
        std::clamp<int>(slow_start_first_pct * (1 + int(frac * 10)), slow_start_first_pct, 100));
    if (t.fsm.status() != health_status::up)
      pct = 100;
    if (pct != t.view.weight_pct) {
      t.view.weight_pct = pct;
      emit(t, desired_overlay(t), "");
    }
  }
}

void health_manager::observe_counters(const cp_config& c, const counter_snapshot& snap) {
  const int64_t now = clock_();
  std::lock_guard g(mu_);
  for (size_t i = 0; i < c.services.size() && i < snap.backends.size(); ++i) {
    const auto& s = c.services[i];
    for (size_t j = 0; j < s.cfg.backends.size() && j < snap.backends[i].size(); ++j) {
      const auto& b = s.cfg.backends[j];
      const std::string ep = format_endpoint(b.addr, b.port ? b.port : s.cfg.port);
      auto id = ids_.find(s.name + " " + ep);
      if (id == ids_.end())
        continue;
      auto it = tracked_.find(id->second);
      if (it == tracked_.end())
        continue;
      tracked& t = it->second;
      const auto& k = snap.backends[i][j];
      const uint64_t fails = k.syn_unanswered + k.rst_from_backend + k.icmp_unreachable;
      if (!t.have_counters || k.new_flows < t.last_new_flows || fails < t.last_failures) {
        t.have_counters = true;
        t.last_new_flows = k.new_flows;
        t.last_failures = fails;
        continue;
      }
      if (t.cfg.passive_threshold_pct == 0 || !nat_mode(s.cfg.mode) || t.view.passive_ejected)
        continue;
      const uint64_t dn = k.new_flows - t.last_new_flows, df = fails - t.last_failures;
      if (dn < t.cfg.passive_min_flows)
        continue; // the window grows until it holds enough flows
      t.last_new_flows = k.new_flows;
      t.last_failures = fails;
      if (df * 100 <= dn * t.cfg.passive_threshold_pct) {
        t.ejections = t.ejections > 0 ? t.ejections - 1 : 0; // healthy windows earn back-off
        continue;
      }
      const int64_t backoff_ns =
          std::min<int64_t>(int64_t(1000) << std::min(t.ejections, 8u), 300000) * ms_ns;
      ++t.ejections;
      t.ejected_until_ns = now + backoff_ns;
      t.view.passive_ejected = true;
      emit(t, desired_overlay(t),
           fmt::format("backend {} down: passive, {}/{} new flows failed (> {} %), ejected for {} "
                       "ms, service {}",
                       t.endpoint, df, dn, t.cfg.passive_threshold_pct, backoff_ns / ms_ns,
                       s.name));
    }
  }
}

} // namespace sluice::cp
