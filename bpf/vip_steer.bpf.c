// vip_steer: XDP program for the balancer's interfaces. Sends the dataplane's
// traffic to the AF_XDP socket of the packet's RX queue and everything else to
// the kernel, so the host keeps its own traffic (SSH, health checks, BGP) on the
// same NIC:
//
//   any IP packet whose dst is a host (kernel) address only    -> passed_host (XDP_PASS)
//   TCP/UDP whose (dst, dport, proto) is in steer_vips         -> steered_vip
//   TCP/UDP whose (src, sport, proto) is in steer_replies      -> steered_reply (dnat)
//   any IP packet whose dst is a NAT-pool or own address      -> steered_addr
//   ICMP, fragments, other protocols to a VIP address         -> steered_vip_other
//   ARP for, or IPv6 neighbour solicitation of, an address
//   in steer_addrs                                            -> steered_arp_nd
//   everything else                                           -> passed (XDP_PASS)
//
// Steered packets go through bpf_redirect_map(xsks_map, rx_queue) with XDP_PASS
// as the fallback when no socket is bound to that queue (counted no_socket;
// the others count redirected, and what the socket's ring then cannot take is
// in the socket's XDP_STATISTICS, not here).
//
// dnat replies are recognised by their source (a backend's address and port)
// because their destination is the client's; the host-address check comes
// first so that replies to the host's own connections to a backend (the
// control plane's health checks) stay with the kernel. The check costs
// nothing extra: the destination is looked up in steer_addrs anyway.
// DPDK's net_af_xdp loads this object with `xdp_prog=PATH/vip_steer.bpf.o` and
// inserts its sockets into the map named xsks_map; sluice-steer (or
// sluice::bpf::steer_update) fills steer_vips and steer_addrs.
// One 802.1Q tag is skipped; IPv6 extension headers are not parsed (a VIP
// address with one counts as steered_vip_other).
#include <linux/icmpv6.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <linux/bpf.h>

#include "bpf_packet.h"
#include "sluice_bpf_abi.h"

struct {
  __uint(type, BPF_MAP_TYPE_XSKMAP);
  __uint(max_entries, SLUICE_STEER_MAX_QUEUES);
  __type(key, __u32);
  __type(value, __u32);
} xsks_map SEC(".maps");

// VIP services; value unused (1).
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, SLUICE_STEER_MAX_VIPS);
  __type(key, struct sluice_steer_vip_key);
  __type(value, __u32);
} steer_vips SEC(".maps");

// dnat backends (src, sport, proto): their replies go to the client's address.
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, SLUICE_STEER_MAX_VIPS);
  __type(key, struct sluice_steer_vip_key);
  __type(value, __u32);
} steer_replies SEC(".maps");

// Addresses the dataplane owns; value: SLUICE_STEER_ADDR_* flags.
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, SLUICE_STEER_MAX_ADDRS);
  __type(key, struct sluice_bpf_addr);
  __type(value, __u32);
} steer_addrs SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, sluice_steer_counter_count);
  __type(key, __u32);
  __type(value, __u64);
} steer_stats SEC(".maps");

static __always_inline int to_kernel(void) {
  SLUICE_COUNT(steer_stats, sluice_steer_passed);
  return XDP_PASS;
}

static __always_inline int to_host(void) {
  SLUICE_COUNT(steer_stats, sluice_steer_passed_host);
  return XDP_PASS;
}

static __always_inline int to_dataplane(struct xdp_md* ctx, __u32 counter) {
  SLUICE_COUNT(steer_stats, counter);
  int verdict = bpf_redirect_map(&xsks_map, ctx->rx_queue_index, XDP_PASS);
  SLUICE_COUNT(steer_stats,
               verdict == XDP_REDIRECT ? sluice_steer_redirected : sluice_steer_no_socket);
  return verdict;
}

static __always_inline const __u32* addr_flags(const struct sluice_bpf_addr* a) {
  return bpf_map_lookup_elem(&steer_addrs, a);
}

// An address the dataplane answers ARP/ND for (not a host-only address).
static __always_inline int is_steered_addr(const struct sluice_bpf_addr* a) {
  const __u32* flags = addr_flags(a);
  return flags && (*flags & SLUICE_STEER_ADDR_STEERED);
}

// ARP header (RFC 826); linux/if_arp.h pulls in libc headers the bpf target lacks.
struct arp_header {
  __be16 ar_hrd;
  __be16 ar_pro;
  __u8 ar_hln;
  __u8 ar_pln;
  __be16 ar_op;
};
#define ARP_HRD_ETHER 1

// Ethernet/IPv4 ARP: the target protocol address decides.
static __always_inline int handle_arp(struct xdp_md* ctx, void* l3, void* end) {
  struct arp_header* arp = l3;
  if ((void*)(arp + 1) > end)
    return to_kernel();
  if (arp->ar_hrd != bpf_htons(ARP_HRD_ETHER) || arp->ar_pro != bpf_htons(ETH_P_IP) ||
      arp->ar_hln != ETH_ALEN || arp->ar_pln != 4)
    return to_kernel();
  __u8* tpa = (__u8*)(arp + 1) + 2 * ETH_ALEN + 4; // after sha, spa, tha
  if ((void*)(tpa + 4) > end)
    return to_kernel();
  __be32 target;
  __builtin_memcpy(&target, tpa, 4);
  struct sluice_bpf_addr key;
  addr_from_v4(&key, target);
  return is_steered_addr(&key) ? to_dataplane(ctx, sluice_steer_steered_arp_nd) : to_kernel();
}

