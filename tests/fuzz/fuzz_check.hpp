#pragma once
// FUZZ_CHECK(cond, what): a property of a fuzz target. A violation prints the property and
// aborts, which libFuzzer reports as a crash (saving the input) and the replay test as a
// failure. Unlike assert() it stays on in release builds.
#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond, what)                                                              \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      std::fprintf(stderr, "%s:%d: property violated: %s (%s)\n", __FILE__, __LINE__, what, \
                   #cond);                                                                  \
      std::abort();                                                                         \
    }                                                                                       \
  } while (0)
