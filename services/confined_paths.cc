#include "services/confined_paths.h"

#include <algorithm>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "services/log.h"

namespace qv2x::services {
namespace fs = std::filesystem;

absl::StatusOr<std::string> ConfinePath(const std::string& root, const std::string& path,
                                        const std::string& field) {
  if (path.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": empty path"));
  if (path.size() > kMaxPathBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": a path of ", path.size(), " bytes (at most ", kMaxPathBytes, ")"));
  }
  std::error_code ec;
  const fs::path base = fs::weakly_canonical(fs::absolute(root), ec);
  fs::path p(path);
  if (p.is_relative()) p = base / p;
  const fs::path resolved = fs::weakly_canonical(p, ec);
  if (ec)
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": cannot resolve \"", ClipForLog(path, 200), "\""));
  auto [b, r] = std::mismatch(base.begin(), base.end(), resolved.begin(), resolved.end());
  if (b != base.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": \"", ClipForLog(path, 200), "\" is outside ", base.string()));
  }
  return resolved.string();
}

absl::StatusOr<std::string> ResolveInput(const std::string& artifacts_dir,
                                         const std::string& configs_dir, const std::string& path,
                                         const std::string& field) {
  auto in_artifacts = ConfinePath(artifacts_dir, path, field);
  if (in_artifacts.ok() && fs::exists(*in_artifacts)) return in_artifacts;
  if (!configs_dir.empty()) {
    const fs::path configs = fs::weakly_canonical(fs::absolute(configs_dir));
    auto in_configs = ConfinePath(configs.parent_path().string(), path, field);
    if (in_configs.ok() && ConfinePath(configs.string(), *in_configs, field).ok()) {
      if (!fs::exists(*in_configs)) {
        return absl::FailedPreconditionError(
            absl::StrCat(field, ": ", ClipForLog(path, 200), ": no such file"));
      }
      return in_configs;
    }
  }
  if (in_artifacts.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat(field, ": ", ClipForLog(path, 200), ": no such file"));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      field, ": \"", ClipForLog(path, 200), "\" is outside the artifacts and configs folders"));
}

}  // namespace qv2x::services