// TCP/UDP to a VIP address: steered when the port is a service.
static __always_inline int handle_vip_port(struct xdp_md* ctx, const struct sluice_bpf_addr* dst,
                                           void* l4, void* end, __u8 proto) {
  __be16* ports = l4;
  if ((void*)(ports + 2) > end)
    return to_dataplane(ctx, sluice_steer_steered_vip_other); // truncated: the dataplane counts it
  struct sluice_steer_vip_key key;
  __builtin_memcpy(&key.addr, dst, sizeof(key.addr));
  key.port_be = ports[1];
  key.proto = proto;
  key.reserved0 = 0;
  if (bpf_map_lookup_elem(&steer_vips, &key))
    return to_dataplane(ctx, sluice_steer_steered_vip);
  return to_kernel();
}

// TCP/UDP from a dnat backend: (src, sport, proto) in steer_replies.
static __always_inline int is_backend_reply(const struct sluice_bpf_addr* src, void* l4, void* end,
                                            __u8 proto) {
  if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
    return 0;
  __be16* ports = l4;
  if ((void*)(ports + 2) > end)
    return 0;
  struct sluice_steer_vip_key key;
  __builtin_memcpy(&key.addr, src, sizeof(key.addr));
  key.port_be = ports[0];
  key.proto = proto;
  key.reserved0 = 0;
  return bpf_map_lookup_elem(&steer_replies, &key) != 0;
}

static __always_inline int handle_v4(struct xdp_md* ctx, void* l3, void* end) {
  struct iphdr* ip = l3;
  if ((void*)(ip + 1) > end)
    return to_kernel();
  struct sluice_bpf_addr dst;
  addr_from_v4(&dst, ip->daddr);
  const __u32* flags = addr_flags(&dst);
  if (!flags) {
    struct sluice_bpf_addr src;
    addr_from_v4(&src, ip->saddr);
    __u32 ihl = (__u32)ip->ihl * 4;
    if (ihl >= sizeof(*ip) && is_backend_reply(&src, l3 + ihl, end, ip->protocol))
      return to_dataplane(ctx, sluice_steer_steered_reply);
    return to_kernel();
  }
  if (*flags & (SLUICE_STEER_ADDR_NAT_POOL | SLUICE_STEER_ADDR_OWN))
    return to_dataplane(ctx, sluice_steer_steered_addr);
  if (!(*flags & SLUICE_STEER_ADDR_VIP))
    return to_host();
  __u32 ihl = (__u32)ip->ihl * 4;
  int fragment = (ip->frag_off & bpf_htons(0x3fff)) != 0;
  if (ihl < sizeof(*ip) || fragment || (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP))
    return to_dataplane(ctx, sluice_steer_steered_vip_other);
  return handle_vip_port(ctx, &dst, l3 + ihl, end, ip->protocol);
}

static __always_inline int handle_v6(struct xdp_md* ctx, void* l3, void* end) {
  struct ipv6hdr* ip6 = l3;
  if ((void*)(ip6 + 1) > end)
    return to_kernel();
  void* l4 = ip6 + 1;
  if (ip6->nexthdr == IPPROTO_ICMPV6) {
    // Neighbour solicitation: sent to a solicited-node multicast address, so
    // the target field decides.
    struct icmp6hdr* icmp = l4;
    if ((void*)(icmp + 1) > end)
      return to_kernel();
    if (icmp->icmp6_type == 135) {
      __u8* target = (__u8*)(icmp + 1);
      if ((void*)(target + 16) > end)
        return to_kernel();
      struct sluice_bpf_addr key;
      addr_from_v6(&key, target);
      if (is_steered_addr(&key))
        return to_dataplane(ctx, sluice_steer_steered_arp_nd);
    }
  }
  struct sluice_bpf_addr dst;
  addr_from_v6(&dst, &ip6->daddr);
  const __u32* flags = addr_flags(&dst);
  if (!flags) {
    struct sluice_bpf_addr src;
    addr_from_v6(&src, &ip6->saddr);
    if (is_backend_reply(&src, l4, end, ip6->nexthdr))
      return to_dataplane(ctx, sluice_steer_steered_reply);
    return to_kernel();
  }
  if (*flags & (SLUICE_STEER_ADDR_NAT_POOL | SLUICE_STEER_ADDR_OWN))
    return to_dataplane(ctx, sluice_steer_steered_addr);
  if (!(*flags & SLUICE_STEER_ADDR_VIP))
    return to_host();
  if (ip6->nexthdr != IPPROTO_TCP && ip6->nexthdr != IPPROTO_UDP)
    return to_dataplane(ctx, sluice_steer_steered_vip_other);
  return handle_vip_port(ctx, &dst, l4, end, ip6->nexthdr);
}

SEC("xdp")
int vip_steer(struct xdp_md* ctx) {
  void* data = (void*)(long)ctx->data;
  void* end = (void*)(long)ctx->data_end;
  struct ethhdr* eth = data;
  if ((void*)(eth + 1) > end)
    return to_kernel();
  void* l3 = eth + 1;
  __be16 type = eth->h_proto;
  if (type == bpf_htons(ETH_P_8021Q)) {
    __be16* tag = l3; // TCI, then the encapsulated EtherType
    if ((void*)(tag + 2) > end)
      return to_kernel();
    type = tag[1];
    l3 = tag + 2;
  }
  if (type == bpf_htons(ETH_P_IP))
    return handle_v4(ctx, l3, end);
  if (type == bpf_htons(ETH_P_IPV6))
    return handle_v6(ctx, l3, end);
  if (type == bpf_htons(ETH_P_ARP))
    return handle_arp(ctx, l3, end);
  return to_kernel();
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
