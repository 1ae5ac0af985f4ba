// libFuzzer target: the API request handler, one JSON line per input, against
// a control-plane state whose publication always succeeds (no shared
// memory). Every answer must be one line of valid JSON carrying "ok"; the
// handler must never throw. Inputs may hold several lines: they are applied
// in order to the same state, so sequences of changes are explored too.
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "api_handler.h"
#include "config_load.h"
#include "state.h"

namespace {

sluice::cp::cp_state make_state() {
  using namespace sluice::cp;
  cp_state st(
      sluice::abi::default_capacities,
      [](const std::vector<sluice::service_config>&) -> sluice::result<publish_outcome> {
        return publish_outcome{1, ""};
      },
      [](const cp_config&) -> sluice::result<void> { return {}; });
  auto c = load_config_text("instance: fuzz\nservices:\n  - {name: web, vip: 192.0.2.10, port: 80, "
                            "backends: [{address: 10.0.0.1}, {address: 10.0.0.2}]}\n",
                            "seed", sluice::abi::default_capacities);
  if (!c || !st.load(c.value()))
    std::abort();
  return st;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice::cp;
  if (size > (1u << 20))
    return 0;
  cp_state st = make_state();
  daemon_context ctx;
  ctx.state = &st;
  api_handler api(ctx);
  const std::string input(reinterpret_cast<const char*>(data), size);
  size_t start = 0;
  for (int lines = 0; start <= input.size() && lines < 16; ++lines) {
    size_t nl = input.find('\n', start);
    if (nl == std::string::npos)
      nl = input.size();
    const std::string answer = api.handle_line(input.substr(start, nl - start));
    if (answer.find('\n') != std::string::npos)
      std::abort(); // one answer per line
    auto j = nlohmann::json::parse(answer, nullptr, false);
    if (j.is_discarded() || !j.contains("ok") || !j["ok"].is_boolean())
      std::abort();
    start = nl + 1;
  }
  return 0;
}
