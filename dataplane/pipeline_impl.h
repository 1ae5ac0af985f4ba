// Internals of the worker pipeline (see pipeline.h): the one worker context
// that every stage of the packet path shares. One file per stage:
//   pipeline_burst.cc      parse the burst, steer, bulk lookup, arrival order
//   pipeline_lookup.cc     classify a hit or miss, schedule and insert flows
//   pipeline_tcp_state.cc  TCP state of a flow and its per-state timeout
//   pipeline_rewrite.cc    per-mode rewrite towards the backend or the client
//   pipeline_slow_path.cc  ARP/ND, ICMP echo and errors, too-big, flow reset
//   pipeline_sweep.cc      release, eviction and the expiry sweep
//   pipeline_defence.cc    new-flow admission (limits, caps), full-NAT ports,
//                          mid-flow RST
//   pipeline_synproxy.cc   SYN cookies and the proxied handshake (nat, dnat)
//   pipeline_adopt.cc      flow hand-over: export and adopt flow_sync_records
//   pipeline.cc            set-up, generations, the public wrapper
// Everything here is owned by exactly one worker thread.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include <rte_mbuf.h>
#include <rte_ring.h>

#include "backend_scheduler.h"
#include "flow_limits.h"
#include "flow_sync_record.h"
#include "flow_table.h"
#include "nat_ports.h"
#include "packet_parse.h"
#include "pipeline.h"
#include "rss_model.h"
#include "shm_region.h"
#include "synproxy.h"
#include "table_view.h"

namespace sluice::dp {

class pipeline_impl {
public:
  pipeline_impl(const pipeline_config& cfg, shm_region& shm, const neighbour_table& neigh,
                std::vector<rte_ring*> rings);
  result<void> init();

  void begin_burst(uint64_t now_tsc);
  void process(rte_mbuf** pkts, uint16_t n, side rx_side, bool from_handoff, burst_output& out);
  void housekeeping(uint64_t now_tsc);

  // --- counters (this worker's block in shared memory) ---
  void drop(rte_mbuf* m, drop_reason r, burst_output& out) {
    out.dropped[out.n_dropped++] = m;
    counter_add(ctr_->drops[size_t(r)], 1);
    counter_add(ctr_->worker[size_t(worker_counter::dropped)], 1);
  }
  void count(worker_counter c, uint64_t n = 1) { counter_add(ctr_->worker[size_t(c)], n); }
  void emit(rte_mbuf* m, side s, burst_output& out) { out.tx[s][out.n_tx[s]++] = m; }

  pipeline_config cfg_;
  shm_region& shm_;
  const neighbour_table& neigh_;
  std::vector<rte_ring*> rings_;

  // --- steering (pipeline_steering.cc) ---
  // Several workers: some packets belong to another worker. With hardware RSS
  // the NIC's queue is trusted for DSR and full NAT (the ports are programmed
  // with the model's key and RETA, and full-NAT source ports are chosen so that
  // replies hash to the owner); dnat is always checked. Without it (software),
  // full NAT is checked against the model too. DSR is never handed over: any
  // worker schedules a DSR flow to the same backend.
  bool multi_worker_ = false;
  bool hardware_rss_ = false;
  bool has_nat_ = false;  // the current generation has a `nat` service
  bool has_dnat_ = false; // ... a `dnat` service
  rss_model rss_;
  // Packets of the current burst for other workers, sent with one enqueue per
  // destination at the end of the burst.
  rte_mbuf* handoff_pkts_[max_burst];
  uint16_t handoff_dst_[max_burst];
  uint16_t n_handoff_ = 0;

  flow_table<flow_key4> ft4_;
  flow_table<flow_key6> ft6_;
  nat_ports nat_;      // full-NAT source ports (nat_addr_idx of a flow = its port set)
  flow_limits limits_; // new-flow admission
  syn_cookie_secret cookie_secret_;
  uint32_t syn_window_ms_ = 0;       // start of the current 1-second SYN count window
  uint32_t syn_count_ = 0;           // SYNs to synproxy services in the current window
  uint32_t syn_count_prev_ = 0;      // ... in the previous window
  uint64_t rst_tokens_ = 0;          // mid-flow RST budget, in thousandths of an RST
  uint32_t rst_refill_ms_ = 0;       // now_ms_ of its last refill
  uint32_t half_open_ = 0;           // nat/dnat flows in a half-open state on this worker
  uint32_t synproxy_auto_until_ = 0; // auto mode stays on until then (worker ms)

