// Housekeeping of the flow tables: releasing a flow (its reply entry, its NAT
// port, its gauges), making room for a new entry by evicting inside its two
// buckets (flow_table.h gives the victim, by class) and the bounded expiry
// sweep run once per worker loop iteration.
#include <algorithm>

#include "pipeline_impl.h"

namespace sluice::dp {

using abi::fwd_mode;

template <bool V6> void pipeline_impl::release_flow(int32_t pos, bool was_expired, bool evicting) {
  auto& ft = table<V6>();
  flow_entry& e = ft.entry(pos);
  if (e.kind != flow_kind::forward || !ft.used(pos))
    return;
  if (e.peer) {
    ft.erase(int32_t(e.peer - 1), !evicting);
    if (fwd_mode(e.mode) == fwd_mode::nat)
      nat_.release(nat_lease{e.nat_addr_idx, e.nat_port});
  }
  if (was_expired && e.state == flow_state::syn &&
      (fwd_mode(e.mode) == fwd_mode::nat || fwd_mode(e.mode) == fwd_mode::dnat) && !e.syn_answered)
    counter_add(be_ctr_[e.backend].syn_unanswered, 1);
  if (e.half_open_counted)
    --half_open_;
  if (was_expired)
    count(worker_counter::flows_expired);
  counter_sub(ctr_->worker[size_t(worker_counter::flows_active)], 1);
  if (e.active == gauge_active) {
    counter_sub(svc_ctr_[e.service].active_flows, 1);
    counter_sub(be_ctr_[e.backend].active_flows, 1);
  } else if (e.active == gauge_inactive) {
    counter_sub(be_ctr_[e.backend].inactive_flows, 1);
  }
  e.active = gauge_none;
  e.peer = 0;
  ft.erase(pos, !evicting);
  table_deleted_ = true;
}

template <bool V6>
int32_t pipeline_impl::take_slot(uint64_t h, bool may_evict_established, int32_t keep) {
  auto& ft = table<V6>();
  flow_slot sl = ft.find_slot(h, now_ms_, keep);
  // A reply entry's deadline is its direction's (flow_expired): a way that
  // looks expired may belong to a flow the other direction keeps alive. Such
  // a way's deadlines are put right and the pair looked at again (each round
  // fixes one of the 16 ways).
  for (int round = 0; round < 16 && sl.pos >= 0 && !sl.free && sl.cls == evict_class::expired;
       ++round) {
    const flow_entry& v = ft.entry(sl.pos);
    const int32_t f = v.kind == flow_kind::reply ? int32_t(v.peer) : sl.pos;
    if (flow_expired<V6>(f))
      break;
    if (f != sl.pos)
      ft.set_deadline(sl.pos, no_deadline);
    sl = ft.find_slot(h, now_ms_, keep);
  }
  if (sl.pos < 0 || sl.free)
    return sl.pos;
  if (sl.cls == evict_class::established && !may_evict_established) {
    pressure_until_ms_ = now_ms_ + 1000;
    return -1;
  }
  // A reply entry goes with its flow.
  auto flow_of = [&](int32_t p) {
    return ft.entry(p).kind == flow_kind::reply ? int32_t(ft.entry(p).peer) : p;
  };
  int32_t victim = flow_of(sl.pos);
  // A handshake younger than a second is still in flight (its SYN-ACK not
  // back yet): rather than kill it, take an unconfirmed entry (adopted without
  // a SYN, unanswered UDP) of the pair when there is one. Without this, right
  // after an ACK flood new connections would evict each other while the
  // flood's adopted entries stay.
  if (sl.cls == evict_class::half_open && sl.alt >= 0 &&
      now_us_ - ft.entry(victim).syn_us < half_open_grace_us) {
    sl.pos = sl.alt;
    sl.cls = evict_class::unconfirmed;
    victim = flow_of(sl.pos);
  }
  if (victim == keep)
    return -1; // cannot happen: find_slot skips `keep` and its reply has no entry yet
  release_flow<V6>(victim, sl.cls == evict_class::expired, true);
  static constexpr worker_counter by_class[evict_class_count] = {
      worker_counter::flows_evicted_expired, worker_counter::flows_evicted_closing,
      worker_counter::flows_evicted_half_open, worker_counter::flows_evicted_unconfirmed,
      worker_counter::flows_evicted_established};
  count(by_class[size_t(sl.cls)]);
  if (sl.cls != evict_class::expired) {
    count(worker_counter::flows_evicted);
    pressure_until_ms_ = now_ms_ + 1000;
  }
  return ft.used(sl.pos) ? -1 : sl.pos;
}

template <bool V6, typename Key>
int32_t pipeline_impl::link_reply(int32_t pos, flow_entry& e, const Key& rkey,
                                  bool may_evict_established, bool& conflict) {
  auto& ft = table<V6>();
  const uint64_t rh = ft.hash(rkey);
  conflict = ft.lookup(rkey, rh) >= 0;
  const int32_t rpos = conflict ? -1 : take_slot<V6>(rh, may_evict_established, pos);
  if (rpos < 0)
    return -1;
  flow_entry& r = ft.emplace(rpos, rkey);
  r.kind = flow_kind::reply;
  r.peer = uint32_t(pos);
  r.backend = e.backend;
  r.service = e.service;
  r.mode = e.mode;
  ft.publish(rpos, rh);
  e.peer = uint32_t(rpos) + 1;
  return rpos;
}

// Examines `budget` positions (not entries: the cost per call is fixed, however
// sparse the table) and releases expired and stale flows.
template <bool V6> void pipeline_impl::sweep(uint32_t budget) {
  auto& ft = table<V6>();
  uint32_t& next = V6 ? sweep_next6_ : sweep_next4_;
  uint32_t n = ft.positions();
  for (uint32_t i = 0; i < budget; ++i) {
    int32_t pos = int32_t(next);
    next = next + 1 < n ? next + 1 : 0;
    if (!ft.used(pos))
      continue;
    flow_entry& e = ft.entry(pos);
    if (e.kind != flow_kind::forward)
      continue;
    const abi::backend_entry& be = view_.backends[e.backend];
    bool stale = !backend_holds(be, e);
    if (stale || flow_expired<V6>(pos)) {
      if (stale)
        count(worker_counter::flows_stale);
      release_flow<V6>(pos, !stale);
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

template void pipeline_impl::release_flow<false>(int32_t, bool, bool);
template void pipeline_impl::release_flow<true>(int32_t, bool, bool);
template int32_t pipeline_impl::link_reply<false>(int32_t, flow_entry&, const flow_key4&, bool,
                                                  bool&);
template int32_t pipeline_impl::link_reply<true>(int32_t, flow_entry&, const flow_key6&, bool,
                                                 bool&);
template int32_t pipeline_impl::take_slot<false>(uint64_t, bool, int32_t);
template int32_t pipeline_impl::take_slot<true>(uint64_t, bool, int32_t);

} // namespace sluice::dp
