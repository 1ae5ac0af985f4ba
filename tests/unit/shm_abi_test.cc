#include <algorithm>
#include <catch2/catch_test_macros.hpp>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>
#include <utility>
#include <vector>

#include "shm_abi.h"
#include "shm_atomic.h"
#include "shm_region.h"
#include "temp_shm.h"

using namespace sluice;
using sluice::test::contains;
using sluice::test::temp_shm_path;

namespace {

constexpr abi::capacities small_caps{16, 64, 4096, 4};

void check_layout(const abi::capacities& c) {
  const abi::layout l = abi::compute_layout(c);
  // Regions of the object, [begin, end).
  std::vector<std::pair<uint64_t, uint64_t>> r = {
      {0, sizeof(abi::shm_header)},
      {l.worker_ack_offset,
       l.worker_ack_offset + uint64_t(c.max_workers) * sizeof(abi::worker_ack)},
      {l.slot_offset[0], l.slot_offset[0] + l.slot_size},
      {l.slot_offset[1], l.slot_offset[1] + l.slot_size},
      {l.stats_offset, l.stats_offset + uint64_t(c.max_workers) * l.worker_stats_size},
      {l.soft_offset, l.soft_offset + uint64_t(c.max_backends) * sizeof(abi::backend_soft)},
  };
  std::sort(r.begin(), r.end());
  for (size_t i = 1; i < r.size(); ++i)
    CHECK(r[i - 1].second <= r[i].first);
  CHECK(r.back().second <= l.total_size);
  CHECK(l.total_size % 4096 == 0);
  CHECK(l.worker_ack_offset % abi::cache_line == 0);
  CHECK(l.slot_offset[0] % 4096 == 0);
  CHECK(l.slot_offset[1] % 4096 == 0);
  CHECK(l.stats_offset % 4096 == 0);
  CHECK(l.soft_offset % 4096 == 0);
  CHECK(l.worker_stats_size % abi::cache_line == 0);
  CHECK(l.services_stats_offset % abi::cache_line == 0);
  CHECK(l.backends_stats_offset % abi::cache_line == 0);
  CHECK(l.counters_size >= sizeof(abi::worker_counters_block));
  // Within a slot: header, services, backends, VIP index, lookup pool in order.
  CHECK(l.services_offset_in_slot >= sizeof(abi::slot_header));
  CHECK(l.backends_offset_in_slot >=
        l.services_offset_in_slot + uint64_t(c.max_services) * sizeof(abi::service_entry));
  CHECK(l.vip_index_offset_in_slot >=
        l.backends_offset_in_slot + uint64_t(c.max_backends) * sizeof(abi::backend_entry));
  CHECK(l.lookup_offset_in_slot >=
        l.vip_index_offset_in_slot + l.vip_index_capacity * sizeof(abi::vip_index_entry));
  CHECK(l.lookup_offset_in_slot % abi::cache_line == 0);
  CHECK(l.slot_size >= l.lookup_offset_in_slot + uint64_t(c.lookup_entries) * 4);
  CHECK(l.services_offset_in_slot % alignof(abi::service_entry) == 0);
  CHECK(l.backends_offset_in_slot % alignof(abi::backend_entry) == 0);
  CHECK(l.vip_index_offset_in_slot % alignof(abi::vip_index_entry) == 0);
  // VIP index: power of two, at least twice the services.
  CHECK((l.vip_index_capacity & (l.vip_index_capacity - 1)) == 0);
  CHECK(l.vip_index_capacity >= 2ull * c.max_services);
}

// Creates an object, lets `corrupt` modify its header, and returns the error of
// attaching to it.
template <typename F> std::string attach_error_after(F corrupt) {
  temp_shm_path p("corrupt");
  {
    auto r = shm_region::create_or_attach(p.path, small_caps);
    REQUIRE(r.ok());
    corrupt(*r->header());
  }
  auto a = shm_region::attach(p.path);
  REQUIRE_FALSE(a.ok());
  auto b = shm_region::create_or_attach(p.path, small_caps);
  REQUIRE_FALSE(b.ok());
  CHECK(a.error_message() == b.error_message());
  return a.error_message();
}

} // namespace

TEST_CASE("layout: aligned, non-overlapping, covered by total_size", "[shm]") {
  check_layout(abi::default_capacities);
  check_layout(small_caps);
  check_layout({1, 1, 1, 1});
  check_layout({1000, 100000, 16u * 1024 * 1024, 128});
}

