// The marks sluice-pktgen puts in every packet it generates so that whoever
// receives it (its own backend or client role) can tell, without per-packet
// state, which traffic item and flow it belongs to, its sequence number in its
// stream (loss) and when it was sent (latency).
//
// Layout, 14 bytes, host byte order (both ends are this process):
//   kind_magic u8 (0xa0 | kind), item u8, flow u32, seq u32, tx_ns u32.
// A 64-byte TCP frame has only 6 payload bytes, so established TCP packets
// carry the first 6 bytes (kind, item, flow) in the payload and seq / tx_ns in
// the TCP sequence and acknowledgement numbers, which the balancer neither
// reads nor rewrites. Everything else carries all 14 bytes in the payload.
// tx_ns is the sender's TSC in nanoseconds modulo 2^32: latencies below 4.29 s
// come out right across the wrap.
#pragma once

#include <cstdint>
#include <cstring>

namespace sluice::pktgen {

enum class stamp_kind : uint8_t {
  established = 0, // client -> VIP stream
  reverse = 1,     // backend -> client stream (nat/dnat)
  warmup = 2,      // opens a flow and teaches the backend the balancer's mapping
  request = 3,     // churn client data
  response = 4,    // churn backend data
};

inline constexpr uint8_t stamp_magic = 0xa0;
inline constexpr uint32_t stamp_size = 14;
inline constexpr uint32_t stamp_head_size = 6; // the part that fits a 64-byte TCP frame

struct stamp {
  stamp_kind kind = stamp_kind::established;
  uint8_t item = 0;
  uint32_t flow = 0;
  uint32_t seq = 0;
  uint32_t tx_ns = 0;
};

inline void write_stamp_head(uint8_t* p, const stamp& s) {
  p[0] = uint8_t(stamp_magic | uint8_t(s.kind));
  p[1] = s.item;
  std::memcpy(p + 2, &s.flow, 4);
}
inline void write_stamp(uint8_t* p, const stamp& s) {
  write_stamp_head(p, s);
  std::memcpy(p + 6, &s.seq, 4);
  std::memcpy(p + 10, &s.tx_ns, 4);
}
// False when the bytes are not a stamp head (foreign or corrupted packet).
inline bool read_stamp_head(const uint8_t* p, uint32_t avail, stamp& s) {
  if (avail < stamp_head_size || (p[0] & 0xf0) != stamp_magic || (p[0] & 0x0f) > 4)
    return false;
  s.kind = stamp_kind(p[0] & 0x0f);
  s.item = p[1];
  std::memcpy(&s.flow, p + 2, 4);
  return true;
}
inline bool read_stamp(const uint8_t* p, uint32_t avail, stamp& s) {
  if (avail < stamp_size || !read_stamp_head(p, avail, s))
    return false;
  std::memcpy(&s.seq, p + 6, 4);
  std::memcpy(&s.tx_ns, p + 10, 4);
  return true;
}

} // namespace sluice::pktgen
