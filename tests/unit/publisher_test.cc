#include <atomic>
#include <catch2/catch_test_macros.hpp>
#include <cstring>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "publisher.h"
#include "shm_atomic.h"
#include "table_builder.h"
#include "temp_shm.h"

using namespace sluice;
using namespace std::chrono_literals;
using sluice::test::contains;
using sluice::test::temp_shm_path;

namespace {

constexpr abi::capacities caps{16, 64, 4096, 4};

// The config of generation g encodes g everywhere a reader can see it: 1 to 3
// services (VIP 10.0.0.i, port 80 + i), 2 or 3 backends each, every backend's
// weight = g % 1000 + 1 and port 8000 + g % 5 (so identities, and therefore
// slots and incarnations, churn every few generations).
std::vector<service_config> config_for(uint64_t g) {
  std::vector<service_config> cfg;
  const unsigned services = unsigned(1 + g % 3);
  const unsigned backends = unsigned(2 + g % 2);
  for (unsigned i = 0; i < services; ++i) {
    service_config s;
    s.vip = ip_addr::from_v4_be(0);
    s.vip.bytes[12] = 10;
    s.vip.bytes[15] = uint8_t(i + 1);
    s.port = uint16_t(80 + i);
    s.maglev_size = 97;
    for (unsigned j = 0; j < backends; ++j) {
      backend_config b;
      b.addr = ip_addr::from_v4_be(0);
      b.addr.bytes[12] = 10;
      b.addr.bytes[13] = 1;
      b.addr.bytes[14] = uint8_t(i);
      b.addr.bytes[15] = uint8_t(j + 1);
      b.port = uint16_t(8000 + g % 5);
      b.weight = uint16_t(g % 1000 + 1);
      s.backends.push_back(b);
    }
    cfg.push_back(s);
  }
  return cfg;
}

// Everything a worker can read in one burst belongs to generation g. Returns
// an empty string or what is wrong (Catch2 assertions are not thread-safe).
std::string check_burst(const table_view& v, uint64_t g) {
  if (v.hdr->generation != g)
    return "slot generation " + std::to_string(v.hdr->generation) + " != loaded " +
           std::to_string(g);
  if (g == 0)
    return v.hdr->service_limit == 0 ? "" : "generation 0 not empty";
  const unsigned services = unsigned(1 + g % 3);
  const unsigned backends = unsigned(2 + g % 2);
  unsigned in_use = 0;
  for (uint32_t i = 0; i < v.hdr->service_limit; ++i) {
    const abi::service_entry& s = v.services[i];
    if (!(s.flags & abi::service_in_use))
      continue;
    ++in_use;
    if (s.backend_count != backends)
      return "gen " + std::to_string(g) + ": backend_count " + std::to_string(s.backend_count);
    if (v.find_service(s.vip, s.port, s.proto) != int32_t(i))
      return "gen " + std::to_string(g) + ": service not found through the VIP index";
    if (s.lookup_size != 97)
      return "gen " + std::to_string(g) + ": lookup_size " + std::to_string(s.lookup_size);
    for (uint32_t j = 0; j < s.lookup_size; ++j) {
      const abi::backend_entry& b = v.backends[v.lookup[s.lookup_offset + j]];
      if (!(b.flags & abi::backend_in_use) || b.service != i)
        return "gen " + std::to_string(g) + ": lookup entry to a foreign backend";
    }
  }
  if (in_use != services)
    return "gen " + std::to_string(g) + ": " + std::to_string(in_use) + " services";
  unsigned be_in_use = 0;
  for (uint32_t i = 0; i < v.hdr->backend_limit; ++i) {
    const abi::backend_entry& b = v.backends[i];
    if (!(b.flags & abi::backend_in_use))
      continue;
    ++be_in_use;
    if (b.weight != g % 1000 + 1 || b.port != 8000 + g % 5)
      return "gen " + std::to_string(g) + ": backend of another generation (weight " +
             std::to_string(b.weight) + ", port " + std::to_string(b.port) + ")";
  }
  if (be_in_use != services * backends)
    return "gen " + std::to_string(g) + ": " + std::to_string(be_in_use) + " backends";
  return "";
}

struct region_fixture {
  temp_shm_path path{"pub"};
  shm_region region;
  region_fixture() {
    auto r = shm_region::create_or_attach(path.path, caps);
    REQUIRE(r.ok());
    region = std::move(*r);
    // This process plays the dataplane.
    store_release(region.header()->procs.dp_pid, int32_t(::getpid()));
  }
};

} // namespace

