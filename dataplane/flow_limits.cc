#include "flow_limits.h"

#include <cstring>
#include <fmt/format.h>

#include "flow_hash.h"

namespace sluice::dp {

result<void> flow_limits::init(uint16_t n_workers, uint32_t client_entries,
                               uint32_t max_backend_slots, uint32_t budget_rate,
                               uint32_t budget_burst) {
  if (client_entries > (1u << 26))
    return make_error(fmt::format("flow limits: {} client entries exceed the maximum of {}",
                                  client_entries, 1u << 26));
  n_workers_ = n_workers ? n_workers : 1;
  uint32_t nb = 1;
  while (nb * 4 < client_entries)
    nb <<= 1;
  buckets_.assign(nb, bucket{});
  bucket_mask_ = nb - 1;
  budget_rate_ = budget_rate ? per_worker(budget_rate, 1) : 0;
  budget_burst_ = budget_rate ? (budget_burst ? budget_burst : budget_rate) : 0;
  budget_ = token_bucket{budget_burst_ * 1000, 0};
  closed_.assign(max_backend_slots, 0);
  return {};
}

bool flow_limits::admit_client(uint16_t svc, const uint8_t* client, bool v4, uint8_t prefix,
                               uint32_t rate, uint32_t burst, uint32_t now_ms) {
  if (!rate)
    return true;
  uint8_t a[16];
  std::memcpy(a, client, 16);
  // Mask to the prefix: bits of the family's own address.
  uint32_t first = v4 ? 96 : 0;
  uint32_t keep = first + (prefix > (v4 ? 32 : 128) ? (v4 ? 32 : 128) : prefix);
  for (uint32_t i = 0; i < 16; ++i) {
    uint32_t lo = i * 8;
    if (lo >= keep)
      a[i] = 0;
    else if (lo + 8 > keep)
      a[i] &= uint8_t(0xff << (lo + 8 - keep));
  }
  uint64_t w[2];
  std::memcpy(w, a, 16);
  uint64_t h = mix64(w[0] ^ mix64(w[1] ^ (uint64_t(svc) << 8 | prefix)));
  bucket& b = buckets_[uint32_t(h) & bucket_mask_];
  uint32_t tag = uint32_t(h >> 32) | 1; // never 0 (empty)
  uint32_t r = per_worker(rate, n_workers_), bu = per_worker(burst ? burst : rate, n_workers_);
  entry* victim = &b.way[0];
  for (entry& e : b.way) {
    if (e.tag == tag) {
      e.used_ms = now_ms;
      return e.tb.take(now_ms, r, bu);
    }
    // Empty ways first, then the least recently used.
    if (victim->tag && (!e.tag || int32_t(e.used_ms - victim->used_ms) < 0))
      victim = &e;
  }
  victim->tag = tag;
  victim->used_ms = now_ms;
  victim->tb = token_bucket{bu * 1000, now_ms};
  return victim->tb.take(now_ms, r, bu);
}

} // namespace sluice::dp
