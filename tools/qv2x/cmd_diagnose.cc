// `qv2x diagnose`: why a detector scores what it does, per class (docs/training.md,
// "Diagnosis"): the target assigner's matches, the loss by anchor class, scores, recall by
// distance and visibility.
#include <cstdio>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "core/common/file_util.h"
#include "core/common/status_macros.h"
#include "core/config/model_config.h"
#include "core/model/checkpoint.h"
#include "core/training/detection_diagnosis.h"
#include "tools/qv2x/command.h"

namespace qv2x::cli {
namespace {

constexpr char kUsage[] =
    R"(usage: qv2x diagnose --config FILE --checkpoint CKPT (--scene SCENE.yaml | --dataset DIR)
                     [--frames N] [--ego-only] [--iou T] [--distance-bins 0,10,20,30,40]
                     [--json OUT.json] [--set key=value ...] [--threads N]

Runs the detector over the frames and reports, per class (vehicle, pedestrian, truck):
  assignment  positives and ignored anchors per frame from the training target assigner, the
              BEV IoU of each ground-truth box's best anchor (histogram), boxes that no anchor
              overlaps, boxes positive only through the forced best-anchor match
  loss        cls / reg / dir loss of the class's anchors per frame (they add up to the
              training loss's terms)
  scores      per box, the highest score among its positive anchors (histogram, and how many
              pass postprocess.target_args.score_threshold); negative anchors above the
              threshold; candidates before NMS and detections after it; true / false
              positive score histograms
  recall      at IoU T (default 0.5): overall, by distance from the ego, for boxes the ego
              sees and for boxes only other agents see; misses that a detection of another
              class covers
  ap          AP at 0.3 / 0.5 / 0.7 (global sort)
Prints a one-row-per-class table; --json writes everything. Ground truth as `qv2x infer`:
objects in the evaluation range seen by at least one collated agent. --set overrides stage
config keys (e.g. --set postprocess.target_args.score_threshold=0.05).)";

absl::StatusOr<std::vector<double>> ParseEdges(const std::string& text) {
  std::vector<double> edges;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    double v;
    if (!absl::SimpleAtod(part, &v)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--distance-bins: \"", part, "\" is not a number"));
    }
    edges.push_back(v);
  }
  return edges;
}

absl::Status RunDiagnose(Args& args) {
  QV2X_ASSIGN_OR_RETURN(std::string config_path, args.Required("config"));
  QV2X_ASSIGN_OR_RETURN(std::string ckpt_path, args.Required("checkpoint"));
  const std::string scene = args.GetOr("scene", "");
  const std::string dataset = args.GetOr("dataset", "");
  QV2X_ASSIGN_OR_RETURN(int64_t frames, args.IntOr("frames", 0));
  QV2X_ASSIGN_OR_RETURN(int64_t threads, args.IntOr("threads", 0));
  QV2X_ASSIGN_OR_RETURN(double iou, args.DoubleOr("iou", 0.5));
  const std::string bins = args.GetOr("distance-bins", "0,10,20,30,40");
  const std::string json_path = args.GetOr("json", "");
  const bool ego_only = args.Switch("ego-only");
  const std::vector<std::string> overrides = args.All("set");
  QV2X_RETURN_IF_ERROR(args.Finish());
  if (scene.empty() == dataset.empty()) {
    return absl::InvalidArgumentError("give exactly one of --scene and --dataset");
  }
  if (frames < 0) return absl::InvalidArgumentError("--frames must be >= 0");
  if (threads > 0) torch::set_num_threads(static_cast<int>(threads));

  DiagnosisOptions options;
  options.ego_only = ego_only;
  options.iou_threshold = iou;
  QV2X_ASSIGN_OR_RETURN(options.distance_edges_m, ParseEdges(bins));
  QV2X_ASSIGN_OR_RETURN(StageConfig cfg, LoadStageConfig(config_path, overrides));
  QV2X_ASSIGN_OR_RETURN(Checkpoint ckpt, ReadCheckpoint(ckpt_path));
  QV2X_ASSIGN_OR_RETURN(Detector model, MakeDetector(cfg));
  QV2X_RETURN_IF_ERROR(LoadStateDict(*model, ckpt));
  QV2X_ASSIGN_OR_RETURN(AnchorGrid grid, MakeAnchorGrid(cfg));
  QV2X_ASSIGN_OR_RETURN(auto source,
                        FrameSource::Open(scene.empty() ? dataset : "sim:" + scene,
                                          static_cast<int>(frames), DatasetOptionsOf(cfg)));
  QV2X_ASSIGN_OR_RETURN(DiagnosisReport report,
                        DiagnoseDetector(model, *source, cfg, grid, options));
  std::printf("%s", DiagnosisTable(report).c_str());
  if (!json_path.empty()) {
    QV2X_RETURN_IF_ERROR(WriteFileAtomic(json_path, DiagnosisJson(report) + "\n"));
    std::printf("wrote %s\n", json_path.c_str());
  }
  return absl::OkStatus();
}

const Registration kDiagnose({"diagnose",
                              "per-class diagnosis: assignment, loss, scores, recall by distance",
                              kUsage, RunDiagnose});

}  // namespace
}  // namespace qv2x::cli
