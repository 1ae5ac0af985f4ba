// Liveness and table-digest exchange between the balancer instances of one
// ECMP group, over UDP on a management address. Every interval each instance
// sends every configured peer one datagram: its name, a sequence number,
// whether it serves (announces), and the digest of each service's lookup
// table (table_digest.h). Receiving tells whether the peer is up, how many of
// its messages were lost (sequence gaps) and whether its tables equal ours:
// the check behind "same config => the same backend for a flow on every
// instance", which DSR connections moving between instances rely on.
//
// One non-blocking socket polled from the daemon's tick: no thread, no
// blocking call. Datagrams are JSON (a few hundred bytes per service; one
// datagram must stay under 64 KiB, i.e. a few hundred services). Messages from
// addresses that are not configured peers are counted and ignored. This is
// the transport the flow-sync protocol of docs/high-availability.md is to
// extend; it carries no flow state yet.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "result.h"

namespace sluice::cp {

struct peer_options {
  std::string listen;             // "ADDR:PORT" to bind; empty = peers off
  std::vector<std::string> peers; // "ADDR:PORT" of the other instances
  uint32_t interval_ms = 200;     // how often we send
  uint32_t dead_ms = 1000;        // a peer not heard from this long is down
};

// What this instance tells its peers.
struct peer_local {
  std::string instance;
  bool serving = false;
  std::map<std::string, uint64_t> digests; // service -> table digest
};

// What we know about one peer.
struct peer_view {
  std::string address; // as configured
  std::string instance;
  std::string state = "unknown"; // unknown (never heard), up, down
  bool serving = false;
  uint64_t messages = 0, lost = 0, last_seq = 0;
  int64_t last_seen_ns = 0;
  std::map<std::string, uint64_t> digests;
};

// Digest comparison of us and one peer.
struct digest_compare {
  std::vector<std::string> equal, differ, only_local, only_peer;
  bool all_equal() const { return differ.empty() && only_local.empty() && only_peer.empty(); }
};
digest_compare compare_digests(const std::map<std::string, uint64_t>& local,
                               const std::map<std::string, uint64_t>& peer);

// One message, encoded and decoded (exposed for tests).
std::string encode_peer_message(const peer_local& me, uint64_t seq);
result<void> apply_peer_message(const std::string& datagram, int64_t now_ns, peer_view& into);

class peer_sync {
public:
  explicit peer_sync(peer_options o);
  ~peer_sync();
  peer_sync(const peer_sync&) = delete;
  peer_sync& operator=(const peer_sync&) = delete;

  bool enabled() const { return !opts_.listen.empty(); }
  // Binds the socket and resolves the peers; the message names the bad value.
  result<void> start();
  // Receives what arrived, sends when due, ages peers; never blocks.
  void tick(int64_t now_ns, const peer_local& me);

  const std::vector<peer_view>& peers() const { return peers_; }
  uint64_t unknown_sources() const { return unknown_; }
  uint64_t bad_messages() const { return bad_; }
  nlohmann::json status(const std::map<std::string, uint64_t>& local_digests, int64_t now_ns) const;
  std::string metrics(const std::map<std::string, uint64_t>& local_digests) const;

private:
  peer_options opts_;
  int fd_ = -1;
  std::vector<peer_view> peers_;
  std::vector<std::vector<uint8_t>> addrs_; // sockaddr bytes per peer
  uint64_t seq_ = 0, unknown_ = 0, bad_ = 0, send_errors_ = 0;
  int64_t next_send_ns_ = 0;
};

} // namespace sluice::cp
