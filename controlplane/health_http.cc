#include "health_http.h"

#include <fmt/format.h>

namespace sluice::cp {

std::optional<verdict> http_verdict(std::string_view a, const health_config& c, bool complete) {
  const auto eol = a.find("\r\n");
  if (eol == std::string_view::npos) {
    if (complete)
      return verdict{false, a.empty() ? "http: empty answer" : "http: malformed status line"};
    return std::nullopt;
  }
  const std::string_view line = a.substr(0, eol);
  // "HTTP/1.1 200 OK"
  if (line.size() < 12 || line.substr(0, 5) != "HTTP/" || line[8] != ' ')
    return verdict{false, "http: malformed status line"};
  unsigned status = 0;
  for (size_t i = 9; i < 12; ++i) {
    if (line[i] < '0' || line[i] > '9')
      return verdict{false, "http: malformed status line"};
    status = status * 10 + unsigned(line[i] - '0');
  }
  if (status < c.status_min || status > c.status_max)
    return verdict{false, fmt::format("http status {}", status)};
  if (c.body_contains.empty())
    return verdict{true, fmt::format("http status {}", status)};
  const auto hdr_end = a.find("\r\n\r\n");
  if (hdr_end != std::string_view::npos &&
      a.substr(hdr_end + 4).find(c.body_contains) != std::string_view::npos)
    return verdict{true, fmt::format("http status {}", status)};
  if (complete)
    return verdict{false, fmt::format("http body does not contain '{}'", c.body_contains)};
  return std::nullopt;
}

} // namespace sluice::cp
