#include "core/model/quantv2x_interop.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/common/file_util.h"
#include "core/common/status_macros.h"
#include "core/model/checkpoint.h"
#include "core/model/detector.h"

namespace qv2x {
namespace {

constexpr char kDataParallelPrefix[] = "module.";

// The model of `cfg` with `ckpt` loaded strictly; errors name `path`.
absl::StatusOr<Detector> Loaded(const StageConfig& cfg, const Checkpoint& ckpt,
                                const std::string& path) {
  QV2X_ASSIGN_OR_RETURN(Detector model, MakeDetector(cfg));
  if (absl::Status st = LoadStateDict(*model, ckpt); !st.ok()) {
    return absl::Status(st.code(),
                        absl::StrCat(path, " (for config ", cfg.name, "): ", st.message()));
  }
  return model;
}

}  // namespace

absl::StatusOr<InteropReport> ImportQuantV2xCheckpoint(const StageConfig& cfg,
                                                       const std::string& in,
                                                       const std::string& out) {
  QV2X_ASSIGN_OR_RETURN(Checkpoint file, ReadCheckpoint(in));
  InteropReport report;
  Checkpoint renamed;
  for (auto& [name, t] : file.tensors) {
    std::string n = name;
    if (absl::StartsWith(n, kDataParallelPrefix)) {
      n = n.substr(sizeof(kDataParallelPrefix) - 1);
      ++report.prefixes_removed;
    }
    renamed.tensors.emplace_back(std::move(n), t);
  }
  report.tensors = static_cast<int64_t>(renamed.tensors.size());
  QV2X_ASSIGN_OR_RETURN(Detector model, Loaded(cfg, renamed, in));
  CheckpointMeta meta;
  meta.model = cfg.model.core_method;
  meta.stage = cfg.stage;
  meta.config_yaml = cfg.source_yaml;
  QV2X_RETURN_IF_ERROR(SaveCheckpoint(*model, meta, out));
  report.codebook_digest = CodebookDigestOf(*model);
  return report;
}

absl::StatusOr<InteropReport> ExportQuantV2xCheckpoint(const StageConfig& cfg,
                                                       const std::string& in,
                                                       const std::string& out) {
  QV2X_ASSIGN_OR_RETURN(Checkpoint file, ReadCheckpoint(in));
  QV2X_ASSIGN_OR_RETURN(Detector model, Loaded(cfg, file, in));
  QV2X_ASSIGN_OR_RETURN(std::string bytes, SerializeStateDict(*model));
  QV2X_RETURN_IF_ERROR(WriteFileAtomic(out, bytes));
  InteropReport report;
  report.tensors = static_cast<int64_t>(StateDict(*model).size());
  report.codebook_digest = CodebookDigestOf(*model);
  return report;
}

}  // namespace qv2x
