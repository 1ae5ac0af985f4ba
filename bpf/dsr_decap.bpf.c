// dsr_decap: XDP program for DSR backends. Strips the encapsulation the
// balancer adds in dsr-ipip and dsr-gue modes (docs/forwarding.md) from packets
// addressed to this host and passes the inner packet to the kernel:
//
//   Ethernet | outer IPv4 (proto 4 or 41) | inner IPv4/IPv6        -> 4in4, 6in4
//   Ethernet | outer IPv6 (next 4 or 41)  | inner IPv4/IPv6        -> 4in6, 6in6
//   Ethernet | outer IPv4/IPv6 | UDP dport = gue_port | inner IP   -> GUE variant 1
//
// The Ethernet addresses are kept and the EtherType is rewritten to the inner
// family. Everything else is passed unchanged: this program never drops, so a
// mistake in its configuration cannot black-hole the host (refused packets go to
// the kernel, which drops what it does not understand). Every packet bumps
// exactly one counter in decap_stats.
//
// Not verified (the kernel's ipip/fou would): the outer IPv4 header checksum and
// the outer UDP checksum. The inner packet keeps its own checksums, which the
// kernel verifies. Outer VLAN tags and outer IPv6 extension headers are not
// parsed: such packets pass unchanged as not_encapsulated.
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <linux/bpf.h>

#include "bpf_packet.h"
#include "sluice_bpf_abi.h"

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct sluice_decap_config);
} decap_config SEC(".maps");

// Local addresses the outer destination must match (value unused). Ignored
// while decap_config.local_addr_count is 0: then any destination is accepted.
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, SLUICE_DECAP_MAX_LOCAL_ADDRS);
  __type(key, struct sluice_bpf_addr);
  __type(value, __u8);
} decap_addrs SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, sluice_decap_counter_count);
  __type(key, __u32);
  __type(value, __u64);
} decap_stats SEC(".maps");

static __always_inline int pass(__u32 counter) {
  SLUICE_COUNT(decap_stats, counter);
  return XDP_PASS;
}

static __always_inline int is_local(const struct sluice_decap_config* cfg,
                                    const struct sluice_bpf_addr* dst) {
  if (!cfg || cfg->local_addr_count == 0)
    return 1;
  return bpf_map_lookup_elem(&decap_addrs, dst) != 0;
}

// Validates the inner IP packet at `inner`, of which `avail` bytes belong to
// the outer payload. Returns the inner EtherType (network order), 0 when the
// packet is malformed, 1 when the version is not `want_version` (when non-zero).
static __always_inline __be16 inner_ethertype(void* inner, void* end, __u32 avail,
                                              __u8 want_version) {
  __u8* first = inner;
  if ((void*)(first + 1) > end)
    return 0;
  __u8 version = *first >> 4;
  if (want_version && version != want_version)
    return 0;
  if (version == 4) {
    struct iphdr* ip = inner;
    if ((void*)(ip + 1) > end || ip->ihl < 5)
      return 0;
    __u32 len = bpf_ntohs(ip->tot_len);
    if (len < (__u32)ip->ihl * 4 || len > avail)
      return 0;
    return bpf_htons(ETH_P_IP);
  }
  if (version == 6) {
    struct ipv6hdr* ip6 = inner;
    if ((void*)(ip6 + 1) > end)
      return 0;
    if (sizeof(*ip6) + (__u32)bpf_ntohs(ip6->payload_len) > avail)
      return 0;
    return bpf_htons(ETH_P_IPV6);
  }
  return 1;
}

// Removes `outer_len` bytes after the Ethernet header and moves the Ethernet
// header forward, with the inner EtherType.
static __always_inline int strip(struct xdp_md* ctx, __u32 outer_len, __be16 ethertype,
                                 __u32 counter) {
  void* data = (void*)(long)ctx->data;
  void* end = (void*)(long)ctx->data_end;
  struct ethhdr* eth = data;
  if ((void*)(eth + 1) > end)
    return pass(sluice_decap_decap_failed);
  struct ethhdr saved;
  __builtin_memcpy(&saved, eth, sizeof(saved));
  if (bpf_xdp_adjust_head(ctx, (int)outer_len))
    return pass(sluice_decap_decap_failed);
  data = (void*)(long)ctx->data;
  end = (void*)(long)ctx->data_end;
  eth = data;
  if ((void*)(eth + 1) > end) // cannot happen: the inner header was validated
    return pass(sluice_decap_decap_failed);
  __builtin_memcpy(eth->h_dest, saved.h_dest, ETH_ALEN);
  __builtin_memcpy(eth->h_source, saved.h_source, ETH_ALEN);
  eth->h_proto = ethertype;
  return pass(counter);
}

// GUE variant 1 payload at `payload` (`avail` bytes): the inner IP header.
static __always_inline int strip_gue(struct xdp_md* ctx, void* payload, void* end, __u32 avail,
                                     __u32 outer_len, __u32 counter) {
  __u8* first = payload;
  if ((void*)(first + 1) > end)
    return pass(sluice_decap_refused_malformed);
  if ((*first >> 6) != 1) // variant 0 (GUE header) and the reserved variants
    return pass(sluice_decap_refused_unsupported);
  __be16 type = inner_ethertype(payload, end, avail, 0);
  if (type == 0)
    return pass(sluice_decap_refused_malformed);
  if (type == 1)
    return pass(sluice_decap_refused_unsupported);
  return strip(ctx, outer_len, type, counter);
}

