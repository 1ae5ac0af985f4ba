// main() for the Catch2 v2 fallback (v3's catch2-with-main provides its own).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