TEST_CASE("create writes the header; attach agrees", "[shm]") {
  temp_shm_path p("create");
  auto r = shm_region::create_or_attach(p.path, small_caps);
  REQUIRE(r.ok());
  shm_region& s = *r;
  CHECK(s.created());
  const abi::layout l = abi::compute_layout(small_caps);
  const abi::shm_header& h = *s.header();
  CHECK(load_acquire(h.magic) == abi::magic);
  CHECK(h.version_major == abi::version_major);
  CHECK(h.version_minor == abi::version_minor);
  CHECK(h.header_size == sizeof(abi::shm_header));
  CHECK(h.total_size == l.total_size);
  CHECK(h.caps.max_services == 16);
  CHECK(h.caps.max_backends == 64);
  CHECK(h.caps.lookup_entries == 4096);
  CHECK(h.caps.max_workers == 4);
  CHECK(h.service_entry_size == sizeof(abi::service_entry));
  CHECK(h.backend_entry_size == sizeof(abi::backend_entry));
  CHECK(h.vip_entry_size == sizeof(abi::vip_index_entry));
  CHECK(h.slot_header_size == sizeof(abi::slot_header));
  CHECK(h.worker_stats_size == l.worker_stats_size);
  CHECK(h.drop_reasons == drop_reason_count);
  CHECK(h.worker_counters == worker_counter_count);
  CHECK(h.slot_offset[0] == l.slot_offset[0]);
  CHECK(h.slot_offset[1] == l.slot_offset[1]);
  CHECK(h.slot_size == l.slot_size);
  CHECK(h.worker_ack_offset == l.worker_ack_offset);
  CHECK(h.stats_offset == l.stats_offset);
  CHECK(h.vip_index_capacity == l.vip_index_capacity);
  CHECK(h.generation == 0);
  CHECK(s.slot_header(0)->generation == 0);
  CHECK(s.slot_header(0)->vip_index_mask == l.vip_index_capacity - 1);
  // Generation 0 is a valid empty table: no VIP is found.
  const table_view v = s.view(0);
  uint8_t vip[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1};
  CHECK(v.find_service(vip, 80, 6) == -1);
  CHECK(v.hdr->service_limit == 0);

  // Writes through one mapping are seen through another.
  s.worker_ack(2)->acked_generation = 77;
  s.counters(3)->drops[1] = 5;
  auto a = shm_region::attach(p.path);
  REQUIRE(a.ok());
  CHECK_FALSE(a->created());
  CHECK(a->caps().max_backends == 64);
  CHECK(a->layout().total_size == l.total_size);
  CHECK(a->worker_ack(2)->acked_generation == 77);
  CHECK(a->counters(3)->drops[1] == 5);
  auto b = shm_region::create_or_attach(p.path, small_caps);
  REQUIRE(b.ok());
  CHECK_FALSE(b->created());

  // Move keeps the mapping valid.
  shm_region moved = std::move(*b);
  CHECK(moved.worker_ack(2)->acked_generation == 77);
  shm_region assigned;
  assigned = std::move(moved);
  CHECK(assigned.worker_ack(2)->acked_generation == 77);
  CHECK(assigned.path() == p.path);
}

TEST_CASE("attach refuses mismatches with expected/got", "[shm]") {
  SECTION("magic") {
    auto e = attach_error_after([](abi::shm_header& h) { h.magic = 0x1234; });
    CHECK(contains(e, "magic expected 0x31454349554c53, got 0x1234"));
  }
  SECTION("major version") {
    auto e = attach_error_after([](abi::shm_header& h) { h.version_major = 2; });
    CHECK(contains(e, "version_major expected 1, got 2"));
    CHECK(contains(e, "different Sluice version"));
  }
  SECTION("newer minor version is accepted") {
    temp_shm_path p("minor");
    {
      auto r = shm_region::create_or_attach(p.path, small_caps);
      REQUIRE(r.ok());
      r->header()->version_minor = 9;
    }
    CHECK(shm_region::attach(p.path).ok());
  }
  SECTION("header size") {
    auto e = attach_error_after([](abi::shm_header& h) { h.header_size = 256; });
    CHECK(contains(e, "header_size expected 512, got 256"));
  }
  SECTION("slot size") {
    auto e = attach_error_after([](abi::shm_header& h) { h.slot_size += 4096; });
    CHECK(contains(e, "slot_size expected"));
  }
  SECTION("entry size") {
    auto e = attach_error_after([](abi::shm_header& h) { h.backend_entry_size = 48; });
    CHECK(contains(e, "backend_entry_size expected 64, got 48"));
  }
  SECTION("drop reasons") {
    auto e = attach_error_after([](abi::shm_header& h) { h.drop_reasons += 1; });
    CHECK(contains(e, "drop_reasons expected " + std::to_string(drop_reason_count) + ", got " +
                          std::to_string(drop_reason_count + 1)));
  }
  SECTION("total size") {
    auto e = attach_error_after([](abi::shm_header& h) { h.total_size = 12345; });
    CHECK(contains(e, "total_size expected"));
    CHECK(contains(e, "got 12345"));
  }
  SECTION("offsets") {
    auto e = attach_error_after([](abi::shm_header& h) { h.stats_offset += 64; });
    CHECK(contains(e, "stats_offset expected"));
  }
}

TEST_CASE("create_or_attach with other capacities is refused", "[shm]") {
  temp_shm_path p("caps");
  auto r = shm_region::create_or_attach(p.path, small_caps);
  REQUIRE(r.ok());
  abi::capacities other = small_caps;
  other.max_backends = 128;
  auto a = shm_region::create_or_attach(p.path, other);
  REQUIRE_FALSE(a.ok());
  CHECK(contains(a.error_message(), "max_backends expected 128, got 64"));
  CHECK(contains(a.error_message(), p.path));
}

TEST_CASE("attach errors: missing object, uninitialised object, bad capacities", "[shm]") {
  temp_shm_path p("missing");
  auto a = shm_region::attach(p.path);
  REQUIRE_FALSE(a.ok());
  CHECK(contains(a.error_message(), "does not exist"));

  auto z = shm_region::create_or_attach(p.path, {0, 1, 1, 1});
  REQUIRE_FALSE(z.ok());
  CHECK(contains(z.error_message(), "must be > 0"));

  // A creator that died before publishing magic: attach gives up after ~2 s.
  int fd = ::open(p.path.c_str(), O_CREAT | O_RDWR, 0600);
  REQUIRE(fd >= 0);
  REQUIRE(::ftruncate(fd, 1 << 20) == 0);
  ::close(fd);
  auto u = shm_region::attach(p.path);
  REQUIRE_FALSE(u.ok());
  CHECK(contains(u.error_message(), "not initialised"));
}

TEST_CASE("default path", "[shm]") {
  const std::string d = shm_region::default_path("x");
  CHECK((d == "/dev/shm/sluice-x" || d == "/dev/hugepages/sluice-x"));
}
