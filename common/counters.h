// The counter lists of the dataplane, written once as X-macros so the enums, the
// names shown by the CLI/metrics and the shared-memory layout cannot drift apart.
// Rule of the packet path: every packet that is not forwarded increments exactly
// one drop reason; degraded-but-forwarded paths have their own worker counters.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

// X(name, help)
#define SLUICE_DROP_REASONS(X)                                                                     \
  X(eth_truncated, "frame shorter than its Ethernet/VLAN header")                                  \
  X(unknown_ethertype, "ethertype neither IPv4, IPv6 nor ARP")                                     \
  X(ipv4_truncated, "frame shorter than the IPv4 header")                                          \
  X(ipv4_bad_header, "IPv4 version or IHL invalid")                                                \
  X(ipv4_bad_length, "IPv4 total length beyond the frame or below the header")                     \
  X(ipv4_fragment, "IPv4 fragment (reassembly not supported)")                                     \
  X(ipv6_truncated, "frame shorter than the IPv6 header")                                          \
  X(ipv6_bad_length, "IPv6 payload length beyond the frame")                                       \
  X(ipv6_fragment, "IPv6 fragment header (reassembly not supported)")                              \
  X(ipv6_bad_ext_header, "IPv6 extension header chain truncated or too long")                      \
  X(l4_truncated, "TCP/UDP/ICMP header beyond the IP payload")                                     \
  X(tcp_bad_offset, "TCP data offset below 5 or beyond the payload")                               \
  X(unsupported_l4, "L4 protocol not served")                                                      \
  X(not_for_us, "destination is neither a VIP, an own address nor a tracked reply")                \
  X(no_backend, "VIP has no backend that accepts new flows")                                       \
  X(mid_flow_no_state, "non-SYN TCP packet of an untracked full-NAT flow")                         \
  X(rst_no_state, "TCP RST for an untracked flow")                                                 \
  X(nat_port_exhausted, "no free NAT source port owned by this worker")                            \
  X(nat_no_pool_address, "no NAT pool address of the backend's family")                            \
  X(no_neighbour, "next-hop MAC not resolved yet")                                                 \
  X(too_big, "encapsulated packet exceeds the MTU (ICMP sent when DF)")                            \
  X(no_headroom, "mbuf lacks headroom for encapsulation")                                          \
  X(icmp_unsupported, "ICMP type not handled")                                                     \
  X(icmp_error_no_flow, "ICMP error about an untracked flow")                                      \
  X(icmp_bad_inner, "ICMP error whose quoted header is truncated or malformed")                    \
  X(arp_not_for_us, "ARP/ND not addressed to an own address or VIP")                               \
  X(arp_malformed, "ARP/ND packet malformed")                                                      \
  X(flow_table_full, "flow table full and the mode needs state (full NAT)")                        \
  X(reply_no_flow, "reply-direction packet whose flow expired or went stale")                      \
  X(reply_tuple_conflict, "backend-side tuple already used by another flow")                       \
  X(handoff_ring_full, "owner worker's handoff ring full")                                         \
  X(exception_ring_full, "exception (neighbour) ring full")                                        \
  X(tx_ring_full, "TX queue full")                                                                 \
  X(udp_bad_length, "UDP length field differs from the IP payload length")                         \
  X(client_rate_limited, "new flow over its client's (prefix's) rate limit for the service")       \
  X(new_flow_budget, "new flow over the worker's global new-flow budget")                          \
  X(backend_conn_limit, "new flow whose backend (and retries) are at their connection cap")        \
  X(syn_cookie_invalid, "ACK without state that carries no valid SYN cookie (synproxy)")           \
  X(synproxy_pending, "segment of a proxied flow before the backend answered our SYN")

