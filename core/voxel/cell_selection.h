// Which cells of its feature map an agent sends in a sparse message (issue 13): a cell is
// worth sending when something stands in it, i.e. its points span at least
// `min_height_span_m` vertically (flat ground spans almost nothing; cars, people, walls
// do), dilated by `dilation_cells` so that the ego keeps the context around each object
// its convolutions look at. Needs no training and costs one pass over the pillars' points,
// the same the encoder sees, so training (Detector::forward) and the agents agree exactly.
#ifndef QV2X_CORE_VOXEL_CELL_SELECTION_H_
#define QV2X_CORE_VOXEL_CELL_SELECTION_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace qv2x {

struct Pillars;  // core/voxel/pillars.h, which carries a CellSelection per collated agent

struct CellSelection {
  double min_height_span_m = 0.3;
  int dilation_cells = 2;
};

// "SPAN" or "SPAN+DILATION" (metres, cells; dilation 2 when absent), as the tools take it.
absl::StatusOr<CellSelection> ParseCellSelection(absl::string_view text);

// One flag per cell of the feature map [feature_h, feature_w] (row = y, col = x, as the
// pillar grid it is a whole-stride reduction of), nonzero = send, from the agent's pillars.
// InvalidArgument when the feature grid does not divide the pillar grid or a setting is
// negative.
absl::StatusOr<std::vector<uint8_t>> SelectCells(const Pillars& pillars, int64_t feature_h,
                                                 int64_t feature_w, const CellSelection& selection);

}  // namespace qv2x

#endif  // QV2X_CORE_VOXEL_CELL_SELECTION_H_
