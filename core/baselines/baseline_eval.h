// The fusion baselines of one detector on one set of frames (docs/detection.md "Fusion
// baselines"): no fusion, late, early and intermediate fusion (with the codebook, or with
// FP32 features), each scored with the SPEC §8 protocol against the same ground truth,
// and the bytes every non-ego agent would send per frame, measured by encoding what it
// would send. For model users only: pulls in <torch/torch.h> through the detector.
#ifndef QV2X_CORE_BASELINES_BASELINE_EVAL_H_
#define QV2X_CORE_BASELINES_BASELINE_EVAL_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/codec/index_codec.h"
#include "core/codec/zstd_dictionary.h"
#include "core/config/model_config.h"
#include "core/detection/anchors.h"
#include "core/detection/postprocess.h"
#include "core/detection/target_assigner.h"
#include "core/eval/average_precision.h"
#include "core/eval/box_file.h"
#include "core/model/detector.h"
#include "core/training/frame_source.h"
#include "core/voxel/cell_selection.h"

namespace qv2x::baselines {

enum class FusionMethod {
  kNone,                    // the ego's sweep alone
  kLate,                    // every agent's boxes, merged by per-class NMS
  kEarly,                   // every agent's points, merged, one detection pass
  kIntermediate,            // every agent's backbone map: codebook indices when the model has a
                            // codebook, else FP32 features
  kIntermediateNoCodebook,  // FP32 features, the codebook bypassed
};
// "none", "late", "early", "intermediate", "intermediate_no_codebook".
const char* FusionMethodName(FusionMethod m);

// What one agent message of a codebook model is, for a caller that can size the real wire
// message (the agent service's FeatureMessage proto; core/ has no protobuf).
struct IndexMessage {
  int agent_id = 0;
  uint64_t frame_id = 0;
  Pose lidar_pose;
  codec::IndexGrid grid;
  std::string_view codebook_digest;
  const codec::EncodedIndices* indices = nullptr;
};
using IndexMessageSizer = std::function<uint64_t(const IndexMessage&)>;

struct BaselineOptions {
  std::vector<FusionMethod> methods;
  // Sizes index messages; without it, the 63-byte baseline header + payload.
  IndexMessageSizer index_message_bytes;
  // One more intermediate (codebook) run per selection, after `methods`: every agent but
  // the ego sends only the cells it selects (sparse messages), the ego fuses the rest as
  // empty. The bandwidth-accuracy curve.
  std::vector<CellSelection> sparse;
  // Index messages are also sized compressed against this dictionary (MethodRun::zstd_dict).
  const codec::ZstdDictionary* dictionary = nullptr;
  // Called after each frame and method with the detections and ground truth (ego frame).
  std::function<void(FusionMethod, size_t, const SceneFrame&, const std::vector<Detection>&,
                     const std::vector<LabeledBox>&)>
      on_frame;
};

// Bytes of the messages agents other than the ego sent (one per agent and frame).
struct ByteStats {
  uint64_t messages = 0;
  double mean = 0, p95 = 0;
};

struct MethodRun {
  FusionMethod method = FusionMethod::kNone;
  std::string sends;  // what each agent sends, in words
  EvalResult result;  // global sort
  std::vector<FrameBoxes> predictions;
  ByteStats raw;                 // as encoded (bit-packed indices; raw boxes, points, features)
  ByteStats zstd;                // the same content with zstd
  ByteStats zstd_dict;           // index messages against BaselineOptions::dictionary
  std::optional<CellSelection> sparse;  // a sparse intermediate run: its selection
  double sent_cell_fraction = 1;        // of the non-ego agents' cells, mean over messages
  double seconds_per_frame = 0;  // this method's own work (encoding shared with others
                                 // is counted in each method that uses it)
};

struct BaselineRun {
  std::vector<FrameBoxes> ground_truth;
  std::vector<MethodRun> methods;  // in BaselineOptions::methods order
  ByteStats fp32_features;         // the raw FP32 feature message: the ratio's reference
  size_t frames = 0;
  double agents_per_frame = 0;
};

// Puts the model in eval mode (and leaves it there). kIntermediateNoCodebook on a model
// without a codebook is the same as kIntermediate.
absl::StatusOr<BaselineRun> EvaluateFusionBaselines(Detector& model, const FrameSource& source,
                                                    const StageConfig& cfg, const AnchorGrid& grid,
                                                    const BaselineOptions& options);

}  // namespace qv2x::baselines

#endif  // QV2X_CORE_BASELINES_BASELINE_EVAL_H_
