// The daemon's event loop: one thread polls the API Unix socket (one JSON
// request per line, answered in order), the Prometheus HTTP listener and a
// periodic tick (heartbeat). One thread means concurrent clients are
// serialised by construction: each request runs to completion, including its
// publication, before the next is read.
#pragma once

#include <functional>
#include <string>

#include "result.h"

namespace sluice::cp {

struct server_options {
  std::string socket_path;  // created with mode 0660; a stale socket is replaced
  std::string metrics_addr; // "HOST:PORT" or "off"
  int tick_ms = 200;        // longest gap between two ticks
};

struct server_hooks {
  std::function<std::string(const std::string&)> handle_line; // request line -> answer
  std::function<std::string()> metrics;                       // /metrics body
  std::function<void()> tick; // at least every tick_ms (and after each request)
  // Optional: called before each request with the client's SO_PEERCRED (for
  // the audit log).
  std::function<void(int uid, int pid)> request_peer;
};

// Serves until SIGTERM or SIGINT. Errors: a listener could not be set up.
result<void> serve(const server_options& opts, const server_hooks& hooks);

} // namespace sluice::cp
