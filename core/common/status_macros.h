// Early-return helpers for absl::Status / absl::StatusOr (Triton's RETURN_IF_ERROR style).
#ifndef QV2X_CORE_COMMON_STATUS_MACROS_H_
#define QV2X_CORE_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define QV2X_CONCAT_INNER_(a, b) a##b
#define QV2X_CONCAT_(a, b) QV2X_CONCAT_INNER_(a, b)

#define QV2X_RETURN_IF_ERROR(expr)               \
  do {                                           \
    ::absl::Status _qv2x_status = (expr);        \
    if (!_qv2x_status.ok()) return _qv2x_status; \
  } while (0)

#define QV2X_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(tmp).value()

// QV2X_ASSIGN_OR_RETURN(auto x, MaybeX());
#define QV2X_ASSIGN_OR_RETURN(lhs, expr) \
  QV2X_ASSIGN_OR_RETURN_IMPL_(QV2X_CONCAT_(_qv2x_statusor_, __LINE__), lhs, expr)

#endif  // QV2X_CORE_COMMON_STATUS_MACROS_H_
