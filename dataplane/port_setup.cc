#include "port_setup.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fmt/format.h>

#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include "xsk_stats.h"

namespace sluice::dp {

const std::array<uint8_t, 40> sluice_rss_key = {
    0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
    0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
    0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
};

namespace {

constexpr uint32_t mempool_cache = 256;

std::string driver_name(uint16_t port_id) {
  rte_eth_dev_info info{};
  if (rte_eth_dev_info_get(port_id, &info) != 0 || info.driver_name == nullptr)
    return "unknown";
  return info.driver_name;
}

error port_error(uint16_t port_id, const std::string& what, int rc) {
  return make_error(fmt::format("port {} ({}): {}: {}", port_id, driver_name(port_id), what,
                                rte_strerror(rc < 0 ? -rc : rc)));
}

} // namespace

uint32_t mempool_size(uint16_t n_ports, uint16_t n_workers, uint16_t rx_desc, uint16_t tx_desc) {
  uint64_t per_port = uint64_t(n_workers) * (rx_desc + tx_desc) + tx_desc;
  uint64_t rings = uint64_t(n_workers) * handoff_ring_size + exception_ring_size;
  uint64_t caches = uint64_t(n_workers + 1) * mempool_cache * 3 / 2;
  uint64_t in_flight = uint64_t(n_workers + 1) * max_burst * 4;
  uint64_t n = n_ports * per_port + rings + caches + in_flight + 1024;
  // rte_mempool is most memory-efficient at 2^k - 1 elements.
  uint64_t p = 1;
  while (p - 1 < n)
    p <<= 1;
  return uint32_t(p - 1);
}

result<rte_mempool*> create_mempool(uint16_t n_ports, uint16_t n_workers, uint16_t mtu,
                                    int socket_id, uint16_t rx_desc, uint16_t tx_desc) {
  uint32_t n = mempool_size(n_ports, n_workers, rx_desc, tx_desc);
  // Room for the largest frame we receive or send (VLAN tag included) after the
  // headroom the encapsulating modes prepend into.
  uint32_t frame = uint32_t(mtu) + RTE_ETHER_HDR_LEN + RTE_VLAN_HLEN + RTE_ETHER_CRC_LEN;
  uint32_t room = std::max<uint32_t>(RTE_MBUF_DEFAULT_BUF_SIZE, RTE_PKTMBUF_HEADROOM + frame);
  rte_mempool* mp =
      rte_pktmbuf_pool_create("sluice_mbufs", n, mempool_cache, 0, uint16_t(room), socket_id);
  if (mp == nullptr)
    return make_error(fmt::format("cannot create the mbuf pool ({} mbufs of {} bytes): {}", n, room,
                                  rte_strerror(rte_errno)));
  return mp;
}

result<port_info> setup_port(const port_request& req) {
  const uint16_t port = req.port_id;
  const uint16_t n = req.n_workers;
  if (!rte_eth_dev_is_valid_port(port))
    return make_error(
        fmt::format("port {}: no such DPDK port ({} available)", port, rte_eth_dev_count_avail()));

  rte_eth_dev_info info{};
  if (int rc = rte_eth_dev_info_get(port, &info); rc != 0)
    return port_error(port, "cannot read device info", rc);

  port_info p;
  p.port_id = port;
  p.driver = info.driver_name ? info.driver_name : "unknown";
  if (info.max_rx_queues < n || info.max_tx_queues < n)
    return make_error(fmt::format(
        "port {} ({}): the driver offers {} RX / {} TX queues but {} workers need one each; "
        "use fewer worker lcores",
        port, p.driver, info.max_rx_queues, info.max_tx_queues, n));
  p.n_rx_queues = n;
  p.main_tx = req.want_main_tx && info.max_tx_queues > n;
  p.n_tx_queues = p.main_tx ? uint16_t(n + 1) : n;
  p.main_tx_queue = n;

  rte_eth_conf conf{};
  const uint64_t want_hf = RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP;
  const uint64_t hf = want_hf & info.flow_type_rss_offloads;
  // Key as long as the driver wants; the 0x6d5a pattern simply repeats.
  std::vector<uint8_t> key(info.hash_key_size > 0 ? info.hash_key_size : sluice_rss_key.size());
  for (size_t i = 0; i < key.size(); ++i)
    key[i] = sluice_rss_key[i % sluice_rss_key.size()];
  p.rss = n > 1 && hf != 0;
  if (p.rss) {
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_key = key.data();
    conf.rx_adv_conf.rss_conf.rss_key_len = uint8_t(key.size());
    conf.rx_adv_conf.rss_conf.rss_hf = hf;
  }
  // Some drivers (net_memif) accept a larger MTU value than their frame limit
  // and then refuse to configure: leave those at their default.
  const uint32_t frame_len = uint32_t(req.mtu) + RTE_ETHER_HDR_LEN + RTE_ETHER_CRC_LEN;
  if (req.mtu >= info.min_mtu && req.mtu <= info.max_mtu &&
      (info.max_rx_pktlen == 0 || frame_len <= info.max_rx_pktlen)) {
    conf.rxmode.mtu = req.mtu;
    p.mtu = req.mtu;
  }
  if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE)
    conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE;

  if (int rc = rte_eth_dev_configure(port, p.n_rx_queues, p.n_tx_queues, &conf); rc != 0)
    return port_error(
        port, fmt::format("configure with {} RX / {} TX queues", p.n_rx_queues, p.n_tx_queues), rc);
  uint16_t nb_rxd = req.rx_desc, nb_txd = req.tx_desc;
  if (int rc = rte_eth_dev_adjust_nb_rx_tx_desc(port, &nb_rxd, &nb_txd); rc != 0)
    return port_error(port, "adjust descriptor counts", rc);
  p.rx_desc = nb_rxd;
  p.tx_desc = nb_txd;

