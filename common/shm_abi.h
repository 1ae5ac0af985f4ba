// The shared-memory ABI between sluice-controlplane (writer of tables) and
// sluice-dataplane (reader of tables, writer of stats). This header is the only
// definition of the layout: both processes, the CLI and the tests include it.
//
// One object per instance: a header, two table slots and a stats area. Every
// struct is fixed-layout with explicit reserved fields; sizes and offsets are
// static_asserted and also recorded in the header so an attaching process built
// from different sources is refused with "expected X, got Y". No pointers: all
// references are indices (service, backend slot) or offsets into the object.
// Fields that are read and written concurrently are plain integers accessed
// through std::atomic_ref (see shm_atomic.h), which keeps every struct trivially
// copyable while the accesses themselves are lock-free atomics.
//
// Publication: generation g lives in slot g % 2. The writer fills the slot of
// g + 1 only after every live worker has acknowledged g (so none still reads the
// slot of g - 1), then store-releases `generation = g + 1`. A worker
// load-acquires `generation` once per burst, uses that slot for the whole burst
// and store-releases its acknowledgement: a burst sees old tables or new, never
// a mix.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "counters.h"

namespace sluice::abi {

inline constexpr uint64_t magic = 0x3145434955'4c53ull; // "SLUICE1" read little-endian
inline constexpr uint16_t version_major = 1;
// Minor 1: schedulers, sh/lrt fields. Minor 2: per-state flow timeouts
// (syn_recv, time_wait, closed, udp_unanswered, adopted) at offsets 72..91;
// new-flow defence at 96..127 (service) and 36..43 (backend); backend_counters
// grew to 128 bytes. Minor 3: backend_counters::inactive_flows at 80 (a
// gauge taken from the reserved words) and the backend soft-state array
// (backend_soft, header.soft_offset) after the statistics.
inline constexpr uint16_t version_minor = 3;
inline constexpr uint32_t cache_line = 64;

enum class fwd_mode : uint8_t { nat = 1, dnat = 2, dsr_l2 = 3, dsr_ipip = 4, dsr_gue = 5 };
// Values are stored in shared memory: append only.
enum class scheduler_kind : uint8_t {
  maglev = 1,
  rr = 2,
  wrr = 3,
  lc = 4,
  wlc = 5,
  sh = 6,
  random = 7,
  two_choices = 8,
  least_bandwidth = 9,
  least_response_time = 10,
};
inline constexpr uint8_t scheduler_kind_max = 10;
enum class backend_state : uint8_t { up = 1, down = 2, draining = 3, disabled = 4 };

// Flag bits of service_entry::flags and backend_entry::flags.
inline constexpr uint16_t service_in_use = 1u << 0;
// Since minor 1: TCP flows of a backend that goes down (or leaves) are reset
// (RST to the client, and to the backend when it is still known) instead of
// being kept until they end. NAT modes only: in DSR the balancer cannot see
// the connection's return half.
inline constexpr uint16_t service_reset_on_down = 1u << 1;
// Since minor 2: service_entry::defence_flags.
// A non-SYN TCP packet of a `nat` service without state is dropped silently
// (mid_flow_no_state) instead of being answered with an RST to the client.
inline constexpr uint8_t service_no_mid_flow_rst = 1u << 0;
// service_entry::synproxy: when SYNs are answered with cookies (nat, dnat).
enum class synproxy_mode : uint8_t { off = 0, on = 1, automatic = 2 };
inline constexpr uint32_t backend_in_use = 1u << 0;
// Since minor 1: a backend removed from its service whose slot has not been
// given to another backend yet. It takes no new flows, but flows already
// tracked to it (same incarnation) keep going to it until they end, so a
// removal does not break connections ("keep"); `reset_on_down` services reset
// them instead.
inline constexpr uint32_t backend_retired = 1u << 1;
// slot_header::flags: what kinds of services the slot holds, so the packet path
// can skip whole lookups (e.g. the reply table when no NAT service exists).
inline constexpr uint32_t slot_has_nat = 1u << 0;
inline constexpr uint32_t slot_has_dnat = 1u << 1;

// Sizes of the object, chosen when it is created and checked on attach.
struct capacities {
  uint32_t max_services;   // service indices 0..max_services-1
  uint32_t max_backends;   // backend slots 0..max_backends-1 (global, stable)
  uint32_t lookup_entries; // per slot: u32 entries shared by all services' Maglev tables
  uint32_t max_workers;    // dataplane worker contexts (ack lines, stats blocks)
};
static_assert(sizeof(capacities) == 16);

inline constexpr capacities default_capacities{256, 4096, 4u * 1024 * 1024, 32};

// A service (virtual server). Index in the slot's service array is stable for
// the service's lifetime so its counters keep their meaning across generations.
struct service_entry {
  uint8_t vip[16];        // network order, IPv4-mapped for v4
  uint16_t port;          // host order
  uint8_t proto;          // IPPROTO_TCP or IPPROTO_UDP
  uint8_t family;         // 4 or 6 (ip_family)
  uint8_t mode;           // fwd_mode
  uint8_t scheduler;      // scheduler_kind
  uint16_t flags;         // service_in_use, ...
  uint32_t timeout_syn_s; // idle timeouts per flow state, seconds
  uint32_t timeout_est_s;
  uint32_t timeout_fin_s;
  uint32_t timeout_udp_s;
  uint32_t lookup_offset; // first entry of the Maglev table in the slot's lookup pool
  uint32_t lookup_size;   // M (prime); 0 when no backend accepts new flows
  uint32_t backend_count; // backends of this service (any state)
  uint16_t gue_port;      // dsr-gue destination UDP port, host order
  uint16_t reserved0;
  uint32_t reserved1;
  uint32_t reserved2; // pads to 64 so `reserved` starts where the asserts say
  // Since minor 1: scheduler parameters.
  uint8_t hash_src;   // maglev/sh: hash the client address only (not the 5-tuple)
  uint8_t sh_prefix4; // sh: client IPv4 addresses share affinity per /sh_prefix4
  uint8_t sh_prefix6; // sh: ... per /sh_prefix6
  uint8_t reserved3;
  uint32_t sh_timeout_s; // sh: affinity persists this long after a client's last new flow
  // Since minor 2: idle timeouts of the other flow states, seconds (0 from an
  // older writer: the dataplane uses its built-in default).
  uint32_t timeout_synrecv_s;        // SYN-ACK seen, client's ACK pending (NAT modes)
  uint32_t timeout_timewait_s;       // FIN from both sides and the final ACK
  uint32_t timeout_closed_s;         // RST seen
  uint32_t timeout_udp_unanswered_s; // UDP flow with a single datagram so far
  uint32_t timeout_adopted_s;        // created by a non-SYN packet, no traffic since
  uint8_t reserved_flow[4];          // 92..95: flow-state fields to come
  // Since minor 2: new-flow defence (limits, mid-flow RST, SYN cookies).
  uint32_t client_rate;        // new flows per second per client prefix (balancer), 0 = off
  uint32_t client_burst;       // bucket depth in flows (0 = client_rate)
  uint8_t client_prefix4;      // IPv4 clients share a bucket per /client_prefix4
  uint8_t client_prefix6;      // IPv6 clients share a bucket per /client_prefix6
  uint8_t synproxy;            // synproxy_mode
  uint8_t defence_flags;       // service_no_mid_flow_rst
  uint32_t synproxy_syn_rate;  // auto: SYNs per second on a worker that switch cookies on
  uint32_t synproxy_half_open; // auto: half-open flows on a worker that switch cookies on
  uint8_t reserved[12];        // 116..127
};
static_assert(sizeof(service_entry) == 128);
static_assert(offsetof(service_entry, port) == 16);
static_assert(offsetof(service_entry, proto) == 18);
static_assert(offsetof(service_entry, family) == 19);
static_assert(offsetof(service_entry, mode) == 20);
static_assert(offsetof(service_entry, scheduler) == 21);
static_assert(offsetof(service_entry, flags) == 22);
static_assert(offsetof(service_entry, timeout_syn_s) == 24);
static_assert(offsetof(service_entry, timeout_udp_s) == 36);
static_assert(offsetof(service_entry, lookup_offset) == 40);
static_assert(offsetof(service_entry, lookup_size) == 44);
static_assert(offsetof(service_entry, backend_count) == 48);
static_assert(offsetof(service_entry, gue_port) == 52);
static_assert(offsetof(service_entry, hash_src) == 64);
static_assert(offsetof(service_entry, sh_prefix4) == 65);
static_assert(offsetof(service_entry, sh_timeout_s) == 68);
static_assert(offsetof(service_entry, timeout_synrecv_s) == 72);
static_assert(offsetof(service_entry, timeout_timewait_s) == 76);
static_assert(offsetof(service_entry, timeout_closed_s) == 80);
static_assert(offsetof(service_entry, timeout_udp_unanswered_s) == 84);
static_assert(offsetof(service_entry, timeout_adopted_s) == 88);
static_assert(offsetof(service_entry, reserved_flow) == 92);
static_assert(offsetof(service_entry, client_rate) == 96);
static_assert(offsetof(service_entry, client_burst) == 100);
static_assert(offsetof(service_entry, client_prefix4) == 104);
static_assert(offsetof(service_entry, client_prefix6) == 105);
static_assert(offsetof(service_entry, synproxy) == 106);
static_assert(offsetof(service_entry, defence_flags) == 107);
static_assert(offsetof(service_entry, synproxy_syn_rate) == 108);
static_assert(offsetof(service_entry, synproxy_half_open) == 112);
static_assert(offsetof(service_entry, reserved) == 116);

// A backend (real server). Slots are global and stable; `incarnation` changes
// whenever a slot is given to a different backend, which lets the dataplane
// recognise flow entries that point at a removed backend.
struct backend_entry {
  uint8_t addr[16];     // network order, IPv4-mapped for v4
  uint16_t port;        // host order; 0 = the service's port
  uint16_t weight;      // 0 = drain: no new flows
  uint8_t state;        // backend_state
  uint8_t family;       // 4 or 6
  uint16_t service;     // owning service index
  uint32_t incarnation; // never 0 for an in-use slot
  uint32_t flags;       // backend_in_use
  uint32_t rtt_hint_us; // since minor 1: latency measured by health checks (0 = unknown)
  // Since minor 2: connection cap (IPVS upper/lower thresholds), whole
  // balancer; each worker applies its share (see dataplane/flow_limits.h).
  uint32_t max_conns; // 0 = no cap
  uint32_t min_conns; // reopen below this; 0 = 3/4 of max_conns
  uint8_t reserved[20];
};
static_assert(sizeof(backend_entry) == 64);
static_assert(offsetof(backend_entry, port) == 16);
static_assert(offsetof(backend_entry, weight) == 18);
static_assert(offsetof(backend_entry, state) == 20);
static_assert(offsetof(backend_entry, family) == 21);
static_assert(offsetof(backend_entry, service) == 22);
static_assert(offsetof(backend_entry, incarnation) == 24);
static_assert(offsetof(backend_entry, flags) == 28);
static_assert(offsetof(backend_entry, rtt_hint_us) == 32);
static_assert(offsetof(backend_entry, max_conns) == 36);
static_assert(offsetof(backend_entry, min_conns) == 40);

// VIP index: open addressing with linear probing, capacity a power of two at
// least twice max_services, so a probe ends within a few entries. Key is
// (vip, port, proto); service_plus1 == 0 marks an empty entry.
struct vip_index_entry {
  uint8_t vip[16];
  uint16_t port; // host order
  uint8_t proto;
  uint8_t reserved0;
  uint32_t service_plus1;
};
static_assert(sizeof(vip_index_entry) == 24);
static_assert(offsetof(vip_index_entry, port) == 16);
static_assert(offsetof(vip_index_entry, service_plus1) == 20);

struct slot_header {
  uint64_t generation;     // generation this slot holds
  uint32_t service_limit;  // highest in-use service index + 1
  uint32_t backend_limit;  // highest in-use backend slot + 1
  uint32_t lookup_used;    // lookup pool entries in use
  uint32_t vip_index_mask; // vip index capacity - 1
  uint32_t flags;          // slot_has_nat, slot_has_dnat
  uint32_t reserved0;
  uint64_t published_ns; // CLOCK_REALTIME of publication
  uint8_t reserved[24];
};
static_assert(sizeof(slot_header) == 64);

// Heartbeats and pids, so each side can tell whether the other is alive.
struct process_info {
  int32_t cp_pid;
  int32_t dp_pid;
  uint64_t cp_heartbeat_ns; // CLOCK_MONOTONIC
  uint64_t dp_heartbeat_ns;
  uint64_t dp_start_ns;
  uint32_t dp_workers; // workers the running dataplane uses
  uint32_t reserved0;
  uint8_t reserved[24];
};
static_assert(sizeof(process_info) == 64);

// One per worker, in its own cache line: only that worker writes it.
struct worker_ack {
  uint64_t acked_generation;
  uint32_t live; // 1 while the worker runs
  uint32_t lcore;
  uint64_t heartbeat_ns;
  uint8_t reserved[40];
};
static_assert(sizeof(worker_ack) == 64);

struct shm_header {
  uint64_t magic;              // 0
  uint16_t version_major;      // 8
  uint16_t version_minor;      // 10
  uint32_t header_size;        // 12: sizeof(shm_header)
  uint64_t total_size;         // 16
  capacities caps;             // 24
  uint32_t service_entry_size; // 40
  uint32_t backend_entry_size; // 44
  uint32_t vip_entry_size;     // 48
  uint32_t slot_header_size;   // 52
  uint32_t worker_stats_size;  // 56
  uint32_t drop_reasons;       // 60: counters in the drop list (names must match)
  uint64_t slot_offset[2];     // 64
  uint64_t slot_size;          // 80
  uint64_t worker_ack_offset;  // 88
  uint64_t stats_offset;       // 96
  uint32_t worker_counters;    // 104
  uint32_t vip_index_capacity; // 108
  uint64_t soft_offset;        // 112: since minor 3, the backend_soft array
  uint8_t reserved0[8];        // 120
  process_info procs;          // 128
  uint64_t generation;         // 192: publication word, own cache line
  uint8_t reserved1[56];       // 200
  uint8_t reserved2[256];      // 256..511
};
static_assert(sizeof(shm_header) == 512);
static_assert(offsetof(shm_header, caps) == 24);
static_assert(offsetof(shm_header, slot_offset) == 64);
static_assert(offsetof(shm_header, stats_offset) == 96);
static_assert(offsetof(shm_header, soft_offset) == 112);
static_assert(offsetof(shm_header, procs) == 128);
static_assert(offsetof(shm_header, generation) == 192);

// Per-worker statistics. Counters are monotonic except the *_active gauges,
// which the owning worker increments and decrements; readers sum over workers.
struct service_counters {
  uint64_t packets; // client → backend direction
  uint64_t bytes;
  uint64_t reply_packets; // backend → client through the balancer (NAT modes)
  uint64_t reply_bytes;
  uint64_t new_flows;
  uint64_t no_backend;   // new flows refused: no backend accepts them
  uint64_t active_flows; // gauge
  uint64_t limited;      // since minor 2: new flows refused by the client rate or worker budget
};
static_assert(sizeof(service_counters) == 64);

struct backend_counters {
  uint64_t packets;
  uint64_t bytes;
  uint64_t new_flows;
  uint64_t active_flows;      // gauge
  uint64_t syn_unanswered;    // NAT modes: SYN entries that expired without SYN-ACK
  uint64_t rst_from_backend;  // NAT modes: RSTs sent by the backend
  uint64_t icmp_unreachable;  // ICMP unreachable about this backend's flows
  uint64_t handshake_ewma_us; // gauge: SYN → SYN-ACK time seen by this worker (NAT), 0 = none
  // Since minor 2 (the struct grew from 64 to 128 bytes).
  uint64_t nat_port_exhausted; // nat: new flows refused, no free local port for this backend
  uint64_t conn_limited;       // new flows that found this backend at its connection cap
  // Since minor 3. Gauge: flows held in fin, last_ack, time_wait or closed
  // (IPVS InActConn); a flow is in exactly one of active_flows and this.
  uint64_t inactive_flows;
  uint64_t reserved[5];
};
static_assert(sizeof(backend_counters) == 128);
static_assert(offsetof(backend_counters, nat_port_exhausted) == 64);
static_assert(offsetof(backend_counters, conn_limited) == 72);
static_assert(offsetof(backend_counters, inactive_flows) == 80);

// Since minor 3: soft state of a backend slot, outside the double-buffered
// tables. Values that change often (the health checks' response-time hint, the
// slow-start weight) are written here in place by the control plane and read
// by the workers on every new-flow decision, instead of rebuilding and
// publishing both table slots every time one of them moves. Each word carries
// the incarnation it was written for in its upper half, so a value never
// applies to another backend that later takes the slot; a word whose
// incarnation does not match the published backend_entry is ignored (the
// table's own value holds). Single writer (the control plane), relaxed 64-bit
// stores; readers need no ordering beyond seeing either the old or new word.
struct backend_soft {
  uint64_t rtt;    // incarnation << 32 | response-time hint in us (0 = unknown)
  uint64_t weight; // incarnation << 32 | effective weight (slow start), 1..65535
  uint64_t reserved[2];
};
static_assert(sizeof(backend_soft) == 32);
static_assert(offsetof(backend_soft, rtt) == 0);
static_assert(offsetof(backend_soft, weight) == 8);

struct worker_counters_block {
  uint64_t worker[worker_counter_count];
  uint64_t drops[drop_reason_count];
};

// Where each piece of the object lives. Both sides compute it from the
// capacities; the creator records it in the header and the attacher compares.
struct layout {
  uint64_t worker_ack_offset;
  uint64_t slot_offset[2];
  uint64_t slot_size;
  uint64_t vip_index_capacity;
  uint64_t services_offset_in_slot;
  uint64_t backends_offset_in_slot;
  uint64_t vip_index_offset_in_slot;
  uint64_t lookup_offset_in_slot;
  uint64_t stats_offset;
  uint64_t worker_stats_size;
  uint64_t counters_size;         // worker_counters_block padded to a cache line
  uint64_t services_stats_offset; // within a worker's stats block
  uint64_t backends_stats_offset;
  uint64_t soft_offset; // backend_soft[max_backends]
  uint64_t total_size;
};

constexpr uint64_t align_up(uint64_t v, uint64_t a) {
  return (v + a - 1) / a * a;
}

constexpr uint64_t next_pow2(uint64_t v) {
  uint64_t p = 1;
  while (p < v)
    p <<= 1;
  return p;
}

constexpr layout compute_layout(const capacities& c) {
  layout l{};
  constexpr uint64_t page = 4096;
  l.worker_ack_offset = sizeof(shm_header);
  uint64_t after_acks = l.worker_ack_offset + uint64_t(c.max_workers) * sizeof(worker_ack);
  l.vip_index_capacity = next_pow2(uint64_t(c.max_services) * 2);
  l.services_offset_in_slot = sizeof(slot_header);
  l.backends_offset_in_slot =
      l.services_offset_in_slot + uint64_t(c.max_services) * sizeof(service_entry);
  l.vip_index_offset_in_slot =
      l.backends_offset_in_slot + uint64_t(c.max_backends) * sizeof(backend_entry);
  l.lookup_offset_in_slot = align_up(
      l.vip_index_offset_in_slot + l.vip_index_capacity * sizeof(vip_index_entry), cache_line);
  l.slot_size = align_up(l.lookup_offset_in_slot + uint64_t(c.lookup_entries) * 4, page);
  l.slot_offset[0] = align_up(after_acks, page);
  l.slot_offset[1] = l.slot_offset[0] + l.slot_size;
  l.counters_size = align_up(sizeof(worker_counters_block), cache_line);
  l.services_stats_offset = l.counters_size;
  l.backends_stats_offset =
      l.services_stats_offset + uint64_t(c.max_services) * sizeof(service_counters);
  l.worker_stats_size = align_up(
      l.backends_stats_offset + uint64_t(c.max_backends) * sizeof(backend_counters), cache_line);
  l.stats_offset = l.slot_offset[1] + l.slot_size;
  l.soft_offset = align_up(l.stats_offset + uint64_t(c.max_workers) * l.worker_stats_size, page);
  l.total_size = align_up(l.soft_offset + uint64_t(c.max_backends) * sizeof(backend_soft), page);
  return l;
}

static_assert(std::is_trivially_copyable_v<shm_header> && std::is_standard_layout_v<shm_header>);
static_assert(std::is_trivially_copyable_v<service_entry> &&
              std::is_standard_layout_v<service_entry>);
static_assert(std::is_trivially_copyable_v<backend_entry> &&
              std::is_standard_layout_v<backend_entry>);
static_assert(std::is_trivially_copyable_v<vip_index_entry>);
static_assert(std::is_trivially_copyable_v<service_counters>);
static_assert(std::is_trivially_copyable_v<backend_counters>);
static_assert(std::is_trivially_copyable_v<backend_soft>);
static_assert(compute_layout(default_capacities).soft_offset % cache_line == 0);
static_assert(compute_layout(default_capacities).slot_offset[0] % 4096 == 0);

} // namespace sluice::abi
