#include "table_digest.h"

#include <fmt/format.h>

#include "shm_atomic.h"

namespace sluice::cp {

namespace {

constexpr uint64_t fnv_offset = 0xcbf29ce484222325ull, fnv_prime = 0x100000001b3ull;

uint64_t backend_id(const abi::backend_entry& b, uint16_t service_port) {
  uint64_t h = fnv_offset;
  for (uint8_t c : b.addr)
    h = (h ^ c) * fnv_prime;
  const uint16_t port = b.port ? b.port : service_port;
  h = (h ^ (port >> 8)) * fnv_prime;
  return (h ^ (port & 0xff)) * fnv_prime;
}

} // namespace

uint64_t table_digest(const table_view& v, uint32_t service_index, uint16_t service_port) {
  const auto& s = v.services[service_index];
  uint64_t h = (fnv_offset ^ s.lookup_size) * fnv_prime;
  // Ids per slot are recomputed per entry run: consecutive entries often name
  // the same backend, so cache the last one.
  uint32_t last_slot = UINT32_MAX;
  uint64_t id = 0;
  for (uint32_t i = 0; i < s.lookup_size; ++i) {
    const uint32_t slot = v.lookup[s.lookup_offset + i];
    if (slot != last_slot) {
      id = backend_id(v.backends[slot], service_port);
      last_slot = slot;
    }
    h = (h ^ id) * fnv_prime;
    h ^= h >> 29; // fold high bits down so every entry moves every bit
  }
  return h;
}

std::map<std::string, uint64_t>
service_digests(const shm_region& region, const table_builder& builder, const cp_config& config) {
  std::map<std::string, uint64_t> out;
  const uint64_t g = load_acquire(region.header()->generation);
  for (const auto& s : config.services) {
    out[s.name] = 0;
    if (g == 0)
      continue;
    auto idx = builder.service_index(key_of(s.cfg));
    if (!idx)
      continue;
    out[s.name] = table_digest(region.view(unsigned(g % 2)), *idx, s.cfg.port);
  }
  return out;
}

std::string digest_hex(uint64_t d) {
  return fmt::format("{:016x}", d);
}

} // namespace sluice::cp
