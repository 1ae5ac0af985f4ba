// libFuzzer target: the whole worker pipeline (the object sluice-dataplane
// runs), driven through tests/packet/pipeline_harness.h. The input decodes
// into one or two workers and then a sequence of operations: bursts of
// client packets for four VIPs (built well-formed from the input's bytes:
// TCP flags, ports, lengths, VLAN, IPv4 options, fragments, IPv6 extension
// headers), backend replies to earlier NAT outputs, ICMP errors quoting them,
// raw garbage frames on either side, table changes (every mode, every
// scheduler, backends added/removed/re-weighted/downed, published through
// the real publisher), clock jumps and expiry sweeps, and handoff-ring drains.
//
// Checked after every operation: the mempool holds exactly the mbufs in the
// handoff rings (nothing leaked, nothing freed twice; the harness also
// refuses an mbuf output twice in one burst), and every transmitted frame is
// well formed (frame_check.h: lengths, IPv4/TCP/UDP/ICMP checksums,
// encapsulation headers). Each input starts from a fresh harness, so a
// reproducer replays exactly.
#include <cstdio>
#include <cstdlib>
#include <fuzzer/FuzzedDataProvider.h>

#include "frame_check.h"
#include "pipeline_harness.h"

using namespace sluice;
using namespace sluice::test;
using abi::fwd_mode;
using abi::scheduler_kind;

namespace {

constexpr fwd_mode modes[] = {fwd_mode::nat, fwd_mode::dnat, fwd_mode::dsr_l2, fwd_mode::dsr_ipip,
                              fwd_mode::dsr_gue};
constexpr scheduler_kind schedulers[] = {scheduler_kind::maglev,
                                         scheduler_kind::rr,
                                         scheduler_kind::wrr,
                                         scheduler_kind::lc,
                                         scheduler_kind::wlc,
                                         scheduler_kind::sh,
                                         scheduler_kind::random,
                                         scheduler_kind::two_choices,
                                         scheduler_kind::least_bandwidth,
                                         scheduler_kind::least_response_time};

struct vip_slot {
  const char* vip;
  uint16_t port;
  uint8_t proto;
};
// Two IPv4 and two IPv6 services, TCP and UDP.
constexpr vip_slot vips[] = {{"192.0.2.10", 80, 6},
                             {"192.0.2.11", 53, 17},
                             {"2001:db8:f::10", 443, 6},
                             {"2001:db8:f::11", 4789, 17}};

ip_addr backend_addr(bool v6, unsigned i) {
  std::string s =
      v6 ? "2001:db8:b::" + std::to_string(i + 1) : "203.0.113." + std::to_string(i + 1);
  return ip(s.c_str());
}

service_config make_slot(unsigned v, fwd_mode mode, scheduler_kind sched) {
  service_config s;
  s.vip = ip(vips[v].vip);
  s.port = vips[v].port;
  s.proto = vips[v].proto;
  s.mode = mode;
  s.scheduler = sched;
  s.maglev_size = 251; // small prime: a publication per operation stays cheap
  bool nat = mode == fwd_mode::nat || mode == fwd_mode::dnat;
  for (unsigned i = 0; i < 3; ++i) {
    backend_config b;
    b.addr = backend_addr(!s.vip.is_v4(), i);
    b.port = nat ? uint16_t(8080 + i) : 0;
    b.weight = uint16_t(i + 1);
    s.backends.push_back(b);
  }
  return s;
}

std::vector<service_config> base_services() {
  std::vector<service_config> v;
  for (unsigned i = 0; i < 4; ++i)
    v.push_back(make_slot(i, modes[i % 5], schedulers[i]));
  return v;
}

dp::pipeline_config fuzz_pipeline_config() {
  dp::pipeline_config c = default_pipeline_config();
  c.flow_capacity = 1024;
  c.affinity_capacity = 1024;
  c.client_limit_entries = 1024;
  // 512 full-NAT source ports: building the per-worker port sets of the whole
  // range dominated each input's set-up; a small range also reaches exhaustion.
  c.nat_port_min = 20000;
  c.nat_port_max = 20511;
  c.mtu = 1500;
  return c;
}

// Small shared-memory capacities: a fresh object per input stays cheap.
constexpr abi::capacities fuzz_caps{16, 64, 16384, 4};

[[noreturn]] void fail(const std::string& what, const bytes* frame = nullptr) {
  std::fprintf(stderr, "fuzz_pipeline: %s\n", what.c_str());
  if (frame)
    std::fprintf(stderr, "%s\n", hex(*frame).c_str());
  std::abort();
}

// One fuzz input being played.
class session {
public:
  session(FuzzedDataProvider& in, uint16_t workers)
      : in_(in), services_(base_services()),
        h_(services_, fuzz_pipeline_config(), workers, fuzz_caps), workers_(workers) {}

