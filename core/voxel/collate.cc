// CollateFrame: picks the agents of one scene frame that the ego can hear, pillarises
// each in its own sensor frame and precomputes the transforms fusion needs (SPEC §5).
#include "core/voxel/pillars.h"

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace qv2x {
namespace {

bool Finite(const Pose& p) {
  for (double v : p.ToArray()) {
    if (!std::isfinite(v)) return false;
  }
  return true;
}

// NormalizedAffine assumes the sensor sits at the grid centre and square pillars; a
// config that breaks either would warp every non-ego map to the wrong place.
absl::Status CheckWarpable(const VoxelConfig& v) {
  const auto& r = v.lidar_range;
  const double vx = v.voxel_size[0], vy = v.voxel_size[1];
  if (!(vx > 0) || !(vy > 0) || !(v.voxel_size[2] > 0)) {
    return absl::InvalidArgumentError("voxel_size must be positive");
  }
  if (!(r[3] > r[0]) || !(r[4] > r[1]) || !(r[5] > r[2])) {
    return absl::InvalidArgumentError("cav_lidar_range must have min < max on every axis");
  }
  constexpr double kTol = 1e-6;
  if (std::fabs(r[0] + r[3]) > kTol || std::fabs(r[1] + r[4]) > kTol) {
    return absl::InvalidArgumentError(
        absl::StrCat("cav_lidar_range must be symmetric about the sensor in x and y for the fusion "
                     "warp, got x [",
                     r[0], ", ", r[3], "] y [", r[1], ", ", r[4], "]"));
  }
  if (std::fabs(vx - vy) > kTol) {
    return absl::InvalidArgumentError(absl::StrCat(
        "voxel_size x and y must be equal for the fusion warp, got ", vx, " and ", vy));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CollatedFrame> CollateFrame(const SceneFrame& frame, const VoxelConfig& voxel,
                                           double comm_range, int max_cav, PillarMode mode) {
  if (frame.agents.empty()) return absl::InvalidArgumentError("frame has no agents");
  if (max_cav < 1) {
    return absl::InvalidArgumentError(absl::StrCat("max_cav must be at least 1, got ", max_cav));
  }
  if (!(comm_range >= 0)) {
    return absl::InvalidArgumentError(absl::StrCat("comm_range must be >= 0, got ", comm_range));
  }
  absl::Status warpable = CheckWarpable(voxel);
  if (!warpable.ok()) return warpable;
  for (const AgentFrame& a : frame.agents) {
    if (!Finite(a.lidar_pose)) {
      return absl::InvalidArgumentError(
          absl::StrCat("agent ", a.agent_id, ": lidar_pose is not finite"));
    }
  }

  // The ego (agents.front()) first, then the others within range, nearest first. Distance
  // is planar between the lidar poses, as OpenCOOD measures it; ties keep input order.
  const Pose& ego_pose = frame.agents.front().lidar_pose;
  std::vector<std::pair<double, size_t>> others;
  for (size_t i = 1; i < frame.agents.size(); ++i) {
    const Pose& p = frame.agents[i].lidar_pose;
    const double d = std::hypot(p.x - ego_pose.x, p.y - ego_pose.y);
    if (d <= comm_range) others.emplace_back(d, i);
  }
  std::stable_sort(others.begin(), others.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<size_t> picked{0};
  for (const auto& [d, i] : others) {
    if (static_cast<int>(picked.size()) == max_cav) break;
    picked.push_back(i);
  }

  CollatedFrame out;
  const size_t n = picked.size();
  out.agents.reserve(n);
  for (size_t k = 0; k < n; ++k) {
    const AgentFrame& a = frame.agents[picked[k]];
    AgentInput in;
    in.agent_id = a.agent_id;
    in.lidar_pose = a.lidar_pose;
    in.pillars = Pillarize(CropPoints(a.points, voxel), voxel, mode);
    out.agents.push_back(std::move(in));
  }

  out.pairwise.assign(n, std::vector<Mat4>(n, Mat4::Identity()));
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < n; ++j) {
      if (i != j) {
        out.pairwise[i][j] = RelativeTransform(out.agents[i].lidar_pose, out.agents[j].lidar_pose);
      }
    }
  }
  // Backward warp: each ego output cell samples agent k's map at T_k^-1 T_ego, which is
  // pairwise[ego][k].
  const int w = out.agents.front().pillars.grid_w, h = out.agents.front().pillars.grid_h;
  out.warp_to_ego.reserve(n);
  for (size_t k = 0; k < n; ++k) {
    out.warp_to_ego.push_back(NormalizedAffine(out.pairwise[0][k], w, h, voxel.voxel_size[0]));
  }
  return out;
}

}  // namespace qv2x
