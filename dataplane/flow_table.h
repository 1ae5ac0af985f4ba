// Per-worker connection tracking: a bucketed hash table whose buckets carry
// the hot metadata of their flows, so that an established packet costs two
// cache lines and an insert under pressure costs a bounded, constant amount
// of work (inspired by VPP's lb sticky table and by cuckoo tables with
// in-bucket values, without cuckoo moves).
//
// Layout. `buckets = ceil(capacity * 4/3 / 8)` buckets of one 64-byte line each:
// a sequence counter, and for each of 8 ways a 16-bit signature (0 = empty),
// the eviction class of the flow and its expiry deadline (worker ms clock).
// Beside them, one record per way (`pos = bucket * 8 + way`): the full key and
// the flow_entry. An IPv4 record is exactly one 64-byte line; an IPv6 record is
// 88 bytes (it may straddle two lines). A key hashes to two buckets (two-choice) and
// lives in its first one unless that was crowded when it came: a lookup reads the first
// bucket, the second only when the first holds no matching signature and some key of
// the first bucket lives in its second (each bucket counts its keys "moved out"), and
// compares the full key of a matching way only. A hit therefore reads one bucket line
// (two for the 2-17% of keys in their second bucket, depending on the load) and one
// record line; a miss, the common case of a new flow or a flood, reads one bucket line
// while its first bucket has moved no key out and holds fewer than 4.
//
// Insert and eviction. A new key takes an empty way of its first bucket while
// that holds fewer than `first_bucket_share` (4) entries, else of the emptier of its two
// buckets. When both are full the table names a victim inside those 16 ways,
// by class: expired > closing (FIN, TIME_WAIT, RST) > half-open (SYN without
// answer) > unconfirmed (adopted without a SYN, unanswered UDP) > established;
// within a class the one closest to its deadline. The table never scans beyond
// the two buckets, so a flood costs every new flow the same few cache lines.
// The caller releases the victim (it owns the flow's other entries, its NAT
// port and gauges) and then takes its way. Nothing is ever moved, so a
// position stays valid for the lifetime of its flow.
//
// Trade-offs. Entries are never moved (no cuckoo kicks): positions stay
// stable for the reply/forward links of NAT flows and for the burst's looked-up
// positions, and an insert costs at most two bucket lines. The price is the
// load at which the first forced eviction happens: greedy two-choice buckets
// of 8 meet their first full pair at ~73% of their ways. The table therefore
// allocates a third more ways than `capacity`: the first forced eviction comes
// at ~98% of `capacity` (64K entries; all of it at 1K; measured by
// tests/unit/flow_table_test.cc); past that, inserts evict by class as below. Signatures are 16
// bits: a false match costs one extra record read, once in 8,000 lookups per way. Memory per way:
// 64 B record + 8 B of bucket = 72 B (IPv4), 96 B (IPv6); per configured entry, with the headroom,
// 96 B (IPv4) and 128 B (IPv6): over the 64 B goal, the price of O(1) eviction without moves (the
// bucket line) and of never evicting before the configured capacity is reached. A NAT flow holds
// two entries (forward and reply), each inserted under the same rules.
// Memory comes from the caller's allocator (the dataplane: DPDK hugepages) or
// anonymous mmap; the table itself has no DPDK dependency and is unit-tested
// without EAL.
//
// Concurrency. Exactly one writer (the owning worker). Readers on other
// threads (introspection: pipeline::list_flows) read a bucket under its
// sequence counter: the writer makes it odd before a way's signature changes
// (publish, erase) and even again after; a new record is written while its way
// is still empty (emplace) and published only once filled; a reader copies the
// way's signature and record between two reads of an equal, even counter,
// retrying otherwise.
// Per-packet updates of a live flow (deadline, state) are single aligned
// stores made without the counter: a reader may see a flow a moment old, never
// a record torn across two flows.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>

#include "flow_hash.h"
#include "result.h"
#include "tcp_fsm.h"

