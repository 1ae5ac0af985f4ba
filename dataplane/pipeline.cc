#include "pipeline.h"

#include <algorithm>
#include <fmt/format.h>

#include <rte_cycles.h>
#include <rte_ether.h>
#include <rte_prefetch.h>
#include <rte_thash.h>

#include "flow_hash.h"
#include "packet_rewrite.h"
#include "pipeline_impl.h"
#include "shm_atomic.h"

namespace sluice::dp {

using abi::fwd_mode;

// ---------------------------------------------------------------------------
// Set-up

pipeline_impl::pipeline_impl(const pipeline_config& cfg, shm_region& shm,
                             const neighbour_table& neigh, std::vector<rte_ring*> rings)
    : cfg_(cfg), shm_(shm), neigh_(neigh), rings_(std::move(rings)) {}

result<void> pipeline_impl::init() {
  if (cfg_.worker_id >= shm_.caps().max_workers)
    return make_error(fmt::format("worker {} exceeds the shared memory's {} worker slots",
                                  cfg_.worker_id, shm_.caps().max_workers));
  // Several workers always check ownership in software: the owner of a flow is
  // a function of the client's address and port only (see owner_of), which the
  // NIC's 5-tuple RSS does not compute.
  software_steering_ = cfg_.n_workers > 1;
  if (software_steering_) {
    if (cfg_.steering.reta.empty())
      for (uint16_t i = 0; i < 128; ++i)
        cfg_.steering.reta.push_back(i % cfg_.n_workers);
    if (rings_.size() < cfg_.n_workers)
      return make_error("pipeline: one handoff ring per worker is required with several workers");
    for (uint16_t w : cfg_.steering.reta)
      if (w >= cfg_.n_workers)
        return make_error(fmt::format("pipeline: RETA names worker {} of {}", w, cfg_.n_workers));
  }
  ack_ = shm_.worker_ack(cfg_.worker_id);
  ctr_ = shm_.counters(cfg_.worker_id);
  svc_ctr_ = shm_.service_stats(cfg_.worker_id);
  be_ctr_ = shm_.backend_stats(cfg_.worker_id);
  // Counters of a previous run of this worker slot restart from zero; gauges
  // would otherwise be wrong for the new, empty flow tables.
  std::memset(static_cast<void*>(ctr_), 0, shm_.layout().worker_stats_size);

  std::string n4 = fmt::format("sluice_flows4_w{}", cfg_.worker_id);
  std::string n6 = fmt::format("sluice_flows6_w{}", cfg_.worker_id);
  if (auto r = ft4_.init(n4.c_str(), cfg_.flow_capacity, cfg_.socket_id); !r)
    return r;
  uint32_t cap6 = cfg_.flow_capacity6 ? cfg_.flow_capacity6 : cfg_.flow_capacity;
  if (auto r = ft6_.init(n6.c_str(), cap6, cfg_.socket_id); !r)
    return r;

  if (cfg_.nat_port_min == 0 || cfg_.nat_port_min > cfg_.nat_port_max)
    return make_error(
        fmt::format("NAT port range {}-{} is empty", cfg_.nat_port_min, cfg_.nat_port_max));
  for (const ip_addr& a : cfg_.nat_pool) {
    nat_port_pool pool;
    pool.addr = a;
    pool.free_ports.reserve(size_t(cfg_.nat_port_max - cfg_.nat_port_min + 1) /
                            (cfg_.n_workers ? cfg_.n_workers : 1));
    // Push in descending order so ports are handed out ascending.
    for (uint32_t port = cfg_.nat_port_max; port >= cfg_.nat_port_min; --port) {
      uint16_t be = rte_cpu_to_be_16(uint16_t(port));
      if (!software_steering_ || owner_of(a.is_v4() ? a.v4_ptr() : a.bytes.data(),
                                          a.is_v4() ? 4 : 6, be) == cfg_.worker_id)
        pool.free_ports.push_back(be);
    }
    (a.is_v4() ? pool4_ : pool6_).push_back(std::move(pool));
  }
  vip_addrs_.reserve(shm_.caps().max_services);
  start_tsc_ = rte_rdtsc();
  uint64_t hz = rte_get_tsc_hz();
  tsc_per_ms_ = hz / 1000 ? hz / 1000 : 1;
  tsc_per_us_ = hz / 1000000 ? hz / 1000000 : 1;
  if (auto r =
          sched_.init(shm_, cfg_.worker_id, cfg_.n_workers, cfg_.socket_id, cfg_.affinity_capacity,
                      start_tsc_, &ctr_->worker[size_t(worker_counter::sh_affinity_full)]);
      !r)
    return r;
  return {};
}

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

// The owner of a flow is chosen by the client's address and port: the client
// side of a forward packet (src) and the destination of a reply (dst) carry the
// same pair in dnat, and in full NAT the local port is picked so that
// (local address, local port) maps to the owner. Toeplitz with the ports' RSS
// key, so a NIC hashing only those fields would agree.
uint16_t pipeline_impl::owner_of(const uint8_t* addr, uint8_t family, uint16_t port_be) const {
  uint32_t tuple[5];
  uint32_t words;
  if (family == 4) {
    tuple[0] = rte_be_to_cpu_32(ld32(addr));
    tuple[1] = uint32_t(rte_be_to_cpu_16(port_be)) << 16;
    words = 2;
  } else {
    for (int i = 0; i < 4; ++i)
      tuple[i] = rte_be_to_cpu_32(ld32(addr + 4 * i));
    tuple[4] = uint32_t(rte_be_to_cpu_16(port_be)) << 16;
    words = 5;
  }
  uint32_t h = rte_softrss(tuple, words, cfg_.steering.rss_key.data());
  const auto& reta = cfg_.steering.reta;
  return reta[h % reta.size()];
}

int32_t pipeline_impl::owner_for_tuple(const parsed_packet& p, const uint8_t* l3) const {
  uint8_t dst16[16];
  const uint8_t* src = l3 + (p.family == 4 ? v4_src : v6_src);
  const uint8_t* dst = l3 + (p.family == 4 ? v4_dst : v6_dst);
  if (p.family == 4) {
    ip_addr a = ip_addr::from_v4_be(ld32(dst));
    std::memcpy(dst16, a.bytes.data(), 16);
  } else {
    std::memcpy(dst16, dst, 16);
  }
  if (view_.find_service(dst16, rte_be_to_cpu_16(p.dport), p.proto) >= 0)
    return owner_of(src, p.family, p.sport);
  return owner_of(dst, p.family, p.dport);
}

// ---------------------------------------------------------------------------
// Per burst

void pipeline_impl::begin_burst(uint64_t now_tsc) {
  now_ms_ = uint32_t((now_tsc - start_tsc_) / tsc_per_ms_);
  now_us_ = uint32_t((now_tsc - start_tsc_) / tsc_per_us_);
  abs_ms_ = uint32_t(now_tsc / tsc_per_ms_);
  uint64_t g = load_acquire(shm_.header()->generation);
  if (g == gen_)
    return;
  view_ = shm_.view(unsigned(g & 1));
  gen_ = g;
  vip_addrs_.clear();
  for (uint32_t i = 0; i < view_.hdr->service_limit; ++i) {
    const abi::service_entry& s = view_.services[i];
    if (!(s.flags & abi::service_in_use))
      continue;
    ip_addr a;
    std::memcpy(a.bytes.data(), s.vip, 16);
    bool seen = false;
    for (const ip_addr& v : vip_addrs_)
      seen = seen || v == a;
    if (!seen && vip_addrs_.size() < vip_addrs_.capacity())
      vip_addrs_.push_back(a);
  }
  store_release(ack_->acked_generation, g);
  count(worker_counter::generation_changes);
}

void pipeline_impl::process(rte_mbuf** pkts, uint16_t n, side rx, bool from_handoff,
                            burst_output& out) {
  const flow_key4* keys4[max_burst];
  const flow_key6* keys6[max_burst];
  flow_key4 k4[max_burst];
  flow_key6 k6[max_burst];
  parsed_packet pp[max_burst];
  rte_mbuf* m4[max_burst];
  rte_mbuf* m6[max_burst];
  uint16_t idx4[max_burst], idx6[max_burst];
  int32_t pos4[max_burst], pos6[max_burst];
  uint32_t n4 = 0, n6 = 0;
  uint64_t rx_bytes = 0;
  if (n > max_burst)
    n = max_burst;

  if (n)
    rte_prefetch0(rte_pktmbuf_mtod(pkts[0], void*));
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = pkts[i];
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
      handle_arp(m, p, rx, out);
      continue;
    }
    const uint8_t* l3 = d + p.l3_off;
    bool icmp = p.proto == proto_icmp || p.proto == proto_icmp6;
    if (software_steering_ && !from_handoff) {
      int32_t owner;
      if (icmp)
        owner = p.family == 4 ? icmp_error_owner<false>(d, p) : icmp_error_owner<true>(d, p);
      else
        owner = owner_for_tuple(p, l3);
      if (owner >= 0 && owner != cfg_.worker_id) {
        if (rte_ring_mp_enqueue(rings_[owner], m) == 0)
          count(worker_counter::handoff_out);
        else
          drop(m, drop_reason::handoff_ring_full, out);
        continue;
      }
    }
    if (icmp) {
      if (p.family == 4)
        handle_icmp<false>(m, p, rx, out);
      else
        handle_icmp<true>(m, p, rx, out);
      continue;
    }
    // ICMP packets whose family does not match their protocol fall through to
    // here only if malformed; treat as unsupported.
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
      m4[n4] = m;
      idx4[n4++] = i;
    } else {
      flow_key6& k = k6[n6];
      std::memcpy(k.src, l3 + v6_src, 16);
      std::memcpy(k.dst, l3 + v6_dst, 16);
      std::memcpy(&k.sport, d + p.l4_off, 4);
      k.proto = p.proto;
      k.pad[0] = k.pad[1] = k.pad[2] = 0;
      keys6[n6] = &k;
      m6[n6] = m;
      idx6[n6++] = i;
    }
  }
  counter_add(ctr_->worker[size_t(worker_counter::rx_packets)], n);
  counter_add(ctr_->worker[size_t(worker_counter::rx_bytes)], rx_bytes);
  if (from_handoff)
    count(worker_counter::handoff_in, n);

  if (n4)
    lookup_and_handle<false>(keys4, k4, m4, pp, idx4, pos4, n4, rx, out);
  if (n6)
    lookup_and_handle<true>(keys6, k6, m6, pp, idx6, pos6, n6, rx, out);
}

