// absl::Status <-> grpc::Status at the service boundary (SPEC §11).
#ifndef QV2X_SERVICES_STATUS_CONVERT_H_
#define QV2X_SERVICES_STATUS_CONVERT_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace qv2x::services {

grpc::Status ToGrpc(const absl::Status& status);
absl::Status FromGrpc(const grpc::Status& status);

}  // namespace qv2x::services

#endif  // QV2X_SERVICES_STATUS_CONVERT_H_