  table_view view_;
  uint64_t gen_ = ~0ull;
  std::vector<ip_addr> vip_addrs_; // distinct VIP addresses of the current generation

  abi::worker_ack* ack_ = nullptr;
  abi::worker_counters_block* ctr_ = nullptr;
  abi::service_counters* svc_ctr_ = nullptr;
  abi::backend_counters* be_ctr_ = nullptr;

  backend_scheduler sched_;
  uint64_t start_tsc_ = 0;
  uint64_t tsc_per_ms_ = 1;
  uint64_t tsc_per_us_ = 1;
  uint32_t now_ms_ = 0; // since this worker started
  uint32_t now_us_ = 0; // since this worker started (wraps after 71 minutes)
  uint32_t abs_ms_ = 0; // TSC milliseconds, the same clock on every worker
  uint32_t sweep_next4_ = 0, sweep_next6_ = 0;
  uint32_t last_sweep_ms_ = 0;
  uint32_t pressure_until_ms_ = 0; // table pressure: evictions happened until this time
  // A half-open entry this young is evicted after the unconfirmed ones.
  static constexpr uint32_t half_open_grace_us = 1000000;
  bool table_added_ = false;   // a flow was added during this burst's handling
  bool table_deleted_ = false; // a flow was removed during this burst's handling

  // --- parse and dispatch (pipeline_burst.cc) ---
  // --- classify and look up (pipeline_lookup.cc) ---
  // `th` is the flow key's table hash (from the bulk lookup).
  template <bool V6>
  void handle_ip(rte_mbuf* m, const parsed_packet& p, int32_t pos, uint64_t th, side rx,
                 burst_output& out);
  template <bool V6>
  void handle_miss(rte_mbuf* m, const parsed_packet& p, uint64_t th, side rx, burst_output& out);
  template <bool V6>
  void new_flow(rte_mbuf* m, const parsed_packet& p, int32_t svc, uint64_t th, side rx,
                burst_output& out);
  template <bool V6>
  void forward_flow(rte_mbuf* m, const parsed_packet& p, int32_t pos, uint64_t th, side rx,
                    burst_output& out);

  // --- flow state (pipeline_tcp_state.cc), applying tcp_fsm.h ---
  // Moves the flow at forward position `fpos` to `t`: timeout, eviction class
  // (also of its reply entry) and the active/inactive gauges.
  template <bool V6>
  void set_state(int32_t fpos, flow_entry& e, tcp_track t, const abi::service_entry& s);
  // Updates the state for a packet of the flow (client side or reply) and
  // pushes its deadline out by the state's timeout.
  template <bool V6>
  void track_packet(int32_t fpos, flow_entry& e, const parsed_packet& p, bool from_client,
                    const abi::service_entry& s);
  // Pushes out the deadline of the flow at `pos` (its forward entry's, or for
  // a reply packet its reply entry's: see flow_expired) by the state's timeout.
  template <bool V6> void touch(int32_t pos, const flow_entry& e) {
    uint32_t d = now_ms_ + e.timeout_ms;
    table<V6>().set_deadline(pos, d == no_deadline ? d - 1 : d);
  }
  uint32_t timeout_for(const abi::service_entry& s, flow_state st) const;
  bool under_pressure() const { return int32_t(pressure_until_ms_ - now_ms_) > 0; }

  // --- per-mode rewrite (pipeline_rewrite.cc) ---
  template <bool V6>
  void reply_flow(rte_mbuf* m, const parsed_packet& p, int32_t pos, burst_output& out);
  // Sends a client→VIP packet to backend slot `b` per `mode`. NAT fields come
  // from `fe` (nullptr for stateless forwarding).
  template <bool V6>
  void to_backend(rte_mbuf* m, const parsed_packet& p, uint32_t b, uint8_t mode, uint32_t hash,
                  const flow_entry* fe, const abi::service_entry& svc, side rx, burst_output& out);
  bool set_backend_macs(rte_mbuf* m, uint16_t l2_len, uint32_t backend, burst_output& out);

