#include "config_load.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>

#include "config_validate.h"
#include "input_limits.h"
#include "issue_naming.h"

namespace sluice::cp {

std::string format_issues(const std::string& label, std::vector<located_issue> issues) {
  std::stable_sort(issues.begin(), issues.end(),
                   [](const auto& a, const auto& b) { return a.line < b.line; });
  std::string out;
  const size_t shown = std::min(issues.size(), input_limits::max_issues);
  for (size_t k = 0; k < shown; ++k) {
    const auto& i = issues[k];
    if (!out.empty())
      out += '\n';
    if (!label.empty())
      out += i.line > 0 ? fmt::format("{}:{}: ", label, i.line) : label + ": ";
    out += i.what.path.empty() ? i.what.message : i.what.path + ": " + i.what.message;
  }
  if (issues.size() > shown)
    out += fmt::format("\n(more errors not shown: fix these first)");
  return out;
}

std::vector<located_issue> all_issues(const decode_result& d, const abi::capacities& caps) {
  auto issues = d.issues;
  // Semantic checks on everything that decoded: a service with a decoding
  // error is left out of them (defaults left by a bad field would produce
  // confusing follow-up errors), every other one is checked in the same run.
  validate_hints hints;
  hints.lines = &d.lines;
  for (const auto& i : d.issues)
    if (i.what.path.rfind("services[", 0) == 0)
      hints.undecoded.insert(std::strtoul(i.what.path.c_str() + 9, nullptr, 10));
  if (issues.size() <= input_limits::max_issues)
    for (auto& i : validate_config(d.config, caps, hints))
      issues.push_back({line_of(d.lines, i.path), i});
  name_issue_paths(issues, d.config);
  return issues;
}

namespace {

// yaml-cpp 0.7 loops, allocating without bound, on a block-context line that
// starts with ',' (e.g. ", a\nkey: v", found by fuzz_config). Such a line is
// not valid YAML outside a flow collection, so it is refused before parsing.
// Tracks flow depth ([ { ] } outside quotes and comments) to allow a ',' that
// starts a continuation line inside a flow collection.
result<void> check_yaml_lines(const std::string& text, const std::string& label) {
  int depth = 0, line = 1;
  bool at_line_start = true;
  char quote = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') {
      ++line;
      at_line_start = true;
      continue;
    }
    if (quote) {
      if (c == '\\' && quote == '"')
        ++i;
      else if (c == quote)
        quote = 0;
      continue;
    }
    if (at_line_start && (c == ' ' || c == '\t'))
      continue;
    if (at_line_start && c == ',' && depth == 0)
      return make_error(fmt::format("{}:{}: a line cannot start with ',' outside a flow "
                                    "collection ([...] or {{...}})",
                                    label, line));
    // A quote opens a quoted scalar only where a token starts: an apostrophe
    // inside a plain scalar ("203.0'113", "clients' router") is just a
    // character, and treating it as a quote hid the lines after it.
    const bool token_start = at_line_start || (i > 0 && std::strchr(" \t:-[{,?", text[i - 1]));
    const bool comment_start = at_line_start || text[i - 1] == ' ' || text[i - 1] == '\t';
    at_line_start = false;
    if (c == '#' && comment_start) {
      while (i + 1 < text.size() && text[i + 1] != '\n')
        ++i;
    } else if ((c == '"' || c == '\'') && token_start) {
      quote = c;
    } else if (c == '[' || c == '{') {
      ++depth;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return {};
}

// YAML allows only printable characters (YAML 1.2, 5.1): TAB, LF, CR and
// from 0x20 up, without DEL and the C1 controls other than NEL. yaml-cpp
// treats a NUL as the end of the stream in some states and not in others,
// which is how fuzz_config reached its unbounded document loop; a control
// character in a config is a damaged file either way.
size_t non_printable_at(const std::string& text) {
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = uint8_t(text[i]);
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f)
      return i;
    // UTF-8 is already checked: C1 controls are U+0080..U+009F = C2 80..C2 9F.
    if (c == 0xc2 && i + 1 < text.size()) {
      const auto n = uint8_t(text[i + 1]);
      if (n >= 0x80 && n <= 0x9f && n != 0x85)
        return i;
    }
  }
  return std::string::npos;
}