  void play() {
    for (int ops = 0; ops < 48 && in_.remaining_bytes() > 0; ++ops) {
      switch (in_.ConsumeIntegralInRange<int>(0, 9)) {
      case 0:
      case 1:
      case 2:
        client_burst();
        break;
      case 3:
        backend_reply();
        break;
      case 4:
        icmp_error();
        break;
      case 5:
        garbage();
        break;
      case 6:
        change_table();
        break;
      case 7:
        clock_jump();
        break;
      case 8:
        h_.tick(now_);
        break;
      case 9:
        drain(in_.ConsumeBool());
        break;
      }
      check_mbufs(false);
    }
    drain(true);
    h_.tick(now_ += 3600);
    check_mbufs(true);
  }

private:
  // Mbufs in use = mbufs waiting in handoff rings; after a full drain, none.
  void check_mbufs(bool drained) {
    unsigned pending = 0;
    if (workers_ > 1)
      for (uint16_t w = 0; w < workers_; ++w)
        pending += h_.handoff_pending(w);
    unsigned used = rte_mempool_in_use_count(test_pool());
    if (used != pending || (drained && used))
      fail("mbuf accounting: " + std::to_string(used) + " in use, " + std::to_string(pending) +
           " in handoff rings (leak or double free)");
  }

  void take(const run_result& r, bool strict) {
    frame_checker fc;
    fc.strict = strict;
    for (const out_packet& p : r.tx) {
      std::string e = fc.check(p.data);
      if (!e.empty())
        fail(std::string("malformed output frame (") + (strict ? "well-formed input" : "garbage") +
                 "): " + e,
             &p.data);
      if (p.side == dp::backend_side && outputs_.size() < 64)
        outputs_.push_back(p.data);
      else if (p.side == dp::backend_side)
        outputs_[in_.ConsumeIntegral<uint8_t>() % outputs_.size()] = p.data;
    }
  }

  void drain(bool all) {
    if (workers_ < 2)
      return;
    for (int round = 0; round < (all ? 8 : 1); ++round)
      for (uint16_t w = 0; w < workers_; ++w)
        while (h_.handoff_pending(w))
          take(h_.drain_handoff(w, now_), true);
  }

  uint16_t worker() { return workers_ > 1 ? in_.ConsumeIntegralInRange<uint16_t>(0, 1) : 0; }

  bytes payload() {
    size_t n = in_.ConsumeIntegralInRange<size_t>(0, 48);
    if (in_.ConsumeProbability<float>() < 0.05f)
      n = in_.ConsumeIntegralInRange<size_t>(1300, 1500); // MTU / packet-too-big paths
    bytes b = in_.ConsumeBytes<uint8_t>(n);
    b.resize(n, 0x5a);
    return b;
  }

  bytes l4(uint8_t proto, uint16_t sport, uint16_t dport) {
    if (proto == 6) {
      static constexpr uint8_t flags[] = {0x02, 0x10, 0x18, 0x11, 0x04, 0x12, 0x14, 0x01};
      uint8_t f = in_.ConsumeBool() ? flags[in_.ConsumeIntegralInRange<int>(0, 7)]
                                    : in_.ConsumeIntegral<uint8_t>();
      uint32_t seq = in_.ConsumeIntegral<uint32_t>(), ack = in_.ConsumeIntegral<uint32_t>();
      bool opts = in_.ConsumeProbability<float>() < 0.2f;
      bytes p = payload();
      if (!opts)
        return tcp(sport, dport, f, p, seq, ack);
      // MSS + NOP padding: a header with options (synproxy, MSS clamping)
      bytes o = {2, 4, 0x05, 0xb4, 1, 1, 4, 2};
      bytes seg = tcp(sport, dport, f, concat(o, p), seq, ack, 7);
      return seg;
    }
    if (proto == 17)
      return udp(sport, dport, payload());
    return icmp(in_.ConsumeBool() ? 8 : 128, 0, in_.ConsumeIntegral<uint32_t>(), payload());
  }

