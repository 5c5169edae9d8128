// Small file helpers shared by the readers and writers.
#ifndef QV2X_CORE_COMMON_FILE_UTIL_H_
#define QV2X_CORE_COMMON_FILE_UTIL_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace qv2x {

inline constexpr char kTempInfix[] = ".tmp.";

// Whole file as bytes; NotFound when it does not exist.
absl::StatusOr<std::string> ReadFile(const std::string& path);

// Writes via a temporary file in the same folder (`<path>.tmp.<pid>`), fsync and a rename,
// so a crash never leaves a truncated file at `path`; on failure the previous file stays.
// Creates missing parent folders. ResourceExhausted when the disk is full.
absl::Status WriteFileAtomic(const std::string& path, const std::string& bytes);

// Removes the temporary files WriteFileAtomic left in `dir` when its process was killed
// mid-write (those of processes still running stay); how many it removed.
int RemoveStaleTempFiles(const std::string& dir);

// Creates `path` and its parents (like mkdir -p).
absl::Status MakeDirs(const std::string& path);

}  // namespace qv2x

#endif  // QV2X_CORE_COMMON_FILE_UTIL_H_
