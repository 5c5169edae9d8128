#include "services/log_limiter.h"

#include <gtest/gtest.h>

#include "services/log.h"

namespace qv2x::services {
namespace {

TEST(LogLimiterTest, BurstThenOnePerIntervalPerKeyWithTheCountHeldBack) {
  LogLimiter limiter(3, absl::Seconds(10));
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  uint64_t held = 99;
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(limiter.Allow("pose", t0, &held));
    EXPECT_EQ(held, 0u);
  }
  for (int i = 0; i < 50; ++i) EXPECT_FALSE(limiter.Allow("pose", t0 + absl::Seconds(1), &held));
  EXPECT_TRUE(limiter.Allow("grid_shape", t0, &held));  // keys are independent
  EXPECT_FALSE(limiter.Allow("pose", t0 + absl::Seconds(9), &held));
  EXPECT_TRUE(limiter.Allow("pose", t0 + absl::Seconds(10), &held));
  EXPECT_EQ(held, 51u);
  EXPECT_FALSE(limiter.Allow("pose", t0 + absl::Seconds(11), &held));
}

TEST(ClipForLogTest, BoundedPrintableAndSaysWhatWasLeftOut) {
  EXPECT_EQ(ClipForLog("abc"), "abc");
  EXPECT_EQ(ClipForLog(std::string(100, 'x'), 4), "xxxx...(100 bytes)");
  EXPECT_EQ(ClipForLog(std::string("a\nb\x00\xff", 5)), "a\\x0ab\\x00\\xff");
}

}  // namespace
}  // namespace qv2x::services
