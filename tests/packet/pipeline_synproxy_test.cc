// Synproxy through the real worker pipeline: the cookie SYN-ACK (no state),
// the cookie ACK that opens the backend side, the backend's SYN-ACK answered
// by the balancer, sequence numbers shifted both ways with valid checksums,
// forged ACKs refused, `auto` switching on with the SYN rate, and a SYN flood
// that creates no state at all while established flows and new handshakes
// carry on.
#include <arpa/inet.h>
#include <catch2/catch_test_macros.hpp>
#include <map>

#include "pipeline_harness.h"

using namespace sluice;
using namespace sluice::test;
using abi::fwd_mode;

namespace {

const ip_addr VIP4 = test::ip("192.0.2.10"), POOL4 = test::ip("192.0.2.200"),
              B4 = test::ip("203.0.113.11"), C4 = test::ip("198.51.100.7");
const ip_addr VIP6 = test::ip("2001:db8:f::10"), B6 = test::ip("2001:db8:b::11"),
              C6 = test::ip("2001:db8:c::7");
constexpr uint8_t SYN = 0x02, ACK = 0x10, RST = 0x04, PSH = 0x08;

// TCP header with options (MSS 1460, SACK permitted, window scale 7).
bytes tcp_syn_opts(uint16_t sport, uint16_t dport, uint32_t seq) {
  bytes t = tcp(sport, dport, SYN, {}, seq, 0, 8);
  bytes opts = {2, 4, 0x05, 0xb4, 4, 2, 1, 3, 3, 7, 1, 1};
  return concat(t, opts);
}

struct seg {
  uint16_t sport, dport;
  uint32_t seq, ack;
  uint8_t flags;
  uint16_t window;
  bytes options, payload;
};

// Reads the TCP segment of an untagged v4 or v6 frame and checks its IP and
// TCP checksums independently.
seg read_seg(const bytes& f) {
  bool v6 = get16(f, 12) == 0x86dd;
  size_t l3 = 14, l4 = v6 ? 54 : 34;
  REQUIRE(f.size() >= l4 + 20);
  size_t ip_end = v6 ? l4 + get16(f, l3 + 4) : l3 + get16(f, l3 + 2);
  REQUIRE(ip_end <= f.size());
  bytes t(f.begin() + long(l4), f.begin() + long(ip_end));
  uint32_t pseudo =
      v6 ? v6_pseudo(ip_addr::from_v6(&f[22]), ip_addr::from_v6(&f[38]), 6, t.size()) : [&] {
        uint32_t s, d;
        std::memcpy(&s, &f[26], 4);
        std::memcpy(&d, &f[30], 4);
        return v4_pseudo(ip_addr::from_v4_be(s), ip_addr::from_v4_be(d), 6, t.size());
      }();
  CHECK(ref_checksum(t, pseudo) == 0);
  if (!v6) {
    bytes h(f.begin() + 14, f.begin() + 34);
    CHECK(ref_checksum(h) == 0);
  }
  seg s;
  s.sport = get16(t, 0);
  s.dport = get16(t, 2);
  s.seq = uint32_t(get16(t, 4)) << 16 | get16(t, 6);
  s.ack = uint32_t(get16(t, 8)) << 16 | get16(t, 10);
  s.flags = t[13];
  s.window = get16(t, 14);
  size_t doff = size_t(t[12] >> 4) * 4;
  s.options.assign(t.begin() + 20, t.begin() + long(doff));
  s.payload.assign(t.begin() + long(doff), t.end());
  return s;
}

bytes c4(uint16_t sport, uint8_t flags, uint32_t seq, uint32_t ack, const bytes& data = {},
         const ip_addr& client = C4) {
  return eth(own_mac, client_mac, 0x0800,
             ip4(client, VIP4, 6, tcp(sport, 80, flags, data, seq, ack)));
}

service_config proxied_nat() {
  service_config s = make_service("192.0.2.10", 80, 6, fwd_mode::nat, {{"203.0.113.11", 1}}, 8080);
  s.defence.synproxy = abi::synproxy_mode::on;
  return s;
}

} // namespace

