#include "core/training/stage_runner.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/common/file_util.h"
#include "core/common/status_macros.h"
#include "core/config/model_config.h"
#include "core/detection/anchors.h"
#include "core/model/checkpoint.h"
#include "core/model/detector.h"
#include "core/sim/rng.h"
#include "core/training/evaluator.h"
#include "core/training/frame_augment.h"
#include "core/training/frame_source.h"
#include "core/training/freezing.h"
#include "core/training/lr_schedule.h"
#include "core/training/sample_builder.h"
#include "core/training/stage_loss.h"

namespace qv2x {
namespace fs = std::filesystem;

namespace {

constexpr char kLast[] = "last.pth";
constexpr char kLegacyOptim[] = "last.optim";  // before optimiser states were per epoch
constexpr char kBest[] = "best.pth";

std::string Join(const std::string& dir, const std::string& file) {
  return (fs::path(dir) / file).string();
}

// One optimiser state per saved epoch: last.pth is written after it and names the epoch, so
// a run killed (or out of disk) between the two writes still finds the state that matches.
std::string OptimizerPath(const std::string& dir, int epoch) {
  return Join(dir, absl::StrFormat("epoch_%03d.optim", epoch));
}

// Once last.pth names `epoch`, the other epochs' optimiser states are never read again.
void RemoveOtherOptimizerStates(const std::string& dir, int epoch) {
  const std::string keep = fs::path(OptimizerPath(dir, epoch)).filename().string();
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name != keep && (name == kLegacyOptim ||
                         (absl::StartsWith(name, "epoch_") && absl::EndsWith(name, ".optim")))) {
      fs::remove(e.path(), ec);
    }
  }
}

// Deterministic shuffle (Fisher-Yates over splitmix64), identical on every platform.
std::vector<size_t> ShuffledOrder(size_t n, uint64_t seed) {
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  uint64_t state = seed * 0x9E3779B97F4A7C15ull + 1;
  auto next = [&state] {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  };
  for (size_t i = n; i > 1; --i) std::swap(order[i - 1], order[next() % i]);
  return order;
}

absl::Status SaveOptimizer(torch::optim::Optimizer& opt, int epoch, const std::string& path) {
  try {
    torch::serialize::OutputArchive archive;
    opt.save(archive);
    archive.write("qv2x_epoch", torch::tensor(static_cast<int64_t>(epoch)));
    std::ostringstream os;
    archive.save_to(os);
    return WriteFileAtomic(path, os.str());
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat(path, ": cannot save optimiser: ", e.what_without_backtrace()));
  }
}

