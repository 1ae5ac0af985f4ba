// libFuzzer target: the config loader (YAML parse with its bounds, decode,
// validate) on arbitrary text. An accepted config must encode back to YAML
// that loads to the same config (the state file relies on that round trip).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "config_encode.h"
#include "config_load.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice::cp;
  if (size > (256u << 10))
    return 0;
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto c = load_config_text(text, "fuzz.yaml", sluice::abi::default_capacities);
  if (!c)
    return 0;
  auto again = load_config_text(to_yaml(c.value()), "again.yaml", sluice::abi::default_capacities);
  if (!again || to_yaml(again.value()) != to_yaml(c.value()))
    std::abort();
  return 0;
}
