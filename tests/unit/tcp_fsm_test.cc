// The connection-state machine on its own (dataplane/tcp_fsm.h): every
// transition the pipeline relies on, per direction, and the timeouts and
// eviction classes the states map to.
#include <catch2/catch_test_macros.hpp>

#include "tcp_fsm.h"

using namespace sluice;
using namespace sluice::dp;

namespace {

constexpr uint8_t SYN = tcp_syn, ACK = tcp_ack, FIN = tcp_fin, RST = tcp_rst;
constexpr uint8_t SYNACK = tcp_syn | tcp_ack, FINACK = tcp_fin | tcp_ack;

tcp_track run(tcp_track t, std::initializer_list<std::pair<uint8_t, bool>> pkts) {
  for (auto [flags, from_client] : pkts)
    t = tcp_next(t, flags, from_client);
  return t;
}

} // namespace

TEST_CASE("first packet of a TCP flow") {
  CHECK(tcp_first(SYN).state == flow_state::syn);
  CHECK(tcp_first(ACK).state == flow_state::adopted);
  CHECK(tcp_first(0).state == flow_state::adopted);
  CHECK(tcp_first(FINACK).state == flow_state::fin);
  CHECK(tcp_first(FINACK).fins == fin_from_client);
}

TEST_CASE("NAT handshake, data and close seen from both sides") {
  tcp_track t = tcp_first(SYN);
  t = tcp_next(t, SYNACK, false);
  CHECK(t.state == flow_state::syn_recv);
  t = tcp_next(t, ACK, true);
  CHECK(t.state == flow_state::established);
  t = run(t, {{ACK, true}, {ACK, false}});
  CHECK(t.state == flow_state::established);
  t = tcp_next(t, FINACK, true);
  CHECK(t.state == flow_state::fin);
  t = tcp_next(t, ACK, false);
  CHECK(t.state == flow_state::fin); // half-closed: data may still flow
  t = tcp_next(t, FINACK, false);
  CHECK(t.state == flow_state::last_ack);
  t = tcp_next(t, ACK, true);
  CHECK(t.state == flow_state::time_wait);
  CHECK(tcp_reopens(t.state, SYN));
}

TEST_CASE("a backend closing first") {
  tcp_track t = run(tcp_first(SYN), {{SYNACK, false}, {ACK, true}, {FINACK, false}});
  CHECK(t.state == flow_state::fin);
  CHECK(t.fins == fin_from_backend);
  t = tcp_next(t, FINACK, true);
  CHECK(t.state == flow_state::last_ack);
  t = tcp_next(t, ACK, false);
  CHECK(t.state == flow_state::time_wait);
}

TEST_CASE("DSR sees only the client: its ACK completes the handshake") {
  tcp_track t = run(tcp_first(SYN), {{ACK, true}});
  CHECK(t.state == flow_state::established);
  t = tcp_next(t, FINACK, true);
  CHECK(t.state == flow_state::fin);
  t = tcp_next(t, ACK, true); // the backend's FIN is invisible: stays fin
  CHECK(t.state == flow_state::fin);
}

TEST_CASE("RST closes from any state, in either direction") {
  for (auto st : {flow_state::syn, flow_state::syn_recv, flow_state::established, flow_state::fin,
                  flow_state::last_ack, flow_state::time_wait, flow_state::adopted}) {
    CHECK(tcp_next({st, 0}, RST, true).state == flow_state::closed);
    CHECK(tcp_next({st, 0}, RST | ACK, false).state == flow_state::closed);
  }
  // A closed flow stays closed until a new SYN reopens it (caller's job).
  CHECK(tcp_next({flow_state::closed, 0}, ACK, true).state == flow_state::closed);
  CHECK(tcp_reopens(flow_state::closed, SYN));
  CHECK_FALSE(tcp_reopens(flow_state::closed, SYNACK));
  CHECK_FALSE(tcp_reopens(flow_state::established, SYN));
}

TEST_CASE("adopted entries become established only when traffic continues") {
  tcp_track t = tcp_first(ACK);
  CHECK(t.state == flow_state::adopted);
  CHECK(tcp_next(t, SYN, true).state == flow_state::adopted);
  CHECK(tcp_next(t, ACK, true).state == flow_state::established);
  CHECK(tcp_next(t, ACK, false).state == flow_state::established);
}

