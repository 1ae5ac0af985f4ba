// Verifies what the balancer delivered, frame by frame, against what the
// profile says each forwarding mode must produce (docs/forwarding.md), and
// decodes the packet as the receiving host sees it. Two entry points:
//   - check_at_backend: frames on the backend port (NAT-rewritten,
//     IPIP/GUE-encapsulated or MAC-rewritten);
//   - check_at_client: replies on the client port (translated back by the
//     balancer, or sent straight by a DSR backend).
// Every failure counts one reason (PKTGEN_CHECK_FAILURES) and the frame is not
// used further. Checksums are verified in full, which costs a pass over the
// payload: the price of trusting the figures.
#pragma once

#include <cstdint>
#include <optional>

#include "pktgen_context.h"
#include "stamp.h"

namespace sluice::pktgen {

// The transport packet a host sees (inner packet for encapsulated frames).
struct seen_packet {
  uint32_t service = 0;
  uint32_t src_be = 0, dst_be = 0;
  uint16_t sport = 0, dport = 0; // host order
  uint8_t proto = 0;
  uint8_t flags = 0;
  uint32_t seq = 0, ack = 0; // host order (TCP)
  const uint8_t* payload = nullptr;
  uint32_t payload_len = 0;
  uint32_t backend_be = 0; // the backend the balancer chose (backend side only)
  uint16_t backend_port = 0;
  bool has_stamp = false;
  stamp st;
};

// Checks a frame received on the backend port. Returns the decoded packet,
// or nothing after counting the failure (or counting it foreign).
std::optional<seen_packet> check_at_backend(pktgen_context& ctx, const uint8_t* frame,
                                            uint32_t len);

// Checks a frame received on the client side (from the balancer or from a
// DSR backend). `spoofed` is set for replies to flood sources.
std::optional<seen_packet> check_at_client(pktgen_context& ctx, const uint8_t* frame, uint32_t len,
                                           bool& spoofed);

} // namespace sluice::pktgen
