// Golden packet tests through the real worker pipeline: each case is a table
// row of (config, input packets, expected output packets, expected drop
// reason). Expected packets are built independently with packet_builder.h.
#include <catch2/catch_test_macros.hpp>
#include <functional>

#include "pipeline_harness.h"

using namespace sluice;
using namespace sluice::test;
using abi::fwd_mode;

namespace {

const ip_addr C4 = ip("198.51.100.1"), VIP4 = ip("192.0.2.10"), B4 = ip("203.0.113.11"),
              POOL4 = ip("192.0.2.200"), ENC4 = ip("172.16.0.1"), ROUTER4 = ip("198.51.100.254");
const ip_addr C6 = ip("2001:db8:c::1"), VIP6 = ip("2001:db8:f::10"), B6 = ip("2001:db8:b::11"),
              POOL6 = ip("2001:db8:f::200"), ENC6 = ip("fd00:5100::1"),
              ROUTER6 = ip("2001:db8:c::fe");
const mac_t BMAC4 = backend_mac_for(B4), BMAC6 = backend_mac_for(B6);
constexpr uint8_t SYN = 0x02, ACK = 0x10, RST = 0x04, SYNACK = 0x12;

bytes frame4(const bytes& l3, const mac_t& dst = own_mac, const mac_t& src = client_mac,
             int vlan = -1) {
  return eth(dst, src, 0x0800, l3, vlan);
}
bytes frame6(const bytes& l3, const mac_t& dst = own_mac, const mac_t& src = client_mac) {
  return eth(dst, src, 0x86dd, l3);
}
bytes payload(size_t n, uint8_t seed = 1) {
  bytes b(n);
  for (size_t i = 0; i < n; ++i)
    b[i] = uint8_t(seed + i * 7);
  return b;
}

struct step {
  bytes in;
  dp::side rx = dp::client_side;
  // Expected output, or nullopt when the packet must be dropped with `drop`.
  // With an output, `drop` names the reason counted for a packet that was
  // answered instead of forwarded (ICMP too-big).
  std::optional<bytes> out;
  dp::side out_side = dp::backend_side;
  drop_reason drop = drop_reason::count;
  // Byte offsets of the output not compared (fields derived from the flow hash).
  std::vector<size_t> ignore = {};
  std::function<void(const bytes&)> extra_check = nullptr;
};

struct packet_case {
  std::string name;
  std::vector<service_config> services;
  std::vector<step> steps;
  dp::pipeline_config cfg = default_pipeline_config();
};

service_config svc4(fwd_mode mode, uint8_t proto = 6, uint16_t bport = 8080) {
  bool dsr = mode != fwd_mode::nat && mode != fwd_mode::dnat;
  return make_service("192.0.2.10", 80, proto, mode, {{"203.0.113.11", 1}}, dsr ? 0 : bport);
}
service_config svc6(fwd_mode mode, uint8_t proto = 6, uint16_t bport = 8080) {
  bool dsr = mode != fwd_mode::nat && mode != fwd_mode::dnat;
  return make_service("2001:db8:f::10", 80, proto, mode, {{"2001:db8:b::11", 1}}, dsr ? 0 : bport);
}

// Offsets (in an untagged frame) of fields that carry the flow hash.
const std::vector<size_t> gue4_sport = {34, 35};
const std::vector<size_t> v6_flow_label = {15, 16, 17};
const std::vector<size_t> gue6_sport_csum = {15, 16, 17, 54, 55, 60, 61};

void check_udp6_checksum(const bytes& f) {
  // Recompute the outer UDP checksum of a GUE-over-IPv6 frame independently.
  ip_addr s = ip_addr::from_v6(&f[22]), d = ip_addr::from_v6(&f[38]);
  bytes l4(f.begin() + 54, f.end());
  uint16_t got = get16(l4, 6);
  put16(l4, 6, 0);
  uint16_t want = ref_checksum(l4, v6_pseudo(s, d, 17, l4.size()));
  CHECK(got == want);
  CHECK(get16(f, 54) >= 0xc000);
}

std::vector<packet_case> cases() {
  std::vector<packet_case> t;
  const bytes syn4 = ip4(C4, VIP4, 6, tcp(40000, 80, SYN));
  const bytes udp4 = ip4(C4, VIP4, 17, udp(40000, 80, payload(32)));
  const bytes syn6 = ip6(C6, VIP6, 6, tcp(40000, 80, SYN));
  const bytes udp6 = ip6(C6, VIP6, 17, udp(40000, 80, payload(32)));
  ip4_opts outer4;
  outer4.l4_csum = false; // encapsulation: the inner checksums are the payload
  ip6_opts outer6;
  outer6.l4_csum = false;

  // --- every mode, TCP and UDP, IPv4 and IPv6 ---
  for (uint8_t proto : {uint8_t(6), uint8_t(17)}) {
    bool tcp_p = proto == 6;
    const bytes& in4 = tcp_p ? syn4 : udp4;
    const bytes& in6 = tcp_p ? syn6 : udp6;
    std::string pn = tcp_p ? "tcp" : "udp";
    auto l4_nat = [&](uint16_t sport, uint16_t dport) {
      return tcp_p ? tcp(sport, dport, SYN) : udp(sport, dport, payload(32));
    };
    t.push_back({pn + " v4 nat",
                 {svc4(fwd_mode::nat, proto)},
                 {{frame4(in4), dp::client_side,
                   eth(BMAC4, own_mac, 0x0800, ip4(POOL4, B4, proto, l4_nat(1024, 8080)))}}});
    t.push_back({pn + " v4 dnat",
                 {svc4(fwd_mode::dnat, proto)},
                 {{frame4(in4), dp::client_side,
                   eth(BMAC4, own_mac, 0x0800, ip4(C4, B4, proto, l4_nat(40000, 8080)))}}});
    t.push_back({pn + " v4 dsr-l2",
                 {svc4(fwd_mode::dsr_l2, proto)},
                 {{frame4(in4), dp::client_side, eth(BMAC4, own_mac, 0x0800, in4)}}});
    t.push_back({pn + " v4 dsr-ipip (4in4)",
                 {svc4(fwd_mode::dsr_ipip, proto)},
                 {{frame4(in4), dp::client_side,
                   eth(BMAC4, own_mac, 0x0800, ip4(ENC4, B4, 4, in4, outer4))}}});
    t.push_back({pn + " v4 dsr-gue",
                 {svc4(fwd_mode::dsr_gue, proto)},
                 {{frame4(in4), dp::client_side,
                   eth(BMAC4, own_mac, 0x0800, ip4(ENC4, B4, 17, udp(0, 6080, in4), outer4)),
                   dp::backend_side, drop_reason::count, gue4_sport,
                   [](const bytes& f) { CHECK(get16(f, 34) >= 0xc000); }}}});
    t.push_back({pn + " v6 nat",
                 {svc6(fwd_mode::nat, proto)},
                 {{frame6(in6), dp::client_side,
                   eth(BMAC6, own_mac, 0x86dd, ip6(POOL6, B6, proto, l4_nat(1024, 8080)))}}});
    t.push_back({pn + " v6 dnat",
                 {svc6(fwd_mode::dnat, proto)},
                 {{frame6(in6), dp::client_side,
                   eth(BMAC6, own_mac, 0x86dd, ip6(C6, B6, proto, l4_nat(40000, 8080)))}}});
    t.push_back({pn + " v6 dsr-l2",
                 {svc6(fwd_mode::dsr_l2, proto)},
                 {{frame6(in6), dp::client_side, eth(BMAC6, own_mac, 0x86dd, in6)}}});
    t.push_back({pn + " v6 dsr-ipip (6in6)",
                 {svc6(fwd_mode::dsr_ipip, proto)},
                 {{frame6(in6), dp::client_side,
                   eth(BMAC6, own_mac, 0x86dd, ip6(ENC6, B6, 41, in6, outer6)), dp::backend_side,
                   drop_reason::count, v6_flow_label}}});
    t.push_back({pn + " v6 dsr-gue",
                 {svc6(fwd_mode::dsr_gue, proto)},
                 {{frame6(in6), dp::client_side,
                   eth(BMAC6, own_mac, 0x86dd, ip6(ENC6, B6, 17, udp(0, 6080, in6), outer6)),
                   dp::backend_side, drop_reason::count, gue6_sport_csum, check_udp6_checksum}}});
    t.push_back(
        {pn + " v4 VIP over v6 backend dsr-ipip (4in6)",
         {make_service("192.0.2.10", 80, proto, fwd_mode::dsr_ipip, {{"2001:db8:b::11", 1}})},
         {{frame4(in4), dp::client_side, eth(BMAC6, own_mac, 0x86dd, ip6(ENC6, B6, 4, in4, outer6)),
           dp::backend_side, drop_reason::count, v6_flow_label}}});
  }

  // --- replies through the balancer are translated back ---
  t.push_back(
      {"v4 nat reply translated back to the client",
       {svc4(fwd_mode::nat)},
       {{frame4(syn4), dp::client_side,
         eth(BMAC4, own_mac, 0x0800, ip4(POOL4, B4, 6, tcp(1024, 8080, SYN)))},
        {frame4(ip4(B4, POOL4, 6, tcp(8080, 1024, SYNACK, {}, 5000, 1001)), own_mac, BMAC4),
         dp::backend_side,
         eth(client_mac, own_mac, 0x0800, ip4(VIP4, C4, 6, tcp(80, 40000, SYNACK, {}, 5000, 1001))),
         dp::client_side}}});
  t.push_back(
      {"v4 dnat reply translated back to the client",
       {svc4(fwd_mode::dnat)},
       {{frame4(syn4), dp::client_side,
         eth(BMAC4, own_mac, 0x0800, ip4(C4, B4, 6, tcp(40000, 8080, SYN)))},
        {frame4(ip4(B4, C4, 6, tcp(8080, 40000, SYNACK, {}, 5000, 1001)), own_mac, BMAC4),
         dp::backend_side,
         eth(client_mac, own_mac, 0x0800, ip4(VIP4, C4, 6, tcp(80, 40000, SYNACK, {}, 5000, 1001))),
         dp::client_side}}});
  t.push_back({"v6 nat reply translated back to the client",
               {svc6(fwd_mode::nat, 17)},
               {{frame6(udp6), dp::client_side,
                 eth(BMAC6, own_mac, 0x86dd, ip6(POOL6, B6, 17, udp(1024, 8080, payload(32))))},
                {frame6(ip6(B6, POOL6, 17, udp(8080, 1024, payload(8, 9))), own_mac, BMAC6),
                 dp::backend_side,
                 eth(client_mac, own_mac, 0x86dd, ip6(VIP6, C6, 17, udp(80, 40000, payload(8, 9)))),
                 dp::client_side}}});
  t.push_back({"v6 dnat reply translated back to the client",
               {svc6(fwd_mode::dnat)},
               {{frame6(syn6), dp::client_side,
                 eth(BMAC6, own_mac, 0x86dd, ip6(C6, B6, 6, tcp(40000, 8080, SYN)))},
                {frame6(ip6(B6, C6, 6, tcp(8080, 40000, SYNACK)), own_mac, BMAC6), dp::backend_side,
                 eth(client_mac, own_mac, 0x86dd, ip6(VIP6, C6, 6, tcp(80, 40000, SYNACK))),
                 dp::client_side}}});
  t.push_back({"reply for an unknown NAT tuple is not for us",
               {svc4(fwd_mode::nat)},
               {{frame4(ip4(B4, POOL4, 6, tcp(8080, 1999, SYNACK)), own_mac, BMAC4),
                 dp::backend_side, std::nullopt, dp::client_side, drop_reason::not_for_us}}});

  // --- ICMP echo ---
  {
    ip4_opts req;
    req.ttl = 50;
    req.id = 77;
    ip4_opts rep;
    rep.id = 77;
    bytes body = payload(24, 3);
    t.push_back(
        {"icmp echo to a VIP",
         {svc4(fwd_mode::dsr_ipip)},
         {{frame4(ip4(C4, VIP4, 1, icmp(8, 0, 0x12340001, body), req)), dp::client_side,
           eth(client_mac, own_mac, 0x0800, ip4(VIP4, C4, 1, icmp(0, 0, 0x12340001, body), rep)),
           dp::client_side}}});
    t.push_back(
        {"icmp echo to an own address",
         {svc4(fwd_mode::dsr_ipip)},
         {{frame4(ip4(C4, ip("192.0.2.1"), 1, icmp(8, 0, 0x12340001, body), req)), dp::client_side,
           eth(client_mac, own_mac, 0x0800,
               ip4(ip("192.0.2.1"), C4, 1, icmp(0, 0, 0x12340001, body), rep)),
           dp::client_side}}});
    ip6_opts req6;
    req6.hlim = 50;
    t.push_back(
        {"icmpv6 echo to a VIP",
         {svc6(fwd_mode::dsr_ipip)},
         {{frame6(ip6(C6, VIP6, 58, icmp(128, 0, 0x12340001, body), req6)), dp::client_side,
           eth(client_mac, own_mac, 0x86dd, ip6(VIP6, C6, 58, icmp(129, 0, 0x12340001, body))),
           dp::client_side}}});
    t.push_back({"icmp echo to a foreign address",
                 {svc4(fwd_mode::dsr_ipip)},
                 {{frame4(ip4(C4, ip("192.0.2.99"), 1, icmp(8, 0, 1, body))), dp::client_side,
                   std::nullopt, dp::client_side, drop_reason::not_for_us}}});
  }

  // --- ICMP errors about tracked flows ---
  {
    bytes reply_quote4 = ip4(VIP4, C4, 6, tcp(80, 40000, ACK, payload(8), 5000, 1001));
    ip4_opts rtr;
    rtr.df = false;
    rtr.ttl = 250;
    bytes fragneeded4 = ip4(ROUTER4, VIP4, 1, icmp(3, 4, 1400, reply_quote4), rtr);
    t.push_back({"frag-needed about a dsr-ipip flow goes to its backend",
                 {svc4(fwd_mode::dsr_ipip)},
                 {{frame4(syn4), dp::client_side,
                   eth(BMAC4, own_mac, 0x0800, ip4(ENC4, B4, 4, syn4, outer4))},
                  {frame4(fragneeded4), dp::client_side, eth(BMAC4, own_mac, 0x0800, [&] {
                     ip4_opts o = outer4;
                     o.df = false;
                     return ip4(ENC4, B4, 4, fragneeded4, o);
                   }())}}});
    t.push_back({"frag-needed about a nat flow is translated to the backend's view",
                 {svc4(fwd_mode::nat)},
                 {{frame4(syn4), dp::client_side,
                   eth(BMAC4, own_mac, 0x0800, ip4(POOL4, B4, 6, tcp(1024, 8080, SYN)))},
                  {frame4(fragneeded4), dp::client_side,
                   eth(BMAC4, own_mac, 0x0800,
                       ip4(POOL4, B4, 1,
                           icmp(3, 4, 1400,
                                ip4(B4, POOL4, 6, tcp(8080, 1024, ACK, payload(8), 5000, 1001))),
                           rtr))}}});
    bytes sent_to_backend = ip4(POOL4, B4, 17, udp(1024, 8080, payload(32)));
    t.push_back({"port unreachable from a nat backend reaches the client in its terms",
                 {svc4(fwd_mode::nat, 17)},
                 {{frame4(udp4), dp::client_side, eth(BMAC4, own_mac, 0x0800, sent_to_backend)},
                  {frame4(ip4(B4, POOL4, 1, icmp(3, 3, 0, sent_to_backend)), own_mac, BMAC4),
                   dp::backend_side,
                   eth(client_mac, own_mac, 0x0800, ip4(VIP4, C4, 1, icmp(3, 3, 0, udp4))),
                   dp::client_side}}});
    bytes reply_quote6 = ip6(VIP6, C6, 6, tcp(80, 40000, ACK, payload(8), 5000, 1001));
    bytes ptb6 = ip6(ROUTER6, VIP6, 58, icmp(2, 0, 1400, reply_quote6));
    t.push_back({"packet-too-big about a dsr-gue v6 flow goes to its backend",
                 {svc6(fwd_mode::dsr_gue)},
                 {{frame6(syn6), dp::client_side,
                   eth(BMAC6, own_mac, 0x86dd, ip6(ENC6, B6, 17, udp(0, 6080, syn6), outer6)),
                   dp::backend_side, drop_reason::count, gue6_sport_csum, check_udp6_checksum},
                  {frame6(ptb6), dp::client_side,
                   eth(BMAC6, own_mac, 0x86dd, ip6(ENC6, B6, 17, udp(0, 6080, ptb6), outer6)),
                   dp::backend_side, drop_reason::count, gue6_sport_csum, check_udp6_checksum}}});
    t.push_back({"icmp error about an unknown flow",
                 {svc4(fwd_mode::dsr_ipip)},
                 {{frame4(fragneeded4), dp::client_side, std::nullopt, dp::client_side,
                   drop_reason::icmp_error_no_flow}}});
  }

  // --- UDP length must equal the IP payload length ---
  for (uint16_t claimed : {uint16_t(100), uint16_t(4), uint16_t(39), uint16_t(41)}) {
    // 8-byte header + 32 bytes of payload = 40 bytes of IP payload.
    auto bad_udp = [&] {
      bytes u = udp(40000, 80, payload(32));
      put16(u, 4, claimed);
      return u;
    };
    for (fwd_mode mode : {fwd_mode::nat, fwd_mode::dsr_l2}) {
      std::string n = std::string(mode == fwd_mode::nat ? "nat" : "dsr-l2") + ": udp length " +
                      std::to_string(claimed) + " in a 40-byte payload";
      t.push_back({"v4 " + n + " is dropped",
                   {svc4(mode, 17)},
                   {{frame4(ip4(C4, VIP4, 17, bad_udp())), dp::client_side, std::nullopt,
                     dp::client_side, drop_reason::udp_bad_length}}});
      t.push_back({"v6 " + n + " is dropped",
                   {svc6(mode, 17)},
                   {{frame6(ip6(C6, VIP6, 17, bad_udp())), dp::client_side, std::nullopt,
                     dp::client_side, drop_reason::udp_bad_length}}});
    }
  }

  // --- encapsulation beyond the MTU ---
  {
    bytes big4 = ip4(C4, VIP4, 6, tcp(40000, 80, ACK, payload(1470)));
    bytes quote4(big4.begin(), big4.begin() + 548);
    ip4_opts icmp_hdr;
    icmp_hdr.df = false;
    t.push_back(
        {"dsr-ipip beyond the MTU with DF gets frag-needed",
         {svc4(fwd_mode::dsr_ipip)},
         {{frame4(big4), dp::client_side,
           eth(client_mac, own_mac, 0x0800, ip4(VIP4, C4, 1, icmp(3, 4, 1480, quote4), icmp_hdr)),
           dp::client_side, drop_reason::too_big}}});
    ip4_opts nodf;
    nodf.df = false;
    t.push_back({"dsr-ipip beyond the MTU without DF is dropped and counted",
                 {svc4(fwd_mode::dsr_ipip)},
                 {{frame4(ip4(C4, VIP4, 6, tcp(40000, 80, ACK, payload(1470)), nodf)),
                   dp::client_side, std::nullopt, dp::client_side, drop_reason::too_big}}});
    bytes big6 = ip6(C6, VIP6, 6, tcp(40000, 80, ACK, payload(1450)));
    bytes quote6(big6.begin(), big6.begin() + 1232);
    ip6_opts h;
    t.push_back({"dsr-gue v6 beyond the MTU gets packet-too-big",
                 {svc6(fwd_mode::dsr_gue)},
                 {{frame6(big6), dp::client_side,
                   eth(client_mac, own_mac, 0x86dd, ip6(VIP6, C6, 58, icmp(2, 0, 1452, quote6), h)),
                   dp::client_side, drop_reason::too_big}}});
  }

  // --- what is not ours, or not servable ---
  t.push_back({"not a VIP",
               {svc4(fwd_mode::dsr_ipip)},
               {{frame4(ip4(C4, ip("192.0.2.99"), 6, tcp(40000, 80, SYN))), dp::client_side,
                 std::nullopt, dp::client_side, drop_reason::not_for_us}}});
  t.push_back({"VIP address on another port",
               {svc4(fwd_mode::dsr_ipip)},
               {{frame4(ip4(C4, VIP4, 6, tcp(40000, 81, SYN))), dp::client_side, std::nullopt,
                 dp::client_side, drop_reason::not_for_us}}});
  t.push_back(
      {"VIP whose only backend has weight 0",
       {make_service("192.0.2.10", 80, 6, fwd_mode::dsr_ipip, {{"203.0.113.11", 0}})},
       {{frame4(syn4), dp::client_side, std::nullopt, dp::client_side, drop_reason::no_backend}}});
  {
    service_config down = svc4(fwd_mode::dsr_ipip);
    down.backends[0].state = abi::backend_state::down;
    t.push_back({"VIP whose only backend is down",
                 {down},
                 {{frame4(syn4), dp::client_side, std::nullopt, dp::client_side,
                   drop_reason::no_backend}}});
  }
  t.push_back({"RST never creates a flow",
               {svc4(fwd_mode::dsr_ipip)},
               {{frame4(ip4(C4, VIP4, 6, tcp(40000, 80, RST))), dp::client_side, std::nullopt,
                 dp::client_side, drop_reason::rst_no_state}}});
  t.push_back({"full NAT needs a SYN to start a flow",
               {svc4(fwd_mode::nat)},
               {{frame4(ip4(C4, VIP4, 6, tcp(40000, 80, ACK))), dp::client_side, std::nullopt,
                 dp::client_side, drop_reason::mid_flow_no_state}}});
  t.push_back(
      {"UDP VIP does not serve TCP",
       {svc4(fwd_mode::dsr_ipip, 17)},
       {{frame4(syn4), dp::client_side, std::nullopt, dp::client_side, drop_reason::not_for_us}}});

  // --- malformed ---
  auto bad = [&](std::string name, bytes frame, drop_reason r) {
    t.push_back({name,
                 {svc4(fwd_mode::dsr_ipip)},
                 {{std::move(frame), dp::client_side, std::nullopt, dp::client_side, r}}});
  };
  {
    ip4_opts o;
    o.ihl_words = 4;
    bad("bad IHL", frame4(ip4(C4, VIP4, 6, tcp(40000, 80, SYN), o)), drop_reason::ipv4_bad_header);
    ip4_opts l;
    l.total_length = 1000;
    bad("IPv4 length beyond the frame", frame4(ip4(C4, VIP4, 6, tcp(40000, 80, SYN), l)),
        drop_reason::ipv4_bad_length);
    bad("TCP data offset below 5", frame4(ip4(C4, VIP4, 6, tcp(40000, 80, SYN, {}, 1, 0, 4))),
        drop_reason::tcp_bad_offset);
    bad("TCP data offset beyond the packet",
        frame4(ip4(C4, VIP4, 6, tcp(40000, 80, SYN, {}, 1, 0, 15))), drop_reason::tcp_bad_offset);
    bytes trunc = frame4(syn4);
    trunc.resize(14 + 20 + 10);
    bad("TCP header cut short", trunc, drop_reason::ipv4_bad_length);
    bad("runt Ethernet frame", bytes(10, 0xab), drop_reason::eth_truncated);
    bad("unknown ethertype", eth(own_mac, client_mac, 0x88cc, payload(46)),
        drop_reason::unknown_ethertype);
    ip4_opts mf;
    mf.more_fragments = true;
    bad("IPv4 first fragment", frame4(ip4(C4, VIP4, 6, tcp(40000, 80, SYN), mf)),
        drop_reason::ipv4_fragment);
    ip4_opts later;
    later.frag_offset = 185;
    later.l4_csum = false;
    bad("IPv4 later fragment", frame4(ip4(C4, VIP4, 6, payload(40), later)),
        drop_reason::ipv4_fragment);
    ip6_opts frag;
    frag.ext = bytes{6, 0, 0, 0, 0, 0, 0, 1};
    frag.ext_first_nh = 44;
    bad("IPv6 fragment header", frame6(ip6(C6, VIP6, 6, tcp(40000, 80, SYN), frag)),
        drop_reason::ipv6_fragment);
    bytes t6 = frame6(syn6);
    t6.resize(14 + 30);
    bad("IPv6 header cut short", t6, drop_reason::ipv6_truncated);
    bad("SCTP is not served", frame4(ip4(C4, VIP4, 132, payload(16))), drop_reason::unsupported_l4);
  }

  // --- header variants that must forward ---
  {
    ip4_opts opt;
    opt.options = {1, 1, 1, 0}; // NOP NOP NOP EOL
    ip4_opts opt_out = opt;
    t.push_back(
        {"IPv4 with options through nat",
         {svc4(fwd_mode::nat)},
         {{frame4(ip4(C4, VIP4, 6, tcp(40000, 80, SYN), opt)), dp::client_side,
           eth(BMAC4, own_mac, 0x0800, ip4(POOL4, B4, 6, tcp(1024, 8080, SYN), opt_out))}}});
    bytes with_opts = ip4(C4, VIP4, 6, tcp(40000, 80, SYN), opt);
    t.push_back({"IPv4 with options through dsr-ipip",
                 {svc4(fwd_mode::dsr_ipip)},
                 {{frame4(with_opts), dp::client_side,
                   eth(BMAC4, own_mac, 0x0800, ip4(ENC4, B4, 4, with_opts, outer4))}}});
    t.push_back({"VLAN-tagged through dsr-ipip keeps its tag",
                 {svc4(fwd_mode::dsr_ipip)},
                 {{frame4(syn4, own_mac, client_mac, 100), dp::client_side,
                   eth(BMAC4, own_mac, 0x0800, ip4(ENC4, B4, 4, syn4, outer4), 100)}}});
    t.push_back({"VLAN-tagged through nat",
                 {svc4(fwd_mode::nat)},
                 {{frame4(syn4, own_mac, client_mac, 7), dp::client_side,
                   eth(BMAC4, own_mac, 0x0800, ip4(POOL4, B4, 6, tcp(1024, 8080, SYN)), 7)}}});
    ip6_opts hbh;
    hbh.ext = bytes{6, 0, 1, 4, 0, 0, 0, 0}; // hop-by-hop, PadN
    hbh.ext_first_nh = 0;
    bytes v6ext = ip6(C6, VIP6, 6, tcp(40000, 80, SYN), hbh);
    t.push_back({"IPv6 hop-by-hop header is skipped",
                 {svc6(fwd_mode::dsr_l2)},
                 {{frame6(v6ext), dp::client_side, eth(BMAC6, own_mac, 0x86dd, v6ext)}}});
    bytes padded = frame4(udp4);
    padded.insert(padded.end(), 6, 0);
    t.push_back(
        {"Ethernet padding is not forwarded as payload",
         {svc4(fwd_mode::dsr_ipip, 17)},
         {{padded, dp::client_side, eth(BMAC4, own_mac, 0x0800, ip4(ENC4, B4, 4, udp4, outer4))}}});
  }

  // --- ARP / ND ---
  {
    mac_t zero{};
    mac_t bcast = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    t.push_back(
        {"ARP request for a VIP is answered",
         {svc4(fwd_mode::dsr_ipip)},
         {{eth(bcast, client_mac, 0x0806, arp(1, client_mac, C4, zero, VIP4)), dp::client_side,
           eth(client_mac, own_mac, 0x0806, arp(2, own_mac, VIP4, client_mac, C4)),
           dp::client_side}}});
    t.push_back(
        {"ARP request for an own address is answered",
         {svc4(fwd_mode::dsr_ipip)},
         {{eth(bcast, client_mac, 0x0806, arp(1, client_mac, C4, zero, ip("192.0.2.1"))),
           dp::client_side,
           eth(client_mac, own_mac, 0x0806, arp(2, own_mac, ip("192.0.2.1"), client_mac, C4)),
           dp::client_side}}});
    t.push_back({"ARP request for someone else",
                 {svc4(fwd_mode::dsr_ipip)},
                 {{eth(bcast, client_mac, 0x0806, arp(1, client_mac, C4, zero, ip("192.0.2.77"))),
                   dp::client_side, std::nullopt, dp::client_side, drop_reason::arp_not_for_us}}});
    bytes ns =
        icmp(135, 0, 0,
             concat(bytes(VIP6.bytes.begin(), VIP6.bytes.end()), bytes{1, 1, 2, 0, 0, 0, 0, 1}));
    ip6_opts nd;
    nd.hlim = 255;
    bytes na_body = concat(bytes(VIP6.bytes.begin(), VIP6.bytes.end()),
                           concat(bytes{2, 1}, bytes(own_mac.begin(), own_mac.end())));
    t.push_back({"neighbour solicitation for a VIP is answered",
                 {svc6(fwd_mode::dsr_ipip)},
                 {{frame6(ip6(C6, ip("ff02::1:ff00:10"), 58, ns, nd)), dp::client_side,
                   eth(client_mac, own_mac, 0x86dd,
                       ip6(VIP6, C6, 58, icmp(136, 0, 0x60000000, na_body), nd)),
                   dp::client_side}}});
  }
  return t;
}

} // namespace

