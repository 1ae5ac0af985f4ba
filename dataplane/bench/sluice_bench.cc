// sluice-bench: per-packet cost of the REAL worker pipeline (dp::pipeline, the
// object sluice-dataplane's workers run) on one core, over pre-built packets.
//
// Set-up (all untimed): EAL on lcore 0 without PCI (hugepages when mounted and
// free, else --no-huge), one shm_region in /dev/shm (removed at exit), services
// published with sluice::publisher, every backend's MAC in the neighbour table,
// then per case the flows are created by sending one SYN each (NAT: plus the
// backend's SYN-ACK, checking the reply path), and one warm-up pass over every
// flow validates each output packet (side, MAC, outer/rewritten addresses) with
// zero drops; any deviation exits non-zero.
//
// Timed loop, per burst of 32: reset each mbuf from its template (64-byte
// memcpy + data_off/data_len/pkt_len), begin_burst + process + housekeeping as
// the worker loop does; outputs are kept and the same mbufs are reused (never
// freed). Flows are walked in a pseudo-random permutation so large tables miss
// the cache. Each run lasts at least --min-time-ms; the JSON line per case
// reports the median over --runs runs, with min and max.
//
// Cases: floor (template reset + parse_frame + MAC swap, no pipeline: the
// harness baseline), dsr-ipip-established, dsr-gue-established,
// nat-established-forward, nat-established-reply, new-flow (SYNs with fresh
// tuples into a dsr-ipip table holding `flows` flows; every 1024 new flows the
// timer pauses and they are deleted again so the fill stays at `flows`).
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fmt/format.h>
#include <fstream>
#include <memory>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <sys/mman.h>
#include <unistd.h>
#include <vector>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "flow_table.h"
#include "neighbour_table.h"
#include "packet_parse.h"
#include "pipeline.h"
#include "pipeline_impl.h"
#include "publisher.h"
#include "scheduler_names.h"
#include "service_config.h"
#include "shm_region.h"
#include "version.h"

namespace {

using namespace sluice;
using clk = std::chrono::steady_clock;

[[noreturn]] void fail(const std::string& msg) {
  throw std::runtime_error(msg);
}

// ---------------------------------------------------------------------------
// Options

const std::vector<std::string> all_cases = {"floor",
                                            "dsr-ipip-established",
                                            "dsr-gue-established",
                                            "nat-established-forward",
                                            "nat-established-reply",
                                            "new-flow",
                                            "new-flow-full",
                                            "new-flow-maglev",
                                            "new-flow-rr",
                                            "new-flow-wrr",
                                            "new-flow-lc",
                                            "new-flow-wlc",
                                            "new-flow-sh",
                                            "new-flow-random",
                                            "new-flow-two-choices",
                                            "new-flow-least-bandwidth",
                                            "new-flow-least-response-time",
                                            "syn-flood-cookies",
                                            "syn-flood-no-cookies",
                                            "memory-dependent",
                                            "memory-parallel"};

struct options {
  std::vector<std::string> cases;
  std::vector<uint32_t> flows;
  int runs = 5;
  double min_time_s = 0.25;
  bool quick = false;
  int huge = -1; // -1 auto, 0 no, 1 yes
  // Diagnostics (the defaults are what the worker loop does):
  bool housekeeping = true; // --no-housekeeping: skip the per-burst expiry sweep
  uint32_t capacity = 0;    // --capacity N: flow_capacity for every case
};
bool g_housekeeping = true;

void usage(FILE* f) {
  std::fprintf(f,
               "usage: sluice-bench [--case NAME[,NAME...]]... [--flows N[,N...]]... [--runs N]\n"
               "                    [--min-time-ms MS] [--quick] [--huge | --no-huge]\n"
               "                    [--capacity N] [--no-housekeeping]\n"
               "cases: floor dsr-ipip-established dsr-gue-established nat-established-forward\n"
               "       nat-established-reply new-flow new-flow-full new-flow-SCHEDULER\n"
               "       (default: all; new-flow: into a table at most half full; new-flow-full:\n"
               "        into a saturated table, every insert evicting a half-open flow)\n"
               "       (SCHEDULER: maglev rr wrr lc wlc sh random two-choices\n"
               "        least-bandwidth least-response-time; new-flow = new-flow-maglev)\n"
               "       syn-flood-cookies syn-flood-no-cookies (spoofed SYNs to a nat VIP with\n"
               "        synproxy on: a cookie SYN-ACK each; off: a full-NAT flow each)\n"
               "       memory-dependent memory-parallel (no pipeline: loads of random\n"
               "        64-byte lines over as many bytes as the IPv4 flow table of the case\n"
               "        takes, one chain of dependent loads / 32 chains interleaved: the\n"
               "        machine's cost of a cache miss, alone and overlapped)\n"
               "flows: default 1,1024,1048576; --quick: 1,1024, 3 runs, 50 ms per run\n"
               "--capacity and --no-housekeeping are diagnostics (default: capacity sized to\n"
               "the case, housekeeping once per burst as the worker loop does).\n"
               "Prints one JSON object per case and flow count on stdout.\n");
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t c = s.find(',', start);
    if (c == std::string::npos)
      c = s.size();
    if (c > start)
      out.push_back(s.substr(start, c - start));
    start = c + 1;
  }
  return out;
}

