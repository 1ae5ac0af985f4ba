// Flow state of the pipeline: applies the state machine of tcp_fsm.h to the
// entries of the flow table, and keeps the consequences in step: the idle
// timeout of the state, the eviction class in the bucket (of the reply entry
// too) and the active/inactive gauges (IPVS ActiveConn/InActConn).
#include "pipeline_impl.h"

namespace sluice::dp {

using abi::fwd_mode;

uint32_t pipeline_impl::timeout_for(const abi::service_entry& s, flow_state st) const {
  // Validated to at most max_flow_timeout_s: the product fits 32 bits.
  return state_timeout_s(s, st, under_pressure()) * 1000u;
}

template <bool V6>
void pipeline_impl::set_state(int32_t fpos, flow_entry& e, tcp_track t,
                              const abi::service_entry& s) {
  auto& ft = table<V6>();
  flow_state before = e.state;
  e.state = t.state;
  e.fins = t.fins;
  e.timeout_ms = timeout_for(s, t.state);
  evict_class c = state_evict_class(t.state);
  ft.set_class(fpos, c);
  if (e.peer) {
    // Same line as the class: the reply's own deadline ends with the state
    // (flow_expired); the caller touches the forward one.
    ft.set_class(int32_t(e.peer - 1), c);
    ft.set_deadline(int32_t(e.peer - 1), no_deadline);
  }
  // flow_entry::active says which gauge holds the flow: none yet (a new
  // entry, zeroed by emplace), active or inactive. Every flow is in exactly
  // one gauge from its first state until release_flow.
  uint8_t g = state_is_active(t.state) ? gauge_active : gauge_inactive;
  if (g != e.active) {
    if (e.active == gauge_active) {
      counter_sub(svc_ctr_[e.service].active_flows, 1);
      counter_sub(be_ctr_[e.backend].active_flows, 1);
    } else if (e.active == gauge_inactive) {
      counter_sub(be_ctr_[e.backend].inactive_flows, 1);
    }
    if (g == gauge_active) {
      counter_add(svc_ctr_[e.service].active_flows, 1);
      counter_add(be_ctr_[e.backend].active_flows, 1);
    } else {
      counter_add(be_ctr_[e.backend].inactive_flows, 1);
    }
    e.active = g;
  }
  defence_state_change(e, before, fpos);
}

template <bool V6>
void pipeline_impl::track_packet(int32_t fpos, flow_entry& e, const parsed_packet& p,
                                 bool from_client, const abi::service_entry& s) {
  if (p.proto == proto_tcp) {
    tcp_track cur{e.state, e.fins};
    tcp_track t = tcp_next(cur, p.tcp_flags, from_client);
    if (!from_client) {
      if (p.tcp_flags & tcp_rst)
        counter_add(be_ctr_[e.backend].rst_from_backend, 1);
      else if ((p.tcp_flags & (tcp_syn | tcp_ack)) == (tcp_syn | tcp_ack)) {
        if (!e.syn_answered && e.state == flow_state::syn)
          sched_.record_handshake(e.backend, now_us_ - e.syn_us);
        e.syn_answered = 1;
      }
    }
    if (!(t == cur)) {
      set_state<V6>(fpos, e, t, s);
      return touch<V6>(fpos, e);
    }
  } else {
    auto m = fwd_mode(e.mode);
    flow_state st = udp_next(e.state, from_client, m == fwd_mode::nat || m == fwd_mode::dnat);
    if (st != e.state) {
      set_state<V6>(fpos, e, {st, 0}, s);
      return touch<V6>(fpos, e);
    }
  }
  // A reply in an unchanged state refreshes its own entry's deadline, in the
  // bucket line its lookup fetched (flow_expired).
  touch<V6>(from_client || !e.peer ? fpos : int32_t(e.peer - 1), e);
}

template void pipeline_impl::set_state<false>(int32_t, flow_entry&, tcp_track,
                                              const abi::service_entry&);
template void pipeline_impl::set_state<true>(int32_t, flow_entry&, tcp_track,
                                             const abi::service_entry&);
template void pipeline_impl::track_packet<false>(int32_t, flow_entry&, const parsed_packet&, bool,
                                                 const abi::service_entry&);
template void pipeline_impl::track_packet<true>(int32_t, flow_entry&, const parsed_packet&, bool,
                                                const abi::service_entry&);

} // namespace sluice::dp
