#include "maglev.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>

#include "flow_hash.h"

namespace sluice {

namespace {

// Seeds of the two identity hashes (offset and skip). Changing them changes
// every table: they are part of the cross-instance contract.
constexpr uint64_t offset_seed = 0x6d61676c65762d6full; // "maglev-o"
constexpr uint64_t skip_seed = 0x6d61676c65762d73ull;   // "maglev-s"

constexpr uint32_t none = std::numeric_limits<uint32_t>::max();

struct walker {
  uint32_t slot;
  uint32_t pos;  // next preferred entry (offset + j * skip) mod m
  uint32_t skip; // 1..m-1
  uint32_t weight;
  // Target of the next turn, kept as quotient/remainder by weight so the round
  // of the next turn is known without dividing: target = due_q * weight + due_r.
  uint64_t due_q;
  uint32_t due_r;
  uint32_t step_q;   // max_weight / weight
  uint32_t step_r;   // max_weight % weight
  uint32_t next;     // next walker in the same calendar bucket
  uint32_t inv_skip; // skip^-1 mod m, computed when the end phase needs it (0 = not yet)
};

// x^-1 mod m for prime m and 0 < x < m (extended Euclid).
uint32_t mod_inverse(uint32_t x, uint32_t m) {
  int64_t t = 0, new_t = 1, r = m, new_r = x;
  while (new_r != 0) {
    const int64_t q = r / new_r;
    t = std::exchange(new_t, t - q * new_t);
    r = std::exchange(new_r, r - q * new_r);
  }
  return uint32_t(t < 0 ? t + m : t);
}

// x mod m without a division (Barrett reduction; m < 2^32).
struct barrett {
  uint64_t m, mu;
  explicit barrett(uint32_t mod) : m(mod), mu(UINT64_MAX / mod) {}
  uint64_t reduce(uint64_t x) const {
    const uint64_t q = uint64_t(((unsigned __int128)x * mu) >> 64);
    uint64_t r = x - q * m;
    while (r >= m)
      r -= m;
    return r;
  }
};

} // namespace

bool is_prime(uint32_t n) {
  if (n < 2)
    return false;
  if (n % 2 == 0)
    return n == 2;
  if (n % 3 == 0)
    return n == 3;
  for (uint64_t i = 5; i * i <= n; i += 6)
    if (n % i == 0 || n % (i + 2) == 0)
      return false;
  return true;
}

std::array<uint8_t, 20> maglev_identity(const ip_addr& addr, uint16_t port) {
  std::array<uint8_t, 20> id{};
  std::memcpy(id.data(), addr.bytes.data(), 16);
  id[16] = uint8_t(port & 0xff);
  id[17] = uint8_t(port >> 8);
  return id;
}

bool maglev_populate(std::span<const maglev_backend> backends, uint32_t m, uint32_t* out) {
  if (!is_prime(m))
    return false;
  // Participants in identity order (slot as tie-break): the input order must not
  // matter.
  std::vector<const maglev_backend*> order;
  order.reserve(backends.size());
  uint64_t max_w = 0, sum_w = 0;
  uint32_t min_w = UINT32_MAX;
  for (const maglev_backend& b : backends) {
    if (b.weight == 0)
      continue;
    order.push_back(&b);
    max_w = std::max<uint64_t>(max_w, b.weight);
    min_w = std::min(min_w, b.weight);
    sum_w += b.weight;
  }
  if (order.empty() || order.size() > m)
    return false;
  std::sort(order.begin(), order.end(), [](const maglev_backend* a, const maglev_backend* b) {
    int c = std::memcmp(a->identity.data(), b->identity.data(), a->identity.size());
    return c != 0 ? c < 0 : a->slot < b->slot;
  });

  const uint32_t n = uint32_t(order.size());
  const bool all_equal = min_w == max_w;
  // By round r, backend i has claimed at least floor(r * w_i / max_w) entries,
  // so the table is full once r * sum_w / max_w - n >= m. Turns due later than
  // that bound can never happen and are not queued.
  // max_w <= sum_w, so this is at most m + n + 2 (128-bit to rule out overflow
  // with 32-bit weights).
  const uint64_t last_round =
      uint64_t(((unsigned __int128)(uint64_t(m) + n) * max_w + sum_w - 1) / sum_w + 1);
  std::vector<uint32_t> head(last_round + 1, none);
  std::vector<uint32_t> tail(last_round + 1, none);
  std::vector<walker> w(n);
  auto enqueue = [&](uint32_t i, uint64_t round) {
    if (round > last_round)
      return;
    w[i].next = none;
    if (head[round] == none)
      head[round] = i;
    else
      w[tail[round]].next = i;
    tail[round] = i;
  };
  for (uint32_t i = 0; i < n; ++i) {
    const maglev_backend& b = *order[i];
    walker& k = w[i];
    k.slot = b.slot;
    const uint64_t h1 = hash_bytes(b.identity.data(), uint32_t(b.identity.size()), offset_seed);
    const uint64_t h2 = hash_bytes(b.identity.data(), uint32_t(b.identity.size()), skip_seed);
    k.pos = uint32_t(h1 % m);
    k.skip = m > 1 ? uint32_t(h2 % (m - 1)) + 1 : 1;
    k.weight = b.weight;
    k.step_q = uint32_t(max_w / b.weight);
    k.step_r = uint32_t(max_w % b.weight);
    // First target is max_w: the heaviest backends take a turn in round 1.
    k.due_q = k.step_q;
    k.due_r = k.step_r;
    enqueue(i, k.due_q + (k.due_r != 0));
  }

  // Occupancy as a bitmap (8 KiB for M = 65537, so it stays in L1): the
  // preference walk probes it, not the 4-byte entries.
  std::vector<uint64_t> taken((uint64_t(m) + 63) / 64, 0);
  uint32_t filled = 0;
  // End phase: with F entries left a walk costs about m / F probes, so the last
  // entries would dominate (the last 1% of M costs more than the first 99%).
  // Once F <= ~sqrt(m), each turn instead picks, among the free entries, the
  // one the walk would reach first: the c minimising (c - pos) * skip^-1 mod m,
  // the number of skips from pos to c. Same result, O(F) per turn.
  uint32_t end_phase = 16;
  while (uint64_t(end_phase) * end_phase < m)
    end_phase *= 2;
  end_phase = std::min(end_phase / 2, m);
  std::vector<uint32_t> free_entries;
  const barrett mod_m(m);
  // One turn of walker k: its most preferred free entry.
  auto claim = [&](walker& k) {
    uint32_t c = k.pos;
    if (m - filled > end_phase) {
      while (taken[c >> 6] >> (c & 63) & 1) {
        c += k.skip;
        if (c >= m)
          c -= m;
      }
      taken[c >> 6] |= uint64_t(1) << (c & 63);
    } else {
      if (free_entries.empty())
        for (uint32_t e = 0; e < m; ++e)
          if (!(taken[e >> 6] >> (e & 63) & 1))
            free_entries.push_back(e);
      if (k.inv_skip == 0)
        k.inv_skip = mod_inverse(k.skip, m);
      size_t best = 0;
      uint64_t best_steps = UINT64_MAX;
      for (size_t f = 0; f < free_entries.size(); ++f) {
        const uint32_t e = free_entries[f];
        const uint64_t diff = e >= c ? e - c : uint64_t(e) + m - c;
        const uint64_t steps = mod_m.reduce(diff * k.inv_skip);
        if (steps < best_steps) {
          best_steps = steps;
          best = f;
        }
      }
      c = free_entries[best];
      free_entries[best] = free_entries.back();
      free_entries.pop_back();
    }
    out[c] = k.slot;
    ++filled;
    c += k.skip;
    if (c >= m)
      c -= m;
    k.pos = c;
  };
  if (all_equal) {
    // Every backend is due every round: plain round robin in identity order.
    while (filled < m)
      for (uint32_t i = 0; i < n && filled < m; ++i)
        claim(w[i]);
    return true;
  }
  std::vector<uint32_t> turn; // the backends due this round, in identity order
  std::vector<uint64_t> due_bits((n + 63) / 64, 0);
  for (uint64_t round = 1; round <= last_round && filled < m; ++round) {
    turn.clear();
    for (uint32_t i = head[round]; i != none; i = w[i].next)
      turn.push_back(i);
    if (!std::is_sorted(turn.begin(), turn.end())) { // only with mixed weights
      // Counting sort through a bitmap of n bits: O(n / 64 + |turn|).
      for (uint32_t i : turn)
        due_bits[i >> 6] |= uint64_t(1) << (i & 63);
      turn.clear();
      for (uint32_t word = 0; word < due_bits.size(); ++word)
        for (uint64_t bits = std::exchange(due_bits[word], 0); bits != 0; bits &= bits - 1)
          turn.push_back(word * 64 + uint32_t(__builtin_ctzll(bits)));
    }
    for (uint32_t i : turn) {
      if (filled == m)
        break;
      walker& k = w[i];
      claim(k);
      // target += max_w, in quotient/remainder form.
      k.due_q += k.step_q;
      k.due_r += k.step_r;
      if (k.due_r >= k.weight) {
        k.due_r -= k.weight;
        ++k.due_q;
      }
      enqueue(i, k.due_q + (k.due_r != 0));
    }
  }
  return filled == m;
}

std::vector<uint32_t> maglev_table(std::span<const maglev_backend> backends, uint32_t m) {
  std::vector<uint32_t> t(m);
  if (m == 0 || !maglev_populate(backends, m, t.data()))
    return {};
  return t;
}

} // namespace sluice