options parse_options(int argc, char** argv) {
  options o;
  bool runs_set = false, time_set = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc)
        fail("option " + a + " needs a value");
      return argv[++i];
    };
    if (a == "--case") {
      for (auto& c : split(value())) {
        if (std::find(all_cases.begin(), all_cases.end(), c) == all_cases.end())
          fail("unknown case '" + c + "'");
        o.cases.push_back(c);
      }
    } else if (a == "--flows") {
      for (auto& f : split(value())) {
        unsigned long v = std::stoul(f);
        if (v < 1 || v > (1ul << 22))
          fail("--flows must be 1..4194304");
        o.flows.push_back(uint32_t(v));
      }
    } else if (a == "--runs") {
      o.runs = std::stoi(value());
      runs_set = true;
      if (o.runs < 1)
        fail("--runs must be >= 1");
    } else if (a == "--min-time-ms") {
      o.min_time_s = std::stod(value()) / 1000.0;
      time_set = true;
    } else if (a == "--quick") {
      o.quick = true;
    } else if (a == "--huge") {
      o.huge = 1;
    } else if (a == "--no-huge") {
      o.huge = 0;
    } else if (a == "--no-housekeeping") {
      o.housekeeping = false;
    } else if (a == "--capacity") {
      unsigned long v = std::stoul(value());
      if (v < 8 || v > (1ul << 23))
        fail("--capacity must be 8..8388608");
      o.capacity = uint32_t(v);
    } else if (a == "--help" || a == "-h") {
      usage(stdout);
      std::exit(0);
    } else {
      fail("unknown option '" + a + "' (see --help)");
    }
  }
  if (o.cases.empty())
    o.cases = all_cases;
  if (o.flows.empty())
    o.flows = o.quick ? std::vector<uint32_t>{1, 1024} : std::vector<uint32_t>{1, 1024, 1u << 20};
  if (o.quick && !runs_set)
    o.runs = 3;
  if (o.quick && !time_set)
    o.min_time_s = 0.05;
  return o;
}

// ---------------------------------------------------------------------------
// EAL and shared memory

std::string g_shm_path; // unlinked at exit and on SIGINT/SIGTERM

void on_signal(int sig) {
  if (!g_shm_path.empty())
    unlink(g_shm_path.c_str());
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

bool hugepages_usable(uint64_t want_mb) {
  std::ifstream mounts("/proc/mounts");
  std::string dev, dir, type;
  bool mounted = false;
  std::string line;
  while (std::getline(mounts, line)) {
    char d[256], m[256], t[64];
    if (std::sscanf(line.c_str(), "%255s %255s %63s", d, m, t) == 3 &&
        std::string(m) == "/dev/hugepages" && std::string(t) == "hugetlbfs")
      mounted = true;
  }
  if (!mounted || access("/dev/hugepages", W_OK) != 0)
    return false;
  std::ifstream f("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages");
  uint64_t free_pages = 0;
  if (!(f >> free_pages))
    return false;
  return free_pages * 2 >= want_mb;
}

bool init_eal(const options& o, uint64_t want_mb) {
  bool huge = o.huge == 1 || (o.huge == -1 && hugepages_usable(want_mb));
  static std::string prefix = "--file-prefix=sluice-bench-" + std::to_string(getpid());
  std::vector<const char*> args = {
      "sluice-bench",  "-l", "0", "--no-pci", "--no-shconf", prefix.c_str(), "--log-level=3",
      "--no-telemetry"};
  if (huge) {
    args.push_back("--huge-unlink");
  } else {
    args.push_back("--no-huge");
    args.push_back("-m");
    args.push_back("4096");
  }
  if (rte_eal_init(int(args.size()), const_cast<char**>(args.data())) < 0)
    fail("rte_eal_init failed");
  return huge;
}

// ---------------------------------------------------------------------------
// Frames

using mac6 = std::array<uint8_t, 6>;
const mac6 own_mac = {0x02, 0, 0, 0, 0, 0xaa};
const mac6 client_mac = {0x02, 0, 0, 0, 0, 0x01};
inline mac6 backend_mac(uint32_t ip_host) {
  return {0x02, 0, 0, 0, 0x01, uint8_t(ip_host)};
}

constexpr uint32_t ip4(int a, int b, int c, int d) {
  return uint32_t(a) << 24 | uint32_t(b) << 16 | uint32_t(c) << 8 | uint32_t(d);
}
const uint32_t vip_ipip = ip4(10, 0, 0, 1), vip_gue = ip4(10, 0, 0, 2), vip_nat = ip4(10, 0, 0, 3),
               vip_synproxy = ip4(10, 0, 0, 4);
constexpr uint16_t vip_port = 80, nat_backend_port = 8080;
constexpr int n_backends = 16;
constexpr int n_nat_addrs = 24;    // 24 x 64512 ports > 1M NAT flows
constexpr uint16_t frame_len = 54; // Ethernet + IPv4 + TCP, no payload

struct alignas(64) tmpl {
  uint8_t b[64];
};

void put16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v >> 8);
  p[1] = uint8_t(v);
}
void put32(uint8_t* p, uint32_t v) {
  put16(p, uint16_t(v >> 16));
  put16(p + 2, uint16_t(v));
}
uint16_t get16(const uint8_t* p) {
  return uint16_t(p[0] << 8 | p[1]);
}
uint32_t get32(const uint8_t* p) {
  return uint32_t(get16(p)) << 16 | get16(p + 2);
}
uint16_t fold(uint32_t sum) {
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  return uint16_t(~sum);
}
uint32_t sum16(const uint8_t* p, size_t n) {
  uint32_t s = 0;
  for (size_t i = 0; i + 1 < n; i += 2)
    s += get16(p + i);
  return s;
}

