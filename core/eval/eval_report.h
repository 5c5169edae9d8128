// Human- and machine-readable forms of an EvalResult (used by `qv2x eval`).
#ifndef QV2X_CORE_EVAL_EVAL_REPORT_H_
#define QV2X_CORE_EVAL_EVAL_REPORT_H_

#include <string>

#include "core/eval/average_precision.h"

namespace qv2x {

// {"ap": {"vehicle": {"0.3": a, "0.5": b, "0.7": c}, "pedestrian": {...}, "truck": {...}},
//  "map": {"0.3": ..., "0.5": ..., "0.7": ...}} — threshold keys printed with %g.
std::string EvalResultJson(const EvalResult& r);

// A fixed-width table: one row per class (AP per threshold, GT and prediction counts)
// and a mAP row, then a line naming the sort order and the frame count.
std::string EvalResultTable(const EvalResult& r, ApSortOrder order);

}  // namespace qv2x

#endif  // QV2X_CORE_EVAL_EVAL_REPORT_H_
