// Text views of API answers for sluicectl: the ipvsadm -Ln style list (with
// --stats or --rate), status and one `top` screen. Pure functions of JSON, so
// they are testable without a daemon.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace sluice::ctl {

enum class list_kind { plain, stats, rate };

// `config` is the API's config object, `stats` a "stats" answer; for rates
// `prev` is an earlier "stats" answer (rates = difference / elapsed time).
std::string render_list(const nlohmann::json& config, const nlohmann::json& stats,
                        const nlohmann::json* prev, list_kind kind);
std::string render_status(const nlohmann::json& status);
// Rows of a "conns" answer, ipvsadm -Lnc style: one line per flow, about 100
// columns for IPv4 (IPv6 rows are wider); `header` adds the column names.
std::string render_conns(const nlohmann::json& flows, bool header);
// An idle time in ms as 850ms, 12.3s, 4m05s or 2h07m.
std::string format_idle(uint64_t ms);
std::string render_top(const nlohmann::json& config, const nlohmann::json& status,
                       const nlohmann::json& stats, const nlohmann::json* prev);

} // namespace sluice::ctl
