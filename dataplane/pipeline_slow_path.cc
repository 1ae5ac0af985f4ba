// Slow paths of the worker pipeline: ARP and neighbour discovery answers, ICMP
// echo, ICMP errors about tracked flows, and ICMP frag-needed/packet-too-big
// generation. All of them rewrite the received mbuf in place: no allocation.
#include <rte_byteorder.h>
#include <rte_ether.h>

#include "checksum.h"
#include "packet_rewrite.h"
#include "pipeline_impl.h"

namespace sluice::dp {

using abi::fwd_mode;

bool pipeline_impl::is_own_addr(const ip_addr& a) const {
  for (const own_address& o : cfg_.addresses)
    if (o.prefix.addr == a)
      return true;
  for (const ip_addr& n : cfg_.nat_pool)
    if (n == a)
      return true;
  return false;
}

bool pipeline_impl::is_vip_addr(const ip_addr& a) const {
  for (const ip_addr& v : vip_addrs_)
    if (v == a)
      return true;
  return false;
}

static void swap_macs(uint8_t* eth, const uint8_t* own) {
  std::memcpy(eth, eth + 6, 6);
  std::memcpy(eth + 6, own, 6);
}

// ---------------------------------------------------------------------------
// ARP (RFC 826): answer requests for own addresses and VIPs in place; replies
// go to the neighbour manager.

[[gnu::cold]] void pipeline_impl::handle_arp(rte_mbuf* m, const parsed_packet& p, side rx,
                                             burst_output& out) {
  uint8_t* eth = rte_pktmbuf_mtod(m, uint8_t*);
  if (m->data_len < uint32_t(p.l2_len) + 28)
    return drop(m, drop_reason::arp_malformed, out);
  uint8_t* a = eth + p.l2_len;
  if (load_be16(a) != 1 || load_be16(a + 2) != ethertype_ipv4 || a[4] != 6 || a[5] != 4)
    return drop(m, drop_reason::arp_malformed, out);
  uint16_t op = load_be16(a + 6);
  if (op == 2) {
    out.exception[out.n_exception++] = m;
    count(worker_counter::exception_out);
    return;
  }
  if (op != 1)
    return drop(m, drop_reason::arp_malformed, out);
  ip_addr target = ip_addr::from_v4_be(ld32(a + 24));
  if (!is_own_addr(target) && !is_vip_addr(target))
    return drop(m, drop_reason::arp_not_for_us, out);
  const uint8_t* own = cfg_.mac[rx].data();
  uint8_t sender_mac[6], sender_ip[4], target_ip[4];
  std::memcpy(sender_mac, a + 8, 6);
  std::memcpy(sender_ip, a + 14, 4);
  std::memcpy(target_ip, a + 24, 4);
  st16(a + 6, rte_cpu_to_be_16(2));
  std::memcpy(a + 8, own, 6);
  std::memcpy(a + 14, target_ip, 4);
  std::memcpy(a + 18, sender_mac, 6);
  std::memcpy(a + 24, sender_ip, 4);
  std::memcpy(eth, sender_mac, 6);
  std::memcpy(eth + 6, own, 6);
  count(worker_counter::arp_replies);
  emit(m, rx, out);
}

// ---------------------------------------------------------------------------
// ICMP

static bool is_icmp_error(uint8_t family, uint8_t type) {
  if (family == 4)
    return type == 3 || type == 11 || type == 12;
  return type == 1 || type == 2 || type == 3 || type == 4;
}

// Parses the header quoted in an ICMP error; returns false if unusable.
static bool parse_quoted(const uint8_t* frame, const parsed_packet& p, parsed_packet& inner,
                         uint32_t& inner_off) {
  inner_off = uint32_t(p.l4_off) + 8;
  uint32_t end = uint32_t(p.l3_off) + p.l3_len;
  if (inner_off >= end)
    return false;
  inner = parsed_packet{};
  inner.l3_off = 0;
  parse_l3(frame + inner_off, end - inner_off, p.family == 4 ? ethertype_ipv4 : ethertype_ipv6,
           inner, true);
  return inner.kind == packet_kind::ip && inner.family == p.family &&
         (inner.proto == proto_tcp || inner.proto == proto_udp);
}

template <bool V6>
int32_t pipeline_impl::icmp_error_owner(const uint8_t* frame, const parsed_packet& p) const {
  if (!is_icmp_error(p.family, p.icmp_type))
    return -1; // echo, ND: any worker answers
  parsed_packet inner;
  uint32_t off;
  if (!parse_quoted(frame, p, inner, off))
    return -1;
  // The flow's forward tuple is the quoted header reversed.
  parsed_packet rev = inner;
  std::swap(rev.sport, rev.dport);
  const uint8_t* l3 = frame + off;
  uint8_t swapped[40];
  if constexpr (V6) {
    std::memcpy(swapped, l3, 8);
    std::memcpy(swapped + v6_src, l3 + v6_dst, 16);
    std::memcpy(swapped + v6_dst, l3 + v6_src, 16);
  } else {
    std::memcpy(swapped, l3, 12);
    std::memcpy(swapped + v4_src, l3 + v4_dst, 4);
    std::memcpy(swapped + v4_dst, l3 + v4_src, 4);
  }
  return steer_owner(rev, swapped);
}

template <bool V6>
[[gnu::cold]] void pipeline_impl::handle_icmp(rte_mbuf* m, const parsed_packet& p, side rx,
                                              burst_output& out) {
  uint8_t* frame = rte_pktmbuf_mtod(m, uint8_t*);
  uint8_t* l3 = frame + p.l3_off;
  uint8_t* l4 = frame + p.l4_off;
  if ((V6 && p.proto != proto_icmp6) || (!V6 && p.proto != proto_icmp))
    return drop(m, drop_reason::unsupported_l4, out);
  if (is_icmp_error(p.family, p.icmp_type))
    return icmp_error<V6>(m, p, rx, out);
  ip_addr dst = packet_addr(l3, p.family, true);
  const uint8_t* own_mac = cfg_.mac[rx].data();

  if constexpr (V6) {
    if (p.icmp_type == 135) { // neighbour solicitation
      if (p.l4_len < 24 || l3[v6_hlim] != 255)
        return drop(m, drop_reason::arp_malformed, out);
      ip_addr target = ip_addr::from_v6(l4 + 8);
      if (!is_own_addr(target) && !is_vip_addr(target))
        return drop(m, drop_reason::arp_not_for_us, out);
      static const uint8_t unspecified[16] = {};
      bool dad = std::memcmp(l3 + v6_src, unspecified, 16) == 0;
      // Neighbour advertisement (RFC 4861 §4.4) with a target link-layer option.
      uint32_t na_len = 32;
      uint32_t want = uint32_t(p.l4_off) + na_len;
      if (m->data_len > want)
        rte_pktmbuf_trim(m, uint16_t(m->data_len - want));
      else if (m->data_len < want && !rte_pktmbuf_append(m, uint16_t(want - m->data_len)))
        return drop(m, drop_reason::no_headroom, out);
      if (dad) {
        static const uint8_t all_nodes[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
        std::memcpy(l3 + v6_dst, all_nodes, 16);
        frame[0] = 0x33;
        frame[1] = 0x33;
        std::memcpy(frame + 2, all_nodes + 12, 4);
      } else {
        std::memcpy(l3 + v6_dst, l3 + v6_src, 16);
        std::memcpy(frame, frame + 6, 6);
      }
      std::memcpy(frame + 6, own_mac, 6);
      std::memcpy(l3 + v6_src, target.bytes.data(), 16);
      st16(l3 + 4, rte_cpu_to_be_16(uint16_t(na_len)));
      l3[v6_hlim] = 255;
      l4[0] = 136;
      l4[1] = 0;
      st16(l4 + 2, 0);
      st32(l4 + 4, rte_cpu_to_be_32(dad ? 0x20000000u : 0x60000000u)); // S (unless DAD), O
      // l4 + 8: target, unchanged
      l4[24] = 2; // target link-layer address
      l4[25] = 1;
      std::memcpy(l4 + 26, own_mac, 6);
      uint32_t sum = v6_pseudo_sum(l3 + v6_src, l3 + v6_dst, na_len, proto_icmp6);
      st16(l4 + 2, csum_finish(csum_partial(l4, na_len, sum)));
      count(worker_counter::arp_replies);
      return emit(m, rx, out);
    }
    if (p.icmp_type == 136) { // neighbour advertisement: learn it
      out.exception[out.n_exception++] = m;
      count(worker_counter::exception_out);
      return;
    }
  }

  uint8_t echo_req = V6 ? 128 : 8;
  uint8_t echo_rep = V6 ? 129 : 0;
  if (p.icmp_type != echo_req)
    return drop(m, drop_reason::icmp_unsupported, out);
  if (!is_own_addr(dst) && !is_vip_addr(dst))
    return drop(m, drop_reason::not_for_us, out);
  uint32_t frame_len = uint32_t(p.l3_off) + p.l3_len;
  if (m->data_len > frame_len)
    rte_pktmbuf_trim(m, uint16_t(m->data_len - frame_len));
  // Swapping source and destination leaves every checksum unchanged; only the
  // type byte and the TTL change.
  if constexpr (V6) {
    uint8_t tmp[16];
    std::memcpy(tmp, l3 + v6_src, 16);
    std::memcpy(l3 + v6_src, l3 + v6_dst, 16);
    std::memcpy(l3 + v6_dst, tmp, 16);
    l3[v6_hlim] = 64;
  } else {
    uint32_t s = ld32(l3 + v4_src);
    st32(l3 + v4_src, ld32(l3 + v4_dst));
    st32(l3 + v4_dst, s);
    uint16_t old_ttl_word = ld16(l3 + v4_ttl);
    l3[v4_ttl] = 64;
    patch2(l3 + v4_csum, old_ttl_word, ld16(l3 + v4_ttl), false);
  }
  uint16_t old_type_word = ld16(l4);
  l4[0] = echo_rep;
  patch2(l4 + 2, old_type_word, ld16(l4), false);
  swap_macs(frame, own_mac);
  count(worker_counter::icmp_echo_replies);
  emit(m, rx, out);
}

// Rewrites the outer and the quoted addresses/ports of an ICMP error and
// recomputes its checksums. The quoted L4 checksum is patched only when the
// quote holds it.
template <bool V6>
static void rewrite_icmp_error(uint8_t* l3, const parsed_packet& p, uint8_t* inner,
                               const parsed_packet& ip_in, uint32_t quoted_len,
                               const uint8_t* outer_src, const uint8_t* outer_dst,
                               const uint8_t* in_src, uint16_t in_sport, const uint8_t* in_dst,
                               uint16_t in_dport) {
  uint8_t* in_l4 = inner + ip_in.l4_off;
  uint32_t l4_avail = quoted_len > ip_in.l4_off ? quoted_len - ip_in.l4_off : 0;
  if constexpr (V6) {
    rewrite_v6(inner, in_l4, ip_in.proto, false, in_src, in_sport, l4_avail);
    rewrite_v6(inner, in_l4, ip_in.proto, true, in_dst, in_dport, l4_avail);
    std::memcpy(l3 + v6_src, outer_src, 16);
    std::memcpy(l3 + v6_dst, outer_dst, 16);
  } else {
    rewrite_v4(inner, in_l4, ip_in.proto, false, ld32(in_src), in_sport, l4_avail);
    rewrite_v4(inner, in_l4, ip_in.proto, true, ld32(in_dst), in_dport, l4_avail);
    st32(l3 + v4_src, ld32(outer_src));
    st32(l3 + v4_dst, ld32(outer_dst));
    st16(l3 + v4_csum, 0);
    st16(l3 + v4_csum, ipv4_header_csum(l3, p.ipv4_ihl));
  }
  uint8_t* icmp = l3 + (p.l4_off - p.l3_off);
  uint32_t icmp_len = p.l3_len - (p.l4_off - p.l3_off);
  st16(icmp + 2, 0);
  uint32_t sum = 0;
  if constexpr (V6)
    sum = v6_pseudo_sum(l3 + v6_src, l3 + v6_dst, icmp_len, proto_icmp6);
  st16(icmp + 2, csum_finish(csum_partial(icmp, icmp_len, sum)));
}

template <bool V6>
[[gnu::cold]] void pipeline_impl::icmp_error(rte_mbuf* m, const parsed_packet& p, side rx,
                                             burst_output& out) {
  uint8_t* frame = rte_pktmbuf_mtod(m, uint8_t*);
  parsed_packet in;
  uint32_t in_off;
  if (!parse_quoted(frame, p, in, in_off))
    return drop(m, drop_reason::icmp_bad_inner, out);
  uint32_t frame_len = uint32_t(p.l3_off) + p.l3_len;
  if (m->data_len > frame_len)
    rte_pktmbuf_trim(m, uint16_t(m->data_len - frame_len));
  uint8_t* l3 = frame + p.l3_off;
  uint8_t* inner = frame + in_off;
  uint32_t quoted_len = frame_len - in_off;
  constexpr uint32_t alen = V6 ? 16 : 4;
  constexpr uint32_t in_src_off = V6 ? v6_src : v4_src;
  constexpr uint32_t in_dst_off = V6 ? v6_dst : v4_dst;

  // The flow's tuple as the table knows it is the quoted header reversed.
  using key_t = std::conditional_t<V6, flow_key6, flow_key4>;
  key_t key{};
  std::memcpy(&key.src, inner + in_dst_off, alen);
  std::memcpy(&key.dst, inner + in_src_off, alen);
  key.sport = in.dport;
  key.dport = in.sport;
  key.proto = in.proto;
  auto& ft = table<V6>();
  int32_t pos = ft.lookup(key);
  if (pos < 0)
    return drop(m, drop_reason::icmp_error_no_flow, out);
  flow_entry* e = &ft.entry(pos);
  int32_t fpos = pos;
  if (e->kind == flow_kind::reply) {
    fpos = int32_t(e->peer);
    e = &ft.entry(fpos);
  }
  const abi::backend_entry& be = view_.backends[e->backend];
  if (!backend_holds(be, *e))
    return drop(m, drop_reason::icmp_error_no_flow, out);
  if (!ft.used(fpos) || e->kind != flow_kind::forward)
    return drop(m, drop_reason::icmp_error_no_flow, out);
  const auto* fkey = ft.key_ptr(fpos);
  auto mode = fwd_mode(e->mode);
  const abi::service_entry& s = view_.services[e->service];
  const uint8_t* be_addr = V6 ? be.addr : be.addr + 12;
  uint16_t bport = be.port ? rte_cpu_to_be_16(be.port) : fkey->dport;
  const uint8_t* client = reinterpret_cast<const uint8_t*>(&fkey->src);
  const uint8_t* vip = reinterpret_cast<const uint8_t*>(&fkey->dst);

  if (pos != fpos) {
    // About a packet we sent to the backend (NAT modes): tell the client, in
    // the client's terms.
    bool unreachable = V6 ? p.icmp_type == 1 : p.icmp_type == 3;
    if (unreachable)
      counter_add(be_ctr_[e->backend].icmp_unreachable, 1);
    rewrite_icmp_error<V6>(l3, p, inner, in, quoted_len, vip, client, client, fkey->sport, vip,
                           fkey->dport);
    std::memcpy(frame, e->client_mac, 6);
    std::memcpy(frame + 6, cfg_.mac[client_side].data(), 6);
    count(worker_counter::icmp_errors_forwarded);
    return emit(m, client_side, out);
  }
  // About a reply the backend sent to the client (e.g. PMTU on the return
  // path): the backend must hear it.
  switch (mode) {
  case fwd_mode::nat: {
    const uint8_t* local = nat_addr<V6>(*e);
    rewrite_icmp_error<V6>(l3, p, inner, in, quoted_len, local, be_addr, be_addr, bport, local,
                           e->nat_port);
    if (!set_backend_macs(m, p.l2_len, e->backend, out))
      return;
    count(worker_counter::icmp_errors_forwarded);
    return emit(m, backend_side, out);
  }
  case fwd_mode::dnat: {
    const uint8_t* outer_src = l3 + (V6 ? v6_src : v4_src);
    uint8_t src_copy[16];
    std::memcpy(src_copy, outer_src, alen);
    rewrite_icmp_error<V6>(l3, p, inner, in, quoted_len, src_copy, be_addr, be_addr, bport, client,
                           fkey->sport);
    if (!set_backend_macs(m, p.l2_len, e->backend, out))
      return;
    count(worker_counter::icmp_errors_forwarded);
    return emit(m, backend_side, out);
  }
  default: {
    // DSR: the backend owns the VIP, so the error goes as it is, through the
    // same encapsulation as the flow's packets.
    uint64_t before = ctr_->worker[size_t(worker_counter::dropped)];
    to_backend<V6>(m, p, e->backend, e->mode, e->hash, e, s, rx, out);
    if (ctr_->worker[size_t(worker_counter::dropped)] == before)
      count(worker_counter::icmp_errors_forwarded);
    return;
  }
  }
}

// Turns a client's packet that cannot be encapsulated within the MTU into an
// ICMP frag-needed (v4) / packet-too-big (v6) back to the client, in place.
template <bool V6>
[[gnu::cold]] void pipeline_impl::send_too_big(rte_mbuf* m, const parsed_packet& p, uint32_t mtu,
                                               side rx, burst_output& out) {
  constexpr uint32_t hdr = V6 ? 48 : 28;        // new IP header + ICMP header
  constexpr uint32_t max_msg = V6 ? 1280 : 576; // RFC 4443 §2.4 / RFC 1812 §4.3.2.3
  uint32_t quote = p.l3_len;
  if (quote + hdr > max_msg)
    quote = max_msg - hdr;
  uint32_t want = uint32_t(p.l3_off) + quote;
  if (m->data_len > want)
    rte_pktmbuf_trim(m, uint16_t(m->data_len - want));
  uint8_t* old = rte_pktmbuf_mtod(m, uint8_t*);
  uint8_t* frame = reinterpret_cast<uint8_t*>(rte_pktmbuf_prepend(m, hdr));
  if (!frame) {
    drop(m, drop_reason::no_headroom, out);
    return;
  }
  std::memmove(frame, old, p.l2_len);
  uint8_t* orig = frame + p.l2_len + hdr; // the quoted original packet
  uint8_t* l3 = frame + p.l2_len;
  uint8_t* icmp = l3 + (V6 ? 40 : 20);
  uint32_t icmp_len = 8 + quote;
  if constexpr (V6) {
    write_outer_v6(l3, 0, 0, uint16_t(icmp_len), proto_icmp6, orig + v6_dst, orig + v6_src);
    l3[v6_hlim] = 64;
    icmp[0] = 2;
    icmp[1] = 0;
    st16(icmp + 2, 0);
    st32(icmp + 4, rte_cpu_to_be_32(mtu));
    uint32_t sum = v6_pseudo_sum(l3 + v6_src, l3 + v6_dst, icmp_len, proto_icmp6);
    st16(icmp + 2, csum_finish(csum_partial(icmp, icmp_len, sum)));
  } else {
    write_outer_v4(l3, 0, uint16_t(20 + icmp_len), false, proto_icmp, ld32(orig + v4_dst),
                   ld32(orig + v4_src));
    icmp[0] = 3;
    icmp[1] = 4;
    st16(icmp + 2, 0);
    st16(icmp + 4, 0);
    st16(icmp + 6, rte_cpu_to_be_16(uint16_t(mtu)));
    st16(icmp + 2, csum_finish(csum_partial(icmp, icmp_len)));
  }
  swap_macs(frame, cfg_.mac[rx].data());
  counter_add(ctr_->drops[size_t(drop_reason::too_big)], 1);
  count(worker_counter::dropped);
  count(worker_counter::icmp_too_big_sent);
  emit(m, rx, out);
}

template void pipeline_impl::handle_icmp<false>(rte_mbuf*, const parsed_packet&, side,
                                                burst_output&);
template void pipeline_impl::handle_icmp<true>(rte_mbuf*, const parsed_packet&, side,
                                               burst_output&);
template void pipeline_impl::send_too_big<false>(rte_mbuf*, const parsed_packet&, uint32_t, side,
                                                 burst_output&);
template void pipeline_impl::send_too_big<true>(rte_mbuf*, const parsed_packet&, uint32_t, side,
                                                burst_output&);
template int32_t pipeline_impl::icmp_error_owner<false>(const uint8_t*, const parsed_packet&) const;
template int32_t pipeline_impl::icmp_error_owner<true>(const uint8_t*, const parsed_packet&) const;

// Resets a TCP flow whose backend went down (services with reset_on_down, NAT
// modes): an RST to the client, built in a new mbuf, and the client's packet
// itself turned into an RST to the backend; then the flow is released.
template <bool V6>
[[gnu::cold]] void pipeline_impl::reset_flow(rte_mbuf* m, const parsed_packet& p, int32_t pos,
                                             side rx, burst_output& out) {
  auto& ft = table<V6>();
  flow_entry& e = ft.entry(pos);
  const auto key = ft.key_at(pos);
  uint8_t* frame = rte_pktmbuf_mtod(m, uint8_t*);
  uint8_t* l3 = frame + p.l3_off;
  uint8_t* l4 = frame + p.l4_off;
  const uint32_t doff = uint32_t(l4[12] >> 4) * 4;
  const uint32_t payload = p.l4_len > doff ? p.l4_len - doff : 0;
  const uint32_t seq = rte_be_to_cpu_32(ld32(l4 + 4));
  constexpr uint32_t ip_len = V6 ? 40 : 20;

  // 1. To the client: from the VIP, acceptable to it because it carries the
  //    sequence number the client expects next (its own ACK), or ACKs its data.
  if (rte_mbuf* r = rte_pktmbuf_alloc(m->pool)) {
    uint8_t* f =
        reinterpret_cast<uint8_t*>(rte_pktmbuf_append(r, uint16_t(p.l2_len + ip_len + 20)));
    if (!f) {
      rte_pktmbuf_free(r);
    } else {
      std::memcpy(f, e.client_mac, 6);
      std::memcpy(f + 6, cfg_.mac[client_side].data(), 6);
      std::memcpy(f + 12, frame + 12, p.l2_len - 12u); // VLAN tag (if any) and ethertype
      uint8_t* ip = f + p.l2_len;
      uint8_t* tcp = ip + ip_len;
      std::memset(tcp, 0, 20);
      st16(tcp, key.dport);
      st16(tcp + 2, key.sport);
      tcp[12] = 5 << 4;
      if (p.tcp_flags & tcp_ack) {
        st32(tcp + 4, ld32(l4 + 8));
        tcp[13] = tcp_rst;
      } else {
        uint32_t next = seq + payload + ((p.tcp_flags & (tcp_syn | tcp_fin)) ? 1 : 0);
        st32(tcp + 8, rte_cpu_to_be_32(next));
        tcp[13] = tcp_rst | tcp_ack;
      }
      const uint8_t* vip = reinterpret_cast<const uint8_t*>(&key.dst);
      const uint8_t* client = reinterpret_cast<const uint8_t*>(&key.src);
      uint32_t sum;
      if constexpr (V6) {
        write_outer_v6(ip, 0, 0, 20, proto_tcp, vip, client);
        sum = v6_pseudo_sum(vip, client, 20, proto_tcp);
      } else {
        write_outer_v4(ip, 0, 40, true, proto_tcp, ld32(vip), ld32(client));
        sum = v4_pseudo_sum(ld32(vip), ld32(client), 20, proto_tcp);
      }
      st16(tcp + 16, csum_finish(csum_partial(tcp, 20, sum)));
      emit(r, client_side, out);
    }
  }

  // 2. To the backend: the client's packet becomes a bare RST with the client's
  //    sequence number, then takes the flow's usual NAT rewrite.
  parsed_packet q = p;
  q.l3_len = uint16_t(p.l4_off - p.l3_off + 20);
  q.l4_len = 20;
  q.tcp_flags = tcp_rst;
  l4[12] = 5 << 4;
  l4[13] = tcp_rst;
  st32(l4 + 8, 0);
  st16(l4 + 14, 0);
  st16(l4 + 18, 0);
  if constexpr (V6) {
    st16(l3 + 4, rte_cpu_to_be_16(uint16_t(q.l3_len - 40)));
    st16(l4 + 16, 0);
    st16(l4 + 16,
         csum_finish(csum_partial(l4, 20, v6_pseudo_sum(l3 + v6_src, l3 + v6_dst, 20, proto_tcp))));
  } else {
    st16(l3 + 2, rte_cpu_to_be_16(q.l3_len));
    st16(l3 + v4_csum, 0);
    st16(l3 + v4_csum, ipv4_header_csum(l3, p.ipv4_ihl));
    st16(l4 + 16, 0);
    st16(l4 + 16, csum_finish(csum_partial(
                      l4, 20, v4_pseudo_sum(ld32(l3 + v4_src), ld32(l3 + v4_dst), 20, proto_tcp))));
  }
  to_backend<V6>(m, q, e.backend, e.mode, e.hash, &e, view_.services[e.service], rx, out);
  count(worker_counter::flows_reset);
  release_flow<V6>(pos, false);
}

template void pipeline_impl::reset_flow<false>(rte_mbuf*, const parsed_packet&, int32_t, side,
                                               burst_output&);
template void pipeline_impl::reset_flow<true>(rte_mbuf*, const parsed_packet&, int32_t, side,
                                              burst_output&);

} // namespace sluice::dp