// Counts documents without building nodes, and notices a parser that stops
// making progress. yaml-cpp 0.7's LoadAll loops "while another document
// parses": a token its document parser does not consume at the top level
// (a ',' after a quoted scalar, an anchor or a flow collection: '"x", y',
// '&a , b', '[a], b') yields an empty document at the same position forever,
// allocating until the process dies. Two documents that start at the same
// mark are that loop, reported as the error it is.
class document_scan final : public YAML::EventHandler {
public:
  std::vector<YAML::Mark> starts;
  void OnDocumentStart(const YAML::Mark& m) override { starts.push_back(m); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

} // namespace

result<YAML::Node> parse_yaml_bounded(const std::string& text, const std::string& label) {
  if (text.size() > input_limits::max_config_bytes)
    return make_error(fmt::format("{}: {} bytes, more than the {} a config may hold", label,
                                  text.size(), input_limits::max_config_bytes));
  if (const size_t at = invalid_utf8_at(text); at != std::string::npos) {
    const auto line = 1 + std::count(text.begin(), text.begin() + long(at), '\n');
    return make_error(fmt::format("{}:{}: not valid UTF-8 (byte 0x{:02x} at offset {}); save "
                                  "the file as UTF-8",
                                  label, line, uint8_t(text[at]), at));
  }
  if (const size_t at = non_printable_at(text); at != std::string::npos) {
    const auto line = 1 + std::count(text.begin(), text.begin() + long(at), '\n');
    return make_error(fmt::format("{}:{}: control character 0x{:02x} at offset {}: a config "
                                  "holds printable text only; the file is damaged or not YAML",
                                  label, line, uint8_t(text[at]), at));
  }
  if (auto l = check_yaml_lines(text, label); !l)
    return l.err();
  YAML::Node root;
  try {
    document_scan scan;
    {
      std::istringstream in(text);
      YAML::Parser parser(in);
      // Two documents are already an error; the third lets a stall after
      // a first good document ('"x", y') be told from a real second one,
      // and the bound is what keeps a stalled parser from looping.
      while (scan.starts.size() < 3 && parser.HandleNextDocument(scan)) {
      }
    }
    for (size_t k = 1; k < scan.starts.size(); ++k) {
      const auto& a = scan.starts[k - 1];
      const auto& b = scan.starts[k];
      if (a.pos != b.pos)
        continue;
      const bool inside = b.pos >= 0 && size_t(b.pos) < text.size();
      return make_error(fmt::format("{}:{}:{}: malformed YAML: unexpected {} where a value or "
                                    "key should start (a ',' belongs inside [...] or {{...}})",
                                    label, b.line + 1, b.column + 1,
                                    inside ? fmt::format("'{}'", text[size_t(b.pos)])
                                           : std::string("end of input")));
    }
    if (scan.starts.size() > 1)
      return make_error(fmt::format("{}:{}: a second YAML document ('---'): a config is one "
                                    "document; merge them or remove the separator",
                                    label, scan.starts[1].line + 1));
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return make_error(fmt::format("{}:{}:{}: malformed YAML: {}", label, e.mark.line + 1,
                                  e.mark.column + 1, e.msg));
  }
  if (auto b = check_yaml_tree(root); !b)
    return make_error(fmt::format("{}: {}", label, b.error_message()));
  return root;
}

result<cp_config> load_config_text(const std::string& text, const std::string& label,
                                   const abi::capacities& caps) {
  auto root = parse_yaml_bounded(text, label);
  if (!root)
    return root.err();
  auto d = decode_config(root.value());
  auto issues = all_issues(d, caps);
  if (!issues.empty())
    return make_error(format_issues(label, std::move(issues)));
  return std::move(d.config);
}

result<std::string> read_file_bounded(const std::string& path, size_t max_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0)
    return make_error(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return make_error(fmt::format("{}: not a regular file", path));
  }
  std::string text;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      auto e = make_error(fmt::format("{}: cannot read: {}", path, std::strerror(errno)));
      ::close(fd);
      return e;
    }
    if (n == 0)
      break;
    if (text.size() + size_t(n) > max_bytes) {
      ::close(fd);
      return make_error(
          fmt::format("{}: larger than the {} bytes a config may hold", path, max_bytes));
    }
    text.append(buf, size_t(n));
  }
  ::close(fd);
  return text;
}

result<cp_config> load_config_file(const std::string& path, const abi::capacities& caps) {
  auto text = read_file_bounded(path, input_limits::max_config_bytes);
  if (!text)
    return text.err();
  return load_config_text(text.value(), path, caps);
}

} // namespace sluice::cp
