// Per-mode rewrite: a packet of a known flow leaves towards its backend (NAT
// address/port rewrite, DSR L2, IPIP or GUE encapsulation) or, in the NAT
// modes, a backend's reply leaves towards the client with the VIP restored.
#include <rte_byteorder.h>

#include "checksum.h"
#include "packet_rewrite.h"
#include "pipeline_impl.h"

namespace sluice::dp {

using abi::fwd_mode;

bool pipeline_impl::set_backend_macs(rte_mbuf* m, uint16_t l2_len, uint32_t backend,
                                     burst_output& out) {
  (void)l2_len;
  packed_mac mac = neigh_.backend_mac(backend);
  if (!(mac & mac_valid_bit)) {
    drop(m, drop_reason::no_neighbour, out);
    return false;
  }
  uint8_t* eth = rte_pktmbuf_mtod(m, uint8_t*);
  unpack_mac(mac, eth);
  std::memcpy(eth + 6, cfg_.mac[backend_side].data(), 6);
  return true;
}

template <bool V6>
void pipeline_impl::to_backend(rte_mbuf* m, const parsed_packet& p, uint32_t b, uint8_t mode_u8,
                               uint32_t hash, const flow_entry* fe, const abi::service_entry& svc,
                               side rx, burst_output& out) {
  const abi::backend_entry& be = view_.backends[b];
  auto mode = fwd_mode(mode_u8);
  // Drop Ethernet padding so lengths below describe the IP packet exactly.
  uint32_t frame_len = uint32_t(p.l3_off) + p.l3_len;
  if (m->data_len > frame_len)
    rte_pktmbuf_trim(m, uint16_t(m->data_len - frame_len));

  switch (mode) {
  case fwd_mode::nat:
  case fwd_mode::dnat: {
    uint8_t* l3 = rte_pktmbuf_mtod_offset(m, uint8_t*, p.l3_off);
    uint8_t* l4 = rte_pktmbuf_mtod_offset(m, uint8_t*, p.l4_off);
    uint16_t bport = be.port ? rte_cpu_to_be_16(be.port) : p.dport;
    if constexpr (V6) {
      rewrite_v6(l3, l4, p.proto, true, be.addr, bport, p.l4_len);
      if (mode == fwd_mode::nat)
        rewrite_v6(l3, l4, p.proto, false, nat_addr<V6>(*fe), fe->nat_port, p.l4_len);
    } else {
      rewrite_v4(l3, l4, p.proto, true, ld32(be.addr + 12), bport, p.l4_len);
      if (mode == fwd_mode::nat)
        rewrite_v4(l3, l4, p.proto, false, ld32(nat_addr<V6>(*fe)), fe->nat_port, p.l4_len);
    }
    if (fe && fe->synproxy == synproxy_open && (p.tcp_flags & tcp_ack)) [[unlikely]]
      tcp_shift(l4, 8, fe->hash); // acknowledgement: our sequence space -> the backend's
    break;
  }
  case fwd_mode::dsr_l2:
    break;
  case fwd_mode::dsr_ipip:
  case fwd_mode::dsr_gue: {
    bool outer_v6 = be.family == 6;
    bool gue = mode == fwd_mode::dsr_gue;
    uint16_t overhead = uint16_t((outer_v6 ? 40 : 20) + (gue ? 8 : 0));
    if (uint32_t(p.l3_len) + overhead > cfg_.mtu) {
      if (V6 || p.ipv4_df)
        return send_too_big<V6>(m, p, cfg_.mtu - overhead, rx, out);
      return drop(m, drop_reason::too_big, out);
    }
    uint8_t* old = rte_pktmbuf_mtod(m, uint8_t*);
    uint8_t tos = ip_tos(old + p.l3_off, V6 ? 6 : 4);
    uint8_t* hdr = reinterpret_cast<uint8_t*>(rte_pktmbuf_prepend(m, overhead));
    if (!hdr)
      return drop(m, drop_reason::no_headroom, out);
    // The new start is at least 20 bytes before the old one: no overlap, and
    // fixed sizes let the compiler inline the copy.
    if (p.l2_len == 14)
      std::memcpy(hdr, old, 14);
    else
      std::memcpy(hdr, old, 18);
    st16(hdr + p.l2_len - 2, rte_cpu_to_be_16(outer_v6 ? ethertype_ipv6 : ethertype_ipv4));
    uint8_t* outer = hdr + p.l2_len;
    uint8_t inner_proto = V6 ? proto_ipv6 : proto_ipip;
    uint16_t payload = uint16_t(p.l3_len + (gue ? 8 : 0));
    if (!outer_v6) {
      write_outer_v4(outer, tos, uint16_t(payload + 20), V6 || p.ipv4_df,
                     gue ? proto_udp : inner_proto, encap_src_v4(cfg_.encap_src4, hash),
                     ld32(be.addr + 12));
    } else {
      uint8_t src[16];
      encap_src_v6(cfg_.encap_src6, hash, src);
      write_outer_v6(outer, tos, hash, payload, gue ? proto_udp : inner_proto, src, be.addr);
    }
    if (gue) {
      uint8_t* udp = outer + (outer_v6 ? 40 : 20);
      st16(udp, rte_cpu_to_be_16(uint16_t(0xc000 | (hash & 0x3fff))));
      st16(udp + 2, rte_cpu_to_be_16(svc.gue_port));
      st16(udp + 4, rte_cpu_to_be_16(payload));
      st16(udp + 6, 0);
      if (outer_v6) {
        // IPv6 forbids a zero UDP checksum outside RFC 6935 tunnels; compute it.
        uint32_t sum = v6_pseudo_sum(outer + 8, outer + 24, payload, proto_udp);
        uint16_t c = csum_finish(csum_partial(udp, payload, sum));
        st16(udp + 6, c == 0 ? 0xffff : c);
      }
    }
    break;
  }
  }
  if (!set_backend_macs(m, p.l2_len, b, out))
    return;
  counter_add(svc_ctr_[be.service].packets, 1);
  counter_add(svc_ctr_[be.service].bytes, p.l3_len);
  counter_add(be_ctr_[b].packets, 1);
  counter_add(be_ctr_[b].bytes, p.l3_len);
  emit(m, backend_side, out);
}

template <bool V6>
void pipeline_impl::reply_flow(rte_mbuf* m, const parsed_packet& p, int32_t rpos,
                               burst_output& out) {
  auto& ft = table<V6>();
  const flow_entry& r = ft.entry(rpos);
  int32_t fpos = int32_t(r.peer);
  flow_entry& e = ft.entry(fpos);
  // A forward entry and its reply entry are erased together (release_flow),
  // so the link names a live flow; checked on the record, whose line the bulk
  // lookup has fetched, not on the bucket.
  if (e.kind != flow_kind::forward || e.peer != uint32_t(rpos) + 1)
    return drop(m, drop_reason::reply_no_flow, out);
  const abi::backend_entry& be = view_.backends[e.backend];
  bool stale = !backend_holds(be, e);
  // Its own deadline first (the line is here); the forward one only when that
  // has passed or was never set (the first reply of the state).
  const uint32_t rd = ft.deadline(rpos);
  const bool live_reply = rd != no_deadline && int32_t(now_ms_ - rd) <= 0;
  if (stale || (!live_reply && flow_expired<V6>(fpos))) {
    if (stale)
      count(worker_counter::flows_stale);
    release_flow<V6>(fpos, !stale);
    return drop(m, drop_reason::reply_no_flow, out);
  }
  const auto* fkey = ft.key_ptr(fpos);
  const abi::service_entry& s = view_.services[e.service];
  if (e.synproxy == synproxy_backend_syn && p.proto == proto_tcp &&
      synproxy_backend_packet<V6>(m, p, fpos, e, out)) [[unlikely]]
    return;
  track_packet<V6>(fpos, e, p, false, s);
  uint32_t frame_len = uint32_t(p.l3_off) + p.l3_len;
  if (m->data_len > frame_len)
    rte_pktmbuf_trim(m, uint16_t(m->data_len - frame_len));
  uint8_t* frame = rte_pktmbuf_mtod(m, uint8_t*);
  uint8_t* l3 = frame + p.l3_off;
  uint8_t* l4 = frame + p.l4_off;
  if (e.synproxy == synproxy_open) [[unlikely]]
    tcp_shift(l4, 4, 0u - e.hash); // sequence: the backend's space -> ours
  if constexpr (V6) {
    rewrite_v6(l3, l4, p.proto, false, fkey->dst, fkey->dport, p.l4_len);
    if (fwd_mode(e.mode) == fwd_mode::nat)
      rewrite_v6(l3, l4, p.proto, true, fkey->src, fkey->sport, p.l4_len);
  } else {
    rewrite_v4(l3, l4, p.proto, false, fkey->dst, fkey->dport, p.l4_len);
    if (fwd_mode(e.mode) == fwd_mode::nat)
      rewrite_v4(l3, l4, p.proto, true, fkey->src, fkey->sport, p.l4_len);
  }
  std::memcpy(frame, e.client_mac, 6);
  std::memcpy(frame + 6, cfg_.mac[client_side].data(), 6);
  counter_add(svc_ctr_[e.service].reply_packets, 1);
  counter_add(svc_ctr_[e.service].reply_bytes, p.l3_len);
  emit(m, client_side, out);
}

template void pipeline_impl::to_backend<false>(rte_mbuf*, const parsed_packet&, uint32_t, uint8_t,
                                               uint32_t, const flow_entry*,
                                               const abi::service_entry&, side, burst_output&);
template void pipeline_impl::to_backend<true>(rte_mbuf*, const parsed_packet&, uint32_t, uint8_t,
                                              uint32_t, const flow_entry*,
                                              const abi::service_entry&, side, burst_output&);
template void pipeline_impl::reply_flow<false>(rte_mbuf*, const parsed_packet&, int32_t,
                                               burst_output&);
template void pipeline_impl::reply_flow<true>(rte_mbuf*, const parsed_packet&, int32_t,
                                              burst_output&);

} // namespace sluice::dp
