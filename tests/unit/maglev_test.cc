#include <algorithm>
#include <catch2/catch_test_macros.hpp>
#include <cstdio>
#include <map>
#include <random>

#include "flow_hash.h"
#include "maglev.h"

using namespace sluice;

namespace {

constexpr uint32_t m_default = 65537;

// Backend i: 10.1.x.y:8080 with slot 1000 + i (slots deliberately not 0..n-1).
std::vector<maglev_backend> make_backends(uint32_t n, uint32_t weight = 1) {
  std::vector<maglev_backend> v;
  for (uint32_t i = 0; i < n; ++i) {
    ip_addr a = ip_addr::from_v4_be(0);
    a.bytes[12] = 10;
    a.bytes[13] = 1;
    a.bytes[14] = uint8_t(i >> 8);
    a.bytes[15] = uint8_t(i);
    v.push_back(maglev_backend{maglev_identity(a, 8080), weight, 1000 + i});
  }
  return v;
}

std::map<uint32_t, uint64_t> shares(const std::vector<uint32_t>& t) {
  std::map<uint32_t, uint64_t> c;
  for (uint32_t s : t)
    ++c[s];
  return c;
}

// The algorithm as the paper and Envoy state it, without the optimisations of
// maglev_populate (calendar of rounds, occupancy bitmap, end phase): round r =
// 1, 2, ...; in each round, every backend (identity order) with
// r * weight >= target claims its next preferred free entry, target += max.
std::vector<uint32_t> reference_table(std::vector<maglev_backend> b, uint32_t m) {
  std::erase_if(b, [](const maglev_backend& x) { return x.weight == 0; });
  std::sort(b.begin(), b.end(), [](const maglev_backend& x, const maglev_backend& y) {
    return x.identity < y.identity;
  });
  uint64_t max_w = 0;
  for (auto& x : b)
    max_w = std::max<uint64_t>(max_w, x.weight);
  std::vector<uint64_t> pos, skip, target(b.size(), max_w);
  for (auto& x : b) {
    pos.push_back(hash_bytes(x.identity.data(), 20, 0x6d61676c65762d6full) % m);
    skip.push_back(hash_bytes(x.identity.data(), 20, 0x6d61676c65762d73ull) % (m - 1) + 1);
  }
  std::vector<uint32_t> t(m, UINT32_MAX);
  uint32_t filled = 0;
  for (uint64_t r = 1; filled < m; ++r)
    for (size_t i = 0; i < b.size() && filled < m; ++i) {
      if (r * b[i].weight < target[i])
        continue;
      target[i] += max_w;
      while (t[pos[i]] != UINT32_MAX)
        pos[i] = (pos[i] + skip[i]) % m;
      t[pos[i]] = b[i].slot;
      pos[i] = (pos[i] + skip[i]) % m;
      ++filled;
    }
  return t;
}

} // namespace

TEST_CASE("matches the plain algorithm of the paper", "[maglev]") {
  for (uint32_t m : {251u, 4099u, 65537u}) {
    auto equal = make_backends(100);
    CHECK(maglev_table(equal, m) == reference_table(equal, m));
    auto mixed = make_backends(97);
    for (size_t i = 0; i < mixed.size(); ++i)
      mixed[i].weight = uint32_t(1 + (i * 7919) % 13);
    mixed[3].weight = 0;
    CHECK(maglev_table(mixed, m) == reference_table(mixed, m));
    auto skewed = make_backends(5);
    skewed[0].weight = 1000;
    CHECK(maglev_table(skewed, m) == reference_table(skewed, m));
  }
}

TEST_CASE("is_prime", "[maglev]") {
  for (uint32_t p : {2u, 3u, 5u, 7u, 251u, 4099u, 65537u, 655373u, 4294967291u})
    CHECK(is_prime(p));
  for (uint32_t n : {0u, 1u, 4u, 9u, 25u, 65536u, 65535u, 4294967295u, 4294967293u, 1u << 31})
    CHECK_FALSE(is_prime(n));
  // Agrees with a sieve below 10000.
  std::vector<bool> composite(10000);
  for (uint32_t i = 2; i < 10000; ++i) {
    if (!composite[i])
      for (uint32_t j = i * i; j < 10000; j += i)
        composite[j] = true;
    REQUIRE(is_prime(i) == !composite[i]);
  }
}

TEST_CASE("equal weights: every backend within 1% of the mean", "[maglev]") {
  auto b = make_backends(100);
  auto t = maglev_table(b, m_default);
  REQUIRE(t.size() == m_default);
  auto c = shares(t);
  REQUIRE(c.size() == 100);
  uint64_t lo = UINT64_MAX, hi = 0;
  for (auto& [slot, n] : c) {
    CHECK(slot >= 1000);
    CHECK(slot < 1100);
    lo = std::min(lo, n);
    hi = std::max(hi, n);
  }
  const double mean = double(m_default) / 100;
  const double spread = double(hi - lo) / mean;
  std::printf("maglev balance N=100 M=65537: min %lu max %lu (max-min)/mean %.4f%%\n", lo, hi,
              spread * 100);
  CHECK(spread <= 0.01);
}

