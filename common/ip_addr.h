// Addresses as stored everywhere in Sluice: 16 bytes in network byte order, with
// IPv4 kept in IPv4-mapped form (::ffff:a.b.c.d) so one fixed-size type serves
// the shared-memory ABI, the table builder and the control plane. Parsing and
// formatting live here; the packet path only compares and copies bytes.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace sluice {

enum class ip_family : uint8_t { none = 0, v4 = 4, v6 = 6 };

struct ip_addr {
  // Network byte order. IPv4 lives in bytes[12..15] with bytes[10..11] = 0xff.
  std::array<uint8_t, 16> bytes{};

  static ip_addr from_v4_be(uint32_t be) {
    ip_addr a;
    a.bytes[10] = 0xff;
    a.bytes[11] = 0xff;
    std::memcpy(&a.bytes[12], &be, 4);
    return a;
  }
  static ip_addr from_v6(const uint8_t* p) {
    ip_addr a;
    std::memcpy(a.bytes.data(), p, 16);
    return a;
  }
  bool is_v4() const {
    static constexpr uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return std::memcmp(bytes.data(), prefix, 12) == 0;
  }
  ip_family family() const { return is_v4() ? ip_family::v4 : ip_family::v6; }
  uint32_t v4_be() const {
    uint32_t v;
    std::memcpy(&v, &bytes[12], 4);
    return v;
  }
  const uint8_t* v4_ptr() const { return &bytes[12]; }
  bool is_unspecified() const {
    for (auto b : bytes)
      if (b)
        return false;
    return true;
  }
  friend bool operator==(const ip_addr&, const ip_addr&) = default;
  friend auto operator<=>(const ip_addr&, const ip_addr&) = default;
};
static_assert(sizeof(ip_addr) == 16);

// Parses "192.0.2.1" or "2001:db8::1". Returns nullopt on anything else.
std::optional<ip_addr> parse_ip(std::string_view text);
std::string format_ip(const ip_addr& a);

// A prefix such as "172.16.0.0/16" or "fd00::/64". prefix_len counts bits of
// the family's own address (0..32 for v4, 0..128 for v6).
struct ip_prefix {
  ip_addr addr;
  uint8_t prefix_len = 0;
};
std::optional<ip_prefix> parse_prefix(std::string_view text);
// True when `a` lies in `p` (same family, first prefix_len bits equal).
bool prefix_contains(const ip_prefix& p, const ip_addr& a);

// "aa:bb:cc:dd:ee:ff" → 6 bytes.
std::optional<std::array<uint8_t, 6>> parse_mac(std::string_view text);
std::string format_mac(const uint8_t* mac);

} // namespace sluice
