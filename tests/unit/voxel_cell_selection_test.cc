#include "core/voxel/cell_selection.h"

#include <gtest/gtest.h>

#include "core/voxel/pillars.h"

namespace qv2x {
namespace {

// A 16 x 8 m range at 0.5 m pillars: 32 x 16 pillars, a 2-stride feature map of 16 x 8
// cells of 1 m. Points are pillarised as the agent does.
VoxelConfig Range() {
  VoxelConfig v;
  v.lidar_range = {-8, -4, -3, 8, 4, 1};
  v.voxel_size = {0.5, 0.5, 4};
  return v;
}

absl::StatusOr<std::vector<uint8_t>> Select(const PointCloud& pts, const CellSelection& sel,
                                            int64_t h = 8, int64_t w = 16) {
  return SelectCells(Pillarize(pts, Range(), PillarMode::kTest), h, w, sel);
}

int Count(const std::vector<uint8_t>& m) {
  int n = 0;
  for (uint8_t f : m) n += f != 0;
  return n;
}

TEST(CellSelectionTest, SendsTallCellsWithTheirNeighbourhood) {
  PointCloud pts;
  // Flat ground everywhere (span 0.02 m) ...
  for (float x = -7.9f; x < 8; x += 0.5f) {
    for (float y = -3.9f; y < 4; y += 0.5f) pts.push_back({x, y, -1.70f + (x > 0 ? 0.02f : 0), 0});
  }
  // ... and a post at (0.5, 0.5): cell row 4, col 8.
  pts.push_back({0.5f, 0.5f, -1.7f, 0});
  pts.push_back({0.5f, 0.5f, -0.2f, 0});
  CellSelection sel;
  sel.min_height_span_m = 0.3;
  sel.dilation_cells = 0;
  auto m = Select(pts, sel);
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->size(), 128u);
  EXPECT_EQ(Count(*m), 1);
  EXPECT_TRUE((*m)[4 * 16 + 8]);
  sel.dilation_cells = 1;
  m = Select(pts, sel);
  EXPECT_EQ(Count(*m), 9);
  for (int y = 3; y <= 5; ++y) {
    for (int x = 7; x <= 9; ++x) EXPECT_TRUE((*m)[y * 16 + x]) << y << "," << x;
  }
  // Span 0: every cell with a point is sent.
  sel.min_height_span_m = 0;
  sel.dilation_cells = 0;
  EXPECT_EQ(Count(*Select(pts, sel)), 128);
  // Nothing stands above 2 m.
  sel.min_height_span_m = 2;
  EXPECT_EQ(Count(*Select(pts, sel)), 0);
}

TEST(CellSelectionTest, DilationStopsAtTheBorder) {
  PointCloud pts{{-7.9f, -3.9f, -1.7f, 0}, {-7.9f, -3.9f, 0.5f, 0}};  // corner cell (0, 0)
  CellSelection sel;
  sel.dilation_cells = 2;
  auto m = Select(pts, sel);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(Count(*m), 9);
}

TEST(CellSelectionTest, RefusesGridsAndSettingsThatDoNotFit) {
  CellSelection sel;
  EXPECT_EQ(Select({}, sel, 5, 16).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Select({}, sel, 8, 8).status().code(),
            absl::StatusCode::kInvalidArgument);  // strides differ along x and y
  sel.dilation_cells = -1;
  EXPECT_EQ(Select({}, sel).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(CellSelectionTest, ParsesSpanAndDilation) {
  auto a = ParseCellSelection("0.5");
  ASSERT_TRUE(a.ok());
  EXPECT_DOUBLE_EQ(a->min_height_span_m, 0.5);
  EXPECT_EQ(a->dilation_cells, 2);  // the default when only the span is given
  auto b = ParseCellSelection("1+0");
  ASSERT_TRUE(b.ok());
  EXPECT_DOUBLE_EQ(b->min_height_span_m, 1.0);
  EXPECT_EQ(b->dilation_cells, 0);
  for (const char* bad : {"", "x", "-0.5", "1+", "1+-1", "1+2+3", "nan"}) {
    EXPECT_EQ(ParseCellSelection(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace qv2x
