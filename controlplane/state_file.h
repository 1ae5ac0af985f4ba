// Durable writes of the state file: write a temporary file next to it, fsync
// it, rename it over the old one, fsync the directory. A crash at any point
// leaves either the old or the new file, never a torn one.
#pragma once

#include <string>

#include "result.h"

namespace sluice::cp {

result<void> write_file_atomic(const std::string& path, const std::string& content);

} // namespace sluice::cp
