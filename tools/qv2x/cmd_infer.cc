// `qv2x infer`: inference over simulated or dataset frames with one fusion method (or all
// of them, as one table), writing predictions and ground truth in the `qv2x eval` format.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "core/baselines/baseline_eval.h"
#include "core/baselines/fusion_table.h"
#include "core/codec/zstd_dictionary.h"
#include "core/common/file_util.h"
#include "core/common/status_macros.h"
#include "core/config/model_config.h"
#include "core/eval/eval_report.h"
#include "core/model/checkpoint.h"
#include "core/render/bev_png.h"
#include "core/training/evaluator.h"
#include "tools/qv2x/command.h"
#ifdef QV2X_WITH_PROTO
#include "qv2x/v1/features.pb.h"
#include "services/feature_message_proto.h"
#endif

namespace qv2x::cli {
namespace {

using baselines::FusionMethod;

constexpr char kUsage[] =
    R"(usage: qv2x infer --config FILE --checkpoint CKPT (--scene SCENE.yaml | --dataset DIR)
                  [--frames N] --out DIR [--fusion METHOD] [--no-codebook] [--ego-only]
                  [--stage1-config FILE --stage1-checkpoint CKPT] [--render DIR]
                  [--sparse SPAN[+DIL],...] [--zstd-dictionary FILE] [--set key=value ...]

Runs the detector on every frame and writes DIR/pred.json and DIR/gt.json in the
`qv2x eval` format, then prints AP per class at IoU 0.3/0.5/0.7 (global sort).
  --config FILE      stage YAML the checkpoint was trained with (its model section)
  --checkpoint CKPT  weights (.pth state_dict written by qv2x)
  --scene FILE       simulate this scene file (configs/scenes/*.yaml)
  --dataset DIR      or read an OPV2V / V2X-Real layout folder
  --frames N         at most N frames (default: all)
  --fusion METHOD    how the agents within comm range cooperate (default intermediate):
                       none          the ego's sweep alone (no cooperation)
                       late          each agent detects on its own sweep and sends its boxes;
                                     the ego merges them with its own (per-class NMS)
                       early         agents send their raw points; the ego detects on the
                                     merged cloud (same weights: denser input than trained on)
                       intermediate  agents send their backbone maps (codebook indices with
                                     a codebook model) and the ego fuses them
                       all           every method above, and intermediate with the codebook
                                     bypassed, in one pass: DIR/fusion-table.md and .json
                                     (AP and the bytes each agent sends per frame), one
                                     DIR/<method>/pred.json per row and DIR/gt.json
  --no-codebook      intermediate: agents send FP32 features, the codebook bypassed
  --ego-only         the same as --fusion none
  --stage1-config FILE, --stage1-checkpoint CKPT
                     with --fusion all: also the intermediate row of a model without a
                     codebook (e.g. configs/cpu/stage1.yaml, models/cpu-stage1.pth)
  --render DIR       a bird's-eye-view PNG per frame with predictions and ground truth
                     (one method only)
  --sparse LIST      also one intermediate (codebook) row per entry in which the agents
                     other than the ego send sparse maps: only the cells whose points span
                     at least SPAN metres vertically, and DIL cells around them (default 2);
                     e.g. --sparse 0,0.3,0.6+1. Writes the table (the bandwidth-accuracy curve)
  --zstd-dictionary FILE
                     the codebook rows are also sized compressed against this dictionary
                     (`qv2x codec train-dict`)
  --threads N        intra-op threads (default: library default)
Ground truth: objects inside the evaluation range seen (>= the scene's visibility threshold
of points) by at least one agent within comm range; the same set for every method.
Bytes (docs/detection.md "Fusion baselines") are measured by encoding what each agent other
than the ego would send: boxes and points in qv2x's baseline messages, FP32 features as
float32, codebook indices as the agent service's FeatureMessage.)";

absl::StatusOr<FusionMethod> ParseMethod(const std::string& name, bool no_codebook) {
  if (name == "none") return FusionMethod::kNone;
  if (name == "late") return FusionMethod::kLate;
  if (name == "early") return FusionMethod::kEarly;
  if (name == "intermediate") {
    return no_codebook ? FusionMethod::kIntermediateNoCodebook : FusionMethod::kIntermediate;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--fusion must be none, late, early, intermediate or all, got '", name, "'"));
}

// "0,0.3,0.6+1": height spans in metres, each with an optional "+dilation" (default 2).
absl::StatusOr<std::vector<CellSelection>> ParseSelections(const std::string& list) {
  std::vector<CellSelection> out;
  if (list.empty()) return out;
  for (absl::string_view item : absl::StrSplit(list, ',')) {
    absl::StatusOr<CellSelection> sel = ParseCellSelection(item);
    if (!sel.ok())
      return absl::InvalidArgumentError(absl::StrCat("--sparse: ", sel.status().message()));
    out.push_back(*sel);
  }
  return out;
}

// The real wire size of an index message: the FeatureMessage the agent service sends.
baselines::IndexMessageSizer WireSizer() {
#ifdef QV2X_WITH_PROTO
  return [](const baselines::IndexMessage& m) -> uint64_t {
    v1::FeatureMessage msg = services::FeatureMessageProto(
        m.agent_id, m.frame_id,
        std::chrono::duration_cast<std::chrono::nanoseconds>(
            std::chrono::system_clock::now().time_since_epoch())
            .count(),
        m.lidar_pose, m.grid, std::string(m.codebook_digest), v1::PRECISION_FP32, *m.indices);
    msg.set_encode_seconds(0.05);
    msg.set_model_generation(1);
    return msg.ByteSizeLong();
  };
#else
  return nullptr;  // baseline header + payload (a build without the services)
#endif
}

struct LoadedModel {
  StageConfig cfg;
  Detector model{nullptr};
  AnchorGrid grid;
  std::string weights;  // row label, e.g. "stage 3 (cpu-stage3.pth)"
};

absl::StatusOr<LoadedModel> Load(const std::string& config_path, const std::string& ckpt_path,
                                 const std::vector<std::string>& overrides) {
  LoadedModel m;
  QV2X_ASSIGN_OR_RETURN(m.cfg, LoadStageConfig(config_path, overrides));
  QV2X_ASSIGN_OR_RETURN(Checkpoint ckpt, ReadCheckpoint(ckpt_path));
  QV2X_ASSIGN_OR_RETURN(m.model, MakeDetector(m.cfg));
  QV2X_RETURN_IF_ERROR(LoadStateDict(*m.model, ckpt));
  QV2X_ASSIGN_OR_RETURN(m.grid, MakeAnchorGrid(m.cfg));
  m.weights = absl::StrCat("stage ", m.cfg.stage, " (",
                           std::filesystem::path(ckpt_path).filename().string(), ")");
  return m;
}

// `fp32` is 0 when no agent's map was encoded (early fusion alone).
std::string ByteLine(const baselines::MethodRun& r, double fp32) {
  if (r.raw.messages == 0) return "each agent sends nothing";
  std::string line = absl::StrFormat("each agent sends %s: %.0f B/frame (zstd %.0f B)", r.sends,
                                     r.raw.mean, r.zstd.mean);
  if (fp32 > 0) {
    absl::StrAppend(&line, absl::StrFormat(", FP32 features %.0f B (%.1fx / %.1fx fewer)", fp32,
                                           fp32 / r.raw.mean, fp32 / r.zstd.mean));
  }
  return line;
}

absl::Status RunInfer(Args& args) {
  QV2X_ASSIGN_OR_RETURN(std::string config_path, args.Required("config"));
  QV2X_ASSIGN_OR_RETURN(std::string ckpt_path, args.Required("checkpoint"));
  QV2X_ASSIGN_OR_RETURN(std::string out_dir, args.Required("out"));
  const std::string scene = args.GetOr("scene", "");
  const std::string dataset = args.GetOr("dataset", "");
  QV2X_ASSIGN_OR_RETURN(int64_t frames, args.IntOr("frames", 0));
  QV2X_ASSIGN_OR_RETURN(int64_t threads, args.IntOr("threads", 0));
  const bool ego_only = args.Switch("ego-only");
  const bool no_codebook = args.Switch("no-codebook");
  const std::optional<std::string> fusion_flag = args.Get("fusion");
  const std::string stage1_config = args.GetOr("stage1-config", "");
  const std::string stage1_ckpt = args.GetOr("stage1-checkpoint", "");
  const std::string render_dir = args.GetOr("render", "");
  const std::vector<std::string> overrides = args.All("set");
  QV2X_ASSIGN_OR_RETURN(std::vector<CellSelection> sparse,
                        ParseSelections(args.GetOr("sparse", "")));
  const std::string dictionary_path = args.GetOr("zstd-dictionary", "");
  QV2X_RETURN_IF_ERROR(args.Finish());
  if (scene.empty() == dataset.empty()) {
    return absl::InvalidArgumentError("give exactly one of --scene and --dataset");
  }
  if (frames < 0) return absl::InvalidArgumentError("--frames must be >= 0");
  if (ego_only && fusion_flag && *fusion_flag != "none") {
    return absl::InvalidArgumentError("--ego-only is --fusion none; give one of them");
  }
  const std::string fusion = ego_only ? "none" : fusion_flag.value_or("intermediate");
  const bool all = fusion == "all";
  const bool table_mode = all || !sparse.empty();
  if (no_codebook && fusion != "intermediate") {
    return absl::InvalidArgumentError("--no-codebook applies to --fusion intermediate only");
  }
  if (stage1_config.empty() != stage1_ckpt.empty()) {
    return absl::InvalidArgumentError("give both --stage1-config and --stage1-checkpoint");
  }
  if (!stage1_config.empty() && !all) {
    return absl::InvalidArgumentError("--stage1-config and --stage1-checkpoint need --fusion all");
  }
  if (table_mode && !render_dir.empty()) {
    return absl::InvalidArgumentError(
        "--render draws one method: not with --fusion all or --sparse");
  }
  std::vector<FusionMethod> methods;
  if (all) {
    methods = {FusionMethod::kNone, FusionMethod::kLate, FusionMethod::kEarly,
               FusionMethod::kIntermediate, FusionMethod::kIntermediateNoCodebook};
  } else {
    QV2X_ASSIGN_OR_RETURN(FusionMethod m, ParseMethod(fusion, no_codebook));
    methods = {m};
  }
  if (threads > 0) torch::set_num_threads(static_cast<int>(threads));

  QV2X_ASSIGN_OR_RETURN(LoadedModel main, Load(config_path, ckpt_path, overrides));
  const bool codebook = main.model->has_codebook();
  if (all && !codebook) methods.pop_back();  // bypassing a codebook it does not have
  const std::string spec = scene.empty() ? dataset : "sim:" + scene;
  QV2X_ASSIGN_OR_RETURN(
      auto source, FrameSource::Open(spec, static_cast<int>(frames), DatasetOptionsOf(main.cfg)));

  baselines::BaselineOptions options;
  options.methods = methods;
  options.index_message_bytes = WireSizer();
  options.sparse = sparse;
  std::shared_ptr<const codec::ZstdDictionary> dictionary;
  if (!dictionary_path.empty()) {
    QV2X_ASSIGN_OR_RETURN(dictionary, codec::ZstdDictionary::Load(dictionary_path, 3));
    options.dictionary = dictionary.get();
  }
  absl::Status render_status;
  if (!render_dir.empty()) {
    QV2X_RETURN_IF_ERROR(MakeDirs(render_dir));
    options.on_frame = [&](FusionMethod m, size_t i, const SceneFrame& frame,
                           const std::vector<Detection>& dets, const std::vector<LabeledBox>&) {
      if (!render_status.ok()) return;
      std::vector<RenderBox> boxes;
      for (const Detection& d : dets) boxes.push_back({d.cls, d.box, d.score});
      BevRenderOptions ro;
      ro.roi_half_x_m = main.cfg.postprocess.gt_range[3];
      ro.roi_half_y_m = main.cfg.postprocess.gt_range[4];
      ro.view_half_x_m = ro.roi_half_x_m + 8;
      ro.view_half_y_m = ro.roi_half_y_m + 6;
      ro.title =
          absl::StrCat(source->FrameName(i), "  (", baselines::MethodLabel(m, codebook), ")");
      render_status =
          RenderBevPng(frame, ro, boxes, absl::StrFormat("%s/frame_%06d.png", render_dir, i));
    };
  }
  QV2X_ASSIGN_OR_RETURN(
      baselines::BaselineRun run,
      baselines::EvaluateFusionBaselines(main.model, *source, main.cfg, main.grid, options));
  QV2X_RETURN_IF_ERROR(render_status);
  QV2X_RETURN_IF_ERROR(MakeDirs(out_dir));
  QV2X_RETURN_IF_ERROR(
      SaveBoxFile(out_dir + "/gt.json", run.ground_truth, BoxFileKind::kGroundTruth));

  if (!table_mode) {
    const baselines::MethodRun& r = run.methods.front();
    QV2X_RETURN_IF_ERROR(
        SaveBoxFile(out_dir + "/pred.json", r.predictions, BoxFileKind::kPrediction));
    std::printf("%s", EvalResultTable(r.result, ApSortOrder::kGlobal).c_str());
    std::printf("%s\n", ByteLine(r, run.fp32_features.mean).c_str());
    std::printf(
        "%zu frames, %.2f agents in comm range/frame, model %.3f s/frame (%s); wrote "
        "%s/pred.json, %s/gt.json\n",
        run.frames, run.agents_per_frame, r.seconds_per_frame,
        r.method == FusionMethod::kNone
            ? "ego only"
            : ("cooperative, " + baselines::MethodLabel(r.method, codebook)).c_str(),
        out_dir.c_str(), out_dir.c_str());
    return absl::OkStatus();
  }

  baselines::FusionTable table;
  table.source = spec;
  table.frames = run.frames;
  table.agents_per_frame = run.agents_per_frame;
  table.fp32_feature_bytes = run.fp32_features.mean;
  table.rows = baselines::TableRows(run, main.weights, codebook);
  std::vector<std::pair<std::string, const std::vector<FrameBoxes>*>> preds;
  for (const baselines::MethodRun& r : run.methods) {
    std::string name = baselines::FusionMethodName(r.method);
    if (r.sparse) {
      name = absl::StrFormat("%s_sparse_%g_%d", name, r.sparse->min_height_span_m,
                             r.sparse->dilation_cells);
    }
    preds.emplace_back(std::move(name), &r.predictions);
  }
  baselines::BaselineRun stage1_run;
  if (!stage1_config.empty()) {
    QV2X_ASSIGN_OR_RETURN(LoadedModel s1, Load(stage1_config, stage1_ckpt, overrides));
    baselines::BaselineOptions o1;
    o1.methods = {FusionMethod::kIntermediate};
    o1.index_message_bytes = options.index_message_bytes;
    QV2X_ASSIGN_OR_RETURN(
        stage1_run, baselines::EvaluateFusionBaselines(s1.model, *source, s1.cfg, s1.grid, o1));
    // Both models must be scored on the same boxes, or the rows are not comparable.
    if (stage1_run.ground_truth.size() != run.ground_truth.size()) {
      return absl::InvalidArgumentError("the stage-1 model saw other frames");
    }
    for (size_t i = 0; i < run.ground_truth.size(); ++i) {
      if (stage1_run.ground_truth[i].boxes.size() != run.ground_truth[i].boxes.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("the stage-1 config gives frame ", run.ground_truth[i].frame,
                         " another ground truth (different gt_range, comm_range or max_cav?)"));
      }
    }
    for (auto& row : baselines::TableRows(stage1_run, s1.weights, s1.model->has_codebook())) {
      table.rows.push_back(std::move(row));
    }
    preds.emplace_back("intermediate_stage1", &stage1_run.methods.front().predictions);
  }
  for (const auto& [name, p] : preds) {
    QV2X_RETURN_IF_ERROR(MakeDirs(out_dir + "/" + name));
    QV2X_RETURN_IF_ERROR(
        SaveBoxFile(out_dir + "/" + name + "/pred.json", *p, BoxFileKind::kPrediction));
  }
  const std::string md = baselines::FusionTableMarkdown(table);
  QV2X_RETURN_IF_ERROR(WriteFileAtomic(out_dir + "/fusion-table.md", md));
  QV2X_RETURN_IF_ERROR(
      WriteFileAtomic(out_dir + "/fusion-table.json", baselines::FusionTableJson(table)));
  std::printf("%s\nwrote %s/fusion-table.md, %s/fusion-table.json\n", md.c_str(), out_dir.c_str(),
              out_dir.c_str());
  return absl::OkStatus();
}

const Registration kInfer({"infer",
                           "run the detector over frames with a fusion method (or all: the "
                           "fusion baselines table), write pred.json / gt.json",
                           kUsage, RunInfer});

}  // namespace
}  // namespace qv2x::cli