// Ethernet + IPv4 + TCP (20 bytes, window 64240), checksums filled in.
void build_tcp4(tmpl& t, const mac6& dmac, const mac6& smac, uint32_t sip, uint32_t dip,
                uint16_t sport, uint16_t dport, uint8_t flags, uint32_t seq) {
  std::memset(t.b, 0, sizeof(t.b));
  uint8_t* f = t.b;
  std::memcpy(f, dmac.data(), 6);
  std::memcpy(f + 6, smac.data(), 6);
  put16(f + 12, 0x0800);
  uint8_t* ip = f + 14;
  ip[0] = 0x45;
  put16(ip + 2, 40);
  put16(ip + 4, uint16_t(seq));
  put16(ip + 6, 0x4000);
  ip[8] = 64;
  ip[9] = 6;
  put32(ip + 12, sip);
  put32(ip + 16, dip);
  put16(ip + 10, fold(sum16(ip, 20)));
  uint8_t* tcp = ip + 20;
  put16(tcp, sport);
  put16(tcp + 2, dport);
  put32(tcp + 4, seq);
  put32(tcp + 8, (flags & 0x10) ? seq ^ 0x5a5a5a5a : 0);
  tcp[12] = 5 << 4;
  tcp[13] = flags;
  put16(tcp + 14, 64240);
  uint32_t pseudo = (sip >> 16) + (sip & 0xffff) + (dip >> 16) + (dip & 0xffff) + 6 + 20;
  put16(tcp + 16, fold(pseudo + sum16(tcp, 20)));
}

// Client tuple of flow `id`: 11.x.y.z and a port in 1024..65535, unique for every
// id < 2^32 and scattered (bijective 32-bit mix).
struct client_tuple {
  uint32_t ip;
  uint16_t port;
};
uint32_t mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352d;
  x ^= x >> 15;
  x *= 0x846ca68b;
  x ^= x >> 16;
  return x;
}
client_tuple tuple_for(uint32_t id) {
  uint32_t x = mix32(id);
  uint32_t hi = x >> 24; // 0..255 selects a block of 252 ports
  return {(11u << 24) | (x & 0xffffff), uint16_t(1024 + hi * 252 + mix32(id ^ 0x9e3779b9) % 252)};
}

dp::flow_key4 key_for(uint32_t sip, uint32_t dip, uint16_t sport, uint16_t dport) {
  dp::flow_key4 k{};
  k.src = rte_cpu_to_be_32(sip);
  k.dst = rte_cpu_to_be_32(dip);
  k.sport = rte_cpu_to_be_16(sport);
  k.dport = rte_cpu_to_be_16(dport);
  k.proto = 6;
  return k;
}

// 64-byte aligned array on transparent huge pages when the kernel allows.
template <typename T> struct big_array {
  T* p = nullptr;
  size_t n = 0;
  explicit big_array(size_t count) : n(count) {
    size_t bytes = (sizeof(T) * count + (2u << 20) - 1) & ~size_t((2u << 20) - 1);
    p = static_cast<T*>(std::aligned_alloc(2u << 20, bytes ? bytes : (2u << 20)));
    if (!p)
      fail("out of memory");
    madvise(p, bytes, MADV_HUGEPAGE);
  }
  ~big_array() { std::free(p); }
  big_array(const big_array&) = delete;
  T& operator[](size_t i) { return p[i]; }
  const T& operator[](size_t i) const { return p[i]; }
};

// ---------------------------------------------------------------------------
// Environment: shared memory, publisher, neighbours, mbufs

constexpr uint32_t burst = 32;
constexpr uint32_t n_mbufs = 1024; // cycled like an RX descriptor ring

