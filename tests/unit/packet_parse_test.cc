// Header parsing never trusts a length field: every malformed frame gets its
// own drop reason, and every accepted frame's offsets lie inside the frame.
#include <catch2/catch_test_macros.hpp>
#include <random>
#include <vector>

#include "packet_parse.h"

using namespace sluice;

namespace {

std::vector<uint8_t> eth_ipv4_tcp(uint8_t ihl_words = 5, uint16_t total = 40, uint8_t doff = 5) {
  std::vector<uint8_t> f(14 + 40, 0);
  f[12] = 0x08;
  f[13] = 0x00;
  uint8_t* ip = f.data() + 14;
  ip[0] = uint8_t(0x40 | ihl_words);
  ip[2] = uint8_t(total >> 8);
  ip[3] = uint8_t(total);
  ip[6] = 0x40; // DF
  ip[9] = 6;
  uint8_t* tcp = ip + 20;
  tcp[0] = 0x1f;
  tcp[1] = 0x90; // sport 8080
  tcp[3] = 80;
  tcp[12] = uint8_t(doff << 4);
  tcp[13] = 0x02;
  return f;
}

} // namespace

TEST_CASE("a well-formed IPv4 TCP frame") {
  auto f = eth_ipv4_tcp();
  parsed_packet p;
  parse_frame(f.data(), uint32_t(f.size()), p);
  REQUIRE(p.kind == packet_kind::ip);
  CHECK(p.family == 4);
  CHECK(p.proto == 6);
  CHECK(p.l3_off == 14);
  CHECK(p.l4_off == 34);
  CHECK(p.l3_len == 40);
  CHECK(p.l4_len == 20);
  CHECK(p.tcp_flags == 0x02);
  CHECK(p.ipv4_df == 1);
  CHECK(load_be16(reinterpret_cast<const uint8_t*>(&p.sport)) == 8080);
}

TEST_CASE("malformed IPv4/TCP frames are named") {
  struct row {
    std::vector<uint8_t> frame;
    drop_reason want;
  };
  std::vector<row> rows = {
      {eth_ipv4_tcp(4), drop_reason::ipv4_bad_header},
      {eth_ipv4_tcp(5, 1000), drop_reason::ipv4_bad_length},
      {eth_ipv4_tcp(5, 19), drop_reason::ipv4_bad_length},
      {eth_ipv4_tcp(15, 40), drop_reason::ipv4_bad_length}, // header beyond the packet
      {eth_ipv4_tcp(5, 40, 4), drop_reason::tcp_bad_offset},
      {eth_ipv4_tcp(5, 30), drop_reason::l4_truncated},
      {std::vector<uint8_t>(13, 0), drop_reason::eth_truncated},
  };
  auto v = eth_ipv4_tcp();
  v[14] = 0x65; // version 6 in an IPv4 frame
  rows.push_back({v, drop_reason::ipv4_bad_header});
  for (auto& r : rows) {
    parsed_packet p;
    parse_frame(r.frame.data(), uint32_t(r.frame.size()), p);
    CHECK(p.kind == packet_kind::drop);
    CHECK(drop_reason_names[size_t(p.reason)] == drop_reason_names[size_t(r.want)]);
  }
}

TEST_CASE("random bytes never yield offsets outside the frame") {
  std::mt19937 rng(7);
  int accepted = 0;
  for (int i = 0; i < 200000; ++i) {
    size_t n = rng() % 120;
    std::vector<uint8_t> f(n);
    for (auto& b : f)
      b = uint8_t(rng());
    // Bias towards plausible headers so deeper paths are exercised.
    static const uint8_t protos[] = {1, 6, 17, 58, 0, 43, 60};
    if (n > 14 && (i & 1)) {
      bool v4 = i & 2;
      f[12] = v4 ? 0x08 : 0x86;
      f[13] = v4 ? 0x00 : 0xdd;
      f[14] = uint8_t(v4 ? (0x40 | (rng() % 16)) : 0x60);
      // Often a consistent length, no fragment bits and a served protocol.
      if (n > 60 && (i & 4)) {
        uint16_t len = uint16_t(n - 14 - (rng() % 4));
        if (v4) {
          f[16] = uint8_t(len >> 8);
          f[17] = uint8_t(len);
          f[20] = f[21] = 0;
          f[23] = protos[rng() % 3];
        } else {
          f[18] = uint8_t((len - 40) >> 8);
          f[19] = uint8_t(len - 40);
          f[20] = protos[rng() % 7];
        }
      }
    }
    parsed_packet p;
    parse_frame(f.data(), uint32_t(n), p);
    if (p.kind != packet_kind::ip)
      continue;
    ++accepted;
    REQUIRE(p.l3_off + p.l3_len <= n);
    REQUIRE(p.l4_off + p.l4_len <= p.l3_off + p.l3_len);
    if (p.proto == 6)
      REQUIRE(p.l4_len >= 20);
    if (p.proto == 17)
      REQUIRE(p.l4_len >= 8);
  }
  CHECK(accepted > 0);
}

TEST_CASE("one VLAN tag is accepted") {
  auto f = eth_ipv4_tcp();
  f.insert(f.begin() + 12, {0x81, 0x00, 0x00, 0x64});
  parsed_packet p;
  parse_frame(f.data(), uint32_t(f.size()), p);
  REQUIRE(p.kind == packet_kind::ip);
  CHECK(p.l2_len == 18);
  CHECK(p.l4_off == 38);
}

TEST_CASE("a UDP length field must equal the IP payload length") {
  // IPv4 + UDP with 12 bytes of payload: 20 bytes of IP payload.
  auto frame = [](uint16_t udp_len) {
    std::vector<uint8_t> f(14 + 20 + 20, 0);
    f[12] = 0x08;
    uint8_t* ip = f.data() + 14;
    ip[0] = 0x45;
    ip[3] = 40;
    ip[9] = 17;
    uint8_t* u = ip + 20;
    u[1] = 53;
    u[3] = 53;
    u[4] = uint8_t(udp_len >> 8);
    u[5] = uint8_t(udp_len);
    return f;
  };
  for (uint16_t len : {uint16_t(20)}) {
    auto f = frame(len);
    parsed_packet p;
    parse_frame(f.data(), uint32_t(f.size()), p);
    CHECK(p.kind == packet_kind::ip);
    CHECK(p.l4_len == 20);
  }
  for (uint16_t len : {uint16_t(0), uint16_t(4), uint16_t(8), uint16_t(19), uint16_t(21),
                       uint16_t(100), uint16_t(0xffff)}) {
    INFO("udp length " << len);
    auto f = frame(len);
    parsed_packet p;
    parse_frame(f.data(), uint32_t(f.size()), p);
    CHECK(p.kind == packet_kind::drop);
    CHECK(p.reason == drop_reason::udp_bad_length);
  }
}