TEST_CASE("a spoofed SYN-ACK from the client side does not answer a SYN") {
  CHECK(tcp_next(tcp_first(SYN), SYNACK, true).state == flow_state::syn);
  CHECK(tcp_next(tcp_first(SYN), SYN, true).state == flow_state::syn);
}

TEST_CASE("UDP: unanswered until a reply (NAT) or a second datagram (DSR)") {
  CHECK(udp_next(flow_state::udp_unanswered, true, true) == flow_state::udp_unanswered);
  CHECK(udp_next(flow_state::udp_unanswered, false, true) == flow_state::udp);
  CHECK(udp_next(flow_state::udp_unanswered, true, false) == flow_state::udp);
  CHECK(udp_next(flow_state::udp, true, true) == flow_state::udp);
}

TEST_CASE("timeouts per state come from the service, with built-in defaults") {
  abi::service_entry s{};
  s.timeout_syn_s = 30;
  s.timeout_est_s = 900;
  s.timeout_fin_s = 7;
  s.timeout_udp_s = 300;
  s.timeout_synrecv_s = 31;
  s.timeout_timewait_s = 8;
  s.timeout_closed_s = 2;
  s.timeout_udp_unanswered_s = 29;
  s.timeout_adopted_s = 11;
  CHECK(state_timeout_s(s, flow_state::syn, false) == 30);
  CHECK(state_timeout_s(s, flow_state::syn, true) == pressure_syn_s);
  CHECK(state_timeout_s(s, flow_state::syn_recv, false) == 31);
  CHECK(state_timeout_s(s, flow_state::established, true) == 900);
  CHECK(state_timeout_s(s, flow_state::fin, false) == 7);
  CHECK(state_timeout_s(s, flow_state::last_ack, false) == 7);
  CHECK(state_timeout_s(s, flow_state::time_wait, false) == 8);
  CHECK(state_timeout_s(s, flow_state::closed, false) == 2);
  CHECK(state_timeout_s(s, flow_state::udp, false) == 300);
  CHECK(state_timeout_s(s, flow_state::udp_unanswered, false) == 29);
  CHECK(state_timeout_s(s, flow_state::adopted, false) == 11);
  // An older writer leaves the new fields 0: defaults apply, never 0 s.
  abi::service_entry old{};
  for (size_t i = 0; i < flow_state_count; ++i)
    CHECK(state_timeout_s(old, flow_state(i), false) > 0);
  CHECK(state_timeout_s(old, flow_state::adopted, false) == flow_timeouts{}.adopted_s);
  // The largest valid timeout stays far from overflowing in milliseconds.
  CHECK(uint64_t(max_flow_timeout_s) * 1000 < (1ull << 31));
}

TEST_CASE("eviction classes and active/inactive") {
  CHECK(state_evict_class(flow_state::time_wait) == evict_class::closing);
  CHECK(state_evict_class(flow_state::closed) == evict_class::closing);
  CHECK(state_evict_class(flow_state::fin) == evict_class::closing);
  CHECK(state_evict_class(flow_state::syn) == evict_class::half_open);
  CHECK(state_evict_class(flow_state::syn_recv) == evict_class::half_open);
  CHECK(state_evict_class(flow_state::adopted) == evict_class::unconfirmed);
  CHECK(state_evict_class(flow_state::udp_unanswered) == evict_class::unconfirmed);
  CHECK(state_evict_class(flow_state::established) == evict_class::established);
  CHECK(state_evict_class(flow_state::udp) == evict_class::established);
  CHECK(evict_class::expired < evict_class::closing);
  CHECK(evict_class::unconfirmed < evict_class::established);
  CHECK(state_is_active(flow_state::established));
  CHECK(state_is_active(flow_state::syn));
  CHECK_FALSE(state_is_active(flow_state::fin));
  CHECK_FALSE(state_is_active(flow_state::time_wait));
  CHECK_FALSE(state_is_active(flow_state::closed));
  CHECK(flow_state_name(uint8_t(flow_state::time_wait)) == "time_wait");
  CHECK(flow_state_name(200) == "unknown");
}
