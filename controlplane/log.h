// The control plane's log: one line per event on stderr, with a UTC timestamp
// and a level, as text (default) or JSON lines (--log-format json) for a log
// shipper. Under systemd (JOURNAL_STREAM set) text lines start with the
// syslog priority prefix ("<6>") instead of a timestamp, so the journal
// records the level and its own time. Audit lines record every change made
// through the API: who (the socket peer's uid and pid), what (the command and
// its diff) and the resulting generation, or why it was refused.
//
// Owning thread: any; each line is one write(2), so lines of different
// threads never interleave.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace sluice::cp {

enum class log_level { debug, info, warning, error };
enum class log_format { text, json };

// Set once at start-up, before other threads log.
void log_init(std::string_view program, log_format format);
// "text" or "json"; false for anything else.
bool parse_log_format(std::string_view text, log_format& out);

void log_write(log_level level, std::string_view message);
inline void log_info(std::string_view m) {
  log_write(log_level::info, m);
}
inline void log_warning(std::string_view m) {
  log_write(log_level::warning, m);
}
inline void log_error(std::string_view m) {
  log_write(log_level::error, m);
}

struct audit_record {
  int uid = -1; // -1: unknown (not a Unix-socket peer)
  int pid = -1;
  std::string command;           // API command, e.g. "backend.set-weight"
  std::string target;            // service / backend named by the request, if any
  std::vector<std::string> diff; // the change, one line per item
  uint64_t generation = 0;       // after the change
  bool ok = true;
  std::string error; // when refused
};
void log_audit(const audit_record& a);

// The line log_write would print, without the trailing newline (for tests).
std::string format_log_line(log_level level, std::string_view message, bool json, bool journal,
                            const std::string& extra_json_fields = "");

} // namespace sluice::cp
