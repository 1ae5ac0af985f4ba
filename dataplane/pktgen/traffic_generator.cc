#include "traffic_generator.h"

#include <algorithm>
#include <arpa/inet.h>

#include "frame_writer.h"

namespace sluice::pktgen {

namespace {
constexpr uint32_t max_burst = 32;

// Payload bytes that make a frame of `size` bytes on the wire (with FCS).
uint16_t payload_for(uint16_t size, uint8_t proto) {
  uint32_t hdr = header_bytes(proto);
  uint32_t len = size - 4u;
  return uint16_t(len > hdr ? len - hdr : 0);
}

// Established TCP carries only the stamp head in the payload (seq and tx time
// ride in the TCP header, stamp.h); everything else the whole stamp.
uint16_t head_len_for(uint8_t proto) {
  return uint16_t(proto == proto_tcp ? stamp_head_size : stamp_size);
}

void write_head(uint8_t* head, uint8_t proto, const stamp& st) {
  if (proto == proto_tcp)
    write_stamp_head(head, st);
  else
    write_stamp(head, st);
}

// Writes a templated frame into a fresh mbuf.
void fill(rte_mbuf* m, const frame_template& t, const frame_vars& v) {
  uint32_t len = t.write(rte_pktmbuf_mtod(m, uint8_t*), v);
  m->data_len = uint16_t(len);
  m->pkt_len = len;
}
} // namespace

traffic_generator::traffic_generator(pktgen_context& ctx) : ctx_(ctx), st_(ctx.prof.items.size()) {
  for (size_t i = 0; i < st_.size(); ++i)
    st_[i].held.resize(ctx.prof.items[i].held_open);
}

uint64_t traffic_generator::rand64() {
  // xorshift64*: cheap and good enough for spoofed addresses and ports.
  rng_ ^= rng_ >> 12;
  rng_ ^= rng_ << 25;
  rng_ ^= rng_ >> 27;
  return rng_ * 0x2545f4914f6cdd1dull;
}

void traffic_generator::build_templates(uint32_t i) {
  const traffic_item& it = ctx_.prof.items[i];
  const service_def& svc = ctx_.prof.services[it.service];
  item_state& s = st_[i];
  s.fwd_tpl.clear();
  s.rev_tpl.clear();
  if (it.type == item_type::churn)
    return; // variable layout: write_frame
  const bool flood = it.type != item_type::established;
  for (uint16_t size : it.frame_sizes) {
    frame_spec f;
    f.proto = svc.proto;
    f.head_len = head_len_for(svc.proto);
    f.payload_len = std::max<uint16_t>(payload_for(size, svc.proto), f.head_len);
    f.tcp_flags = it.type == item_type::syn_flood ? tcp_syn : tcp_ack;
    f.dst_mac = ctx_.peer_mac[client_port].data();
    f.src_mac = ctx_.own_mac[client_port].data();
    s.fwd_tpl.emplace_back(f);
    if (!flood) {
      f.dst_mac = ctx_.peer_mac[backend_port].data();
      f.src_mac = ctx_.own_mac[backend_port].data(); // replaced per packet by the backend's
      s.rev_tpl.emplace_back(f);
    }
  }
}

void traffic_generator::start(uint64_t now_tsc, double scale) {
  start_tsc_ = now_tsc;
  for (uint32_t i = 0; i < st_.size(); ++i) {
    st_[i].rate = ctx_.prof.items[i].rate * scale;
    if (uint32_t d = ctx_.prof.items[i].request_delay_ms) {
      // Room for twice the connections opened during one delay.
      double per_delay = (st_[i].rate > 0 ? st_[i].rate : 1e6) * d / 1000.0;
      st_[i].delayed.assign(size_t(2 * per_delay) + 1024, delayed_request{});
      st_[i].delayed_head = st_[i].delayed_n = 0;
    }
    st_[i].sent = 0;
    st_[i].cursor.seek(ctx_.flows, ctx_.prof.items[i].flow_base + st_[i].next_flow);
    build_templates(i);
  }
}

uint32_t traffic_generator::due(item_state& s, uint64_t now_tsc, uint32_t limit) const {
  if (s.rate <= 0)
    return limit; // as fast as the ports take
  double should = double(now_tsc - start_tsc_) * s.rate / double(ctx_.tsc_hz);
  uint64_t want = uint64_t(should);
  if (want <= s.sent)
    return 0;
  return uint32_t(std::min<uint64_t>(want - s.sent, limit));
}

void traffic_generator::send_delayed(uint32_t i, uint64_t now_tsc) {
  item_state& s = st_[i];
  for (uint32_t k = 0; k < max_burst && s.delayed_n > 0; ++k) {
    const delayed_request& d = s.delayed[s.delayed_head];
    if (d.due_tsc > now_tsc)
      return;
    first_request(i, d.c, now_tsc);
    s.delayed_head = (s.delayed_head + 1) % uint32_t(s.delayed.size());
    --s.delayed_n;
  }
}

void traffic_generator::first_request(uint32_t i, const held_conn& c, uint64_t now_tsc) {
  const uint32_t isn = c.seq - 1;
  stamp st{stamp_kind::request, uint8_t(i), 0, isn, ctx_.ns32(now_tsc)};
  send_tcp(i, c.addr_be, c.port, tcp_ack | 0x08, c.seq, c.ack, &st,
           ctx_.prof.items[i].request_bytes);
}

void traffic_generator::generate(uint64_t now_tsc) {
  const auto& items = ctx_.prof.items;
  for (uint32_t i = 0; i < items.size(); ++i) {
    item_state& s = st_[i];
    const traffic_item& it = items[i];
    if (s.delayed_n > 0 && ctx_.tx[client_port].has_room())
      send_delayed(i, now_tsc);
    bool fwd = it.type != item_type::established || it.dir != direction::reverse;
    bool rev = it.type == item_type::established && it.dir != direction::forward;
    if ((fwd && !ctx_.tx[client_port].has_room()) || (rev && !ctx_.tx[backend_port].has_room()))
      continue;
    uint32_t n = due(s, now_tsc, max_burst);
    if (n == 0)
      continue;
    switch (it.type) {
    case item_type::established:
      if (fwd)
        send_established(i, n, now_tsc);
      if (rev)
        send_reverse(i, n, now_tsc);
      break;
    case item_type::churn:
      open_conns(i, n, now_tsc);
      break;
    default:
      send_flood(i, n, now_tsc);
      break;
    }
    s.sent += n;
  }
}

void traffic_generator::send_tcp(uint32_t i, uint32_t addr_be, uint16_t port, uint8_t flags,
                                 uint32_t seq, uint32_t ack, const stamp* st,
                                 uint16_t payload_len) {
  const service_def& svc = ctx_.prof.services[ctx_.prof.items[i].service];
  uint8_t head[stamp_size];
  frame_spec f;
  f.dst_mac = ctx_.peer_mac[client_port].data();
  f.src_mac = ctx_.own_mac[client_port].data();
  f.src_be = addr_be;
  f.dst_be = svc.vip_be;
  f.sport = port;
  f.dport = svc.port;
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
  if (rte_mbuf* m = ctx_.build(f))
    ctx_.emit(client_port, &ctx_.stats.items[i].to_backend, &m, 1);
}

void traffic_generator::send_established(uint32_t i, uint32_t n, uint64_t now_tsc) {
  const traffic_item& it = ctx_.prof.items[i];
  const service_def& svc = ctx_.prof.services[it.service];
  item_state& s = st_[i];
  rte_mbuf* ms[max_burst];
  if (!ctx_.alloc_bulk(ms, n))
    return;
  stream_stats& ss = ctx_.stats.items[i].to_backend;
  const uint32_t tx_ns = ctx_.ns32(now_tsc);
  uint8_t head[stamp_size];
  frame_vars v;
  v.dst_be = svc.vip_be;
  v.dport = svc.port;
  v.head = head;
  for (uint32_t k = 0; k < n; ++k) {
    const uint32_t flow = uint32_t(s.next_flow);
    const client_id c = s.cursor.current();
    if (++s.next_flow == it.flows) {
      s.next_flow = 0;
      s.cursor.seek(ctx_.flows, it.flow_base);
    } else {
      s.cursor.advance();
    }
    const frame_template& t = s.fwd_tpl[s.next_size];
    if (++s.next_size == s.fwd_tpl.size())
      s.next_size = 0;
    const stamp st{stamp_kind::established, uint8_t(i), flow, ss.next_tx_seq++, tx_ns};
    write_head(head, svc.proto, st);
    v.src_be = c.addr_be;
    v.sport = c.port;
    v.seq = st.seq;
    v.ack = st.tx_ns;
    fill(ms[k], t, v);
  }
  ctx_.emit(client_port, &ss, ms, n);
}

void traffic_generator::send_reverse(uint32_t i, uint32_t n, uint64_t now_tsc) {
  const traffic_item& it = ctx_.prof.items[i];
  const service_def& svc = ctx_.prof.services[it.service];
  item_state& s = st_[i];
  const auto& learned = ctx_.learned[i];
  if (ctx_.learned_count[i] == 0)
    return;
  rte_mbuf* ms[max_burst];
  if (!ctx_.alloc_bulk(ms, n))
    return;
  stream_stats& ss = ctx_.stats.items[i].to_client;
  const uint32_t tx_ns = ctx_.ns32(now_tsc);
  uint8_t head[stamp_size];
  frame_vars v;
  v.head = head;
  uint32_t built = 0;
  for (uint32_t k = 0; k < n; ++k) {
    // Next flow whose mapping the backends learned (bounded walk).
    uint32_t flow = 0;
    bool found = false;
    for (uint32_t tries = 0; tries < 64 && !found; ++tries) {
      flow = uint32_t(s.next_rev_flow);
      if (++s.next_rev_flow == it.flows)
        s.next_rev_flow = 0;
      found = learned[flow].valid;
    }
    if (!found)
      break;
    const learned_flow& lf = learned[flow];
    const frame_template& t = s.rev_tpl[s.next_rev_size];
    if (++s.next_rev_size == s.rev_tpl.size())
      s.next_rev_size = 0;
    const stamp st{stamp_kind::reverse, uint8_t(i), flow, ss.next_tx_seq++, tx_ns};
    write_head(head, svc.proto, st);
    v.src_be = lf.backend_be;
    v.dst_be = lf.peer_be;
    v.sport = lf.backend_port;
    v.dport = lf.peer_port;
    v.seq = st.seq;
    v.ack = st.tx_ns;
    fill(ms[built], t, v);
    auto smac = backend_mac(lf.backend_be);
    std::memcpy(rte_pktmbuf_mtod(ms[built], uint8_t*) + 6, smac.data(), 6);
    ++built;
  }
  if (built < n)
    rte_pktmbuf_free_bulk(ms + built, n - built);
  ctx_.emit(backend_port, &ss, ms, built);
}

void traffic_generator::send_flood(uint32_t i, uint32_t n, uint64_t now_tsc) {
  const traffic_item& it = ctx_.prof.items[i];
  const service_def& svc = ctx_.prof.services[it.service];
  rte_mbuf* ms[max_burst];
  if (!ctx_.alloc_bulk(ms, n))
    return;
  stream_stats& ss = ctx_.stats.items[i].to_backend;
  const uint32_t tx_ns = ctx_.ns32(now_tsc);
  const frame_template& t = st_[i].fwd_tpl[0];
  const bool syn = it.type == item_type::syn_flood;
  const uint32_t spoof_base = ntohl(ctx_.prof.spoofed_base_be);
  uint8_t head[stamp_size];
  frame_vars v;
  v.dst_be = svc.vip_be;
  v.dport = svc.port;
  v.head = head;
  for (uint32_t k = 0; k < n; ++k) {
    const uint64_t r = rand64();
    const stamp st{stamp_kind::established, uint8_t(i), 0, ss.next_tx_seq++, tx_ns};
    write_head(head, svc.proto, st);
    v.src_be = htonl(spoof_base + uint32_t(r % ctx_.prof.spoofed_size));
    v.sport = uint16_t(1024 + (r >> 32) % 64512);
    v.seq = uint32_t(rand64());
    v.ack = syn ? 0 : uint32_t(r >> 16);
    fill(ms[k], t, v);
  }
  ctx_.emit(client_port, &ss, ms, n);
}

void traffic_generator::open_conns(uint32_t i, uint32_t n, uint64_t now_tsc) {
  const traffic_item& it = ctx_.prof.items[i];
  item_state& s = st_[i];
  const uint32_t isn = ctx_.us32(now_tsc);
  for (uint32_t k = 0; k < n; ++k) {
    uint64_t g = it.flow_base + s.next_conn;
    if (++s.next_conn == it.flow_count)
      s.next_conn = 0;
    client_id c = ctx_.flows.client(g);
    ctx_.stats.items[i].conns_opened++;
    send_tcp(i, c.addr_be, c.port, tcp_syn, isn, 0, nullptr, 0);
  }
}

uint64_t traffic_generator::warmup_flows() const {
  uint64_t n = 0;
  for (const auto& it : ctx_.prof.items)
    if (it.type == item_type::established)
      n += it.flows;
  return n;
}

uint32_t traffic_generator::warmup(uint32_t budget, uint64_t& cursor) {
  uint32_t sent = 0;
  const auto& items = ctx_.prof.items;
  uint64_t base = 0;
  for (uint32_t i = 0; i < items.size() && sent < budget; ++i) {
    const traffic_item& it = items[i];
    if (it.type != item_type::established)
      continue;
    const service_def& svc = ctx_.prof.services[it.service];
    while (cursor < base + it.flows && sent < budget && ctx_.tx[client_port].has_room()) {
      uint32_t flow = uint32_t(cursor - base);
      ++cursor;
      if (ctx_.learned[i][flow].valid)
        continue;
      client_id c = ctx_.flows.client(it.flow_base + flow);
      stamp st{stamp_kind::warmup, uint8_t(i), flow, 0, 0};
      uint8_t head[stamp_size];
      write_stamp(head, st);
      frame_spec f;
      f.dst_mac = ctx_.peer_mac[client_port].data();
      f.src_mac = ctx_.own_mac[client_port].data();
      f.src_be = c.addr_be;
      f.dst_be = svc.vip_be;
      f.sport = c.port;
      f.dport = svc.port;
      f.proto = svc.proto;
      f.tcp_flags = tcp_syn;
      f.seq = 1;
      f.head = head;
      f.head_len = stamp_size;
      f.payload_len = stamp_size;
      rte_mbuf* m = ctx_.build(f);
      if (!m)
        return sent;
      ctx_.emit(client_port, nullptr, &m, 1);
      ++sent;
    }
    if (cursor < base + it.flows)
      return sent;
    base += it.flows;
  }
  return sent;
}

void traffic_generator::close_conn(uint32_t i, const held_conn& c) {
  const traffic_item& it = ctx_.prof.items[i];
  if (it.close_rst) {
    send_tcp(i, c.addr_be, c.port, tcp_rst | tcp_ack, c.seq, c.ack, nullptr, 0);
    ctx_.stats.items[i].conns_completed++;
  } else {
    send_tcp(i, c.addr_be, c.port, tcp_fin | tcp_ack, c.seq, c.ack, nullptr, 0);
  }
}

void traffic_generator::close_held(uint64_t now_tsc) {
  for (uint32_t i = 0; i < st_.size(); ++i) {
    item_state& s = st_[i];
    // First requests still waiting go now, so their connections can finish
    // during the drain.
    while (s.delayed_n > 0) {
      first_request(i, s.delayed[s.delayed_head].c, now_tsc);
      s.delayed_head = (s.delayed_head + 1) % uint32_t(s.delayed.size());
      --s.delayed_n;
    }
    while (s.held_n > 0) {
      close_conn(i, s.held[s.held_head]);
      s.held_head = (s.held_head + 1) % uint32_t(s.held.size());
      --s.held_n;
    }
  }
}

int traffic_generator::item_of_flow(uint64_t g) const {
  const auto& items = ctx_.prof.items;
  for (uint32_t i = 0; i < items.size(); ++i)
    if (g >= items[i].flow_base && g < items[i].flow_base + items[i].flow_count)
      return int(i);
  return -1;
}

void traffic_generator::on_churn(uint32_t i, const seen_packet& s, uint64_t now_tsc) {
  const traffic_item& it = ctx_.prof.items[i];
  item_stats& is = ctx_.stats.items[i];
  if ((s.flags & tcp_rst) != 0) {
    is.conns_reset++;
    return;
  }
  if ((s.flags & (tcp_syn | tcp_ack)) == (tcp_syn | tcp_ack)) {
    // Handshake done: ACK it with the first request.
    uint32_t isn = s.ack - 1;
    is.connect_latency.add(uint32_t(ctx_.us32(now_tsc) - isn));
    is.handshake_done++;
    const held_conn c{s.dst_be, s.dport, isn + 1, s.seq + 1};
    item_state& ist = st_[i];
    if (it.request_delay_ms == 0 || ist.delayed.empty()) {
      first_request(i, c, now_tsc);
      return;
    }
    send_tcp(i, c.addr_be, c.port, tcp_ack, c.seq, c.ack, nullptr, 0);
    if (ist.delayed_n == ist.delayed.size()) { // full: the oldest goes early
      first_request(i, ist.delayed[ist.delayed_head].c, now_tsc);
      ist.delayed_head = (ist.delayed_head + 1) % uint32_t(ist.delayed.size());
      --ist.delayed_n;
    }
    const uint64_t due = now_tsc + uint64_t(it.request_delay_ms) * ctx_.tsc_hz / 1000;
    ist.delayed[(ist.delayed_head + ist.delayed_n) % ist.delayed.size()] = {due, c};
    ++ist.delayed_n;
    return;
  }
  if ((s.flags & tcp_fin) != 0) {
    send_tcp(i, s.dst_be, s.dport, tcp_ack, s.ack, s.seq + 1 + s.payload_len, nullptr, 0);
    is.conns_completed++;
    return;
  }
  if (s.payload_len == 0 || !s.has_stamp || s.st.kind != stamp_kind::response)
    return; // a bare ACK: nothing to do
  is.to_client.latency.add(uint32_t(ctx_.ns32(now_tsc) - s.st.tx_ns));
  uint32_t isn = s.st.seq;
  uint32_t done = (s.ack - isn - 1) / it.request_bytes;
  uint32_t ack = s.seq + s.payload_len;
  if (done < it.requests) {
    stamp st{stamp_kind::request, uint8_t(i), 0, isn, ctx_.ns32(now_tsc)};
    send_tcp(i, s.dst_be, s.dport, tcp_ack | 0x08, s.ack, ack, &st, it.request_bytes);
    return;
  }
  held_conn c{s.dst_be, s.dport, s.ack, ack};
  item_state& st = st_[i];
  if (st.held.empty()) {
    close_conn(i, c);
    return;
  }
  if (st.held_n == st.held.size()) {
    close_conn(i, st.held[st.held_head]);
    st.held_head = (st.held_head + 1) % uint32_t(st.held.size());
    --st.held_n;
  }
  st.held[(st.held_head + st.held_n) % st.held.size()] = c;
  ++st.held_n;
}

void traffic_generator::on_packet(const rte_mbuf* m, uint64_t now_tsc) {
  bool spoofed = false;
  auto s =
      check_at_client(ctx_, rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m), spoofed);
  const uint32_t len = m->pkt_len;
  if (!s)
    return;
  if (spoofed) {
    ++ctx_.stats.flood_replies;
    return;
  }
  uint64_t g = 0;
  ctx_.flows.index(s->dst_be, s->dport, g);
  int i = item_of_flow(g);
  if (i < 0) {
    ctx_.stats.fail(check_failure::reply_destination);
    return;
  }
  const traffic_item& it = ctx_.prof.items[uint32_t(i)];
  stream_stats& ss = ctx_.stats.items[uint32_t(i)].to_client;
  if (it.type == item_type::established) {
    if (!s->has_stamp || s->st.kind != stamp_kind::reverse)
      return; // the SYN-ACK answering a warm-up SYN
    ss.rx_packets++;
    ss.rx_bytes += len;
    ss.seq.see(s->st.seq);
    ss.latency.add(uint32_t(ctx_.ns32(now_tsc) - s->st.tx_ns));
    return;
  }
  ss.rx_packets++;
  ss.rx_bytes += len;
  on_churn(uint32_t(i), *s, now_tsc);
}

} // namespace sluice::pktgen
