// Bird's-eye-view picture of one multi-agent frame, in the ego's frame (x to the right,
// y up): every agent's points in its own colour, ground-truth boxes in class colours (solid
// when the ego sees the object, dashed when only other agents do, dim when nobody does),
// agent markers with headings, optional predicted boxes with scores, a metric grid, a
// scale bar, the range-of-interest rectangle and a legend.
#ifndef QV2X_CORE_RENDER_BEV_PNG_H_
#define QV2X_CORE_RENDER_BEV_PNG_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/data/frame.h"
#include "core/geometry/box.h"

namespace qv2x {

// A detection to draw, in the ego frame.
struct RenderBox {
  ObjectClass cls = ObjectClass::kVehicle;
  Box3D box;
  double score = 0;
};

struct BevRenderOptions {
  double view_half_x_m = 60;  // picture extent around the ego
  double view_half_y_m = 32;
  double roi_half_x_m = 51.2;  // range-of-interest rectangle; 0 leaves it out
  double roi_half_y_m = 25.6;
  double pixels_per_m = 10;
  double grid_step_m = 10;     // 0 leaves the grid out
  double ground_band_m = 0.3;  // points this close above an agent's ground level are dimmed
  std::string title;           // empty: "<scenario>  frame <timestamp>"

  int width_px() const;
  int height_px() const;
};

// Ground level of one sweep in its sensor frame: a low quantile of the point heights
// (0 for an empty sweep). Points this close above it are ground in the picture.
float GroundLevel(const PointCloud& points);

// The picture as PNG bytes. InvalidArgument for a frame without agents or bad options.
absl::StatusOr<std::string> RenderBevPngBytes(const SceneFrame& frame,
                                              const BevRenderOptions& options,
                                              const std::vector<RenderBox>& predictions);

// Writes the picture to `path` (atomically; parent folders are created).
absl::Status RenderBevPng(const SceneFrame& frame, const BevRenderOptions& options,
                          const std::vector<RenderBox>& predictions, const std::string& path);

}  // namespace qv2x

#endif  // QV2X_CORE_RENDER_BEV_PNG_H_
