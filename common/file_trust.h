// Checks before a privileged daemon trusts a path: the files it creates or
// opens as root (instance lock, state file, shared memory) must not be
// redirectable or replaceable by another local user. A symlink planted in a
// world-writable directory would make root truncate any file; an object
// pre-created by another user, or writable by everyone, would let that user
// feed forged tables to the dataplane. Opens use O_NOFOLLOW; these checks
// cover what O_NOFOLLOW cannot (the directory, the owner, the mode).
#pragma once

#include <string>

#include "result.h"

namespace sluice {

// `dir` is owned by root or by this process's user, and is not writable by
// group or others unless sticky (like /tmp, /dev/shm): nobody else can swap a
// file in it.
result<void> check_trusted_dir(const std::string& dir);

// The open file `fd` (named `path` in messages) is a regular file owned by
// this process's user and not writable by others.
result<void> check_owned_file(int fd, const std::string& path);

// The directory part of `path` ("." when none).
std::string dir_of(const std::string& path);

} // namespace sluice
