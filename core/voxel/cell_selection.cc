#include "core/voxel/cell_selection.h"

#include <algorithm>
#include <limits>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/voxel/pillars.h"

namespace qv2x {

absl::StatusOr<CellSelection> ParseCellSelection(absl::string_view text) {
  CellSelection sel;
  const size_t plus = text.find('+');
  if (!absl::SimpleAtod(text.substr(0, plus), &sel.min_height_span_m) ||
      !(sel.min_height_span_m >= 0) ||
      (plus != absl::string_view::npos &&
       (!absl::SimpleAtoi(text.substr(plus + 1), &sel.dilation_cells) || sel.dilation_cells < 0))) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected SPAN or SPAN+DILATION (metres >= 0, cells >= 0), got '", text, "'"));
  }
  return sel;
}

absl::StatusOr<std::vector<uint8_t>> SelectCells(const Pillars& pillars, int64_t feature_h,
                                                 int64_t feature_w,
                                                 const CellSelection& selection) {
  const int64_t grid_h = pillars.grid_h, grid_w = pillars.grid_w;
  if (feature_h <= 0 || feature_w <= 0 || grid_h % feature_h != 0 || grid_w % feature_w != 0 ||
      grid_h / feature_h != grid_w / feature_w) {
    return absl::InvalidArgumentError(absl::StrCat("feature map ", feature_h, "x", feature_w,
                                                   " is no whole-stride reduction of the ", grid_h,
                                                   "x", grid_w, " pillar grid"));
  }
  if (!(selection.min_height_span_m >= 0) || selection.dilation_cells < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cell selection: min_height_span_m ", selection.min_height_span_m,
                     " and dilation_cells ", selection.dilation_cells, " must not be negative"));
  }
  const int64_t stride = grid_h / feature_h;
  const int64_t cells = feature_h * feature_w;
  std::vector<float> lo(cells, std::numeric_limits<float>::infinity());
  std::vector<float> hi(cells, -std::numeric_limits<float>::infinity());
  const size_t point_stride = kNumPointFeatures, pillar_stride = pillars.max_points * point_stride;
  for (int p = 0; p < pillars.num_pillars; ++p) {
    const int64_t row = pillars.coords[2 * p] / stride, col = pillars.coords[2 * p + 1] / stride;
    if (row < 0 || row >= feature_h || col < 0 || col >= feature_w) continue;
    const int64_t c = row * feature_w + col;
    const float* pts = pillars.features.data() + p * pillar_stride;
    for (int j = 0; j < pillars.num_points[p]; ++j) {
      const float z = pts[j * point_stride + kFeatZ];
      lo[c] = std::min(lo[c], z);
      hi[c] = std::max(hi[c], z);
    }
  }
  std::vector<uint8_t> tall(cells, 0);
  for (int64_t c = 0; c < cells; ++c) {
    tall[c] = hi[c] >= lo[c] && hi[c] - lo[c] >= selection.min_height_span_m;
  }
  // Square dilation, separable: rows first, then columns.
  const int64_t r = selection.dilation_cells;
  std::vector<uint8_t> across(cells, 0), out(cells, 0);
  for (int64_t y = 0; y < feature_h; ++y) {
    for (int64_t x = 0; x < feature_w; ++x) {
      if (!tall[y * feature_w + x]) continue;
      for (int64_t xx = std::max<int64_t>(0, x - r); xx <= std::min(feature_w - 1, x + r); ++xx) {
        across[y * feature_w + xx] = 1;
      }
    }
  }
  for (int64_t y = 0; y < feature_h; ++y) {
    for (int64_t x = 0; x < feature_w; ++x) {
      if (!across[y * feature_w + x]) continue;
      for (int64_t yy = std::max<int64_t>(0, y - r); yy <= std::min(feature_h - 1, y + r); ++yy) {
        out[yy * feature_w + x] = 1;
      }
    }
  }
  return out;
}

}  // namespace qv2x