TEST_CASE("weights are ratios", "[maglev]") {
  SECTION("1:2") {
    auto b = make_backends(2);
    b[0].weight = 1;
    b[1].weight = 2;
    auto c = shares(maglev_table(b, m_default));
    const double s0 = double(c[1000]) / m_default, s1 = double(c[1001]) / m_default;
    std::printf("maglev weights 1:2: shares %.5f %.5f\n", s0, s1);
    CHECK(std::abs(s0 - 1.0 / 3) <= 0.005);
    CHECK(std::abs(s1 - 2.0 / 3) <= 0.005);
  }
  SECTION("1:3:6 among 30 backends") {
    auto b = make_backends(30);
    for (size_t i = 0; i < b.size(); ++i)
      b[i].weight = i % 3 == 0 ? 1 : i % 3 == 1 ? 3 : 6;
    auto c = shares(maglev_table(b, m_default));
    double worst = 0;
    for (auto& mb : b) {
      const double expected = double(mb.weight) / 100; // total weight 10 * 10
      const double got = double(c[mb.slot]) / m_default;
      worst = std::max(worst, std::abs(got - expected) / expected);
    }
    std::printf("maglev weights 1:3:6 x10: worst relative share error %.4f%%\n", worst * 100);
    CHECK(worst <= 0.01);
  }
  SECTION("extreme ratio 1:65535") {
    auto b = make_backends(2);
    b[0].weight = 1;
    b[1].weight = 65535;
    auto c = shares(maglev_table(b, m_default));
    CHECK(c[1000] >= 1);
    CHECK(c[1000] <= 2);
    CHECK(c[1000] + c[1001] == m_default);
  }
}

TEST_CASE("weight 0 gets no entries", "[maglev]") {
  auto b = make_backends(10);
  b[3].weight = 0;
  b[7].weight = 0;
  auto c = shares(maglev_table(b, m_default));
  CHECK(c.count(1003) == 0);
  CHECK(c.count(1007) == 0);
  CHECK(c.size() == 8);
}

TEST_CASE("preconditions", "[maglev]") {
  auto b = make_backends(10);
  CHECK(maglev_table(b, 65536).empty()); // not prime
  CHECK(maglev_table(b, 7).empty());     // fewer entries than backends
  CHECK(maglev_table(b, 11).size() == 11);
  for (auto& x : b)
    x.weight = 0;
  CHECK(maglev_table(b, 251).empty()); // nobody takes new flows
  CHECK(maglev_table({}, 251).empty());
  // A single backend owns everything.
  auto one = make_backends(1);
  auto t = maglev_table(one, 251);
  CHECK(std::count(t.begin(), t.end(), 1000u) == 251);
}

TEST_CASE("the table depends on identities only, not on input order", "[maglev]") {
  auto b = make_backends(100);
  b[5].weight = 3;
  b[17].weight = 2;
  auto ref = maglev_table(b, m_default);
  std::mt19937 rng(42);
  for (int round = 0; round < 5; ++round) {
    std::shuffle(b.begin(), b.end(), rng);
    CHECK(maglev_table(b, m_default) == ref);
  }
  // Renumbering the slots renames the entries but moves none of them.
  for (auto& x : b)
    x.slot += 5000;
  auto renamed = maglev_table(b, m_default);
  REQUIRE(renamed.size() == ref.size());
  bool same = true;
  for (size_t i = 0; i < ref.size(); ++i)
    same = same && renamed[i] == ref[i] + 5000;
  CHECK(same);
}

TEST_CASE("removing one of 100 backends disturbs few other entries", "[maglev]") {
  auto b = make_backends(100);
  auto before = maglev_table(b, m_default);
  double worst = 0;
  for (uint32_t removed : {0u, 37u, 99u}) {
    auto fewer = b;
    fewer.erase(fewer.begin() + removed);
    auto after = maglev_table(fewer, m_default);
    uint64_t surviving = 0, moved = 0;
    for (size_t i = 0; i < before.size(); ++i) {
      if (before[i] == 1000 + removed)
        continue;
      ++surviving;
      moved += before[i] != after[i];
    }
    worst = std::max(worst, double(moved) / double(surviving));
  }
  std::printf("maglev disruption (remove 1 of 100, M=65537): worst %.4f%% of surviving "
              "backends' entries moved\n",
              worst * 100);
  CHECK(worst <= 0.015);
}

TEST_CASE("adding one backend to 100 disturbs few existing entries", "[maglev]") {
  auto b = make_backends(101);
  auto fewer = b;
  fewer.pop_back();
  auto before = maglev_table(fewer, m_default);
  auto after = maglev_table(b, m_default);
  uint64_t moved_between_old = 0;
  for (size_t i = 0; i < before.size(); ++i)
    moved_between_old += after[i] != before[i] && after[i] != 1100;
  const double frac = double(moved_between_old) / m_default;
  std::printf("maglev disruption (add 1 to 100): %.4f%% of entries moved between old "
              "backends\n",
              frac * 100);
  CHECK(frac <= 0.015);
}
