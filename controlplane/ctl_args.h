// Command-line options of `sluicectl service add|set` and `backend add` turned
// into the API's JSON objects. Shared by the commands and by `restore`, whose
// lines are those same commands, so what `save` prints `restore` reads back.
// Only syntax is checked here; ranges and names are the daemon's job (one
// validator for every front end).
#pragma once

#include <boost/program_options.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "result.h"

namespace sluice::ctl {

boost::program_options::options_description service_options();
boost::program_options::options_description backend_options();

// The fields given in `args` (tokens after the service name).
result<nlohmann::json> parse_service_fields(const std::vector<std::string>& args);
// The backend object for ADDR and the options in `args` (tokens after ADDR).
result<nlohmann::json> parse_backend_fields(const std::string& addr,
                                            const std::vector<std::string>& args);

// `save`: the config (API "config" object) as commands, one per line.
std::string save_text(const nlohmann::json& config);
// `restore`: those lines back into a config object (for `apply`). Blank lines
// and lines starting with '#' are ignored. Every bad line is reported in one
// error ("line N: ..." each); `service_lines` (when given) receives the line
// of each `service add`, so the daemon's errors can be pointed back at it.
result<nlohmann::json> restore_config(const std::string& text,
                                      std::map<std::string, int>* service_lines = nullptr);
// "service NAME: ..." lines of a daemon error become "service NAME (line N): ...".
std::string locate_services(const std::string& error, const std::map<std::string, int>& lines);

std::vector<std::string> split_words(const std::string& line);

} // namespace sluice::ctl
