#include "input_limits.h"

#include <fmt/format.h>
#include <vector>

namespace sluice::cp {

size_t invalid_utf8_at(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    unsigned lo = 0x80, hi = 0xbf; // allowed range of the second byte
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      if (c == 0xe0)
        lo = 0xa0; // no overlong
      if (c == 0xed)
        hi = 0x9f; // no surrogate
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      if (c == 0xf0)
        lo = 0x90;
      if (c == 0xf4)
        hi = 0x8f; // at most U+10FFFF
    } else {
      return i;
    }
    if (i + len > n || p[i + 1] < lo || p[i + 1] > hi)
      return i;
    for (size_t k = 2; k < len; ++k)
      if (p[i + k] < 0x80 || p[i + k] > 0xbf)
        return i;
    i += len;
  }
  return std::string_view::npos;
}

result<void> check_utf8(std::string_view s, std::string_view what) {
  const size_t at = invalid_utf8_at(s);
  if (at == std::string_view::npos)
    return {};
  return make_error(fmt::format("{} is not valid UTF-8 (byte {} is 0x{:02x}); use UTF-8 text", what,
                                at, uint8_t(s[at])));
}

result<void> check_json_depth(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth)
        return make_error(
            fmt::format("request nested deeper than {} levels (at byte {})", max_depth, i));
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return {};
}

result<void> check_yaml_tree(const YAML::Node& root, int max_depth, size_t max_nodes) {
  // Iterative walk (an explicit stack): the input decides the depth, never
  // the C++ stack. An alias is walked again each time it is referenced, which
  // is exactly the expansion a decoder would pay for.
  struct item {
    YAML::Node node;
    int depth;
  };
  std::vector<item> stack{{root, 1}};
  size_t nodes = 0;
  while (!stack.empty()) {
    item it = std::move(stack.back());
    stack.pop_back();
    if (++nodes > max_nodes)
      return make_error(fmt::format("more than {} YAML nodes (aliases expanded): refused; a "
                                    "config that large is a mistake or an attack (alias bomb?)",
                                    max_nodes));
    if (it.depth > max_depth)
      return make_error(fmt::format("YAML nested deeper than {} levels (line {})", max_depth,
                                    it.node.Mark().line + 1));
    if (it.node.IsSequence()) {
      for (const auto& e : it.node)
        stack.push_back({e, it.depth + 1});
    } else if (it.node.IsMap()) {
      for (const auto& kv : it.node) {
        stack.push_back({kv.first, it.depth + 1});
        stack.push_back({kv.second, it.depth + 1});
      }
    }
    if (stack.size() > max_nodes)
      return make_error(fmt::format("more than {} YAML nodes: refused", max_nodes));
  }
  return {};
}

std::string printable(std::string_view s, size_t max) {
  std::string out;
  const size_t n = s.size() < max ? s.size() : max;
  size_t i = 0;
  while (i < n) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t bad = invalid_utf8_at(s.substr(i, 4 < s.size() - i ? 4 : s.size() - i));
    if (c < 0x20 || c == 0x7f || (c >= 0x80 && bad == 0)) {
      out += fmt::format("\\x{:02x}", c);
      ++i;
      continue;
    }
    if (c < 0x80) {
      out += char(c);
      ++i;
      continue;
    }
    const size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
    out.append(s.substr(i, len));
    i += len;
  }
  if (s.size() > max)
    out += "...";
  return out;
}

} // namespace sluice::cp
