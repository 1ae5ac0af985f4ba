#include "port_stats.h"

#include <algorithm>
#include <cstdlib>
#include <mutex>

#include <rte_ethdev.h>
#include <rte_telemetry.h>

#include "xsk_stats.h"

namespace sluice::dp {

namespace {

// The telemetry thread is the only reader; the mutex orders it against
// (un)registration from the main thread.
std::mutex g_mu;
std::vector<port_stats_source> g_ports;

// DPDK telemetry dictionaries hold at most RTE_TEL_MAX_DICT_ENTRIES (256).
constexpr size_t max_xstats = 250;

int ports_cmd(const char*, const char*, rte_tel_data* d) {
  rte_tel_data_start_dict(d);
  rte_tel_data* ids = rte_tel_data_alloc();
  if (!ids)
    return -1;
  rte_tel_data_start_array(ids, RTE_TEL_INT_VAL);
  std::lock_guard<std::mutex> g(g_mu);
  for (const auto& p : g_ports)
    rte_tel_data_add_array_int(ids, p.port_id);
  rte_tel_data_add_dict_container(d, "ports", ids, 0);
  return 0;
}

void add_u64_array(rte_tel_data* d, const char* name, const uint64_t* v, size_t n) {
  rte_tel_data* a = rte_tel_data_alloc();
  if (!a)
    return;
  rte_tel_data_start_array(a, RTE_TEL_U64_VAL);
  for (size_t i = 0; i < n; ++i)
    rte_tel_data_add_array_u64(a, v[i]);
  rte_tel_data_add_dict_container(d, name, a, 0);
}

void add_xstats(rte_tel_data* d, uint16_t port) {
  int n = rte_eth_xstats_get(port, nullptr, 0);
  if (n <= 0)
    return;
  const size_t count = size_t(n);
  std::vector<rte_eth_xstat> vals(count);
  std::vector<rte_eth_xstat_name> names(count);
  int got = rte_eth_xstats_get(port, vals.data(), unsigned(n));
  int got_names = rte_eth_xstats_get_names(port, names.data(), unsigned(n));
  if (got <= 0 || got_names < got)
    return;
  rte_tel_data* x = rte_tel_data_alloc();
  if (!x)
    return;
  rte_tel_data_start_dict(x);
  size_t added = 0;
  for (int i = 0; i < got && added < max_xstats; ++i) {
    if (vals[size_t(i)].value == 0 || vals[size_t(i)].id >= uint64_t(got_names))
      continue;
    rte_tel_data_add_dict_u64(x, names[vals[size_t(i)].id].name, vals[size_t(i)].value);
    ++added;
  }
  rte_tel_data_add_dict_container(d, "xstats", x, 0);
}

void add_xsk(rte_tel_data* d, const std::vector<int>& fds) {
  if (fds.empty())
    return;
  std::vector<xsk_counters> per_queue;
  for (int fd : fds) {
    xsk_counters c{};
    if (fd >= 0)
      if (auto r = read_xsk_counters(fd))
        c = r.value();
    per_queue.push_back(c);
  }
  rte_tel_data_add_dict_int(
      d, "xsk_sockets_found",
      int(std::count_if(fds.begin(), fds.end(), [](int f) { return f >= 0; })));
  for (size_t k = 0; k < xsk_counter_count; ++k) {
    std::vector<uint64_t> v;
    for (const auto& c : per_queue)
      v.push_back(c[k]);
    std::string name = std::string("xsk_") + xsk_counter_names[k];
    add_u64_array(d, name.c_str(), v.data(), v.size());
  }
}

int port_cmd(const char*, const char* params, rte_tel_data* d) {
  if (!params || !*params)
    return -1;
  char* end = nullptr;
  long id = std::strtol(params, &end, 10);
  if (end == params || *end != '\0')
    return -1;
  std::lock_guard<std::mutex> g(g_mu);
  auto it = std::find_if(g_ports.begin(), g_ports.end(),
                         [&](const port_stats_source& p) { return p.port_id == id; });
  if (it == g_ports.end())
    return -1;
  const uint16_t port = it->port_id;
  rte_eth_dev_info info{};
  rte_eth_dev_info_get(port, &info);
  char name[RTE_ETH_NAME_MAX_LEN] = "";
  rte_eth_dev_get_name_by_port(port, name);
  rte_eth_stats st{};
  rte_eth_stats_get(port, &st);

  rte_tel_data_start_dict(d);
  rte_tel_data_add_dict_int(d, "port", port);
  rte_tel_data_add_dict_string(d, "name", name);
  rte_tel_data_add_dict_string(d, "driver", info.driver_name ? info.driver_name : "unknown");
  rte_tel_data_add_dict_string(d, "role", it->role.c_str());
  rte_tel_data_add_dict_string(d, "steering", it->steering.c_str());
  rte_tel_data_add_dict_string(d, "dnat_steering", it->dnat_steering.c_str());
  const uint16_t n_rxq = info.nb_rx_queues;
  const uint16_t n_txq = info.nb_tx_queues;
  rte_tel_data_add_dict_int(d, "rx_queues", n_rxq);
  rte_tel_data_add_dict_int(d, "tx_queues", n_txq);
  rte_tel_data* s = rte_tel_data_alloc();
  if (s) {
    rte_tel_data_start_dict(s);
    rte_tel_data_add_dict_u64(s, "ipackets", st.ipackets);
    rte_tel_data_add_dict_u64(s, "opackets", st.opackets);
    rte_tel_data_add_dict_u64(s, "ibytes", st.ibytes);
    rte_tel_data_add_dict_u64(s, "obytes", st.obytes);
    rte_tel_data_add_dict_u64(s, "imissed", st.imissed);
    rte_tel_data_add_dict_u64(s, "ierrors", st.ierrors);
    rte_tel_data_add_dict_u64(s, "oerrors", st.oerrors);
    rte_tel_data_add_dict_u64(s, "rx_nombuf", st.rx_nombuf);
    rte_tel_data_add_dict_container(d, "stats", s, 0);
  }
  // Per-queue counters exist for the first RTE_ETHDEV_QUEUE_STAT_CNTRS queues.
  const size_t nq = std::min<size_t>(std::max(n_rxq, n_txq), RTE_ETHDEV_QUEUE_STAT_CNTRS);
  add_u64_array(d, "q_ipackets", st.q_ipackets, std::min<size_t>(n_rxq, nq));
  add_u64_array(d, "q_ibytes", st.q_ibytes, std::min<size_t>(n_rxq, nq));
  add_u64_array(d, "q_errors", st.q_errors, std::min<size_t>(n_rxq, nq));
  add_u64_array(d, "q_opackets", st.q_opackets, std::min<size_t>(n_txq, nq));
  add_u64_array(d, "q_obytes", st.q_obytes, std::min<size_t>(n_txq, nq));
  add_xstats(d, port);
  add_xsk(d, it->xsk_fds);
  return 0;
}

} // namespace

void register_port_telemetry(const std::vector<port_stats_source>& ports) {
  {
    std::lock_guard<std::mutex> g(g_mu);
    g_ports = ports;
  }
  rte_telemetry_register_cmd("/sluice/ports", ports_cmd,
                             "Ports of this dataplane, in layout order. Takes no parameters");
  rte_telemetry_register_cmd("/sluice/port", port_cmd,
                             "Statistics, per-queue counters, non-zero xstats and AF_XDP socket "
                             "statistics of one port. Parameter: port id");
}

void unregister_port_telemetry() {
  // DPDK cannot unregister a command: leave it answering with no ports.
  std::lock_guard<std::mutex> g(g_mu);
  g_ports.clear();
}

} // namespace sluice::dp
