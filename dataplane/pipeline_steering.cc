// Which worker handles a packet when there are several, and the handoff of
// packets to their owner. The rules (docs/dataplane.md, "Steering"):
//
//   DSR services        the receiving worker, always: a DSR flow needs no state
//                       for correctness (Maglev and the other schedulers'
//                       tables are the same on every worker), so trusting the
//                       NIC's queue costs nothing and saves a handoff.
//   nat (both ways)     hardware RSS: the receiving worker (the forward packet
//                       arrived where the NIC hashes its 5-tuple; the source
//                       port is chosen so the reply's 5-tuple hashes there too,
//                       nat_ports.h). Software: the model's owner of the
//                       packet's 5-tuple.
//   dnat (both ways)    the owner of (client address, client port), the one pair
//                       both directions carry: the reply's tuple is fixed by the
//                       client and the backend, so no port choice can steer it.
//
// Handed-off packets are staged during the burst and sent with one ring enqueue
// per destination worker at its end.
#include <rte_ring.h>

#include "packet_rewrite.h"
#include "pipeline_impl.h"

namespace sluice::dp {

uint16_t pipeline_impl::owner_of(const uint8_t* addr, uint8_t family, uint16_t port_be) const {
  return rss_.worker_of(rss_.hash_endpoint(addr, family, port_be));
}

void pipeline_impl::note_generation_modes() {
  has_nat_ = has_dnat_ = false;
  for (uint32_t i = 0; i < view_.hdr->service_limit; ++i) {
    const abi::service_entry& s = view_.services[i];
    if (!(s.flags & abi::service_in_use))
      continue;
    has_nat_ = has_nat_ || abi::fwd_mode(s.mode) == abi::fwd_mode::nat;
    has_dnat_ = has_dnat_ || abi::fwd_mode(s.mode) == abi::fwd_mode::dnat;
  }
}

int32_t pipeline_impl::steer_owner(const parsed_packet& p, const uint8_t* l3) const {
  if (!has_nat_ && !has_dnat_)
    return -1; // DSR only: every worker may handle every packet
  const bool v4 = p.family == 4;
  const uint8_t* src = l3 + (v4 ? v4_src : v6_src);
  const uint8_t* dst = l3 + (v4 ? v4_dst : v6_dst);
  uint8_t dst16[16];
  if (v4) {
    ip_addr a = ip_addr::from_v4_be(ld32(dst));
    std::memcpy(dst16, a.bytes.data(), 16);
  } else {
    std::memcpy(dst16, dst, 16);
  }
  int32_t owner;
  int32_t svc = view_.find_service(dst16, rte_be_to_cpu_16(p.dport), p.proto);
  if (svc >= 0) {
    switch (abi::fwd_mode(view_.services[svc].mode)) {
    case abi::fwd_mode::dnat:
      owner = owner_of(src, p.family, p.sport);
      break;
    case abi::fwd_mode::nat:
      if (hardware_rss_)
        return -1;
      owner = rss_.worker_of(v4 ? rss_.hash4(ld32(src), ld32(dst), p.sport, p.dport)
                                : rss_.hash6(src, dst, p.sport, p.dport));
      break;
    default:
      return -1;
    }
  } else {
    // Not for a VIP: a reply from a backend (or traffic nobody serves, which
    // the owner drops as well as any worker would). The local port of a full-NAT
    // flow is chosen from its owner's share (nat_ports.h): the reply's 5-tuple
    // RSS hash selects the owner.
    bool to_pool = is_nat_pool(dst, p.family);
    if ((!to_pool && !has_dnat_) || (to_pool && hardware_rss_))
      return -1; // a full-NAT reply arrives at its owner when the NIC hashes as the model
    // The model's 5-tuple hash is the one nat_ports chose the port with (same
    // key and RETA), from tables instead of rte_softrss's bit loop.
    owner = to_pool ? rss_.worker_of(v4 ? rss_.hash4(ld32(src), ld32(dst), p.sport, p.dport)
                                        : rss_.hash6(src, dst, p.sport, p.dport))
                    : owner_of(dst, p.family, p.dport);
  }
  return owner == cfg_.worker_id ? -1 : owner;
}

void pipeline_impl::flush_handoffs(burst_output& out) {
  uint16_t n = n_handoff_;
  n_handoff_ = 0;
  // Group by destination; a burst names at most n_workers - 1 of them.
  uint32_t done = 0; // packets already grouped
  rte_mbuf* group[max_burst];
  bool sent[max_burst] = {};
  for (uint16_t i = 0; i < n && done < n; ++i) {
    if (sent[i])
      continue;
    uint16_t dst = handoff_dst_[i];
    uint16_t k = 0;
    for (uint16_t j = i; j < n; ++j)
      if (!sent[j] && handoff_dst_[j] == dst) {
        group[k++] = handoff_pkts_[j];
        sent[j] = true;
      }
    done += k;
    unsigned q =
        rte_ring_mp_enqueue_burst(rings_[dst], reinterpret_cast<void**>(group), k, nullptr);
    count(worker_counter::handoff_out, q);
    for (unsigned j = q; j < k; ++j)
      drop(group[j], drop_reason::handoff_ring_full, out);
  }
}

} // namespace sluice::dp
