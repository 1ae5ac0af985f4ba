// Flow hand-over between dataplane processes: exporting a worker's flows as
// flow_sync_records and adopting records into a worker's tables (hitless
// restart through the flow snapshot; the unit flow sync between instances is
// to carry). Cold path: runs while the worker is stopped (export) or before it
// starts / on its own thread (adopt), never concurrently with the packet path.
// An adopted flow is indistinguishable from one this worker created: the same
// entries, gauges, NAT port lease and timeouts, so it ends, expires and is
// evicted by the usual rules.
#include <map>
#include <tuple>

#include <rte_byteorder.h>

#include "packet_rewrite.h"
#include "pipeline_impl.h"

namespace sluice::dp {

using abi::fwd_mode;

namespace {

template <bool V6> using key_of = std::conditional_t<V6, flow_key6, flow_key4>;

template <bool V6> void addr_to16(const void* key_addr, uint8_t out[16]) {
  if constexpr (V6) {
    std::memcpy(out, key_addr, 16);
  } else {
    uint32_t v;
    std::memcpy(&v, key_addr, 4);
    ip_addr a = ip_addr::from_v4_be(v);
    std::memcpy(out, a.bytes.data(), 16);
  }
}

template <bool V6> void addr_from16(const uint8_t in[16], void* key_addr) {
  std::memcpy(key_addr, V6 ? in : in + 12, V6 ? 16 : 4);
}

ip_addr addr16(const uint8_t a[16]) {
  return ip_addr::from_v6(a); // IPv4-mapped stays IPv4-mapped
}

} // namespace

template <bool V6> void pipeline_impl::export_flows(std::vector<flow_sync_record>& out) const {
  const auto& ft = [this]() -> const flow_table<key_of<V6>>& {
    if constexpr (V6)
      return ft6_;
    else
      return ft4_;
  }();
  for (uint32_t pos = 0; pos < ft.positions(); ++pos) {
    const int32_t p = int32_t(pos);
    if (!ft.used(p))
      continue;
    const flow_entry& e = ft.entry(p);
    if (e.kind != flow_kind::forward)
      continue;
    const uint32_t d = flow_deadline(ft, p);
    if (d != no_deadline && int32_t(now_ms_ - d) > 0)
      continue;
    const abi::backend_entry& be = view_.backends[e.backend];
    if (!backend_holds(be, e))
      continue; // stale: its next packet would reschedule it anyway
    const auto& k = ft.key_at(p);
    flow_sync_record r{};
    addr_to16<V6>(&k.src, r.client);
    addr_to16<V6>(&k.dst, r.vip);
    std::memcpy(r.backend, be.addr, 16);
    r.client_port = k.sport;
    r.vip_port = k.dport;
    r.backend_port = be.port ? rte_cpu_to_be_16(be.port) : k.dport;
    if (fwd_mode(e.mode) == fwd_mode::nat) {
      std::memcpy(r.nat_addr, nat_.set_addr(e.nat_addr_idx).bytes.data(), 16);
      r.nat_port = e.nat_port;
    }
    r.family = V6 ? 6 : 4;
    r.proto = k.proto;
    r.mode = e.mode;
    r.state = uint8_t(e.state);
    r.fins = e.fins;
    r.syn_answered = e.syn_answered;
    r.synproxy = e.synproxy;
    r.hash = e.hash;
    r.remaining_ms = d == no_deadline ? e.timeout_ms : d - now_ms_;
    std::memcpy(r.client_mac, e.client_mac, 6);
    r.worker = cfg_.worker_id;
    out.push_back(r);
  }
}

int32_t pipeline_impl::adopt_backend_slot(int32_t svc, const flow_sync_record& r) const {
  for (uint32_t b = 0; b < view_.hdr->backend_limit; ++b) {
    const abi::backend_entry& be = view_.backends[b];
    if (!(be.flags & abi::backend_in_use) || be.service != uint32_t(svc) ||
        std::memcmp(be.addr, r.backend, 16) != 0)
      continue;
    const uint16_t bport = be.port ? rte_cpu_to_be_16(be.port) : r.vip_port;
    if (bport == r.backend_port)
      return int32_t(b);
  }
  return -1;
}

template <bool V6> adopt_refusal pipeline_impl::adopt_flow(const flow_sync_record& r) {
  const auto mode = fwd_mode(r.mode);
  if (r.state >= flow_state_count || r.mode < uint8_t(fwd_mode::nat) ||
      r.mode > uint8_t(fwd_mode::dsr_gue) || (r.proto != proto_tcp && r.proto != proto_udp))
    return adopt_refusal::bad_record;
  const int32_t svc = view_.find_service(r.vip, rte_be_to_cpu_16(r.vip_port), r.proto);
  if (svc < 0 || view_.services[svc].mode != r.mode)
    return adopt_refusal::no_service;
  const abi::service_entry& s = view_.services[svc];
  const int32_t b = adopt_backend_slot(svc, r);
  if (b < 0)
    return adopt_refusal::no_backend;
  const abi::backend_entry& be = view_.backends[b];

  auto& ft = table<V6>();
  key_of<V6> key{};
  addr_from16<V6>(r.client, &key.src);
  addr_from16<V6>(r.vip, &key.dst);
  key.sport = r.client_port;
  key.dport = r.vip_port;
  key.proto = r.proto;
  const uint64_t th = ft.hash(key);
  if (ft.lookup(key, th) >= 0)
    return adopt_refusal::exists;
  const int32_t pos = take_slot<V6>(th, false, -1);
  if (pos < 0)
    return adopt_refusal::table_full;
  flow_entry& e = ft.emplace(pos, key);
  e.backend = uint32_t(b);
  e.incarnation = be.incarnation;
  e.service = uint16_t(svc);
  e.kind = flow_kind::forward;
  e.hash = r.hash;
  e.mode = r.mode;
  e.syn_us = now_us_;
  e.syn_answered = r.syn_answered;
  e.synproxy = r.synproxy;
  std::memcpy(e.client_mac, r.client_mac, 6);
  ft.publish(pos, th);

  if (mode == fwd_mode::nat || mode == fwd_mode::dnat) {
    key_of<V6> rkey{};
    addr_from16<V6>(r.backend, &rkey.src);
    rkey.sport = r.backend_port;
    rkey.proto = r.proto;
    if (mode == fwd_mode::nat) {
      nat_lease l;
      if (!nat_.reserve(uint32_t(b), addr16(r.nat_addr), r.nat_port, l)) {
        ft.erase(pos);
        return adopt_refusal::nat_port;
      }
      e.nat_addr_idx = l.set;
      e.nat_port = l.port_be;
      addr_from16<V6>(r.nat_addr, &rkey.dst);
      rkey.dport = r.nat_port;
    } else {
      std::memcpy(&rkey.dst, &key.src, sizeof(key.src));
      rkey.dport = key.sport;
    }
    bool conflict = false;
    if (link_reply<V6>(pos, e, rkey, false, conflict) < 0) {
      if (mode == fwd_mode::nat)
        nat_.release(nat_lease{e.nat_addr_idx, e.nat_port});
      ft.erase(pos);
      return adopt_refusal::table_full;
    }
  }

  count(worker_counter::flows_adopted);
  counter_add(ctr_->worker[size_t(worker_counter::flows_active)], 1);
  set_state<V6>(pos, e, tcp_track{flow_state(r.state), r.fins}, s);
  // The time it had left, never more than its state's full timeout.
  const uint32_t left = r.remaining_ms < e.timeout_ms ? r.remaining_ms : e.timeout_ms;
  uint32_t d = now_ms_ + (left ? left : 1);
  ft.set_deadline(pos, d == no_deadline ? d - 1 : d);
  return adopt_refusal::count; // adopted
}

void pipeline_impl::adopt_flows(const flow_sync_record* recs, size_t n, adopt_summary& sum) {
  for (size_t i = 0; i < n; ++i) {
    const flow_sync_record& r = recs[i];
    adopt_refusal why = r.family == 4   ? adopt_flow<false>(r)
                        : r.family == 6 ? adopt_flow<true>(r)
                                        : adopt_refusal::bad_record;
    if (why == adopt_refusal::count) {
      ++sum.adopted;
    } else {
      ++sum.refused[size_t(why)];
      count(worker_counter::flows_adopt_refused);
    }
  }
}

uint16_t pipeline_impl::owner_of_flow(const flow_sync_record& r) const {
  if (cfg_.n_workers <= 1)
    return 0;
  const uint8_t* client = r.family == 4 ? r.client + 12 : r.client;
  switch (fwd_mode(r.mode)) {
  case fwd_mode::nat: {
    // Full NAT: the worker the client's packets reach (RSS of the forward
    // 5-tuple). Its replies reach the worker the port was chosen for; when the
    // worker count changed the two may differ, and that worker's nat_ports
    // does not own the port: the flow is refused (nat_port) rather than
    // adopted where one direction would never find it.
    const uint8_t* vip = r.family == 4 ? r.vip + 12 : r.vip;
    return rss_.worker_of(r.family == 4
                              ? rss_.hash4(ld32(client), ld32(vip), r.client_port, r.vip_port)
                              : rss_.hash6(client, vip, r.client_port, r.vip_port));
  }
  default:
    // dnat's rule (client address and port); DSR needs no particular worker.
    return owner_of(client, r.family, r.client_port);
  }
}

template void pipeline_impl::export_flows<false>(std::vector<flow_sync_record>&) const;
template void pipeline_impl::export_flows<true>(std::vector<flow_sync_record>&) const;

} // namespace sluice::dp