  // A client's packet towards one of the VIPs (or its port/protocol next door).
  void client_burst() {
    unsigned n = in_.ConsumeIntegralInRange<unsigned>(1, 8);
    std::vector<bytes> frames;
    for (unsigned i = 0; i < n; ++i)
      frames.push_back(client_frame());
    uint16_t w = worker();
    take(h_.run(frames, dp::client_side, now_, w), true);
  }

  bytes client_frame() {
    const vip_slot& v = vips[in_.ConsumeIntegralInRange<unsigned>(0, 3)];
    ip_addr vip = ip(v.vip);
    bool v6 = !vip.is_v4();
    uint8_t proto = v.proto;
    uint16_t dport = v.port;
    switch (in_.ConsumeIntegralInRange<int>(0, 15)) {
    case 0:
      proto = proto == 6 ? 17 : 6;
      break;
    case 1:
      dport = in_.ConsumeIntegral<uint16_t>();
      break;
    case 2:
      proto = v6 ? 58 : 1;
      break;
    default:
      break;
    }
    unsigned c = in_.ConsumeIntegralInRange<unsigned>(0, 15);
    ip_addr client = v6 ? ip(("2001:db8:c::" + std::to_string(c + 1)).c_str())
                        : ip(("198.51.100." + std::to_string(c + 1)).c_str());
    uint16_t sport = uint16_t(40000 + in_.ConsumeIntegralInRange<unsigned>(0, 31));
    bytes seg = l4(proto, sport, dport);
    int vlan = in_.ConsumeProbability<float>() < 0.1f ? 100 : -1;
    if (!v6) {
      ip4_opts o;
      o.ttl = in_.ConsumeBool() ? 64 : in_.ConsumeIntegralInRange<uint8_t>(0, 2);
      o.df = in_.ConsumeBool();
      o.tos = in_.ConsumeIntegral<uint8_t>();
      o.id = in_.ConsumeIntegral<uint16_t>();
      if (in_.ConsumeProbability<float>() < 0.1f)
        o.options = {1, 1, 1, 0}; // NOP NOP NOP EOL
      if (in_.ConsumeProbability<float>() < 0.05f) {
        o.more_fragments = in_.ConsumeBool();
        o.frag_offset = in_.ConsumeIntegralInRange<uint16_t>(0, 200);
      }
      return eth(own_mac, client_mac, 0x0800, ip4(client, vip, proto, seg, o), vlan);
    }
    ip6_opts o;
    o.hlim = in_.ConsumeBool() ? 64 : in_.ConsumeIntegralInRange<uint8_t>(0, 2);
    o.flow_label = in_.ConsumeIntegral<uint32_t>();
    if (in_.ConsumeProbability<float>() < 0.1f) {
      // one destination-options header (PadN), or a fragment header
      bool frag = in_.ConsumeBool();
      o.ext_first_nh = frag ? 44 : 60;
      o.ext = {proto, 0, 1, 4, 0, 0, 0, 0};
      if (frag) {
        o.ext = {proto, 0, 0, 0, 0, 0, 0, 1};
        o.ext[3] = in_.ConsumeIntegral<uint8_t>() & 0xf9; // offset low bits, M flag
      }
    }
    return eth(own_mac, client_mac, 0x86dd, ip6(client, vip, proto, seg, o), vlan);
  }

  // A backend answering one of the frames the balancer sent it (NAT modes):
  // addresses and ports swapped, flags from the input.
  void backend_reply() {
    if (outputs_.empty())
      return;
    const bytes& o = outputs_[in_.ConsumeIntegral<uint8_t>() % outputs_.size()];
    std::optional<bytes> r = reply_to(o);
    if (!r)
      return;
    take(h_.run({*r}, dp::backend_side, now_, worker()), true);
  }

