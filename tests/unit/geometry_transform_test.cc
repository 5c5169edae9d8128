// Poses, rigid transforms and the normalised affine warp (SPEC §5) against hand-computed
// answers, plus an end-to-end warp check through a plain-C++ affine_grid + grid_sample.
#include <cmath>
#include <vector>

#include "core/geometry/transform.h"
#include "gtest/gtest.h"

namespace qv2x {
namespace {

constexpr double kTol = 1e-12;

void ExpectMatNear(const Mat4& a, const Mat4& b, double tol = kTol) {
  for (int r = 0; r < 4; ++r) {
    for (int c = 0; c < 4; ++c)
      EXPECT_NEAR(a(r, c), b(r, c), tol) << "at (" << r << ", " << c << ")";
  }
}

Mat4 FromRows(std::initializer_list<std::initializer_list<double>> rows) {
  Mat4 m;
  int r = 0;
  for (const auto& row : rows) {
    int c = 0;
    for (double v : row) m(r, c++) = v;
    ++r;
  }
  return m;
}

// Elementary rotations (angles in degrees), written independently of transform.cc.
Mat4 Rx(double deg) {
  const double c = std::cos(DegToRad(deg)), s = std::sin(DegToRad(deg));
  return FromRows({{1, 0, 0, 0}, {0, c, -s, 0}, {0, s, c, 0}, {0, 0, 0, 1}});
}
Mat4 Ry(double deg) {
  const double c = std::cos(DegToRad(deg)), s = std::sin(DegToRad(deg));
  return FromRows({{c, 0, s, 0}, {0, 1, 0, 0}, {-s, 0, c, 0}, {0, 0, 0, 1}});
}
Mat4 Rz(double deg) {
  const double c = std::cos(DegToRad(deg)), s = std::sin(DegToRad(deg));
  return FromRows({{c, -s, 0, 0}, {s, c, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}});
}

TEST(PoseToMatrixTest, Yaw90IsAQuarterTurnAboutZ) {
  const Mat4 t = PoseToMatrix({1.5, -2.0, 0.25, 0, 90, 0});
  ExpectMatNear(t, FromRows({{0, -1, 0, 1.5}, {1, 0, 0, -2.0}, {0, 0, 1, 0.25}, {0, 0, 0, 1}}));
}

TEST(PoseToMatrixTest, CombinedRollPitchYawByHand) {
  // yaw 90, pitch 30, roll 60. Rz(90) = [0 -1 0; 1 0 0; 0 0 1];
  // Ry(-30) = [√3/2 0 -1/2; 0 1 0; 1/2 0 √3/2]; Rx(-60) = [1 0 0; 0 1/2 √3/2; 0 -√3/2 1/2].
  // Ry·Rx = [√3/2 √3/4 -1/4; 0 1/2 √3/2; 1/2 -3/4 √3/4]; Rz· swaps rows 0/1 and negates
  // the new row 0.
  const double r3 = std::sqrt(3.0);
  const Mat4 expected = FromRows(
      {{0, -0.5, -r3 / 2, 1}, {r3 / 2, r3 / 4, -0.25, 2}, {0.5, -0.75, r3 / 4, 3}, {0, 0, 0, 1}});
  ExpectMatNear(PoseToMatrix(Pose::FromArray({1, 2, 3, 60, 90, 30})), expected);
}

TEST(PoseToMatrixTest, MatchesProductOfElementaryRotations) {
  const double cases[][3] = {{10, -35, 5}, {-3, 170, 12}, {0.5, -91, -7}, {25, 45, -40}};
  for (const auto& c : cases) {
    const double roll = c[0], yaw = c[1], pitch = c[2];
    Mat4 expected = Rz(yaw) * Ry(-pitch) * Rx(-roll);
    expected(0, 3) = 4;
    expected(1, 3) = -5;
    expected(2, 3) = 6;
    ExpectMatNear(PoseToMatrix({4, -5, 6, roll, yaw, pitch}), expected);
  }
}

TEST(PoseToMatrixTest, MatrixToPoseInvertsIt) {
  for (const Pose& p : {Pose{1.5, -2.0, 0.3, 4.0, 120.0, -7.5}, Pose{0, 0, 0, 0, -179.0, 0},
                        Pose{-30.0, 8.0, 1.9, -2.0, 35.0, 80.0}}) {
    const Pose back = MatrixToPose(PoseToMatrix(p));
    EXPECT_NEAR(back.x, p.x, 1e-12);
    EXPECT_NEAR(back.z, p.z, 1e-12);
    EXPECT_NEAR(back.roll, p.roll, 1e-9);
    EXPECT_NEAR(back.yaw, p.yaw, 1e-9);
    EXPECT_NEAR(back.pitch, p.pitch, 1e-9);
  }
}

TEST(PoseTest, ArrayRoundTripUsesOpv2vOrder) {
  const Pose p = Pose::FromArray({1, 2, 3, 4, 5, 6});
  EXPECT_EQ(p.roll, 4);
  EXPECT_EQ(p.yaw, 5);
  EXPECT_EQ(p.pitch, 6);
  EXPECT_EQ(p.ToArray(), (std::array<double, 6>{1, 2, 3, 4, 5, 6}));
}

TEST(RigidTransformTest, InverseAndComposition) {
  const Mat4 a = PoseToMatrix({3, -1, 2, 4, 33, -6});
  const Mat4 b = PoseToMatrix({-7, 8, 0.5, -2, -120, 3});
  ExpectMatNear(a * RigidInverse(a), Mat4::Identity());
  ExpectMatNear(RigidInverse(a) * a, Mat4::Identity());
  ExpectMatNear(RigidInverse(RigidInverse(a)), a);
  // (AB)^-1 = B^-1 A^-1
  ExpectMatNear(RigidInverse(a * b), RigidInverse(b) * RigidInverse(a));
  // Two quarter turns compose to a half turn; translations add in the rotated frame.
  const Mat4 q = PoseToMatrix({1, 0, 0, 0, 90, 0});
  ExpectMatNear(q * q, FromRows({{-1, 0, 0, 1}, {0, -1, 0, 1}, {0, 0, 1, 0}, {0, 0, 0, 1}}));
}

TEST(RigidTransformTest, TransformPointKnownAnswer) {
  const Vec3 p = TransformPoint(PoseToMatrix({10, 20, 1, 0, 90, 0}), {2, 0, 0.5});
  EXPECT_NEAR(p.x, 10, kTol);
  EXPECT_NEAR(p.y, 22, kTol);
  EXPECT_NEAR(p.z, 1.5, kTol);
}

TEST(RelativeTransformTest, AgentToEgoByHand) {
  // Ego at (10, 0) facing +y; agent at (10, 5) facing +x. The agent sits 5 m straight
  // ahead of the ego, and the agent's +x is the ego's -y.
  const Pose ego{10, 0, 0, 0, 90, 0};
  const Pose agent{10, 5, 0, 0, 0, 0};
  const Mat4 agent_to_ego = RelativeTransform(agent, ego);
  ExpectMatNear(agent_to_ego, FromRows({{0, 1, 0, 5}, {-1, 0, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}}));
  ExpectMatNear(RelativeTransform(ego, agent), RigidInverse(agent_to_ego));
  // T_j^-1 T_i by definition, and the round trip is the identity.
  ExpectMatNear(agent_to_ego, RigidInverse(PoseToMatrix(ego)) * PoseToMatrix(agent));
  ExpectMatNear(agent_to_ego * RelativeTransform(ego, agent), Mat4::Identity());
}

TEST(NormalizedAffineTest, KnownAnswerAtV2xRealGrid) {
  // M: quarter turn with translation (4, 2) m; grid 704 x 200 at 0.4 m.
  const Mat4 m = FromRows({{0, -1, 0, 4}, {1, 0, 0, 2}, {0, 0, 1, 0}, {0, 0, 0, 1}});
  const AffineWarp w = NormalizedAffine(m, 704, 200, 0.4);
  EXPECT_NEAR(w.a[0], 0.0, 1e-7);
  EXPECT_NEAR(w.a[1], -200.0 / 704.0, 1e-7);         // m01 * H / W
  EXPECT_NEAR(w.a[2], 2.0 * 4 / (0.4 * 704), 1e-7);  // 8 / 281.6
  EXPECT_NEAR(w.a[3], 704.0 / 200.0, 1e-6);          // m10 * W / H = 3.52
  EXPECT_NEAR(w.a[4], 0.0, 1e-7);
  EXPECT_NEAR(w.a[5], 0.05, 1e-7);  // 4 / 80
}

TEST(NormalizedAffineTest, IdentityForTheEgoItself) {
  const AffineWarp w = NormalizedAffine(Mat4::Identity(), 256, 128, 0.4);
  const std::array<float, 6> id{1, 0, 0, 0, 1, 0};
  EXPECT_EQ(w.a, id);
}

// --- The warp end to end: a reference affine_grid + grid_sample (align_corners = false,
// bilinear, zero padding) on one channel, map[row][col] stored row-major.

std::vector<float> WarpReference(const std::vector<float>& src, int w, int h, const AffineWarp& t) {
  auto at = [&](int r, int c) -> double {
    return (r < 0 || r >= h || c < 0 || c >= w) ? 0.0 : src[r * w + c];
  };
  std::vector<float> out(static_cast<size_t>(w) * h, 0.0f);
  for (int i = 0; i < h; ++i) {
    for (int j = 0; j < w; ++j) {
      // affine_grid: normalised output pixel centre, then theta · [x, y, 1].
      const double xn = (2.0 * j + 1) / w - 1, yn = (2.0 * i + 1) / h - 1;
      const double gx = t.a[0] * xn + t.a[1] * yn + t.a[2];
      const double gy = t.a[3] * xn + t.a[4] * yn + t.a[5];
      // grid_sample: unnormalise (align_corners = false), bilinear.
      const double ix = ((gx + 1) * w - 1) / 2, iy = ((gy + 1) * h - 1) / 2;
      const int x0 = static_cast<int>(std::floor(ix)), y0 = static_cast<int>(std::floor(iy));
      const double fx = ix - x0, fy = iy - y0;
      out[i * w + j] =
          static_cast<float>(at(y0, x0) * (1 - fx) * (1 - fy) + at(y0, x0 + 1) * fx * (1 - fy) +
                             at(y0 + 1, x0) * (1 - fx) * fy + at(y0 + 1, x0 + 1) * fx * fy);
    }
  }
  return out;
}

struct Cell {
  int row, col;
};

// Where a point of the agent's hot cell centre lands in the ego grid, by geometry alone.
Cell EgoCellOf(const Pose& ego, const Pose& agent, Cell agent_cell, int w, int h, double ratio) {
  const double x0 = -w * ratio / 2, y0 = -h * ratio / 2;  // symmetric range
  const Vec3 pa{x0 + (agent_cell.col + 0.5) * ratio, y0 + (agent_cell.row + 0.5) * ratio, 0};
  const Vec3 pe = TransformPoint(RelativeTransform(agent, ego), pa);
  return {static_cast<int>(std::floor((pe.y - y0) / ratio)),
          static_cast<int>(std::floor((pe.x - x0) / ratio))};
}

// Warps a map with one hot agent cell into the ego frame and checks that exactly the
// expected ego cell lights up.
void ExpectHotCellLandsAt(const Pose& ego, const Pose& agent, Cell hot, Cell expected) {
  constexpr int kW = 16, kH = 8;
  constexpr double kRatio = 0.4;
  const Cell predicted = EgoCellOf(ego, agent, hot, kW, kH, kRatio);
  ASSERT_EQ(predicted.row, expected.row);
  ASSERT_EQ(predicted.col, expected.col);

  std::vector<float> agent_map(kW * kH, 0.0f);
  agent_map[hot.row * kW + hot.col] = 1.0f;
  const AffineWarp warp =
      NormalizedAffine(RigidInverse(PoseToMatrix(agent)) * PoseToMatrix(ego), kW, kH, kRatio);
  const std::vector<float> ego_map = WarpReference(agent_map, kW, kH, warp);
  for (int r = 0; r < kH; ++r) {
    for (int c = 0; c < kW; ++c) {
      const float v = ego_map[r * kW + c];
      if (r == expected.row && c == expected.col) {
        EXPECT_NEAR(v, 1.0f, 1e-4) << "hot cell did not arrive at (" << r << ", " << c << ")";
      } else {
        EXPECT_NEAR(v, 0.0f, 1e-4) << "stray value at (" << r << ", " << c << ")";
      }
    }
  }
}

TEST(WarpTest, PureTranslationShiftsTheHotCell) {
  // The agent sits 0.8 m (2 cells) ahead and 0.4 m (1 cell) left of the ego, same heading:
  // agent cell (row 3, col 5) is ego cell (row 4, col 7).
  ExpectHotCellLandsAt({10, 20, 0, 0, 0, 0}, {10.8, 20.4, 0, 0, 0, 0}, {3, 5}, {4, 7});
}

TEST(WarpTest, QuarterTurnPlusTranslation) {
  // Agent at (0.8, -0.4) in the ego frame, turned +90°. Agent cell (3, 7) has its centre at
  // (-0.2, -0.2) in the agent frame -> R90 · p + t = (0.2 + 0.8, -0.2 - 0.4) = (1.0, -0.6)
  // in the ego frame -> ego col (1.0 + 3.2) / 0.4 - 0.5 = 10, row (-0.6 + 1.6) / 0.4 - 0.5 = 2.
  ExpectHotCellLandsAt({0, 0, 0, 0, 0, 0}, {0.8, -0.4, 0, 0, 90, 0}, {3, 7}, {2, 10});
}

TEST(WarpTest, QuarterTurnFromARotatedEgo) {
  // The same relative placement seen from an ego at (5, -3) heading 30°: only the relative
  // transform may matter.
  const double c = std::cos(DegToRad(30)), s = std::sin(DegToRad(30));
  const Pose ego{5, -3, 0, 0, 30, 0};
  const Pose agent{5 + c * 0.8 - s * -0.4, -3 + s * 0.8 + c * -0.4, 0, 0, 120, 0};
  ExpectHotCellLandsAt(ego, agent, {3, 7}, {2, 10});
}

TEST(WrapAngleTest, KnownAnswers) {
  EXPECT_NEAR(WrapAngle(0.5), 0.5, kTol);
  EXPECT_NEAR(WrapAngle(3 * kPi / 2), -kPi / 2, kTol);
  EXPECT_NEAR(WrapAngle(-3 * kPi / 2), kPi / 2, kTol);
  EXPECT_NEAR(WrapAngle(kPi), -kPi, kTol);
  EXPECT_NEAR(WrapAngle(7 * kPi + 0.25), -kPi + 0.25, 1e-9);
}

}  // namespace
}  // namespace qv2x
