#include "core/training/detection_diagnosis.h"

#include <algorithm>

#include "core/common/status_macros.h"
#include "core/detection/loss.h"
#include "core/detection/postprocess.h"
#include "core/training/evaluator.h"
#include "core/training/sample_builder.h"

namespace qv2x {
namespace {

bool SeenByEgo(const GtObject& o, int ego_id) {
  // Dataset frames carry no visibility: every annotated object counts as the ego's.
  return o.points_by_agent.empty() ||
         std::find(o.visible_to.begin(), o.visible_to.end(), ego_id) != o.visible_to.end();
}

// Assignment and score statistics of one frame, added to `report`.
void AddAnchorStats(const AnchorGrid& grid, const FrameTargets& targets,
                    const std::vector<GtObject>& gt, const at::Tensor& scores, double threshold,
                    DiagnosisReport* report) {
  // [H'·W', classes, yaws] views of labels and scores.
  const at::Tensor labels = targets.labels.reshape({-1, grid.num_classes, grid.num_yaws});
  const at::Tensor s = scores.reshape({-1, grid.num_classes, grid.num_yaws});
  const at::Tensor above = s > threshold;
  const std::vector<int64_t> kClassDims = {0, 2};  // sums over cells and yaws
  const at::Tensor pos = (labels == 1).sum(kClassDims), ign = (labels == -1).sum(kClassDims);
  const at::Tensor cand = above.sum(kClassDims),
                   neg_above = (above & (labels == 0)).sum(kClassDims);
  for (int k = 0; k < grid.num_classes; ++k) {
    AnchorClassDiagnosis& a = report->anchors[static_cast<int>(grid.class_ids[k])];
    a.has_anchors = true;
    a.positives += pos[k].item<int64_t>();
    a.ignored += ign[k].item<int64_t>();
    a.candidates += cand[k].item<int64_t>();
    a.negatives_above_threshold += neg_above[k].item<int64_t>();
  }
  const float* sp = scores.data_ptr<float>();
  for (size_t g = 0; g < gt.size(); ++g) {
    AnchorClassDiagnosis& a = report->anchors[static_cast<int>(gt[g].cls)];
    ++a.gt_boxes;
    const GtAssignment& m = targets.per_gt[g];
    if (m.anchor_class < 0) continue;
    a.best_anchor_iou.Add(m.best_iou);
    a.gt_no_overlap += m.best_iou <= 0;
    a.gt_forced_only += m.forced_only;
    if (m.anchors.empty()) {
      ++a.gt_unassigned;
      continue;
    }
    float top = 0;
    for (int64_t idx : m.anchors) top = std::max(top, sp[idx]);
    a.gt_top_score.Add(top);
    a.gt_top_above_threshold += top > threshold;
  }
}

}  // namespace

absl::StatusOr<DiagnosisReport> DiagnoseDetector(Detector& model, const FrameSource& source,
                                                 const StageConfig& cfg, const AnchorGrid& grid,
                                                 const DiagnosisOptions& options) {
  QV2X_ASSIGN_OR_RETURN(RecallBreakdown breakdown,
                        RecallBreakdown::Create(options.iou_threshold, options.distance_edges_m));
  DiagnosisReport report(std::move(breakdown));
  report.source = source.spec();
  report.ego_only = options.ego_only;
  report.score_threshold = cfg.postprocess.score_threshold;
  model->eval();
  torch::NoGradGuard no_grad;
  const DetectionLoss loss_fn(cfg.loss, cfg.model.dir_args);
  ApAccumulator ap;
  SampleOptions sample_options;
  sample_options.mode = PillarMode::kTest;
  size_t agents = 0;
  for (size_t i = 0; i < source.size(); ++i) {
    QV2X_ASSIGN_OR_RETURN(SceneFrame frame, source.Read(i));
    QV2X_ASSIGN_OR_RETURN(Sample sample, BuildSample(frame, cfg, grid, sample_options));
    std::vector<int> ids;
    for (const AgentInput& a : sample.collated.agents) ids.push_back(a.agent_id);
    // The same boxes, in the same order, as sample.gt and its targets.
    const std::vector<GtObject> gt = EgoGroundTruthObjects(frame, ids, cfg);
    if (gt.size() != sample.targets.per_gt.size()) {
      return absl::InternalError("diagnosis: ground truth and targets disagree in size");
    }
    QV2X_ASSIGN_OR_RETURN(DetectorOutput out,
                          RunDetector(model, {&sample.collated}, options.ego_only));
    agents += options.ego_only ? 1 : sample.collated.agents.size();

    QV2X_ASSIGN_OR_RETURN(BatchTargets batch, StackTargets({sample.targets}));
    QV2X_ASSIGN_OR_RETURN(std::vector<LossTerms> by_class,
                          loss_fn.ByAnchorClass({out.cls, out.reg, out.dir}, batch, grid.num_yaws));
    for (int k = 0; k < grid.num_classes; ++k) {
      AnchorClassDiagnosis& a = report.anchors[static_cast<int>(grid.class_ids[k])];
      a.loss_cls += by_class[k].cls.item<double>();
      a.loss_reg += by_class[k].reg.item<double>();
      a.loss_dir += by_class[k].dir.item<double>();
    }
    // Scores in the anchors' (row, col, anchor) order; a class vector's is its largest.
    at::Tensor scores =
        torch::sigmoid(out.cls[0].to(torch::kCPU, torch::kFloat32)).permute({1, 2, 0});
    if (scores.size(2) != grid.anchors_per_cell()) {
      scores = std::get<0>(
          scores.reshape({scores.size(0), scores.size(1), grid.anchors_per_cell(), -1}).max(-1));
    }
    scores = scores.contiguous();
    AddAnchorStats(grid, sample.targets, gt, scores, cfg.postprocess.score_threshold, &report);

    QV2X_ASSIGN_OR_RETURN(
        std::vector<Detection> dets,
        PostProcess(grid, out.cls, out.reg, out.dir, cfg.postprocess, cfg.model.dir_args));
    for (const Detection& d : dets) ++report.anchors[static_cast<int>(d.cls)].detections;
    const std::vector<EvalBox> pred = ToEvalBoxes(dets);
    std::vector<BreakdownGt> truth;
    for (const GtObject& o : gt) truth.push_back({{o.cls, o.box, 1.0}, SeenByEgo(o, frame.ego_id)});
    report.breakdown.AddFrame(pred, truth);
    ap.AddFrame(pred, ToEvalBoxes(sample.gt));
  }
  report.frames = static_cast<int64_t>(source.size());
  report.agents_per_frame =
      static_cast<double>(agents) / static_cast<double>(std::max<size_t>(1, source.size()));
  report.ap = ap.Result(ApSortOrder::kGlobal);
  return report;
}

}  // namespace qv2x
