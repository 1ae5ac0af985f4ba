// Support for the XDP packet tests: frame builders (Ethernet, ARP, IPv4, IPv6,
// UDP, TCP, ICMP; valid IPv4 header checksums, L4 checksums left zero since the
// programs under test never read them), a BPF_PROG_TEST_RUN wrapper and a tiny
// check/report layer. The tests need root (CAP_BPF + CAP_NET_ADMIN) and skip
// with exit status 77 otherwise.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <string>
#include <unistd.h>
#include <vector>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "ip_addr.h"

namespace sluice::bpf_test {

using bytes = std::vector<uint8_t>;
constexpr int skip_status = 77;

inline bytes cat(std::initializer_list<bytes> parts) {
  bytes out;
  for (const auto& p : parts)
    out.insert(out.end(), p.begin(), p.end());
  return out;
}

inline void put16(bytes& b, size_t at, uint16_t v) {
  b[at] = uint8_t(v >> 8);
  b[at + 1] = uint8_t(v);
}

inline const uint8_t mac_a[6] = {0x02, 0, 0, 0, 0, 0xaa};
inline const uint8_t mac_b[6] = {0x02, 0, 0, 0, 0, 0xbb};

inline bytes eth(uint16_t type) {
  bytes b(14);
  std::memcpy(&b[0], mac_b, 6);
  std::memcpy(&b[6], mac_a, 6);
  put16(b, 12, type);
  return b;
}

inline bytes vlan(uint16_t vid, uint16_t inner_type) {
  bytes b(4);
  put16(b, 0, vid);
  put16(b, 2, inner_type);
  return b;
}

inline ip_addr ip(const char* text) {
  auto a = parse_ip(text);
  if (!a) {
    std::fprintf(stderr, "bad address in test: %s\n", text);
    std::abort();
  }
  return *a;
}

// IPv4 header + payload; frag_off_field is the raw flags/offset field.
inline bytes ipv4(const char* src, const char* dst, uint8_t proto, const bytes& payload,
                  uint16_t frag_off_field = 0x4000, int tot_len_override = -1) {
  bytes h(20);
  h[0] = 0x45;
  put16(h, 2, tot_len_override >= 0 ? uint16_t(tot_len_override) : uint16_t(20 + payload.size()));
  put16(h, 4, 0x1234);
  put16(h, 6, frag_off_field);
  h[8] = 64;
  h[9] = proto;
  std::memcpy(&h[12], ip(src).v4_ptr(), 4);
  std::memcpy(&h[16], ip(dst).v4_ptr(), 4);
  uint32_t sum = 0;
  for (size_t i = 0; i < 20; i += 2)
    sum += uint32_t(h[i] << 8 | h[i + 1]);
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  put16(h, 10, uint16_t(~sum));
  return cat({h, payload});
}

inline bytes ipv6(const char* src, const char* dst, uint8_t next, const bytes& payload) {
  bytes h(40);
  h[0] = 0x60;
  put16(h, 4, uint16_t(payload.size()));
  h[6] = next;
  h[7] = 64;
  std::memcpy(&h[8], ip(src).bytes.data(), 16);
  std::memcpy(&h[24], ip(dst).bytes.data(), 16);
  return cat({h, payload});
}

inline bytes udp(uint16_t sport, uint16_t dport, const bytes& payload) {
  bytes h(8);
  put16(h, 0, sport);
  put16(h, 2, dport);
  put16(h, 4, uint16_t(8 + payload.size()));
  return cat({h, payload});
}

inline bytes tcp(uint16_t sport, uint16_t dport, const bytes& payload = {}) {
  bytes h(20);
  put16(h, 0, sport);
  put16(h, 2, dport);
  h[12] = 0x50;
  h[13] = 0x02; // SYN
  put16(h, 14, 65535);
  return cat({h, payload});
}

inline bytes icmp_echo() {
  return bytes{8, 0, 0, 0, 0, 1, 0, 1, 'p', 'i', 'n', 'g'};
}

inline bytes arp_request(const char* sender, const char* target) {
  bytes b(28);
  put16(b, 0, 1);      // Ethernet
  put16(b, 2, 0x0800); // IPv4
  b[4] = 6;
  b[5] = 4;
  put16(b, 6, 1); // request
  std::memcpy(&b[8], mac_a, 6);
  std::memcpy(&b[14], ip(sender).v4_ptr(), 4);
  std::memcpy(&b[24], ip(target).v4_ptr(), 4);
  return b;
}

inline bytes neighbour_solicitation(const char* target) {
  bytes b(24);
  b[0] = 135;
  std::memcpy(&b[8], ip(target).bytes.data(), 16);
  return b;
}

struct run_result {
  int verdict = -1;
  bytes out;
  int error = 0;
};

inline run_result test_run(int prog_fd, const bytes& in) {
  run_result r;
  r.out.resize(in.size() + 256);
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in.data(), .data_out = r.out.data(),
              .data_size_in = uint32_t(in.size()), .data_size_out = uint32_t(r.out.size()),
              .repeat = 1);
  if (bpf_prog_test_run_opts(prog_fd, &opts)) {
    r.error = errno;
    return r;
  }
  r.verdict = int(opts.retval);
  r.out.resize(opts.data_size_out);
  return r;
}

inline std::vector<uint64_t> read_counters(int map_fd, uint32_t count) {
  int cpus = libbpf_num_possible_cpus();
  std::vector<uint64_t> sums(count);
  std::vector<uint64_t> per_cpu(static_cast<size_t>(cpus > 0 ? cpus : 1));
  for (uint32_t i = 0; i < count; ++i) {
    if (bpf_map_lookup_elem(map_fd, &i, per_cpu.data()) == 0)
      for (auto v : per_cpu)
        sums[i] += v;
  }
  return sums;
}

inline std::string hex(const bytes& b) {
  std::string s;
  char buf[4];
  for (size_t i = 0; i < b.size(); ++i) {
    std::snprintf(buf, sizeof(buf), "%02x", b[i]);
    s += buf;
    if (i + 1 < b.size())
      s += (i % 16 == 15) ? "\n      " : " ";
  }
  return s;
}

// Counts failures; prints one line per check.
struct reporter {
  int failures = 0;
  void check(bool ok, const std::string& what) {
    std::printf("%s: %s\n", ok ? "ok" : "FAIL", what.c_str());
    if (!ok)
      ++failures;
  }
  int status() const {
    std::printf("%s (%d failures)\n", failures ? "FAILED" : "PASSED", failures);
    return failures ? 1 : 0;
  }
};

// Returns a reason when this process cannot load BPF programs, else empty.
inline std::string cannot_load_bpf() {
  if (geteuid() != 0)
    return "not root (loading BPF programs needs CAP_BPF and CAP_NET_ADMIN)";
  return {};
}

// Opens and loads a program's skeleton (`open_and_load` is the bpftool-generated
// NAME__open_and_load), or prints why BPF tests cannot run here and returns
// nullptr: the caller exits with skip_status.
template <typename Skel> Skel* load_or_skip(Skel* (*open_and_load)(), const char* name) {
  if (auto why = cannot_load_bpf(); !why.empty()) {
    std::printf("SKIP: %s\n", why.c_str());
    return nullptr;
  }
  libbpf_set_print(nullptr);
  Skel* skel = open_and_load();
  if (!skel)
    std::printf("SKIP: cannot load %s (%s): BPF unavailable\n", name, std::strerror(errno));
  return skel;
}

} // namespace sluice::bpf_test