TEST_CASE("golden packets through the worker pipeline", "[packet]") {
  for (const packet_case& c : cases()) {
    INFO("case: " << c.name);
    harness h(c.services, c.cfg);
    int n = 0;
    for (const step& s : c.steps) {
      INFO("step " << n++);
      auto before = h.drops();
      run_result r = h.run({s.in}, s.rx);
      auto after = h.drops();
      if (s.out) {
        REQUIRE(r.tx.size() == 1);
        CHECK(r.dropped == 0);
        CHECK(r.tx[0].side == s.out_side);
        bytes got = r.tx[0].data;
        bytes want = *s.out;
        for (size_t off : s.ignore)
          if (off < got.size() && off < want.size())
            got[off] = want[off] = 0;
        INFO("got:\n" << hex(got) << "\nwant:\n" << hex(want));
        CHECK(got == want);
        if (s.extra_check)
          s.extra_check(r.tx[0].data);
        // A packet answered in its place (ICMP too-big) still counts its drop.
        for (size_t i = 0; i < drop_reason_count; ++i) {
          INFO("drop reason " << drop_reason_names[i]);
          CHECK(after[i] - before[i] == (i == size_t(s.drop) ? 1u : 0u));
        }
      } else {
        CHECK(r.tx.empty());
        CHECK(r.dropped == 1);
        for (size_t i = 0; i < drop_reason_count; ++i) {
          INFO("drop reason " << drop_reason_names[i]);
          CHECK(after[i] - before[i] == (i == size_t(s.drop) ? 1u : 0u));
        }
      }
    }
  }
}

