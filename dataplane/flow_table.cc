#include "flow_table.h"

#include <fmt/format.h>

#include <rte_errno.h>
#include <rte_hash_crc.h>
#include <rte_malloc.h>

namespace sluice::dp {

namespace {

// The table's own hash only has to be good and fast within this process:
// CRC32-C (SSE4.2 / ARMv8 CRC instructions through rte_hash_crc). Hashes that
// must agree across machines (Maglev) use flow_hash.h instead.
uint32_t flow_key_hash(const void* key, uint32_t len, uint32_t seed) {
  return rte_hash_crc(key, len, seed);
}

} // namespace

template <typename Key> flow_table<Key>::~flow_table() {
  if (h_)
    rte_hash_free(h_);
  if (qsbr_)
    rte_free(qsbr_);
  if (entries_)
    rte_free(entries_);
  if (keys_)
    rte_free(keys_);
}

template <typename Key>
result<void> flow_table<Key>::init(const char* name, uint32_t capacity, int socket_id) {
  capacity_ = capacity < 8 ? 8 : capacity;
  rte_hash_parameters params{};
  params.name = name;
  params.entries = capacity_;
  params.key_len = sizeof(Key);
  params.hash_func = flow_key_hash;
  params.hash_func_init_val = 0x51c3;
  params.socket_id = socket_id;
  params.extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF | RTE_HASH_EXTRA_FLAGS_EXT_TABLE;
  h_ = rte_hash_create(&params);
  if (!h_)
    return make_error(fmt::format("flow table {}: rte_hash_create({} entries) failed: {}", name,
                                  capacity_, rte_strerror(rte_errno)));
  // Positions run 0..capacity (DPDK may return up to `entries` inclusive).
  entries_ = static_cast<flow_entry*>(rte_zmalloc_socket(
      name, sizeof(flow_entry) * (size_t(capacity_) + 64), RTE_CACHE_LINE_SIZE, socket_id));
  if (!entries_)
    return make_error(fmt::format("flow table {}: cannot allocate {} MiB of flow entries", name,
                                  sizeof(flow_entry) * capacity_ >> 20));
  keys_ = static_cast<Key*>(rte_zmalloc_socket(name, sizeof(Key) * (size_t(capacity_) + 64),
                                               RTE_CACHE_LINE_SIZE, socket_id));
  if (!keys_)
    return make_error(fmt::format("flow table {}: cannot allocate {} MiB of flow keys", name,
                                  sizeof(Key) * capacity_ >> 20));
  size_t qsbr_size = rte_rcu_qsbr_get_memsize(flow_table_max_readers);
  qsbr_ = static_cast<rte_rcu_qsbr*>(
      rte_zmalloc_socket(name, qsbr_size, RTE_CACHE_LINE_SIZE, socket_id));
  if (!qsbr_ || rte_rcu_qsbr_init(qsbr_, flow_table_max_readers) != 0)
    return make_error(fmt::format("flow table {}: cannot set up RCU", name));
  rte_hash_rcu_config rcu{};
  rcu.v = qsbr_;
  rcu.mode = RTE_HASH_QSBR_MODE_DQ;
  rcu.dq_size = 0; // default: the table's size
  rcu.trigger_reclaim_limit = 32;
  rcu.max_reclaim_size = 64;
  if (rte_hash_rcu_qsbr_add(h_, &rcu) != 0)
    return make_error(fmt::format("flow table {}: rte_hash_rcu_qsbr_add failed: {}", name,
                                  rte_strerror(rte_errno)));
  return {};
}

template class flow_table<flow_key4>;
template class flow_table<flow_key6>;

} // namespace sluice::dp
