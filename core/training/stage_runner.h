// Runs one QuantV2X training stage (SPEC §6) from a stage YAML: data from the simulator
// (or a dataset folder), Adam + multistep schedule, validation AP, atomic resumable
// checkpoints. The trainer service is a thin adapter over RunStage().
#ifndef QV2X_CORE_TRAINING_STAGE_RUNNER_H_
#define QV2X_CORE_TRAINING_STAGE_RUNNER_H_

#include <array>
#include <atomic>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace qv2x {

struct StageRequest {
  int stage = 1;                       // 1, 2 or 3
  std::string config_path;             // stage YAML
  std::vector<std::string> overrides;  // "key.path=value"
  std::string from_checkpoint;         // stage 1: empty (scratch) or a stage-1 ckpt to fine-tune;
                                       // stage 2: stage-1 ckpt; stage 3: stage-2 ckpt
  std::string output_dir;              // checkpoints and log go here
  bool resume = false;                 // continue from output_dir/last.pth
  int threads = 0;                     // intra-op threads; 0 = library default
};

struct StageProgress {
  int stage = 0;
  int epoch = 0;  // 1-based
  int epochs_total = 0;
  int64_t step = 0;
  int64_t steps_total = 0;
  std::map<std::string, double> losses;  // total, cls, reg, dir, occ, codebook
  double lr = 0;
  double elapsed_s = 0;
  // Validation AP per class at 0.3/0.5/0.7 (set after a validation pass).
  std::map<std::string, std::array<double, 3>> validation_ap;
  std::string checkpoint;  // set when a checkpoint was written
  std::string message;
};

struct StageResult {
  std::string last_checkpoint;  // output_dir/last.pth
  std::string best_checkpoint;  // best by validation (or last when never validated)
  int epochs_done = 0;
  bool cancelled = false;
  std::map<std::string, double> final_losses;  // mean over the last epoch's steps
  double wall_s = 0;
};

// Validates the request (config parses, stage matches the config, the input checkpoint
// exists and has the right stage) without training: FAILED_PRECONDITION or
// INVALID_ARGUMENT naming what is wrong.
absl::Status CheckStageRequest(const StageRequest& request);

// Runs the stage. `on_progress` is called from the calling thread after every step and
// at every event; `cancel` is polled between steps (cancelling keeps the last good
// checkpoint and returns a result with cancelled = true).
absl::StatusOr<StageResult> RunStage(const StageRequest& request,
                                     const std::function<void(const StageProgress&)>& on_progress,
                                     const std::atomic<bool>* cancel);

}  // namespace qv2x

#endif  // QV2X_CORE_TRAINING_STAGE_RUNNER_H_