  std::optional<bytes> reply_to(const bytes& o) {
    if (o.size() < 14)
      return std::nullopt;
    uint16_t type = get16(o, 12);
    mac_t bmac;
    std::copy(o.begin(), o.begin() + 6, bmac.begin());
    if (type == 0x0800 && o.size() >= 34) {
      size_t ihl = size_t(o[14] & 15) * 4;
      uint8_t proto = o[23];
      if ((proto != 6 && proto != 17) || o.size() < 14 + ihl + 8)
        return std::nullopt;
      ip_addr s = ip_addr::from_v4_be(load32(&o[26])), d = ip_addr::from_v4_be(load32(&o[30]));
      uint16_t sp = get16(o, 14 + ihl), dp = get16(o, 14 + ihl + 2);
      return eth(own_mac, bmac, 0x0800, ip4(d, s, proto, l4(proto, dp, sp)));
    }
    if (type == 0x86dd && o.size() >= 62) {
      uint8_t proto = o[20];
      if (proto != 6 && proto != 17)
        return std::nullopt;
      ip_addr s = ip_addr::from_v6(&o[22]), d = ip_addr::from_v6(&o[38]);
      uint16_t sp = get16(o, 54), dp = get16(o, 56);
      return eth(own_mac, bmac, 0x86dd, ip6(d, s, proto, l4(proto, dp, sp)));
    }
    return std::nullopt;
  }

  static uint32_t load32(const uint8_t* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
  }

  // An ICMP error (unreachable / too big / time exceeded) quoting an earlier
  // output, from the backend's side, or quoting a reply from the client's.
  void icmp_error() {
    if (outputs_.empty())
      return;
    const bytes& o = outputs_[in_.ConsumeIntegral<uint8_t>() % outputs_.size()];
    if (o.size() < 14 + 28)
      return;
    uint16_t type = get16(o, 12);
    mac_t bmac;
    std::copy(o.begin(), o.begin() + 6, bmac.begin());
    size_t quote = std::min(o.size() - 14, in_.ConsumeIntegralInRange<size_t>(28, 200));
    bytes q(o.begin() + 14, o.begin() + long(14 + quote));
    if (type == 0x0800) {
      ip_addr dst = ip_addr::from_v4_be(load32(&q[12]));
      static constexpr uint8_t types[] = {3, 11, 12};
      uint8_t t = types[in_.ConsumeIntegralInRange<int>(0, 2)];
      uint8_t code = t == 3 ? in_.ConsumeIntegralInRange<uint8_t>(0, 4) : 0;
      bytes m = icmp(t, code, code == 4 ? 1400 : 0, q);
      take(h_.run({eth(own_mac, bmac, 0x0800, ip4(ip("203.0.113.254"), dst, 1, m))},
                  dp::backend_side, now_, worker()),
           true);
    } else if (type == 0x86dd) {
      ip_addr src = ip_addr::from_v6(&q[8]);
      static constexpr uint8_t types[] = {1, 2, 3, 4};
      uint8_t t = types[in_.ConsumeIntegralInRange<int>(0, 3)];
      bytes m = icmp(t, 0, t == 2 ? 1280 : 0, q);
      take(h_.run({eth(own_mac, bmac, 0x86dd, ip6(ip("2001:db8:b::fe"), src, 58, m))},
                  dp::backend_side, now_, worker()),
           true);
    }
  }

  // Raw bytes as a frame: addressed to us, with a plausible ethertype.
  void garbage() {
    bool backend = in_.ConsumeBool();
    size_t n = in_.ConsumeIntegralInRange<size_t>(0, 256);
    bytes f = in_.ConsumeBytes<uint8_t>(n);
    if (f.size() >= 14 && in_.ConsumeBool()) {
      std::copy(own_mac.begin(), own_mac.end(), f.begin());
      static constexpr uint16_t types[] = {0x0800, 0x86dd, 0x0806, 0x8100};
      put16(f, 12, types[in_.ConsumeIntegralInRange<int>(0, 3)]);
    }
    if (f.empty())
      return;
    take(h_.run({f}, backend ? dp::backend_side : dp::client_side, now_, worker()), false);
  }

