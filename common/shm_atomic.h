// Atomic access to plain integers that live in shared memory. The ABI structs
// hold plain uint64_t/uint32_t so they stay trivially copyable; every access that
// can race goes through these helpers (std::atomic_ref, lock-free on x86-64 and
// aarch64). Counters have one writer, so an increment is a relaxed load and a
// relaxed store, which compiles to a plain add without a locked instruction.
#pragma once

#include <atomic>
#include <cstdint>

namespace sluice {

static_assert(std::atomic_ref<uint64_t>::is_always_lock_free);
static_assert(std::atomic_ref<uint32_t>::is_always_lock_free);

template <typename T> inline T load_acquire(const T& v) {
  return std::atomic_ref<T>(const_cast<T&>(v)).load(std::memory_order_acquire);
}
template <typename T> inline T load_relaxed(const T& v) {
  return std::atomic_ref<T>(const_cast<T&>(v)).load(std::memory_order_relaxed);
}
template <typename T> inline void store_release(T& v, T x) {
  std::atomic_ref<T>(v).store(x, std::memory_order_release);
}
template <typename T> inline void store_relaxed(T& v, T x) {
  std::atomic_ref<T>(v).store(x, std::memory_order_relaxed);
}

// Single-writer counter update.
inline void counter_add(uint64_t& c, uint64_t n) {
  std::atomic_ref<uint64_t> r(c);
  r.store(r.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}
inline void counter_sub(uint64_t& c, uint64_t n) {
  std::atomic_ref<uint64_t> r(c);
  r.store(r.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
}

} // namespace sluice
