// The backend role of sluice-pktgen: every frame the balancer forwards to a
// backend is checked (rewrite_check.h), counted against its stream, and
// answered the way a server would, from the packet alone: SYN -> SYN-ACK
// (server ISN hashed from the 4-tuple it sees), request -> response carrying
// the request's stamp back, FIN -> FIN-ACK; established traffic and floods are
// absorbed. Replies of nat/dnat services go back through the balancer on the
// backend port; DSR replies go straight to the client role, as a DSR network
// routes them past the balancer. Warm-up packets teach it the tuple the
// balancer chose for each established flow (for the reverse streams).
#pragma once

#include <cstdint>

#include <rte_mbuf.h>

#include "pktgen_context.h"
#include "rewrite_check.h"
#include "traffic_generator.h"

namespace sluice::pktgen {

class backend_responder {
public:
  backend_responder(pktgen_context& ctx, traffic_generator& clients)
      : ctx_(ctx), clients_(clients) {}

  // A frame received on the backend port. Borrows the mbuf: the caller frees
  // it (in bulk).
  void on_packet(const rte_mbuf* m, uint64_t now_tsc);

private:
  int attribute(const seen_packet& s) const;
  void reply(uint32_t item, const seen_packet& s, uint8_t flags, uint32_t seq, uint32_t ack,
             const stamp* st, uint16_t payload_len, uint64_t now_tsc, bool counted = true);

  pktgen_context& ctx_;
  traffic_generator& clients_;
};

} // namespace sluice::pktgen