#define SLUICE_WORKER_COUNTERS(X)                                                                  \
  X(rx_packets, "packets received")                                                                \
  X(rx_bytes, "bytes received")                                                                    \
  X(tx_packets, "packets transmitted")                                                             \
  X(tx_bytes, "bytes transmitted")                                                                 \
  X(dropped, "packets dropped (sum of the drop reasons)")                                          \
  X(flows_created, "flow entries created")                                                         \
  X(flows_expired, "flow entries expired by idle timeout")                                         \
  X(flows_evicted, "live flows evicted to make room (sum of the non-expired classes below)")       \
  X(flows_stale, "flow entries whose backend slot was reincarnated")                               \
  X(flows_reset, "flows reset (RST sent) because their backend went down")                         \
  X(flows_active, "flow entries currently held (gauge)")                                           \
  X(untracked, "packets forwarded statelessly because the flow table was full")                    \
  X(sh_affinity_full, "sh affinity table full: client scheduled without stored affinity")          \
  X(arp_replies, "ARP/NA replies sent for own addresses and VIPs")                                 \
  X(icmp_echo_replies, "ICMP/ICMPv6 echo replies sent")                                            \
  X(icmp_errors_forwarded, "ICMP errors forwarded to a flow's backend or client")                  \
  X(icmp_too_big_sent, "ICMP frag-needed/packet-too-big sent to clients")                          \
  X(handoff_out, "packets handed to their owner worker")                                           \
  X(handoff_in, "packets received from other workers")                                             \
  X(exception_out, "packets passed to the neighbour/exception path")                               \
  X(generation_changes, "table generations adopted")                                               \
  X(idle_sleeps, "idle back-off sleeps")                                                           \
  X(busy_polls, "RX polls that returned packets")                                                  \
  X(empty_polls, "RX polls that returned nothing")                                                 \
  X(flows_evicted_expired, "expired flows reclaimed by an insert into their full buckets")         \
  X(flows_evicted_closing, "closing flows (FIN, TIME_WAIT, RST) evicted from a full bucket")       \
  X(flows_evicted_half_open, "half-open flows (SYN without answer) evicted from a full bucket")    \
  X(flows_evicted_unconfirmed, "adopted-without-SYN or unanswered-UDP flows evicted")              \
  X(flows_evicted_established, "established flows evicted: nothing else was left in the buckets")  \
  X(mid_flow_rst_sent, "RSTs sent to clients for nat packets without state")                       \
  X(nat_port_evictions, "closing flows evicted to free a NAT port for a new flow")                 \
  X(syn_cookies_sent, "SYN-ACKs with a SYN cookie sent (synproxy)")                                \
  X(syn_cookies_valid, "ACKs with a valid SYN cookie (synproxy)")                                  \
  X(flows_adopted, "flows adopted from a flow snapshot (hitless restart)")                         \
  X(flows_adopt_refused, "snapshot flows not adopted (service, backend or NAT port gone)")         \
  X(mid_flow_rst_limited, "mid-flow RSTs not sent: over --mid-flow-rst-rate (dropped instead)")

namespace sluice {

#define SLUICE_ENUM_ENTRY(name, help) name,
enum class drop_reason : uint16_t { SLUICE_DROP_REASONS(SLUICE_ENUM_ENTRY) count };
enum class worker_counter : uint16_t { SLUICE_WORKER_COUNTERS(SLUICE_ENUM_ENTRY) count };
#undef SLUICE_ENUM_ENTRY

inline constexpr size_t drop_reason_count = size_t(drop_reason::count);
inline constexpr size_t worker_counter_count = size_t(worker_counter::count);

#define SLUICE_NAME_ENTRY(name, help) std::string_view(#name),
inline constexpr std::array<std::string_view, drop_reason_count> drop_reason_names = {
    SLUICE_DROP_REASONS(SLUICE_NAME_ENTRY)};
inline constexpr std::array<std::string_view, worker_counter_count> worker_counter_names = {
    SLUICE_WORKER_COUNTERS(SLUICE_NAME_ENTRY)};
#undef SLUICE_NAME_ENTRY

#define SLUICE_HELP_ENTRY(name, help) std::string_view(help),
inline constexpr std::array<std::string_view, drop_reason_count> drop_reason_help = {
    SLUICE_DROP_REASONS(SLUICE_HELP_ENTRY)};
inline constexpr std::array<std::string_view, worker_counter_count> worker_counter_help = {
    SLUICE_WORKER_COUNTERS(SLUICE_HELP_ENTRY)};
#undef SLUICE_HELP_ENTRY

} // namespace sluice
