#include "peer_sync.h"

#include <arpa/inet.h>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "table_digest.h"

namespace sluice::cp {

namespace {

constexpr int message_version = 1;

// "ADDR:PORT" (IPv6 in brackets) into socket-address bytes.
result<std::vector<uint8_t>> parse_endpoint(const std::string& text, const char* what) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos)
    return make_error(fmt::format("{}: expected ADDR:PORT, got '{}'", what, text));
  std::string host = text.substr(0, colon);
  if (host.size() > 1 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  unsigned port = 0;
  const char* p = text.c_str() + colon + 1;
  auto [end, ec] = std::from_chars(p, text.c_str() + text.size(), port);
  if (ec != std::errc() || end != text.c_str() + text.size() || port == 0 || port > 65535)
    return make_error(fmt::format("{}: port must be 1..65535 in '{}'", what, text));
  sockaddr_in s4{};
  sockaddr_in6 s6{};
  if (::inet_pton(AF_INET, host.c_str(), &s4.sin_addr) == 1) {
    s4.sin_family = AF_INET;
    s4.sin_port = htons(uint16_t(port));
    auto* b = reinterpret_cast<const uint8_t*>(&s4);
    return std::vector<uint8_t>(b, b + sizeof s4);
  }
  if (::inet_pton(AF_INET6, host.c_str(), &s6.sin6_addr) == 1) {
    s6.sin6_family = AF_INET6;
    s6.sin6_port = htons(uint16_t(port));
    auto* b = reinterpret_cast<const uint8_t*>(&s6);
    return std::vector<uint8_t>(b, b + sizeof s6);
  }
  return make_error(fmt::format("{}: '{}' is not an IP address", what, host));
}

// Source address of a datagram in the same byte form, for matching peers.
std::vector<uint8_t> normalised(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET) {
    sockaddr_in s{};
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    s.sin_family = AF_INET;
    s.sin_port = in->sin_port;
    s.sin_addr = in->sin_addr;
    auto* b = reinterpret_cast<const uint8_t*>(&s);
    return {b, b + sizeof s};
  }
  sockaddr_in6 s{};
  const auto* in = reinterpret_cast<const sockaddr_in6*>(&ss);
  s.sin6_family = AF_INET6;
  s.sin6_port = in->sin6_port;
  s.sin6_addr = in->sin6_addr;
  auto* b = reinterpret_cast<const uint8_t*>(&s);
  return {b, b + sizeof s};
}

std::string label(const std::string& s) {
  std::string o;
  for (char c : s)
    o += c == '"' || c == '\\' ? std::string("\\") + c : std::string(1, c);
  return o;
}

} // namespace

digest_compare compare_digests(const std::map<std::string, uint64_t>& local,
                               const std::map<std::string, uint64_t>& peer) {
  digest_compare c;
  for (const auto& [name, d] : local) {
    auto it = peer.find(name);
    if (it == peer.end())
      c.only_local.push_back(name);
    else
      (it->second == d ? c.equal : c.differ).push_back(name);
  }
  for (const auto& [name, d] : peer)
    if (!local.count(name))
      c.only_peer.push_back(name);
  return c;
}

std::string encode_peer_message(const peer_local& me, uint64_t seq) {
  nlohmann::json d = nlohmann::json::object();
  for (const auto& [name, v] : me.digests)
    d[name] = digest_hex(v);
  return nlohmann::json{{"sluice_peer", message_version},
                        {"instance", me.instance},
                        {"seq", seq},
                        {"serving", me.serving},
                        {"digests", d}}
      .dump();
}

result<void> apply_peer_message(const std::string& datagram, int64_t now_ns, peer_view& into) {
  auto j = nlohmann::json::parse(datagram, nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.value("sluice_peer", 0) != message_version)
    return make_error("not a sluice peer message (version 1)");
  try {
    const uint64_t seq = j.at("seq").get<uint64_t>();
    std::map<std::string, uint64_t> digests;
    for (const auto& [name, v] : j.at("digests").items()) {
      const std::string hex = v.get<std::string>();
      uint64_t d = 0;
      auto [end, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), d, 16);
      if (ec != std::errc() || end != hex.data() + hex.size())
        return make_error(fmt::format("bad digest for service '{}'", name));
      digests[name] = d;
    }
    // A sequence number that goes back means the peer restarted: start over.
    if (into.messages > 0 && seq > into.last_seq + 1)
      into.lost += seq - into.last_seq - 1;
    into.last_seq = seq;
    into.instance = j.at("instance").get<std::string>();
    into.serving = j.at("serving").get<bool>();
    into.digests = std::move(digests);
    into.last_seen_ns = now_ns;
    into.state = "up";
    ++into.messages;
  } catch (const nlohmann::json::exception& e) {
    return make_error(std::string("malformed peer message: ") + e.what());
  }
  return {};
}

peer_sync::peer_sync(peer_options o) : opts_(std::move(o)) {}

peer_sync::~peer_sync() {
  if (fd_ >= 0)
    ::close(fd_);
}

result<void> peer_sync::start() {
  if (!enabled()) {
    if (!opts_.peers.empty())
      return make_error("--peer needs --peer-listen ADDR:PORT");
    return {};
  }
  auto local = parse_endpoint(opts_.listen, "--peer-listen");
  if (!local)
    return local.err();
  const int family = reinterpret_cast<const sockaddr*>(local->data())->sa_family;
  for (const auto& p : opts_.peers) {
    auto a = parse_endpoint(p, "--peer");
    if (!a)
      return a.err();
    if (reinterpret_cast<const sockaddr*>(a->data())->sa_family != family)
      return make_error(
          fmt::format("--peer {}: not of the address family of --peer-listen {}", p, opts_.listen));
    addrs_.push_back(*a);
    peers_.emplace_back();
    peers_.back().address = p;
  }
  fd_ = ::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0)
    return make_error(fmt::format("peer socket: {}", std::strerror(errno)));
  int one = 1;
  ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd_, reinterpret_cast<const sockaddr*>(local->data()), socklen_t(local->size())) !=
      0) {
    auto e = make_error(fmt::format("--peer-listen {}: {}", opts_.listen, std::strerror(errno)));
    ::close(fd_);
    fd_ = -1;
    return e;
  }
  return {};
}

