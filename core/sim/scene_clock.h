// Frame ids shared by every service of a scene: a frame id is a tick of the scene clock,
// tick t = scenario · frames_per_scenario + frame index (wrapping over all scenarios), so
// agents that never talk to each other name the same instant the same way.
#ifndef QV2X_CORE_SIM_SCENE_CLOCK_H_
#define QV2X_CORE_SIM_SCENE_CLOCK_H_

#include <chrono>
#include <cmath>
#include <cstdint>

#include "core/sim/scene_config.h"

namespace qv2x::sim {

struct SceneInstant {
  int scenario = 0;
  int index = 0;
};

inline SceneInstant InstantOf(const SceneConfig& c, uint64_t frame_id) {
  const uint64_t per = static_cast<uint64_t>(c.frames_per_scenario);
  const uint64_t t = frame_id % (per * static_cast<uint64_t>(c.scenarios));
  return {static_cast<int>(t / per), static_cast<int>(t % per)};
}

// Wall-clock time (ns since the Unix epoch): capture times and ticks are on this clock.
inline int64_t NowUnixNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The tick at wall-clock time `now_ns` for a scene clock started at `epoch_ns`.
inline uint64_t TickAt(const SceneConfig& c, int64_t now_ns, int64_t epoch_ns) {
  if (now_ns <= epoch_ns) return 0;
  return static_cast<uint64_t>(std::floor((now_ns - epoch_ns) * 1e-9 * c.rate_hz));
}

// Wall-clock time of tick `t`.
inline int64_t TickTimeNs(const SceneConfig& c, uint64_t t, int64_t epoch_ns) {
  return epoch_ns + static_cast<int64_t>(std::llround(static_cast<double>(t) / c.rate_hz * 1e9));
}

}  // namespace qv2x::sim

#endif  // QV2X_CORE_SIM_SCENE_CLOCK_H_
