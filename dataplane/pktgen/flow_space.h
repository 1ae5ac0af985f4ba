// Client identities without a table: global flow index g maps to a client
// address and source port (address varies fastest, so consecutive flows spread
// over addresses like real clients) and back. Established items own a fixed
// range of g; churn items own the rest and walk through it, so a 5-tuple is
// reused only after the whole range (addresses x 64512 ports) went by.
#pragma once

#include <arpa/inet.h>
#include <cstdint>

#include "profile.h"

namespace sluice::pktgen {

struct client_id {
  uint32_t addr_be;
  uint16_t port; // host order
};

class flow_space {
public:
  explicit flow_space(const profile& p) : base_(ntohl(p.clients_base_be)), size_(p.clients_size) {}

  client_id client(uint64_t g) const {
    return client_id{htonl(base_ + uint32_t(g % size_)),
                     uint16_t(client_port_base + (g / size_) % client_ports)};
  }
  // False when the address/port is not a legitimate client (e.g. a spoofed
  // flood source).
  bool index(uint32_t addr_be, uint16_t port, uint64_t& g) const {
    uint32_t off = ntohl(addr_be) - base_;
    if (off >= size_ || port < client_port_base)
      return false;
    g = uint64_t(port - client_port_base) * size_ + off;
    return true;
  }

  uint32_t size() const { return size_; }

private:
  uint32_t base_;
  uint32_t size_;
};

// Walks consecutive flow indexes from a starting one, giving each one's client
// without the two divisions of flow_space::client per step (the generator
// asks for one client per packet).
class client_cursor {
public:
  void seek(const flow_space& fs, uint64_t g) {
    client_id c = fs.client(g);
    size_ = fs.size();
    base_ = ntohl(c.addr_be) - uint32_t(g % size_);
    off_ = uint32_t(g % size_);
    port_ = c.port;
  }
  client_id current() const { return client_id{htonl(base_ + off_), port_}; }
  void advance() {
    if (++off_ == size_) {
      off_ = 0;
      port_ = port_ == client_port_base + client_ports - 1 ? client_port_base : uint16_t(port_ + 1);
    }
  }

private:
  uint32_t base_ = 0, size_ = 1, off_ = 0;
  uint16_t port_ = client_port_base;
};

} // namespace sluice::pktgen
