// Bad model files for the fault tests, made from real ones: the CLI's freshly initialised
// tiny checkpoints and the shipped CPU-preset model and INT8 artifact (models/).
#ifndef QV2X_TESTS_INTEGRATION_HARNESS_MODEL_FILES_H_
#define QV2X_TESTS_INTEGRATION_HARNESS_MODEL_FILES_H_

#include <string>

#include "absl/status/statusor.h"

namespace qv2x::testing {

enum class BadModelFile {
  kNone,                   // a good tiny stage-3 checkpoint (fresh initialisation)
  kTruncatedCheckpoint,    // its first half
  kCorruptCheckpoint,      // one bit flipped inside a tensor
  kWrongShapeCheckpoint,   // tiny with shrink_header.dim 24 instead of 32
  kWrongPresetCheckpoint,  // the CPU preset's stage-3 model
  kWrongStageCheckpoint,   // a tiny stage-1 model (no codebook)
  kTruncatedInt8,          // the CPU preset's INT8 artifact, first half
  kCorruptInt8,            // ... one bit flipped inside a tensor
  kWrongPresetInt8,        // ... as shipped: not the tiny model's
};

// The file of that kind in `dir` (made on first use; needs the built qv2x CLI).
absl::StatusOr<std::string> MakeBadModelFile(BadModelFile kind, const std::string& dir);

// Bytes of a file, or "" when it cannot be read.
std::string FileBytes(const std::string& path);

}  // namespace qv2x::testing

#endif  // QV2X_TESTS_INTEGRATION_HARNESS_MODEL_FILES_H_