TEST_CASE("nat synproxy: cookie handshake, backend opened, sequence numbers shifted both ways",
          "[synproxy]") {
  harness h({proxied_nat()});
  const uint32_t isn = 0xfffffff0u; // wraps during the connection
  // 1. SYN: answered from the VIP with a cookie; nothing kept.
  run_result r =
      h.run({eth(own_mac, client_mac, 0x0800, ip4(C4, VIP4, 6, tcp_syn_opts(40000, 80, isn)))});
  REQUIRE(r.tx.size() == 1);
  CHECK(r.tx[0].side == dp::client_side);
  bytes& sa = r.tx[0].data;
  CHECK(bytes(sa.begin(), sa.begin() + 12) ==
        concat(bytes(client_mac.begin(), client_mac.end()), bytes(own_mac.begin(), own_mac.end())));
  CHECK(ip_addr::from_v4_be([&] {
          uint32_t a;
          std::memcpy(&a, &sa[26], 4);
          return a;
        }()) == VIP4);
  seg synack = read_seg(sa);
  CHECK(synack.sport == 80);
  CHECK(synack.dport == 40000);
  CHECK(synack.flags == (SYN | ACK));
  CHECK(synack.ack == isn + 1);
  CHECK(synack.window == 65535);
  CHECK(synack.options == bytes{2, 4, 0x05, 0xb4}); // MSS 1460 only: no WS, SACK, TS
  CHECK(synack.payload.empty());
  const uint32_t cookie = synack.seq;
  CHECK(h.counter(worker_counter::syn_cookies_sent) == 1);
  CHECK(h.counter(worker_counter::flows_active) == 0);

  // 2. The client's ACK (with data, which is dropped): our SYN to the backend.
  r = h.run({c4(40000, ACK | PSH, isn + 1, cookie + 1, bytes(5, 'x'))});
  REQUIRE(r.tx.size() == 1);
  CHECK(r.tx[0].side == dp::backend_side);
  seg bsyn = read_seg(r.tx[0].data);
  CHECK(bsyn.flags == SYN);
  CHECK(bsyn.seq == isn);
  CHECK(bsyn.dport == 8080);
  CHECK(bsyn.options == bytes{2, 4, 0x05, 0xb4}); // the client's MSS, from the cookie
  CHECK(bsyn.payload.empty());
  const uint16_t local = bsyn.sport;
  CHECK(h.counter(worker_counter::syn_cookies_valid) == 1);
  CHECK(h.counter(worker_counter::flows_active) == 1);
  auto from_b = [&](uint8_t flags, uint32_t seq, uint32_t ack, const bytes& data = {}) {
    return eth(own_mac, backend_mac_for(B4), 0x0800,
               ip4(B4, POOL4, 6, tcp(8080, local, flags, data, seq, ack)));
  };
  // Client data before the backend answered: dropped and counted.
  CHECK(h.run({c4(40000, ACK, isn + 1, cookie + 1, bytes(3, 'y'))}).dropped == 1);
  CHECK(h.drop_count(drop_reason::synproxy_pending) == 1);

  // 3. The backend's SYN-ACK: acknowledged by the balancer, not forwarded.
  const uint32_t bisn = 7000;
  r = h.run({from_b(SYN | ACK, bisn, isn + 1)}, dp::backend_side);
  REQUIRE(r.tx.size() == 1);
  CHECK(r.tx[0].side == dp::backend_side);
  const mac_t bmac = backend_mac_for(B4);
  CHECK(bytes(r.tx[0].data.begin(), r.tx[0].data.begin() + 6) == bytes(bmac.begin(), bmac.end()));
  seg back = read_seg(r.tx[0].data);
  CHECK(back.flags == ACK);
  CHECK(back.sport == local);
  CHECK(back.dport == 8080);
  CHECK(back.seq == isn + 1);
  CHECK(back.ack == bisn + 1);

  // 4. Data both ways: the client's ACK numbers move to the backend's space,
  //    the backend's sequence numbers to ours; payloads untouched.
  r = h.run({c4(40000, ACK | PSH, isn + 1, cookie + 1, bytes(10, 'a'))});
  REQUIRE(r.tx.size() == 1);
  seg up = read_seg(r.tx[0].data);
  CHECK(up.seq == isn + 1);
  CHECK(up.ack == bisn + 1);
  CHECK(up.payload == bytes(10, 'a'));
  r = h.run({from_b(ACK | PSH, bisn + 1, isn + 11, bytes(7, 'b'))}, dp::backend_side);
  REQUIRE(r.tx.size() == 1);
  CHECK(r.tx[0].side == dp::client_side);
  seg down = read_seg(r.tx[0].data);
  CHECK(down.sport == 80);
  CHECK(down.dport == 40000);
  CHECK(down.seq == cookie + 1);
  CHECK(down.ack == isn + 11);
  CHECK(down.payload == bytes(7, 'b'));
  // 5. The backend's FIN keeps its shifted sequence number.
  r = h.run({from_b(ACK | 0x01, bisn + 8, isn + 11)}, dp::backend_side);
  REQUIRE(r.tx.size() == 1);
  CHECK(read_seg(r.tx[0].data).seq == cookie + 8);
}

