// sluicectl's only way to the daemon: one Unix-socket connection, one JSON
// request line out, one answer line back. Never touches shared memory.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "result.h"

namespace sluice::ctl {

class api_client {
public:
  explicit api_client(std::string socket_path) : path_(std::move(socket_path)) {}
  ~api_client();
  api_client(const api_client&) = delete;
  api_client& operator=(const api_client&) = delete;

  // Sends `req` (version added) and returns the answer. An answer with
  // "ok": false becomes an error carrying its "error" text.
  result<nlohmann::json> call(nlohmann::json req);
  // Same, but returns an "ok": false answer as a value (for --json output).
  result<nlohmann::json> call_raw(nlohmann::json req);

private:
  result<void> connect();
  std::string path_;
  int fd_ = -1;
  std::string pending_;
};

} // namespace sluice::ctl
