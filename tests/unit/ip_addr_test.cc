#include <catch2/catch_test_macros.hpp>

#include "ip_addr.h"

using namespace sluice;

TEST_CASE("parse and format IPv4", "[ip_addr]") {
  auto a = parse_ip("192.0.2.1");
  REQUIRE(a);
  CHECK(a->is_v4());
  CHECK(a->family() == ip_family::v4);
  CHECK(a->bytes[10] == 0xff);
  CHECK(a->bytes[11] == 0xff);
  CHECK(a->bytes[12] == 192);
  CHECK(a->bytes[15] == 1);
  CHECK(format_ip(*a) == "192.0.2.1");
  CHECK(ip_addr::from_v4_be(a->v4_be()) == *a);
  CHECK_FALSE(a->is_unspecified());
  CHECK(parse_ip("0.0.0.0")->is_v4());
}

TEST_CASE("parse and format IPv6", "[ip_addr]") {
  auto a = parse_ip("2001:db8::1");
  REQUIRE(a);
  CHECK_FALSE(a->is_v4());
  CHECK(a->family() == ip_family::v6);
  CHECK(a->bytes[0] == 0x20);
  CHECK(a->bytes[1] == 0x01);
  CHECK(a->bytes[15] == 1);
  CHECK(format_ip(*a) == "2001:db8::1");
  CHECK(parse_ip("::")->is_unspecified());
  // An IPv4-mapped IPv6 address is the IPv4 address.
  CHECK(*parse_ip("::ffff:10.1.2.3") == *parse_ip("10.1.2.3"));
  CHECK(format_ip(*parse_ip("FD00:0:0::A")) == "fd00::a");
}

TEST_CASE("bad addresses are rejected", "[ip_addr]") {
  for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.4 ", " 1.2.3.4", "abc",
                          "2001:db8:::1", "2001:db8::g", "1:2:3:4:5:6:7:8:9", "1.2.3.4/24"})
    CHECK_FALSE(parse_ip(bad));
}

TEST_CASE("prefixes", "[ip_addr]") {
  auto p = parse_prefix("172.16.0.0/16");
  REQUIRE(p);
  CHECK(p->addr == *parse_ip("172.16.0.0"));
  CHECK(p->prefix_len == 16);
  auto h = parse_prefix("10.0.0.1");
  REQUIRE(h);
  CHECK(h->prefix_len == 32);
  auto v6 = parse_prefix("fd00::/64");
  REQUIRE(v6);
  CHECK(v6->prefix_len == 64);
  CHECK(parse_prefix("fd00::/128")->prefix_len == 128);
  CHECK(parse_prefix("0.0.0.0/0")->prefix_len == 0);
  for (const char* bad : {"10.0.0.0/33", "fd00::/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/1a",
                          "10.0.0/8", "/8", "10.0.0.0/0008"})
    CHECK_FALSE(parse_prefix(bad));
}

TEST_CASE("MAC addresses", "[ip_addr]") {
  auto m = parse_mac("02:00:5e:10:AB:ff");
  REQUIRE(m);
  CHECK((*m)[0] == 0x02);
  CHECK((*m)[4] == 0xab);
  CHECK((*m)[5] == 0xff);
  CHECK(format_mac(m->data()) == "02:00:5e:10:ab:ff");
  for (const char* bad : {"", "02:00:5e:10:ab", "02:00:5e:10:ab:ff:00", "02-00-5e-10-ab-ff",
                          "02:00:5e:10:ab:fg", "0200.5e10.abff", "2:00:5e:10:ab:ff0"})
    CHECK_FALSE(parse_mac(bad));
}
