#include "core/detection/anchors.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "tests/unit/detection_test_util.h"

namespace qv2x {
namespace {

TEST(DetectionAnchorsTest, CountAndLayoutAtTinyGrid) {
  const auto grid = MakeAnchorGrid(testing::DetectionTestConfig());
  ASSERT_TRUE(grid.ok()) << grid.status();
  // 12.8 m x 6.4 m at 0.4 m pillars = 32 x 16, stride 2 -> 16 columns x 8 rows.
  EXPECT_EQ(grid->feature_w, 16);
  EXPECT_EQ(grid->feature_h, 8);
  EXPECT_EQ(grid->num_classes, 3);
  EXPECT_EQ(grid->num_yaws, 2);
  EXPECT_EQ(grid->anchors_per_cell(), 6);
  EXPECT_EQ(grid->num_anchors(), 8 * 16 * 6);
  EXPECT_EQ(grid->anchors.sizes(), (std::vector<int64_t>{8, 16, 6, 7}));
  EXPECT_EQ(grid->anchors.scalar_type(), torch::kFloat32);
}

TEST(DetectionAnchorsTest, CentresFollowTheCellGrid) {
  const auto grid = MakeAnchorGrid(testing::DetectionTestConfig());
  ASSERT_TRUE(grid.ok());
  const auto a = grid->anchors.accessor<float, 4>();
  // Cell (0, 0): x0 + 0.5 * 0.8, y0 + 0.5 * 0.8.
  EXPECT_NEAR(a[0][0][0][0], -6.0, 1e-6);
  EXPECT_NEAR(a[0][0][0][1], -2.8, 1e-6);
  // Row 3 (y), column 5 (x): -6.4 + 5.5 * 0.8 = -2.0, -3.2 + 3.5 * 0.8 = -0.4.
  for (int k = 0; k < 6; ++k) {
    EXPECT_NEAR(a[3][5][k][0], -2.0, 1e-6);
    EXPECT_NEAR(a[3][5][k][1], -0.4, 1e-6);
  }
  // Last cell: 6.4 - 0.4, 3.2 - 0.4.
  EXPECT_NEAR(a[7][15][5][0], 6.0, 1e-6);
  EXPECT_NEAR(a[7][15][5][1], 2.8, 1e-6);
}

TEST(DetectionAnchorsTest, SizesHeightsAndYawsPerAnchorIndex) {
  const auto grid = MakeAnchorGrid(testing::DetectionTestConfig());
  ASSERT_TRUE(grid.ok());
  const auto a = grid->anchors.accessor<float, 4>();
  // a = class * num_yaws + yaw: {l, w, h, z} per class, yaw 0 then pi/2.
  const double sizes[3][4] = {{3.9, 1.6, 1.56, -1.78}, {0.8, 0.6, 1.73, -0.6}, {8, 3, 3, -1.78}};
  for (int c = 0; c < 3; ++c) {
    for (int k = 0; k < 2; ++k) {
      const int idx = c * 2 + k;
      EXPECT_NEAR(a[2][9][idx][2], sizes[c][3], 1e-6) << idx;
      EXPECT_NEAR(a[2][9][idx][3], sizes[c][0], 1e-6) << idx;
      EXPECT_NEAR(a[2][9][idx][4], sizes[c][1], 1e-6) << idx;
      EXPECT_NEAR(a[2][9][idx][5], sizes[c][2], 1e-6) << idx;
      EXPECT_NEAR(a[2][9][idx][6], k == 0 ? 0.0 : kPi / 2, 1e-6) << idx;
    }
  }
  EXPECT_EQ(grid->class_ids[1], ObjectClass::kPedestrian);
  EXPECT_EQ(grid->ClassIndex(ObjectClass::kTruck), 2);
  EXPECT_DOUBLE_EQ(grid->pos_threshold[1], 0.5);
  EXPECT_DOUBLE_EQ(grid->neg_threshold[2], 0.45);
}

TEST(DetectionAnchorsTest, NonSquarePillarsAndSingleClass) {
  StageConfig c = testing::DetectionTestConfig();
  c.preprocess.voxel_size = {0.4, 0.8, 4};
  c.postprocess.classes.resize(1);  // vehicle only
  c.postprocess.yaws_deg = {0, 45, 90};
  const auto grid = MakeAnchorGrid(c);
  ASSERT_TRUE(grid.ok()) << grid.status();
  EXPECT_EQ(grid->feature_w, 16);
  EXPECT_EQ(grid->feature_h, 4);  // 6.4 / 0.8 = 8 pillars, stride 2
  EXPECT_EQ(grid->anchors_per_cell(), 3);
  const auto a = grid->anchors.accessor<float, 4>();
  EXPECT_NEAR(a[1][0][0][1], -3.2 + 1.5 * 1.6, 1e-6);
  EXPECT_NEAR(a[1][0][1][6], kPi / 4, 1e-6);
  EXPECT_FALSE(grid->ClassIndex(ObjectClass::kPedestrian).has_value());
}

TEST(DetectionAnchorsTest, RejectsBadConfigNamingTheKey) {
  StageConfig c = testing::DetectionTestConfig();
  c.postprocess.feature_stride = 3;  // 32 pillars do not divide by 3
  auto g = MakeAnchorGrid(c);
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("feature_stride"), std::string::npos);

  c = testing::DetectionTestConfig();
  c.postprocess.classes[1].name = "bicycle";
  g = MakeAnchorGrid(c);
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("classes[1].name"), std::string::npos);

  c = testing::DetectionTestConfig();
  c.postprocess.classes[2].name = "vehicle";
  EXPECT_FALSE(MakeAnchorGrid(c).ok());

  c = testing::DetectionTestConfig();
  c.postprocess.classes[0].w = 0;
  EXPECT_FALSE(MakeAnchorGrid(c).ok());

  c = testing::DetectionTestConfig();
  c.postprocess.classes[0].neg_threshold = 0.7;
  EXPECT_FALSE(MakeAnchorGrid(c).ok());

  c = testing::DetectionTestConfig();
  c.postprocess.yaws_deg.clear();
  EXPECT_FALSE(MakeAnchorGrid(c).ok());

  c = testing::DetectionTestConfig();
  c.preprocess.voxel_size[0] = 0;
  EXPECT_FALSE(MakeAnchorGrid(c).ok());
}

// The shipped presets build their grids (SPEC §3: v2x_real 704 x 200 pillars, stride 2).
TEST(DetectionAnchorsTest, ShippedPresetsBuildTheirGrids) {
  struct Want {
    const char* file;
    int h, w;
  };
  for (const Want& want :
       {Want{"configs/v2x_real/stage1.yaml", 100, 352}, Want{"configs/cpu/stage1.yaml", 64, 128},
        Want{"configs/tiny/stage1.yaml", 16, 32}}) {
    const auto config = LoadStageConfig(want.file);
    ASSERT_TRUE(config.ok()) << want.file << ": " << config.status();
    const auto grid = MakeAnchorGrid(*config);
    ASSERT_TRUE(grid.ok()) << want.file << ": " << grid.status();
    EXPECT_EQ(grid->feature_h, want.h) << want.file;
    EXPECT_EQ(grid->feature_w, want.w) << want.file;
    EXPECT_EQ(grid->anchors_per_cell(), config->model.anchor_number) << want.file;
  }
}

}  // namespace
}  // namespace qv2x