void peer_sync::tick(int64_t now_ns, const peer_local& me) {
  if (fd_ < 0)
    return;
  for (int budget = 0; budget < 256; ++budget) { // bounded: a flood cannot stall the loop
    char buf[65536];
    sockaddr_storage from{};
    socklen_t len = sizeof from;
    ssize_t n = ::recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 0)
      break;
    const auto src = normalised(from);
    size_t i = 0;
    while (i < addrs_.size() && addrs_[i] != src)
      ++i;
    if (i == addrs_.size()) {
      ++unknown_;
      continue;
    }
    if (!apply_peer_message(std::string(buf, size_t(n)), now_ns, peers_[i]))
      ++bad_;
  }
  for (auto& p : peers_)
    if (p.state == "up" && now_ns - p.last_seen_ns > int64_t(opts_.dead_ms) * 1'000'000)
      p.state = "down";
  if (now_ns < next_send_ns_)
    return;
  next_send_ns_ = now_ns + int64_t(opts_.interval_ms) * 1'000'000;
  const std::string msg = encode_peer_message(me, ++seq_);
  for (const auto& a : addrs_)
    if (::sendto(fd_, msg.data(), msg.size(), 0, reinterpret_cast<const sockaddr*>(a.data()),
                 socklen_t(a.size())) < 0)
      ++send_errors_;
}

nlohmann::json peer_sync::status(const std::map<std::string, uint64_t>& local_digests,
                                 int64_t now_ns) const {
  nlohmann::json local = nlohmann::json::object();
  for (const auto& [name, d] : local_digests)
    local[name] = digest_hex(d);
  nlohmann::json list = nlohmann::json::array();
  for (const auto& p : peers_) {
    auto c = compare_digests(local_digests, p.digests);
    nlohmann::json j = {{"address", p.address},  {"instance", p.instance}, {"state", p.state},
                        {"serving", p.serving},  {"messages", p.messages}, {"lost", p.lost},
                        {"last_seq", p.last_seq}};
    j["last_seen_ms"] = p.last_seen_ns ? double(now_ns - p.last_seen_ns) / 1e6 : -1.0;
    j["digests_equal"] = p.messages > 0 && c.all_equal();
    j["differ"] = c.differ;
    j["only_local"] = c.only_local;
    j["only_peer"] = c.only_peer;
    list.push_back(j);
  }
  return {{"enabled", enabled()},
          {"listen", opts_.listen},
          {"interval_ms", opts_.interval_ms},
          {"dead_ms", opts_.dead_ms},
          {"sent", seq_},
          {"send_errors", send_errors_},
          {"unknown_sources", unknown_},
          {"bad_messages", bad_},
          {"digests", local},
          {"peers", list}};
}

std::string peer_sync::metrics(const std::map<std::string, uint64_t>& local_digests) const {
  if (!enabled())
    return "";
  std::string o = "# HELP sluice_peer_up 1 while the peer instance is heard from\n"
                  "# TYPE sluice_peer_up gauge\n";
  for (const auto& p : peers_)
    o += fmt::format("sluice_peer_up{{peer=\"{}\",instance=\"{}\"}} {}\n", label(p.address),
                     label(p.instance), p.state == "up" ? 1 : 0);
  o += "# HELP sluice_peer_digests_equal 1 when every service's table digest equals the peer's\n"
       "# TYPE sluice_peer_digests_equal gauge\n";
  for (const auto& p : peers_)
    o += fmt::format("sluice_peer_digests_equal{{peer=\"{}\"}} {}\n", label(p.address),
                     p.messages > 0 && compare_digests(local_digests, p.digests).all_equal() ? 1
                                                                                             : 0);
  o += "# HELP sluice_peer_serving 1 when the peer says it serves (announces)\n"
       "# TYPE sluice_peer_serving gauge\n";
  for (const auto& p : peers_)
    o +=
        fmt::format("sluice_peer_serving{{peer=\"{}\"}} {}\n", label(p.address), p.serving ? 1 : 0);
  o += "# HELP sluice_peer_messages_total peer messages received\n"
       "# TYPE sluice_peer_messages_total counter\n";
  for (const auto& p : peers_)
    o +=
        fmt::format("sluice_peer_messages_total{{peer=\"{}\"}} {}\n", label(p.address), p.messages);
  o += "# HELP sluice_peer_lost_messages_total peer messages missing (sequence gaps)\n"
       "# TYPE sluice_peer_lost_messages_total counter\n";
  for (const auto& p : peers_)
    o += fmt::format("sluice_peer_lost_messages_total{{peer=\"{}\"}} {}\n", label(p.address),
                     p.lost);
  o += "# HELP sluice_peer_table_digest this instance's lookup-table digest per service (low 52 "
       "bits)\n# TYPE sluice_peer_table_digest gauge\n";
  for (const auto& [name, d] : local_digests)
    o += fmt::format("sluice_peer_table_digest{{service=\"{}\"}} {}\n", label(name),
                     d & ((1ull << 52) - 1));
  return o;
}

} // namespace sluice::cp
