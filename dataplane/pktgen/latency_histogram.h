// Latency distribution in nanoseconds with bounded memory and O(1) insert:
// log-linear buckets (the power of two of the value, then 16 linear steps
// inside it), so any value is kept within 1/16 (6.25 %) of its true size from
// 1 ns to hours. Percentiles report the upper edge of the bucket they fall
// in, i.e. they never understate. One per stream, owned by the pktgen lcore.
#pragma once

#include <array>
#include <bit>
#include <cstdint>

namespace sluice::pktgen {

class latency_histogram {
public:
  static constexpr uint32_t sub_bits = 4;
  static constexpr uint32_t n_buckets = (64 - sub_bits + 1) << sub_bits;

  void add(uint64_t ns) {
    ++counts_[bucket(ns)];
    ++total_;
    if (ns > max_)
      max_ = ns;
  }
  void merge(const latency_histogram& o) {
    for (uint32_t i = 0; i < n_buckets; ++i)
      counts_[i] += o.counts_[i];
    total_ += o.total_;
    if (o.max_ > max_)
      max_ = o.max_;
  }
  void clear() { *this = latency_histogram{}; }
  uint64_t count() const { return total_; }
  uint64_t max() const { return max_; }

  // Value at quantile q (0..1): the upper edge of its bucket, capped at max.
  uint64_t quantile(double q) const {
    if (total_ == 0)
      return 0;
    uint64_t rank = uint64_t(q * double(total_));
    if (rank >= total_)
      rank = total_ - 1;
    uint64_t seen = 0;
    for (uint32_t i = 0; i < n_buckets; ++i) {
      seen += counts_[i];
      if (seen > rank) {
        uint64_t edge = upper_edge(i);
        return edge < max_ ? edge : max_;
      }
    }
    return max_;
  }

  static uint32_t bucket(uint64_t v) {
    if (v < (1u << sub_bits))
      return uint32_t(v);
    uint32_t msb = 63 - uint32_t(std::countl_zero(v));
    uint32_t shift = msb - sub_bits;
    return ((shift + 1) << sub_bits) | uint32_t((v >> shift) & ((1u << sub_bits) - 1));
  }
  static uint64_t upper_edge(uint32_t b) {
    if (b < (1u << sub_bits))
      return b;
    uint32_t shift = (b >> sub_bits) - 1;
    uint64_t mant = (1u << sub_bits) | (b & ((1u << sub_bits) - 1));
    return ((mant + 1) << shift) - 1;
  }

private:
  std::array<uint64_t, n_buckets> counts_{};
  uint64_t total_ = 0;
  uint64_t max_ = 0;
};

} // namespace sluice::pktgen
