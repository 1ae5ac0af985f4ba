#include "rewrite_check.h"

#include <arpa/inet.h>
#include <cstring>

#include "frame_writer.h"
#include "packet_parse.h"

namespace sluice::pktgen {

namespace {

using cf = check_failure;

uint32_t rd32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

bool ip_csum_ok(const uint8_t* ip, uint32_t ihl) {
  return csum_fold(csum_partial(ip, ihl)) == 0xffff;
}

bool l4_csum_ok(const uint8_t* ip, const uint8_t* l4, uint32_t l4_len, uint8_t proto) {
  uint16_t stored;
  std::memcpy(&stored, l4 + (proto == proto_tcp ? 16 : 6), 2);
  if (proto == proto_udp && stored == 0)
    return true; // IPv4 UDP without checksum
  uint32_t src = rd32(ip + 12), dst = rd32(ip + 16);
  uint64_t s = uint64_t(src & 0xffff) + (src >> 16) + (dst & 0xffff) + (dst >> 16) +
               htons(uint16_t(l4_len)) + htons(uint16_t(proto));
  s += csum_partial(l4, l4_len);
  while (s >> 32)
    s = (s & 0xffffffff) + (s >> 32);
  return csum_fold(uint32_t(s)) == 0xffff;
}

bool in_prefix(uint32_t addr_be, uint32_t base_be, uint32_t mask_be) {
  return (addr_be & mask_be) == base_be;
}

bool in_range(uint32_t addr_be, uint32_t base_be, uint32_t size) {
  return ntohl(addr_be) - ntohl(base_be) < size;
}

// Parses and checksums one IPv4 TCP/UDP packet at `ip` (`avail` bytes).
bool decode_ip(pktgen_context& ctx, const uint8_t* ip, uint32_t avail, seen_packet& s) {
  parsed_packet p{};
  parse_l3(ip, avail, ethertype_ipv4, p);
  if (p.kind != packet_kind::ip || p.family != 4 ||
      (p.proto != proto_tcp && p.proto != proto_udp)) {
    ctx.stats.fail(cf::truncated);
    return false;
  }
  if (!ip_csum_ok(ip, p.ipv4_ihl)) {
    ctx.stats.fail(cf::ip_checksum);
    return false;
  }
  const uint8_t* l4 = ip + p.ipv4_ihl;
  if (!l4_csum_ok(ip, l4, p.l4_len, p.proto)) {
    ctx.stats.fail(cf::l4_checksum);
    return false;
  }
  if (ip[8] != sent_ttl) {
    ctx.stats.fail(cf::ttl_changed);
    return false;
  }
  s.proto = p.proto;
  s.src_be = rd32(ip + 12);
  s.dst_be = rd32(ip + 16);
  s.sport = ntohs(p.sport);
  s.dport = ntohs(p.dport);
  uint32_t l4h = p.proto == proto_tcp ? uint32_t(l4[12] >> 4) * 4 : 8;
  s.payload = l4 + l4h;
  s.payload_len = p.l4_len - l4h;
  if (p.proto == proto_tcp) {
    s.flags = l4[13];
    s.seq = ntohl(rd32(l4 + 4));
    s.ack = ntohl(rd32(l4 + 8));
  }
  // Established TCP keeps seq / tx time in the TCP header (stamp.h).
  if (p.proto == proto_tcp && s.payload_len < stamp_size) {
    s.has_stamp = read_stamp_head(s.payload, s.payload_len, s.st);
    s.st.seq = s.seq;
    s.st.tx_ns = s.ack;
  } else {
    s.has_stamp = read_stamp(s.payload, s.payload_len, s.st);
  }
  return true;
}

// The client a stamped packet was sent by must be its source.
bool client_matches(pktgen_context& ctx, const seen_packet& s, uint32_t addr_be, uint16_t port) {
  if (!s.has_stamp || s.st.item >= ctx.prof.items.size())
    return true;
  const auto& it = ctx.prof.items[s.st.item];
  if (it.type != item_type::established)
    return true;
  client_id c = ctx.flows.client(it.flow_base + s.st.flow);
  return c.addr_be == addr_be && c.port == port;
}

bool is_backend(const service_def& svc, uint32_t addr_be, uint16_t port) {
  for (const auto& b : svc.backends)
    if (b.addr_be == addr_be && b.port == port)
      return true;
  return false;
}

std::optional<uint32_t> service_by_vip(const profile& p, uint32_t vip_be, uint16_t port,
                                       uint8_t proto) {
  for (uint32_t i = 0; i < p.services.size(); ++i)
    if (p.services[i].vip_be == vip_be && p.services[i].port == port &&
        p.services[i].proto == proto)
      return i;
  return std::nullopt;
}

bool is_gue_port(const profile& p, uint16_t port) {
  for (const auto& s : p.services)
    if (s.mode == abi::fwd_mode::dsr_gue && s.gue_port == port)
      return true;
  return false;
}

} // namespace

std::optional<seen_packet> check_at_backend(pktgen_context& ctx, const uint8_t* frame,
                                            uint32_t len) {
  const profile& prof = ctx.prof;
  ++ctx.stats.checked;
  if (len < eth_len + ip_len || frame[12] != 0x08 || frame[13] != 0x00) {
    ++ctx.stats.foreign; // ARP and anything not IPv4
    --ctx.stats.checked;
    return std::nullopt;
  }
  const uint8_t* ip = frame + eth_len;
  const uint32_t avail = len - eth_len;
  seen_packet s;

  // Loopback (no balancer): the frame must arrive exactly as sent.
  if (ctx.loopback) {
    if (!decode_ip(ctx, ip, avail, s))
      return std::nullopt;
    auto svc = service_by_vip(prof, s.dst_be, s.dport, s.proto);
    if (!svc) {
      ctx.stats.fail(cf::unknown_service);
      return std::nullopt;
    }
    s.service = *svc;
    return s;
  }

  // Outer header of the encapsulating modes.
  bool encap = false, gue = false;
  uint32_t outer_dst = 0;
  const uint8_t* inner = ip;
  uint32_t inner_avail = avail;
  if ((ip[0] >> 4) == 4 && avail >= ip_len) {
    uint32_t ihl = uint32_t(ip[0] & 0xf) * 4;
    uint8_t proto = ip[9];
    bool ipip = proto == proto_ipip;
    bool udp_gue = proto == proto_udp && avail >= ihl + 8 &&
                   is_gue_port(prof, uint16_t(ip[ihl + 2] << 8 | ip[ihl + 3]));
    if (ipip || udp_gue) {
      encap = true;
      gue = udp_gue;
      if (ihl < ip_len || avail < ihl + (gue ? 8u : 0u) + ip_len) {
        ctx.stats.fail(cf::truncated);
        return std::nullopt;
      }
      if (!ip_csum_ok(ip, ihl)) {
        ctx.stats.fail(cf::ip_checksum);
        return std::nullopt;
      }
      uint32_t outer_src = rd32(ip + 12);
      outer_dst = rd32(ip + 16);
      if (!in_prefix(outer_src, prof.encap_src4_be, prof.encap_src4_mask_be) ||
          (gue && (ip[ihl] & 0xc0) != 0xc0)) {
        ctx.stats.fail(cf::outer_header);
        return std::nullopt;
      }
      inner = ip + ihl + (gue ? 8 : 0);
      inner_avail = avail - ihl - (gue ? 8 : 0);
    }
  }
  if (!decode_ip(ctx, inner, inner_avail, s))
    return std::nullopt;

  const uint8_t* dmac = frame;
  if (encap || service_by_vip(prof, s.dst_be, s.dport, s.proto)) {
    // DSR: the inner packet is untouched, still addressed to the VIP.
    auto svc = service_by_vip(prof, s.dst_be, s.dport, s.proto);
    if (!svc) {
      ctx.stats.fail(encap ? cf::vip_changed : cf::unknown_service);
      return std::nullopt;
    }
    const service_def& sd = prof.services[*svc];
    abi::fwd_mode want = !encap ? abi::fwd_mode::dsr_l2
                         : gue  ? abi::fwd_mode::dsr_gue
                                : abi::fwd_mode::dsr_ipip;
    if (sd.mode != want) {
      ctx.stats.fail(encap ? cf::outer_header : cf::backend_addr);
      return std::nullopt;
    }
    uint32_t be = encap ? outer_dst : 0;
    if (!encap)
      std::memcpy(&be, dmac + 2, 4); // dsr-l2: the MAC names the backend
    if (!is_backend(sd, be, sd.port)) {
      ctx.stats.fail(cf::backend_addr);
      return std::nullopt;
    }
    if (backend_mac(be) != *reinterpret_cast<const std::array<uint8_t, 6>*>(dmac)) {
      ctx.stats.fail(cf::backend_mac);
      return std::nullopt;
    }
    if (!client_matches(ctx, s, s.src_be, s.sport)) {
      ctx.stats.fail(cf::client_source);
      return std::nullopt;
    }
    s.service = *svc;
    s.backend_be = be;
    s.backend_port = sd.port;
    return s;
  }

  // nat / dnat: addressed to a backend.
  std::optional<uint32_t> svc;
  for (uint32_t i = 0; i < prof.services.size() && !svc; ++i) {
    const auto& sd = prof.services[i];
    if ((sd.mode == abi::fwd_mode::nat || sd.mode == abi::fwd_mode::dnat) && sd.proto == s.proto &&
        is_backend(sd, s.dst_be, s.dport))
      svc = i;
  }
  if (!svc) {
    ctx.stats.fail(cf::unknown_service);
    return std::nullopt;
  }
  const service_def& sd = prof.services[*svc];
  if (backend_mac(s.dst_be) != *reinterpret_cast<const std::array<uint8_t, 6>*>(dmac)) {
    ctx.stats.fail(cf::backend_mac);
    return std::nullopt;
  }
  if (sd.mode == abi::fwd_mode::nat) {
    bool pool = false;
    for (uint32_t a : prof.nat_pool_be)
      pool = pool || a == s.src_be;
    if (!pool || s.sport < prof.nat_port_min || s.sport > prof.nat_port_max) {
      ctx.stats.fail(cf::nat_source);
      return std::nullopt;
    }
  } else if (!client_matches(ctx, s, s.src_be, s.sport)) {
    ctx.stats.fail(cf::client_source);
    return std::nullopt;
  }
  s.service = *svc;
  s.backend_be = s.dst_be;
  s.backend_port = s.dport;
  return s;
}

std::optional<seen_packet> check_at_client(pktgen_context& ctx, const uint8_t* frame, uint32_t len,
                                           bool& spoofed) {
  const profile& prof = ctx.prof;
  spoofed = false;
  if (len < eth_len + ip_len || frame[12] != 0x08 || frame[13] != 0x00) {
    ++ctx.stats.foreign;
    return std::nullopt;
  }
  ++ctx.stats.checked;
  seen_packet s;
  if (!decode_ip(ctx, frame + eth_len, len - eth_len, s))
    return std::nullopt;
  auto svc = service_by_vip(prof, s.src_be, s.sport, s.proto);
  if (!svc) {
    ctx.stats.fail(cf::reply_source);
    return std::nullopt;
  }
  s.service = *svc;
  uint64_t g;
  if (in_range(s.dst_be, prof.spoofed_base_be, prof.spoofed_size)) {
    spoofed = true;
    return s;
  }
  if (!ctx.flows.index(s.dst_be, s.dport, g)) {
    ctx.stats.fail(cf::reply_destination);
    return std::nullopt;
  }
  if (s.has_stamp && s.st.item < prof.items.size()) {
    const auto& it = prof.items[s.st.item];
    if (it.type == item_type::established && g != it.flow_base + s.st.flow) {
      ctx.stats.fail(cf::reply_destination);
      return std::nullopt;
    }
  }
  return s;
}

} // namespace sluice::pktgen
