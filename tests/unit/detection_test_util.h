// Small StageConfig for the detection tests: SPEC §3 anchors on a tiny grid.
#ifndef QV2X_TESTS_UNIT_DETECTION_TEST_UTIL_H_
#define QV2X_TESTS_UNIT_DETECTION_TEST_UTIL_H_

#include "core/config/model_config.h"

namespace qv2x::testing {

// Range ±half_x × ±half_y m at 0.4 m pillars, feature stride 2; the three SPEC classes with
// yaws 0 and 90 degrees; gt_range = lidar range; 2 direction bins at offset π/4.
inline StageConfig DetectionTestConfig(double half_x = 6.4, double half_y = 3.2) {
  StageConfig c;
  c.preprocess.lidar_range = {-half_x, -half_y, -3, half_x, half_y, 1};
  c.preprocess.voxel_size = {0.4, 0.4, 4};
  c.postprocess.feature_stride = 2;
  c.postprocess.yaws_deg = {0, 90};
  c.postprocess.classes = {
      {"vehicle", 3.9, 1.6, 1.56, -1.78, 0.60, 0.45},
      {"pedestrian", 0.8, 0.6, 1.73, -0.6, 0.50, 0.35},
      {"truck", 8, 3, 3, -1.78, 0.60, 0.45},
  };
  c.postprocess.score_threshold = 0.20;
  c.postprocess.nms_thresh = 0.15;
  c.postprocess.max_num = 1000;
  c.postprocess.gt_range = c.preprocess.lidar_range;
  c.model.dir_args.dir_offset = 0.7853981633974483;
  c.model.dir_args.num_bins = 2;
  c.model.fusion_backbone.layer_strides = {1, 2, 2};
  return c;
}

}  // namespace qv2x::testing

#endif  // QV2X_TESTS_UNIT_DETECTION_TEST_UTIL_H_
