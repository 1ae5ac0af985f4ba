// sluice-decap: attaches dsr_decap (IPIP/GUE decapsulation for DSR backends)
// to an interface, detaches it, or shows its configuration and counters.
//
//   sluice-decap attach --iface IF [--gue-port P] [--addr IP]...
//   sluice-decap detach --iface IF
//   sluice-decap status --iface IF
//
// Without --addr every encapsulated packet is decapsulated whatever its outer
// destination; with --addr only packets to those addresses are. Exit status 0
// on success, 1 on failure, 2 on a bad argument; `status` exits 3 when
// dsr_decap is not attached.
#include <cstdio>
#include <string>

#include "cli_args.h"
#include "decap_control.h"
#include "version.h"

using namespace sluice;
using namespace sluice::bpf;

namespace {

constexpr const char* prog = "sluice-decap";

void usage(FILE* out) {
  std::fprintf(out, "usage: sluice-decap attach --iface IF [--gue-port P] [--addr IP]...\n"
                    "       sluice-decap detach --iface IF\n"
                    "       sluice-decap status --iface IF\n");
}

int fail(const std::string& msg) {
  std::fprintf(stderr, "%s: %s\n", prog, msg.c_str());
  return 1;
}

int cmd_attach(const std::string& iface, const cli_args& a) {
  decap_settings s;
  if (a.has("--gue-port")) {
    const auto& v = a.all("--gue-port").back();
    if (!parse_u16(v, s.gue_port) || s.gue_port == 0)
      cli_fail(prog, "--gue-port: expected 1..65535 (got '" + v + "')");
  }
  for (const auto& text : a.all("--addr")) {
    auto ip = parse_ip(text);
    if (!ip)
      cli_fail(prog, "--addr: expected an IPv4 or IPv6 address (got '" + text + "')");
    s.local_addrs.push_back(*ip);
  }
  auto mode = decap_attach(iface, s);
  if (!mode)
    return fail(mode.error_message());
  std::printf("dsr_decap %s on %s: gue port %u, %s\n",
              *mode == "updated" ? "reconfigured" : ("attached (" + *mode + " XDP)").c_str(),
              iface.c_str(), s.gue_port,
              s.local_addrs.empty()
                  ? "any destination"
                  : (std::to_string(s.local_addrs.size()) + " local addresses").c_str());
  return 0;
}

int cmd_status(const std::string& iface) {
  auto st = decap_query(iface);
  if (!st)
    return fail(st.error_message());
  if (!st->has_value()) {
    std::printf("%s: dsr_decap not attached\n", iface.c_str());
    return 3;
  }
  const auto& s = **st;
  std::printf("%s: dsr_decap attached (%s XDP, program id %u)\n", iface.c_str(), s.mode.c_str(),
              s.prog_id);
  std::printf("gue_port %u\n", s.settings.gue_port);
  if (s.settings.local_addrs.empty())
    std::printf("local_addrs any\n");
  for (const auto& addr : s.settings.local_addrs)
    std::printf("local_addr %s\n", format_ip(addr).c_str());
  for (size_t i = 0; i < s.counters.size(); ++i)
    std::printf("%s %llu\n", decap_counter_names[i], (unsigned long long)s.counters[i]);
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::string(argv[1]) == "--version") {
    std::printf("%s %s\n", prog, SLUICE_VERSION);
    return 0;
  }
  if (argc == 2 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h")) {
    usage(stdout);
    return 0;
  }
  auto a = parse_cli(prog, argc, argv, {"--iface", "--gue-port", "--addr"});
  if (a.command.empty()) {
    usage(stderr);
    return 2;
  }
  if (!a.has("--iface"))
    cli_fail(prog, "--iface: missing");
  const auto& iface = a.all("--iface").back();
  if (a.command == "attach")
    return cmd_attach(iface, a);
  if (a.command != "attach" && (a.has("--gue-port") || a.has("--addr")))
    cli_fail(prog, "--gue-port and --addr only apply to attach");
  if (a.command == "detach") {
    auto r = decap_detach(iface);
    if (!r)
      return fail(r.error_message());
    std::printf("%s: %s\n", iface.c_str(), *r ? "dsr_decap detached" : "nothing attached");
    return 0;
  }
  if (a.command == "status")
    return cmd_status(iface);
  cli_fail(prog, "unknown command '" + a.command + "' (attach, detach, status)");
}
