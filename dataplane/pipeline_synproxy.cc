// Synproxy as a stage of the packet path (see synproxy.h for the design and
// what a proxied connection gives up): the cookie SYN-ACK, the check of the
// client's ACK, our SYN to the backend, and the backend's SYN-ACK answered
// with our ACK. The sequence shift of open flows is done where packets are
// rewritten (pipeline_rewrite.cc), with tcp_shift().
#include <rte_byteorder.h>

#include "packet_rewrite.h"
#include "pipeline_impl.h"
#include "tcp_reply.h"

namespace sluice::dp {

namespace {

template <bool V6> syn_tuple cookie_tuple(const uint8_t* l3, const parsed_packet& p) {
  syn_tuple t;
  if constexpr (V6) {
    std::memcpy(t.src, l3 + v6_src, 16);
    std::memcpy(t.dst, l3 + v6_dst, 16);
  } else {
    ip_addr s = ip_addr::from_v4_be(ld32(l3 + v4_src));
    ip_addr d = ip_addr::from_v4_be(ld32(l3 + v4_dst));
    std::memcpy(t.src, s.bytes.data(), 16);
    std::memcpy(t.dst, d.bytes.data(), 16);
  }
  t.sport_be = p.sport;
  t.dport_be = p.dport;
  return t;
}

} // namespace

// `on` always; `auto` while this worker sees more SYNs per second (to synproxy
// services) than the service's synproxy_syn_rate, or holds more half-open
// nat/dnat flows than its synproxy_half_open, and for 10 s after either.
bool pipeline_impl::synproxy_active(const abi::service_entry& s, bool syn) {
  if (s.synproxy == uint8_t(abi::synproxy_mode::on))
    return true;
  if (s.synproxy != uint8_t(abi::synproxy_mode::automatic))
    return false;
  if (uint32_t(now_ms_ - syn_window_ms_) >= 1000) {
    syn_count_prev_ = uint32_t(now_ms_ - syn_window_ms_) >= 2000 ? 0 : syn_count_;
    syn_count_ = 0;
    syn_window_ms_ = now_ms_;
  }
  syn_count_ += syn;
  if (syn_count_ > s.synproxy_syn_rate || syn_count_prev_ > s.synproxy_syn_rate ||
      half_open_ > s.synproxy_half_open)
    synproxy_auto_until_ = now_ms_ + 10000;
  return int32_t(synproxy_auto_until_ - now_ms_) > 0;
}

// The SYN answered in place: SYN-ACK from the VIP, our ISN the cookie, one
// MSS option (ours: the egress MTU's), window 65535 unscaled.
template <bool V6>
void pipeline_impl::synproxy_syn(rte_mbuf* m, const parsed_packet& p, burst_output& out) {
  uint8_t* frame = rte_pktmbuf_mtod(m, uint8_t*);
  const uint8_t* l4 = frame + p.l4_off;
  syn_options o = parse_syn_options(l4, p.l4_len);
  uint32_t isn = rte_be_to_cpu_32(ld32(l4 + 4));
  cookie_secret_.refresh(now_ms_);
  tcp_answer a;
  a.seq = syn_cookie_make(cookie_secret_, cookie_tuple<V6>(frame + p.l3_off, p), isn, o);
  a.ack = isn + 1;
  a.flags = tcp_syn | tcp_ack;
  a.window = 65535;
  uint32_t mss = cfg_.mtu > (V6 ? 60u : 40u) ? cfg_.mtu - (V6 ? 60u : 40u) : 536u;
  uint8_t opt[4] = {2, 4, uint8_t(mss >> 8), uint8_t(mss)};
  a.options = opt;
  a.options_len = 4;
  parsed_packet q = p;
  if (!make_tcp_answer<V6>(m, q, a, cfg_.mac[client_side].data()))
    return drop(m, drop_reason::no_headroom, out);
  count(worker_counter::syn_cookies_sent);
  emit(m, client_side, out);
}

template <bool V6>
bool pipeline_impl::synproxy_cookie_ok(rte_mbuf* m, const parsed_packet& p, syn_options& o) {
  const uint8_t* frame = rte_pktmbuf_mtod(m, const uint8_t*);
  const uint8_t* l4 = frame + p.l4_off;
  cookie_secret_.refresh(now_ms_);
  bool ok = syn_cookie_check(cookie_secret_, cookie_tuple<V6>(frame + p.l3_off, p),
                             rte_be_to_cpu_32(ld32(l4 + 4)), rte_be_to_cpu_32(ld32(l4 + 8)), o);
  if (ok)
    count(worker_counter::syn_cookies_valid);
  return ok;
}

// The cookie ACK becomes our SYN to the backend: the client's ISN (its ACK's
// sequence number - 1), the cookie's MSS, no other option, no payload (data on
// the ACK is dropped: the client retransmits it once the connection is open).
template <bool V6>
bool pipeline_impl::synproxy_open_backend(rte_mbuf* m, parsed_packet& q, flow_entry& e,
                                          const syn_options& o) {
  const uint8_t* l4 = rte_pktmbuf_mtod(m, const uint8_t*) + q.l4_off;
  uint32_t seq = rte_be_to_cpu_32(ld32(l4 + 4));
  e.hash = rte_be_to_cpu_32(ld32(l4 + 8)) - 1; // our ISN towards the client (the cookie)
  tcp_answer a;
  a.seq = seq - 1;
  a.flags = tcp_syn;
  a.window = ld16(l4 + 14) ? rte_be_to_cpu_16(ld16(l4 + 14)) : 65535;
  uint8_t opt[4] = {2, 4, uint8_t(o.mss >> 8), uint8_t(o.mss)};
  a.options = opt;
  a.options_len = 4;
  if (!make_tcp_answer<V6>(m, q, a, cfg_.mac[client_side].data(), false))
    return false;
  e.synproxy = synproxy_backend_syn;
  return true;
}

template <bool V6>
bool pipeline_impl::synproxy_backend_packet(rte_mbuf* m, const parsed_packet& p, int32_t fpos,
                                            flow_entry& e, burst_output& out) {
  uint8_t* l4 = rte_pktmbuf_mtod(m, uint8_t*) + p.l4_off;
  if (p.tcp_flags & tcp_rst) {
    // The backend refused: the client, which believes the connection open,
    // gets the RST with a sequence number in its window (our ISN + 1).
    tcp_shift(l4, 4, e.hash + 1 - rte_be_to_cpu_32(ld32(l4 + 4)));
    return false;
  }
  if ((p.tcp_flags & (tcp_syn | tcp_ack)) != (tcp_syn | tcp_ack)) {
    drop(m, drop_reason::synproxy_pending, out);
    return true;
  }
  uint32_t backend_isn = rte_be_to_cpu_32(ld32(l4 + 4));
  uint32_t ack = rte_be_to_cpu_32(ld32(l4 + 8));
  if (!e.syn_answered)
    sched_.record_handshake(e.backend, now_us_ - e.syn_us);
  e.syn_answered = 1;
  e.hash = backend_isn - e.hash; // delta: backend sequence space - ours
  e.synproxy = synproxy_open;
  // Both halves are open: established (the client's ACK came before the
  // backend's SYN-ACK), and its deadline pushed out.
  set_state<V6>(fpos, e, tcp_track{flow_state::established, 0}, view_.services[e.service]);
  touch<V6>(fpos, e);
  // Our ACK of the backend's SYN-ACK, in place, back to the backend.
  tcp_answer a;
  a.seq = ack;
  a.ack = backend_isn + 1;
  a.flags = tcp_ack;
  a.window = 65535;
  parsed_packet q = p;
  if (!make_tcp_answer<V6>(m, q, a, cfg_.mac[backend_side].data())) {
    drop(m, drop_reason::no_headroom, out);
    return true;
  }
  emit(m, backend_side, out);
  return true;
}

template void pipeline_impl::synproxy_syn<false>(rte_mbuf*, const parsed_packet&, burst_output&);
template void pipeline_impl::synproxy_syn<true>(rte_mbuf*, const parsed_packet&, burst_output&);
template bool pipeline_impl::synproxy_cookie_ok<false>(rte_mbuf*, const parsed_packet&,
                                                       syn_options&);
template bool pipeline_impl::synproxy_cookie_ok<true>(rte_mbuf*, const parsed_packet&,
                                                      syn_options&);
template bool pipeline_impl::synproxy_open_backend<false>(rte_mbuf*, parsed_packet&, flow_entry&,
                                                          const syn_options&);
template bool pipeline_impl::synproxy_open_backend<true>(rte_mbuf*, parsed_packet&, flow_entry&,
                                                         const syn_options&);
template bool pipeline_impl::synproxy_backend_packet<false>(rte_mbuf*, const parsed_packet&,
                                                            int32_t, flow_entry&, burst_output&);
template bool pipeline_impl::synproxy_backend_packet<true>(rte_mbuf*, const parsed_packet&, int32_t,
                                                           flow_entry&, burst_output&);

} // namespace sluice::dp