TEST_CASE("a concurrent reader only ever sees whole generations", "[publisher]") {
  region_fixture f;
  publisher pub(f.region);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> bursts{0}, switches{0};
  std::string failure;
  std::thread worker([&] {
    table_reader reader(f.region, 1);
    uint64_t last = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      const table_view& v = reader.refresh();
      // A burst: read the whole table twice, as packets would over a burst.
      for (int pass = 0; pass < 2 && failure.empty(); ++pass) {
        std::string e = check_burst(v, reader.generation());
        if (!e.empty())
          failure = e;
      }
      if (!failure.empty())
        break;
      switches += reader.generation() != last;
      last = reader.generation();
      ++bursts;
    }
  });
  // Wait for the worker to be live before publishing.
  while (load_acquire(f.region.worker_ack(1)->live) == 0)
    std::this_thread::yield();

  constexpr uint64_t generations = 2000;
  std::string publish_error;
  for (uint64_t g = 1; g <= generations && publish_error.empty(); ++g) {
    auto r = pub.publish(config_for(g), 5000ms);
    if (!r.ok())
      publish_error = r.error_message();
    else if (*r != g)
      publish_error = "publish returned " + std::to_string(*r);
  }
  stop = true;
  worker.join();
  INFO("bursts " << bursts.load() << ", generation switches " << switches.load());
  CHECK(publish_error == "");
  CHECK(failure == "");
  CHECK(pub.generation() == generations);
  // Every publication waited for the worker's acknowledgement, so it saw each one.
  CHECK(switches.load() == generations);
  CHECK(f.region.header()->procs.cp_pid == ::getpid());
  CHECK(f.region.header()->procs.cp_heartbeat_ns > 0);
  CHECK(validate_slot(current_view(f.region), caps).ok());
  CHECK(check_burst(current_view(f.region), generations) == "");
  CHECK(f.region.worker_ack(1)->live == 0); // the reader marked itself gone
}

TEST_CASE("a live worker that never acknowledges", "[publisher]") {
  region_fixture f;
  publisher pub(f.region);
  // Worker 2 is live but stuck at generation 0.
  store_release(f.region.worker_ack(2)->live, 1u);

  // Generation 1 can be published (nobody reads slot 1) but is not acknowledged.
  auto r1 = pub.publish(config_for(1), 50ms);
  REQUIRE_FALSE(r1.ok());
  CHECK(r1.error_message() ==
        "published generation 1 but workers [2] did not acknowledge within 50 ms");
  CHECK(pub.generation() == 1); // the publication stays
  CHECK(check_burst(current_view(f.region), 1) == "");
  CHECK(pub.lagging_workers(1) == std::vector<uint32_t>{2});
  CHECK_FALSE(pub.wait_acked(1, 10ms).ok());

  // Generation 2 would overwrite slot 0, which worker 2 may still read: refused,
  // nothing changes.
  auto r2 = pub.publish(config_for(2), 50ms);
  REQUIRE_FALSE(r2.ok());
  CHECK(contains(r2.error_message(), "cannot publish generation 2: workers [2]"));
  CHECK(pub.generation() == 1);
  CHECK(f.region.slot_header(0)->generation == 0);

  // The worker catches up: publication proceeds.
  store_release(f.region.worker_ack(2)->acked_generation, uint64_t(1));
  CHECK(pub.wait_acked(1, 10ms).ok());
  std::thread late([&] {
    while (load_acquire(f.region.header()->generation) < 2)
      std::this_thread::yield();
    store_release(f.region.worker_ack(2)->acked_generation, uint64_t(2));
  });
  auto r3 = pub.publish(config_for(2), 5000ms);
  late.join();
  REQUIRE(r3.ok());
  CHECK(*r3 == 2);
}

TEST_CASE("workers of a dead dataplane do not block publication", "[publisher]") {
  region_fixture f;
  publisher pub(f.region);
  store_release(f.region.worker_ack(0)->live, 1u);
  store_release(f.region.worker_ack(3)->live, 1u);
  // A pid that surely does not exist any more: a child that has exited and been
  // reaped.
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0)
    ::_exit(0);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  store_release(f.region.header()->procs.dp_pid, int32_t(child));
  CHECK_FALSE(dataplane_alive(f.region));
  for (uint64_t g = 1; g <= 3; ++g) {
    auto r = pub.publish(config_for(g), 10ms);
    REQUIRE(r.ok());
    CHECK(*r == g);
  }
  // No dataplane recorded at all: same.
  store_release(f.region.header()->procs.dp_pid, int32_t(0));
  CHECK(pub.publish(config_for(4), 10ms).ok());
}

TEST_CASE("invalid config: nothing is published", "[publisher]") {
  region_fixture f;
  publisher pub(f.region);
  REQUIRE(pub.publish(config_for(1), 10ms).ok());
  auto bad = config_for(2);
  bad[0].port = 0;
  auto r = pub.publish(bad, 10ms);
  REQUIRE_FALSE(r.ok());
  CHECK(contains(r.error_message(), "port 0"));
  CHECK(pub.generation() == 1);
  CHECK(check_burst(current_view(f.region), 1) == "");
}

TEST_CASE("a restarted publisher keeps indices and incarnations", "[publisher]") {
  region_fixture f;
  auto cfg = config_for(3);
  backend_assignment before;
  {
    publisher pub(f.region);
    REQUIRE(pub.publish(config_for(1), 10ms).ok());
    REQUIRE(pub.publish(cfg, 10ms).ok());
    before = *pub.builder().backend(key_of(cfg[0], cfg[0].backends[1]));
  }
  // Another process attaches and takes over.
  auto again = shm_region::attach(f.path.path);
  REQUIRE(again.ok());
  publisher pub(*again);
  auto a = pub.builder().backend(key_of(cfg[0], cfg[0].backends[1]));
  REQUIRE(a);
  CHECK(a->slot == before.slot);
  CHECK(a->incarnation == before.incarnation);
  REQUIRE(pub.publish(cfg, 10ms).ok());
  CHECK(pub.generation() == 3);
  CHECK(pub.builder().backend(key_of(cfg[0], cfg[0].backends[1]))->incarnation ==
        before.incarnation);
}
