// Evaluation results on the wire: AP of every class at IoU 0.3 / 0.5 / 0.7 as
// qv2x.v1.ClassAp, for the services that report AP (fusion, quantizer).
#ifndef QV2X_SERVICES_EVAL_PROTO_H_
#define QV2X_SERVICES_EVAL_PROTO_H_

#include <vector>

#include "core/eval/average_precision.h"
#include "qv2x/v1/common.pb.h"

namespace qv2x::services {

// One entry per class in head order; expects the default thresholds (0.3, 0.5, 0.7).
std::vector<v1::ClassAp> ClassAps(const EvalResult& result);

}  // namespace qv2x::services

#endif  // QV2X_SERVICES_EVAL_PROTO_H_
