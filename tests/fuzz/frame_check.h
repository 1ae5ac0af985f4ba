// Independent well-formedness check of a frame the pipeline transmits: the
// Ethernet/VLAN header, IPv4/IPv6 lengths, the IPv4 header checksum, TCP/UDP/
// ICMP checksums (recomputed with packet_builder.h's reference routine, not the
// dataplane's), and encapsulation headers (IP-in-IP, 6in6, 4in6, GUE over UDP)
// checked recursively. Used by the whole-pipeline fuzz target, where the input
// packets are built well-formed: whatever the pipeline rewrites, encapsulates
// or answers must still be. Returns an empty string, or what is wrong.
//
// `strict` = false (the input was raw garbage, possibly with wrong checksums
// the pipeline is not required to notice) checks lengths and structure only.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

#include "packet_builder.h"

namespace sluice::test {

struct frame_checker {
  bool strict = true;
  uint16_t gue_port = 6080;

  std::string check(const bytes& f) const {
    if (f.size() < 14)
      return "frame shorter than an Ethernet header";
    size_t off = 12;
    uint16_t type = get16(f, off);
    if (type == 0x8100) {
      if (f.size() < 18)
        return "truncated VLAN tag";
      off += 4;
      type = get16(f, off);
    }
    off += 2;
    bytes l3(f.begin() + long(off), f.end());
    if (type == 0x0806)
      return l3.size() >= 28 ? "" : "ARP shorter than 28 bytes";
    if (type == 0x0800)
      return ip4(l3, 0);
    if (type == 0x86dd)
      return ip6(l3, 0);
    return strict ? "unexpected ethertype " + std::to_string(type) : "";
  }

private:
  static bytes sub(const bytes& b, size_t from, size_t len) {
    return bytes(b.begin() + long(from), b.begin() + long(from + len));
  }

  // Checks the L4 part of a datagram; `pseudo` is the pseudo-header sum.
  std::string l4(uint8_t proto, const bytes& p, uint32_t pseudo, bool v6, int depth) const {
    if (proto == 6) {
      if (p.size() < 20)
        return "TCP shorter than its header";
      size_t doff = size_t(p[12] >> 4) * 4;
      if (doff < 20 || doff > p.size())
        return "TCP data offset outside the segment";
      if (strict && ref_checksum(p, pseudo) != 0)
        return "bad TCP checksum";
      return "";
    }
    if (proto == 17) {
      if (p.size() < 8)
        return "UDP shorter than its header";
      if (get16(p, 4) != p.size())
        return "UDP length " + std::to_string(get16(p, 4)) + " != IP payload " +
               std::to_string(p.size());
      uint16_t c = get16(p, 6);
      if (v6 && c == 0 && strict)
        return "zero UDP checksum over IPv6";
      if (c != 0 && strict && ref_checksum(p, pseudo) != 0)
        return "bad UDP checksum";
      if (get16(p, 2) == gue_port && depth == 0 && p.size() > 8) {
        // GUE variant 1: the IP header directly follows the UDP header.
        bytes inner = sub(p, 8, p.size() - 8);
        uint8_t ver = inner[0] >> 4;
        if (ver == 4)
          return prefix("GUE inner: ", ip4(inner, depth + 1));
        if (ver == 6)
          return prefix("GUE inner: ", ip6(inner, depth + 1));
        return "GUE payload is not IPv4/IPv6";
      }
      return "";
    }
    if (proto == 1 || proto == 58) {
      if (p.size() < 8)
        return "ICMP shorter than 8 bytes";
      if (strict && ref_checksum(p, proto == 58 ? pseudo : 0) != 0)
        return "bad ICMP checksum";
      return "";
    }
    if ((proto == 4 || proto == 41) && depth == 0) {
      if (proto == 4)
        return prefix("IPIP inner: ", ip4(p, depth + 1));
      return prefix("IPv6-in-IP inner: ", ip6(p, depth + 1));
    }
    return "";
  }

  static ip_addr v4(const uint8_t* p) {
    uint32_t be;
    std::memcpy(&be, p, 4);
    return ip_addr::from_v4_be(be);
  }

  static std::string prefix(const char* what, std::string e) { return e.empty() ? e : what + e; }

  std::string ip4(const bytes& b, int depth) const {
    if (b.size() < 20)
      return "IPv4 shorter than 20 bytes";
    if ((b[0] >> 4) != 4)
      return "IPv4 version field is not 4";
    size_t ihl = size_t(b[0] & 15) * 4;
    size_t tot = get16(b, 2);
    if (ihl < 20 || tot < ihl || tot > b.size())
      return "IPv4 lengths inconsistent (ihl " + std::to_string(ihl) + ", total " +
             std::to_string(tot) + ", have " + std::to_string(b.size()) + ")";
    if (strict && ref_checksum(sub(b, 0, ihl)) != 0)
      return "bad IPv4 header checksum";
    uint16_t frag = get16(b, 6);
    if (frag & 0x3fff) // a fragment: the L4 checksum covers the whole datagram
      return "";
    ip_addr s = v4(&b[12]), d = v4(&b[16]);
    bytes p = sub(b, ihl, tot - ihl);
    return l4(b[9], p, v4_pseudo(s, d, b[9], p.size()), false, depth);
  }

  std::string ip6(const bytes& b, int depth) const {
    if (b.size() < 40)
      return "IPv6 shorter than 40 bytes";
    if ((b[0] >> 4) != 6)
      return "IPv6 version field is not 6";
    size_t plen = get16(b, 4);
    if (40 + plen > b.size())
      return "IPv6 payload length beyond the frame";
    uint8_t nh = b[6];
    size_t off = 40;
    for (int i = 0; i < 8 && (nh == 0 || nh == 43 || nh == 60 || nh == 44); ++i) {
      if (off + 8 > 40 + plen)
        return "IPv6 extension header beyond the payload";
      if (nh == 44)
        return ""; // fragment: no L4 check
      size_t len = (size_t(b[off + 1]) + 1) * 8;
      nh = b[off];
      off += len;
      if (off > 40 + plen)
        return "IPv6 extension header beyond the payload";
    }
    ip_addr s = ip_addr::from_v6(&b[8]), d = ip_addr::from_v6(&b[24]);
    bytes p = sub(b, off, 40 + plen - off);
    return l4(nh, p, v6_pseudo(s, d, nh, p.size()), true, depth);
  }
};

} // namespace sluice::test
