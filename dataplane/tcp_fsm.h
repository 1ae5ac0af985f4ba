// The one connection-state machine of the dataplane: how the packets of a
// tracked flow move it between states, which idle timeout each state gets from
// its service, and which eviction class a state belongs to. Pure functions over
// small values (no DPDK, no table), so the whole machine is unit-tested on its
// own (tests/unit/tcp_fsm_test.cc) and the pipeline only applies it.
//
// What the balancer sees depends on the mode: the NAT modes (`nat`, `dnat`)
// see both directions, the DSR modes only the client's. So the machine is
// deliberately forgiving: it never drops a packet, it only decides how long an
// idle entry is kept and how readily it is evicted.
//
//   syn          client SYN forwarded, nothing else seen (half-open)
//   syn_recv     NAT modes: the backend's SYN-ACK seen, the client's ACK not yet
//   established  handshake completed (DSR: the client's ACK after its SYN)
//   fin          FIN seen from one side (DSR: the client's)
//   last_ack     FIN seen from both sides, the final ACK not yet
//   time_wait    FIN from both sides and the final ACK seen
//   closed       RST seen (either side)
//   adopted      created by a non-SYN packet (DSR/dnat mid-flow, e.g. after a
//                restart): short timeout, established once traffic continues
//   udp          a UDP flow that has seen a reply (NAT modes) or a second
//                datagram from the client (DSR modes, where replies are not seen)
//   udp_unanswered  a UDP flow with a single datagram so far
//
// A SYN (without ACK) from the client on a closing entry (fin, last_ack,
// time_wait, closed) is a new connection reusing the client port: the caller
// releases the entry and starts a new flow (tcp_reopens).
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "flow_states.h"
#include "packet_parse.h"
#include "service_config.h"
#include "shm_abi.h"