template <bool V6, typename Key>
void pipeline_impl::lookup_and_handle(const Key** keys, Key* k, rte_mbuf** m,
                                      const parsed_packet* pp, const uint16_t* idx, int32_t* pos,
                                      uint32_t n, side rx, burst_output& out) {
  auto& ft = table<V6>();
  ft.lookup_bulk(keys, n, pos);
  // Flow entries live in a large array: fetch every hit's line, and for
  // replies the forward entry and key they point at, before touching any.
  for (uint32_t j = 0; j < n; ++j)
    if (pos[j] >= 0)
      rte_prefetch0(&ft.entry(pos[j]));
  for (uint32_t j = 0; j < n; ++j)
    if (pos[j] >= 0 && ft.entry(pos[j]).kind == flow_kind::reply) {
      rte_prefetch0(&ft.entry(int32_t(ft.entry(pos[j]).peer)));
      rte_prefetch0(ft.key_ptr(int32_t(ft.entry(pos[j]).peer)));
    }
  table_added_ = table_deleted_ = false;
  for (uint32_t j = 0; j < n; ++j) {
    // Earlier packets of this burst may have created or removed flows: a miss
    // may now hit, and after a removal any position may be gone.
    if (table_deleted_ || (table_added_ && pos[j] < 0))
      pos[j] = ft.lookup(k[j]);
    handle_ip<V6>(m[j], pp[idx[j]], pos[j], rx, out);
  }
}

