#include "ip_addr.h"

#include <arpa/inet.h>
#include <cstdio>
#include <fmt/format.h>

namespace sluice {

std::optional<ip_addr> parse_ip(std::string_view text) {
  std::string s(text);
  uint8_t buf[16];
  if (inet_pton(AF_INET, s.c_str(), buf) == 1) {
    uint32_t be;
    std::memcpy(&be, buf, 4);
    return ip_addr::from_v4_be(be);
  }
  if (inet_pton(AF_INET6, s.c_str(), buf) == 1)
    return ip_addr::from_v6(buf);
  return std::nullopt;
}

std::string format_ip(const ip_addr& a) {
  char out[INET6_ADDRSTRLEN];
  if (a.is_v4())
    inet_ntop(AF_INET, a.v4_ptr(), out, sizeof(out));
  else
    inet_ntop(AF_INET6, a.bytes.data(), out, sizeof(out));
  return out;
}

std::optional<ip_prefix> parse_prefix(std::string_view text) {
  auto slash = text.find('/');
  auto addr = parse_ip(text.substr(0, slash));
  if (!addr)
    return std::nullopt;
  unsigned max_len = addr->is_v4() ? 32 : 128;
  unsigned len = max_len;
  if (slash != std::string_view::npos) {
    auto digits = text.substr(slash + 1);
    if (digits.empty() || digits.size() > 3)
      return std::nullopt;
    len = 0;
    for (char c : digits) {
      if (c < '0' || c > '9')
        return std::nullopt;
      len = len * 10 + unsigned(c - '0');
    }
    if (len > max_len)
      return std::nullopt;
  }
  return ip_prefix{*addr, uint8_t(len)};
}

bool prefix_contains(const ip_prefix& p, const ip_addr& a) {
  if (p.addr.is_v4() != a.is_v4())
    return false;
  const unsigned first = a.is_v4() ? 12 : 0;
  unsigned bits = p.prefix_len;
  for (unsigned i = first; bits > 0; ++i) {
    unsigned take = bits >= 8 ? 8 : bits;
    uint8_t mask = uint8_t(0xff00u >> take);
    if ((p.addr.bytes[i] & mask) != (a.bytes[i] & mask))
      return false;
    bits -= take;
  }
  return true;
}

std::optional<std::array<uint8_t, 6>> parse_mac(std::string_view text) {
  std::array<uint8_t, 6> mac{};
  if (text.size() != 17)
    return std::nullopt;
  for (int i = 0; i < 6; ++i) {
    unsigned v = 0;
    for (int j = 0; j < 2; ++j) {
      char c = text[i * 3 + j];
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= unsigned(c - '0');
      else if (c >= 'a' && c <= 'f')
        v |= unsigned(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        v |= unsigned(c - 'A' + 10);
      else
        return std::nullopt;
    }
    if (i < 5 && text[i * 3 + 2] != ':')
      return std::nullopt;
    mac[i] = uint8_t(v);
  }
  return mac;
}

std::string format_mac(const uint8_t* m) {
  return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4],
                     m[5]);
}

} // namespace sluice