TEST_CASE("synproxy refuses forged ACKs and counts them; RST from the backend reaches the client",
          "[synproxy]") {
  harness h({proxied_nat()});
  CHECK(h.run({c4(40001, ACK, 1001, 12345)}).dropped == 1);
  CHECK(h.drop_count(drop_reason::syn_cookie_invalid) == 1);
  CHECK(h.counter(worker_counter::flows_active) == 0);
  // A real handshake whose backend refuses.
  run_result r = h.run({c4(40002, SYN, 500, 0)});
  REQUIRE(r.tx.size() == 1);
  uint32_t cookie = read_seg(r.tx[0].data).seq;
  r = h.run({c4(40002, ACK, 501, cookie + 1)});
  REQUIRE(r.tx.size() == 1);
  uint16_t local = read_seg(r.tx[0].data).sport;
  r = h.run({eth(own_mac, backend_mac_for(B4), 0x0800,
                 ip4(B4, POOL4, 6, tcp(8080, local, RST | ACK, {}, 0, 501)))},
            dp::backend_side);
  REQUIRE(r.tx.size() == 1);
  CHECK(r.tx[0].side == dp::client_side);
  seg rst = read_seg(r.tx[0].data);
  CHECK(rst.flags == (RST | ACK));
  CHECK(rst.seq == cookie + 1); // inside the client's window
  CHECK(rst.dport == 40002);
}

TEST_CASE("dnat over IPv6 through synproxy", "[synproxy]") {
  service_config s =
      make_service("2001:db8:f::10", 80, 6, fwd_mode::dnat, {{"2001:db8:b::11", 1}}, 8080);
  s.defence.synproxy = abi::synproxy_mode::on;
  harness h({s});
  auto c6 = [&](uint8_t flags, uint32_t seq, uint32_t ack, const bytes& d = {}) {
    return eth(own_mac, client_mac, 0x86dd, ip6(C6, VIP6, 6, tcp(50000, 80, flags, d, seq, ack)));
  };
  run_result r = h.run({c6(SYN, 100, 0)});
  REQUIRE(r.tx.size() == 1);
  seg sa = read_seg(r.tx[0].data);
  CHECK(sa.options == bytes{2, 4, 0x05, 0xa0}); // 1500 - 60
  r = h.run({c6(ACK, 101, sa.seq + 1)});
  REQUIRE(r.tx.size() == 1);
  seg bs = read_seg(r.tx[0].data);
  CHECK(bs.flags == SYN);
  CHECK(bs.sport == 50000);                     // dnat: the client's own port
  CHECK(bs.options == bytes{2, 4, 0x02, 0x18}); // no MSS option from the client: 536
  auto b6 = [&](uint8_t flags, uint32_t seq, uint32_t ack, const bytes& d = {}) {
    return eth(own_mac, backend_mac_for(B6), 0x86dd,
               ip6(B6, C6, 6, tcp(8080, 50000, flags, d, seq, ack)));
  };
  r = h.run({b6(SYN | ACK, 9000, 101)}, dp::backend_side);
  REQUIRE(r.tx.size() == 1);
  CHECK(read_seg(r.tx[0].data).ack == 9001);
  r = h.run({b6(ACK, 9001, 101, bytes(4, 'z'))}, dp::backend_side);
  REQUIRE(r.tx.size() == 1);
  CHECK(read_seg(r.tx[0].data).seq == sa.seq + 1);
  r = h.run({c6(ACK, 101, sa.seq + 5)});
  REQUIRE(r.tx.size() == 1);
  CHECK(read_seg(r.tx[0].data).ack == 9005);
}

TEST_CASE("synproxy auto: cookies once the SYN rate passes the threshold", "[synproxy]") {
  service_config s = proxied_nat();
  s.defence.synproxy = abi::synproxy_mode::automatic;
  s.defence.synproxy_syn_rate = 5;
  s.defence.synproxy_half_open = 1000;
  harness h({s});
  uint32_t to_backend = 0, cookies = 0;
  for (uint16_t i = 0; i < 10; ++i) {
    run_result r = h.run({c4(uint16_t(41000 + i), SYN, 1, 0)});
    REQUIRE(r.tx.size() == 1);
    (r.tx[0].side == dp::backend_side ? to_backend : cookies)++;
  }
  CHECK(to_backend == 5);
  CHECK(cookies == 5);
  // Still on within 10 s, off after a quiet period.
  CHECK(h.run({c4(42000, SYN, 1, 0)}, dp::client_side, 5).tx[0].side == dp::client_side);
  CHECK(h.run({c4(42001, SYN, 1, 0)}, dp::client_side, 30).tx[0].side == dp::backend_side);
  // An ACK without state while auto is off is an ordinary mid-flow packet (RST).
  run_result r = h.run({c4(42002, ACK, 1, 1)}, dp::client_side, 30);
  REQUIRE(r.tx.size() == 1);
  CHECK(read_seg(r.tx[0].data).flags == RST);
}