absl::Status LoadOptimizer(torch::optim::Optimizer& opt, int expected_epoch,
                           const std::string& dir) {
  std::string path = OptimizerPath(dir, expected_epoch);
  if (!fs::exists(path) && fs::exists(Join(dir, kLegacyOptim))) path = Join(dir, kLegacyOptim);
  if (!fs::exists(path))
    return absl::FailedPreconditionError(absl::StrCat(path, ": missing, cannot resume"));
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path);
    torch::Tensor epoch;
    archive.read("qv2x_epoch", epoch);
    if (epoch.item<int64_t>() != expected_epoch) {
      return absl::FailedPreconditionError(
          absl::StrFormat("%s: optimiser state is from epoch %d, the checkpoint from epoch %d",
                          path, epoch.item<int64_t>(), expected_epoch));
    }
    opt.load(archive);
  } catch (const c10::Error& e) {
    return absl::DataLossError(absl::StrCat(path, ": ", e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

void SetLr(torch::optim::Adam& opt, double lr) {
  for (auto& group : opt.param_groups()) {
    static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
  }
}

// Backbone features of a few training frames (every agent), for the codebook's k-means start.
absl::Status InitCodebookFromData(Detector& model, const StageConfig& cfg, const AnchorGrid& grid,
                                  const FrameSource& source) {
  model->eval();
  SampleOptions opts;
  opts.targets = false;
  std::vector<Sample> samples;
  const size_t frames = std::min<size_t>(source.size(), 8);
  for (size_t i = 0; i < frames; ++i) {
    QV2X_ASSIGN_OR_RETURN(SceneFrame frame, source.Read(i * (source.size() / frames)));
    QV2X_ASSIGN_OR_RETURN(Sample s, BuildSample(frame, cfg, grid, opts));
    samples.push_back(std::move(s));
  }
  try {
    model->codebook()->InitFromFeatures(FrozenAgentFeatures(model, samples));
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("codebook k-means: ", e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

CheckpointMeta MetaFor(const StageConfig& cfg, int stage, int epoch) {
  CheckpointMeta meta;
  meta.model = cfg.model.core_method;
  meta.stage = stage;
  meta.epoch = epoch;
  meta.config_yaml = cfg.source_yaml;
  return meta;
}

std::map<std::string, double> LossValues(const LossTerms& terms) {
  std::map<std::string, double> out;
  for (const auto& [k, v] : terms.Values()) out[k] = v;
  return out;
}

}  // namespace

absl::Status CheckStageRequest(const StageRequest& r) {
  if (r.stage < 1 || r.stage > 3) {
    return absl::InvalidArgumentError(absl::StrCat("stage: must be 1, 2 or 3, got ", r.stage));
  }
  if (r.output_dir.empty()) return absl::InvalidArgumentError("output_dir: empty");
  auto cfg = LoadStageConfig(r.config_path, r.overrides);
  if (!cfg.ok()) {
    return absl::Status(cfg.status().code(), absl::StrCat("config_path: ", cfg.status().message()));
  }
  if (cfg->stage != r.stage) {
    return absl::InvalidArgumentError(
        absl::StrFormat("config_path: %s is a stage-%d config, stage %d was asked for",
                        r.config_path, cfg->stage, r.stage));
  }
  if (r.resume) {
    const std::string last = Join(r.output_dir, kLast);
    if (!fs::exists(last)) {
      return absl::FailedPreconditionError(absl::StrCat("resume: no checkpoint at ", last));
    }
    return absl::OkStatus();
  }
  // Stage 1 trains from scratch, or fine-tunes a stage-1 checkpoint when given one.
  if (r.stage == 1 && r.from_checkpoint.empty()) return absl::OkStatus();
  const int want = r.stage == 1 ? 1 : r.stage - 1;
  if (r.from_checkpoint.empty()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "stage %d starts from a stage-%d checkpoint: from_checkpoint is empty", r.stage, want));
  }
  if (!fs::exists(r.from_checkpoint)) {
    return absl::FailedPreconditionError(
        absl::StrCat("from_checkpoint: ", r.from_checkpoint, ": no such file"));
  }
  auto ckpt = ReadCheckpoint(r.from_checkpoint);
  if (!ckpt.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("from_checkpoint: ", ckpt.status().message()));
  }
  if (ckpt->meta.stage != want) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "from_checkpoint: %s holds a stage-%d model; stage %d needs a stage-%d checkpoint",
        r.from_checkpoint, ckpt->meta.stage, r.stage, want));
  }
  return absl::OkStatus();
}

