#include "backend_responder.h"

#include <arpa/inet.h>

#include "flow_hash.h"
#include "frame_writer.h"

namespace sluice::pktgen {

namespace {

uint32_t server_isn(const seen_packet& s) {
  uint64_t k = uint64_t(s.src_be) << 32 | s.dst_be;
  return uint32_t(mix64(k ^ (uint64_t(s.sport) << 16 | s.dport)));
}

bool dsr(abi::fwd_mode m) {
  return m != abi::fwd_mode::nat && m != abi::fwd_mode::dnat;
}

} // namespace

// Which traffic item a packet belongs to: its stamp, else the client flow
// space, else (full NAT hides the client) the service's churn item.
int backend_responder::attribute(const seen_packet& s) const {
  const auto& items = ctx_.prof.items;
  if (s.has_stamp && s.st.item < items.size())
    return s.st.item;
  uint64_t g;
  if (ctx_.flows.index(s.src_be, s.sport, g)) {
    for (uint32_t i = 0; i < items.size(); ++i)
      if (g >= items[i].flow_base && g < items[i].flow_base + items[i].flow_count)
        return int(i);
  }
  for (uint32_t i = 0; i < items.size(); ++i)
    if (items[i].service == s.service && items[i].type == item_type::churn)
      return int(i);
  return -1;
}

void backend_responder::reply(uint32_t item, const seen_packet& s, uint8_t flags, uint32_t seq,
                              uint32_t ack, const stamp* st, uint16_t payload_len, uint64_t now_tsc,
                              bool counted) {
  const service_def& svc = ctx_.prof.services[s.service];
  bool direct = dsr(svc.mode) && !ctx_.loopback;
  auto smac = backend_mac(s.backend_be);
  uint8_t head[stamp_size];
  frame_spec f;
  // A DSR backend answers from the VIP it holds on its loopback; a NAT backend
  // from its own address, to whatever source the balancer gave the packet.
  f.dst_mac = direct ? ctx_.own_mac[client_port].data() : ctx_.peer_mac[backend_port].data();
  f.src_mac = ctx_.loopback ? ctx_.own_mac[backend_port].data() : smac.data();
  f.src_be = s.dst_be;
  f.dst_be = s.src_be;
  f.sport = s.dport;
  f.dport = s.sport;
  f.proto = proto_tcp;
  f.tcp_flags = flags;
  f.seq = seq;
  f.ack = ack;
  if (st) {
    write_stamp(head, *st);
    f.head = head;
    f.head_len = stamp_size;
  }
  f.payload_len = payload_len;
  rte_mbuf* m = ctx_.build(f);
  if (!m)
    return;
  stream_stats* ss = counted ? &ctx_.stats.items[item].to_client : nullptr;
  if (direct) {
    // Past the balancer, as DSR replies go: counted as sent, then received.
    if (ss) {
      ss->tx_packets++;
      ss->tx_bytes += m->pkt_len;
    }
    clients_.on_packet(m, now_tsc);
    rte_pktmbuf_free(m);
  } else {
    ctx_.emit(backend_port, ss, &m, 1);
  }
}

void backend_responder::on_packet(const rte_mbuf* m, uint64_t now_tsc) {
  auto s = check_at_backend(ctx_, rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m));
  const uint32_t len = m->pkt_len;
  if (!s)
    return;
  int ii = attribute(*s);
  if (ii < 0) {
    ++ctx_.stats.backend_ignored;
    return;
  }
  const uint32_t i = uint32_t(ii);
  const traffic_item& it = ctx_.prof.items[i];

  if (s->has_stamp && s->st.kind == stamp_kind::warmup) {
    if (it.type == item_type::established && s->st.flow < it.flows) {
      learned_flow& lf = ctx_.learned[i][s->st.flow];
      if (!lf.valid)
        ctx_.learned_count[i]++;
      lf = learned_flow{s->backend_be, s->src_be, s->backend_port, s->sport, 1};
    }
    // The warm-up SYN-ACK is not part of any measured stream.
    if (s->proto == proto_tcp)
      reply(i, *s, tcp_syn | tcp_ack, server_isn(*s), s->seq + 1, nullptr, 0, now_tsc, false);
    return;
  }

  stream_stats& ss = ctx_.stats.items[i].to_backend;
  ss.rx_packets++;
  ss.rx_bytes += len;
  if (it.type != item_type::churn) {
    if (s->has_stamp) {
      ss.seq.see(s->st.seq);
      if (it.type == item_type::established)
        ss.latency.add(uint32_t(ctx_.ns32(now_tsc) - s->st.tx_ns));
    }
    // A SYN flood's SYNs get SYN-ACKs (to addresses that never answer).
    if (it.type == item_type::syn_flood)
      reply(i, *s, tcp_syn | tcp_ack, server_isn(*s), s->seq + 1, nullptr, 0, now_tsc);
    return;
  }

  // churn: answer like a server.
  if (s->proto != proto_tcp || (s->flags & tcp_rst))
    return;
  if ((s->flags & (tcp_syn | tcp_ack)) == tcp_syn) {
    reply(i, *s, tcp_syn | tcp_ack, server_isn(*s), s->seq + 1, nullptr, 0, now_tsc);
  } else if (s->flags & tcp_fin) {
    reply(i, *s, tcp_fin | tcp_ack, s->ack, s->seq + 1 + s->payload_len, nullptr, 0, now_tsc);
  } else if (s->payload_len > 0 && s->has_stamp && s->st.kind == stamp_kind::request) {
    stamp st{stamp_kind::response, uint8_t(i), 0, s->st.seq, s->st.tx_ns};
    reply(i, *s, tcp_ack | 0x08, s->ack, s->seq + s->payload_len, &st, it.response_bytes, now_tsc);
  }
}

} // namespace sluice::pktgen
