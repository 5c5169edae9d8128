// Box corners, rotated BEV IoU, axis-aligned BEV IoU and containment, against answers
// worked out from plane geometry.
#include <cmath>
#include <vector>

#include "core/geometry/box.h"
#include "gtest/gtest.h"

namespace qv2x {
namespace {

constexpr double kTol = 1e-9;

Box3D MakeBox(double x, double y, double l, double w, double yaw, double z = 0, double h = 1.5) {
  Box3D b;
  b.x = x;
  b.y = y;
  b.z = z;
  b.l = l;
  b.w = w;
  b.h = h;
  b.yaw = yaw;
  return b;
}

TEST(BevIouTest, IdenticalBoxesGiveOne) {
  for (double yaw : {0.0, 0.3, kPi / 2, -2.0}) {
    const Box3D b = MakeBox(3, -4, 4.5, 1.8, yaw);
    EXPECT_NEAR(BevIou(b, b), 1.0, kTol) << "yaw " << yaw;
  }
}

TEST(BevIouTest, DisjointBoxesGiveZero) {
  EXPECT_EQ(BevIou(MakeBox(0, 0, 4, 2, 0), MakeBox(10, 0, 4, 2, 0)), 0.0);
  // Enclosing circles overlap but the rotated footprints do not: two 4 x 1 boxes side by
  // side, 1.5 m apart in y.
  EXPECT_EQ(BevIou(MakeBox(0, 0, 4, 1, 0), MakeBox(0, 1.5, 4, 1, 0)), 0.0);
}

TEST(BevIouTest, SquareAgainstItself45DegreesTurned) {
  // Side a, same centre. The turned square is the diamond |x| + |y| <= a/√2; it cuts a
  // right triangle with legs a(1 - 1/√2) off each corner of the upright one, so
  // I = a² - 2a²(1 - 1/√2)² = a²(2√2 - 2), U = 2a² - I = a²(4 - 2√2), IoU = 1/√2.
  for (double a : {1.0, 2.0, 3.7}) {
    const double iou = BevIou(MakeBox(1, 1, a, a, 0), MakeBox(1, 1, a, a, kPi / 4));
    EXPECT_NEAR(iou, (2 * std::sqrt(2.0) - 2) / (4 - 2 * std::sqrt(2.0)), kTol);
    EXPECT_NEAR(iou, 1 / std::sqrt(2.0), kTol);
  }
}

TEST(BevIouTest, ContainedBox) {
  // 2 x 1 inside 4 x 2: I = 2, U = 8.
  EXPECT_NEAR(BevIou(MakeBox(0, 0, 4, 2, 0), MakeBox(0.5, 0.2, 2, 1, 0)), 0.25, kTol);
  // A 1 x 1 square turned 30° still fits inside a 4 x 4 square: I = 1, U = 16.
  EXPECT_NEAR(BevIou(MakeBox(0, 0, 4, 4, 0.2), MakeBox(0.3, -0.4, 1, 1, 0.7)), 1.0 / 16, kTol);
}

TEST(BevIouTest, HalfOverlapAndQuarterTurnKnownAnswers) {
  // Shifted by half the length: I = 2 * 2 = 4, U = 8 + 8 - 4 = 12.
  EXPECT_NEAR(BevIou(MakeBox(0, 0, 4, 2, 0), MakeBox(2, 0, 4, 2, 0)), 1.0 / 3, kTol);
  // A 4 x 2 box against itself turned 90°: a 2 x 2 cross-over, I = 4, U = 12.
  EXPECT_NEAR(BevIou(MakeBox(0, 0, 4, 2, 0), MakeBox(0, 0, 4, 2, kPi / 2)), 1.0 / 3, kTol);
  // Turning by π is the same footprint.
  EXPECT_NEAR(BevIou(MakeBox(0, 0, 4, 2, 0.1), MakeBox(0, 0, 4, 2, 0.1 + kPi)), 1.0, kTol);
}

TEST(BevIouTest, SymmetricAndIgnoresHeightAndZ) {
  const Box3D a = MakeBox(0.4, -0.3, 4.2, 1.9, 0.35, -1.0, 1.5);
  const Box3D b = MakeBox(1.1, 0.2, 3.9, 1.6, -0.5, 3.0, 0.2);
  const double ab = BevIou(a, b);
  EXPECT_GT(ab, 0.0);
  EXPECT_LT(ab, 1.0);
  EXPECT_NEAR(ab, BevIou(b, a), kTol);
  Box3D b2 = b;
  b2.z = -7;
  b2.h = 9;
  EXPECT_NEAR(BevIou(a, b2), ab, kTol);
}

TEST(BevIouTest, DegenerateBoxesGiveZero) {
  EXPECT_EQ(BevIou(MakeBox(0, 0, 0, 2, 0), MakeBox(0, 0, 4, 2, 0)), 0.0);
  EXPECT_EQ(BevIou(MakeBox(0, 0, 4, 2, 0), MakeBox(0, 0, 4, -2, 0)), 0.0);
}

TEST(AxisAlignedBevIouTest, KnownAnswers) {
  const Box3D a = MakeBox(0, 0, 4, 2, 0);
  EXPECT_NEAR(AxisAlignedBevIou(a, a), 1.0, kTol);
  // Quarter turn: enclosing rectangles 4 x 2 and 2 x 4 -> I = 4, U = 12.
  EXPECT_NEAR(AxisAlignedBevIou(a, MakeBox(0, 0, 4, 2, kPi / 2)), 1.0 / 3, kTol);
  // A square of side s turned 45° is enclosed by a square of side s√2: I = s², U = 2s².
  EXPECT_NEAR(AxisAlignedBevIou(MakeBox(0, 0, 2, 2, 0), MakeBox(0, 0, 2, 2, kPi / 4)), 0.5, kTol);
  // Shifted by 1 in x and 1 in y: I = 3 * 1 = 3, U = 16 - 3 = 13.
  EXPECT_NEAR(AxisAlignedBevIou(a, MakeBox(1, 1, 4, 2, 0)), 3.0 / 13, kTol);
  EXPECT_EQ(AxisAlignedBevIou(a, MakeBox(4.5, 0, 4, 2, 0)), 0.0);
}

TEST(CornersTest, BevCornersAreCounterClockwiseFromFrontLeft) {
  // Box at (1, 2), 4 long, 2 wide, heading +y: front is +y, left is -x.
  const auto c = BevCorners(MakeBox(1, 2, 4, 2, kPi / 2));
  const double expected[4][2] = {{0, 4}, {0, 0}, {2, 0}, {2, 4}};  // FL, RL, RR, FR
  for (int i = 0; i < 4; ++i) {
    EXPECT_NEAR(c[i].x, expected[i][0], kTol) << "corner " << i;
    EXPECT_NEAR(c[i].y, expected[i][1], kTol) << "corner " << i;
  }
  const std::vector<Vec2> poly(c.begin(), c.end());
  EXPECT_NEAR(PolygonArea(poly), 8.0, kTol);  // positive: counter-clockwise
}

TEST(CornersTest, ThreeDCornersBottomThenTop) {
  const Box3D b = MakeBox(0, 0, 4, 2, 0, /*z=*/-1.0, /*h=*/2.0);
  const auto c = Corners(b);
  const auto bev = BevCorners(b);
  for (int i = 0; i < 4; ++i) {
    EXPECT_NEAR(c[i].x, bev[i].x, kTol);
    EXPECT_NEAR(c[i].y, bev[i].y, kTol);
    EXPECT_NEAR(c[i].z, -2.0, kTol);
    EXPECT_NEAR(c[i + 4].x, bev[i].x, kTol);
    EXPECT_NEAR(c[i + 4].y, bev[i].y, kTol);
    EXPECT_NEAR(c[i + 4].z, 0.0, kTol);
  }
  EXPECT_NEAR(c[0].x, 2.0, kTol);  // front-left of an unrotated box is (+l/2, +w/2)
  EXPECT_NEAR(c[0].y, 1.0, kTol);
}

TEST(PolygonTest, ConvexIntersectionOfOverlappingSquares) {
  const std::vector<Vec2> a{{0, 0}, {2, 0}, {2, 2}, {0, 2}};
  const std::vector<Vec2> b{{1, 1}, {3, 1}, {3, 3}, {1, 3}};
  EXPECT_NEAR(PolygonArea(ConvexIntersection(a, b)), 1.0, kTol);
  const std::vector<Vec2> far{{5, 5}, {6, 5}, {6, 6}, {5, 6}};
  EXPECT_LT(ConvexIntersection(a, far).size(), 3u);
}

TEST(BevContainsTest, InsideOutsideAndBoundary) {
  const Box3D b = MakeBox(1, 2, 4, 2, kPi / 2);  // spans x in [0, 2], y in [0, 4]
  EXPECT_TRUE(BevContains(b, 1, 2));
  EXPECT_TRUE(BevContains(b, 1.9, 3.9));
  EXPECT_TRUE(BevContains(b, 2.0 - 1e-12, 2));  // edge (inclusive, up to rounding)
  EXPECT_FALSE(BevContains(b, 2.1, 2));
  EXPECT_FALSE(BevContains(b, 1, 4.1));
  EXPECT_FALSE(BevContains(b, 3, 1));            // inside the unrotated footprint, not this one
  const Box3D d = MakeBox(0, 0, 2, 2, kPi / 4);  // diamond |x| + |y| <= √2
  EXPECT_TRUE(BevContains(d, 1.4, 0));
  EXPECT_FALSE(BevContains(d, 0.9, 0.9));
}

TEST(TransformBoxTest, QuarterTurnMovesCentreAndYaw) {
  const Mat4 t = PoseToMatrix({10, 0, 0, 0, 90, 0});
  const Box3D out = TransformBox(t, MakeBox(2, 0, 4, 2, 0.25, 0.5));
  EXPECT_NEAR(out.x, 10, kTol);
  EXPECT_NEAR(out.y, 2, kTol);
  EXPECT_NEAR(out.z, 0.5, kTol);
  EXPECT_NEAR(out.yaw, 0.25 + kPi / 2, kTol);
  EXPECT_EQ(out.l, 4);
  EXPECT_EQ(out.w, 2);
}

}  // namespace
}  // namespace qv2x
