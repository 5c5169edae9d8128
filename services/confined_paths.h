// Path rules shared by the services that read and write files for a caller (trainer,
// quantizer): outputs stay inside the artifacts folder; inputs come from there or from a
// read-only configs folder. Errors name the request field.
#ifndef QV2X_SERVICES_CONFINED_PATHS_H_
#define QV2X_SERVICES_CONFINED_PATHS_H_

#include <string>

#include "absl/status/statusor.h"

namespace qv2x::services {

// Longer paths are refused before they are resolved or echoed (Linux's PATH_MAX).
inline constexpr size_t kMaxPathBytes = 4096;

// Resolves `path` (relative paths are taken relative to `root`) and refuses anything that
// escapes `root` (INVALID_ARGUMENT naming `field`).
absl::StatusOr<std::string> ConfinePath(const std::string& root, const std::string& path,
                                        const std::string& field);

// An existing input file under `artifacts_dir`, or under `configs_dir` (paths such as
// "configs/cpu/stage1.yaml" are taken relative to the configs folder's parent).
// FAILED_PRECONDITION when it does not exist, INVALID_ARGUMENT when it is elsewhere.
absl::StatusOr<std::string> ResolveInput(const std::string& artifacts_dir,
                                         const std::string& configs_dir, const std::string& path,
                                         const std::string& field);

}  // namespace qv2x::services

#endif  // QV2X_SERVICES_CONFINED_PATHS_H_
