// The bucketed flow table (dataplane/flow_table.h) without EAL: lookups,
// how full two-choice buckets get before the first eviction, the eviction
// order by class and deadline, and consistent reads from another thread.
#include <atomic>
#include <catch2/catch_test_macros.hpp>
#include <random>
#include <thread>
#include <vector>

#include "flow_table.h"

using namespace sluice;
using namespace sluice::dp;

namespace {

flow_key4 key(uint32_t i) {
  flow_key4 k{};
  k.src = i * 2654435761u;
  k.dst = 0x0a000001;
  k.sport = uint16_t(i);
  k.dport = 80;
  k.proto = 6;
  return k;
}

// Inserts `k` if a free way exists; returns its position or -1.
int32_t insert(flow_table<flow_key4>& t, const flow_key4& k, uint32_t now = 0) {
  uint64_t h = t.hash(k);
  flow_slot s = t.find_slot(h, now);
  if (!s.free)
    return -1;
  t.emplace(s.pos, k).backend = k.src;
  t.publish(s.pos, h);
  return s.pos;
}

} // namespace

TEST_CASE("insert, lookup, bulk lookup and erase") {
  flow_table<flow_key4> t;
  REQUIRE(t.init("t", 4096, 42));
  CHECK(t.capacity() == 5464); // a third more ways than entries asked for, whole buckets
  std::vector<int32_t> pos;
  for (uint32_t i = 0; i < 2000; ++i) {
    pos.push_back(insert(t, key(i)));
    REQUIRE(pos.back() >= 0);
  }
  CHECK(t.count() == 2000);
  for (uint32_t i = 0; i < 2000; ++i) {
    CHECK(t.lookup(key(i)) == pos[i]);
    CHECK(t.entry(pos[i]).backend == key(i).src);
  }
  CHECK(t.lookup(key(5000)) == -1);
  std::vector<flow_key4> ks;
  for (uint32_t i = 1990; i < 2010; ++i)
    ks.push_back(key(i));
  std::vector<const flow_key4*> kp;
  for (auto& k : ks)
    kp.push_back(&k);
  std::vector<int32_t> got(ks.size());
  t.lookup_bulk(kp.data(), uint32_t(kp.size()), got.data());
  for (size_t i = 0; i < ks.size(); ++i)
    CHECK(got[i] == (i < 10 ? pos[1990 + i] : -1));
  t.erase(pos[7]);
  CHECK(t.lookup(key(7)) == -1);
  CHECK_FALSE(t.used(pos[7]));
  CHECK(t.count() == 1999);
}

TEST_CASE("keys in their second bucket are found through the first bucket's moved-out count") {
  // A miss reads the second bucket only while the first has moved keys out;
  // the count must follow every publish and erase, or keys in their second
  // bucket become invisible (a duplicate flow, a lost NAT reply).
  flow_table<flow_key4> t;
  REQUIRE(t.init("t", 8192, 3));
  std::mt19937 rng(5);
  std::vector<std::pair<flow_key4, int32_t>> live;
  uint32_t next = 0, in_second = 0;
  for (int round = 0; round < 20; ++round) {
    // Fill to ~90% of capacity, then erase a random half: churn moves keys
    // in and out of second buckets.
    while (t.count() < 8192 * 9 / 10) {
      flow_key4 k = key(next++);
      int32_t p = insert(t, k);
      REQUIRE(p >= 0);
      live.push_back({k, p});
    }
    std::shuffle(live.begin(), live.end(), rng);
    for (size_t i = live.size() / 2; i < live.size(); ++i)
      t.erase(live[i].second);
    live.resize(live.size() / 2);
    REQUIRE(t.moved_out_consistent());
  }
  for (const auto& [k, p] : live) {
    CHECK(t.lookup(k) == p);
    in_second += t.in_second_bucket(p);
  }
  INFO(in_second << " of " << live.size() << " keys live in their second bucket");
  CHECK(in_second > live.size() / 50);
  std::vector<const flow_key4*> kp;
  std::vector<int32_t> got(live.size());
  for (const auto& l : live)
    kp.push_back(&l.first);
  t.lookup_bulk(kp.data(), uint32_t(kp.size()), got.data());
  for (size_t i = 0; i < live.size(); ++i)
    CHECK(got[i] == live[i].second);
  CHECK(t.lookup(key(next + 1)) == -1);
  // Everything erased: no bucket counts a moved-out key any more.
  for (const auto& l : live)
    t.erase(l.second);
  CHECK(t.count() == 0);
  CHECK(t.moved_out_consistent());
  // Evictions may leave counts high (never low): every key stays visible.
  for (uint32_t i = 0; i < 9000; ++i)
    insert(t, key(next++));
  for (int32_t p = 0; p < int32_t(t.positions()); p += 3)
    if (t.used(p))
      t.erase(p, false);
  for (int32_t p = 0; p < int32_t(t.positions()); ++p)
    if (t.used(p))
      CHECK(t.lookup(t.key_at(p)) == p);
  CHECK(t.moved_out_consistent(false));
}

