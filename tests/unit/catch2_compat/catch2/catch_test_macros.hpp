// Catch2 v3 header name on top of Catch2 v2 (Debian bookworm ships v2 only).
// Only used when `catch2-with-main` (v3) is not installed; see ../../meson.build.
#pragma once
#include <catch2/catch.hpp>
