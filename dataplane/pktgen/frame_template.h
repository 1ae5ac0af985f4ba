// A prebuilt frame for one paced stream (traffic item, direction, frame size):
// every byte that is the same for all its packets — MACs, IP header, ports of
// the service, TCP flags, window, zero payload — is written once, and so are
// the checksum sums over them. Sending a packet is then a copy of the frame
// plus the per-packet fields (addresses, ports, sequence and acknowledgement
// numbers, the stamp head) and a few adds to finish both checksums, instead of
// building the headers and summing them for every packet. Trade-off: one copy
// of the frame per stream and frame size (at most 1514 bytes each), which is
// cheaper than per-flow templates (64 bytes times up to 10M flows) and costs
// the same per packet. Used for every generated packet whose layout is fixed;
// variable-layout packets (churn, warm-up, replies) go through write_frame.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "checksum.h"
#include "frame_writer.h"

namespace sluice::pktgen {

// The per-packet fields of a templated frame (network byte order as stored,
// except where noted).
struct frame_vars {
  uint32_t src_be = 0, dst_be = 0;
  uint16_t sport = 0, dport = 0; // host order
  uint32_t seq = 0, ack = 0;     // host order, TCP only
  const uint8_t* head = nullptr; // frame_template::head_len() bytes
};

inline constexpr uint32_t min_frame = 60; // Ethernet minimum without FCS

class frame_template {
public:
  frame_template() = default;
  // `f`'s addresses, ports, seq/ack and head contents are ignored (they are
  // per packet); its MACs, protocol, flags, head_len and payload_len fix the
  // template.
  explicit frame_template(frame_spec f) {
    std::vector<uint8_t> zero_head(f.head_len, 0);
    f.src_be = f.dst_be = 0;
    f.sport = f.dport = 0;
    f.seq = f.ack = 0;
    f.head = zero_head.data();
    bytes_.assign(header_bytes(f.proto) + f.payload_len + min_frame, 0);
    len_ = write_frame(bytes_.data(), f);
    if (len_ < min_frame)
      len_ = min_frame; // the padding stays zero
    bytes_.resize(len_);
    tcp_ = f.proto == proto_tcp;
    head_len_ = f.head_len;
    uint8_t* ip = bytes_.data() + eth_len;
    uint8_t* l4 = ip + ip_len;
    const uint32_t l4h = tcp_ ? tcp_len : udp_len;
    const uint32_t l4_bytes = l4h + f.payload_len;
    // Sums without the checksum fields themselves (zeroed here).
    std::memset(ip + 10, 0, 2);
    std::memset(l4 + csum_off(), 0, 2);
    // Folded to 16 bits: csum_partial sums 32-bit words and may return a value
    // near 2^32, which the per-packet adds would overflow.
    ip_sum_ = csum_fold(csum_partial(ip, ip_len));
    // Pseudo-header without the addresses, then the L4 header; the payload
    // after the head is zero and adds nothing.
    l4_sum_ = csum_fold(
        csum_partial(l4, l4h, uint32_t(htons(uint16_t(l4_bytes))) + htons(uint16_t(f.proto))));
  }

  uint32_t len() const { return len_; }
  uint32_t head_len() const { return head_len_; }

  // Writes the frame with `v` into `out` (room for len() bytes); returns len().
  uint32_t write(uint8_t* out, const frame_vars& v) const {
    std::memcpy(out, bytes_.data(), len_);
    uint8_t* ip = out + eth_len;
    uint8_t* l4 = ip + ip_len;
    std::memcpy(ip + 12, &v.src_be, 4);
    std::memcpy(ip + 16, &v.dst_be, 4);
    const uint32_t addrs =
        (v.src_be & 0xffff) + (v.src_be >> 16) + (v.dst_be & 0xffff) + (v.dst_be >> 16);
    const uint16_t ipc = csum_finish(ip_sum_ + addrs);
    std::memcpy(ip + 10, &ipc, 2);
    const uint16_t sp = htons(v.sport), dp = htons(v.dport);
    std::memcpy(l4, &sp, 2);
    std::memcpy(l4 + 2, &dp, 2);
    uint32_t s = l4_sum_ + addrs + sp + dp;
    uint8_t* pay = l4 + (tcp_ ? tcp_len : udp_len);
    if (tcp_) {
      const uint32_t sq = htonl(v.seq), ak = htonl(v.ack);
      std::memcpy(l4 + 4, &sq, 4);
      std::memcpy(l4 + 8, &ak, 4);
      s += (sq & 0xffff) + (sq >> 16) + (ak & 0xffff) + (ak >> 16);
    }
    if (head_len_) {
      std::memcpy(pay, v.head, head_len_);
      s = csum_partial(pay, head_len_, s); // the head starts at an even offset of L4
    }
    uint16_t c = csum_finish(s);
    if (!tcp_ && c == 0)
      c = 0xffff; // UDP: zero means "no checksum"
    std::memcpy(l4 + csum_off(), &c, 2);
    return len_;
  }

private:
  uint32_t csum_off() const { return tcp_ ? 16 : 6; }

  std::vector<uint8_t> bytes_;
  uint32_t len_ = 0;
  uint32_t head_len_ = 0;
  bool tcp_ = true;
  uint32_t ip_sum_ = 0, l4_sum_ = 0;
};

} // namespace sluice::pktgen