absl::StatusOr<StageResult> RunStage(const StageRequest& request,
                                     const std::function<void(const StageProgress&)>& on_progress,
                                     const std::atomic<bool>* cancel) {
  QV2X_RETURN_IF_ERROR(CheckStageRequest(request));
  const auto t_start = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  };
  QV2X_ASSIGN_OR_RETURN(StageConfig cfg, LoadStageConfig(request.config_path, request.overrides));
  const int stage = request.stage;
  const TrainParams& tp = cfg.train_params;
  if (request.threads > 0) torch::set_num_threads(request.threads);
  torch::manual_seed(static_cast<uint64_t>(tp.seed));
  QV2X_RETURN_IF_ERROR(MakeDirs(request.output_dir));
  // Half-written files of a run that was killed mid-save: never a checkpoint, only disk.
  RemoveStaleTempFiles(request.output_dir);

  QV2X_ASSIGN_OR_RETURN(AnchorGrid grid, MakeAnchorGrid(cfg));
  QV2X_ASSIGN_OR_RETURN(Detector model, MakeDetector(cfg));
  int start_epoch = 0;
  if (request.resume) {
    QV2X_ASSIGN_OR_RETURN(Checkpoint ckpt, ReadCheckpoint(Join(request.output_dir, kLast)));
    if (ckpt.meta.stage != stage) {
      return absl::FailedPreconditionError(absl::StrFormat("resume: %s is from stage %d, not %d",
                                                           Join(request.output_dir, kLast),
                                                           ckpt.meta.stage, stage));
    }
    if (absl::Status st = LoadStateDict(*model, ckpt); !st.ok()) {
      return CheckpointRefused(st, Join(request.output_dir, kLast), ckpt.meta, cfg.name);
    }
    start_epoch = ckpt.meta.epoch;
  } else if (!request.from_checkpoint.empty()) {
    QV2X_ASSIGN_OR_RETURN(Checkpoint ckpt, ReadCheckpoint(request.from_checkpoint));
    LoadOptions opts;
    opts.skip_codebook = stage == 2;  // stage 2 learns the codebook afresh
    if (absl::Status st = LoadStateDict(*model, ckpt, opts); !st.ok()) {
      return CheckpointRefused(st, request.from_checkpoint, ckpt.meta, cfg.name);
    }
  }

  const OptimizerConfig& oc = cfg.optimizer;
  torch::optim::Adam optimizer(
      TrainableParameters(model, stage),
      torch::optim::AdamOptions(oc.lr).eps(oc.eps).weight_decay(oc.weight_decay));
  if (request.resume) {
    QV2X_RETURN_IF_ERROR(LoadOptimizer(optimizer, start_epoch, request.output_dir));
  }

  const Opv2vOptions dataset = DatasetOptionsOf(cfg);
  QV2X_ASSIGN_OR_RETURN(auto train_src, FrameSource::Open(cfg.root_dir, tp.train_frames, dataset));
  QV2X_ASSIGN_OR_RETURN(AugmentConfig augment, AugmentConfigOf(cfg));
  std::unique_ptr<FrameSource> val_src;
  if (tp.eval_freq > 0) {
    QV2X_ASSIGN_OR_RETURN(val_src, FrameSource::Open(cfg.validate_dir, tp.val_frames, dataset));
  }

  const int64_t n = static_cast<int64_t>(train_src->size());
  const int64_t steps_per_epoch = (n + tp.batch_size - 1) / tp.batch_size;
  StageResult result;
  result.last_checkpoint = Join(request.output_dir, kLast);
  result.best_checkpoint = Join(request.output_dir, kBest);
  double best_map = -1;
  int last_saved_epoch = start_epoch;  // of result.last_checkpoint
  StageProgress progress;
  progress.stage = stage;
  progress.epochs_total = tp.epoches;
  progress.steps_total = steps_per_epoch * tp.epoches;
  auto emit = [&](const std::string& message) {
    progress.elapsed_s = elapsed();
    progress.message = message;
    if (on_progress) on_progress(progress);
    progress.message.clear();
    progress.checkpoint.clear();
    progress.validation_ap.clear();
  };
  emit(absl::StrFormat("stage %d: %d frames/epoch from %s, %d steps/epoch, epochs %d..%d", stage, n,
                       cfg.root_dir, steps_per_epoch, start_epoch + 1, tp.epoches));

  if (stage == 2 && !request.resume) {
    // Start the codebook from the stage-1 features it must represent (k-means).
    QV2X_RETURN_IF_ERROR(InitCodebookFromData(model, cfg, grid, *train_src));
    emit("codebook initialised by k-means on stage-1 features");
  }

  SampleOptions sample_options;
  sample_options.occupancy = stage == 1;
  sample_options.targets = stage != 2;
  for (int epoch = start_epoch; epoch < tp.epoches; ++epoch) {
    const double lr = MultiStepLr(oc.lr, oc.gamma, oc.step_size, epoch);
    SetLr(optimizer, lr);
    progress.lr = lr;
    progress.epoch = epoch + 1;
    SetTrainMode(model, stage);
    std::map<std::string, double> epoch_sums;  // for the epoch-mean losses
    const std::vector<size_t> order =
        ShuffledOrder(static_cast<size_t>(n), static_cast<uint64_t>(tp.seed) * 1000003u + epoch);
    for (int64_t step = 0; step < steps_per_epoch; ++step) {
      if (cancel != nullptr && cancel->load()) {
        result.cancelled = true;
        result.wall_s = elapsed();
        emit(absl::StrFormat(
            "cancelled in epoch %d; last good checkpoint %s", epoch + 1,
            fs::exists(result.last_checkpoint) ? result.last_checkpoint : std::string("(none)")));
        return result;
      }
      std::vector<Sample> batch;
      for (int64_t k = step * tp.batch_size; k < std::min(n, (step + 1) * tp.batch_size); ++k) {
        QV2X_ASSIGN_OR_RETURN(SceneFrame frame, train_src->Read(order[k]));
        Augmentation aug;
        if (augment.Any()) {
          // Drawn from (seed, epoch, frame): a resumed run augments exactly as the first.
          const uint64_t key = sim::StreamKey(static_cast<uint64_t>(tp.seed),
                                              {epoch, static_cast<int64_t>(order[k])});
          aug = DrawAugmentation(augment, frame, key);
          ApplyAugmentation(aug, &frame);
        }
        QV2X_ASSIGN_OR_RETURN(Sample s, BuildSample(frame, cfg, grid, sample_options));
        MarkSparseAgents(aug, &s.collated);
        batch.push_back(std::move(s));
      }
      LossTerms terms;
      try {
        QV2X_ASSIGN_OR_RETURN(terms, ComputeStageLoss(model, cfg, batch, stage));
        if (!std::isfinite(terms.total.item<double>())) {
          return absl::InternalError(
              absl::StrFormat("loss is not finite at epoch %d step %d; last good checkpoint %s",
                              epoch + 1, step + 1, result.last_checkpoint));
        }
        optimizer.zero_grad();
        terms.total.backward();
        optimizer.step();
      } catch (const c10::Error& e) {
        return absl::InternalError(absl::StrFormat("epoch %d step %d: %s", epoch + 1, step + 1,
                                                   e.what_without_backtrace()));
      }
      progress.step = epoch * steps_per_epoch + step + 1;
      progress.losses = LossValues(terms);
      for (const auto& [term, v] : progress.losses) epoch_sums[term] += v;
      emit("");
    }
    result.epochs_done = epoch + 1;
    result.final_losses.clear();
    for (const auto& [term, sum] : epoch_sums) {
      result.final_losses[term] = sum / static_cast<double>(steps_per_epoch);
    }
    const bool last_epoch = epoch + 1 == tp.epoches;
    const CheckpointMeta meta = MetaFor(cfg, stage, epoch + 1);
    if (last_epoch || (tp.save_freq > 0 && (epoch + 1) % tp.save_freq == 0)) {
      const std::string numbered =
          Join(request.output_dir, absl::StrFormat("epoch_%03d.pth", epoch + 1));
      // Optimiser first: last.pth is the commit point a resume starts from.
      absl::Status saved =
          SaveOptimizer(optimizer, epoch + 1, OptimizerPath(request.output_dir, epoch + 1));
      if (saved.ok()) saved = SaveCheckpoint(*model, meta, result.last_checkpoint);
      if (saved.ok()) {
        last_saved_epoch = epoch + 1;
        RemoveOtherOptimizerStates(request.output_dir, last_saved_epoch);
        saved = SaveCheckpoint(*model, meta, numbered);
      }
      if (!saved.ok()) {
        return absl::Status(
            saved.code(),
            absl::StrFormat("saving epoch %d: %s; %s", epoch + 1, saved.message(),
                            last_saved_epoch > 0
                                ? absl::StrFormat("resume continues from %s (epoch %d)",
                                                  result.last_checkpoint, last_saved_epoch)
                                : std::string("no checkpoint of this run to resume from")));
      }
      progress.checkpoint = numbered;
      emit(absl::StrCat("saved ", numbered));
    }
    if (val_src && (last_epoch || (epoch + 1) % tp.eval_freq == 0)) {
      QV2X_ASSIGN_OR_RETURN(EvalRun run, EvaluateDetector(model, *val_src, cfg, grid));
      for (int c = 0; c < kNumClasses; ++c) {
        const auto& ap = run.result.ap[c];
        progress.validation_ap[ClassName(static_cast<ObjectClass>(c))] = {ap[0], ap[1], ap[2]};
      }
      const double map50 = run.result.map[1];
      std::string note =
          absl::StrFormat("validation on %d frames: mAP@0.5 %.4f", val_src->size(), map50);
      if (map50 > best_map) {
        best_map = map50;
        QV2X_RETURN_IF_ERROR(SaveCheckpoint(*model, meta, result.best_checkpoint));
        absl::StrAppend(&note, " (best so far, saved ", result.best_checkpoint, ")");
      }
      emit(note);
    }
  }
  if (best_map < 0) {
    // Never validated: the last checkpoint is the best one there is.
    QV2X_RETURN_IF_ERROR(
        SaveCheckpoint(*model, MetaFor(cfg, stage, result.epochs_done), result.best_checkpoint));
  }
  result.wall_s = elapsed();
  // A small summary next to the checkpoints (provenance files quote it).
  std::string summary = absl::StrFormat("{\"stage\": %d, \"epochs\": %d, \"wall_s\": %.1f", stage,
                                        result.epochs_done, result.wall_s);
  for (const auto& [term, v] : result.final_losses) {
    absl::StrAppend(&summary, absl::StrFormat(", \"%s\": %.6g", term, v));
  }
  absl::StrAppend(&summary, "}\n");
  QV2X_RETURN_IF_ERROR(WriteFileAtomic(Join(request.output_dir, "losses.json"), summary));
  return result;
}

}  // namespace qv2x
