// Minimal argument parsing shared by sluice-decap and sluice-steer:
// "COMMAND --opt VALUE ... [--flag]". Errors print one line naming the option
// and exit with status 2.
#pragma once

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::bpf {

struct cli_args {
  std::string command;
  std::map<std::string, std::vector<std::string>> values; // option → values, in order

  bool has(const std::string& opt) const { return values.count(opt) > 0; }
  const std::vector<std::string>& all(const std::string& opt) const {
    static const std::vector<std::string> none;
    auto it = values.find(opt);
    return it == values.end() ? none : it->second;
  }
};

[[noreturn]] inline void cli_fail(const char* prog, const std::string& msg) {
  std::fprintf(stderr, "%s: %s\n", prog, msg.c_str());
  std::exit(2);
}

// `with_value`: options that take a value (each may repeat); anything else
// starting with "--" is an error.
inline cli_args parse_cli(const char* prog, int argc, char** argv,
                          const std::vector<std::string>& with_value) {
  cli_args a;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0) {
      if (!a.command.empty())
        cli_fail(prog, "unexpected argument '" + arg + "'");
      a.command = arg;
      continue;
    }
    bool known = false;
    for (const auto& o : with_value)
      known |= o == arg;
    if (!known)
      cli_fail(prog, "unknown option '" + arg + "'");
    if (i + 1 >= argc)
      cli_fail(prog, arg + ": missing value");
    a.values[arg].push_back(argv[++i]);
  }
  return a;
}

inline bool parse_u16(std::string_view s, uint16_t& out) {
  unsigned v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v > 65535)
    return false;
  out = uint16_t(v);
  return true;
}

} // namespace sluice::bpf
