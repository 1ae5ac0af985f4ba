// dsr_decap through BPF_PROG_TEST_RUN: each case is a configuration, an input
// frame, the expected verdict, the exact expected output frame and the one
// counter it must bump. Configuration goes through decap_configure(), the
// function sluice-decap uses.
#include <cstdio>
#include <string>
#include <vector>

#include "decap_control.h"
#include "dsr_decap.skel.h"
#include "xdp_test_support.h"

using namespace sluice;
using namespace sluice::bpf;
using namespace sluice::bpf_test;

namespace {

constexpr uint16_t eth_ipv4 = 0x0800, eth_ipv6 = 0x86dd, eth_arp = 0x0806;
constexpr uint8_t p_ipip = 4, p_tcp = 6, p_udp = 17, p_ipv6 = 41;

const char* const local4 = "198.51.100.21";
const char* const local6 = "2001:db8:b::21";
const char* const lb4 = "172.16.3.4";
const char* const lb6 = "fd00:5100::3:4";

// The inner packets the balancer encapsulates (client → VIP).
bytes inner4() {
  return ipv4("203.0.113.5", "192.0.2.10", p_tcp, tcp(40000, 80, {'h', 'i'}));
}
bytes inner6() {
  return ipv6("2001:db8:c::5", "2001:db8::10", p_udp, udp(5353, 53, {'q'}));
}

struct test_case {
  std::string name;
  decap_settings settings;
  bytes in;
  bytes expected; // empty = unchanged
  sluice_decap_counter counter;
};

decap_settings only_local() {
  decap_settings s;
  s.local_addrs = {ip(local4), ip(local6)};
  return s;
}

decap_settings any_dst() {
  return decap_settings{};
}

std::vector<test_case> cases() {
  std::vector<test_case> t;
  auto s = only_local();
  auto gue7000 = only_local();
  gue7000.gue_port = 7000;

  t.push_back({"4in4 to a local address", s,
               cat({eth(eth_ipv4), ipv4(lb4, local4, p_ipip, inner4())}),
               cat({eth(eth_ipv4), inner4()}), sluice_decap_decap_4in4});
  t.push_back({"6in6 to a local address", s,
               cat({eth(eth_ipv6), ipv6(lb6, local6, p_ipv6, inner6())}),
               cat({eth(eth_ipv6), inner6()}), sluice_decap_decap_6in6});
  t.push_back({"4in6 to a local address", s,
               cat({eth(eth_ipv6), ipv6(lb6, local6, p_ipip, inner4())}),
               cat({eth(eth_ipv4), inner4()}), sluice_decap_decap_4in6});
  t.push_back({"6in4 to a local address", s,
               cat({eth(eth_ipv4), ipv4(lb4, local4, p_ipv6, inner6())}),
               cat({eth(eth_ipv6), inner6()}), sluice_decap_decap_6in4});
  t.push_back({"GUE over IPv4, inner IPv4, port 6080", s,
               cat({eth(eth_ipv4), ipv4(lb4, local4, p_udp, udp(0xc123, 6080, inner4()))}),
               cat({eth(eth_ipv4), inner4()}), sluice_decap_decap_gue4});
  t.push_back({"GUE over IPv4, inner IPv6", s,
               cat({eth(eth_ipv4), ipv4(lb4, local4, p_udp, udp(0xc123, 6080, inner6()))}),
               cat({eth(eth_ipv6), inner6()}), sluice_decap_decap_gue4});
  t.push_back({"GUE over IPv6, inner IPv6", s,
               cat({eth(eth_ipv6), ipv6(lb6, local6, p_udp, udp(0xc456, 6080, inner6()))}),
               cat({eth(eth_ipv6), inner6()}), sluice_decap_decap_gue6});
  t.push_back({"GUE over IPv6, inner IPv4", s,
               cat({eth(eth_ipv6), ipv6(lb6, local6, p_udp, udp(0xc456, 6080, inner4()))}),
               cat({eth(eth_ipv4), inner4()}), sluice_decap_decap_gue6});
  t.push_back({"GUE on a configured port 7000", gue7000,
               cat({eth(eth_ipv4), ipv4(lb4, local4, p_udp, udp(0xc123, 7000, inner4()))}),
               cat({eth(eth_ipv4), inner4()}), sluice_decap_decap_gue4});
  t.push_back({"UDP to 6080 when GUE is on 7000 is not GUE",
               gue7000,
               cat({eth(eth_ipv4), ipv4(lb4, local4, p_udp, udp(0xc123, 6080, inner4()))}),
               {},
               sluice_decap_not_encapsulated});
  t.push_back({"any destination when no local address is configured", any_dst(),
               cat({eth(eth_ipv4), ipv4(lb4, "192.0.2.77", p_ipip, inner4())}),
               cat({eth(eth_ipv4), inner4()}), sluice_decap_decap_4in4});

  t.push_back({"plain TCP is passed unchanged",
               s,
               cat({eth(eth_ipv4), inner4()}),
               {},
               sluice_decap_not_encapsulated});
  t.push_back({"plain IPv6 UDP is passed unchanged",
               s,
               cat({eth(eth_ipv6), inner6()}),
               {},
               sluice_decap_not_encapsulated});
  t.push_back({"ARP is passed unchanged",
               s,
               cat({eth(eth_arp), arp_request(lb4, local4)}),
               {},
               sluice_decap_not_encapsulated});

  t.push_back({"4in4 to another host",
               s,
               cat({eth(eth_ipv4), ipv4(lb4, "198.51.100.99", p_ipip, inner4())}),
               {},
               sluice_decap_refused_not_for_us});
  t.push_back({"GUE over IPv6 to another host",
               s,
               cat({eth(eth_ipv6), ipv6(lb6, "2001:db8:b::99", p_udp, udp(1, 6080, inner6()))}),
               {},
               sluice_decap_refused_not_for_us});

  bytes short_inner = inner4();
  short_inner.resize(short_inner.size() - 2); // inner total length exceeds the outer payload
  t.push_back({"4in4 with a truncated inner packet",
               s,
               cat({eth(eth_ipv4), ipv4(lb4, local4, p_ipip, short_inner)}),
               {},
               sluice_decap_refused_malformed});
  t.push_back({"proto 4 carrying IPv6",
               s,
               cat({eth(eth_ipv4), ipv4(lb4, local4, p_ipip, inner6())}),
               {},
               sluice_decap_refused_malformed});
  bytes outer = ipv4(lb4, local4, p_ipip, inner4(), 0x4000, 20 + int(inner4().size()) + 40);
  t.push_back({"outer total length beyond the frame",
               s,
               cat({eth(eth_ipv4), outer}),
               {},
               sluice_decap_refused_malformed});
  t.push_back({"6in6 with only part of the inner header",
               s,
               cat({eth(eth_ipv6), ipv6(lb6, local6, p_ipv6, bytes(20, 0x60))}),
               {},
               sluice_decap_refused_malformed});
  t.push_back({"GUE with a UDP length beyond the payload",
               s,
               [&] {
                 bytes u = udp(1, 6080, inner4());
                 put16(u, 4, uint16_t(u.size() + 8));
                 return cat({eth(eth_ipv4), ipv4(lb4, local4, p_udp, u)});
               }(),
               {},
               sluice_decap_refused_malformed});

  t.push_back({"GUE variant 0 (GUE header)",
               s,
               cat({eth(eth_ipv4),
                    ipv4(lb4, local4, p_udp, udp(1, 6080, cat({bytes{0, 4, 0, 0}, inner4()})))}),
               {},
               sluice_decap_refused_unsupported});
  t.push_back({"IPIP fragment",
               s,
               cat({eth(eth_ipv4), ipv4(lb4, local4, p_ipip, inner4(), 0x2000)}),
               {},
               sluice_decap_refused_unsupported});
  return t;
}

} // namespace

