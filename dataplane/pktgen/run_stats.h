// What one sluice-pktgen run (or one trial of the NDR search) measured:
// packets and bytes per port and direction, per-stream loss by sequence
// number and latency, connection counts, rewrite-check failures by reason.
// Written only by the pktgen lcore; the per-second printer reads a copy. The
// JSON summary is the machine interface (scripts/bench-load.sh reads it) and
// its fields are documented in docs/benchmarking.md.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "latency_histogram.h"
#include "profile.h"

// X(name, help): why a received packet failed the rewrite check.
#define PKTGEN_CHECK_FAILURES(X)                                                                   \
  X(truncated, "frame too short or headers malformed")                                             \
  X(not_stamped, "no pktgen stamp where one was expected")                                         \
  X(ip_checksum, "IPv4 header checksum wrong")                                                     \
  X(l4_checksum, "TCP/UDP checksum wrong")                                                         \
  X(ttl_changed, "TTL differs from what was sent")                                                 \
  X(unknown_service, "packet matches no service of the profile")                                   \
  X(backend_mac, "destination MAC is not the chosen backend's")                                    \
  X(backend_addr, "destination is not a backend of the service")                                   \
  X(nat_source, "full-NAT source not a pool address or port outside the NAT range")                \
  X(client_source, "source is not the client that sent the packet")                                \
  X(vip_changed, "DSR packet's destination is not the VIP")                                        \
  X(outer_header, "encapsulation header wrong (protocol, source prefix, GUE port)")                \
  X(reply_source, "reply to the client does not come from VIP:port")                               \
  X(reply_destination, "reply to the client not addressed to that client")

namespace sluice::pktgen {

enum class check_failure : uint8_t {
#define X(n, h) n,
  PKTGEN_CHECK_FAILURES(X)
#undef X
      count
};

// Sequence-number loss tracking of one stream. Gaps count packets skipped in
// the sequence; a late packet fills one back (reordering, not loss).
struct seq_tracker {
  uint32_t next = 0;
  uint64_t gaps = 0;
  uint64_t late = 0;
  void see(uint32_t seq) {
    int32_t d = int32_t(seq - next);
    if (d >= 0) {
      gaps += uint32_t(d);
      next = seq + 1;
    } else {
      ++late;
      if (gaps)
        --gaps;
    }
  }
};

struct stream_stats {
  uint64_t tx_packets = 0, tx_bytes = 0;
  uint64_t rx_packets = 0, rx_bytes = 0;
  seq_tracker seq;
  uint32_t next_tx_seq = 0;
  latency_histogram latency;
};

// Per traffic item: the client->backend stream and the backend->client one.
struct item_stats {
  stream_stats to_backend;
  stream_stats to_client;
  // churn (and floods: the SYN-ACKs their spoofed sources never see)
  uint64_t conns_opened = 0, conns_completed = 0, conns_reset = 0;
  uint64_t handshake_done = 0;
  latency_histogram connect_latency; // SYN to SYN-ACK, microsecond resolution
};

struct port_stats {
  uint64_t tx_packets = 0, tx_bytes = 0, rx_packets = 0, rx_bytes = 0;
  uint64_t tx_retries = 0; // packets the TX queue refused once and took later
  uint64_t tx_dropped = 0; // generated but dropped by pktgen: its TX buffer was full
};

struct run_stats {
  port_stats port[2]; // 0: client side, 1: backend side
  std::vector<item_stats> items;
  uint64_t check_failures[size_t(check_failure::count)] = {};
  uint64_t checked = 0;         // packets that went through the rewrite check
  uint64_t foreign = 0;         // non-IP or unrelated packets received (ARP, ...)
  uint64_t flood_replies = 0;   // backend answers to spoofed sources seen on the client side
  uint64_t backend_ignored = 0; // flood packets the stateless backends absorbed
  uint64_t alloc_failures = 0;
  double elapsed_s = 0;

  explicit run_stats(size_t n_items = 0) : items(n_items) {}
  uint64_t mismatches() const;
  void fail(check_failure f) { ++check_failures[size_t(f)]; }
};

const char* check_failure_name(check_failure f);

// One line for the per-second report: the rates between `prev` and `now` over
// `dt_s` seconds.
std::string per_second_line(const run_stats& prev, const run_stats& now, double dt_s);

// The summary of a run (see docs/benchmarking.md for the fields).
nlohmann::json summary_json(const profile& p, const run_stats& s, double scale);

// Connections opened and neither completed nor reset (after the drain).
uint64_t failed_connections(const item_stats& s);

} // namespace sluice::pktgen
