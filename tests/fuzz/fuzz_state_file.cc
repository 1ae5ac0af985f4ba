// libFuzzer target: the state-file loader's checks (end marker, byte count,
// checksum) followed by the config loader. Anything accepted must have been
// sealed: unseal(seal(x)) == x, and a sealed text with one byte changed is
// refused.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "config_load.h"
#include "state_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice::cp;
  if (size > (256u << 10))
    return 0;
  const std::string text(reinterpret_cast<const char*>(data), size);
  if (auto body = unseal_state(text))
    (void)load_config_text(body.value(), "state.yaml", sluice::abi::default_capacities);
  const std::string sealed = seal_state(text);
  auto back = unseal_state(sealed);
  if (!back)
    std::abort();
  (void)load_config_text(back.value(), "state.yaml", sluice::abi::default_capacities);
  if (!text.empty()) {
    std::string damaged = sealed;
    damaged[size / 2] ^= 0x20;
    if (unseal_state(damaged))
      std::abort();
  }
  return 0;
}
