// Box files: per-frame predicted or ground-truth boxes as JSON (docs/eval-format.md).
//   {"frames": [{"frame": "000001", "boxes": [{"class": "vehicle", "x": 0, "y": 0, "z": 0,
//     "l": 4, "w": 2, "h": 1.5, "yaw": 0.0, "score": 0.9}]}]}
// yaw in radians counter-clockwise from +x, l along the heading; "score" only in
// predictions.
#ifndef QV2X_CORE_EVAL_BOX_FILE_H_
#define QV2X_CORE_EVAL_BOX_FILE_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/data/frame.h"
#include "core/geometry/box.h"

namespace qv2x {

struct EvalBox {
  ObjectClass cls = ObjectClass::kVehicle;
  Box3D box;
  double score = 1.0;  // predictions only; ignored for ground truth
};

struct FrameBoxes {
  std::string frame;  // frame name, unique within a file
  std::vector<EvalBox> boxes;
};

enum class BoxFileKind { kGroundTruth, kPrediction };

// Parses and validates box-file JSON. Errors are InvalidArgument and name `source` and
// the JSON path of the bad value (e.g. "pred.json: frames[2].boxes[0].l: must be > 0").
absl::StatusOr<std::vector<FrameBoxes>> ParseBoxFile(const std::string& json_text, BoxFileKind kind,
                                                     const std::string& source = "<input>");
// Reads and parses `path` (NotFound when it does not exist).
absl::StatusOr<std::vector<FrameBoxes>> LoadBoxFile(const std::string& path, BoxFileKind kind);

// The JSON text of a box file; scores are written for kPrediction only.
std::string BoxFileToJson(const std::vector<FrameBoxes>& frames, BoxFileKind kind);
absl::Status SaveBoxFile(const std::string& path, const std::vector<FrameBoxes>& frames,
                         BoxFileKind kind);

}  // namespace qv2x

#endif  // QV2X_CORE_EVAL_BOX_FILE_H_