TEST_CASE("SYN flood with cookies on: no state, established flows keep their backends, new "
          "connections succeed",
          "[synproxy]") {
  service_config s = make_service(
      "192.0.2.10", 80, 6, fwd_mode::nat,
      {{"203.0.113.11", 1}, {"203.0.113.12", 1}, {"203.0.113.13", 1}, {"203.0.113.14", 1}}, 8080);
  dp::pipeline_config cfg = default_pipeline_config();
  cfg.flow_capacity = 1024;
  harness h({s}, cfg);
  // 400 established connections (no synproxy yet).
  std::map<uint16_t, std::pair<bytes, uint16_t>> est; // client port -> (backend MAC, local port)
  for (uint16_t i = 0; i < 400; ++i) {
    uint16_t port = uint16_t(20000 + i);
    run_result r = h.run({c4(port, SYN, 1, 0)});
    REQUIRE(r.tx.size() == 1);
    bytes mac(r.tx[0].data.begin(), r.tx[0].data.begin() + 6);
    uint16_t local = read_seg(r.tx[0].data).sport;
    ip_addr b = ip_addr::from_v4_be([&] {
      uint32_t a;
      std::memcpy(&a, &r.tx[0].data[30], 4);
      return a;
    }());
    REQUIRE(h.run({eth(own_mac, backend_mac_for(b), 0x0800,
                       ip4(b, POOL4, 6, tcp(8080, local, SYN | ACK, {}, 50, 2)))},
                  dp::backend_side)
                .tx.size() == 1);
    REQUIRE(h.run({c4(port, ACK, 2, 51)}).tx.size() == 1);
    est[port] = {mac, local};
  }
  REQUIRE(h.counter(worker_counter::flows_active) == 400);
  // Cookies on; 100,000 spoofed SYNs from random sources.
  s.defence.synproxy = abi::synproxy_mode::on;
  h.publish({s});
  uint32_t x = 12345;
  std::vector<bytes> burst;
  uint64_t answered = 0;
  for (int i = 0; i < 100000; ++i) {
    x = x * 1103515245u + 12345u;
    burst.push_back(
        c4(uint16_t(x >> 8), SYN, x, 0, {}, ip_addr::from_v4_be(htonl(0x0a000000u | (x >> 8)))));
    if (burst.size() == 64 || i == 99999) {
      run_result r = h.run(burst, dp::client_side, 1);
      answered += r.tx.size();
      burst.clear();
    }
  }
  CHECK(answered == 100000);
  CHECK(h.counter(worker_counter::flows_active) == 400); // no state at all
  CHECK(h.counter(worker_counter::syn_cookies_sent) == 100000);
  // Every established flow still reaches its backend with its local port.
  for (auto& [port, v] : est) {
    run_result r = h.run({c4(port, ACK | PSH, 2, 51, bytes(3, 'q'))}, dp::client_side, 2);
    REQUIRE(r.tx.size() == 1);
    CHECK(bytes(r.tx[0].data.begin(), r.tx[0].data.begin() + 6) == v.first);
    CHECK(read_seg(r.tx[0].data).sport == v.second);
  }
  // 100 new connections through the cookie handshake.
  uint32_t ok = 0;
  for (uint16_t i = 0; i < 100; ++i) {
    uint16_t port = uint16_t(30000 + i);
    run_result r = h.run({c4(port, SYN, 1, 0)}, dp::client_side, 3);
    REQUIRE(r.tx.size() == 1);
    uint32_t cookie = read_seg(r.tx[0].data).seq;
    r = h.run({c4(port, ACK, 2, cookie + 1)}, dp::client_side, 3);
    REQUIRE(r.tx.size() == 1);
    seg bs = read_seg(r.tx[0].data);
    ip_addr b = ip_addr::from_v4_be([&] {
      uint32_t a;
      std::memcpy(&a, &r.tx[0].data[30], 4);
      return a;
    }());
    r = h.run({eth(own_mac, backend_mac_for(b), 0x0800,
                   ip4(b, POOL4, 6, tcp(8080, bs.sport, SYN | ACK, {}, 900, 2)))},
              dp::backend_side, 3);
    ok += r.tx.size() == 1 && read_seg(r.tx[0].data).flags == ACK;
  }
  CHECK(ok == 100);
  CHECK(h.counter(worker_counter::flows_active) == 500);
}
