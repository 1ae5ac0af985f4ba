// The pure parts of sluice-pktgen (dataplane/pktgen/): frames it writes carry
// valid checksums (checked by the naive RFC 1071 sum over the bytes), stamps
// and client identities round-trip, loss is counted from sequence numbers and
// latency percentiles stay within the histogram's stated 1/16.
#include <algorithm>
#include <arpa/inet.h>
#include <catch2/catch_test_macros.hpp>
#include <cstring>
#include <random>
#include <vector>

#include "flow_space.h"
#include "frame_template.h"
#include "frame_writer.h"
#include "latency_histogram.h"
#include "run_stats.h"
#include "stamp.h"

using namespace sluice;
using namespace sluice::pktgen;

namespace {

// Folded one's complement sum of big-endian words; 0xffff means "valid".
uint16_t sum_be(const uint8_t* p, size_t n, uint32_t s = 0) {
  for (size_t i = 0; i < n; i += 2)
    s += uint32_t(p[i]) << 8 | (i + 1 < n ? p[i + 1] : 0);
  while (s >> 16)
    s = (s & 0xffff) + (s >> 16);
  return uint16_t(s);
}

bool l4_valid(const uint8_t* ip, size_t l4_len) {
  std::vector<uint8_t> pseudo(ip + 12, ip + 20);
  pseudo.push_back(0);
  pseudo.push_back(ip[9]);
  pseudo.push_back(uint8_t(l4_len >> 8));
  pseudo.push_back(uint8_t(l4_len));
  uint16_t s = sum_be(pseudo.data(), pseudo.size());
  return sum_be(ip + 20, l4_len, s) == 0xffff;
}

} // namespace

TEST_CASE("written frames have valid IPv4 and L4 checksums") {
  const uint8_t dmac[6] = {2, 0, 0, 0, 0, 1}, smac[6] = {2, 0, 0, 0, 0, 2};
  std::mt19937 rng(7);
  for (uint8_t proto : {proto_tcp, proto_udp}) {
    for (uint16_t payload :
         {uint16_t(0), uint16_t(6), uint16_t(14), uint16_t(555), uint16_t(1458)}) {
      stamp st{stamp_kind::request, 3, uint32_t(rng()), uint32_t(rng()), uint32_t(rng())};
      uint8_t head[stamp_size];
      write_stamp(head, st);
      frame_spec f;
      f.dst_mac = dmac;
      f.src_mac = smac;
      f.src_be = htonl(0xc6130000 | (rng() & 0xffff));
      f.dst_be = htonl(0xc612000a);
      f.sport = uint16_t(rng());
      f.dport = 80;
      f.proto = proto;
      f.tcp_flags = tcp_ack;
      f.seq = uint32_t(rng());
      f.ack = uint32_t(rng());
      f.head = head;
      f.head_len = uint16_t(std::min<uint32_t>(payload, stamp_size));
      f.payload_len = payload;
      std::vector<uint8_t> buf(2048, 0xee); // dirty: padding must be written
      uint32_t len = write_frame(buf.data(), f);
      REQUIRE(len == header_bytes(proto) + payload);
      const uint8_t* ip = buf.data() + eth_len;
      CHECK(sum_be(ip, 20) == 0xffff);
      CHECK(ip[8] == sent_ttl);
      CHECK(l4_valid(ip, len - eth_len - ip_len));
      parsed_packet p{};
      parse_frame(buf.data(), len, p);
      REQUIRE(p.kind == packet_kind::ip);
      CHECK(p.proto == proto);
      if (payload >= stamp_size) {
        stamp back;
        REQUIRE(read_stamp(buf.data() + header_bytes(proto), payload, back));
        CHECK(back.flow == st.flow);
        CHECK(back.seq == st.seq);
        CHECK(back.tx_ns == st.tx_ns);
        CHECK(back.kind == stamp_kind::request);
        CHECK(back.item == 3);
      }
    }
  }
}

