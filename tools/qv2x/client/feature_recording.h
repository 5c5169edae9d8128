// Feature messages that real agents sent for a scene (`qv2x scene record`), kept to be
// replayed into a fusion service (`qv2x scene bench --replay`). One file per encoder
// precision (`fp32.qv2xrec`, `int8.qv2xrec`, next to the recorded `scene.yaml`):
//   line 1  "qv2x-feature-record 1"
//   line 2  the header, one JSON object on one line (RecordingHeader)
//   then    each message as its byte length (a protobuf varint) followed by the serialized
//           qv2x.v1.FeatureMessage (protobuf's length-delimited form), in the order sent.
// Messages are kept as bytes; the replay parses them only to rename agents and frames.
#ifndef QV2X_TOOLS_QV2X_CLIENT_FEATURE_RECORDING_H_
#define QV2X_TOOLS_QV2X_CLIENT_FEATURE_RECORDING_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace qv2x::cli {

inline constexpr char kRecordingMagic[] = "qv2x-feature-record 1";

struct RecordingHeader {
  std::string scene;       // the scene's name
  std::string scene_file;  // its YAML, relative to the recording's folder
  std::string preset;      // the model config's name (e.g. cpu_stage3)
  std::string model_config, checkpoint, int8_artifact;  // as the services ran them
  std::string codebook_digest;
  std::string precision;  // fp32 | int8: the agents' encoders
  std::string codec;      // bitpack | zstd
  double rate_hz = 0;     // the scene's
  int ego_id = 0;
  std::vector<int> agents;               // the ego first
  uint64_t first_frame = 0, frames = 0;  // every agent's frames [first, first + frames)
  uint64_t messages = 0;
};

struct Recording {
  RecordingHeader header;
  std::vector<std::string> messages;  // serialized qv2x.v1.FeatureMessage
};

absl::Status WriteRecording(const std::string& path, const Recording& recording);
// Errors name the file and what is wrong (magic, header key, truncated message at an offset).
absl::StatusOr<Recording> ReadRecording(const std::string& path);

}  // namespace qv2x::cli

#endif  // QV2X_TOOLS_QV2X_CLIENT_FEATURE_RECORDING_H_
