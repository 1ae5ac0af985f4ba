// The daemon's event loop: one thread polls the API Unix socket (one JSON
// request per line, answered in order), the Prometheus HTTP listener and a
// periodic tick (heartbeat, health checks). One thread means concurrent
// clients are serialised by construction: each request runs to completion,
// including its publication, before the next is read.
//
// No client can stall or exhaust the loop: every socket is non-blocking and
// answers are written as the peer takes them; API clients and scrapes are
// capped in number, buffered bytes and time (an idle API client is closed, a
// scrape has one deadline); at the descriptor limit a reserve descriptor is
// released to accept and shed the newcomer instead of spinning on EMFILE.
#pragma once

#include <functional>
#include <string>

#include "result.h"

namespace sluice::cp {

struct server_options {
  std::string socket_path;  // created with mode 0660; a stale socket is replaced
  std::string metrics_addr; // "HOST:PORT" or "off"
  int tick_ms = 200;        // longest gap between two ticks
  size_t max_api_clients = 32;
  size_t max_http_clients = 16;
  size_t max_request_bytes = 4u << 20;   // one request line (longer: error answer, closed)
  size_t max_buffered_bytes = 32u << 20; // unanswered input over all API clients
  int api_idle_ms = 120000;              // an API client silent this long is closed
  int http_deadline_ms = 5000;           // a whole scrape: request read and answer sent
};

struct server_hooks {
  std::function<std::string(const std::string&)> handle_line; // request line -> answer
  std::function<std::string()> metrics;                       // /metrics body
  std::function<void()> tick;   // at least every tick_ms (and after each request)
  std::function<void()> reload; // on SIGHUP (may be unset: then logged and ignored)
  std::function<void(const std::string&)> log;
  // Optional: called before each request with the client's SO_PEERCRED (for
  // the audit log).
  std::function<void(int uid, int pid)> request_peer;
};

// Serves until SIGTERM or SIGINT, then removes the socket. Errors: a listener
// could not be set up.
result<void> serve(const server_options& opts, const server_hooks& hooks);

} // namespace sluice::cp
