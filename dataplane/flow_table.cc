#include "flow_table.h"

#include <fmt/format.h>
#include <sys/mman.h>
#include <vector>

namespace sluice::dp {

template <typename Key> flow_table<Key>::~flow_table() {
  if (mem_ && memory_.release)
    memory_.release(mem_, memory_.ctx);
  else if (mem_)
    munmap(mem_, mem_size_);
}

template <typename Key>
result<void> flow_table<Key>::init(const char* name, uint32_t capacity, uint64_t seed,
                                   const flow_table_memory& memory) {
  if (capacity < ways)
    capacity = ways;
  // A third more ways than entries asked for: greedy two-choice buckets of 8
  // meet their first full pair at ~73% load, so `capacity` entries fit
  // before inserts start to evict (see the header).
  uint64_t want_ways = uint64_t(capacity) + capacity / 3;
  n_buckets_ = uint32_t((want_ways + ways - 1) / ways);
  seed_ = seed;
  size_t bucket_bytes = size_t(n_buckets_) * sizeof(flow_bucket);
  size_t record_bytes = size_t(n_buckets_) * ways * sizeof(flow_record<Key>);
  mem_size_ = bucket_bytes + record_bytes;
  memory_ = memory;
  if (memory_.alloc) {
    mem_ = memory_.alloc(mem_size_, memory_.ctx);
    if (!mem_)
      return make_error(fmt::format("flow table {}: cannot allocate {} MiB for {} entries", name,
                                    mem_size_ >> 20, capacity));
    buckets_ = static_cast<flow_bucket*>(mem_);
    records_ = reinterpret_cast<flow_record<Key>*>(static_cast<uint8_t*>(mem_) + bucket_bytes);
    count_ = 0;
    return {};
  }
  mem_ = mmap(nullptr, mem_size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem_ == MAP_FAILED) {
    mem_ = nullptr;
    return make_error(fmt::format("flow table {}: cannot map {} MiB for {} entries", name,
                                  mem_size_ >> 20, capacity));
  }
  // Huge pages keep the TLB from adding a miss per packet at 1M flows; the
  // kernel may decline, which only costs speed.
  madvise(mem_, mem_size_, MADV_HUGEPAGE);
  buckets_ = static_cast<flow_bucket*>(mem_);
  records_ = reinterpret_cast<flow_record<Key>*>(static_cast<uint8_t*>(mem_) + bucket_bytes);
  // Touch every page now, not on the first packets.
  std::memset(mem_, 0, mem_size_);
  count_ = 0;
  return {};
}

template <typename Key>
void flow_table<Key>::lookup_bulk(const Key** keys, uint32_t n, int32_t* positions,
                                  uint64_t* hashes) const {
  for (uint32_t done = 0; done < n; done += 64) {
    uint32_t m = n - done < 64 ? n - done : 64;
    const Key** k = keys + done;
    int32_t* pos = positions + done;
    uint64_t* h = hashes + done;
    // Stage 1: hash, fetch the first bucket.
    for (uint32_t i = 0; i < m; ++i) {
      h[i] = hash(*k[i]);
      __builtin_prefetch(&buckets_[bucket1(h[i])]);
    }
    // Stage 2: the records whose signature matches in the first bucket; the
    // second bucket only for keys without one there, and only when the key
    // may live there (the first has moved keys out) or an insert would look
    // there (the first holds its share).
    uint64_t second = 0;
    for (uint32_t i = 0; i < m; ++i) {
      const uint32_t b1 = bucket1(h[i]);
      if (prefetch_matches(b1, sig_of(h[i])))
        continue;
      const flow_bucket& b = buckets_[b1];
      if (b.moved_out) {
        second |= uint64_t(1) << i;
        __builtin_prefetch(&buckets_[bucket2(h[i])]);
      } else if (ways - free_ways(b) >= first_bucket_share) {
        __builtin_prefetch(&buckets_[bucket2(h[i])]);
      }
    }
    for (uint64_t r = second; r; r &= r - 1) {
      uint32_t i = uint32_t(__builtin_ctzll(r));
      prefetch_matches(bucket2(h[i]), sig_of(h[i]));
    }
    // Stage 3: compare keys; start what the caller reads next.
    for (uint32_t i = 0; i < m; ++i) {
      int32_t p = lookup(*k[i], h[i]);
      pos[i] = p;
      if (p >= 0) {
        const flow_entry& e = records_[p].e;
        // The forward entry's bucket is not needed: a reply refreshes its
        // own deadline (pipeline_impl::flow_expired).
        if (e.kind == flow_kind::reply)
          __builtin_prefetch(&records_[e.peer], 1);
      } else {
        int32_t f = free_way(bucket1(h[i]), bucket2(h[i]));
        if (f >= 0)
          __builtin_prefetch(&records_[f], 1);
      }
    }
  }
}

template <typename Key> bool flow_table<Key>::prefetch_matches(uint32_t bi, uint16_t s) const {
  const flow_bucket& b = buckets_[bi];
  bool any = false;
  for (uint32_t w = 0; w < ways; ++w)
    if (b.sig[w] == s) {
      __builtin_prefetch(&records_[bi * ways + w]);
      any = true;
    }
  return any;
}

template <typename Key> uint32_t flow_table<Key>::free_ways(const flow_bucket& b) {
  uint32_t n = 0;
  for (uint32_t w = 0; w < ways; ++w)
    n += b.sig[w] == 0;
  return n;
}

template <typename Key> bool flow_table<Key>::moved_out_consistent(bool exact) const {
  std::vector<uint32_t> want(n_buckets_, 0);
  for (uint32_t pos = 0; pos < n_buckets_ * ways; ++pos)
    if (buckets_[pos / ways].sig[pos % ways])
      if (const uint32_t b1 = bucket1(hash(records_[pos].key)); b1 != pos / ways)
        ++want[b1];
  for (uint32_t b = 0; b < n_buckets_; ++b)
    if (exact ? want[b] != buckets_[b].moved_out : want[b] > buckets_[b].moved_out)
      return false;
  return true;
}

template <typename Key> int32_t flow_table<Key>::free_way(uint32_t b1, uint32_t b2) const {
  int32_t free_pos[2] = {-1, -1};
  uint32_t used_n[2] = {0, 0};
  uint32_t bi[2] = {b1, b2};
  for (int j = 0; j < 2; ++j) {
    const flow_bucket& b = buckets_[bi[j]];
    for (uint32_t w = 0; w < ways; ++w) {
      if (b.sig[w] == 0) {
        if (free_pos[j] < 0)
          free_pos[j] = int32_t(bi[j] * ways + w);
      } else {
        ++used_n[j];
      }
    }
    // The first bucket while it has room to spare: lookups then rarely need
    // the second one.
    if (j == 0 && used_n[0] < first_bucket_share)
      return free_pos[0];
  }
  if (free_pos[0] < 0)
    return free_pos[1];
  if (free_pos[1] < 0)
    return free_pos[0];
  return used_n[1] < used_n[0] ? free_pos[1] : free_pos[0];
}

template <typename Key>
flow_slot flow_table<Key>::find_slot(uint64_t h, uint32_t now_ms, int32_t keep) const {
  uint32_t bi[2] = {bucket1(h), bucket2(h)};
  if (int32_t f = free_way(bi[0], bi[1]); f >= 0)
    return {f, true, evict_class::expired, -1};
  // Both full: the lowest class, then the nearest deadline; and the best
  // unconfirmed entry as the alternative to a half-open victim.
  flow_slot best;
  uint32_t best_left = 0, alt_left = 0;
  for (int j = 0; j < 2; ++j) {
    const flow_bucket& b = buckets_[bi[j]];
    for (uint32_t w = 0; w < ways; ++w) {
      int32_t pos = int32_t(bi[j] * ways + w);
      if (pos == keep)
        continue;
      uint32_t d = b.deadline[w];
      bool exp = d != no_deadline && int32_t(now_ms - d) > 0;
      auto c = exp ? evict_class::expired : evict_class(b.cls[w]);
      uint32_t left = exp ? 0 : d == no_deadline ? 0xffffffffu : d - now_ms;
      if (best.pos < 0 || c < best.cls || (c == best.cls && left < best_left)) {
        best.pos = pos;
        best.cls = c;
        best_left = left;
      }
      if (c == evict_class::unconfirmed && (best.alt < 0 || left < alt_left)) {
        best.alt = pos;
        alt_left = left;
      }
    }
  }
  best.free = false;
  return best;
}

template <typename Key>
bool flow_table<Key>::read_consistent(int32_t pos, flow_record<Key>& out,
                                      uint32_t& deadline_out) const {
  const flow_bucket& b = buckets_[uint32_t(pos) / ways];
  auto& seq = const_cast<uint32_t&>(b.seq);
  for (;;) {
    uint32_t s1 = std::atomic_ref<uint32_t>(seq).load(std::memory_order_acquire);
    if (s1 & 1) {
      __builtin_ia32_pause();
      continue;
    }
    uint16_t sig = std::atomic_ref<uint16_t>(const_cast<uint16_t&>(b.sig[pos % ways]))
                       .load(std::memory_order_relaxed);
    std::memcpy(static_cast<void*>(&out), &records_[pos], sizeof(out));
    deadline_out = std::atomic_ref<uint32_t>(const_cast<uint32_t&>(b.deadline[pos % ways]))
                       .load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (std::atomic_ref<uint32_t>(seq).load(std::memory_order_relaxed) == s1)
      return sig != 0;
  }
}

template class flow_table<flow_key4>;
template class flow_table<flow_key6>;

} // namespace sluice::dp
