// The client role of sluice-pktgen, plus the paced streams the backends send
// (the reverse half of established nat/dnat items): builds packets at each
// item's rate, and runs the stateless TCP clients of `churn` items.
//
// Stateless clients: a connection's state travels in its packets. The client
// ISN is the open time in microseconds (so the SYN-ACK's ack number gives the
// connect latency), every request carries the ISN in its stamp and the backend
// echoes it, so the number of exchanges done follows from the acknowledgement
// number. Only connections held open after their last exchange (held_open)
// sit in a FIFO until they are closed. There are no retransmissions: a lost
// packet is a failed connection, which is what the benchmark wants to see.
#pragma once

#include <cstdint>
#include <vector>

#include <rte_mbuf.h>

#include "pktgen_context.h"
#include "rewrite_check.h"

namespace sluice::pktgen {

class traffic_generator {
public:
  explicit traffic_generator(pktgen_context& ctx);

  // Starts a run: pacing restarts at `now_tsc` with every rate times `scale`.
  void start(uint64_t now_tsc, double scale);
  // Sends whatever is due at `now_tsc` (bounded per call).
  void generate(uint64_t now_tsc);
  // Sends one warm-up packet (SYN, or the first UDP datagram) for every
  // established flow not learned yet by the backends, at most `budget` per
  // call; returns how many it sent. `cursor` walks the flows across calls.
  uint32_t warmup(uint32_t budget, uint64_t& cursor);
  uint64_t warmup_flows() const;
  // Closes every connection held open (end of a run).
  void close_held(uint64_t now_tsc);

  // A frame that reached the client side (from the balancer, or straight from
  // a DSR backend). Borrows the mbuf: the caller frees it (in bulk).
  void on_packet(const rte_mbuf* m, uint64_t now_tsc);

private:
  struct held_conn {
    uint32_t addr_be;
    uint16_t port;
    uint32_t seq, ack;
  };
  // A first request waiting for request_delay_ms (seq = client ISN + 1).
  struct delayed_request {
    uint64_t due_tsc;
    held_conn c;
  };
  struct item_state {
    double rate = 0; // per second, scaled
    uint64_t sent = 0;
    uint64_t next_flow = 0; // forward stream (and floods)
    uint32_t next_size = 0;
    uint64_t next_rev_flow = 0; // reverse stream: its own walk, so the cursor stays in step
    uint32_t next_rev_size = 0;
    uint64_t next_conn = 0;
    std::vector<held_conn> held; // ring of held_open entries
    uint32_t held_head = 0, held_n = 0;
    std::vector<delayed_request> delayed; // FIFO ring (request_delay_ms)
    uint32_t delayed_head = 0, delayed_n = 0;
    client_cursor cursor;                // client of next_flow (forward stream)
    std::vector<frame_template> fwd_tpl; // per frame size: established, floods
    std::vector<frame_template> rev_tpl; // per frame size: reverse stream
  };

  uint32_t due(item_state& s, uint64_t now_tsc, uint32_t limit) const;
  void build_templates(uint32_t i);
  // Bursts of `n` packets of one stream: the type is decided once per burst.
  void send_established(uint32_t i, uint32_t n, uint64_t now_tsc);
  void send_reverse(uint32_t i, uint32_t n, uint64_t now_tsc);
  void send_flood(uint32_t i, uint32_t n, uint64_t now_tsc);
  void open_conns(uint32_t i, uint32_t n, uint64_t now_tsc);
  void send_delayed(uint32_t i, uint64_t now_tsc);
  void first_request(uint32_t i, const held_conn& c, uint64_t now_tsc);
  void send_tcp(uint32_t i, uint32_t addr_be, uint16_t port, uint8_t flags, uint32_t seq,
                uint32_t ack, const stamp* st, uint16_t payload_len);
  void close_conn(uint32_t i, const held_conn& c);
  void on_churn(uint32_t i, const seen_packet& s, uint64_t now_tsc);
  int item_of_flow(uint64_t g) const;
  uint64_t rand64();

  pktgen_context& ctx_;
  std::vector<item_state> st_;
  uint64_t start_tsc_ = 0;
  uint64_t rng_ = 0x9e3779b97f4a7c15ull;
};

} // namespace sluice::pktgen
