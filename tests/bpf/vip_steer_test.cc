// vip_steer through BPF_PROG_TEST_RUN: each case is an input frame and the
// counters it must bump. No AF_XDP socket is bound in a test run, so every
// steered packet falls back to XDP_PASS and also counts no_socket; the rule
// counters say which decision was taken. The frame is never modified.
// The maps are filled with steer_fill(), the function sluice-steer and the
// control plane use; a second fill with a smaller set checks that removed
// VIPs stop being steered.
#include <cstdio>
#include <string>
#include <vector>

#include "steer_control.h"
#include "vip_steer.skel.h"
#include "xdp_test_support.h"

using namespace sluice;
using namespace sluice::bpf;
using namespace sluice::bpf_test;

namespace {

constexpr uint16_t eth_ipv4 = 0x0800, eth_ipv6 = 0x86dd, eth_arp = 0x0806, eth_vlan = 0x8100;
constexpr uint8_t p_icmp = 1, p_tcp = 6, p_udp = 17, p_icmp6 = 58;

const char* const client4 = "203.0.113.5";
const char* const client6 = "2001:db8:c::5";

steer_set full_set() {
  steer_set s;
  s.vips = {{ip("192.0.2.10"), 80, p_tcp}, {ip("2001:db8::10"), 53, p_udp}};
  s.nat_pool = {ip("198.51.100.9")};
  s.own = {ip("198.51.100.2"), ip("2001:db8::2")};
  s.replies = {{ip("10.0.0.21"), 80, p_tcp}, {ip("fd00:10::21"), 53, p_udp}};
  // The kernel's addresses; 198.51.100.2 is also the dataplane's (own wins).
  s.host = {ip("198.51.100.50"), ip("2001:db8::50"), ip("198.51.100.2")};
  return s;
}

steer_set reduced_set() {
  steer_set s;
  s.vips = {{ip("2001:db8::10"), 53, p_udp}};
  return s;
}

struct test_case {
  std::string name;
  bytes in;
  sluice_steer_counter counter; // passed / passed_host, or the steering rule
};

std::vector<test_case> full_cases() {
  return {
      {"TCP to a VIP service", cat({eth(eth_ipv4), ipv4(client4, "192.0.2.10", p_tcp, tcp(1, 80))}),
       sluice_steer_steered_vip},
      {"TCP to a VIP address, other port",
       cat({eth(eth_ipv4), ipv4(client4, "192.0.2.10", p_tcp, tcp(1, 22))}), sluice_steer_passed},
      {"UDP to a TCP-only VIP port",
       cat({eth(eth_ipv4), ipv4(client4, "192.0.2.10", p_udp, udp(1, 80, {}))}),
       sluice_steer_passed},
      {"UDP to an IPv6 VIP service",
       cat({eth(eth_ipv6), ipv6(client6, "2001:db8::10", p_udp, udp(1, 53, {'q'}))}),
       sluice_steer_steered_vip},
      {"TCP to an IPv6 VIP address, UDP-only port",
       cat({eth(eth_ipv6), ipv6(client6, "2001:db8::10", p_tcp, tcp(1, 53))}), sluice_steer_passed},
      {"VLAN-tagged TCP to a VIP service",
       cat({eth(eth_vlan), vlan(100, eth_ipv4), ipv4(client4, "192.0.2.10", p_tcp, tcp(1, 80))}),
       sluice_steer_steered_vip},
      {"reply to a NAT-pool address",
       cat({eth(eth_ipv4), ipv4("10.0.0.11", "198.51.100.9", p_tcp, tcp(80, 40000))}),
       sluice_steer_steered_addr},
      {"dnat reply from a backend to a client",
       cat({eth(eth_ipv4), ipv4("10.0.0.21", client4, p_tcp, tcp(80, 40000))}),
       sluice_steer_steered_reply},
      {"IPv6 dnat reply from a backend to a client",
       cat({eth(eth_ipv6), ipv6("fd00:10::21", client6, p_udp, udp(53, 5353, {'a'}))}),
       sluice_steer_steered_reply},
      {"health-check SYN-ACK from a dnat backend to a host address",
       cat({eth(eth_ipv4), ipv4("10.0.0.21", "198.51.100.50", p_tcp, tcp(80, 40000))}),
       sluice_steer_passed_host},
      {"IPv6 reply from a dnat backend to a host address",
       cat({eth(eth_ipv6), ipv6("fd00:10::21", "2001:db8::50", p_udp, udp(53, 5353, {'a'}))}),
       sluice_steer_passed_host},
      {"SSH to a host address",
       cat({eth(eth_ipv4), ipv4(client4, "198.51.100.50", p_tcp, tcp(1, 22))}),
       sluice_steer_passed_host},
      {"ARP request for a host address", cat({eth(eth_arp), arp_request(client4, "198.51.100.50")}),
       sluice_steer_passed},
      {"neighbour solicitation for a host address",
       cat({eth(eth_ipv6),
            ipv6(client6, "ff02::1:ff00:50", p_icmp6, neighbour_solicitation("2001:db8::50"))}),
       sluice_steer_passed},
      {"same backend, other source port",
       cat({eth(eth_ipv4), ipv4("10.0.0.21", client4, p_tcp, tcp(22, 40000))}),
       sluice_steer_passed},
      {"ICMP to the dataplane's own address",
       cat({eth(eth_ipv4), ipv4(client4, "198.51.100.2", p_icmp, icmp_echo())}),
       sluice_steer_steered_addr},
      {"ICMP echo to a VIP address",
       cat({eth(eth_ipv4), ipv4(client4, "192.0.2.10", p_icmp, icmp_echo())}),
       sluice_steer_steered_vip_other},
      {"non-first fragment to a VIP address",
       cat({eth(eth_ipv4), ipv4(client4, "192.0.2.10", p_tcp, bytes(16, 0), 0x0010)}),
       sluice_steer_steered_vip_other},
      {"ARP request for a VIP", cat({eth(eth_arp), arp_request(client4, "192.0.2.10")}),
       sluice_steer_steered_arp_nd},
      {"ARP request for the own address", cat({eth(eth_arp), arp_request(client4, "198.51.100.2")}),
       sluice_steer_steered_arp_nd},
      {"ARP request for another host", cat({eth(eth_arp), arp_request(client4, "198.51.100.77")}),
       sluice_steer_passed},
      {"neighbour solicitation for an IPv6 VIP",
       cat({eth(eth_ipv6),
            ipv6(client6, "ff02::1:ff00:10", p_icmp6, neighbour_solicitation("2001:db8::10"))}),
       sluice_steer_steered_arp_nd},
      {"neighbour solicitation for another host",
       cat({eth(eth_ipv6),
            ipv6(client6, "ff02::1:ff00:77", p_icmp6, neighbour_solicitation("2001:db8::77"))}),
       sluice_steer_passed},
      {"SSH to the host", cat({eth(eth_ipv4), ipv4(client4, "198.51.100.1", p_tcp, tcp(1, 22))}),
       sluice_steer_passed},
      {"IPv6 to the host", cat({eth(eth_ipv6), ipv6(client6, "2001:db8::1", p_tcp, tcp(1, 22))}),
       sluice_steer_passed},
      {"LLDP-like other EtherType", cat({eth(0x88cc), bytes(32, 0)}), sluice_steer_passed},
  };
}

std::vector<test_case> reduced_cases() {
  return {
      {"removed VIP service is no longer steered",
       cat({eth(eth_ipv4), ipv4(client4, "192.0.2.10", p_tcp, tcp(1, 80))}), sluice_steer_passed},
      {"removed dnat backend is no longer steered",
       cat({eth(eth_ipv4), ipv4("10.0.0.21", client4, p_tcp, tcp(80, 40000))}),
       sluice_steer_passed},
      {"removed host address: back to the dnat reply rule's verdict",
       cat({eth(eth_ipv4), ipv4("10.0.0.21", "198.51.100.50", p_tcp, tcp(80, 40000))}),
       sluice_steer_passed},
      {"removed NAT-pool address is no longer steered",
       cat({eth(eth_ipv4), ipv4("10.0.0.11", "198.51.100.9", p_tcp, tcp(80, 40000))}),
       sluice_steer_passed},
      {"kept IPv6 VIP service is still steered",
       cat({eth(eth_ipv6), ipv6(client6, "2001:db8::10", p_udp, udp(1, 53, {'q'}))}),
       sluice_steer_steered_vip},
  };
}

void run_cases(reporter& rep, int prog, int stats, const std::vector<test_case>& cases) {
  for (const auto& c : cases) {
    auto before = read_counters(stats, sluice_steer_counter_count);
    auto r = test_run(prog, c.in);
    auto after = read_counters(stats, sluice_steer_counter_count);
    if (r.error) {
      rep.check(false, c.name + ": BPF_PROG_TEST_RUN: " + std::strerror(r.error));
      continue;
    }
    bool steered = c.counter != sluice_steer_passed && c.counter != sluice_steer_passed_host;
    bool counters_ok = true;
    for (uint32_t i = 0; i < sluice_steer_counter_count; ++i) {
      bool want = i == uint32_t(c.counter) || (steered && i == sluice_steer_no_socket);
      counters_ok &= after[i] - before[i] == (want ? 1u : 0u);
    }
    bool ok = r.verdict == XDP_PASS && r.out == c.in && counters_ok;
    rep.check(ok, c.name);
    if (!ok) {
      std::printf("  verdict %d (want XDP_PASS), frame %s\n", r.verdict,
                  r.out == c.in ? "unchanged" : "CHANGED");
      for (uint32_t i = 0; i < sluice_steer_counter_count; ++i)
        if (after[i] != before[i])
          std::printf("  counter %s +%llu\n", steer_counter_names[i],
                      (unsigned long long)(after[i] - before[i]));
      std::printf("  want counter %s +1%s\n", steer_counter_names[c.counter],
                  steered ? " and no_socket +1" : "");
    }
  }
}

} // namespace

int main() {
  vip_steer_bpf* skel = load_or_skip(vip_steer_bpf__open_and_load, "vip_steer");
  if (!skel)
    return skip_status;
  int prog = bpf_program__fd(skel->progs.vip_steer);
  int vips = bpf_map__fd(skel->maps.steer_vips);
  int replies = bpf_map__fd(skel->maps.steer_replies);
  int addrs = bpf_map__fd(skel->maps.steer_addrs);
  int stats = bpf_map__fd(skel->maps.steer_stats);

  reporter rep;
  auto st = steer_fill(vips, replies, addrs, full_set());
  rep.check(bool(st), "steer_fill with the full set" + (st ? "" : ": " + st.error_message()));
  run_cases(rep, prog, stats, full_cases());
  st = steer_fill(vips, replies, addrs, reduced_set());
  rep.check(bool(st), "steer_fill with a reduced set" + (st ? "" : ": " + st.error_message()));
  run_cases(rep, prog, stats, reduced_cases());
  vip_steer_bpf__destroy(skel);
  return rep.status();
}
