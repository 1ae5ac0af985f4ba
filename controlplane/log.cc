#include "log.h"

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

namespace sluice::cp {

namespace {

std::string g_program = "sluice-controlplane";
bool g_json = false;

const char* level_name(log_level l) {
  switch (l) {
  case log_level::debug:
    return "debug";
  case log_level::info:
    return "info";
  case log_level::warning:
    return "warning";
  case log_level::error:
    return "error";
  }
  return "info";
}

// syslog priorities: debug 7, info 6, warning 4, error 3.
int syslog_priority(log_level l) {
  switch (l) {
  case log_level::debug:
    return 7;
  case log_level::info:
    return 6;
  case log_level::warning:
    return 4;
  case log_level::error:
    return 3;
  }
  return 6;
}

std::string utc_now() {
  const auto now = std::chrono::system_clock::now();
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  const std::time_t secs = std::time_t(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms % 1000);
}

bool journal() {
  static const bool j = std::getenv("JOURNAL_STREAM") != nullptr;
  return j;
}

void emit(const std::string& line) {
  const std::string l = line + "\n";
  size_t done = 0;
  while (done < l.size()) {
    ssize_t n = ::write(STDERR_FILENO, l.data() + done, l.size() - done);
    if (n <= 0)
      return; // nowhere to report a failing stderr
    done += size_t(n);
  }
}

} // namespace

void log_init(std::string_view program, log_format format) {
  g_program = std::string(program);
  g_json = format == log_format::json;
}

bool parse_log_format(std::string_view text, log_format& out) {
  if (text == "text")
    out = log_format::text;
  else if (text == "json")
    out = log_format::json;
  else
    return false;
  return true;
}

std::string format_log_line(log_level level, std::string_view message, bool json, bool jrnl,
                            const std::string& extra_json_fields) {
  if (json) {
    nlohmann::json j = {{"ts", utc_now()},
                        {"level", level_name(level)},
                        {"program", g_program},
                        {"msg", std::string(message)}};
    if (!extra_json_fields.empty()) {
      const auto extra = nlohmann::json::parse(extra_json_fields, nullptr, false);
      if (extra.is_object())
        j.update(extra);
    }
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  if (jrnl)
    return fmt::format("<{}>{}: {}", syslog_priority(level), level_name(level), message);
  return fmt::format("{} {} {}: {}", utc_now(), level_name(level), g_program, message);
}

void log_write(log_level level, std::string_view message) {
  emit(format_log_line(level, message, g_json, journal()));
}

void log_audit(const audit_record& a) {
  std::string who = a.uid >= 0 ? fmt::format("uid {} pid {}", a.uid, a.pid) : "unknown peer";
  std::string text;
  if (a.ok) {
    std::string diff;
    for (const auto& d : a.diff)
      diff += (diff.empty() ? "" : "; ") + d;
    text = fmt::format("audit: {} by {}: generation {}: {}", a.command, who, a.generation,
                       diff.empty() ? "no change" : diff);
  } else {
    text = fmt::format("audit: {} by {} refused: {}", a.command, who, a.error);
  }
  nlohmann::json extra = {{"audit", true},  {"cmd", a.command},  {"uid", a.uid},
                          {"pid", a.pid},   {"ok", a.ok},        {"generation", a.generation},
                          {"diff", a.diff}, {"target", a.target}};
  if (!a.ok)
    extra["error"] = a.error;
  emit(format_log_line(a.ok ? log_level::info : log_level::warning, text, g_json, journal(),
                       g_json ? extra.dump() : ""));
}

} // namespace sluice::cp