namespace sluice::dp {

// Bits of tcp_track::fins.
inline constexpr uint8_t fin_from_client = 1;
inline constexpr uint8_t fin_from_backend = 2;

// A flow's TCP state plus which sides have sent a FIN (needed to tell "one
// side" from "both").
struct tcp_track {
  flow_state state = flow_state::syn;
  uint8_t fins = 0;
  bool operator==(const tcp_track&) const = default;
};

// State of a new TCP flow from its first packet's flags (a RST never creates
// a flow: the caller drops it first).
constexpr tcp_track tcp_first(uint8_t flags) {
  if ((flags & (tcp_syn | tcp_ack)) == tcp_syn)
    return {flow_state::syn, 0};
  if (flags & tcp_fin)
    return {flow_state::fin, fin_from_client};
  return {flow_state::adopted, 0};
}

// Whether a client packet with `flags` on an entry in state `s` opens a new
// connection on the same 5-tuple.
constexpr bool tcp_reopens(flow_state s, uint8_t flags) {
  return (flags & (tcp_syn | tcp_ack | tcp_rst)) == tcp_syn &&
         (s == flow_state::fin || s == flow_state::last_ack || s == flow_state::time_wait ||
          s == flow_state::closed);
}

// Next state after a packet with `flags` from the client (from_client) or
// from the backend (NAT modes' replies).
constexpr tcp_track tcp_next(tcp_track t, uint8_t flags, bool from_client) {
  if (flags & tcp_rst)
    return {flow_state::closed, t.fins};
  if (t.state == flow_state::closed)
    return t;
  if (flags & tcp_fin) {
    t.fins |= from_client ? fin_from_client : fin_from_backend;
    t.state =
        t.fins == (fin_from_client | fin_from_backend) ? flow_state::last_ack : flow_state::fin;
    return t;
  }
  bool syn = flags & tcp_syn, ack = flags & tcp_ack;
  switch (t.state) {
  case flow_state::syn:
    if (!from_client && syn && ack)
      t.state = flow_state::syn_recv;
    else if (from_client && ack && !syn)
      t.state = flow_state::established;
    break;
  case flow_state::syn_recv:
    if (from_client && ack && !syn)
      t.state = flow_state::established;
    break;
  case flow_state::adopted:
    if (ack && !syn)
      t.state = flow_state::established;
    break;
  case flow_state::last_ack:
    if (ack && !syn)
      t.state = flow_state::time_wait;
    break;
  default:
    break;
  }
  return t;
}

// Next state of a UDP flow after a datagram. `replies_seen`: the mode shows
// the balancer the backend's replies (NAT modes).
constexpr flow_state udp_next(flow_state s, bool from_client, bool replies_seen) {
  if (!from_client || !replies_seen)
    return flow_state::udp;
  return s;
}

// Idle timeout of a state, in seconds, from the service's per-state fields.
// Under table pressure (the worker had to evict recently) a half-open entry
// gets at most `pressure_syn_s`.
inline constexpr uint32_t pressure_syn_s = 3;

// Fields a writer older than ABI minor 2 leaves at 0 take these.
inline constexpr flow_timeouts builtin_timeouts{};

inline uint32_t state_timeout_s(const abi::service_entry& s, flow_state st, bool pressure) {
  auto pick = [](uint32_t v, uint32_t def) { return v ? v : def; };
  const flow_timeouts& d = builtin_timeouts;
  switch (st) {
  case flow_state::syn: {
    uint32_t t = pick(s.timeout_syn_s, d.syn_s);
    return pressure && t > pressure_syn_s ? pressure_syn_s : t;
  }
  case flow_state::syn_recv:
    return pick(s.timeout_synrecv_s, d.syn_recv_s);
  case flow_state::established:
    return pick(s.timeout_est_s, d.established_s);
  case flow_state::fin:
  case flow_state::last_ack:
    return pick(s.timeout_fin_s, d.fin_s);
  case flow_state::time_wait:
    return pick(s.timeout_timewait_s, d.time_wait_s);
  case flow_state::closed:
    return pick(s.timeout_closed_s, d.closed_s);
  case flow_state::udp:
    return pick(s.timeout_udp_s, d.udp_s);
  case flow_state::udp_unanswered:
    return pick(s.timeout_udp_unanswered_s, d.udp_unanswered_s);
  case flow_state::adopted:
    return pick(s.timeout_adopted_s, d.adopted_s);
  }
  return pick(s.timeout_est_s, d.established_s);
}

// Eviction classes, in the order a full bucket gives up its entries. Every
// class has a worker counter flows_evicted_<class>.
enum class evict_class : uint8_t {
  expired = 0,     // idle past its timeout (reclaimed, not really evicted)
  closing = 1,     // fin, last_ack, time_wait, closed
  half_open = 2,   // syn, syn_recv
  unconfirmed = 3, // adopted without a SYN, unanswered UDP
  established = 4, // established, udp: only when nothing else is left
};
inline constexpr size_t evict_class_count = 5;

constexpr evict_class state_evict_class(flow_state s) {
  switch (s) {
  case flow_state::fin:
  case flow_state::last_ack:
  case flow_state::time_wait:
  case flow_state::closed:
    return evict_class::closing;
  case flow_state::syn:
  case flow_state::syn_recv:
    return evict_class::half_open;
  case flow_state::adopted:
  case flow_state::udp_unanswered:
    return evict_class::unconfirmed;
  default:
    return evict_class::established;
  }
}

// Whether a flow in this state counts as active (IPVS ActiveConn) rather than
// inactive (InActConn) in the per-service and per-backend gauges.
constexpr bool state_is_active(flow_state s) {
  return s == flow_state::syn || s == flow_state::syn_recv || s == flow_state::established ||
         s == flow_state::adopted || s == flow_state::udp || s == flow_state::udp_unanswered;
}

// Values of flow_entry::active: the gauge that holds the flow. A new entry is
// in none until its first state is set; from then on in exactly one.
inline constexpr uint8_t gauge_none = 0;
inline constexpr uint8_t gauge_active = 1;   // active_flows (ActiveConn)
inline constexpr uint8_t gauge_inactive = 2; // backend inactive_flows (InActConn)

} // namespace sluice::dp