int main() {
  dsr_decap_bpf* skel = load_or_skip(dsr_decap_bpf__open_and_load, "dsr_decap");
  if (!skel)
    return skip_status;
  int prog = bpf_program__fd(skel->progs.dsr_decap);
  int config = bpf_map__fd(skel->maps.decap_config);
  int addrs = bpf_map__fd(skel->maps.decap_addrs);
  int stats = bpf_map__fd(skel->maps.decap_stats);

  reporter rep;
  for (const auto& c : cases()) {
    if (auto st = decap_configure(config, addrs, c.settings); !st) {
      rep.check(false, c.name + ": configure: " + st.error_message());
      continue;
    }
    auto before = read_counters(stats, sluice_decap_counter_count);
    auto r = test_run(prog, c.in);
    auto after = read_counters(stats, sluice_decap_counter_count);
    if (r.error) {
      rep.check(false, c.name + ": BPF_PROG_TEST_RUN: " + std::strerror(r.error));
      continue;
    }
    const bytes& want = c.expected.empty() ? c.in : c.expected;
    bool counters_ok = true;
    for (uint32_t i = 0; i < sluice_decap_counter_count; ++i)
      counters_ok &= after[i] - before[i] == (i == uint32_t(c.counter) ? 1u : 0u);
    bool ok = r.verdict == XDP_PASS && r.out == want && counters_ok;
    rep.check(ok, c.name);
    if (!ok) {
      std::printf("  verdict %d (want XDP_PASS)\n  got:  %s\n  want: %s\n", r.verdict,
                  hex(r.out).c_str(), hex(want).c_str());
      for (uint32_t i = 0; i < sluice_decap_counter_count; ++i)
        if (after[i] != before[i] || i == uint32_t(c.counter))
          std::printf("  counter %s +%llu%s\n", decap_counter_names[i],
                      (unsigned long long)(after[i] - before[i]),
                      i == uint32_t(c.counter) ? " (want +1)" : " (want +0)");
    }
  }
  dsr_decap_bpf__destroy(skel);
  return rep.status();
}