TEST_CASE("the capacity asked for fits before the first forced eviction") {
  for (uint32_t cap : {1024u, 65536u}) {
    flow_table<flow_key4> t;
    REQUIRE(t.init("t", cap, 7));
    uint32_t n = 0;
    while (insert(t, key(n + 1000000)) >= 0)
      ++n;
    INFO("capacity " << cap << ": first forced eviction at " << n);
    CHECK(n >= cap * 95 / 100);
    // The failed insert names a victim: every position is full.
    CHECK(!t.find_slot(t.hash(key(n + 1000000)), 0).free);
  }
}

TEST_CASE("a full bucket pair gives up its entries by class, then by deadline") {
  // 12 entries asked = 16 ways = 2 buckets, the two choices of every key: all
  // 16 ways compete.
  flow_table<flow_key4> t;
  REQUIRE(t.init("t", 12, 1));
  REQUIRE(t.capacity() == 16);
  std::vector<int32_t> pos;
  for (uint32_t i = 0; i < 16; ++i) {
    pos.push_back(insert(t, key(i)));
    REQUIRE(pos.back() >= 0);
  }
  const uint32_t now = 100000;
  for (int32_t p : pos) {
    t.set_class(p, evict_class::established);
    t.set_deadline(p, now + 900000);
  }
  uint64_t h = t.hash(key(99));
  flow_slot s = t.find_slot(h, now);
  CHECK_FALSE(s.free);
  CHECK(s.cls == evict_class::established); // nothing else left
  // Unconfirmed beats established; half-open beats unconfirmed; closing beats
  // half-open; expired beats all.
  t.set_class(pos[3], evict_class::unconfirmed);
  CHECK(t.find_slot(h, now).pos == pos[3]);
  t.set_class(pos[9], evict_class::half_open);
  CHECK(t.find_slot(h, now).pos == pos[9]);
  t.set_class(pos[12], evict_class::closing);
  CHECK(t.find_slot(h, now).pos == pos[12]);
  t.set_deadline(pos[14], now - 1);
  s = t.find_slot(h, now);
  CHECK(s.pos == pos[14]);
  CHECK(s.cls == evict_class::expired);
  // `keep` is never the victim.
  CHECK(t.find_slot(h, now, pos[14]).pos == pos[12]);
  // Within a class, the entry closest to its deadline goes first.
  t.set_class(pos[5], evict_class::closing);
  t.set_deadline(pos[5], now + 10);
  CHECK(t.find_slot(h, now, pos[14]).pos == pos[5]);
  // Reply entries (no deadline) never look expired.
  t.set_deadline(pos[14], no_deadline);
  CHECK(t.find_slot(h, now).pos == pos[5]);
  // A freed way is taken before any eviction.
  t.erase(pos[0]);
  s = t.find_slot(h, now);
  CHECK(s.free);
  CHECK(s.pos == pos[0]);
}

TEST_CASE("a reader on another thread never sees a record torn across two flows") {
  flow_table<flow_key4> t;
  REQUIRE(t.init("t", 64, 3));
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> reads{0}, bad{0};
  std::thread reader([&] {
    flow_record<flow_key4> r;
    uint32_t d;
    while (!stop.load(std::memory_order_relaxed))
      for (uint32_t p = 0; p < t.positions(); ++p)
        if (t.read_consistent(int32_t(p), r, d)) {
          reads.fetch_add(1, std::memory_order_relaxed);
          if (r.e.backend != r.key.src || r.e.hash != r.key.sport)
            bad.fetch_add(1, std::memory_order_relaxed);
        }
  });
  std::mt19937 rng(5);
  std::vector<int32_t> live;
  for (uint32_t i = 0; i < 300000; ++i) {
    if (live.size() < 40) {
      flow_key4 k = key(rng());
      uint64_t h = t.hash(k);
      flow_slot s = t.find_slot(h, 0);
      if (s.free) {
        flow_entry& e = t.emplace(s.pos, k);
        e.backend = k.src;
        e.hash = k.sport;
        t.publish(s.pos, h);
        live.push_back(s.pos);
      }
    } else {
      size_t j = rng() % live.size();
      t.erase(live[j]);
      live[j] = live.back();
      live.pop_back();
    }
  }
  stop = true;
  reader.join();
  INFO(reads.load() << " consistent reads");
  CHECK(bad.load() == 0);
}
