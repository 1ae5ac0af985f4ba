// libFuzzer target: the packet parser on arbitrary frames. Besides memory
// safety (ASan/UBSan), checks the parser's promises to the pipeline: an `ip`
// result has its headers inside the frame and consistent offsets.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "packet_parse.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 65535)
    return 0;
  // A copy of exactly `size` bytes, so ASan sees any read past the frame.
  std::vector<uint8_t> frame(data, data + size);
  sluice::parsed_packet p;
  sluice::parse_frame(frame.data(), uint32_t(frame.size()), p);
  if (p.kind == sluice::packet_kind::ip) {
    if (p.l3_off != p.l2_len || p.l4_off < p.l3_off || p.l4_off > size ||
        uint32_t(p.l3_off) + p.l3_len > size || (p.family != 4 && p.family != 6))
      std::abort();
  }
  if (p.kind == sluice::packet_kind::drop && p.reason == sluice::drop_reason::count)
    std::abort(); // a drop must name its reason
  return 0;
}