// The template path must produce byte for byte what write_frame produces for
// the same fields (and so valid checksums), for TCP and UDP at every size.
TEST_CASE("templated frames equal frames written field by field") {
  std::mt19937_64 rng(11);
  const uint8_t dmac[6] = {2, 0, 0, 0, 0xdd, 1}, smac[6] = {2, 0, 0, 0, 0xcc, 1};
  for (uint8_t proto : {proto_tcp, proto_udp}) {
    for (uint16_t size : {64, 65, 100, 594, 1518}) {
      frame_spec f;
      f.dst_mac = dmac;
      f.src_mac = smac;
      f.proto = proto;
      f.tcp_flags = 0x10;
      f.head_len = proto == proto_tcp ? stamp_head_size : stamp_size;
      uint32_t hdr = header_bytes(proto);
      f.payload_len = uint16_t(std::max<uint32_t>(size - 4u - hdr, f.head_len));
      frame_template t(f);
      for (int k = 0; k < 200; ++k) {
        uint8_t head[stamp_size];
        for (auto& b : head)
          b = uint8_t(rng());
        frame_vars v;
        v.src_be = uint32_t(rng());
        v.dst_be = uint32_t(rng());
        v.sport = uint16_t(rng());
        v.dport = uint16_t(rng());
        v.seq = uint32_t(rng());
        v.ack = uint32_t(rng());
        v.head = head;
        std::vector<uint8_t> a(2048, 0xee), b(2048, 0);
        uint32_t la = t.write(a.data(), v);
        frame_spec g = f;
        g.src_be = v.src_be;
        g.dst_be = v.dst_be;
        g.sport = v.sport;
        g.dport = v.dport;
        g.seq = v.seq;
        g.ack = v.ack;
        g.head = head;
        uint32_t lb = std::max<uint32_t>(write_frame(b.data(), g), min_frame);
        REQUIRE(la == lb);
        auto diff = std::mismatch(a.begin(), a.begin() + la, b.begin());
        INFO("proto " << int(proto) << " size " << size << " first difference at byte "
                      << (diff.first - a.begin()));
        REQUIRE(diff.first == a.begin() + la);
        const uint8_t* ip = a.data() + eth_len;
        CHECK(sum_be(ip, ip_len) == 0xffff);
        CHECK(l4_valid(ip, size_t(ip[2] << 8 | ip[3]) - ip_len));
      }
    }
  }
}

TEST_CASE("a client cursor walks the same clients as flow_space") {
  profile p;
  p.clients_base_be = htonl(0xc6130000);
  p.clients_size = 7; // small, so the walk wraps ports quickly
  flow_space fs(p);
  for (uint64_t start : {uint64_t(0), uint64_t(5), uint64_t(7) * 64511 + 3}) {
    client_cursor c;
    c.seek(fs, start);
    for (uint64_t g = start; g < start + 50; ++g) {
      client_id want = fs.client(g), got = c.current();
      REQUIRE(got.addr_be == want.addr_be);
      REQUIRE(got.port == want.port);
      c.advance();
    }
  }
}

TEST_CASE("a stamp head is recognised only with its magic") {
  uint8_t b[stamp_size] = {};
  stamp s;
  CHECK_FALSE(read_stamp_head(b, sizeof b, s));
  write_stamp_head(b, stamp{stamp_kind::warmup, 9, 123456, 0, 0});
  REQUIRE(read_stamp_head(b, stamp_head_size, s));
  CHECK(s.kind == stamp_kind::warmup);
  CHECK(s.flow == 123456);
  CHECK_FALSE(read_stamp_head(b, stamp_head_size - 1, s));
}

TEST_CASE("client identities round-trip and stay inside the client prefix") {
  profile p;
  p.clients_base_be = htonl(0xc6130000); // 198.19.0.0/16
  p.clients_size = 65536;
  flow_space fs(p);
  for (uint64_t g : {uint64_t(0), uint64_t(1), uint64_t(65535), uint64_t(65536),
                     uint64_t(10'000'000), uint64_t(65536) * client_ports - 1}) {
    client_id c = fs.client(g);
    CHECK((ntohl(c.addr_be) >> 16) == 0xc613);
    CHECK(c.port >= client_port_base);
    uint64_t back = 0;
    REQUIRE(fs.index(c.addr_be, c.port, back));
    CHECK(back == g);
  }
  uint64_t g;
  CHECK_FALSE(fs.index(htonl(0x64400001), 2000, g)); // a spoofed source
  CHECK_FALSE(fs.index(p.clients_base_be, 80, g));   // below the client ports
}

TEST_CASE("sequence gaps count loss, late packets fill them back") {
  seq_tracker t;
  for (uint32_t s : {0u, 1u, 2u, 5u, 6u})
    t.see(s);
  CHECK(t.gaps == 2);
  t.see(3); // reordered, not lost
  CHECK(t.gaps == 1);
  CHECK(t.late == 1);
  seq_tracker w;
  w.next = 0xfffffffe; // across the 32-bit wrap
  w.see(0xfffffffe);
  w.see(0xffffffff);
  w.see(1);
  CHECK(w.gaps == 1);
}

TEST_CASE("latency percentiles stay within 1/16 above the true value") {
  latency_histogram h;
  std::vector<uint64_t> v;
  std::mt19937_64 rng(1);
  for (int i = 0; i < 100000; ++i) {
    uint64_t x = 100 + rng() % 1'000'000;
    v.push_back(x);
    h.add(x);
  }
  std::sort(v.begin(), v.end());
  for (double q : {0.5, 0.99, 0.999}) {
    uint64_t truth = v[size_t(q * double(v.size()))];
    uint64_t got = h.quantile(q);
    CHECK(got + 1 >= truth);
    CHECK(double(got) <= double(truth) * (1.0 + 1.0 / 16) + 1);
  }
  CHECK(h.quantile(1.0) == v.back());
  CHECK(h.count() == v.size());
  for (uint64_t x : {uint64_t(0), uint64_t(15), uint64_t(16), uint64_t(1) << 40})
    CHECK(latency_histogram::upper_edge(latency_histogram::bucket(x)) >= x);
}
