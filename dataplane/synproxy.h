// Synproxy for `nat` and `dnat` services: the balancer answers a client's SYN
// itself with a SYN cookie (syn_cookie.h) and keeps no state; only an ACK
// carrying a valid cookie creates a flow. The balancer then opens the backend
// side (SYN with the client's ISN and MSS, waits for the SYN-ACK, ACKs it) and
// from then on shifts sequence numbers by the difference of the two ISNs:
// client → backend acknowledgement numbers + delta, backend → client sequence
// numbers - delta, each with an incremental checksum update.
//
// What a proxied connection gives up (documented in docs/forwarding.md): the
// SYN-ACK to the client offers only an MSS option, so window scaling, SACK
// and timestamps are off for the connection (windows up to 64 KiB); the
// backend's own MSS is not passed to the client; data the client sends before
// the backend has answered (including data on the cookie ACK itself) is
// dropped and counted, and the client retransmits it.
//
// Flow-entry use: `synproxy` holds the state below; `hash` holds our ISN
// towards the client until the backend answers, then the delta.
#pragma once

#include <cstdint>

#include "checksum.h"
#include "packet_rewrite.h"
#include "syn_cookie.h"

namespace sluice::dp {

enum synproxy_state : uint8_t {
  synproxy_none = 0,
  synproxy_backend_syn = 1, // our SYN is on its way to the backend
  synproxy_open = 2,        // both halves open: sequence numbers shifted
};

// MSS, window scale and SACK-permitted of a SYN's options (absent: 536, none,
// no). Malformed options end the walk; what was read so far is kept.
inline syn_options parse_syn_options(const uint8_t* l4, uint32_t l4_len) {
  syn_options o;
  uint32_t doff = uint32_t(l4[12] >> 4) * 4;
  if (doff > l4_len)
    doff = l4_len;
  for (uint32_t i = 20; i < doff;) {
    uint8_t kind = l4[i];
    if (kind == 0)
      break;
    if (kind == 1) {
      ++i;
      continue;
    }
    if (i + 1 >= doff)
      break;
    uint8_t len = l4[i + 1];
    if (len < 2 || i + len > doff)
      break;
    if (kind == 2 && len == 4)
      o.mss = uint16_t(l4[i + 2] << 8 | l4[i + 3]);
    else if (kind == 3 && len == 3)
      o.wscale = l4[i + 2] > 14 ? 14 : l4[i + 2];
    else if (kind == 4 && len == 2)
      o.sack = true;
    i += len;
  }
  return o;
}

// Adds `delta` to the 32-bit sequence field at `l4 + off` (4: seq, 8: ack),
// updating the TCP checksum incrementally.
inline void tcp_shift(uint8_t* l4, uint32_t off, uint32_t delta) {
  uint32_t old_be = ld32(l4 + off);
  uint32_t new_be = rte_cpu_to_be_32(rte_be_to_cpu_32(old_be) + delta);
  st32(l4 + off, new_be);
  uint16_t c;
  std::memcpy(&c, l4 + 16, 2);
  csum_replace4(&c, old_be, new_be);
  std::memcpy(l4 + 16, &c, 2);
}

} // namespace sluice::dp