template <bool V6>
void pipeline_impl::handle_ip(rte_mbuf* m, const parsed_packet& p, int32_t pos, side rx,
                              burst_output& out) {
  if (pos < 0)
    return handle_miss<V6>(m, p, rx, out);
  const flow_entry& e = table<V6>().entry(pos);
  if (e.kind == flow_kind::reply)
    return reply_flow<V6>(m, p, pos, out);
  forward_flow<V6>(m, p, pos, rx, out);
}

template <bool V6>
void pipeline_impl::handle_miss(rte_mbuf* m, const parsed_packet& p, side rx, burst_output& out) {
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
  new_flow<V6>(m, p, svc, rx, out);
}

template <bool V6>
void pipeline_impl::new_flow(rte_mbuf* m, const parsed_packet& p, int32_t svc, side rx,
                             burst_output& out) {
  const abi::service_entry& s = view_.services[svc];
  const uint8_t* frame = rte_pktmbuf_mtod(m, const uint8_t*);
  const uint8_t* l3 = frame + p.l3_off;
  auto mode = fwd_mode(s.mode);
  bool tcp = p.proto == proto_tcp;
  if (tcp && (p.tcp_flags & tcp_rst))
    return drop(m, drop_reason::rst_no_state, out);
  bool syn = tcp && (p.tcp_flags & (tcp_syn | tcp_ack)) == tcp_syn;
  if (tcp && mode == fwd_mode::nat && !syn)
    return drop(m, drop_reason::mid_flow_no_state, out);

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
  int32_t b = sched_.pick(view_, uint32_t(svc), s, h64, client, now_ms_, abs_ms_);
  if (b < 0) {
    counter_add(svc_ctr_[svc].no_backend, 1);
    return drop(m, drop_reason::no_backend, out);
  }
  const abi::backend_entry& be = view_.backends[b];

  auto& ft = table<V6>();
  int32_t pos = ft.add(key);
  if (pos == -ENOSPC && evict_half_open<V6>())
    pos = ft.add(key);
  if (pos < 0) {
    if (mode == fwd_mode::nat)
      return drop(m, drop_reason::flow_table_full, out);
    count(worker_counter::untracked);
    return to_backend<V6>(m, p, uint32_t(b), uint8_t(mode), hash, nullptr, s, rx, out);
  }
  table_added_ = true;
  flow_entry& e = ft.entry(pos);
  e = flow_entry{};
  e.backend = uint32_t(b);
  e.incarnation = be.incarnation;
  e.service = uint16_t(svc);
  e.kind = flow_kind::forward;
  e.state = !tcp ? tcp_state::udp : syn ? tcp_state::syn : tcp_state::established;
  if (tcp && (p.tcp_flags & tcp_fin))
    e.state = tcp_state::fin;
  e.last_seen_ms = now_ms_;
  e.timeout_ms = timeout_for(s, e.state);
  e.hash = hash;
  e.mode = uint8_t(mode);
  e.live = 1;
  e.syn_us = now_us_;
  std::memcpy(e.client_mac, frame + 6, 6);

  if (mode == fwd_mode::nat || mode == fwd_mode::dnat) {
    key_t rkey{};
    uint16_t bport = be.port ? rte_cpu_to_be_16(be.port) : p.dport;
    if constexpr (V6)
      std::memcpy(rkey.src, be.addr, 16);
    else
      std::memcpy(&rkey.src, be.addr + 12, 4);
    rkey.sport = bport;
    rkey.proto = p.proto;
    if (mode == fwd_mode::nat) {
      auto& pools = V6 ? pool6_ : pool4_;
      if (pools.empty()) {
        ft.del(key);
        return drop(m, drop_reason::nat_no_pool_address, out);
      }
      uint32_t pi = hash % pools.size();
      nat_port_pool* pool = nullptr;
      for (uint32_t t = 0; t < pools.size(); ++t) {
        nat_port_pool& cand = pools[(pi + t) % pools.size()];
        if (!cand.free_ports.empty()) {
          pool = &cand;
          pi = (pi + t) % uint32_t(pools.size());
          break;
        }
      }
      if (!pool) {
        ft.del(key);
        return drop(m, drop_reason::nat_port_exhausted, out);
      }
      e.nat_port = pool->free_ports.back();
      pool->free_ports.pop_back();
      e.nat_addr_idx = uint16_t(pi);
      if constexpr (V6) {
        std::memcpy(e.nat_addr, pool->addr.bytes.data(), 16);
        std::memcpy(rkey.dst, pool->addr.bytes.data(), 16);
      } else {
        std::memcpy(e.nat_addr, pool->addr.v4_ptr(), 4);
        std::memcpy(&rkey.dst, pool->addr.v4_ptr(), 4);
      }
      rkey.dport = e.nat_port;
    } else {
      std::memcpy(&rkey.dst, &key.src, sizeof(key.src));
      rkey.dport = key.sport;
    }
    int32_t rpos = ft.lookup(rkey) >= 0 ? -EEXIST : ft.add(rkey);
    if (rpos < 0) {
      if (mode == fwd_mode::nat) {
        auto& pools = V6 ? pool6_ : pool4_;
        pools[e.nat_addr_idx].free_ports.push_back(e.nat_port);
      }
      ft.del(key);
      return drop(
          m, rpos == -EEXIST ? drop_reason::reply_tuple_conflict : drop_reason::flow_table_full,
          out);
    }
    flow_entry& r = ft.entry(rpos);
    r = flow_entry{};
    r.kind = flow_kind::reply;
    r.peer = uint32_t(pos);
    r.backend = e.backend;
    r.service = e.service;
    e.peer = uint32_t(rpos) + 1;
  }

  count(worker_counter::flows_created);
  counter_add(ctr_->worker[size_t(worker_counter::flows_active)], 1);
  counter_add(svc_ctr_[svc].new_flows, 1);
  counter_add(svc_ctr_[svc].active_flows, 1);
  counter_add(be_ctr_[b].new_flows, 1);
  counter_add(be_ctr_[b].active_flows, 1);
  to_backend<V6>(m, p, uint32_t(b), uint8_t(mode), hash, &e, s, rx, out);
}

