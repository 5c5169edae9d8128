#include "services/playback_flags.h"

#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"

ABSL_FLAG(std::string, dataset, "",
          "play this dataset folder back (OPV2V / V2X-Real layout) instead of simulating the "
          "scene: the scene's k-th agent (the ego first) plays each scenario's k-th agent");
ABSL_FLAG(std::string, dataset_mode, "vc", "with --dataset: vc | v2v | ic | i2i");
ABSL_FLAG(std::string, missing_agent, "skip",
          "with --dataset, an agent without a record at a frame: skip (it sends nothing then) "
          "| stop (an error)");

namespace qv2x::services {

absl::StatusOr<sim::ScenePlayback> ScenePlaybackFromFlags(const sim::SceneConfig& scene) {
  sim::DatasetPlayback dataset;
  dataset.path = absl::GetFlag(FLAGS_dataset);
  absl::StatusOr<DatasetMode> mode = ParseDatasetMode(absl::GetFlag(FLAGS_dataset_mode));
  if (!mode.ok())
    return absl::InvalidArgumentError(absl::StrCat("--dataset_mode: ", mode.status().message()));
  absl::StatusOr<MissingAgent> missing = ParseMissingAgent(absl::GetFlag(FLAGS_missing_agent));
  if (!missing.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--missing_agent: ", missing.status().message()));
  }
  dataset.options = {*mode, *missing};
  return sim::ScenePlayback::Create(scene, dataset);
}

}  // namespace qv2x::services