static __always_inline int handle_v4(struct xdp_md* ctx, const struct sluice_decap_config* cfg,
                                     __u16 gue_port) {
  void* data = (void*)(long)ctx->data;
  void* end = (void*)(long)ctx->data_end;
  struct iphdr* ip = data + sizeof(struct ethhdr);
  if ((void*)(ip + 1) > end)
    return pass(sluice_decap_not_encapsulated);
  __u8 proto = ip->protocol;
  __u32 ihl = (__u32)ip->ihl * 4;
  int ipip = proto == IPPROTO_IPIP || proto == IPPROTO_IPV6;
  if (!ipip && proto != IPPROTO_UDP)
    return pass(sluice_decap_not_encapsulated);
  if (ip->version != 4 || ihl < sizeof(*ip))
    return pass(ipip ? sluice_decap_refused_malformed : sluice_decap_not_encapsulated);
  void* l4 = (void*)ip + ihl;
  int fragment = (ip->frag_off & bpf_htons(0x3fff)) != 0;
  if (!ipip) {
    struct udphdr* udp = l4;
    if (fragment || (void*)(udp + 1) > end || udp->dest != bpf_htons(gue_port))
      return pass(sluice_decap_not_encapsulated);
  }
  struct sluice_bpf_addr dst;
  addr_from_v4(&dst, ip->daddr);
  if (!is_local(cfg, &dst))
    return pass(sluice_decap_refused_not_for_us);
  if (fragment)
    return pass(sluice_decap_refused_unsupported);
  __u32 tot_len = bpf_ntohs(ip->tot_len);
  if (tot_len < ihl || (void*)ip + tot_len > end)
    return pass(sluice_decap_refused_malformed);
  __u32 payload_len = tot_len - ihl;

  if (ipip) {
    __u8 want = proto == IPPROTO_IPIP ? 4 : 6;
    __be16 type = inner_ethertype(l4, end, payload_len, want);
    if (type == 0)
      return pass(sluice_decap_refused_malformed);
    return strip(ctx, ihl, type, want == 4 ? sluice_decap_decap_4in4 : sluice_decap_decap_6in4);
  }
  struct udphdr* udp = l4;
  __u32 udp_len = bpf_ntohs(udp->len);
  if (udp_len < sizeof(*udp) || udp_len > payload_len)
    return pass(sluice_decap_refused_malformed);
  return strip_gue(ctx, udp + 1, end, udp_len - sizeof(*udp), ihl + sizeof(*udp),
                   sluice_decap_decap_gue4);
}

static __always_inline int handle_v6(struct xdp_md* ctx, const struct sluice_decap_config* cfg,
                                     __u16 gue_port) {
  void* data = (void*)(long)ctx->data;
  void* end = (void*)(long)ctx->data_end;
  struct ipv6hdr* ip6 = data + sizeof(struct ethhdr);
  if ((void*)(ip6 + 1) > end)
    return pass(sluice_decap_not_encapsulated);
  __u8 next = ip6->nexthdr;
  int ipip = next == IPPROTO_IPIP || next == IPPROTO_IPV6;
  if (!ipip && next != IPPROTO_UDP)
    return pass(sluice_decap_not_encapsulated);
  void* l4 = ip6 + 1;
  if (!ipip) {
    struct udphdr* udp = l4;
    if ((void*)(udp + 1) > end || udp->dest != bpf_htons(gue_port))
      return pass(sluice_decap_not_encapsulated);
  }
  struct sluice_bpf_addr dst;
  addr_from_v6(&dst, &ip6->daddr);
  if (!is_local(cfg, &dst))
    return pass(sluice_decap_refused_not_for_us);
  __u32 payload_len = bpf_ntohs(ip6->payload_len);
  if (ip6->version != 6 || l4 + payload_len > end)
    return pass(sluice_decap_refused_malformed);

  if (ipip) {
    __u8 want = next == IPPROTO_IPIP ? 4 : 6;
    __be16 type = inner_ethertype(l4, end, payload_len, want);
    if (type == 0)
      return pass(sluice_decap_refused_malformed);
    return strip(ctx, sizeof(*ip6), type,
                 want == 4 ? sluice_decap_decap_4in6 : sluice_decap_decap_6in6);
  }
  struct udphdr* udp = l4;
  __u32 udp_len = bpf_ntohs(udp->len);
  if (udp_len < sizeof(*udp) || udp_len > payload_len)
    return pass(sluice_decap_refused_malformed);
  return strip_gue(ctx, udp + 1, end, udp_len - sizeof(*udp), sizeof(*ip6) + sizeof(*udp),
                   sluice_decap_decap_gue6);
}

SEC("xdp")
int dsr_decap(struct xdp_md* ctx) {
  void* data = (void*)(long)ctx->data;
  void* end = (void*)(long)ctx->data_end;
  struct ethhdr* eth = data;
  if ((void*)(eth + 1) > end)
    return pass(sluice_decap_not_encapsulated);

  __u32 zero = 0;
  const struct sluice_decap_config* cfg = bpf_map_lookup_elem(&decap_config, &zero);
  __u16 gue_port = SLUICE_DECAP_DEFAULT_GUE_PORT;
  if (cfg && cfg->gue_port)
    gue_port = cfg->gue_port;

  if (eth->h_proto == bpf_htons(ETH_P_IP))
    return handle_v4(ctx, cfg, gue_port);
  if (eth->h_proto == bpf_htons(ETH_P_IPV6))
    return handle_v6(ctx, cfg, gue_port);
  return pass(sluice_decap_not_encapsulated);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