template <bool V6>
void pipeline_impl::forward_flow(rte_mbuf* m, const parsed_packet& p, int32_t pos, side rx,
                                 burst_output& out) {
  auto& ft = table<V6>();
  flow_entry& e = ft.entry(pos);
  const abi::backend_entry& be = view_.backends[e.backend];
  bool tcp = p.proto == proto_tcp;
  bool stale = !backend_holds(be, e);
  bool is_expired = expired(e);
  // A new SYN on a closing entry starts a new connection (client port reuse).
  bool reopen = tcp && (p.tcp_flags & (tcp_syn | tcp_ack)) == tcp_syn &&
                (e.state == tcp_state::fin || e.state == tcp_state::closed);
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
    return handle_miss<V6>(m, p, rx, out);
  }
  const abi::service_entry& s = view_.services[e.service];
  e.last_seen_ms = now_ms_;
  if (tcp) {
    tcp_state st = e.state;
    if (p.tcp_flags & tcp_rst)
      st = tcp_state::closed;
    else if (p.tcp_flags & tcp_fin)
      st = tcp_state::fin;
    else if (st == tcp_state::syn && (p.tcp_flags & tcp_ack))
      st = tcp_state::established;
    if (st != e.state) {
      e.state = st;
      e.timeout_ms = timeout_for(s, st);
    }
  }
  to_backend<V6>(m, p, e.backend, e.mode, e.hash, &e, s, rx, out);
}

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
        rewrite_v6(l3, l4, p.proto, false, fe->nat_addr, fe->nat_port, p.l4_len);
    } else {
      rewrite_v4(l3, l4, p.proto, true, ld32(be.addr + 12), bport, p.l4_len);
      if (mode == fwd_mode::nat)
        rewrite_v4(l3, l4, p.proto, false, ld32(fe->nat_addr), fe->nat_port, p.l4_len);
    }
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
  if (!e.live)
    return drop(m, drop_reason::reply_no_flow, out);
  const abi::backend_entry& be = view_.backends[e.backend];
  bool stale = !backend_holds(be, e);
  if (stale || expired(e)) {
    if (stale)
      count(worker_counter::flows_stale);
    release_flow<V6>(fpos, !stale);
    return drop(m, drop_reason::reply_no_flow, out);
  }
  const auto* fkey = ft.key_ptr(fpos);
  const abi::service_entry& s = view_.services[e.service];
  e.last_seen_ms = now_ms_;
  if (p.proto == proto_tcp) {
    tcp_state st = e.state;
    if (p.tcp_flags & tcp_rst) {
      st = tcp_state::closed;
      counter_add(be_ctr_[e.backend].rst_from_backend, 1);
    } else if (p.tcp_flags & tcp_fin) {
      st = tcp_state::fin;
    } else if ((p.tcp_flags & (tcp_syn | tcp_ack)) == (tcp_syn | tcp_ack)) {
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
  uint32_t frame_len = uint32_t(p.l3_off) + p.l3_len;
  if (m->data_len > frame_len)
    rte_pktmbuf_trim(m, uint16_t(m->data_len - frame_len));
  uint8_t* frame = rte_pktmbuf_mtod(m, uint8_t*);
  uint8_t* l3 = frame + p.l3_off;
  uint8_t* l4 = frame + p.l4_off;
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

template <bool V6> void pipeline_impl::release_flow(int32_t pos, bool was_expired) {
  auto& ft = table<V6>();
  flow_entry& e = ft.entry(pos);
  if (e.kind != flow_kind::forward || !e.live)
    return;
  if (e.peer) {
    auto rk = ft.key_at(int32_t(e.peer - 1));
    ft.del(rk);
    if (fwd_mode(e.mode) == fwd_mode::nat) {
      auto& pools = V6 ? pool6_ : pool4_;
      if (e.nat_addr_idx < pools.size())
        pools[e.nat_addr_idx].free_ports.push_back(e.nat_port);
    }
  }
  if (was_expired && e.state == tcp_state::syn &&
      (fwd_mode(e.mode) == fwd_mode::nat || fwd_mode(e.mode) == fwd_mode::dnat) && !e.syn_answered)
    counter_add(be_ctr_[e.backend].syn_unanswered, 1);
  if (was_expired)
    count(worker_counter::flows_expired);
  counter_sub(ctr_->worker[size_t(worker_counter::flows_active)], 1);
  counter_sub(svc_ctr_[e.service].active_flows, 1);
  counter_sub(be_ctr_[e.backend].active_flows, 1);
  e.live = 0;
  e.peer = 0;
  auto k = ft.key_at(pos);
  ft.del(k);
  table_deleted_ = true;
}

// Under table pressure, half-open (SYN) entries go first, so a SYN flood cannot
// push out established connections. Bounded walk over positions from a
// rotating cursor.
template <bool V6> bool pipeline_impl::evict_half_open() {
  auto& ft = table<V6>();
  uint32_t& next = V6 ? evict_next6_ : evict_next4_;
  uint32_t n = ft.positions();
  for (int i = 0; i < 512; ++i) {
    uint32_t pos = next;
    next = next + 1 < n ? next + 1 : 0;
    flow_entry& e = ft.entry(int32_t(pos));
    if (!e.live || e.kind != flow_kind::forward)
      continue;
    bool exp = expired(e);
    if (e.state == tcp_state::syn || exp) {
      release_flow<V6>(int32_t(pos), exp);
      if (!exp)
        count(worker_counter::flows_evicted);
      return true;
    }
  }
  return false;
}

// Examines `budget` positions (not entries: the cost per call is fixed, however
// sparse the table) and releases expired and stale flows.
template <bool V6> void pipeline_impl::sweep(uint32_t budget) {
  auto& ft = table<V6>();
  uint32_t& next = V6 ? sweep_next6_ : sweep_next4_;
  uint32_t n = ft.positions();
  for (uint32_t i = 0; i < budget; ++i) {
    uint32_t pos = next;
    next = next + 1 < n ? next + 1 : 0;
    flow_entry& e = ft.entry(int32_t(pos));
    if (!e.live || e.kind != flow_kind::forward)
      continue;
    const abi::backend_entry& be = view_.backends[e.backend];
    bool stale = !backend_holds(be, e);
    if (expired(e) || stale) {
      if (stale)
        count(worker_counter::flows_stale);
      release_flow<V6>(int32_t(pos), !stale);
    }
  }
}

void pipeline_impl::housekeeping(uint64_t now_tsc) {
  now_ms_ = uint32_t((now_tsc - start_tsc_) / tsc_per_ms_);
  if (now_ms_ == last_sweep_ms_)
    return;
  uint64_t elapsed = uint32_t(now_ms_ - last_sweep_ms_);
  last_sweep_ms_ = now_ms_;
  uint64_t cycle = cfg_.sweep_cycle_ms ? cfg_.sweep_cycle_ms : 1;
  auto budget = [&](uint32_t positions) {
    uint64_t b = (uint64_t(positions) * elapsed + cycle - 1) / cycle;
    return uint32_t(std::min<uint64_t>(b, std::min<uint32_t>(positions, 65536)));
  };
  sweep<false>(budget(ft4_.positions()));
  sweep<true>(budget(ft6_.positions()));
}

template void pipeline_impl::handle_ip<false>(rte_mbuf*, const parsed_packet&, int32_t, side,
                                              burst_output&);
template void pipeline_impl::handle_ip<true>(rte_mbuf*, const parsed_packet&, int32_t, side,
                                             burst_output&);
template void pipeline_impl::to_backend<false>(rte_mbuf*, const parsed_packet&, uint32_t, uint8_t,
                                               uint32_t, const flow_entry*,
                                               const abi::service_entry&, side, burst_output&);
template void pipeline_impl::to_backend<true>(rte_mbuf*, const parsed_packet&, uint32_t, uint8_t,
                                              uint32_t, const flow_entry*,
                                              const abi::service_entry&, side, burst_output&);

// ---------------------------------------------------------------------------
// Public wrapper

pipeline::pipeline(std::unique_ptr<pipeline_impl> impl) : impl_(std::move(impl)) {}
pipeline::~pipeline() = default;

result<std::unique_ptr<pipeline>> pipeline::create(const pipeline_config& cfg, shm_region& shm,
                                                   const neighbour_table& neighbours,
                                                   std::vector<rte_ring*> handoff_rings) {
  auto impl = std::make_unique<pipeline_impl>(cfg, shm, neighbours, std::move(handoff_rings));
  if (auto r = impl->init(); !r)
    return r.err();
  return std::unique_ptr<pipeline>(new pipeline(std::move(impl)));
}

void pipeline::begin_burst(uint64_t now_tsc) {
  impl_->begin_burst(now_tsc);
}
void pipeline::process(rte_mbuf** pkts, uint16_t n, side rx_side, bool from_handoff,
                       burst_output& out) {
  impl_->process(pkts, n, rx_side, from_handoff, out);
}
void pipeline::housekeeping(uint64_t now_tsc) {
  impl_->housekeeping(now_tsc);
}
void pipeline::count_drop(drop_reason r, uint32_t n) {
  counter_add(impl_->ctr_->drops[size_t(r)], n);
  counter_add(impl_->ctr_->worker[size_t(worker_counter::dropped)], n);
}
void pipeline::count_tx(uint32_t packets, uint64_t bytes) {
  impl_->count(worker_counter::tx_packets, packets);
  impl_->count(worker_counter::tx_bytes, bytes);
}
void pipeline::count_idle_sleep() {
  impl_->count(worker_counter::idle_sleeps);
}
void pipeline::count_poll(bool empty) {
  impl_->count(empty ? worker_counter::empty_polls : worker_counter::busy_polls);
}
void pipeline::set_live(bool live) {
  abi::worker_ack* a = impl_->ack_;
  store_relaxed(a->lcore, uint32_t(rte_lcore_id()));
  if (live) {
    // Pairs with the publisher's fence after it stores a generation: either
    // the publisher sees this worker live (and waits for its acknowledgement)
    // or this worker's next begin_burst sees the newest generation. Without the
    // fence, the store of `live` could pass the load of `generation` and the
    // worker could read a slot the publisher is rewriting.
    store_release(a->acked_generation, load_acquire(impl_->shm_.header()->generation));
    store_release(a->live, 1u);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    impl_->gen_ = ~0ull; // re-read and re-acknowledge on the next burst
  } else {
    store_release(a->live, 0u);
  }
}
// Lists matching flows of one table from position `pos`; returns where to
// resume (the table's positions() when done).
template <typename Key>
static uint32_t list_table(const flow_table<Key>& ft, const pipeline_impl& pl,
                           std::vector<flow_row>& out, size_t max, const flow_filter& f,
                           uint32_t pos, uint32_t reader_id) {
  rte_rcu_qsbr* q = ft.qsbr();
  rte_rcu_qsbr_thread_register(q, reader_id);
  rte_rcu_qsbr_thread_online(q, reader_id);
  uint32_t now_ms = uint32_t((rte_rdtsc() - pl.start_tsc_) / pl.tsc_per_ms_);
  for (; pos < ft.positions() && out.size() < max; ++pos) {
    const flow_entry& e = ft.entry(int32_t(pos));
    if (!load_relaxed(e.live) || e.kind != flow_kind::forward)
      continue;
    flow_entry copy = e;
    const Key k = ft.key_at(int32_t(pos));
    if (!load_relaxed(e.live) || (f.service >= 0 && copy.service != uint16_t(f.service)) ||
        (f.backend >= 0 && copy.backend != uint32_t(f.backend)) ||
        (f.state >= 0 && uint8_t(copy.state) != uint8_t(f.state)))
      continue;
    flow_row r;
    if constexpr (sizeof(Key) == sizeof(flow_key6)) {
      r.client = ip_addr::from_v6(k.src);
      r.vip = ip_addr::from_v6(k.dst);
    } else {
      r.client = ip_addr::from_v4_be(k.src);
      r.vip = ip_addr::from_v4_be(k.dst);
    }
    if (f.client && !prefix_contains(*f.client, r.client))
      continue;
    r.client_port = rte_be_to_cpu_16(k.sport);
    r.vip_port = rte_be_to_cpu_16(k.dport);
    r.proto = k.proto;
    r.state = uint8_t(copy.state);
    r.mode = copy.mode;
    r.worker = pl.cfg_.worker_id;
    r.service = copy.service;
    r.backend = copy.backend;
    int32_t idle = int32_t(now_ms - copy.last_seen_ms);
    r.idle_ms = idle > 0 ? uint32_t(idle) : 0;
    out.push_back(r);
  }
  rte_rcu_qsbr_quiescent(q, reader_id);
  rte_rcu_qsbr_thread_offline(q, reader_id);
  return pos;
}

uint64_t pipeline::list_flows(std::vector<flow_row>& out, size_t max, const flow_filter& filter,
                              uint64_t cursor, uint32_t reader_id) const {
  const uint64_t n4 = impl_->ft4_.positions();
  const uint64_t n6 = impl_->ft6_.positions();
  if (cursor < n4) {
    cursor = list_table(impl_->ft4_, *impl_, out, max, filter, uint32_t(cursor), reader_id);
    if (cursor < n4)
      return cursor;
  }
  if (cursor - n4 < n6) {
    cursor =
        n4 + list_table(impl_->ft6_, *impl_, out, max, filter, uint32_t(cursor - n4), reader_id);
    if (cursor - n4 < n6)
      return cursor;
  }
  return flow_cursor_end;
}

uint64_t pipeline::flows_active() const {
  return load_relaxed(impl_->ctr_->worker[size_t(worker_counter::flows_active)]);
}

} // namespace sluice::dp
