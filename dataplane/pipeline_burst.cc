// Parse and dispatch one RX burst. Three passes over the burst: parse every
// frame (dropping malformed ones and handing misdelivered ones to their owner
// worker), bulk-look up the flow keys of the TCP/UDP packets per family, then
// handle every packet in arrival order. Arrival order matters beyond fairness:
// an ICMP error or a reply may be about a flow whose first packet is earlier
// in the same burst, and must find that flow.
#include <rte_prefetch.h>

#include "packet_rewrite.h"
#include "pipeline_impl.h"

namespace sluice::dp {

namespace {

// What the in-order pass does with a parsed packet.
enum class burst_action : uint8_t { done, arp, icmp4, icmp6, ip4, ip6 };

} // namespace

void pipeline_impl::process(rte_mbuf** pkts, uint16_t n, side rx, bool from_handoff,
                            burst_output& out) {
  const flow_key4* keys4[max_burst];
  const flow_key6* keys6[max_burst];
  flow_key4 k4[max_burst];
  flow_key6 k6[max_burst];
  parsed_packet pp[max_burst];
  burst_action act[max_burst];
  uint8_t slot[max_burst]; // index into the family's key/position arrays
  int32_t pos4[max_burst], pos6[max_burst];
  uint64_t th4[max_burst], th6[max_burst]; // table hashes, for inserts and re-lookups
  uint32_t n4 = 0, n6 = 0;
  uint64_t rx_bytes = 0;
  if (n > max_burst)
    n = max_burst;

  // Pass 1: parse, steer, build keys.
  if (n)
    rte_prefetch0(rte_pktmbuf_mtod(pkts[0], void*));
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = pkts[i];
    act[i] = burst_action::done;
    if (i + 1 < n)
      rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 1], void*));
    rx_bytes += m->pkt_len;
    const uint8_t* d = rte_pktmbuf_mtod(m, const uint8_t*);
    parsed_packet& p = pp[i];
    p = parsed_packet{};
    parse_frame(d, m->data_len, p);
    if (p.kind == packet_kind::drop) {
      drop(m, p.reason, out);
      continue;
    }
    if (p.kind == packet_kind::arp) {
      act[i] = burst_action::arp;
      continue;
    }
    const uint8_t* l3 = d + p.l3_off;
    bool icmp = p.proto == proto_icmp || p.proto == proto_icmp6;
    if (multi_worker_ && !from_handoff) {
      int32_t owner =
          icmp ? (p.family == 4 ? icmp_error_owner<false>(d, p) : icmp_error_owner<true>(d, p))
               : steer_owner(p, l3);
      if (owner >= 0) {
        stage_handoff(m, uint16_t(owner));
        continue;
      }
    }
    if (icmp) {
      act[i] = p.family == 4 ? burst_action::icmp4 : burst_action::icmp6;
      continue;
    }
    if (p.family == 4) {
      flow_key4& k = k4[n4];
      // Ports straight from the packet: reading them back from `p`, just
      // written with narrower stores, stalls on store forwarding.
      k.src = ld32(l3 + v4_src);
      k.dst = ld32(l3 + v4_dst);
      std::memcpy(&k.sport, d + p.l4_off, 4);
      k.proto = p.proto;
      k.pad[0] = k.pad[1] = k.pad[2] = 0;
      keys4[n4] = &k;
      act[i] = burst_action::ip4;
      slot[i] = uint8_t(n4++);
    } else {
      flow_key6& k = k6[n6];
      std::memcpy(k.src, l3 + v6_src, 16);
      std::memcpy(k.dst, l3 + v6_dst, 16);
      std::memcpy(&k.sport, d + p.l4_off, 4);
      k.proto = p.proto;
      k.pad[0] = k.pad[1] = k.pad[2] = 0;
      keys6[n6] = &k;
      act[i] = burst_action::ip6;
      slot[i] = uint8_t(n6++);
    }
  }
  if (n_handoff_)
    flush_handoffs(out);
  // A handed-off packet was counted where it arrived.
  if (from_handoff) {
    count(worker_counter::handoff_in, n);
  } else {
    counter_add(ctr_->worker[size_t(worker_counter::rx_packets)], n);
    counter_add(ctr_->worker[size_t(worker_counter::rx_bytes)], rx_bytes);
  }

  // Pass 2: one bulk lookup per family (it also prefetches what pass 3 reads
  // next: a reply's forward record, a new flow's way).
  if (n4)
    ft4_.lookup_bulk(keys4, n4, pos4, th4);
  if (n6)
    ft6_.lookup_bulk(keys6, n6, pos6, th6);

  // Pass 3: arrival order. Earlier packets of this burst may have created or
  // removed flows: a miss may now hit, and after a removal any position may
  // be gone, so those are looked up again.
  table_added_ = table_deleted_ = false;
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = pkts[i];
    switch (act[i]) {
    case burst_action::done:
      break;
    case burst_action::arp:
      handle_arp(m, pp[i], rx, out);
      break;
    case burst_action::icmp4:
      handle_icmp<false>(m, pp[i], rx, out);
      break;
    case burst_action::icmp6:
      handle_icmp<true>(m, pp[i], rx, out);
      break;
    case burst_action::ip4: {
      int32_t& pos = pos4[slot[i]];
      if (table_deleted_ || (table_added_ && pos < 0))
        pos = ft4_.lookup(k4[slot[i]], th4[slot[i]]);
      handle_ip<false>(m, pp[i], pos, th4[slot[i]], rx, out);
      break;
    }
    case burst_action::ip6: {
      int32_t& pos = pos6[slot[i]];
      if (table_deleted_ || (table_added_ && pos < 0))
        pos = ft6_.lookup(k6[slot[i]], th6[slot[i]]);
      handle_ip<true>(m, pp[i], pos, th6[slot[i]], rx, out);
      break;
    }
    }
  }
}

} // namespace sluice::dp