  // --- new-flow defence and NAT ports (pipeline_defence.cc) ---
  void publish_defence();
  result<void> init_defence();
  // Budget and client rate of service `svc`; drops (counted) and returns false
  // when a limit refuses the new flow. `client` is 16 bytes.
  template <bool V6>
  bool admit_new_flow(rte_mbuf* m, int32_t svc, const uint8_t* client, burst_output& out);
  // The scheduler's pick, skipping backends at their connection cap.
  int32_t pick_backend(uint32_t svc, const abi::service_entry& s, uint64_t h64,
                       const uint8_t* client);
  // A local port for flow `e` towards backend `b`; evicts the oldest closing
  // flow holding one when none is free. Fills nat_addr_idx (the set) and nat_port.
  template <bool V6> bool take_nat_port(flow_entry& e, uint32_t b, uint32_t hash);
  // Called by set_state after every state change of the flow at `pos`: a `nat`
  // flow entering a closing state becomes a port-eviction candidate, and the
  // worker's half-open gauge (synproxy auto) follows nat/dnat flows.
  void defence_state_change(flow_entry& e, flow_state before, int32_t pos) {
    bool nat_modes = abi::fwd_mode(e.mode) <= abi::fwd_mode::dnat;
    bool half = nat_modes && state_evict_class(e.state) == evict_class::half_open;
    if (half != bool(e.half_open_counted)) {
      e.half_open_counted = half;
      half_open_ = half ? half_open_ + 1 : half_open_ - 1;
    }
    if (abi::fwd_mode(e.mode) == abi::fwd_mode::nat &&
        state_evict_class(e.state) == evict_class::closing &&
        state_evict_class(before) != evict_class::closing)
      nat_.note_closing(e.nat_addr_idx, uint32_t(pos));
  }
  // One RST of the worker's share of --mid-flow-rst-rate; false when spent.
  bool take_rst_token() {
    uint64_t rate = per_worker(cfg_.mid_flow_rst_rate, cfg_.n_workers);
    if (!cfg_.mid_flow_rst_rate)
      return true;
    uint32_t elapsed = now_ms_ - rst_refill_ms_;
    rst_refill_ms_ = now_ms_;
    rst_tokens_ = std::min<uint64_t>(rate * 1000, rst_tokens_ + uint64_t(elapsed) * rate);
    if (rst_tokens_ < 1000)
      return false;
    rst_tokens_ -= 1000;
    return true;
  }
  template <bool V6>
  void mid_flow_no_state(rte_mbuf* m, const parsed_packet& p, const abi::service_entry& s,
                         burst_output& out);
  bool is_nat_pool(const uint8_t* addr, uint8_t family) const;

  // --- synproxy (pipeline_synproxy.cc) ---
  // Whether SYNs to `s` get cookies now; `syn` counts one more SYN for auto.
  bool synproxy_active(const abi::service_entry& s, bool syn);
  template <bool V6> void synproxy_syn(rte_mbuf* m, const parsed_packet& p, burst_output& out);
  template <bool V6> bool synproxy_cookie_ok(rte_mbuf* m, const parsed_packet& p, syn_options& o);
  // Turns the client's cookie ACK (in `m`, parsed as `q`) into our SYN to the
  // backend and marks the new flow `e` as proxied.
  template <bool V6>
  bool synproxy_open_backend(rte_mbuf* m, parsed_packet& q, flow_entry& e, const syn_options& o);
  // A backend packet of a flow still waiting for the backend's SYN-ACK: true
  // when consumed (answered or dropped), false to forward it as usual.
  template <bool V6>
  bool synproxy_backend_packet(rte_mbuf* m, const parsed_packet& p, int32_t fpos, flow_entry& e,
                               burst_output& out);

  // --- release, eviction, sweep (pipeline_sweep.cc) ---
  // `evicting`: making room under pressure (the table's moved-out counts are
  // left conservative rather than paying a third bucket line: flow_table.h).
  template <bool V6> void release_flow(int32_t pos, bool expired, bool evicting = false);
  // A way for a new entry with table hash `h`: free, or freed by evicting the
  // lowest-priority flow of its two buckets (never `keep`; an established
  // flow only if `may_evict_established`). -1 when nothing may be evicted.
  template <bool V6> int32_t take_slot(uint64_t h, bool may_evict_established, int32_t keep);
  // Inserts the reply entry `rkey` of the NAT flow at forward position `pos`
  // under the same eviction rules (never at the expense of `pos`) and links the
  // two. -1 when the tuple is already taken (`conflict`) or nothing may be
  // evicted; the caller then undoes its forward entry.
  template <bool V6, typename Key>
  int32_t link_reply(int32_t pos, flow_entry& e, const Key& rkey, bool may_evict_established,
                     bool& conflict);
  template <bool V6> void sweep(uint32_t budget);

