// The state file: the live config persisted after every committed change, so
// a restarted control plane resumes where it stopped.
//
// Durable writes: a temporary file next to it (O_EXCL | O_NOFOLLOW), fsync,
// the current file hard-linked as PATH.prev, rename over, fsync the
// directory. A crash at any point leaves the old or the new file, never a torn
// one; PATH.prev is the last good file before it.
//
// Sealed content: the YAML ends with a trailer line
//   "# sluice-state-end bytes=N fnv1a64=HEX"
// over the N bytes before it. A file without a valid trailer (empty, cut at a
// line boundary by a disk problem, edited by hand) is refused on load rather
// than read as "zero services": a silent outage is worse than a refused start.
#pragma once

#include <string>

#include "config_model.h"
#include "result.h"
#include "shm_abi.h"

namespace sluice::cp {

result<void> write_file_atomic(const std::string& path, const std::string& content);

// `yaml` followed by its trailer.
std::string seal_state(const std::string& yaml);
// The YAML of a sealed text, or why it is refused.
result<std::string> unseal_state(const std::string& text);

// The previous good state file kept by write_file_atomic.
inline std::string previous_state_path(const std::string& path) {
  return path + ".prev";
}

// Reads, unseals and validates a state file (bounded like a config file).
result<cp_config> load_state_file(const std::string& path, const abi::capacities& caps);

} // namespace sluice::cp
