// Map layouts and counter lists shared by the XDP programs (BPF C, clang
// -target bpf) and their libbpf loaders and tests (C++20). Written once here so
// the two sides cannot drift: plain C11, fixed-width types, explicit padding,
// sizes checked by _Static_assert / static_assert.
//
// Addresses are 16 bytes in network byte order with IPv4 in IPv4-mapped form
// (::ffff:a.b.c.d), the same layout as sluice::ip_addr in common/ip_addr.h, so
// a loader copies an ip_addr's bytes straight into a key.
#pragma once

#ifdef __bpf__
#include <linux/types.h>
typedef __u8 sluice_u8;
typedef __u16 sluice_u16;
typedef __u32 sluice_u32;
typedef __u64 sluice_u64;
#else
#include <stdint.h>
typedef uint8_t sluice_u8;
typedef uint16_t sluice_u16;
typedef uint32_t sluice_u32;
typedef uint64_t sluice_u64;
#endif

#ifdef __cplusplus
#define SLUICE_BPF_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define SLUICE_BPF_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif

// An address key: 16 bytes, network byte order, IPv4-mapped for IPv4.
struct sluice_bpf_addr {
  sluice_u8 bytes[16];
};
SLUICE_BPF_STATIC_ASSERT(sizeof(struct sluice_bpf_addr) == 16, "sluice_bpf_addr layout");

// ---------------------------------------------------------------- dsr_decap

#define SLUICE_DECAP_DEFAULT_GUE_PORT 6080
#define SLUICE_DECAP_MAX_LOCAL_ADDRS 256

// decap_config[0]. Written by the loader, read per packet.
struct sluice_decap_config {
  sluice_u16 gue_port;         // UDP destination port of GUE, host order; 0 = 6080
  sluice_u16 reserved0;        // zero
  sluice_u32 local_addr_count; // entries in decap_local_addrs; 0 = accept any destination
};
SLUICE_BPF_STATIC_ASSERT(sizeof(struct sluice_decap_config) == 8, "sluice_decap_config layout");

// Per-CPU counters of dsr_decap, index = enum value (decap_stats map).
// X(name, help)
#define SLUICE_DECAP_COUNTERS(X)                                                                   \
  X(not_encapsulated, "passed unchanged: not IPIP and not GUE")                                    \
  X(decap_4in4, "IPIP decapsulated: IPv4 in IPv4")                                                 \
  X(decap_6in6, "IPIP decapsulated: IPv6 in IPv6")                                                 \
  X(decap_4in6, "IPIP decapsulated: IPv4 in IPv6")                                                 \
  X(decap_6in4, "IPIP decapsulated: IPv6 in IPv4 (proto 41)")                                      \
  X(decap_gue4, "GUE decapsulated: outer IPv4")                                                    \
  X(decap_gue6, "GUE decapsulated: outer IPv6")                                                    \
  X(refused_not_for_us, "refused: outer destination is not a local address")                       \
  X(refused_malformed, "refused: truncated or inconsistent outer or inner header")                 \
  X(refused_unsupported, "refused: fragment, GUE variant 0/2/3 or inner IP version not 4/6")       \
  X(decap_failed, "refused: bpf_xdp_adjust_head failed")

enum sluice_decap_counter {
#define SLUICE_X(name, help) sluice_decap_##name,
  SLUICE_DECAP_COUNTERS(SLUICE_X)
#undef SLUICE_X
      sluice_decap_counter_count
};

// ---------------------------------------------------------------- vip_steer

#define SLUICE_STEER_MAX_VIPS 4096
#define SLUICE_STEER_MAX_ADDRS 4096
#define SLUICE_STEER_MAX_QUEUES 64

// Key of steer_vips: a service (dst address, dst port, protocol). Also the key
// of steer_replies: a dnat backend (src address, src port, protocol), whose
// replies are addressed to the client and must still reach the dataplane.
struct sluice_steer_vip_key {
  struct sluice_bpf_addr addr;
  sluice_u16 port_be;  // destination port, network byte order
  sluice_u8 proto;     // IPPROTO_TCP (6) / IPPROTO_UDP (17)
  sluice_u8 reserved0; // zero (part of the hash key)
};
SLUICE_BPF_STATIC_ASSERT(sizeof(struct sluice_steer_vip_key) == 20, "sluice_steer_vip_key layout");

// Value of steer_addrs (key: struct sluice_bpf_addr): what the address is.
// VIP addresses get ARP/ND and ICMP steered (the dataplane answers and handles
// ICMP errors for flows); NAT-pool and own addresses get everything steered.
// Host addresses (the kernel's own, e.g. the source of the control plane's
// health checks) are never steered: a packet to one is the host's, even when
// it comes from a dnat backend's (address, port), so steer_replies cannot
// steal the SYN-ACK of a connection the host itself made to a backend.
#define SLUICE_STEER_ADDR_VIP 1u
#define SLUICE_STEER_ADDR_NAT_POOL 2u
#define SLUICE_STEER_ADDR_OWN 4u
#define SLUICE_STEER_ADDR_HOST 8u
#define SLUICE_STEER_ADDR_STEERED                                                                  \
  (SLUICE_STEER_ADDR_VIP | SLUICE_STEER_ADDR_NAT_POOL | SLUICE_STEER_ADDR_OWN)

// Per-CPU counters of vip_steer, index = enum value (steer_stats map).
#define SLUICE_STEER_COUNTERS(X)                                                                   \
  X(steered_vip, "for the dataplane: TCP/UDP to a VIP service (dst, port, proto)")                 \
  X(steered_addr, "for the dataplane: dst is a NAT-pool or dataplane address")                     \
  X(steered_reply, "for the dataplane: TCP/UDP from a dnat backend (src, sport, proto)")           \
  X(steered_vip_other, "for the dataplane: ICMP, fragment or other protocol to a VIP address")     \
  X(steered_arp_nd, "for the dataplane: ARP or neighbour solicitation for a steered address")      \
  X(no_socket, "of those: passed to the kernel, no AF_XDP socket on this RX queue")                \
  X(passed, "passed to the kernel: not dataplane traffic")                                         \
  X(redirected, "steered packets handed to the AF_XDP socket (its drops: XDP statistics)")         \
  X(passed_host, "passed to the kernel: to a host address (health checks, host's own "             \
                 "connections)")

enum sluice_steer_counter {
#define SLUICE_X(name, help) sluice_steer_##name,
  SLUICE_STEER_COUNTERS(SLUICE_X)
#undef SLUICE_X
      sluice_steer_counter_count
};
