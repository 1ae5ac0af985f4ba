// Judging an HTTP health-check answer from the bytes read so far. Pure, so
// the unit tests feed it answers without sockets.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "health_config.h"

namespace sluice::cp {

struct verdict {
  bool ok = false;
  std::string reason; // "http status 503", "http 200 ok", "http body does not contain 'x'"
};

// nullopt while more bytes could change the verdict; `complete` means no more
// will come (EOF or the read limit).
std::optional<verdict> http_verdict(std::string_view answer, const health_config& c, bool complete);

} // namespace sluice::cp
