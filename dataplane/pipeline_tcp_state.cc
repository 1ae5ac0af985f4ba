// TCP state tracking of a flow entry: how the flags of each packet move a
// flow between states, and the idle timeout each state gets from its service.
#include "pipeline_impl.h"

namespace sluice::dp {

uint32_t pipeline_impl::timeout_for(const abi::service_entry& s, tcp_state st) const {
  uint32_t sec;
  switch (st) {
  case tcp_state::syn:
    sec = s.timeout_syn_s;
    break;
  case tcp_state::established:
    sec = s.timeout_est_s;
    break;
  case tcp_state::fin:
  case tcp_state::closed:
    sec = s.timeout_fin_s;
    break;
  default:
    sec = s.timeout_udp_s;
    break;
  }
  return sec * 1000u;
}

void pipeline_impl::track_tcp_forward(flow_entry& e, uint8_t flags, const abi::service_entry& s) {
  tcp_state st = e.state;
  if (flags & tcp_rst)
    st = tcp_state::closed;
  else if (flags & tcp_fin)
    st = tcp_state::fin;
  else if (st == tcp_state::syn && (flags & tcp_ack))
    st = tcp_state::established;
  if (st != e.state) {
    e.state = st;
    e.timeout_ms = timeout_for(s, st);
  }
}

void pipeline_impl::track_tcp_reply(flow_entry& e, uint8_t flags, const abi::service_entry& s) {
  tcp_state st = e.state;
  if (flags & tcp_rst) {
    st = tcp_state::closed;
    counter_add(be_ctr_[e.backend].rst_from_backend, 1);
  } else if (flags & tcp_fin) {
    st = tcp_state::fin;
  } else if ((flags & (tcp_syn | tcp_ack)) == (tcp_syn | tcp_ack)) {
    if (!e.syn_answered && st == tcp_state::syn)
      sched_.record_handshake(e.backend, now_us_ - e.syn_us);
    e.syn_answered = 1;
    if (st == tcp_state::syn)
      st = tcp_state::established;
  }
  if (st != e.state) {
    e.state = st;
    e.timeout_ms = timeout_for(s, st);
  }
}

} // namespace sluice::dp
