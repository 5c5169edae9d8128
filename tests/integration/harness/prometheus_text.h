// A strict reader of the Prometheus text exposition format, enough to check that a
// service's /metrics parses and to read values: every sample line must be
// `name{labels} value` (labels optional) with a valid metric name and a number.
#ifndef QV2X_TESTS_INTEGRATION_HARNESS_PROMETHEUS_TEXT_H_
#define QV2X_TESTS_INTEGRATION_HARNESS_PROMETHEUS_TEXT_H_

#include <map>
#include <string>

#include "absl/status/statusor.h"

namespace qv2x::testing {

// Samples keyed by the series exactly as written: `name` or `name{a="x",b="y"}`.
using Samples = std::map<std::string, double>;

absl::StatusOr<Samples> ParsePrometheusText(const std::string& text);

// Sum of every series of metric `name` whose labels include all of `labels` (each
// `key="value"`).
double SumOf(const Samples& s, const std::string& name,
             const std::vector<std::string>& labels = {});
bool HasMetric(const Samples& s, const std::string& name);

}  // namespace qv2x::testing

#endif  // QV2X_TESTS_INTEGRATION_HARNESS_PROMETHEUS_TEXT_H_
