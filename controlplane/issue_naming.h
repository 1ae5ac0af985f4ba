// Turns the field paths that decoding and validation record
// ("services[3].backends[0].weight") into what an operator reads in the file
// ("service web: backend 10.0.0.1:8080: weight"). Paths stay index-based
// internally because the line table and the decoder key on them; only the
// words shown to people are rewritten, once, just before formatting. A
// service without a usable name falls back to its position ("service #4"),
// a backend without a usable address to its position within the service.
#pragma once

#include <string>
#include <vector>

#include "config_decode.h"
#include "config_model.h"

namespace sluice::cp {

// "service NAME" (or "service #N", 1-based, when the name is not valid).
std::string service_label(const named_service& s, size_t index);
// "backend ADDR:PORT" (or "backend #N" when the address is unset).
std::string backend_label(const backend_config& b, uint16_t service_port, size_t index);

// Rewrites every path rooted at "services[i]" through `c`.
void name_issue_paths(std::vector<located_issue>& issues, const cp_config& c);
// Rewrites paths rooted at `root` ("service", as the API decodes one service).
void name_issue_paths(std::vector<located_issue>& issues, const named_service& s,
                      const std::string& root);
// Rewrites paths rooted at `root` ("backend", as the API decodes one backend).
void name_issue_paths(std::vector<located_issue>& issues, const backend_config& b,
                      const std::string& root);

} // namespace sluice::cp