namespace sluice::dp {

struct flow_key4 {
  uint32_t src; // network order
  uint32_t dst;
  uint16_t sport; // network order
  uint16_t dport;
  uint8_t proto;
  uint8_t pad[3];
};
static_assert(sizeof(flow_key4) == 16);

struct flow_key6 {
  uint8_t src[16];
  uint8_t dst[16];
  uint16_t sport;
  uint16_t dport;
  uint8_t proto;
  uint8_t pad[3];
};
static_assert(sizeof(flow_key6) == 40);

enum class flow_kind : uint8_t { forward = 0, reply = 1 };

// The value of a table entry. Forward entries (client → VIP) hold the flow;
// reply entries (backend-side tuple of a NAT flow) point at their forward
// entry. Deadlines live in the bucket (flow_table::deadline).
struct flow_entry {
  uint32_t backend;     // backend slot
  uint32_t incarnation; // backend incarnation when the flow was scheduled
  uint32_t hash;        // flow hash: Maglev input, GUE source port, encap source; synproxy
                        // flows (nat, dnat): our ISN to the client, then the seq delta
  uint32_t peer;        // forward: reply position + 1 (0 = none); reply: forward position
  uint32_t timeout_ms;  // idle timeout of the current state
  uint32_t syn_us;      // worker microsecond clock when the SYN was forwarded
  uint16_t service;     // service index
  flow_kind kind;
  flow_state state;
  uint8_t fins;              // tcp_track::fins
  uint8_t mode;              // abi::fwd_mode at creation
  uint8_t syn_answered;      // NAT modes: backend sent SYN-ACK
  uint8_t active;            // which gauge counts the flow: gauge_none, gauge_active or
                             // gauge_inactive (tcp_fsm.h)
  uint16_t nat_port;         // full NAT: local source port, network order
  uint16_t nat_addr_idx;     // full NAT: the flow's port set (nat_ports.h): pool address + endpoint
  uint8_t client_mac[6];     // where replies to the client go (NAT modes)
  uint8_t synproxy;          // synproxy_state (synproxy.h); `hash` then holds its sequence numbers
  uint8_t half_open_counted; // counted in the worker's half-open gauge (synproxy auto)
  uint8_t reserved[4];
};
static_assert(sizeof(flow_entry) == 48);

template <typename Key> struct flow_record {
  Key key;
  flow_entry e;
};
static_assert(sizeof(flow_record<flow_key4>) == 64);
static_assert(sizeof(flow_record<flow_key6>) == 88);

// "No deadline": a reply entry whose direction has not refreshed it in the
// flow's current state. A reply entry never expires by itself (its forward
// entry does, and releases it); its deadline, when set, is the reply
// direction's and keeps the flow alive (pipeline_impl::flow_expired).
inline constexpr uint32_t no_deadline = 0xffffffffu;

// A NAT flow's deadline from its forward entry's `d` and its reply entry's
// `rd`: the later one (wrapping clock), `d` while `rd` is unset.
inline uint32_t later_deadline(uint32_t d, uint32_t rd) {
  return d != no_deadline && rd != no_deadline && int32_t(rd - d) > 0 ? rd : d;
}

struct alignas(64) flow_bucket {
  uint32_t seq;         // odd while the owner changes a way's identity
  uint8_t cls[8];       // evict_class of each way's flow
  uint16_t sig[8];      // 0 = empty way
  uint32_t deadline[8]; // worker ms clock; no_deadline for reply entries
  uint32_t moved_out;   // keys whose first bucket this is that live in their second:
                        // while 0, a key without a matching signature here is absent
};
static_assert(sizeof(flow_bucket) == 64);

// Where the table's memory comes from. The dataplane passes DPDK's hugepage
// allocator (NUMA-local, no TLB miss per packet at 1M flows); without one the
// table maps anonymous memory with transparent huge pages requested (tests).
// `alloc` must return zeroed memory aligned to 64 bytes, or nullptr.
struct flow_table_memory {
  void* (*alloc)(size_t bytes, void* ctx) = nullptr;
  void (*release)(void* p, void* ctx) = nullptr;
  void* ctx = nullptr;
};

// Where a new key goes: a free way, or a victim to release first.
struct flow_slot {
  int32_t pos = -1;  // -1: no way at all (cannot happen with ways > 0)
  bool free = false; // pos is empty
  evict_class cls{}; // the victim's class when !free
  int32_t alt = -1;  // when !free: the unconfirmed entry nearest its deadline, if any
};

template <typename Key> class flow_table {
public:
  static constexpr uint32_t ways = 8;
  // A new key goes to its first bucket while that holds fewer entries than
  // this, else to the emptier of its two. 4 of 8 keeps the first forced
  // eviction about as late as pure two-choice (98.5% of `capacity` for the
  // unit test's 64K keys, 99.7% for random hashes) while few keys live in their
  // second bucket: 2% at a quarter of `capacity`, 9% at half, 17% at three
  // quarters (simulated).
  static constexpr uint32_t first_bucket_share = 4;

  flow_table() = default;
  flow_table(const flow_table&) = delete;
  flow_table& operator=(const flow_table&) = delete;
  ~flow_table();

  // `capacity` entries (rounded up to a multiple of 8). `seed` randomises the
  // bucket choice so that a remote sender cannot aim at one bucket.
  result<void> init(const char* name, uint32_t capacity, uint64_t seed,
                    const flow_table_memory& memory = {});

  uint64_t hash(const Key& k) const {
    return hash_bytes(reinterpret_cast<const uint8_t*>(&k), sizeof(Key), seed_);
  }
  void prefetch(uint64_t h) const {
    __builtin_prefetch(&buckets_[bucket1(h)]);
    __builtin_prefetch(&buckets_[bucket2(h)]);
  }

  // Position of `k`, or -1.
  int32_t lookup(const Key& k, uint64_t h) const {
    uint16_t s = sig_of(h);
    const uint32_t b1 = bucket1(h);
    int32_t p = find_in(b1, k, s);
    return p >= 0 || !buckets_[b1].moved_out ? p : find_in(bucket2(h), k, s);
  }
  int32_t lookup(const Key& k) const { return lookup(k, hash(k)); }

  // Bulk lookup with the buckets and the matching records prefetched in
  // stages across the batch; positions[i] = -1 on miss, hashes[i] the key's
  // table hash (for a later insert or lookup without hashing again). A key's
  // second bucket is fetched only when its first holds no matching signature
  // (most keys live in their first: see find_slot). Ahead of the caller's use,
  // a hit on a reply entry prefetches its forward record (not its bucket:
  // a reply refreshes its own deadline), and a
  // miss the record of the way an insert would take.
  void lookup_bulk(const Key** keys, uint32_t n, int32_t* positions, uint64_t* hashes) const;
  void lookup_bulk(const Key** keys, uint32_t n, int32_t* positions) const {
    uint64_t h[64];
    for (uint32_t done = 0; done < n; done += 64)
      lookup_bulk(keys + done, n - done < 64 ? n - done : 64, positions + done, h);
  }

  // The way a new key with hash `h` takes at time `now_ms`; position `keep`
  // (e.g. the forward entry of the reply being inserted) is never the victim.
  flow_slot find_slot(uint64_t h, uint32_t now_ms, int32_t keep = -1) const;

  // Prepares way `pos` (free, from find_slot) for `k`: key written, entry
  // zeroed, the way still empty to lookups and readers. The caller fills the
  // entry, then publishes the way; a reader never sees it half filled.
  flow_entry& emplace(int32_t pos, const Key& k) {
    flow_record<Key>& r = records_[pos];
    r.key = k;
    r.e = flow_entry{};
    return r.e;
  }
  // Makes way `pos` (emplaced and filled) visible under hash `h`.
  void publish(int32_t pos, uint64_t h) {
    if (uint32_t(pos) / ways != bucket1(h))
      ++buckets_[bucket1(h)].moved_out;
    flow_bucket& b = buckets_[uint32_t(pos) / ways];
    begin_write(b);
    b.cls[pos % ways] = uint8_t(evict_class::half_open);
    b.deadline[pos % ways] = no_deadline;
    std::atomic_ref<uint16_t>(b.sig[pos % ways]).store(sig_of(h), std::memory_order_relaxed);
    end_write(b);
    ++count_;
  }
  // The record's key must still be the published one (it names the first
  // bucket whose moved-out count the entry may hold). `exact_count` false
  // leaves that count as it is: an eviction under pressure then costs no
  // third bucket line (the key's first bucket is neither of the two the new
  // key hashed to). A count left too high is safe: it only sends misses in
  // that bucket on to the second one, as before the counts existed.
  void erase(int32_t pos, bool exact_count = true) {
    if (exact_count)
      if (const uint32_t b1 = bucket1(hash(records_[pos].key)); uint32_t(pos) / ways != b1)
        --buckets_[b1].moved_out;
    flow_bucket& b = buckets_[uint32_t(pos) / ways];
    begin_write(b);
    std::atomic_ref<uint16_t>(b.sig[pos % ways]).store(0, std::memory_order_relaxed);
    end_write(b);
    --count_;
  }

  bool used(int32_t pos) const { return buckets_[uint32_t(pos) / ways].sig[pos % ways] != 0; }
  uint32_t deadline(int32_t pos) const {
    return buckets_[uint32_t(pos) / ways].deadline[pos % ways];
  }
  void set_deadline(int32_t pos, uint32_t d) {
    std::atomic_ref<uint32_t>(buckets_[uint32_t(pos) / ways].deadline[pos % ways])
        .store(d, std::memory_order_relaxed);
  }
  void set_class(int32_t pos, evict_class c) {
    buckets_[uint32_t(pos) / ways].cls[pos % ways] = uint8_t(c);
  }
  // Whether the flow at `pos` is past its deadline at `now_ms` (wrapping clock).
  bool expired(int32_t pos, uint32_t now_ms) const {
    uint32_t d = deadline(pos);
    return d != no_deadline && int32_t(now_ms - d) > 0;
  }

  flow_entry& entry(int32_t pos) { return records_[pos].e; }
  const flow_entry& entry(int32_t pos) const { return records_[pos].e; }
  const Key& key_at(int32_t pos) const { return records_[pos].key; }
  const Key* key_ptr(int32_t pos) const { return &records_[pos].key; }
  const flow_record<Key>* record_ptr(int32_t pos) const { return &records_[pos]; }

  // Copies the record at `pos` for a reader on another thread; false when the
  // way is empty. Never returns a record torn across two flows.
  bool read_consistent(int32_t pos, flow_record<Key>& out, uint32_t& deadline_out) const;

  // Ways allocated (the capacity asked for plus the headroom).
  uint32_t capacity() const { return n_buckets_ * ways; }
  // Positions are 0..positions()-1.
  uint32_t positions() const { return n_buckets_ * ways; }
  uint32_t count() const { return count_; }
  // Tests: recounts every bucket's moved-out keys; whether each count is
  // exact (`exact`) or at least the true one (after evictions).
  bool moved_out_consistent(bool exact = true) const;
  bool in_second_bucket(int32_t pos) const {
    return bucket1(hash(records_[pos].key)) != uint32_t(pos) / ways;
  }
  static constexpr size_t bytes_per_entry() {
    return sizeof(flow_record<Key>) + sizeof(flow_bucket) / ways;
  }

private:
  uint32_t bucket1(uint64_t h) const {
    return uint32_t((uint64_t(uint32_t(h)) * n_buckets_) >> 32);
  }
  uint32_t bucket2(uint64_t h) const {
    uint32_t b = uint32_t((uint64_t(uint32_t(h >> 32) | 1u) * n_buckets_) >> 32);
    // Two distinct buckets whenever there are two.
    return b == bucket1(h) && n_buckets_ > 1 ? (b + 1 == n_buckets_ ? 0 : b + 1) : b;
  }
  // Prefetches the records of bucket `bi` whose signature is `s`; whether
  // there was one.
  bool prefetch_matches(uint32_t bi, uint16_t s) const;
  static uint32_t free_ways(const flow_bucket& b);
  // The free way a new key of buckets b1/b2 takes, or -1 when both are full.
  int32_t free_way(uint32_t b1, uint32_t b2) const;
  static uint16_t sig_of(uint64_t h) {
    uint16_t s = uint16_t(h >> 48);
    return s ? s : 1;
  }
  int32_t find_in(uint32_t bi, const Key& k, uint16_t s) const {
    const flow_bucket& b = buckets_[bi];
    for (uint32_t w = 0; w < ways; ++w)
      if (b.sig[w] == s) {
        int32_t pos = int32_t(bi * ways + w);
        if (std::memcmp(&records_[pos].key, &k, sizeof(Key)) == 0)
          return pos;
      }
    return -1;
  }
  static void begin_write(flow_bucket& b) {
    std::atomic_ref<uint32_t>(b.seq).store(b.seq + 1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
  }
  static void end_write(flow_bucket& b) {
    std::atomic_ref<uint32_t>(b.seq).store(b.seq + 1, std::memory_order_release);
  }

  flow_bucket* buckets_ = nullptr;
  flow_record<Key>* records_ = nullptr;
  void* mem_ = nullptr;
  size_t mem_size_ = 0;
  flow_table_memory memory_;
  uint32_t n_buckets_ = 0;
  uint32_t count_ = 0;
  uint64_t seed_ = 0;
};

// Kept for callers that registered as readers with the earlier RCU-based
// table: readers need no registration now, this only bounds reader ids.
inline constexpr uint32_t flow_table_max_readers = 4;

} // namespace sluice::dp