  rte_eth_txconf txconf = info.default_txconf;
  txconf.offloads = conf.txmode.offloads;
  const bool af_xdp = p.driver == "net_af_xdp";
  for (uint16_t q = 0; q < p.n_rx_queues; ++q) {
    const std::vector<int> before = af_xdp ? af_xdp_fds() : std::vector<int>{};
    if (int rc = rte_eth_rx_queue_setup(port, q, nb_rxd, req.socket_id, nullptr, req.pool); rc != 0)
      return port_error(port, fmt::format("set up RX queue {}", q), rc);
    if (af_xdp)
      p.xsk_fds.push_back(new_af_xdp_fd(before));
  }
  for (uint16_t q = 0; q < p.n_tx_queues; ++q)
    if (int rc = rte_eth_tx_queue_setup(port, q, nb_txd, req.socket_id, &txconf); rc != 0)
      return port_error(port, fmt::format("set up TX queue {}", q), rc);

  if (int rc = rte_eth_dev_start(port); rc != 0)
    return port_error(port, "start", rc);

  // Spread the RETA over the workers (queue i == worker i) so the software
  // model in the pipeline predicts the hardware exactly.
  if (p.rss && info.reta_size > 0) {
    std::vector<rte_eth_rss_reta_entry64> reta((info.reta_size + RTE_ETH_RETA_GROUP_SIZE - 1) /
                                               RTE_ETH_RETA_GROUP_SIZE);
    for (uint16_t i = 0; i < info.reta_size; ++i) {
      auto& e = reta[i / RTE_ETH_RETA_GROUP_SIZE];
      e.mask |= 1ull << (i % RTE_ETH_RETA_GROUP_SIZE);
      e.reta[i % RTE_ETH_RETA_GROUP_SIZE] = uint16_t(i % n);
    }
    if (rte_eth_dev_rss_reta_update(port, reta.data(), info.reta_size) == 0) {
      p.reta.resize(info.reta_size);
      for (uint16_t i = 0; i < info.reta_size; ++i)
        p.reta[i] = uint16_t(i % n);
    }
  }

  if (int rc = rte_eth_promiscuous_enable(port); rc != 0 && rc != -ENOTSUP)
    std::fprintf(stderr, "port %u (%s): cannot enable promiscuous mode: %s\n", port,
                 p.driver.c_str(), rte_strerror(-rc));
  if (int rc = rte_eth_macaddr_get(port, &p.mac); rc != 0)
    return port_error(port, "read MAC address", rc);
  return p;
}

std::string describe_port(const port_info& p) {
  const auto* m = p.mac.addr_bytes;
  std::string rss = p.rss ? (p.reta.empty() ? "yes (driver RETA)"
                                            : fmt::format("yes ({} RETA entries)", p.reta.size()))
                          : "no";
  return fmt::format("port {}: driver {}, {} RX / {} TX queues, rss {}, mac "
                     "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}, mtu {}, main-lcore tx {}, "
                     "descriptors rx {} tx {}",
                     p.port_id, p.driver, p.n_rx_queues, p.n_tx_queues, rss, m[0], m[1], m[2], m[3],
                     m[4], m[5], p.mtu ? fmt::format("{}", p.mtu) : "driver default",
                     p.main_tx ? fmt::format("queue {}", p.main_tx_queue)
                               : "none (neighbour requests disabled; use --neigh)",
                     p.rx_desc, p.tx_desc);
}

steering_config make_steering(const std::vector<port_info>& ports, uint16_t n_workers) {
  steering_config s;
  s.rss_key = sluice_rss_key;
  // Hardware steering only when every port hashes with a RETA we programmed and
  // all RETAs agree: then the software model predicts the NIC exactly.
  bool hardware = n_workers > 1 && !ports.empty();
  for (const auto& p : ports)
    hardware = hardware && p.rss && !p.reta.empty() && p.reta == ports.front().reta;
  if (hardware) {
    s.software = false;
    s.reta = ports.front().reta;
    return s;
  }
  s.software = n_workers > 1;
  s.reta.resize(software_reta_size);
  for (uint16_t i = 0; i < software_reta_size; ++i)
    s.reta[i] = uint16_t(i % n_workers);
  return s;
}

void shutdown_port(uint16_t port_id) {
  if (int rc = rte_eth_dev_stop(port_id); rc != 0)
    std::fprintf(stderr, "port %u: stop failed: %s\n", port_id, rte_strerror(-rc));
  if (int rc = rte_eth_dev_close(port_id); rc != 0)
    std::fprintf(stderr, "port %u: close failed: %s\n", port_id, rte_strerror(-rc));
}

result<std::vector<rte_ring*>> create_handoff_rings(uint16_t n_workers, int socket_id) {
  std::vector<rte_ring*> rings;
  for (uint16_t w = 0; w < n_workers; ++w) {
    auto name = fmt::format("sluice_handoff{}", w);
    rte_ring* r = rte_ring_create(name.c_str(), handoff_ring_size, socket_id, RING_F_SC_DEQ);
    if (r == nullptr)
      return make_error(fmt::format("cannot create ring {}: {}", name, rte_strerror(rte_errno)));
    rings.push_back(r);
  }
  return rings;
}

result<rte_ring*> create_exception_ring(int socket_id) {
  rte_ring* r = rte_ring_create("sluice_exception", exception_ring_size, socket_id, RING_F_SC_DEQ);
  if (r == nullptr)
    return make_error(fmt::format("cannot create the exception ring: {}", rte_strerror(rte_errno)));
  return r;
}

} // namespace sluice::dp
