// What a fuzz target asserts beyond "no crash": a broken invariant prints why and aborts,
// which libFuzzer (and the replay program, through the test's exit status) reports.
#ifndef QV2X_FUZZ_FUZZ_CHECK_H_
#define QV2X_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define QV2X_FUZZ_CHECK(cond, what)                                                                \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      std::fprintf(stderr, "%s:%d: invariant broken: %s (%s)\n", __FILE__, __LINE__, #cond, what); \
      std::abort();                                                                                \
    }                                                                                              \
  } while (0)

#endif  // QV2X_FUZZ_FUZZ_CHECK_H_
