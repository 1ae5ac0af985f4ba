// sluice-steer: the VIP map of vip_steer on a balancer interface.
//
//   sluice-steer update --iface IF [--vip PROTO:ADDR:PORT]... [--nat-pool IP]... [--own IP]...
//                       [--dnat-backend PROTO:ADDR:PORT]...
//   sluice-steer status --iface IF
//   sluice-steer attach --iface IF     (standalone loader; DPDK normally loads the
//                                       program itself with xdp_prog=vip_steer.bpf.o)
//   sluice-steer detach --iface IF
//
// `update` replaces the whole steered set with the one given (PROTO tcp|udp,
// IPv6 addresses in brackets: udp:[2001:db8::10]:53) plus the host's own
// addresses, which are never steered (`status` lists them as `host`). Exit status 0 on
// success, 1 on failure, 2 on a bad argument; `status` exits 3 when vip_steer is
// not attached.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include <bpf/libbpf.h>

#include "cli_args.h"
#include "steer_control.h"
#include "version.h"
#include "vip_steer.skel.h"
#include "xdp_util.h"

using namespace sluice;
using namespace sluice::bpf;

namespace {

constexpr const char* prog = "sluice-steer";

int fail(const std::string& msg) {
  std::fprintf(stderr, "%s: %s\n", prog, msg.c_str());
  return 1;
}

steer_vip parse_vip(const std::string& text, const char* opt) {
  auto bad = [&] {
    cli_fail(prog, std::string(opt) + ": expected PROTO:ADDR:PORT, e.g. tcp:192.0.2.10:80 (got '" +
                       text + "')");
  };
  steer_vip v;
  auto colon = text.find(':');
  if (colon == std::string::npos)
    bad();
  auto proto = text.substr(0, colon);
  if (proto == "tcp")
    v.proto = 6;
  else if (proto == "udp")
    v.proto = 17;
  else
    bad();
  auto rest = text.substr(colon + 1);
  auto last = rest.rfind(':');
  if (last == std::string::npos)
    bad();
  auto addr = rest.substr(0, last);
  if (addr.size() > 2 && addr.front() == '[' && addr.back() == ']')
    addr = addr.substr(1, addr.size() - 2);
  auto ip = parse_ip(addr);
  if (!ip || !parse_u16(rest.substr(last + 1), v.port) || v.port == 0)
    bad();
  v.addr = *ip;
  return v;
}

std::vector<ip_addr> parse_addrs(const cli_args& a, const char* opt) {
  std::vector<ip_addr> out;
  for (const auto& text : a.all(opt)) {
    auto ip = parse_ip(text);
    if (!ip)
      cli_fail(prog, std::string(opt) + ": expected an IPv4 or IPv6 address (got '" + text + "')");
    out.push_back(*ip);
  }
  return out;
}

int cmd_status(const std::string& iface) {
  auto st = steer_query(iface);
  if (!st)
    return fail(st.error_message());
  if (!st->has_value()) {
    std::printf("%s: vip_steer not attached\n", iface.c_str());
    return 3;
  }
  const auto& s = **st;
  std::printf("%s: vip_steer attached (%s XDP, program id %u)\n", iface.c_str(), s.mode.c_str(),
              s.prog_id);
  for (const auto& v : s.set.vips)
    std::printf("vip %s:%s%s%s:%u\n", v.proto == 6 ? "tcp" : "udp", v.addr.is_v4() ? "" : "[",
                format_ip(v.addr).c_str(), v.addr.is_v4() ? "" : "]", v.port);
  for (const auto& v : s.set.replies)
    std::printf("dnat_backend %s:%s%s%s:%u\n", v.proto == 6 ? "tcp" : "udp",
                v.addr.is_v4() ? "" : "[", format_ip(v.addr).c_str(), v.addr.is_v4() ? "" : "]",
                v.port);
  for (const auto& a : s.set.nat_pool)
    std::printf("nat_pool %s\n", format_ip(a).c_str());
  for (const auto& a : s.set.own)
    std::printf("own %s\n", format_ip(a).c_str());
  for (const auto& a : s.set.host)
    std::printf("host %s\n", format_ip(a).c_str());
  for (size_t i = 0; i < s.counters.size(); ++i)
    std::printf("%s %llu\n", steer_counter_names[i], (unsigned long long)s.counters[i]);
  return 0;
}

int cmd_attach(const std::string& iface) {
  auto ifindex = ifindex_of(iface);
  if (!ifindex)
    return fail(ifindex.error_message());
  vip_steer_bpf* skel = vip_steer_bpf__open_and_load();
  if (!skel)
    return fail(std::string("loading vip_steer: ") + std::strerror(errno));
  auto mode = attach_xdp(*ifindex, bpf_program__fd(skel->progs.vip_steer));
  vip_steer_bpf__destroy(skel);
  if (!mode)
    return fail(iface + ": " + mode.error_message());
  std::printf("vip_steer attached to %s (%s XDP)\n", iface.c_str(), mode->c_str());
  return 0;
}

int cmd_detach(const std::string& iface) {
  auto ifindex = ifindex_of(iface);
  if (!ifindex)
    return fail(ifindex.error_message());
  auto current = attached_xdp(*ifindex);
  if (!current)
    return fail(current.error_message());
  if (!current->has_value()) {
    std::printf("%s: nothing attached\n", iface.c_str());
    return 0;
  }
  if ((*current)->name != "vip_steer")
    return fail(iface + ": XDP program '" + (*current)->name + "' is attached, not vip_steer");
  if (auto st = detach_xdp(*ifindex, (*current)->mode); !st)
    return fail(st.error_message());
  std::printf("%s: vip_steer detached\n", iface.c_str());
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::string(argv[1]) == "--version") {
    std::printf("%s %s\n", prog, SLUICE_VERSION);
    return 0;
  }
  if (argc == 2 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h")) {
    std::printf("usage: sluice-steer update --iface IF [--vip PROTO:ADDR:PORT]... "
                "[--nat-pool IP]... [--own IP]... [--dnat-backend PROTO:ADDR:PORT]...\n"
                "       sluice-steer status|attach|detach --iface IF\n");
    return 0;
  }
  auto a =
      parse_cli(prog, argc, argv, {"--iface", "--vip", "--nat-pool", "--own", "--dnat-backend"});
  if (a.command.empty())
    cli_fail(prog, "missing command (update, status, attach, detach)");
  if (!a.has("--iface"))
    cli_fail(prog, "--iface: missing");
  const auto& iface = a.all("--iface").back();
  if (a.command == "update") {
    steer_set set;
    for (const auto& v : a.all("--vip"))
      set.vips.push_back(parse_vip(v, "--vip"));
    for (const auto& v : a.all("--dnat-backend"))
      set.replies.push_back(parse_vip(v, "--dnat-backend"));
    set.nat_pool = parse_addrs(a, "--nat-pool");
    set.own = parse_addrs(a, "--own");
    if (auto st = steer_update(iface, set); !st)
      return fail(st.error_message());
    std::printf("%s: steering %zu VIP services, %zu NAT-pool and %zu own addresses\n",
                iface.c_str(), set.vips.size(), set.nat_pool.size(), set.own.size());
    return 0;
  }
  if (a.has("--vip") || a.has("--nat-pool") || a.has("--own") || a.has("--dnat-backend"))
    cli_fail(prog, "--vip, --nat-pool, --own and --dnat-backend only apply to update");
  if (a.command == "status")
    return cmd_status(iface);
  if (a.command == "attach")
    return cmd_attach(iface);
  if (a.command == "detach")
    return cmd_detach(iface);
  cli_fail(prog, "unknown command '" + a.command + "' (update, status, attach, detach)");
}
