// New-flow defence, as a stage of the packet path: admission of a new flow
// (the worker's budget, the service's per-client rate, the backends'
// connection caps), the full-NAT source port of a new flow (nat_ports.h, with
// eviction of closing flows when a backend's ports run out), and the RST a
// `nat` client gets for a mid-flow packet without state. The mechanisms live in
// nat_ports.h and flow_limits.h; this file only connects them to the worker.
#include <fmt/format.h>

#include <rte_byteorder.h>
#include <rte_random.h>

#include "packet_rewrite.h"
#include "pipeline_impl.h"
#include "tcp_reply.h"

namespace sluice::dp {

using abi::fwd_mode;

result<void> pipeline_impl::init_defence() {
  nat_ports_params np;
  np.worker_id = cfg_.worker_id;
  np.n_workers = cfg_.n_workers;
  np.port_min = cfg_.nat_port_min;
  np.port_max = cfg_.nat_port_max;
  np.pool = cfg_.nat_pool;
  np.rss_key = cfg_.steering.rss_key;
  np.reta = cfg_.steering.reta;
  np.max_backend_slots = shm_.caps().max_backends;
  if (auto r = nat_.init(np); !r)
    return r;
  // Per worker and per run: a cookie is only good on the worker that issued it
  // (the client's ACK arrives there, like its SYN).
  cookie_secret_.seed(rte_rand(), rte_rand());
  rst_tokens_ = uint64_t(per_worker(cfg_.mid_flow_rst_rate, cfg_.n_workers)) * 1000;
  return limits_.init(
      cfg_.n_workers, cfg_.client_limit_entries, shm_.caps().max_backends,
      per_worker(cfg_.new_flow_budget, cfg_.n_workers) * !!cfg_.new_flow_budget,
      cfg_.new_flow_budget_burst ? per_worker(cfg_.new_flow_budget_burst, cfg_.n_workers) : 0);
}

// A new generation: bind every backend slot of a `nat` service to its port
// sets (creating sets for new endpoints). Runs between bursts; a set that
// cannot be created leaves its backend without ports (nat_port_exhausted).
void pipeline_impl::publish_defence() {
  nat_.begin_publication();
  for (uint32_t b = 0; b < view_.hdr->backend_limit; ++b) {
    const abi::backend_entry& be = view_.backends[b];
    if (!(be.flags & abi::backend_in_use))
      continue;
    const abi::service_entry& s = view_.services[be.service];
    if (fwd_mode(s.mode) != fwd_mode::nat)
      continue;
    ip_addr a;
    std::memcpy(a.bytes.data(), be.addr, 16);
    (void)nat_.bind(b, a, be.port ? be.port : s.port);
  }
  nat_.end_publication();
}

bool pipeline_impl::is_nat_pool(const uint8_t* addr, uint8_t family) const {
  for (const ip_addr& a : cfg_.nat_pool)
    if (family == 4 ? (a.is_v4() && std::memcmp(a.v4_ptr(), addr, 4) == 0)
                    : (!a.is_v4() && std::memcmp(a.bytes.data(), addr, 16) == 0))
      return true;
  return false;
}

template <bool V6>
bool pipeline_impl::admit_new_flow(rte_mbuf* m, int32_t svc, const uint8_t* client,
                                   burst_output& out) {
  const abi::service_entry& s = view_.services[svc];
  if (!limits_.admit_budget(now_ms_)) {
    counter_add(svc_ctr_[svc].limited, 1);
    drop(m, drop_reason::new_flow_budget, out);
    return false;
  }
  if (s.client_rate &&
      !limits_.admit_client(uint16_t(svc), client, !V6, V6 ? s.client_prefix6 : s.client_prefix4,
                            s.client_rate, s.client_burst, now_ms_)) {
    counter_add(svc_ctr_[svc].limited, 1);
    drop(m, drop_reason::client_rate_limited, out);
    return false;
  }
  return true;
}

// With a cap, a backend at its cap is skipped by asking the scheduler again
// with a perturbed hash (Maglev then lands elsewhere with probability
// 1 - share of that backend), a few times; -2 when every try hit a capped
// backend.
int32_t pipeline_impl::pick_backend(uint32_t svc, const abi::service_entry& s, uint64_t h64,
                                    const uint8_t* client) {
  for (uint32_t t = 0; t < 4; ++t) {
    int32_t b =
        sched_.pick(view_, svc, s, h64 + t * 0x9e3779b97f4a7c15ull, client, now_ms_, abs_ms_);
    if (b < 0)
      return b;
    const abi::backend_entry& be = view_.backends[b];
    if (limits_.backend_open(uint32_t(b), be_ctr_[b].active_flows, be.max_conns, be.min_conns))
      return b;
    counter_add(be_ctr_[b].conn_limited, 1);
  }
  return -2;
}

template <bool V6> bool pipeline_impl::take_nat_port(flow_entry& e, uint32_t b, uint32_t hash) {
  nat_lease l;
  if (!nat_.acquire(b, hash, l)) {
    auto& ft = table<V6>();
    int64_t victim = nat_.evict_candidate(b, [&](uint32_t pos, uint16_t set) {
      const flow_entry& v = ft.entry(int32_t(pos));
      return ft.used(int32_t(pos)) && v.kind == flow_kind::forward &&
             fwd_mode(v.mode) == fwd_mode::nat && v.nat_addr_idx == set &&
             state_evict_class(v.state) == evict_class::closing;
    });
    if (victim < 0)
      return false;
    release_flow<V6>(int32_t(victim), false);
    count(worker_counter::nat_port_evictions);
    if (!nat_.acquire(b, hash, l))
      return false;
  }
  e.nat_addr_idx = l.set;
  e.nat_port = l.port_be;
  return true;
}

// A non-SYN TCP packet for a `nat` service without state: the connection is
// unknown here (expired, evicted, or the balancer restarted), and the backend
// side cannot be rebuilt. An RST tells the client at once instead of letting
// it retransmit until its own timeout. An RST itself never gets one (handled
// before: rst_no_state).
template <bool V6>
[[gnu::cold]] void pipeline_impl::mid_flow_no_state(rte_mbuf* m, const parsed_packet& p,
                                                    const abi::service_entry& s,
                                                    burst_output& out) {
  if (s.defence_flags & abi::service_no_mid_flow_rst)
    return drop(m, drop_reason::mid_flow_no_state, out);
  if (!take_rst_token()) {
    count(worker_counter::mid_flow_rst_limited);
    return drop(m, drop_reason::mid_flow_no_state, out);
  }
  const uint8_t* l4 = rte_pktmbuf_mtod(m, const uint8_t*) + p.l4_off;
  tcp_answer a = rst_for(l4, p);
  parsed_packet q = p;
  if (!make_tcp_answer<V6>(m, q, a, cfg_.mac[client_side].data()))
    return drop(m, drop_reason::mid_flow_no_state, out);
  count(worker_counter::mid_flow_rst_sent);
  emit(m, client_side, out);
}

template bool pipeline_impl::admit_new_flow<false>(rte_mbuf*, int32_t, const uint8_t*,
                                                   burst_output&);
template bool pipeline_impl::admit_new_flow<true>(rte_mbuf*, int32_t, const uint8_t*,
                                                  burst_output&);
template bool pipeline_impl::take_nat_port<false>(flow_entry&, uint32_t, uint32_t);
template bool pipeline_impl::take_nat_port<true>(flow_entry&, uint32_t, uint32_t);
template void pipeline_impl::mid_flow_no_state<false>(rte_mbuf*, const parsed_packet&,
                                                      const abi::service_entry&, burst_output&);
template void pipeline_impl::mid_flow_no_state<true>(rte_mbuf*, const parsed_packet&,
                                                     const abi::service_entry&, burst_output&);

} // namespace sluice::dp