// Packets of one burst are handled in arrival order: an ICMP error right
// behind the SYN of its flow, in the same burst, finds the flow.
TEST_CASE("an icmp error after its flow's syn in the same burst reaches the backend", "[packet]") {
  const bytes syn4 = ip4(C4, VIP4, 6, tcp(40000, 80, SYN));
  ip4_opts outer4;
  outer4.l4_csum = false;
  ip4_opts rtr;
  rtr.df = false;
  bytes quote = ip4(VIP4, C4, 6, tcp(80, 40000, ACK, payload(8), 5000, 1001));
  bytes fragneeded = ip4(ROUTER4, VIP4, 1, icmp(3, 4, 1400, quote), rtr);

  SECTION("dsr-ipip: the error goes through the flow's tunnel") {
    harness h({svc4(fwd_mode::dsr_ipip)});
    run_result r = h.run({frame4(syn4), frame4(fragneeded)});
    REQUIRE(r.tx.size() == 2);
    CHECK(r.dropped == 0);
    CHECK(r.tx[0].data == eth(BMAC4, own_mac, 0x0800, ip4(ENC4, B4, 4, syn4, outer4)));
    ip4_opts o = outer4;
    o.df = false;
    CHECK(r.tx[1].side == dp::backend_side);
    CHECK(r.tx[1].data == eth(BMAC4, own_mac, 0x0800, ip4(ENC4, B4, 4, fragneeded, o)));
    CHECK(h.drop_count(drop_reason::icmp_error_no_flow) == 0);
  }
  SECTION("nat: the error is translated to the backend's view") {
    harness h({svc4(fwd_mode::nat)});
    run_result r = h.run({frame4(syn4), frame4(fragneeded)});
    REQUIRE(r.tx.size() == 2);
    CHECK(r.tx[1].side == dp::backend_side);
    CHECK(r.tx[1].data ==
          eth(BMAC4, own_mac, 0x0800,
              ip4(POOL4, B4, 1,
                  icmp(3, 4, 1400, ip4(B4, POOL4, 6, tcp(8080, 1024, ACK, payload(8), 5000, 1001))),
                  rtr)));
    CHECK(h.drop_count(drop_reason::icmp_error_no_flow) == 0);
  }
  SECTION("an error ahead of the syn finds no flow") {
    harness h({svc4(fwd_mode::dsr_ipip)});
    run_result r = h.run({frame4(fragneeded), frame4(syn4)});
    CHECK(r.tx.size() == 1);
    CHECK(h.drop_count(drop_reason::icmp_error_no_flow) == 1);
  }
}
