// Pillarisation (SPEC §3) and multi-agent collation: the plain-C++ half of the
// PointPillars encoder. The model turns Pillars into tensors without copying semantics.
#ifndef QV2X_CORE_VOXEL_PILLARS_H_
#define QV2X_CORE_VOXEL_PILLARS_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "core/config/model_config.h"
#include "core/data/frame.h"
#include "core/geometry/transform.h"
#include "core/voxel/cell_selection.h"

namespace qv2x {

// Per-point feature layout of PillarVFE's input (10 values per point).
enum PointFeature : int {
  kFeatX = 0,
  kFeatY,
  kFeatZ,
  kFeatIntensity,  // absolute xyz + intensity
  kFeatMeanDx,
  kFeatMeanDy,
  kFeatMeanDz,  // offset to the pillar's point mean
  kFeatCenterDx,
  kFeatCenterDy,
  kFeatCenterDz,  // offset to the pillar centre
  kNumPointFeatures
};

struct Pillars {
  int grid_w = 0, grid_h = 0;       // pillar grid (x columns, y rows)
  int max_points = 0;               // points per pillar slot
  int num_pillars = 0;              // P
  std::vector<float> features;      // [P, max_points, 10], padded points all 0
  std::vector<int32_t> num_points;  // [P], points kept in each pillar (>= 1)
  std::vector<int32_t> coords;      // [P, 2]: (row = y index, col = x index)
};

enum class PillarMode { kTrain, kTest };  // selects max_voxel_train / max_voxel_test

// Keeps points inside cfg.lidar_range, drops the agent's own body (cfg.ego_body_box) and,
// when !cfg.use_intensity, zeroes intensity.
PointCloud CropPoints(const PointCloud& in, const VoxelConfig& cfg);

// Groups cropped points into pillars in input order: the first max_points points of a
// pillar are kept, pillars beyond the mode's limit are dropped (first come, first kept).
Pillars Pillarize(const PointCloud& cropped, const VoxelConfig& cfg, PillarMode mode);

// One agent's share of a collated frame.
struct AgentInput {
  int agent_id = 0;
  Pose lidar_pose;
  Pillars pillars;
  // Set: the agent sends a sparse map, only the cells this selects of its pillars; the ego
  // sees zero features elsewhere (training with sparse messages). Never set for the ego.
  std::optional<CellSelection> sparse;
};

// A multi-agent frame ready for the model: the ego first, then up to max_cav - 1
// other agents within comm_range of the ego (nearest first).
struct CollatedFrame {
  std::vector<AgentInput> agents;
  // pairwise[i][j]: transform from agent i's frame to agent j's (T_j^-1 T_i).
  std::vector<std::vector<Mat4>> pairwise;
  // Affine warp per agent for affine_grid: ego output grid -> agent map (SPEC §5).
  std::vector<AffineWarp> warp_to_ego;
};

absl::StatusOr<CollatedFrame> CollateFrame(const SceneFrame& frame, const VoxelConfig& voxel,
                                           double comm_range, int max_cav, PillarMode mode);

}  // namespace qv2x

#endif  // QV2X_CORE_VOXEL_PILLARS_H_