class bench_env {
public:
  bench_env() : neigh_(64, abi::default_capacities.max_backends) {
    g_shm_path = "/dev/shm/sluice-bench-" + std::to_string(getpid());
    auto r = shm_region::create_or_attach(g_shm_path, abi::default_capacities);
    if (!r)
      fail("shm_region: " + r.error_message());
    shm_ = std::make_unique<shm_region>(std::move(r.value()));
    pub_ = std::make_unique<publisher>(*shm_);
    publish();
    pool_ = rte_pktmbuf_pool_create("sluice_bench_pool", 2 * n_mbufs - 1, 0, 0,
                                    RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
    if (!pool_)
      fail("mbuf pool creation failed");
    for (auto& m : mbufs_) {
      m = rte_pktmbuf_alloc(pool_);
      if (!m)
        fail("mbuf allocation failed");
    }
  }
  ~bench_env() {
    for (auto* m : mbufs_)
      rte_pktmbuf_free(m);
    if (pool_)
      rte_mempool_free(pool_);
    pub_.reset();
    shm_.reset();
    unlink(g_shm_path.c_str());
    g_shm_path.clear();
  }

  std::unique_ptr<dp::pipeline> make_pipeline(uint32_t capacity) {
    dp::pipeline_config c;
    c.worker_id = 0;
    c.n_workers = 1;
    c.mac[0] = own_mac;
    c.mac[1] = own_mac;
    c.addresses.push_back({*parse_prefix("192.0.2.1/24"), dp::client_side});
    for (int i = 0; i < n_nat_addrs; ++i)
      c.nat_pool.push_back(ip_addr::from_v4_be(rte_cpu_to_be_32(ip4(192, 0, 2, 200 + i))));
    c.encap_src4 = *parse_prefix("172.16.0.1/32");
    c.encap_src6 = *parse_prefix("fd00:5100::1/128");
    c.flow_capacity = capacity;
    c.flow_capacity6 = 4096; // every case is IPv4: keep hugepages for the v4 table
    auto p = dp::pipeline::create(c, *shm_, neigh_, {});
    if (!p)
      fail("pipeline: " + p.error_message());
    return std::move(p.value());
  }

  rte_mbuf** mbufs() { return mbufs_.data(); }
  uint64_t dropped(uint32_t worker = 0) const {
    return shm_->counters(worker)->worker[size_t(worker_counter::dropped)];
  }

  // Publishes the services with the dsr-ipip service (the new-flow cases')
  // using scheduler `k`.
  void publish(abi::scheduler_kind k = abi::scheduler_kind::maglev) {
    auto backends = [](uint32_t base, uint16_t port) {
      std::vector<backend_config> v;
      for (int i = 1; i <= n_backends; ++i) {
        backend_config b;
        b.addr = ip_addr::from_v4_be(rte_cpu_to_be_32(base + uint32_t(i)));
        b.port = port;
        v.push_back(b);
      }
      return v;
    };
    auto service = [&](uint32_t vip, abi::fwd_mode mode, uint32_t be_base, uint16_t be_port) {
      service_config s;
      s.vip = ip_addr::from_v4_be(rte_cpu_to_be_32(vip));
      s.port = vip_port;
      s.proto = 6;
      s.mode = mode;
      // Nothing may expire during the benchmark (the virtual clock never jumps).
      s.timeouts = {86400, 86400, 86400, 86400};
      s.backends = backends(be_base, be_port);
      return s;
    };
    service_config ipip = service(vip_ipip, abi::fwd_mode::dsr_ipip, ip4(10, 1, 0, 0), 0);
    ipip.scheduler = k;
    std::vector<service_config> services = {
        ipip,
        service(vip_gue, abi::fwd_mode::dsr_gue, ip4(10, 1, 1, 0), 0),
        service(vip_nat, abi::fwd_mode::nat, ip4(10, 2, 0, 0), nat_backend_port),
        service(vip_synproxy, abi::fwd_mode::nat, ip4(10, 2, 1, 0), nat_backend_port),
    };
    services.back().defence.synproxy = abi::synproxy_mode::on;
    auto g = pub_->publish(services, std::chrono::milliseconds(2000));
    if (!g)
      fail("publish: " + g.error_message());
    table_view v = shm_->view(unsigned(g.value() & 1));
    for (uint32_t i = 0; i < v.hdr->backend_limit; ++i) {
      const auto& b = v.backends[i];
      if (!(b.flags & abi::backend_in_use))
        continue;
      uint32_t host = get32(b.addr + 12);
      mac6 m = backend_mac(host);
      neigh_.set_backend_mac(i, dp::pack_mac(m.data()));
    }
  }

private:
  std::unique_ptr<shm_region> shm_;
  std::unique_ptr<publisher> pub_;
  dp::neighbour_table neigh_;
  rte_mempool* pool_ = nullptr;
  std::array<rte_mbuf*, n_mbufs> mbufs_{};
};

inline void reset_mbuf(rte_mbuf* m, const tmpl& t, uint16_t len) {
  m->data_off = RTE_PKTMBUF_HEADROOM;
  std::memcpy(static_cast<uint8_t*>(m->buf_addr) + RTE_PKTMBUF_HEADROOM, t.b, sizeof(t.b));
  m->data_len = len;
  m->pkt_len = len;
}

// ---------------------------------------------------------------------------
// Validation of one output packet

enum class expect { dsr_ipip, dsr_gue, nat_forward, nat_reply };

void check_output(const rte_mbuf* m, expect e, const tmpl* in = nullptr) {
  const uint8_t* f = rte_pktmbuf_mtod(m, const uint8_t*);
  if (m->data_len < frame_len)
    fail("output frame too short");
  if (get16(f + 12) != 0x0800)
    fail("output is not IPv4");
  const uint8_t* ip = f + 14;
  uint32_t dst = get32(ip + 16), src = get32(ip + 12);
  if (e == expect::nat_reply) {
    if (std::memcmp(f, client_mac.data(), 6) != 0 || std::memcmp(f + 6, own_mac.data(), 6) != 0)
      fail("reply: wrong MACs");
    if (src != vip_nat || get16(ip + 20) != vip_port)
      fail("reply: source is not the VIP");
    if (in && (dst != get32(in->b + 14 + 12) || get16(ip + 22) != get16(in->b + 14 + 20)))
      fail("reply: destination is not the client");
    return;
  }
  mac6 bm = backend_mac(dst);
  if (std::memcmp(f, bm.data(), 6) != 0 || std::memcmp(f + 6, own_mac.data(), 6) != 0)
    fail(fmt::format("backend side: wrong MACs for {:08x}", dst));
  switch (e) {
  case expect::dsr_ipip:
    if (ip[9] != 4 || (dst & 0xffffff00) != ip4(10, 1, 0, 0) || src != ip4(172, 16, 0, 1))
      fail("dsr-ipip: bad outer header");
    if (m->data_len != frame_len + 20 || get32(ip + 20 + 16) != vip_ipip)
      fail("dsr-ipip: bad inner packet");
    break;
  case expect::dsr_gue:
    if (ip[9] != 17 || (dst & 0xffffff00) != ip4(10, 1, 1, 0) || get16(ip + 22) != 6080)
      fail("dsr-gue: bad outer header");
    if (m->data_len != frame_len + 28 || get32(ip + 28 + 16) != vip_gue)
      fail("dsr-gue: bad inner packet");
    break;
  case expect::nat_forward:
    if (ip[9] != 6 || (dst & 0xffffff00) != ip4(10, 2, 0, 0) ||
        get16(ip + 22) != nat_backend_port || (src & 0xffffff00) != ip4(192, 0, 2, 0) ||
        (src & 0xff) < 200)
      fail("nat forward: bad rewritten header");
    break;
  default:
    break;
  }
}

// Runs one burst and checks every packet left on `out_side` (nothing dropped).
void run_checked(dp::pipeline& pl, rte_mbuf** ms, const tmpl* ts, uint32_t n, dp::side rx,
                 dp::side out_side, expect e, dp::burst_output& out, bool per_input = false) {
  for (uint32_t i = 0; i < n; ++i)
    reset_mbuf(ms[i], ts[i], frame_len);
  uint64_t now = rte_rdtsc();
  pl.begin_burst(now);
  out.clear();
  pl.process(ms, uint16_t(n), rx, false, out);
  if (g_housekeeping)
    pl.housekeeping(now);
  if (out.n_dropped || out.n_exception || out.n_tx[1 - out_side] || out.n_tx[out_side] != n)
    fail(fmt::format("warm-up: {} in, {} out on the expected side, {} on the other, {} dropped, "
                     "{} exceptions",
                     n, out.n_tx[out_side], out.n_tx[1 - out_side], out.n_dropped,
                     out.n_exception));
  for (uint32_t i = 0; i < n; ++i)
    check_output(out.tx[out_side][i], e, per_input ? &ts[i] : nullptr);
}

// ---------------------------------------------------------------------------
// Statistics and output

struct result_line {
  std::string name;
  uint32_t flows;
  uint32_t capacity;
  std::vector<double> ns;
  bool huge;
};

void print(const result_line& r) {
  std::vector<double> v = r.ns;
  std::sort(v.begin(), v.end());
  double med = v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  std::printf("{\"case\": \"%s\", \"flows\": %u, \"ns_per_packet\": %.2f, \"ns_min\": %.2f, "
              "\"ns_max\": %.2f, \"mpps\": %.2f, \"runs\": %zu, \"flow_capacity\": %u, "
              "\"hugepages\": %s%s}\n",
              r.name.c_str(), r.flows, med, v.front(), v.back(), 1000.0 / med, v.size(), r.capacity,
              r.huge ? "true" : "false", g_housekeeping ? "" : ", \"housekeeping\": false");
  std::fflush(stdout);
}

double seconds(clk::duration d) {
  return std::chrono::duration<double>(d).count();
}

uint32_t g_capacity = 0;

uint32_t capacity_for(uint32_t entries) {
  if (g_capacity)
    return g_capacity;
  uint32_t want = std::max<uint32_t>(1u << 16, entries + entries / 4);
  uint32_t c = 1;
  while (c < want)
    c <<= 1;
  // The pipeline sizes the v4 AND v6 tables with this; cap the memory.
  return std::min<uint32_t>(c, 3u << 20);
}

// ---------------------------------------------------------------------------
// Cases

// Packet sequence in walk order: template i belongs to flow perm[i].
struct walk {
  big_array<tmpl> seq;
  explicit walk(size_t n) : seq(n) {}
};

std::vector<uint32_t> permutation(uint32_t n, uint64_t seed) {
  std::vector<uint32_t> p(n);
  std::iota(p.begin(), p.end(), 0u);
  std::mt19937_64 rng(seed);
  std::shuffle(p.begin(), p.end(), rng);
  return p;
}

// Timed established-flow loop over `w` (n templates). floor: no pipeline.
template <bool Floor>
double timed_walk(dp::pipeline* pl, rte_mbuf** mbufs, const big_array<tmpl>& w, dp::side rx,
                  dp::side out_side, double min_s, uint64_t& bad) {
  dp::burst_output out;
  size_t pos = 0;
  const size_t n = w.n;
  uint32_t mi = 0;
  uint64_t pkts = 0, good = 0, sink = 0;
  auto t0 = clk::now();
  clk::duration elapsed{};
  do {
    for (int r = 0; r < 64; ++r) {
      rte_mbuf** b = mbufs + mi;
      mi = (mi + burst) & (n_mbufs - 1);
      for (uint32_t j = 0; j < burst; ++j) {
        reset_mbuf(b[j], w[pos], frame_len);
        if (++pos == n)
          pos = 0;
      }
      if constexpr (Floor) {
        for (uint32_t j = 0; j < burst; ++j) {
          uint8_t* d = rte_pktmbuf_mtod(b[j], uint8_t*);
          parsed_packet p;
          parse_frame(d, b[j]->data_len, p);
          good += p.kind == packet_kind::ip;
          sink += p.sport;
          uint8_t tmp[6];
          std::memcpy(tmp, d, 6);
          std::memcpy(d, d + 6, 6);
          std::memcpy(d + 6, tmp, 6);
        }
      } else {
        uint64_t now = rte_rdtsc();
        pl->begin_burst(now);
        out.clear();
        pl->process(b, burst, rx, false, out);
        if (g_housekeeping)
          pl->housekeeping(now);
        good += out.n_tx[out_side];
      }
    }
    pkts += 64 * burst;
    elapsed = clk::now() - t0;
  } while (seconds(elapsed) < min_s);
  bad += pkts - good;
  if (sink == 1) // keeps the parse results alive
    std::fprintf(stderr, " ");
  return seconds(elapsed) * 1e9 / double(pkts);
}

// Sends `n` templates through the pipeline in bursts, checking each output.
void send_all(dp::pipeline& pl, rte_mbuf** mbufs, const tmpl* ts, size_t n, dp::side rx,
              dp::side out_side, expect e, bool per_input = false,
              std::vector<tmpl>* outputs = nullptr) {
  dp::burst_output out;
  for (size_t i = 0; i < n; i += burst) {
    uint32_t k = uint32_t(std::min<size_t>(burst, n - i));
    run_checked(pl, mbufs, ts + i, k, rx, out_side, e, out, per_input);
    if (outputs)
      for (uint32_t j = 0; j < k; ++j) {
        tmpl t{};
        std::memcpy(t.b, rte_pktmbuf_mtod(out.tx[out_side][j], uint8_t*), frame_len);
        outputs->push_back(t);
      }
  }
}

struct case_ctx {
  bench_env& env;
  const options& opt;
  bool huge;
};

void check_no_drops(bench_env& env, uint64_t bad, const std::string& name) {
  if (bad)
    fail(fmt::format("{}: {} packets did not leave on the expected side during the timed runs",
                     name, bad));
  if (env.dropped())
    fail(fmt::format("{}: the pipeline counted {} drops", name, env.dropped()));
}

void run_established(case_ctx& c, const std::string& name, uint32_t flows) {
  const bool floor = name == "floor";
  const bool nat = name.rfind("nat-", 0) == 0;
  const bool reply = name == "nat-established-reply";
  const bool gue = name == "dsr-gue-established";
  uint32_t vip = nat ? vip_nat : gue ? vip_gue : vip_ipip;
  expect e = nat ? expect::nat_forward : gue ? expect::dsr_gue : expect::dsr_ipip;
  uint32_t capacity = capacity_for(nat ? 2 * flows : flows);

  std::unique_ptr<dp::pipeline> pl;
  if (!floor)
    pl = c.env.make_pipeline(capacity);
  rte_mbuf** mbufs = c.env.mbufs();

  // Client templates per flow: SYN (creation) and ACK (timed).
  std::vector<tmpl> syn(flows), ack(flows);
  for (uint32_t i = 0; i < flows; ++i) {
    client_tuple t = tuple_for(i);
    build_tcp4(syn[i], own_mac, client_mac, t.ip, vip, t.port, vip_port, tcp_syn, i);
    build_tcp4(ack[i], own_mac, client_mac, t.ip, vip, t.port, vip_port, tcp_ack, i + 1);
  }
  std::vector<tmpl>* timed = &ack;
  std::vector<tmpl> back_ack;
  dp::side rx = dp::client_side, out_side = dp::backend_side;
  if (pl) {
    std::vector<tmpl> fwd_out;
    fwd_out.reserve(nat ? flows : 0);
    send_all(*pl, mbufs, syn.data(), flows, dp::client_side, dp::backend_side, e, false,
             nat ? &fwd_out : nullptr);
    if (nat) {
      // The backend answers each SYN (to the NAT address and port it saw); the
      // reply must reach the client from the VIP. Then ACKs both ways.
      std::vector<tmpl> synack(flows);
      back_ack.resize(flows);
      for (uint32_t i = 0; i < flows; ++i) {
        const uint8_t* ip = fwd_out[i].b + 14;
        uint32_t be = get32(ip + 16), la = get32(ip + 12);
        uint16_t lport = get16(ip + 20);
        build_tcp4(synack[i], own_mac, backend_mac(be), be, la, nat_backend_port, lport,
                   tcp_syn | tcp_ack, i + 7);
        build_tcp4(back_ack[i], own_mac, backend_mac(be), be, la, nat_backend_port, lport, tcp_ack,
                   i + 8);
      }
      // Check the reply goes to the right client: compare with the SYN's source.
      for (size_t i = 0; i < flows; i += burst) {
        uint32_t k = uint32_t(std::min<size_t>(burst, flows - i));
        dp::burst_output out;
        run_checked(*pl, mbufs, synack.data() + i, k, dp::backend_side, dp::client_side,
                    expect::nat_reply, out);
        for (uint32_t j = 0; j < k; ++j) {
          const uint8_t* f = rte_pktmbuf_mtod(out.tx[dp::client_side][j], const uint8_t*);
          if (get32(f + 14 + 16) != get32(syn[i + j].b + 14 + 12) ||
              get16(f + 14 + 22) != get16(syn[i + j].b + 14 + 20))
            fail("nat: SYN-ACK did not reach its client");
        }
      }
      if (reply) {
        timed = &back_ack;
        rx = dp::backend_side;
        out_side = dp::client_side;
        e = expect::nat_reply;
      }
    }
  }

  // Walk order: a random permutation of the flows.
  auto perm = permutation(flows, 0x51ce + flows);
  big_array<tmpl> w(flows);
  for (uint32_t i = 0; i < flows; ++i)
    w[i] = (*timed)[perm[i]];
  std::vector<tmpl>().swap(syn);
  std::vector<tmpl>().swap(ack);
  std::vector<tmpl>().swap(back_ack);

  // Untimed warm-up: one full pass, every output validated.
  if (pl) {
    dp::burst_output out;
    for (size_t i = 0; i < flows; i += burst) {
      uint32_t k = uint32_t(std::min<size_t>(burst, flows - i));
      run_checked(*pl, mbufs, &w[i], k, rx, out_side, e, out, false);
    }
    if (pl->flows_active() != flows)
      fail(fmt::format("{}: {} flows active, expected {}", name, pl->flows_active(), flows));
  } else {
    for (uint32_t i = 0; i < flows; ++i) {
      parsed_packet p;
      parse_frame(w[i].b, frame_len, p);
      if (p.kind != packet_kind::ip)
        fail("floor: template does not parse");
    }
  }

  result_line r{name, flows, floor ? 0 : capacity, {}, c.huge};
  uint64_t bad = 0;
  for (int run = 0; run < c.opt.runs; ++run)
    r.ns.push_back(
        floor ? timed_walk<true>(nullptr, mbufs, w, rx, out_side, c.opt.min_time_s, bad)
              : timed_walk<false>(pl.get(), mbufs, w, rx, out_side, c.opt.min_time_s, bad));
  check_no_drops(c.env, bad, name);
  print(r);
}

// Sends `n` client templates (a multiple of `burst`) through `pl` in bursts,
// as the worker loop does (begin_burst, process, housekeeping); `after` sees
// each burst's output, untimed work included in the time. Returns the time.
template <typename After>
clk::duration send_chunk(dp::pipeline& pl, rte_mbuf** mbufs, uint32_t& mi, const tmpl* ts,
                         uint32_t n, dp::burst_output& out, After after) {
  auto t0 = clk::now();
  for (uint32_t i = 0; i < n; i += burst) {
    rte_mbuf** b = mbufs + mi;
    mi = (mi + burst) & (n_mbufs - 1);
    for (uint32_t j = 0; j < burst; ++j)
      reset_mbuf(b[j], ts[i + j], frame_len);
    uint64_t now = rte_rdtsc();
    pl.begin_burst(now);
    out.clear();
    pl.process(b, burst, dp::client_side, false, out);
    if (g_housekeeping)
      pl.housekeeping(now);
    after(out);
  }
  return clk::now() - t0;
}

// SYN path: fresh tuples into a dsr-ipip table holding `flows` flows. Chunks of
// 1024 SYNs are timed; after each chunk the timer stops and the chunk's flows
// are deleted from the table again. `full`: the table's capacity is `flows`
// (rounded up to whole buckets), filled with twice as many SYNs beforehand so
// that every bucket pair is full; every timed SYN then evicts a half-open flow
// and nothing is deleted.
void run_new_flow(case_ctx& c, uint32_t flows, const std::string& name, abi::scheduler_kind kind,
                  bool full = false) {
  constexpr uint32_t chunk = 1024;
  c.env.publish(kind);
  uint32_t capacity = full ? std::max<uint32_t>(flows, 8) : capacity_for(flows + chunk);
  auto pl = c.env.make_pipeline(capacity);
  rte_mbuf** mbufs = c.env.mbufs();
  auto& ft = pl->impl().ft4_;

  uint32_t prefill = full ? 2 * ft.capacity() : flows;
  for (uint32_t base = 0; base < prefill; base += 65536) {
    uint32_t n = std::min<uint32_t>(65536, prefill - base);
    std::vector<tmpl> syn(n);
    for (uint32_t i = 0; i < n; ++i) {
      client_tuple t = tuple_for(base + i);
      build_tcp4(syn[i], own_mac, client_mac, t.ip, vip_ipip, t.port, vip_port, tcp_syn, i);
    }
    send_all(*pl, mbufs, syn.data(), n, dp::client_side, dp::backend_side, expect::dsr_ipip);
  }
  if (!full && ft.count() != flows)
    fail(fmt::format("new-flow: table holds {} flows, expected {}", ft.count(), flows));
  if (full && ft.count() < ft.capacity() - ft.capacity() / 100)
    fail(fmt::format("new-flow-full: table holds {} of {} entries", ft.count(), ft.capacity()));

  uint32_t next_id = prefill; // tuple ids never repeat
  std::vector<tmpl> ts(chunk);
  std::vector<dp::flow_key4> keys(chunk);
  auto make_chunk = [&] {
    for (uint32_t i = 0; i < chunk; ++i) {
      client_tuple t = tuple_for(next_id++);
      build_tcp4(ts[i], own_mac, client_mac, t.ip, vip_ipip, t.port, vip_port, tcp_syn, i);
      keys[i] = key_for(t.ip, vip_ipip, t.port, vip_port);
    }
  };
  auto delete_chunk = [&] {
    if (full)
      return;
    for (auto& k : keys)
      if (int32_t p = ft.lookup(k); p >= 0)
        ft.erase(p);
    if (ft.lookup(keys[0]) >= 0 || ft.lookup(keys[chunk - 1]) >= 0)
      fail("new-flow: clean-up left flows behind");
  };

  // Warm-up: a few validated chunks.
  for (int i = 0; i < 4; ++i) {
    make_chunk();
    send_all(*pl, mbufs, ts.data(), chunk, dp::client_side, dp::backend_side, expect::dsr_ipip);
    delete_chunk();
  }

  result_line r{name, flows, capacity, {}, c.huge};
  uint64_t bad = 0;
  dp::burst_output out;
  for (int run = 0; run < c.opt.runs; ++run) {
    clk::duration elapsed{};
    uint64_t pkts = 0, good = 0;
    uint32_t mi = 0;
    while (seconds(elapsed) < c.opt.min_time_s) {
      make_chunk();
      elapsed += send_chunk(*pl, mbufs, mi, ts.data(), chunk, out,
                            [&](const dp::burst_output& o) { good += o.n_tx[dp::backend_side]; });
      pkts += chunk;
      delete_chunk();
    }
    bad += pkts - good;
    r.ns.push_back(seconds(elapsed) * 1e9 / double(pkts));
  }
  check_no_drops(c.env, bad, name);
  print(r);
  c.env.publish(abi::scheduler_kind::maglev);
}

// Spoofed SYNs (fresh tuples) to a nat VIP. With cookies (synproxy on) each is
// answered in place with a SYN-ACK and no state: the table holds `flows`
// established-looking flows that stay untouched. Without, each creates a
// full-NAT flow (forward and reply entries, a local port): chunks of 1024 are
// timed and then released again (untimed), like new-flow.
void run_syn_flood(case_ctx& c, uint32_t flows, const std::string& name) {
  constexpr uint32_t chunk = 1024;
  const bool cookies = name == "syn-flood-cookies";
  const uint32_t vip = cookies ? vip_synproxy : vip_nat;
  uint32_t capacity = capacity_for(2 * (flows + chunk));
  auto pl = c.env.make_pipeline(capacity);
  rte_mbuf** mbufs = c.env.mbufs();
  auto& impl = pl->impl();
  {
    // The table's fill: `flows` flows of the plain nat VIP.
    std::vector<tmpl> syn(flows);
    for (uint32_t i = 0; i < flows; ++i) {
      client_tuple t = tuple_for(i);
      build_tcp4(syn[i], own_mac, client_mac, t.ip, vip_nat, t.port, vip_port, tcp_syn, i);
    }
    send_all(*pl, mbufs, syn.data(), flows, dp::client_side, dp::backend_side, expect::nat_forward);
  }
  uint32_t next_id = flows;
  std::vector<tmpl> ts(chunk);
  std::vector<dp::flow_key4> keys(chunk);
  auto make_chunk = [&] {
    for (uint32_t i = 0; i < chunk; ++i) {
      client_tuple t = tuple_for(next_id++);
      build_tcp4(ts[i], own_mac, client_mac, t.ip, vip, t.port, vip_port, tcp_syn, i);
      keys[i] = key_for(t.ip, vip, t.port, vip_port);
    }
  };
  auto release_chunk = [&] {
    if (cookies)
      return;
    for (auto& k : keys) {
      int32_t pos = impl.ft4_.lookup(k);
      if (pos < 0)
        fail("syn-flood: a SYN created no flow");
      impl.release_flow<false>(pos, false);
    }
  };
  const dp::side out_side = cookies ? dp::client_side : dp::backend_side;
  auto check_chunk_output = [&](const dp::burst_output& out, uint32_t k) {
    if (out.n_tx[out_side] != k || out.n_dropped)
      fail(fmt::format("{}: {} of {} SYNs answered/forwarded, {} dropped", name, out.n_tx[out_side],
                       k, out.n_dropped));
    if (cookies)
      for (uint32_t j = 0; j < k; ++j) {
        const uint8_t* f = rte_pktmbuf_mtod(out.tx[out_side][j], const uint8_t*);
        if (std::memcmp(f, client_mac.data(), 6) != 0 || f[14 + 20 + 13] != (tcp_syn | tcp_ack) ||
            get32(f + 14 + 12) != vip_synproxy)
          fail("syn-flood-cookies: output is not a SYN-ACK from the VIP");
      }
  };
  const uint64_t active_before = pl->flows_active();
  result_line r{name, flows, capacity, {}, c.huge};
  dp::burst_output out;
  for (int run = -1; run < c.opt.runs; ++run) { // run -1: validated warm-up
    clk::duration elapsed{};
    uint64_t pkts = 0;
    uint32_t mi = 0;
    while (seconds(elapsed) < (run < 0 ? 0.0 : c.opt.min_time_s) || !pkts) {
      make_chunk();
      elapsed += send_chunk(*pl, mbufs, mi, ts.data(), chunk, out, [&](const dp::burst_output& o) {
        if (run < 0)
          check_chunk_output(o, burst);
      });
      pkts += chunk;
      release_chunk();
    }
    if (run >= 0)
      r.ns.push_back(seconds(elapsed) * 1e9 / double(pkts));
  }
  if (cookies && pl->flows_active() != active_before)
    fail("syn-flood-cookies: SYNs created state");
  check_no_drops(c.env, 0, name);
  print(r);
}

// The machine's floor for the established cases: what one 64-byte miss costs
// over a buffer the size of the flow table, alone (a chain of dependent loads)
// and overlapped (32 independent chains advanced in turn, as a burst of 32
// packets with prefetches overlaps its misses). ns per load.
void run_memory(case_ctx& c, const std::string& name, uint32_t flows) {
  const uint32_t capacity = capacity_for(flows);
  const size_t lines = std::max<size_t>(
      1024, size_t(capacity) * dp::flow_table<dp::flow_key4>::bytes_per_entry() / 64);
  auto* buf = static_cast<uint64_t*>(rte_malloc("sluice_bench_chase", lines * 64, 64));
  if (!buf)
    fail(fmt::format("{}: cannot allocate {} MiB", name, lines * 64 >> 20));
  // One random cycle through every line, so no prefetcher can follow it.
  std::vector<uint32_t> order(lines);
  std::iota(order.begin(), order.end(), 0u);
  std::shuffle(order.begin(), order.end(), std::mt19937(12345));
  for (size_t i = 0; i < lines; ++i)
    buf[size_t(order[i]) * 8] = uint64_t(order[(i + 1) % lines]) * 8;
  const bool parallel = name == "memory-parallel";
  const uint32_t chains = parallel ? 32 : 1;
  uint64_t at[32];
  for (uint32_t k = 0; k < chains; ++k)
    at[k] = uint64_t(order[size_t(k) * (lines / chains)]) * 8;
  result_line r{name, flows, capacity, {}, c.huge};
  uint64_t sink = 0;
  for (int run = -1; run < c.opt.runs; ++run) {
    uint64_t loads = 0;
    const auto t0 = clk::now();
    clk::duration elapsed{};
    while (seconds(elapsed) < (run < 0 ? 0.05 : c.opt.min_time_s)) {
      for (int step = 0; step < 4096; ++step)
        for (uint32_t k = 0; k < chains; ++k)
          at[k] = buf[at[k]];
      loads += 4096ull * chains;
      elapsed = clk::now() - t0;
    }
    if (run >= 0)
      r.ns.push_back(seconds(elapsed) * 1e9 / double(loads));
  }
  for (uint32_t k = 0; k < chains; ++k)
    sink += at[k];
  if (sink == ~0ull) // keeps the loads; never true (offsets are below lines * 8)
    std::fprintf(stderr, "-");
  rte_free(buf);
  print(r);
}

} // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "--version") == 0) {
    std::printf("sluice-bench %s\n", SLUICE_VERSION);
    return 0;
  }
  try {
    options opt = parse_options(argc, argv);
    g_housekeeping = opt.housekeeping;
    g_capacity = opt.capacity;
    uint32_t max_flows = *std::max_element(opt.flows.begin(), opt.flows.end());
    // Rough need: v4 + v6 tables of the largest capacity, ~300 B per slot.
    uint64_t want_mb = 64 + uint64_t(capacity_for(2 * max_flows)) * 300 / (1 << 20);
    bool huge = init_eal(opt, want_mb);
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    std::fprintf(stderr, "sluice-bench: %s, TSC %.3f GHz, %d runs of >= %.0f ms\n",
                 huge ? "hugepages" : "no hugepages (-m 4096)", double(rte_get_tsc_hz()) / 1e9,
                 opt.runs, opt.min_time_s * 1000);
    {
      bench_env env;
      case_ctx c{env, opt, huge};
      for (const auto& name : opt.cases)
        for (uint32_t flows : opt.flows) {
          std::fprintf(stderr, "sluice-bench: %s, %u flows\n", name.c_str(), flows);
          if (name == "new-flow")
            run_new_flow(c, flows, name, abi::scheduler_kind::maglev);
          else if (name == "new-flow-full")
            run_new_flow(c, flows, name, abi::scheduler_kind::maglev, true);
          else if (name.rfind("syn-flood-", 0) == 0)
            run_syn_flood(c, flows, name);
          else if (name.rfind("memory-", 0) == 0)
            run_memory(c, name, flows);
          else if (name.rfind("new-flow-", 0) == 0)
            run_new_flow(c, flows, name, *scheduler_from_name(name.substr(9)));
          else
            run_established(c, name, flows);
        }
    }
    rte_eal_cleanup();
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sluice-bench: error: %s\n", e.what());
    if (!g_shm_path.empty())
      unlink(g_shm_path.c_str());
    return 1;
  }
}
