#include "backend_scheduler.h"

#include <fmt/format.h>

#include <rte_errno.h>
#include <rte_hash_crc.h>
#include <rte_memzone.h>

#include "flow_hash.h"
#include "shm_atomic.h"

namespace sluice::dp {

using abi::scheduler_kind;

namespace {

uint32_t affinity_hash(const void* key, uint32_t len, uint32_t seed) {
  return rte_hash_crc(key, len, seed);
}

constexpr uint32_t bandwidth_window_ms = 100;

// The candidate with the smallest cost per unit of weight, scanned from a
// rotating start so that ties do not always favour the first backend.
// cost(b) and weight(b) are compared by cross-multiplication, never divided.
template <typename Cost, typename Weight>
int32_t min_per_weight(const uint32_t* list, uint32_t n, uint32_t start, Cost cost, Weight weight) {
  int32_t best = -1;
  unsigned __int128 best_cost = 0;
  uint64_t best_weight = 1;
  for (uint32_t k = 0; k < n; ++k) {
    uint32_t b = list[(start + k) % n];
    unsigned __int128 c = cost(b);
    uint64_t w = weight(b);
    if (best < 0 || c * best_weight < best_cost * w) {
      best = int32_t(b);
      best_cost = c;
      best_weight = w;
    }
  }
  return best;
}

// Names of the affinity table and its entries for one shared-memory object.
std::pair<std::string, std::string> affinity_names(const std::string& shm_path) {
  uint32_t tag = uint32_t(hash_bytes(reinterpret_cast<const uint8_t*>(shm_path.data()),
                                     uint32_t(shm_path.size() & ~3u), 0x6166));
  return {fmt::format("sh_aff_{:08x}", tag), fmt::format("sh_ent_{:08x}", tag)};
}

} // namespace

void backend_scheduler::release_shared(const std::string& shm_path) {
  const auto [name, mz_name] = affinity_names(shm_path);
  if (rte_hash* h = rte_hash_find_existing(name.c_str()))
    rte_hash_free(h);
  if (const rte_memzone* mz = rte_memzone_lookup(mz_name.c_str()))
    rte_memzone_free(mz);
}

result<void> backend_scheduler::init(shm_region& shm, uint16_t worker_id, uint16_t n_workers,
                                     int socket_id, uint32_t affinity_capacity, uint64_t seed,
                                     uint64_t* full_counter) {
  affinity_full_ = full_counter;
  shm_ = &shm;
  worker_ = worker_id;
  n_workers_ = n_workers ? n_workers : 1;
  rng_ = mix64(seed ^ (uint64_t(worker_id) << 32)) | 1;
  rr_cursor_.assign(shm.caps().max_services, 0);
  bw_window_ms_.assign(shm.caps().max_services, 0);
  wrr_current_.assign(shm.caps().max_backends, 0);
  bw_snapshot_.assign(shm.caps().max_backends, 0);

  // One affinity table per shared-memory object, shared by every worker: the
  // first worker creates it, the others find it by name.
  const auto [name, mz_name] = affinity_names(shm.path());
  affinity_ = rte_hash_find_existing(name.c_str());
  const rte_memzone* mz = rte_memzone_lookup(mz_name.c_str());
  if (!affinity_) {
    rte_hash_parameters p{};
    p.name = name.c_str();
    p.entries = affinity_capacity < 64 ? 64 : affinity_capacity;
    p.key_len = sizeof(affinity_key);
    p.hash_func = affinity_hash;
    p.hash_func_init_val = 0x5ff1;
    p.socket_id = socket_id;
    // Lock-free readers, several writers; entries are never deleted (an
    // expired affinity is overwritten in place when its client returns), so
    // no position is ever reused under a reader.
    p.extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF | RTE_HASH_EXTRA_FLAGS_MULTI_WRITER_ADD |
                   RTE_HASH_EXTRA_FLAGS_EXT_TABLE;
    affinity_ = rte_hash_create(&p);
    if (!affinity_)
      return make_error(
          fmt::format("sh affinity table: rte_hash_create failed: {}", rte_strerror(rte_errno)));
    if (!mz)
      // With multi-writer adds, rte_hash keeps per-lcore caches of free key
      // slots, so positions run beyond `entries` by up to that much.
      mz = rte_memzone_reserve(mz_name.c_str(),
                               sizeof(affinity_entry) *
                                   (size_t(p.entries) + size_t(RTE_MAX_LCORE) * 64 + 64),
                               socket_id, RTE_MEMZONE_SIZE_HINT_ONLY);
  }
  if (!mz)
    return make_error("sh affinity table: cannot reserve its entries");
  affinity_entries_ = static_cast<affinity_entry*>(mz->addr);
  return {};
}

uint64_t backend_scheduler::active(uint32_t b) const {
  uint64_t sum = 0;
  for (uint16_t w = 0; w < n_workers_; ++w)
    sum += load_relaxed(shm_->backend_stats(w)[b].active_flows);
  return sum;
}

uint64_t backend_scheduler::bytes(uint32_t b) const {
  uint64_t sum = 0;
  for (uint16_t w = 0; w < n_workers_; ++w)
    sum += load_relaxed(shm_->backend_stats(w)[b].bytes);
  return sum;
}

// Smoothed handshake time over the workers that measured one (NAT modes), else
// the health checks' latency hint (DSR modes, where no SYN-ACK is seen).
uint64_t backend_scheduler::response_us(const abi::backend_entry& be, uint32_t b) const {
  uint64_t sum = 0, n = 0;
  for (uint16_t w = 0; w < n_workers_; ++w) {
    uint64_t e = load_relaxed(shm_->backend_stats(w)[b].handshake_ewma_us);
    if (e) {
      sum += e;
      ++n;
    }
  }
  if (n)
    return sum / n;
  const uint64_t soft = load_relaxed(shm_->backend_soft()[b].rtt);
  return uint32_t(soft >> 32) == be.incarnation ? uint32_t(soft) : be.rtt_hint_us;
}

// The soft-state weight (slow start, written in place by the control plane)
// when it was written for this incarnation, else the table's.
uint64_t backend_scheduler::weight(const abi::backend_entry& be, uint32_t b) const {
  const uint64_t soft = load_relaxed(shm_->backend_soft()[b].weight);
  return uint32_t(soft >> 32) == be.incarnation && uint32_t(soft) ? uint32_t(soft) : be.weight;
}

void backend_scheduler::record_handshake(uint32_t backend, uint32_t rtt_us) {
  uint64_t& e = shm_->backend_stats(worker_)[backend].handshake_ewma_us;
  uint64_t old = load_relaxed(e);
  uint64_t sample = rtt_us ? rtt_us : 1;
  store_relaxed(e, old ? (old * 7 + sample) / 8 : sample);
}

uint32_t backend_scheduler::random_below(uint32_t n) {
  // xorshift64*; multiply-shift range reduction.
  rng_ ^= rng_ >> 12;
  rng_ ^= rng_ << 25;
  rng_ ^= rng_ >> 27;
  uint64_t r = rng_ * 0x2545f4914f6cdd1dull;
  return uint32_t((uint64_t(uint32_t(r >> 32)) * n) >> 32);
}

int32_t backend_scheduler::pick_weighted_random(const table_view& v, const abi::service_entry& s) {
  const uint32_t* list = v.lookup + s.lookup_offset;
  uint64_t total = 0;
  for (uint32_t i = 0; i < s.lookup_size; ++i)
    total += weight(v.backends[list[i]], list[i]);
  uint64_t r = (uint64_t(random_below(0xffffffffu)) * total) >> 32;
  for (uint32_t i = 0; i < s.lookup_size; ++i) {
    uint64_t w = weight(v.backends[list[i]], list[i]);
    if (r < w)
      return int32_t(list[i]);
    r -= w;
  }
  return int32_t(list[s.lookup_size - 1]);
}

int32_t backend_scheduler::pick_sh(const table_view& v, uint32_t svc, const abi::service_entry& s,
                                   const uint8_t* client, uint32_t abs_ms) {
  affinity_key k{};
  std::memcpy(k.addr, client, 16);
  bool v4 = s.family == 4;
  uint32_t keep_bits = v4 ? 96u + s.sh_prefix4 : s.sh_prefix6;
  for (uint32_t bit = keep_bits; bit < 128; ++bit)
    k.addr[bit / 8] &= uint8_t(~(0x80u >> (bit % 8)));
  k.service = svc;
  int32_t pos = rte_hash_lookup(affinity_, &k);
  if (pos >= 0) {
    affinity_entry& e = affinity_entries_[pos];
    uint64_t bi = load_acquire(e.backend_incarnation);
    uint32_t b = uint32_t(bi >> 32);
    uint32_t last = load_relaxed(e.last_ms);
    if (b < shm_->caps().max_backends && uint32_t(abs_ms - last) <= s.sh_timeout_s * 1000u) {
      const abi::backend_entry& be = v.backends[b];
      if ((be.flags & abi::backend_in_use) && be.incarnation == uint32_t(bi) && be.service == svc &&
          be.state == uint8_t(abi::backend_state::up) && be.weight > 0) {
        store_relaxed(e.last_ms, abs_ms);
        return int32_t(b);
      }
    }
  }
  // New client (or its affinity lapsed, or its backend left): consistent hash of
  // the masked address, so every worker and balancer agrees on the first choice.
  uint64_t h = hash_bytes(k.addr, 16, 0x7368);
  int32_t b = v.pick_backend(s, h);
  if (b < 0)
    return b;
  if (pos < 0)
    pos = rte_hash_add_key(affinity_, &k);
  if (pos < 0) {
    counter_add(*affinity_full_, 1);
    return b;
  }
  affinity_entry& e = affinity_entries_[pos];
  store_relaxed(e.last_ms, abs_ms);
  store_release(e.backend_incarnation, uint64_t(uint32_t(b)) << 32 | v.backends[b].incarnation);
  return b;
}

int32_t backend_scheduler::pick(const table_view& v, uint32_t svc, const abi::service_entry& s,
                                uint64_t flow_hash, const uint8_t* client, uint32_t now_ms,
                                uint32_t abs_ms) {
  if (s.lookup_size == 0)
    return -1;
  const uint32_t* list = v.lookup + s.lookup_offset;
  const uint32_t n = s.lookup_size;
  switch (scheduler_kind(s.scheduler)) {
  case scheduler_kind::maglev:
    if (s.hash_src)
      flow_hash = hash_bytes(client, 16, 0x7368);
    return v.pick_backend(s, flow_hash);
  case scheduler_kind::sh:
    return pick_sh(v, svc, s, client, abs_ms);
  case scheduler_kind::rr: {
    uint32_t& c = rr_cursor_[svc];
    c = c + 1 < n ? c + 1 : 0;
    return int32_t(list[c < n ? c : 0]);
  }
  case scheduler_kind::wrr: {
    // Smooth weighted round robin (nginx): every pick raises each backend by
    // its weight and lowers the chosen one by the total, so the heaviest
    // backend's turns are spread out instead of sent in a burst.
    int64_t total = 0;
    int32_t best = -1;
    for (uint32_t i = 0; i < n; ++i) {
      uint32_t b = list[i];
      int64_t w = int64_t(weight(v.backends[b], b));
      wrr_current_[b] += w;
      total += w;
      if (best < 0 || wrr_current_[b] > wrr_current_[uint32_t(best)])
        best = int32_t(b);
    }
    wrr_current_[uint32_t(best)] -= total;
    return best;
  }
  case scheduler_kind::lc:
  case scheduler_kind::wlc: {
    bool weighted = scheduler_kind(s.scheduler) == scheduler_kind::wlc;
    uint32_t& c = rr_cursor_[svc];
    c = c + 1 < n ? c + 1 : 0;
    return min_per_weight(
        list, n, c, [&](uint32_t b) { return active(b); },
        [&](uint32_t b) { return weighted ? weight(v.backends[b], b) : uint64_t(1); });
  }
  case scheduler_kind::random:
    return pick_weighted_random(v, s);
  case scheduler_kind::two_choices: {
    int32_t a = pick_weighted_random(v, s);
    int32_t b = pick_weighted_random(v, s);
    uint64_t la = active(uint32_t(a)), lb = active(uint32_t(b));
    uint64_t wa = weight(v.backends[a], uint32_t(a)), wb = weight(v.backends[b], uint32_t(b));
    return la * wb <= lb * wa ? a : b;
  }
  case scheduler_kind::least_bandwidth: {
    // Bytes sent to each backend since the start of the current window (all
    // workers), per unit of weight.
    if (uint32_t(now_ms - bw_window_ms_[svc]) >= bandwidth_window_ms) {
      bw_window_ms_[svc] = now_ms;
      for (uint32_t i = 0; i < n; ++i)
        bw_snapshot_[list[i]] = bytes(list[i]);
    }
    uint32_t& c = rr_cursor_[svc];
    c = c + 1 < n ? c + 1 : 0;
    return min_per_weight(
        list, n, c,
        [&](uint32_t b) {
          uint64_t total = bytes(b);
          return total >= bw_snapshot_[b] ? total - bw_snapshot_[b] : 0;
        },
        [&](uint32_t b) { return weight(v.backends[b], b); });
  }
  case scheduler_kind::least_response_time: {
    // Score = response time × (active flows + 1) / weight: the active-flow
    // factor is the guard that keeps one fast backend from taking every new
    // flow until its queue makes it slow. Unmeasured backends count as the
    // fastest measured one, so they get traffic and a measurement.
    uint64_t known_min = 0;
    for (uint32_t i = 0; i < n; ++i) {
      uint64_t r = response_us(v.backends[list[i]], list[i]);
      if (r && (!known_min || r < known_min))
        known_min = r;
    }
    if (!known_min)
      known_min = 1;
    uint32_t& c = rr_cursor_[svc];
    c = c + 1 < n ? c + 1 : 0;
    return min_per_weight(
        list, n, c,
        [&](uint32_t b) {
          uint64_t r = response_us(v.backends[b], b);
          return (unsigned __int128)(r ? r : known_min) * (active(b) + 1);
        },
        [&](uint32_t b) { return weight(v.backends[b], b); });
  }
  }
  return -1;
}

} // namespace sluice::dp
