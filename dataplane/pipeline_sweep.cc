// Housekeeping of the flow tables: releasing a flow (its reply entry, its NAT
// port, its gauges), eviction under table pressure and the bounded expiry
// sweep run once per worker loop iteration.
#include <algorithm>

#include "pipeline_impl.h"

namespace sluice::dp {

using abi::fwd_mode;

template <bool V6> void pipeline_impl::release_flow(int32_t pos, bool was_expired) {
  auto& ft = table<V6>();
  flow_entry& e = ft.entry(pos);
  if (e.kind != flow_kind::forward || !e.live)
    return;
  if (e.peer) {
    auto rk = ft.key_at(int32_t(e.peer - 1));
    ft.del(rk);
    if (fwd_mode(e.mode) == fwd_mode::nat)
      nat_.release(nat_lease{e.nat_addr_idx, e.nat_port});
  }
  if (was_expired && e.state == tcp_state::syn &&
      (fwd_mode(e.mode) == fwd_mode::nat || fwd_mode(e.mode) == fwd_mode::dnat) && !e.syn_answered)
    counter_add(be_ctr_[e.backend].syn_unanswered, 1);
  if (e.state == tcp_state::syn && fwd_mode(e.mode) <= fwd_mode::dnat && half_open_)
    --half_open_;
  if (was_expired)
    count(worker_counter::flows_expired);
  counter_sub(ctr_->worker[size_t(worker_counter::flows_active)], 1);
  counter_sub(svc_ctr_[e.service].active_flows, 1);
  counter_sub(be_ctr_[e.backend].active_flows, 1);
  e.live = 0;
  e.peer = 0;
  auto k = ft.key_at(pos);
  ft.del(k);
  table_deleted_ = true;
}

// Under table pressure, half-open (SYN) entries go first, so a SYN flood cannot
// push out established connections. Bounded walk over positions from a
// rotating cursor.
template <bool V6> bool pipeline_impl::evict_half_open() {
  auto& ft = table<V6>();
  uint32_t& next = V6 ? evict_next6_ : evict_next4_;
  uint32_t n = ft.positions();
  for (int i = 0; i < 512; ++i) {
    uint32_t pos = next;
    next = next + 1 < n ? next + 1 : 0;
    flow_entry& e = ft.entry(int32_t(pos));
    if (!e.live || e.kind != flow_kind::forward)
      continue;
    bool exp = expired(e);
    if (e.state == tcp_state::syn || exp) {
      release_flow<V6>(int32_t(pos), exp);
      if (!exp)
        count(worker_counter::flows_evicted);
      return true;
    }
  }
  return false;
}

// Examines `budget` positions (not entries: the cost per call is fixed, however
// sparse the table) and releases expired and stale flows.
template <bool V6> void pipeline_impl::sweep(uint32_t budget) {
  auto& ft = table<V6>();
  uint32_t& next = V6 ? sweep_next6_ : sweep_next4_;
  uint32_t n = ft.positions();
  for (uint32_t i = 0; i < budget; ++i) {
    uint32_t pos = next;
    next = next + 1 < n ? next + 1 : 0;
    flow_entry& e = ft.entry(int32_t(pos));
    if (!e.live || e.kind != flow_kind::forward)
      continue;
    const abi::backend_entry& be = view_.backends[e.backend];
    bool stale = !backend_holds(be, e);
    if (expired(e) || stale) {
      if (stale)
        count(worker_counter::flows_stale);
      release_flow<V6>(int32_t(pos), !stale);
    }
  }
}

void pipeline_impl::housekeeping(uint64_t now_tsc) {
  now_ms_ = uint32_t((now_tsc - start_tsc_) / tsc_per_ms_);
  if (now_ms_ == last_sweep_ms_)
    return;
  uint64_t elapsed = uint32_t(now_ms_ - last_sweep_ms_);
  last_sweep_ms_ = now_ms_;
  uint64_t cycle = cfg_.sweep_cycle_ms ? cfg_.sweep_cycle_ms : 1;
  auto budget = [&](uint32_t positions) {
    uint64_t b = (uint64_t(positions) * elapsed + cycle - 1) / cycle;
    return uint32_t(std::min<uint64_t>(b, std::min<uint32_t>(positions, 65536)));
  };
  sweep<false>(budget(ft4_.positions()));
  sweep<true>(budget(ft6_.positions()));
}

template void pipeline_impl::release_flow<false>(int32_t, bool);
template void pipeline_impl::release_flow<true>(int32_t, bool);
template bool pipeline_impl::evict_half_open<false>();
template bool pipeline_impl::evict_half_open<true>();

} // namespace sluice::dp
