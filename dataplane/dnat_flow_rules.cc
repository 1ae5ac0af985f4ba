#include "dnat_flow_rules.h"

#include <algorithm>
#include <cstring>
#include <fmt/format.h>
#include <netinet/in.h>

#include <rte_byteorder.h>
#include <rte_errno.h>

#include "shm_abi.h"

namespace sluice::dp {

std::vector<dnat_endpoint> dnat_endpoints(const table_view& v, uint32_t max_services,
                                          uint32_t max_backends) {
  std::vector<dnat_endpoint> out;
  const uint32_t n_svc = std::min(v.hdr->service_limit, max_services);
  const uint32_t n_be = std::min(v.hdr->backend_limit, max_backends);
  std::vector<bool> dnat(n_svc, false);
  for (uint32_t i = 0; i < n_svc; ++i) {
    const abi::service_entry& s = v.services[i];
    if (!(s.flags & abi::service_in_use) || abi::fwd_mode(s.mode) != abi::fwd_mode::dnat)
      continue;
    dnat[i] = true;
    out.push_back({ip_addr::from_v6(s.vip), s.port, s.proto, false});
  }
  for (uint32_t b = 0; b < n_be; ++b) {
    const abi::backend_entry& be = v.backends[b];
    if (!(be.flags & (abi::backend_in_use | abi::backend_retired)) || be.service >= n_svc ||
        !dnat[be.service])
      continue;
    const abi::service_entry& s = v.services[be.service];
    out.push_back({ip_addr::from_v6(be.addr), be.port ? be.port : s.port, s.proto, true});
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::unique_ptr<dnat_flow_rule> build_dnat_rule(const dnat_endpoint& e,
                                                const std::array<uint8_t, 40>& key,
                                                const std::vector<uint16_t>& reta) {
  auto r = std::make_unique<dnat_flow_rule>();
  r->attr.ingress = 1;
  // Above the port's default RSS (group 0, priority 0 is the highest a PMD
  // offers; drivers without priorities ignore it).
  r->attr.priority = 0;
  r->items[0].type = RTE_FLOW_ITEM_TYPE_ETH;
  const bool v4 = e.addr.is_v4();
  if (v4) {
    r->items[1].type = RTE_FLOW_ITEM_TYPE_IPV4;
    r->ip4_spec.hdr.next_proto_id = e.proto;
    r->ip4_mask.hdr.next_proto_id = 0xff;
    if (e.from_backend) {
      r->ip4_spec.hdr.src_addr = e.addr.v4_be();
      r->ip4_mask.hdr.src_addr = 0xffffffffu;
    } else {
      r->ip4_spec.hdr.dst_addr = e.addr.v4_be();
      r->ip4_mask.hdr.dst_addr = 0xffffffffu;
    }
    r->items[1].spec = &r->ip4_spec;
    r->items[1].mask = &r->ip4_mask;
  } else {
    r->items[1].type = RTE_FLOW_ITEM_TYPE_IPV6;
    r->ip6_spec.hdr.proto = e.proto;
    r->ip6_mask.hdr.proto = 0xff;
    uint8_t* spec = e.from_backend ? r->ip6_spec.hdr.src_addr : r->ip6_spec.hdr.dst_addr;
    uint8_t* mask = e.from_backend ? r->ip6_mask.hdr.src_addr : r->ip6_mask.hdr.dst_addr;
    std::memcpy(spec, e.addr.bytes.data(), 16);
    std::memset(mask, 0xff, 16);
    r->items[1].spec = &r->ip6_spec;
    r->items[1].mask = &r->ip6_mask;
  }
  const rte_be16_t port_be = rte_cpu_to_be_16(e.port);
  if (e.proto == IPPROTO_TCP) {
    r->items[2].type = RTE_FLOW_ITEM_TYPE_TCP;
    if (e.from_backend) {
      r->tcp_spec.hdr.src_port = port_be;
      r->tcp_mask.hdr.src_port = 0xffff;
    } else {
      r->tcp_spec.hdr.dst_port = port_be;
      r->tcp_mask.hdr.dst_port = 0xffff;
    }
    r->items[2].spec = &r->tcp_spec;
    r->items[2].mask = &r->tcp_mask;
  } else {
    r->items[2].type = RTE_FLOW_ITEM_TYPE_UDP;
    if (e.from_backend) {
      r->udp_spec.hdr.src_port = port_be;
      r->udp_mask.hdr.src_port = 0xffff;
    } else {
      r->udp_spec.hdr.dst_port = port_be;
      r->udp_mask.hdr.dst_port = 0xffff;
    }
    r->items[2].spec = &r->udp_spec;
    r->items[2].mask = &r->udp_mask;
  }
  r->items[3].type = RTE_FLOW_ITEM_TYPE_END;

  // Hash the client's side only: its source towards the VIP, its destination
  // in a backend's reply. Both give Toeplitz(client address, client port).
  const bool tcp = e.proto == IPPROTO_TCP;
  uint64_t types = v4 ? (tcp ? RTE_ETH_RSS_NONFRAG_IPV4_TCP : RTE_ETH_RSS_NONFRAG_IPV4_UDP)
                      : (tcp ? RTE_ETH_RSS_NONFRAG_IPV6_TCP : RTE_ETH_RSS_NONFRAG_IPV6_UDP);
  types |= e.from_backend ? (RTE_ETH_RSS_L3_DST_ONLY | RTE_ETH_RSS_L4_DST_ONLY)
                          : (RTE_ETH_RSS_L3_SRC_ONLY | RTE_ETH_RSS_L4_SRC_ONLY);
  r->key = key;
  r->queues = reta;
  r->rss.func = RTE_ETH_HASH_FUNCTION_TOEPLITZ;
  r->rss.level = 0;
  r->rss.types = types;
  r->rss.key_len = uint32_t(r->key.size());
  r->rss.key = r->key.data();
  r->rss.queue_num = uint32_t(r->queues.size());
  r->rss.queue = r->queues.data();
  r->actions[0].type = RTE_FLOW_ACTION_TYPE_RSS;
  r->actions[0].conf = &r->rss;
  r->actions[1].type = RTE_FLOW_ACTION_TYPE_END;
  return r;
}

const char* dnat_steering_name(dnat_steering_mode m) {
  switch (m) {
  case dnat_steering_mode::rte_flow:
    return "rte_flow";
  case dnat_steering_mode::handoff:
    return "handoff";
  case dnat_steering_mode::none:
    break;
  }
  return "none";
}

namespace {

std::string flow_error_text(int rc, const rte_flow_error& err) {
  std::string text = rte_strerror(-rc);
  // Drivers often repeat strerror as the message: say it once.
  if (err.message && text != err.message)
    text += fmt::format(": {}", err.message);
  return text;
}

} // namespace

dnat_flow_steering dnat_flow_steering::probe(const std::vector<port_side>& ports,
                                             uint16_t n_workers, const std::array<uint8_t, 40>& key,
                                             const std::vector<uint16_t>& reta) {
  dnat_flow_steering s;
  s.ports_ = ports;
  s.key_ = key;
  s.reta_ = reta;
  if (n_workers < 2 || ports.empty()) {
    s.mode_ = dnat_steering_mode::none;
    return s;
  }
  // Sample endpoints from the documentation ranges: validation looks at the
  // rule's shape (items, RSS types, key, queue list), not at the addresses.
  const dnat_endpoint samples[] = {
      {ip_addr::from_v4_be(rte_cpu_to_be_32(0xc0000201)), 80, IPPROTO_TCP, false},
      {ip_addr::from_v4_be(rte_cpu_to_be_32(0xc0000202)), 80, IPPROTO_TCP, true},
  };
  // The RETA as the queue list first; drivers that want each queue once get
  // the short list when it selects the same queue for every hash.
  std::vector<std::vector<uint16_t>> candidates = {reta};
  if (auto q = short_queue_list(reta, n_workers); !q.empty() && q != reta)
    candidates.push_back(std::move(q));
  for (const auto& queues : candidates) {
    std::string refused;
    for (const auto& p : ports)
      for (const auto& e : samples) {
        if (!refused.empty() || (e.from_backend && !p.backend) || (!e.from_backend && !p.client))
          continue;
        auto r = build_dnat_rule(e, key, queues);
        rte_flow_error err{};
        if (int rc = rte_flow_validate(p.port_id, &r->attr, r->items, r->actions, &err); rc != 0)
          refused =
              fmt::format("port {}: rte_flow_validate: {}", p.port_id, flow_error_text(rc, err));
      }
    if (refused.empty()) {
      s.mode_ = dnat_steering_mode::rte_flow;
      s.reta_ = queues;
      return s;
    }
    if (s.reason_.empty())
      s.reason_ = refused; // the first refusal says most about the port
  }
  s.mode_ = dnat_steering_mode::handoff;
  return s;
}

std::vector<uint16_t> short_queue_list(const std::vector<uint16_t>& reta, uint16_t n_workers) {
  if (n_workers == 0 || reta.empty() || reta.size() % n_workers != 0)
    return {};
  for (size_t i = 0; i < reta.size(); ++i)
    if (reta[i] != i % n_workers)
      return {};
  // reta[h % size] = h % size % n = h % n because n divides size.
  std::vector<uint16_t> q(n_workers);
  for (uint16_t w = 0; w < n_workers; ++w)
    q[w] = w;
  return q;
}

std::string dnat_flow_steering::describe() const {
  switch (mode_) {
  case dnat_steering_mode::rte_flow:
    return "rte_flow (RSS on the client's address and port)";
  case dnat_steering_mode::handoff:
    return fmt::format("software handoff ({})", reason_);
  case dnat_steering_mode::none:
    break;
  }
  return "none";
}

bool dnat_flow_steering::sync(const std::vector<dnat_endpoint>& want) {
  if (mode_ != dnat_steering_mode::rte_flow)
    return true;
  // Destroy rules for endpoints no longer published.
  for (size_t i = 0; i < rules_.size();) {
    if (std::binary_search(want.begin(), want.end(), rules_[i].e)) {
      ++i;
      continue;
    }
    rte_flow_error err{};
    rte_flow_destroy(rules_[i].port_id, rules_[i].flow, &err);
    rules_[i] = rules_.back();
    rules_.pop_back();
  }
  bool ok = true;
  for (const auto& e : want)
    for (const auto& p : ports_) {
      if ((e.from_backend && !p.backend) || (!e.from_backend && !p.client))
        continue;
      const bool have = std::any_of(rules_.begin(), rules_.end(), [&](const installed_rule& r) {
        return r.port_id == p.port_id && r.e == e;
      });
      if (have)
        continue;
      auto r = build_dnat_rule(e, key_, reta_);
      rte_flow_error err{};
      rte_flow* f = rte_flow_create(p.port_id, &r->attr, r->items, r->actions, &err);
      if (f == nullptr) {
        // Kept out of rules_: the next sync tries again; meanwhile the
        // pipeline's ownership check hands this endpoint's packets over.
        ++refused_;
        ok = false;
        continue;
      }
      rules_.push_back({e, p.port_id, f});
    }
  return ok;
}

void dnat_flow_steering::remove_all() {
  for (const auto& r : rules_) {
    rte_flow_error err{};
    rte_flow_destroy(r.port_id, r.flow, &err);
  }
  rules_.clear();
}

} // namespace sluice::dp
