// SYN cookies: the initial sequence number of a SYN-ACK that lets the balancer
// answer a SYN without keeping any state, and recognise the client's ACK as
// the completion of a handshake it really answered.
//
// Cookie layout (32 bits, the SYN-ACK's sequence number; the client's ACK
// acknowledges cookie + 1):
//   bits 31..9  23-bit MAC: keyed hash of the 4-tuple, the client's ISN, the
//               period and the option bits below, with this worker's secret
//   bits  8..7  period (counter of 64-second periods, low 2 bits)
//   bits  6..5  MSS index into syn_cookie_mss (largest entry <= client's MSS)
//   bits  4..1  client's window scale (0..14); 15 = none offered
//   bit      0  client offered SACK
// The option bits are covered by the MAC, so a forged ACK cannot change them.
// A cookie is accepted during the period that issued it and the next one
// (64 to 128 s), like Linux's. Timestamps are not encoded: a connection
// opened through a cookie runs without them (see docs/forwarding.md).
//
// Trade-offs: 23 bits of MAC mean a blind attacker guesses a valid ACK with
// probability 2^-23 per try and period pair; each accepted guess only opens
// one backend connection (then subject to the per-client limits). The MAC is
// SipHash-1-3 over at most 48 bytes: about 15 ns, no table, no state beyond
// the per-worker secret (a 128-bit key derived per period from a random seed
// drawn at start-up, so workers and restarts do not share cookies).
#pragma once

#include <array>
#include <cstdint>
#include <cstring>

namespace sluice::dp {

inline constexpr std::array<uint16_t, 4> syn_cookie_mss = {536, 1220, 1440, 1460};
inline constexpr uint32_t syn_cookie_period_ms = 64000;
inline constexpr uint8_t syn_cookie_no_wscale = 15;

// What the client's SYN offered and the cookie carries.
struct syn_options {
  uint16_t mss = 536; // clamped down to a table entry when encoded
  uint8_t wscale = syn_cookie_no_wscale;
  bool sack = false;
};

// The 4-tuple as it appears in the client's SYN: addresses 16 bytes
// (IPv4-mapped for v4), ports network order.
struct syn_tuple {
  uint8_t src[16];
  uint8_t dst[16];
  uint16_t sport_be;
  uint16_t dport_be;
};

namespace syn_cookie_detail {

inline uint64_t rotl(uint64_t x, int b) {
  return (x << b) | (x >> (64 - b));
}

struct sip {
  uint64_t v0, v1, v2, v3;
  sip(uint64_t k0, uint64_t k1)
      : v0(0x736f6d6570736575ull ^ k0), v1(0x646f72616e646f6dull ^ k1),
        v2(0x6c7967656e657261ull ^ k0), v3(0x7465646279746573ull ^ k1) {}
  void round() {
    v0 += v1;
    v1 = rotl(v1, 13);
    v1 ^= v0;
    v0 = rotl(v0, 32);
    v2 += v3;
    v3 = rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = rotl(v1, 17);
    v1 ^= v2;
    v2 = rotl(v2, 32);
  }
  void word(uint64_t m) {
    v3 ^= m;
    round(); // SipHash-1-3: one compression round per word
    v0 ^= m;
  }
  uint64_t finish(uint64_t len) {
    word(len << 56);
    v2 ^= 0xff;
    round();
    round();
    round();
    return v0 ^ v1 ^ v2 ^ v3;
  }
};

} // namespace syn_cookie_detail

// One worker's cookie secret: a random 128-bit seed from which the key of
// each 64-second period is derived, with the current and previous period's
// keys cached (refresh() once per burst is enough).
class syn_cookie_secret {
public:
  void seed(uint64_t a, uint64_t b) {
    seed_[0] = a;
    seed_[1] = b;
    period_ = ~0u;
  }
  // `now_ms` is any monotonic millisecond clock of this worker.
  void refresh(uint64_t now_ms) {
    uint32_t p = uint32_t(now_ms / syn_cookie_period_ms);
    if (p == period_)
      return;
    period_ = p;
    derive(p, key_[0]);
    derive(p - 1, key_[1]);
  }
  uint32_t period() const { return period_; }
  // Key of period `p`, which must be the current or the previous one.
  const uint64_t* key(uint32_t p) const { return key_[p == period_ ? 0 : 1]; }

private:
  void derive(uint32_t p, uint64_t* out) const {
    syn_cookie_detail::sip s(seed_[0], seed_[1]);
    s.word(p);
    out[0] = s.finish(8);
    syn_cookie_detail::sip t(seed_[1], seed_[0]);
    t.word(p);
    out[1] = t.finish(8);
  }
  uint64_t seed_[2] = {0, 0};
  uint64_t key_[2][2] = {};
  uint32_t period_ = ~0u;
};

inline uint32_t syn_cookie_mac(const uint64_t* key, const syn_tuple& t, uint32_t client_isn,
                               uint32_t low9) {
  syn_cookie_detail::sip s(key[0], key[1]);
  uint64_t w[4];
  std::memcpy(w, t.src, 16);
  std::memcpy(w + 2, t.dst, 16);
  // IPv4-mapped addresses: the first 8 bytes are zero, skip them.
  bool v4 = w[0] == 0 && w[2] == 0;
  if (!v4) {
    s.word(w[0]);
    s.word(w[2]);
  }
  s.word(w[1]);
  s.word(w[3]);
  s.word(uint64_t(t.sport_be) | uint64_t(t.dport_be) << 16 | uint64_t(low9) << 32);
  s.word(client_isn);
  return uint32_t(s.finish(v4 ? 32 : 48)) & 0x7fffffu;
}

inline uint32_t syn_cookie_mss_index(uint16_t mss) {
  uint32_t i = 0;
  for (uint32_t j = 1; j < syn_cookie_mss.size(); ++j)
    if (syn_cookie_mss[j] <= mss)
      i = j;
  return i;
}

// The cookie (our ISN) for a SYN with sequence number `client_isn`.
inline uint32_t syn_cookie_make(const syn_cookie_secret& sec, const syn_tuple& t,
                                uint32_t client_isn, const syn_options& o) {
  uint32_t ws = o.wscale > 14 ? syn_cookie_no_wscale : o.wscale;
  uint32_t low9 =
      (sec.period() & 3u) << 7 | syn_cookie_mss_index(o.mss) << 5 | ws << 1 | (o.sack ? 1u : 0u);
  return syn_cookie_mac(sec.key(sec.period()), t, client_isn, low9) << 9 | low9;
}

// Checks the ACK that completes a cookie handshake: `ack_seq` is its
// acknowledgement number, `seq` its sequence number (client ISN + 1).
// On success fills `o` (mss is the table entry) and returns true.
inline bool syn_cookie_check(const syn_cookie_secret& sec, const syn_tuple& t, uint32_t seq,
                             uint32_t ack_seq, syn_options& o) {
  uint32_t cookie = ack_seq - 1;
  uint32_t low9 = cookie & 0x1ffu;
  uint32_t cur = sec.period();
  uint32_t p = (low9 >> 7) == (cur & 3u) ? cur : (low9 >> 7) == ((cur - 1) & 3u) ? cur - 1 : ~0u;
  if (p == ~0u)
    return false;
  if (syn_cookie_mac(sec.key(p), t, seq - 1, low9) != cookie >> 9)
    return false;
  o.mss = syn_cookie_mss[(low9 >> 5) & 3u];
  o.wscale = uint8_t((low9 >> 1) & 0xfu);
  o.sack = low9 & 1u;
  return true;
}

} // namespace sluice::dp
