// `qv2x eval`: per-class AP and mAP of a prediction box file against ground truth.
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/eval/average_precision.h"
#include "core/eval/box_file.h"
#include "core/eval/eval_report.h"
#include "tools/qv2x/command.h"

namespace qv2x::cli {
namespace {

constexpr char kUsage[] =
    R"(usage: qv2x eval --pred PRED.json --gt GT.json [--sort global|frame] [--json]

Scores predicted 3D boxes against ground truth with the OpenCOOD / V2X-Real protocol
(SPEC §8): per class (vehicle, pedestrian, truck) AP at rotated BEV IoU 0.3, 0.5 and 0.7,
and mAP = mean of the three classes.

flags:
  --pred FILE     predicted boxes (box-file JSON, every box with a "score")
  --gt FILE       ground-truth boxes (box-file JSON, "score" not needed)
  --sort ORDER    global (default): rank all detections of all frames by score;
                  frame: concatenate each frame's ranked detections in ground-truth frame
                  order without a global re-sort (how OpenCOOD's published numbers were made)
  --json          print {"ap": {class: {"0.3": .., "0.5": .., "0.7": ..}}, "map": {...}}
                  instead of the table

Box files: {"frames": [{"frame": "000001", "boxes": [{"class": "vehicle", "x": 0, "y": 0,
  "z": 0, "l": 4, "w": 2, "h": 1.5, "yaw": 0.0, "score": 0.9}]}]}
yaw in radians counter-clockwise from +x, l along the heading. A ground-truth frame missing
from the predictions counts as a frame without detections; a prediction frame missing from
the ground truth is an error. A class without ground truth has AP 0 and still counts in the
mAP. Full description: docs/eval-format.md.)";

absl::Status RunEval(Args& args) {
  auto pred_path = args.Required("pred");
  if (!pred_path.ok()) return pred_path.status();
  auto gt_path = args.Required("gt");
  if (!gt_path.ok()) return gt_path.status();
  const std::string sort = args.GetOr("sort", "global");
  const bool json = args.Switch("json");
  absl::Status finished = args.Finish();
  if (!finished.ok()) return finished;
  if (!args.positional().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unexpected argument \"", args.positional().front(), "\""));
  }
  ApSortOrder order;
  if (sort == "global") {
    order = ApSortOrder::kGlobal;
  } else if (sort == "frame") {
    order = ApSortOrder::kFrame;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--sort: expected global or frame, got \"", sort, "\""));
  }

  auto gt = LoadBoxFile(*gt_path, BoxFileKind::kGroundTruth);
  if (!gt.ok()) return gt.status();
  auto pred = LoadBoxFile(*pred_path, BoxFileKind::kPrediction);
  if (!pred.ok()) return pred.status();
  auto result = EvaluateFrames(*pred, *gt, order);
  if (!result.ok()) {
    return absl::Status(result.status().code(),
                        absl::StrCat(*pred_path, ": ", result.status().message()));
  }
  const std::string text = json ? EvalResultJson(*result) + "\n" : EvalResultTable(*result, order);
  std::fputs(text.c_str(), stdout);
  return absl::OkStatus();
}

const Registration kRegistration({"eval", "AP per class and mAP of predicted boxes vs ground truth",
                                  kUsage, RunEval});

}  // namespace
}  // namespace qv2x::cli
