// sluicectl: the operator's CLI. Every command is one or two API requests on
// the control plane's Unix socket; it never touches shared memory. Errors are
// one line on stderr and a non-zero exit status (1: the request failed, 2: bad
// usage).
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <fmt/format.h>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "ctl_args.h"
#include "ctl_client.h"
#include "ctl_drain.h"
#include "ctl_peers.h"
#include "ctl_ports.h"
#include "ctl_view.h"
#include "version.h"

namespace po = boost::program_options;
using nlohmann::json;
using namespace sluice;
using namespace sluice::ctl;

namespace {

struct usage_error {
  std::string message;
};

struct context {
  std::string socket;
  bool json_out = false;
  std::vector<std::string> args; // after the command words
  api_client* client = nullptr;
};

int fail(const std::string& msg) {
  // One line per problem (a config with several mistakes lists them all),
  // each prefixed so that it reads alone in a log.
  std::istringstream in(msg);
  for (std::string line; std::getline(in, line);)
    std::fprintf(stderr, "sluicectl: %s\n", line.c_str());
  return 1;
}

void print(const std::string& s) {
  std::fwrite(s.data(), 1, s.size(), stdout);
}

// Prints a change's answer: the diff (or the JSON answer with --json).
// `locate` (when set) rewrites a refusal before it is printed.
int change(context& c, const json& req,
           const std::function<std::string(const std::string&)>& locate = {}) {
  auto a = c.client->call_raw(req);
  if (!a)
    return fail(a.error_message());
  if (c.json_out)
    print(a->dump(2) + "\n");
  if (!a->value("ok", false)) {
    if (c.json_out)
      return 1;
    const std::string e = a->value("error", std::string("request failed"));
    return fail(locate ? locate(e) : e);
  }
  if (!c.json_out) {
    for (const auto& d : a->value("diff", json::array()))
      print(d.get<std::string>() + "\n");
    print(fmt::format("generation {}\n", a->value("generation", 0)));
  }
  return 0;
}

int read_answer(context& c, const json& req, const std::function<std::string(const json&)>& text) {
  auto a = c.client->call(req);
  if (!a)
    return fail(a.error_message());
  print(c.json_out ? a->dump(2) + "\n" : text(a.value()));
  return 0;
}

// Positional arguments and options of one command.
struct parsed {
  std::vector<std::string> pos;
  po::variables_map vm;
};

parsed parse_cmd(const std::vector<std::string>& args, const po::options_description& opts,
                 size_t npos, const std::string& usage) {
  // Positionals come first; the rest are options, parsed by the caller's
  // description (which may be shared with `restore`).
  parsed p;
  size_t i = 0;
  while (i < args.size() && p.pos.size() < npos && args[i].rfind("--", 0) != 0)
    p.pos.push_back(args[i++]);
  if (p.pos.size() < npos)
    throw usage_error{"usage: " + usage};
  try {
    po::store(po::command_line_parser(std::vector<std::string>(args.begin() + long(i), args.end()))
                  .options(opts)
                  .run(),
              p.vm);
    po::notify(p.vm);
  } catch (const po::error& e) {
    throw usage_error{std::string(e.what()) + " (usage: " + usage + ")"};
  }
  return p;
}

json backend_ref(const std::string& service, const std::string& addr, const po::variables_map& vm) {
  json r = {{"service", service}, {"address", addr}};
  if (vm.count("port"))
    r["port"] = vm["port"].as<int64_t>();
  return r;
}

po::options_description port_only() {
  po::options_description d("options");
  d.add_options()("port", po::value<int64_t>()->value_name("N"),
                  "backend port (default: the service's port)");
  return d;
}

int cmd_service_add(context& c) {
  auto w = c.args;
  if (w.empty() || w[0].rfind("--", 0) == 0)
    throw usage_error{"usage: sluicectl service add NAME --vip ADDR --port N [options]"};
  auto f = parse_service_fields({w.begin() + 1, w.end()});
  if (!f)
    throw usage_error{f.error_message()};
  json s = f.value();
  s["name"] = w[0];
  return change(c, {{"cmd", "service.add"}, {"service", s}});
}

int cmd_service_set(context& c) {
  auto w = c.args;
  if (w.empty() || w[0].rfind("--", 0) == 0)
    throw usage_error{"usage: sluicectl service set NAME [options]"};
  auto f = parse_service_fields({w.begin() + 1, w.end()});
  if (!f)
    throw usage_error{f.error_message()};
  if (f->empty())
    throw usage_error{"service set: nothing to change (see --help)"};
  return change(c, {{"cmd", "service.set"}, {"name", w[0]}, {"fields", f.value()}});
}

int cmd_service_del(context& c) {
  auto p = parse_cmd(c.args, po::options_description(), 1, "sluicectl service del NAME");
  return change(c, {{"cmd", "service.del"}, {"name", p.pos[0]}});
}

int cmd_service_list(context& c) {
  parse_cmd(c.args, po::options_description(), 0, "sluicectl service list [--json]");
  return read_answer(c, {{"cmd", "service.list"}}, [](const json& a) {
    std::string o = fmt::format("{:<20} {:<5} {:<28} {:<9} {:<9} {}\n", "NAME", "PROTO", "VIP:PORT",
                                "MODE", "SCHEDULER", "BACKENDS");
    for (const auto& s : a["services"]) {
      std::string vip = s["vip"].get<std::string>();
      vip = vip.find(':') != std::string::npos ? "[" + vip + "]" : vip;
      o += fmt::format(
          "{:<20} {:<5} {:<28} {:<9} {:<9} {}\n", s["name"].get<std::string>(),
          s["proto"].get<std::string>(), fmt::format("{}:{}", vip, s["port"].get<int>()),
          s["mode"].get<std::string>(), s["scheduler"].get<std::string>(), s["backends"].size());
    }
    return o;
  });
}

int cmd_backend_add(context& c) {
  auto w = c.args;
  if (w.size() < 2 || w[0].rfind("--", 0) == 0 || w[1].rfind("--", 0) == 0)
    throw usage_error{"usage: sluicectl backend add SERVICE ADDR [--port N] [--weight W] "
                      "[--state S]"};
  auto b = parse_backend_fields(w[1], {w.begin() + 2, w.end()});
  if (!b)
    throw usage_error{b.error_message()};
  return change(c, {{"cmd", "backend.add"}, {"service", w[0]}, {"backend", b.value()}});
}

int cmd_backend_del(context& c) {
  auto p = parse_cmd(c.args, port_only(), 2, "sluicectl backend del SERVICE ADDR [--port N]");
  json r = backend_ref(p.pos[0], p.pos[1], p.vm);
  r["cmd"] = "backend.del";
  return change(c, r);
}

int cmd_backend_set_weight(context& c) {
  auto p = parse_cmd(c.args, port_only(), 3,
                     "sluicectl backend set-weight SERVICE ADDR WEIGHT [--port N]");
  json r = backend_ref(p.pos[0], p.pos[1], p.vm);
  r["cmd"] = "backend.set-weight";
  try {
    size_t used = 0;
    long long w = std::stoll(p.pos[2], &used);
    if (used != p.pos[2].size())
      throw std::invalid_argument("trailing");
    r["weight"] = w;
  } catch (const std::exception&) {
    throw usage_error{fmt::format("WEIGHT must be an integer 0..65535, got '{}'", p.pos[2])};
  }
  return change(c, r);
}

po::options_description drain_options() {
  auto opts = port_only();
  opts.add_options()("wait", po::bool_switch(), "return when the backend has no active flow")(
      "timeout", po::value<double>()->value_name("S")->default_value(300),
      "with --wait: give up after S seconds (exit 1)");
  return opts;
}

int cmd_backend_drain(context& c, const char* cmd) {
  const bool drain = std::string(cmd) == "backend.drain";
  auto opts = drain ? drain_options() : port_only();
  auto p = parse_cmd(c.args, opts, 2,
                     fmt::format("sluicectl backend {} SERVICE ADDR [--port N]{}", cmd + 8,
                                 drain ? " [--wait [--timeout S]]" : ""));
  json r = backend_ref(p.pos[0], p.pos[1], p.vm);
  r["cmd"] = cmd;
  int rc = change(c, r);
  if (rc != 0 || !drain || !p.vm["wait"].as<bool>())
    return rc;
  drain_wait w{p.pos[0], p.pos[1], std::nullopt, p.vm["timeout"].as<double>()};
  if (p.vm.count("port"))
    w.port = p.vm["port"].as<int64_t>();
  auto done = wait_drained(*c.client, w, [&](uint64_t n) {
    if (!c.json_out)
      print(fmt::format("{} active flows\n", n));
  });
  if (!done)
    return fail(done.error_message());
  if (!done.value())
    return fail(
        fmt::format("backend {} still has active flows after {} s", w.address, w.timeout_s));
  if (!c.json_out)
    print("drained\n");
  return 0;
}

int cmd_backend_list(context& c) {
  auto p = parse_cmd(c.args, po::options_description(), 1, "sluicectl backend list SERVICE");
  return read_answer(c, {{"cmd", "backend.list"}, {"service", p.pos[0]}}, [](const json& a) {
    std::string o =
        fmt::format("{:<28} {:>5} {:>6} {:<9} {:<9} {:<5} {:>9}  {}\n", "ADDRESS", "PORT", "WEIGHT",
                    "STATE", "EFFECTIVE", "CHECK", "LATENCY", "LAST CHECK");
    for (const auto& b : a["backends"]) {
      const json ck = b.value("check", json::object());
      const std::string kind = ck.value("kind", std::string("none"));
      std::string last = ck.value("last_result", std::string());
      if (!last.empty())
        last += fmt::format(" ({} in a row)", ck.value("in_row", 0));
      o += fmt::format("{:<28} {:>5} {:>6} {:<9} {:<9} {:<5} {:>9}  {}\n",
                       b["address"].get<std::string>(), b["port"].get<int>(),
                       b["weight"].get<int>(), b["state"].get<std::string>(),
                       b.value("effective_state", b["state"].get<std::string>()), kind,
                       kind == "none" || last.empty()
                           ? std::string("-")
                           : fmt::format("{:.1f}ms", ck.value("last_latency_us", 0) / 1000.0),
                       last);
    }
    return o;
  });
}

std::string read_all(const std::string& path) {
  if (path == "-") {
    std::stringstream ss;
    ss << std::cin.rdbuf();
    return ss.str();
  }
  std::ifstream in(path);
  if (!in)
    throw usage_error{fmt::format("cannot read {}", path)};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

po::options_description apply_options() {
  po::options_description d("options");
  d.add_options()("file,f", po::value<std::string>()->value_name("FILE"),
                  "YAML config ('-' = stdin)")("dry-run", po::bool_switch(),
                                               "only print what would change");
  return d;
}

int cmd_apply(context& c) {
  auto p = parse_cmd(c.args, apply_options(), 0, "sluicectl apply -f FILE [--dry-run]");
  if (!p.vm.count("file"))
    throw usage_error{"usage: sluicectl apply -f FILE [--dry-run]"};
  const std::string file = p.vm["file"].as<std::string>();
  const bool dry = p.vm["dry-run"].as<bool>();
  json req = {{"cmd", "apply"}, {"yaml", read_all(file)}, {"file", file}, {"dry_run", dry}};
  auto a = c.client->call_raw(req);
  if (!a)
    return fail(a.error_message());
  if (c.json_out) {
    print(a->dump(2) + "\n");
    return a->value("ok", false) ? 0 : 1;
  }
  if (!a->value("ok", false))
    return fail(a->value("error", std::string("apply failed")));
  const auto diff = a->value("diff", json::array());
  for (const auto& l : diff)
    print(l.get<std::string>() + "\n");
  if (diff.empty())
    print("no changes\n");
  print(dry ? "dry run: nothing applied\n"
            : fmt::format("generation {}\n", a->value("generation", 0)));
  return 0;
}

int cmd_save(context& c) {
  parse_cmd(c.args, po::options_description(), 0, "sluicectl save");
  auto a = c.client->call({{"cmd", "config.get"}});
  if (!a)
    return fail(a.error_message());
  print(save_text((*a)["config"]));
  return 0;
}

po::options_description restore_options() {
  po::options_description d("options");
  d.add_options()("file,f", po::value<std::string>()->value_name("FILE"),
                  "saved commands (default stdin)")("dry-run", po::bool_switch(),
                                                    "only print what would change");
  return d;
}

int cmd_restore(context& c) {
  auto p = parse_cmd(c.args, restore_options(), 0, "sluicectl restore [-f FILE] [--dry-run]");
  std::map<std::string, int> lines;
  auto cfg =
      restore_config(read_all(p.vm.count("file") ? p.vm["file"].as<std::string>() : "-"), &lines);
  if (!cfg)
    return fail(cfg.error_message());
  json req = {{"cmd", "apply"}, {"config", cfg.value()}, {"dry_run", p.vm["dry-run"].as<bool>()}};
  return change(c, req, [&](const std::string& e) { return locate_services(e, lines); });
}

int cmd_zero(context& c) {
  std::vector<std::string> args = c.args;
  json req = {{"cmd", "zero"}};
  if (!args.empty() && args[0].rfind("--", 0) != 0) {
    req["service"] = args[0];
    args.erase(args.begin());
  }
  parse_cmd(args, po::options_description(), 0, "sluicectl zero [SERVICE]");
  return read_answer(c, req, [](const json& a) {
    return fmt::format("zeroed {}\n", a.value("zeroed", std::string("all")));
  });
}

// A command without arguments: one request, its answer rendered.
int simple(context& c, const char* cmd, std::string (*render)(const json&)) {
  parse_cmd(c.args, po::options_description(), 0, fmt::format("sluicectl {} [--json]", cmd));
  return read_answer(c, {{"cmd", cmd}}, render);
}

int cmd_status(context& c) {
  parse_cmd(c.args, po::options_description(), 0, "sluicectl status [--json]");
  return read_answer(c, {{"cmd", "status"}}, render_status);
}

po::options_description list_options() {
  po::options_description d("options");
  d.add_options()("stats", po::bool_switch(), "packets, bytes, connections")(
      "rate", po::bool_switch(), "per-second rates (samples twice, --interval-ms apart)")(
      "interval-ms", po::value<int>()->value_name("MS")->default_value(1000),
      "with --rate: sampling interval");
  return d;
}

// Keeps only service `name` in a config object and the matching stats answer
// (whose services are in config order).
void only_service(json& config, json& stats, const std::string& name) {
  json services = json::array(), counters = json::array();
  for (size_t i = 0; i < config["services"].size(); ++i)
    if (config["services"][i].value("name", std::string()) == name) {
      services.push_back(config["services"][i]);
      if (stats.contains("services") && i < stats["services"].size())
        counters.push_back(stats["services"][i]);
    }
  config["services"] = services;
  stats["services"] = counters;
}

int cmd_list(context& c) {
  std::vector<std::string> args = c.args;
  std::string service;
  if (!args.empty() && args[0].rfind("--", 0) != 0) {
    service = args[0];
    args.erase(args.begin());
  }
  auto p = parse_cmd(args, list_options(), 0, "sluicectl list [SERVICE] [--stats|--rate] [--json]");
  auto cfg = c.client->call({{"cmd", "config.get"}});
  if (!cfg)
    return fail(cfg.error_message());
  auto s1 = c.client->call({{"cmd", "stats"}});
  if (!s1)
    return fail(s1.error_message());
  const bool rate = p.vm["rate"].as<bool>();
  json prev;
  if (rate) {
    prev = s1.value();
    std::this_thread::sleep_for(std::chrono::milliseconds(p.vm["interval-ms"].as<int>()));
    s1 = c.client->call({{"cmd", "stats"}});
    if (!s1)
      return fail(s1.error_message());
  }
  if (!service.empty()) {
    bool found = false;
    for (const auto& s : (*cfg)["config"]["services"])
      found |= s.value("name", std::string()) == service;
    if (!found)
      return fail(fmt::format("service '{}' does not exist", service));
    json full = (*cfg)["config"];
    only_service((*cfg)["config"], s1.value(), service);
    if (rate)
      only_service(full, prev, service);
  }
  if (c.json_out) {
    json out = {{"config", (*cfg)["config"]}, {"stats", s1.value()}};
    if (rate)
      out["previous_stats"] = prev;
    print(out.dump(2) + "\n");
    return 0;
  }
  auto kind = rate                       ? list_kind::rate
              : p.vm["stats"].as<bool>() ? list_kind::stats
                                         : list_kind::plain;
  print(render_list((*cfg)["config"], s1.value(), rate ? &prev : nullptr, kind));
  return 0;
}

po::options_description conns_options() {
  po::options_description d("options");
  d.add_options()("backend", po::value<std::string>()->value_name("ADDR[:PORT]"),
                  "only flows to this backend")(
      "client", po::value<std::string>()->value_name("PREFIX"),
      "only flows from this client address or prefix (e.g. 203.0.113.0/24)")(
      "state", po::value<std::string>()->value_name("STATE"),
      "only flows in this state: syn, syn_recv, established, fin, last_ack, time_wait, closed, "
      "adopted, udp, udp_unanswered")(
      "limit", po::value<uint64_t>()->value_name("N")->default_value(0),
      "stop after N flows (default 0: all of them, fetched page by page)")(
      "no-header", po::bool_switch(), "omit the column names")(
      "page-size", po::value<uint32_t>()->value_name("N")->default_value(1000),
      "flows per API request (1..10000)");
  return d;
}

int cmd_conns(context& c) {
  // An optional positional SERVICE comes first.
  std::vector<std::string> args = c.args;
  std::string service;
  if (!args.empty() && args[0].rfind("--", 0) != 0) {
    service = args[0];
    args.erase(args.begin());
  }
  auto p = parse_cmd(args, conns_options(), 0,
                     "sluicectl conns [SERVICE] [--backend ADDR[:PORT]] [--client PREFIX] "
                     "[--state STATE] [--limit N] [--json]");
  const uint64_t limit = p.vm["limit"].as<uint64_t>();
  const uint32_t page = p.vm["page-size"].as<uint32_t>();
  if (page < 1 || page > 10000)
    throw usage_error{fmt::format("--page-size must be 1..10000, got {}", page)};
  json req = {{"cmd", "conns"}};
  if (!service.empty())
    req["service"] = service;
  for (const char* k : {"backend", "client", "state"})
    if (p.vm.count(k))
      req[k] = p.vm[k].as<std::string>();
  json all = json::array();
  uint64_t shown = 0;
  bool header = !p.vm["no-header"].as<bool>();
  // Page through the table: each answer is bounded, the listing is not.
  for (;;) {
    req["limit"] = limit ? std::min<uint64_t>(page, limit - shown) : page;
    auto a = c.client->call(req);
    if (!a)
      return fail(a.error_message());
    const json& flows = (*a)["flows"];
    shown += flows.size();
    if (c.json_out) {
      for (const auto& f : flows)
        all.push_back(f);
    } else {
      print(render_conns(flows, header));
      std::fflush(stdout);
      header = false;
    }
    if (a->value("done", true) || (limit && shown >= limit) || !a->contains("next"))
      break;
    req["cursor"] = (*a)["next"];
  }
  if (c.json_out)
    print(json{{"count", all.size()}, {"flows", all}}.dump(2) + "\n");
  return 0;
}

po::options_description top_options() {
  po::options_description d("options");
  d.add_options()("iterations,n", po::value<int>()->value_name("N")->default_value(0),
                  "stop after N screens (0 = until interrupted)")(
      "interval-ms", po::value<int>()->value_name("MS")->default_value(1000), "refresh interval");
  return d;
}

int cmd_ports(context& c) {
  po::options_description d("options");
  d.add_options()("xstats", po::bool_switch(), "also list the driver's non-zero xstats");
  auto p = parse_cmd(c.args, d, 0, "sluicectl ports [--xstats] [--json]");
  const bool xstats = p.vm["xstats"].as<bool>();
  return read_answer(c, {{"cmd", "ports"}},
                     [xstats](const json& a) { return render_ports(a, xstats); });
}

int cmd_top(context& c) {
  auto p = parse_cmd(c.args, top_options(), 0, "sluicectl top [--iterations N] [--interval-ms MS]");
  const int n = p.vm["iterations"].as<int>();
  const bool tty = ::isatty(STDOUT_FILENO);
  json prev;
  bool have_prev = false;
  for (int i = 0; n == 0 || i < n; ++i) {
    if (i > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(p.vm["interval-ms"].as<int>()));
    auto cfg = c.client->call({{"cmd", "config.get"}});
    auto st = c.client->call({{"cmd", "status"}});
    auto s = c.client->call({{"cmd", "stats"}});
    if (!cfg || !st || !s)
      return fail(!cfg ? cfg.error_message() : !st ? st.error_message() : s.error_message());
    if (c.json_out) {
      print(json{{"status", st.value()}, {"stats", s.value()}}.dump() + "\n");
    } else {
      // A plain terminal: clear with ANSI only on a tty, else separate screens.
      print(tty ? "\033[H\033[2J" : (i ? "----\n" : ""));
      print(render_top((*cfg)["config"], st.value(), s.value(), have_prev ? &prev : nullptr));
    }
    std::fflush(stdout);
    prev = s.value();
    have_prev = true;
  }
  return 0;
}

struct command {
  const char* words;
  const char* summary;
  std::function<int(context&)> run;
};

const std::vector<command>& commands() {
  static const std::vector<command> list = {
      {"service add", "NAME --vip ADDR --port N [--proto] [--mode] [...]: add a service",
       cmd_service_add},
      {"service del", "NAME: remove a service", cmd_service_del},
      {"service set", "NAME [options]: change a service's fields", cmd_service_set},
      {"service list", "list services", cmd_service_list},
      {"backend add", "SERVICE ADDR [--port N] [--weight W] [--state S]: add a backend",
       cmd_backend_add},
      {"backend del", "SERVICE ADDR [--port N]: remove a backend", cmd_backend_del},
      {"backend set-weight", "SERVICE ADDR WEIGHT [--port N]: change a weight",
       cmd_backend_set_weight},
      {"backend drain",
       "SERVICE ADDR [--port N] [--wait [--timeout S]]: no new flows, existing ones continue",
       [](context& c) { return cmd_backend_drain(c, "backend.drain"); }},
      {"backend undrain", "SERVICE ADDR [--port N]: back to up",
       [](context& c) { return cmd_backend_drain(c, "backend.undrain"); }},
      {"backend list", "SERVICE: list a service's backends", cmd_backend_list},
      {"apply", "-f FILE [--dry-run]: make the config FILE live (prints the diff)", cmd_apply},
      {"save", "print the live config as commands, defaults omitted (for restore)", cmd_save},
      {"restore", "[-f FILE] [--dry-run]: replace the live config by saved commands", cmd_restore},
      {"status", "process health, generation, workers' acknowledgements, uptime", cmd_status},
      {"list", "[SERVICE] [--stats|--rate [--interval-ms MS]]: ipvsadm -Ln style table", cmd_list},
      {"zero",
       "[SERVICE]: counters of list --stats/--rate and top count from 0 again (all services, "
       "or one service and its backends; /metrics keeps the raw counters)",
       cmd_zero},
      {"top", "[--iterations N] [--interval-ms MS]: live view, refreshed every second", cmd_top},
      {"conns",
       "[SERVICE] [--backend ADDR[:PORT]] [--client PREFIX] [--state S] [--limit N]: tracked "
       "flows, read from the running dataplane (all of them by default)",
       cmd_conns},
      {"ports", "[--xstats]: NIC/port, queue, AF_XDP socket and vip_steer counters", cmd_ports},
      {"instance drain", "withdraw every BGP route of this instance (flows continue)",
       [](context& c) { return simple(c, "instance.drain", render_drain); }},
      {"instance undrain", "announce again where services qualify",
       [](context& c) { return simple(c, "instance.undrain", render_drain); }},
      {"bgp", "announced and withdrawn prefixes, and why",
       [](context& c) { return simple(c, "bgp", render_bgp); }},
      {"peers", "peer instances: state, lost messages, table digests equal or not",
       [](context& c) { return simple(c, "peers", render_peers); }},
  };
  return list;
}

// Commands whose words start with `prefix` ("" = all).
std::string command_list(const std::string& prefix) {
  std::string o;
  for (const auto& c : commands())
    if (std::string(c.words).rfind(prefix, 0) == 0)
      o += fmt::format("  {:<19} {}\n", c.words, c.summary);
  return o;
}

std::string main_help() {
  return "usage: sluicectl [--socket PATH | --instance NAME] [--json] COMMAND [ARGS]\n"
         "       sluicectl --version\n\n"
         "  --socket PATH    API socket (default /run/sluice/NAME.sock)\n"
         "  --instance NAME  instance (default 'default')\n"
         "  --json           machine-readable output\n"
         "  --version        print the version and exit\n\ncommands:\n" +
         command_list("") + "\n`sluicectl COMMAND --help` shows a command's options.\n";
}

// The options a command accepts, as its --help prints them.
std::optional<po::options_description> command_options(const std::string& w) {
  if (w == "service add" || w == "service set")
    return service_options();
  if (w == "backend add")
    return backend_options();
  if (w == "backend drain")
    return drain_options();
  if (w == "backend del" || w == "backend set-weight" || w == "backend undrain")
    return port_only();
  if (w == "apply")
    return apply_options();
  if (w == "restore")
    return restore_options();
  if (w == "list")
    return list_options();
  if (w == "top")
    return top_options();
  if (w == "conns")
    return conns_options();
  return std::nullopt;
}

std::string command_help(const command& c) {
  std::ostringstream o;
  o << "usage: sluicectl " << c.words << " " << c.summary << "\n";
  const std::string w = c.words;
  if (auto opts = command_options(w))
    o << "\n" << *opts;
  if (w == "save" || w == "restore")
    o << "\nThe saved text is one command per line: an optional 'limits --flow-table-size N\n"
         "--maglev-size M' line (only when they differ from the defaults), then\n"
         "'service add' and 'backend add' lines with only the non-default options.\n"
         "restore reads exactly what save prints; '#' starts a comment line.\n";
  if (w == "conns")
    o << "\nColumns: PRO STATE IDLE CLIENT VIP BACKEND SERVICE (--json adds the worker).\n"
         "Flows are fetched page by page, so any number can be listed.\n";
  o << "\nglobal options: --socket PATH, --instance NAME, --json\n";
  return o.str();
}

} // namespace

int main(int argc, char** argv) {
  std::vector<std::string> a(argv + 1, argv + argc);
  std::string socket, instance = "default";
  bool json_out = false, help = false, version = false;
  std::vector<std::string> rest;
  for (size_t i = 0; i < a.size(); ++i) {
    if ((a[i] == "--socket" || a[i] == "--instance") && i + 1 < a.size()) {
      (a[i] == "--socket" ? socket : instance) = a[i + 1];
      ++i;
    } else if (a[i] == "--json") {
      json_out = true;
    } else if (a[i] == "--help" || a[i] == "-h") {
      help = true;
    } else if (a[i] == "--version" && rest.empty()) {
      version = true;
    } else {
      rest.push_back(a[i]);
    }
  }
  if (socket.empty())
    socket = fmt::format("/run/sluice/{}.sock", instance);
  const command* cmd = nullptr;
  size_t used = 0;
  for (const auto& c : commands()) {
    auto w = split_words(c.words);
    if (rest.size() >= w.size() && std::equal(w.begin(), w.end(), rest.begin())) {
      cmd = &c;
      used = w.size();
      break;
    }
  }
  if (version) {
    print(fmt::format("sluicectl {}\n", SLUICE_VERSION));
    return 0;
  }
  if (!cmd) {
    if (rest.empty()) {
      print(main_help());
      return help ? 0 : 2;
    }
    // A command group alone ("sluicectl service", with or without --help):
    // its commands. An unknown word is an error even with --help.
    if (rest.size() == 1 && !command_list(rest[0] + " ").empty()) {
      print(fmt::format("usage: sluicectl {} SUBCOMMAND ...\n\ncommands:\n{}\n`sluicectl {} "
                        "SUBCOMMAND --help` shows its options.\n",
                        rest[0], command_list(rest[0] + " "), rest[0]));
      return help ? 0 : 2;
    }
    std::fprintf(stderr, "sluicectl: unknown command '%s' (see sluicectl --help)\n",
                 rest[0].c_str());
    return 2;
  }
  if (help) {
    print(command_help(*cmd));
    return 0;
  }
  api_client client(socket);
  context ctx{socket, json_out, {rest.begin() + long(used), rest.end()}, &client};
  try {
    return cmd->run(ctx);
  } catch (const usage_error& e) {
    std::fprintf(stderr, "sluicectl: %s\n", e.message.c_str());
    return 2;
  }
}