  template <bool V6> auto& table() {
    if constexpr (V6)
      return ft6_;
    else
      return ft4_;
  }
  // A NAT flow's reply packets push out a deadline of their own, in the reply
  // entry's way of its bucket (a line the reply's lookup has fetched), instead
  // of the forward entry's: a reply then touches three lines, not four. The
  // flow lives until the later of the two; any state change (set_state)
  // clears the reply's, so a shorter timeout of a new state takes effect.
  // Whether the flow at forward position `fpos` is past both deadlines; when
  // only the forward one has passed, the reply's is carried over to it.
  template <bool V6> bool flow_expired(int32_t fpos) {
    auto& ft = table<V6>();
    if (!ft.expired(fpos, now_ms_))
      return false;
    const flow_entry& e = ft.entry(fpos);
    if (!e.peer)
      return true;
    const int32_t rpos = int32_t(e.peer - 1);
    const uint32_t rd = ft.deadline(rpos);
    if (rd == no_deadline || int32_t(now_ms_ - rd) > 0)
      return true;
    ft.set_deadline(fpos, rd);
    ft.set_deadline(rpos, no_deadline);
    return false;
  }
  // The deadline of the flow at forward position `fpos`: the later of its own
  // and its reply entry's (see flow_expired).
  template <typename Table> static uint32_t flow_deadline(const Table& ft, int32_t fpos) {
    const flow_entry& e = ft.entry(fpos);
    return e.peer ? later_deadline(ft.deadline(fpos), ft.deadline(int32_t(e.peer - 1)))
                  : ft.deadline(fpos);
  }
  // Full NAT: the flow's local source address (v4: 4 bytes, network order).
  template <bool V6> const uint8_t* nat_addr(const flow_entry& e) const {
    const ip_addr& a = nat_.set_addr(e.nat_addr_idx);
    return V6 ? a.bytes.data() : a.v4_ptr();
  }
  // Owner of the flow of (client address, client port): dnat's rule, since
  // both directions carry that pair; also the old pools' full-NAT port rule.
  uint16_t owner_of(const uint8_t* addr, uint8_t family, uint16_t port_be) const;
  // The worker that must handle this TCP/UDP packet, or -1 for this one.
  int32_t steer_owner(const parsed_packet& p, const uint8_t* l3) const;
  void stage_handoff(rte_mbuf* m, uint16_t owner) {
    handoff_pkts_[n_handoff_] = m;
    handoff_dst_[n_handoff_++] = owner;
  }
  void flush_handoffs(burst_output& out);
  void note_generation_modes();

  // --- flow hand-over (pipeline_adopt.cc) ---
  template <bool V6> void export_flows(std::vector<flow_sync_record>& out) const;
  void adopt_flows(const flow_sync_record* recs, size_t n, adopt_summary& sum);
  // adopt_refusal::count when adopted.
  template <bool V6> adopt_refusal adopt_flow(const flow_sync_record& r);
  // Backend slot of service `svc` with the record's backend address and port, or -1.
  int32_t adopt_backend_slot(int32_t svc, const flow_sync_record& r) const;
  uint16_t owner_of_flow(const flow_sync_record& r) const;

  // --- slow paths (pipeline_slow_path.cc) ---
  void handle_arp(rte_mbuf* m, const parsed_packet& p, side rx, burst_output& out);
  template <bool V6>
  void handle_icmp(rte_mbuf* m, const parsed_packet& p, side rx, burst_output& out);
  template <bool V6>
  void icmp_error(rte_mbuf* m, const parsed_packet& p, side rx, burst_output& out);
  template <bool V6>
  void send_too_big(rte_mbuf* m, const parsed_packet& p, uint32_t mtu, side rx, burst_output& out);
  template <bool V6> int32_t icmp_error_owner(const uint8_t* frame, const parsed_packet& p) const;
  template <bool V6>
  void reset_flow(rte_mbuf* m, const parsed_packet& p, int32_t pos, side rx, burst_output& out);
  bool is_own_addr(const ip_addr& a) const;
  bool is_vip_addr(const ip_addr& a) const;
};

// Whether a flow entry still belongs to the backend in its slot: the same
// incarnation, in use or retired (removed from the config, slot not reused:
// its flows are kept until they end).
inline bool backend_holds(const abi::backend_entry& be, const flow_entry& e) {
  return (be.flags & (abi::backend_in_use | abi::backend_retired)) &&
         be.incarnation == e.incarnation;
}

inline ip_addr packet_addr(const uint8_t* l3, uint8_t family, bool dst) {
  if (family == 4) {
    uint32_t v;
    std::memcpy(&v, l3 + (dst ? 16 : 12), 4);
    return ip_addr::from_v4_be(v);
  }
  return ip_addr::from_v6(l3 + (dst ? 24 : 8));
}

} // namespace sluice::dp
