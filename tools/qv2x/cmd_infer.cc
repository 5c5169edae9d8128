// `qv2x infer`: cooperative (or ego-only) inference over simulated or dataset frames,
// writing predictions and ground truth in the `qv2x eval` format.
#include <cstdio>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/common/file_util.h"
#include "core/common/status_macros.h"
#include "core/config/model_config.h"
#include "core/eval/eval_report.h"
#include "core/model/checkpoint.h"
#include "core/render/bev_png.h"
#include "core/training/evaluator.h"
#include "tools/qv2x/command.h"

namespace qv2x::cli {
namespace {

constexpr char kUsage[] =
    R"(usage: qv2x infer --config FILE --checkpoint CKPT (--scene SCENE.yaml | --dataset DIR)
                  [--frames N] --out DIR [--ego-only] [--render DIR] [--set key=value ...]

Runs the detector on every frame (each agent within comm range encodes its own sweep; the
ego fuses them) and writes DIR/pred.json and DIR/gt.json in the `qv2x eval` format, then
prints AP per class at IoU 0.3/0.5/0.7 (global sort) and the model time per frame.
  --config FILE      stage YAML the checkpoint was trained with (its model section)
  --checkpoint CKPT  weights (.pth state_dict written by qv2x)
  --scene FILE       simulate this scene file (configs/scenes/*.yaml)
  --dataset DIR      or read an OPV2V / V2X-Real layout folder
  --frames N         at most N frames (default: all)
  --ego-only         the same model with the ego's features alone (no cooperation)
  --render DIR       a bird's-eye-view PNG per frame with predictions and ground truth
  --threads N        intra-op threads (default: library default)
Ground truth: objects inside the evaluation range seen (>= the scene's visibility threshold
of points) by at least one agent within comm range; the same set for --ego-only.)";

absl::Status RunInfer(Args& args) {
  QV2X_ASSIGN_OR_RETURN(std::string config_path, args.Required("config"));
  QV2X_ASSIGN_OR_RETURN(std::string ckpt_path, args.Required("checkpoint"));
  QV2X_ASSIGN_OR_RETURN(std::string out_dir, args.Required("out"));
  const std::string scene = args.GetOr("scene", "");
  const std::string dataset = args.GetOr("dataset", "");
  QV2X_ASSIGN_OR_RETURN(int64_t frames, args.IntOr("frames", 0));
  QV2X_ASSIGN_OR_RETURN(int64_t threads, args.IntOr("threads", 0));
  const bool ego_only = args.Switch("ego-only");
  const std::string render_dir = args.GetOr("render", "");
  const std::vector<std::string> overrides = args.All("set");
  QV2X_RETURN_IF_ERROR(args.Finish());
  if (scene.empty() == dataset.empty()) {
    return absl::InvalidArgumentError("give exactly one of --scene and --dataset");
  }
  if (frames < 0) return absl::InvalidArgumentError("--frames must be >= 0");
  if (threads > 0) torch::set_num_threads(static_cast<int>(threads));

  QV2X_ASSIGN_OR_RETURN(StageConfig cfg, LoadStageConfig(config_path, overrides));
  QV2X_ASSIGN_OR_RETURN(Checkpoint ckpt, ReadCheckpoint(ckpt_path));
  QV2X_ASSIGN_OR_RETURN(Detector model, MakeDetector(cfg));
  QV2X_RETURN_IF_ERROR(LoadStateDict(*model, ckpt));
  QV2X_ASSIGN_OR_RETURN(AnchorGrid grid, MakeAnchorGrid(cfg));
  QV2X_ASSIGN_OR_RETURN(auto source, FrameSource::Open(scene.empty() ? dataset : "sim:" + scene,
                                                       static_cast<int>(frames)));
  EvalOptions options;
  options.ego_only = ego_only;
  absl::Status render_status;
  if (!render_dir.empty()) {
    QV2X_RETURN_IF_ERROR(MakeDirs(render_dir));
    options.on_frame = [&](size_t i, const SceneFrame& frame, const std::vector<Detection>& dets,
                           const std::vector<LabeledBox>&) {
      if (!render_status.ok()) return;
      std::vector<RenderBox> boxes;
      for (const Detection& d : dets) boxes.push_back({d.cls, d.box, d.score});
      BevRenderOptions ro;
      ro.roi_half_x_m = cfg.postprocess.gt_range[3];
      ro.roi_half_y_m = cfg.postprocess.gt_range[4];
      ro.view_half_x_m = ro.roi_half_x_m + 8;
      ro.view_half_y_m = ro.roi_half_y_m + 6;
      ro.title = absl::StrCat(source->FrameName(i), ego_only ? "  (ego only)" : "  (cooperative)");
      render_status =
          RenderBevPng(frame, ro, boxes, absl::StrFormat("%s/frame_%06d.png", render_dir, i));
    };
  }
  QV2X_ASSIGN_OR_RETURN(EvalRun run, EvaluateDetector(model, *source, cfg, grid, options));
  QV2X_RETURN_IF_ERROR(render_status);
  QV2X_RETURN_IF_ERROR(
      SaveBoxFile(out_dir + "/pred.json", run.predictions, BoxFileKind::kPrediction));
  QV2X_RETURN_IF_ERROR(
      SaveBoxFile(out_dir + "/gt.json", run.ground_truth, BoxFileKind::kGroundTruth));
  std::printf("%s", EvalResultTable(run.result, ApSortOrder::kGlobal).c_str());
  std::printf(
      "%zu frames, %.2f agents/frame, model %.3f s/frame (%s); wrote %s/pred.json, %s/gt.json\n",
      source->size(), run.agents_per_frame, run.model_seconds_per_frame,
      ego_only ? "ego only" : "cooperative", out_dir.c_str(), out_dir.c_str());
  return absl::OkStatus();
}

const Registration kInfer({"infer", "run the detector over frames, write pred.json / gt.json",
                           kUsage, RunInfer});

}  // namespace
}  // namespace qv2x::cli