  void change_table() {
    std::vector<service_config> next = services_;
    service_config& s = next[in_.ConsumeIntegralInRange<size_t>(0, next.size() - 1)];
    switch (in_.ConsumeIntegralInRange<int>(0, 7)) {
    case 0: { // another mode (NAT modes need backend ports, DSR none)
      unsigned v = unsigned(&s - next.data());
      s = make_slot(v, modes[in_.ConsumeIntegralInRange<int>(0, 4)], s.scheduler);
      break;
    }
    case 1:
      s.scheduler = schedulers[in_.ConsumeIntegralInRange<int>(0, 9)];
      break;
    case 2: { // add a backend
      if (s.backends.size() >= 8)
        break;
      backend_config b = s.backends.empty() ? backend_config{} : s.backends.back();
      b.addr = backend_addr(!s.vip.is_v4(), in_.ConsumeIntegralInRange<unsigned>(0, 7));
      if (s.mode == fwd_mode::dsr_ipip || s.mode == fwd_mode::dsr_gue)
        b.addr = backend_addr(in_.ConsumeBool(), in_.ConsumeIntegralInRange<unsigned>(0, 7));
      b.weight = in_.ConsumeIntegralInRange<uint16_t>(0, 10);
      s.backends.push_back(b);
      break;
    }
    case 3: // remove one
      if (!s.backends.empty())
        s.backends.erase(s.backends.begin() +
                         long(in_.ConsumeIntegralInRange<size_t>(0, s.backends.size() - 1)));
      break;
    case 4:
    case 5: { // weight, state, response-time hint, connection cap
      if (s.backends.empty())
        break;
      backend_config& b = s.backends[in_.ConsumeIntegralInRange<size_t>(0, s.backends.size() - 1)];
      b.weight = in_.ConsumeIntegralInRange<uint16_t>(0, 100);
      b.state = abi::backend_state(in_.ConsumeIntegralInRange<int>(1, 4));
      b.rtt_hint_us = in_.ConsumeIntegralInRange<uint32_t>(0, 100000);
      b.max_conns = in_.ConsumeBool() ? 0 : in_.ConsumeIntegralInRange<uint32_t>(1, 4);
      break;
    }
    case 6: // service options
      s.reset_on_down = in_.ConsumeBool();
      s.hash_src = in_.ConsumeBool();
      s.defence.mid_flow_rst = in_.ConsumeBool();
      if (s.proto == 6 && in_.ConsumeBool())
        s.defence.synproxy = abi::synproxy_mode(in_.ConsumeIntegralInRange<int>(0, 2));
      s.defence.client_rate = in_.ConsumeBool() ? 0 : in_.ConsumeIntegralInRange<uint32_t>(1, 20);
      s.timeouts.established_s = in_.ConsumeIntegralInRange<uint32_t>(1, 900);
      break;
    case 7: // the service leaves (or comes back)
      if (next.size() > 1)
        next.erase(next.begin() + long(&s - next.data()));
      else
        next = base_services();
      break;
    }
    try {
      h_.publish(next);
      services_ = std::move(next);
    } catch (const std::runtime_error&) {
      // refused by the table builder: nothing changed, which is what we check
    }
  }

  void clock_jump() {
    switch (in_.ConsumeIntegralInRange<int>(0, 3)) {
    case 0:
      now_ += in_.ConsumeIntegralInRange<unsigned>(0, 1000) / 1000.0;
      break;
    case 1:
      now_ += in_.ConsumeIntegralInRange<unsigned>(1, 120);
      break;
    case 2:
      now_ += in_.ConsumeIntegralInRange<unsigned>(600, 7200);
      break;
    case 3:
      now_ += 25.0 * 86400; // past the 2^31 ms wrap of the dataplane's clock
      break;
    }
  }

  FuzzedDataProvider& in_;
  std::vector<service_config> services_;
  harness h_;
  uint16_t workers_;
  double now_ = 1;
  std::vector<bytes> outputs_;
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 16384)
    return 0;
  FuzzedDataProvider in(data, size);
  uint16_t workers = in.ConsumeBool() ? 2 : 1;
  session s(in, workers);
  s.play();
  return 0;
}
