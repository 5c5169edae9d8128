#include "core/training/evaluator.h"

#include <chrono>

#include "core/common/status_macros.h"
#include "core/training/sample_builder.h"

namespace qv2x {

std::vector<EvalBox> ToEvalBoxes(const std::vector<Detection>& detections) {
  std::vector<EvalBox> out;
  out.reserve(detections.size());
  for (const Detection& d : detections) out.push_back({d.cls, d.box, d.score});
  return out;
}

std::vector<EvalBox> ToEvalBoxes(const std::vector<LabeledBox>& gt) {
  std::vector<EvalBox> out;
  out.reserve(gt.size());
  for (const LabeledBox& b : gt) out.push_back({b.cls, b.box, 1.0});
  return out;
}

absl::StatusOr<EvalRun> EvaluateDetector(Detector& model, const FrameSource& source,
                                         const StageConfig& cfg, const AnchorGrid& grid,
                                         const EvalOptions& options) {
  model->eval();
  torch::NoGradGuard no_grad;
  ApAccumulator acc;
  EvalRun run;
  double model_s = 0;
  size_t agents = 0;
  SampleOptions sample_options;
  sample_options.mode = PillarMode::kTest;
  sample_options.targets = false;
  for (size_t i = 0; i < source.size(); ++i) {
    QV2X_ASSIGN_OR_RETURN(SceneFrame frame, source.Read(i));
    QV2X_ASSIGN_OR_RETURN(Sample sample, BuildSample(frame, cfg, grid, sample_options));
    const auto t0 = std::chrono::steady_clock::now();
    QV2X_ASSIGN_OR_RETURN(DetectorOutput out,
                          RunDetector(model, {&sample.collated}, options.ego_only));
    QV2X_ASSIGN_OR_RETURN(
        std::vector<Detection> dets,
        PostProcess(grid, out.cls, out.reg, out.dir, cfg.postprocess, cfg.model.dir_args));
    model_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    agents += options.ego_only ? 1 : sample.collated.agents.size();
    std::vector<EvalBox> pred = ToEvalBoxes(dets), gt = ToEvalBoxes(sample.gt);
    acc.AddFrame(pred, gt);
    const std::string name = source.FrameName(i);
    run.predictions.push_back({name, std::move(pred)});
    run.ground_truth.push_back({name, std::move(gt)});
    if (options.on_frame) options.on_frame(i, frame, dets, sample.gt);
  }
  run.result = acc.Result(ApSortOrder::kGlobal);
  const double n = static_cast<double>(std::max<size_t>(1, source.size()));
  run.model_seconds_per_frame = model_s / n;
  run.agents_per_frame = static_cast<double>(agents) / n;
  return run;
}

}  // namespace qv2x
