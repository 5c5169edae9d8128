// Counts of values in [0, 1] (scores, IoUs) over ten bins of 0.1; the last bin includes 1.
#ifndef QV2X_CORE_EVAL_UNIT_HISTOGRAM_H_
#define QV2X_CORE_EVAL_UNIT_HISTOGRAM_H_

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <numeric>

namespace qv2x {

struct UnitHistogram {
  static constexpr int kBins = 10;
  std::array<int64_t, kBins> counts{};

  // Values outside [0, 1] land in the end bins; NaN is not counted.
  void Add(double v) {
    if (std::isnan(v)) return;
    const int bin = static_cast<int>(std::floor(std::clamp(v, 0.0, 1.0) * kBins));
    ++counts[std::min(bin, kBins - 1)];
  }
  int64_t Total() const { return std::accumulate(counts.begin(), counts.end(), int64_t{0}); }
};

}  // namespace qv2x

#endif  // QV2X_CORE_EVAL_UNIT_HISTOGRAM_H_
