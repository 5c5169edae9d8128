// Nearest-rank percentile of a sample (q in [0, 1]); 0 for an empty sample. Used by the
// run summaries and benchmarks that report p50 / p95.
#ifndef QV2X_CORE_COMMON_PERCENTILE_H_
#define QV2X_CORE_COMMON_PERCENTILE_H_

#include <algorithm>
#include <cmath>
#include <vector>

namespace qv2x {

inline double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

}  // namespace qv2x

#endif  // QV2X_CORE_COMMON_PERCENTILE_H_
