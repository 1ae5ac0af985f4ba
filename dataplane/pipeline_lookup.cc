// Classify and look up: what the pipeline does with a TCP/UDP packet once its
// flow-table position is known. A hit is a forward entry (client → VIP) or a
// reply entry (backend → balancer, NAT modes); a miss is matched against the
// services and, when it may open a flow, scheduled and inserted.
#include <rte_byteorder.h>

#include "flow_hash.h"
#include "packet_rewrite.h"
#include "pipeline_impl.h"

namespace sluice::dp {

using abi::fwd_mode;

template <bool V6>
void pipeline_impl::handle_ip(rte_mbuf* m, const parsed_packet& p, int32_t pos, uint64_t th,
                              side rx, burst_output& out) {
  if (pos < 0)
    return handle_miss<V6>(m, p, th, rx, out);
  const flow_entry& e = table<V6>().entry(pos);
  if (e.kind == flow_kind::reply)
    return reply_flow<V6>(m, p, pos, out);
  forward_flow<V6>(m, p, pos, th, rx, out);
}

template <bool V6>
void pipeline_impl::handle_miss(rte_mbuf* m, const parsed_packet& p, uint64_t th, side rx,
                                burst_output& out) {
  const uint8_t* l3 = rte_pktmbuf_mtod(m, const uint8_t*) + p.l3_off;
  uint8_t vip[16];
  if constexpr (V6) {
    std::memcpy(vip, l3 + v6_dst, 16);
  } else {
    ip_addr a = ip_addr::from_v4_be(ld32(l3 + v4_dst));
    std::memcpy(vip, a.bytes.data(), 16);
  }
  int32_t svc = view_.find_service(vip, rte_be_to_cpu_16(p.dport), p.proto);
  if (svc < 0)
    return drop(m, drop_reason::not_for_us, out);
  new_flow<V6>(m, p, svc, th, rx, out);
}

template <bool V6>
void pipeline_impl::new_flow(rte_mbuf* m, const parsed_packet& p, int32_t svc, uint64_t th, side rx,
                             burst_output& out) {
  const abi::service_entry& s = view_.services[svc];
  const uint8_t* frame = rte_pktmbuf_mtod(m, const uint8_t*);
  const uint8_t* l3 = frame + p.l3_off;
  auto mode = fwd_mode(s.mode);
  bool tcp = p.proto == proto_tcp;
  if (tcp && (p.tcp_flags & tcp_rst))
    return drop(m, drop_reason::rst_no_state, out);
  bool syn = tcp && (p.tcp_flags & (tcp_syn | tcp_ack)) == tcp_syn;
  syn_options cookie;
  bool proxied = false;
  if (tcp && s.synproxy) [[unlikely]] {
    if (syn) {
      if (synproxy_active(s, true))
        return synproxy_syn<V6>(m, p, out);
    } else if ((p.tcp_flags & (tcp_ack | tcp_syn | tcp_fin)) == tcp_ack) {
      proxied = synproxy_cookie_ok<V6>(m, p, cookie);
      if (!proxied && synproxy_active(s, false))
        return drop(m, drop_reason::syn_cookie_invalid, out);
    }
  }
  if (tcp && mode == fwd_mode::nat && !syn && !proxied)
    return mid_flow_no_state<V6>(m, p, s, out);

  using key_t = std::conditional_t<V6, flow_key6, flow_key4>;
  key_t key{};
  if constexpr (V6) {
    std::memcpy(key.src, l3 + v6_src, 16);
    std::memcpy(key.dst, l3 + v6_dst, 16);
  } else {
    key.src = ld32(l3 + v4_src);
    key.dst = ld32(l3 + v4_dst);
  }
  key.sport = p.sport;
  key.dport = p.dport;
  key.proto = p.proto;
  uint64_t h64 = hash_bytes(reinterpret_cast<const uint8_t*>(&key), sizeof(key), 0x6d61676c);
  uint32_t hash = uint32_t(h64 ^ (h64 >> 32));
  uint8_t client[16];
  if constexpr (V6) {
    std::memcpy(client, key.src, 16);
  } else {
    ip_addr a = ip_addr::from_v4_be(key.src);
    std::memcpy(client, a.bytes.data(), 16);
  }
  if (!admit_new_flow<V6>(m, svc, client, out))
    return;
  int32_t b = pick_backend(uint32_t(svc), s, h64, client);
  if (b == -2)
    return drop(m, drop_reason::backend_conn_limit, out);
  if (b < 0) {
    counter_add(svc_ctr_[svc].no_backend, 1);
    return drop(m, drop_reason::no_backend, out);
  }
  const abi::backend_entry& be = view_.backends[b];

  auto& ft = table<V6>();
  const bool nat_mode = mode == fwd_mode::nat || mode == fwd_mode::dnat;
  // DSR needs no state for correctness (Maglev picks the same backend for the
  // same flow): it never evicts an established flow, it goes untracked.
  int32_t pos = take_slot<V6>(th, nat_mode, -1);
  if (pos < 0) {
    if (nat_mode)
      return drop(m, drop_reason::flow_table_full, out);
    count(worker_counter::untracked);
    return to_backend<V6>(m, p, uint32_t(b), uint8_t(mode), hash, nullptr, s, rx, out);
  }
  table_added_ = true;
  flow_entry& e = ft.emplace(pos, key);
  e.backend = uint32_t(b);
  e.incarnation = be.incarnation;
  e.service = uint16_t(svc);
  e.kind = flow_kind::forward;
  e.hash = hash;
  e.mode = uint8_t(mode);
  e.syn_us = now_us_;
  std::memcpy(e.client_mac, frame + 6, 6);
  // Visible from here on (also to the reply's slot search, which must not
  // take this way).
  ft.publish(pos, th);

  if (nat_mode) {
    key_t rkey{};
    uint16_t bport = be.port ? rte_cpu_to_be_16(be.port) : p.dport;
    if constexpr (V6)
      std::memcpy(rkey.src, be.addr, 16);
    else
      std::memcpy(&rkey.src, be.addr + 12, 4);
    rkey.sport = bport;
    rkey.proto = p.proto;
    if (mode == fwd_mode::nat) {
      if (!nat_.slot_sets(uint32_t(b))) {
        ft.erase(pos);
        return drop(m, drop_reason::nat_no_pool_address, out);
      }
      if (!take_nat_port<V6>(e, uint32_t(b), hash)) {
        ft.erase(pos);
        counter_add(be_ctr_[b].nat_port_exhausted, 1);
        return drop(m, drop_reason::nat_port_exhausted, out);
      }
      if constexpr (V6)
        std::memcpy(rkey.dst, nat_addr<V6>(e), 16);
      else
        std::memcpy(&rkey.dst, nat_addr<V6>(e), 4);
      rkey.dport = e.nat_port;
    } else {
      std::memcpy(&rkey.dst, &key.src, sizeof(key.src));
      rkey.dport = key.sport;
    }
    bool conflict = false;
    if (link_reply<V6>(pos, e, rkey, true, conflict) < 0) {
      if (mode == fwd_mode::nat)
        nat_.release(nat_lease{e.nat_addr_idx, e.nat_port});
      ft.erase(pos);
      return drop(m, conflict ? drop_reason::reply_tuple_conflict : drop_reason::flow_table_full,
                  out);
    }
  }

  count(worker_counter::flows_created);
  counter_add(ctr_->worker[size_t(worker_counter::flows_active)], 1);
  counter_add(svc_ctr_[svc].new_flows, 1);
  counter_add(be_ctr_[b].new_flows, 1);
  tcp_track first = proxied ? tcp_track{flow_state::syn, 0}
                    : tcp   ? tcp_first(p.tcp_flags)
                            : tcp_track{flow_state::udp_unanswered, 0};
  set_state<V6>(pos, e, first, s);
  touch<V6>(pos, e);
  if (proxied) [[unlikely]] {
    parsed_packet q = p;
    if (synproxy_open_backend<V6>(m, q, e, cookie))
      return to_backend<V6>(m, q, uint32_t(b), uint8_t(mode), hash, &e, s, rx, out);
    release_flow<V6>(pos, false);
    return drop(m, drop_reason::no_headroom, out);
  }
  to_backend<V6>(m, p, uint32_t(b), uint8_t(mode), hash, &e, s, rx, out);
}

template <bool V6>
void pipeline_impl::forward_flow(rte_mbuf* m, const parsed_packet& p, int32_t pos, uint64_t th,
                                 side rx, burst_output& out) {
  auto& ft = table<V6>();
  flow_entry& e = ft.entry(pos);
  const abi::backend_entry& be = view_.backends[e.backend];
  bool tcp = p.proto == proto_tcp;
  bool stale = !backend_holds(be, e);
  bool is_expired = flow_expired<V6>(pos);
  // A new SYN on a closing entry starts a new connection (client port reuse).
  bool reopen = tcp && tcp_reopens(e.state, p.tcp_flags);
  if (!stale && !is_expired && tcp && !(p.tcp_flags & tcp_rst) &&
      (be.state == uint8_t(abi::backend_state::down) ||
       be.state == uint8_t(abi::backend_state::disabled) || (be.flags & abi::backend_retired)) &&
      (fwd_mode(e.mode) == fwd_mode::nat || fwd_mode(e.mode) == fwd_mode::dnat) &&
      (view_.services[e.service].flags & abi::service_reset_on_down)) [[unlikely]]
    return reset_flow<V6>(m, p, pos, rx, out);
  if (stale || is_expired || reopen) {
    if (stale)
      count(worker_counter::flows_stale);
    release_flow<V6>(pos, is_expired && !stale);
    return handle_miss<V6>(m, p, th, rx, out);
  }
  if (e.synproxy == synproxy_backend_syn && !(p.tcp_flags & tcp_rst)) [[unlikely]]
    return drop(m, drop_reason::synproxy_pending, out);
  const abi::service_entry& s = view_.services[e.service];
  track_packet<V6>(pos, e, p, true, s);
  to_backend<V6>(m, p, e.backend, e.mode, e.hash, &e, s, rx, out);
}

template void pipeline_impl::handle_ip<false>(rte_mbuf*, const parsed_packet&, int32_t, uint64_t,
                                              side, burst_output&);
template void pipeline_impl::handle_ip<true>(rte_mbuf*, const parsed_packet&, int32_t, uint64_t,
                                             side, burst_output&);

} // namespace sluice::dp
