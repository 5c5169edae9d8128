// The fixed wall clock the feature-message fuzzer validates against, and the capture time
// its seed messages carry (a sweep taken 50 ms before), so that a run does not depend on
// when it happens.
#ifndef QV2X_FUZZ_FUZZ_CLOCK_H_
#define QV2X_FUZZ_FUZZ_CLOCK_H_

#include <cstdint>

namespace qv2x::fuzz {

inline constexpr int64_t kNowNs = 1'700'000'000'000'000'000;  // 2023-11-14T22:13:20Z
inline constexpr int64_t kSeedCaptureNs = kNowNs - 50'000'000;

}  // namespace qv2x::fuzz

#endif  // QV2X_FUZZ_FUZZ_CLOCK_H_
