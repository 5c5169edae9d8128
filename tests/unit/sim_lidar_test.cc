// LiDAR ray casting: known ranges, ground rings, occlusion, own-body exclusion, noise,
// dropout, and the broad phase against a brute-force caster.
#include "core/sim/lidar.h"

#include <cmath>
#include <limits>

#include "gtest/gtest.h"

namespace qv2x::sim {
namespace {

LidarConfig Config(int channels, double upper, double lower, double step) {
  LidarConfig c;
  c.channels = channels;
  c.upper_fov_deg = upper;
  c.lower_fov_deg = lower;
  c.range_m = 120;
  c.min_range_m = 0.5;
  c.azimuth_step_deg = step;
  c.mount_height_m = 1.9;
  return c;
}

Solid Block(double x, double y, double l, double w, double h, double yaw = 0, int owner = -1,
            float reflectivity = 0.5f) {
  Solid s;
  s.box = {x, y, h / 2, l, w, h, yaw};
  s.owner = owner;
  s.reflectivity = reflectivity;
  return s;
}

SensorMount At(double x, double y, double z, double yaw = 0, int agent = 7) {
  SensorMount m;
  m.x = x;
  m.y = y;
  m.z = z;
  m.yaw_rad = yaw;
  m.agent_id = agent;
  return m;
}

double Range(const Point& p) { return std::sqrt(p.x * p.x + p.y * p.y + p.z * p.z); }

TEST(LidarTest, BeamElevationsSpanTheFieldOfView) {
  const Lidar lidar(Config(32, 2, -25, 0.2));
  const auto& e = lidar.beam_elevations_deg();
  ASSERT_EQ(e.size(), 32u);
  EXPECT_DOUBLE_EQ(e.front(), 2);
  EXPECT_DOUBLE_EQ(e.back(), -25);
  for (size_t i = 1; i < e.size(); ++i) EXPECT_NEAR(e[i - 1] - e[i], 27.0 / 31, 1e-12);
}

TEST(LidarTest, GroundRingsLieAtTheRadiusTheElevationGives) {
  // Empty world, sensor 2 m up: a beam at elevation e < 0 meets the ground at 2 / tan(-e).
  const Lidar lidar(Config(8, -3, -24, 1.0));
  const Sweep s = lidar.Scan({}, 0, StreetLayout(), At(5, -3, 2.0), nullptr);
  ASSERT_EQ(s.points.size(), 8u * 360u);  // every ray returns
  for (size_t i = 0; i < s.points.size(); ++i) {
    const Point& p = s.points[i];
    const double e = lidar.beam_elevations_deg()[i % 8];
    EXPECT_NEAR(std::hypot(p.x, p.y), 2.0 / std::tan(DegToRad(-e)), 1e-4) << i;
    EXPECT_NEAR(p.z, -2.0, 1e-5) << i;
  }
  // Column j looks along azimuth j degrees in the sensor frame.
  const Point& col90 = s.points[90 * 8];
  EXPECT_NEAR(col90.x, 0.0, 1e-4);
  EXPECT_GT(col90.y, 0.0);
}

TEST(LidarTest, UpwardBeamsInAnEmptyWorldReturnNothing) {
  const Lidar lidar(Config(2, 5, 1, 1.0));
  EXPECT_TRUE(lidar.Scan({}, 0, StreetLayout(), At(0, 0, 2), nullptr).points.empty());
}

TEST(LidarTest, HeadOnHitAtKnownRange) {
  // Beams at +2, 0 and -2 degrees; a wall whose near face is 9 m ahead.
  const Lidar lidar(Config(3, 2, -2, 0.5));
  const std::vector<Solid> world = {Block(10, 0, 2, 4, 4, 0, 0, 0.5f)};
  const Sweep s = lidar.Scan(world, 1, StreetLayout(), At(0, 0, 1.0), nullptr);
  // Column 0, beam 1 (0 degrees) is the first ray of the first column after beam 0.
  const Point& level = s.points[1];
  EXPECT_NEAR(level.x, 9.0, 1e-5);
  EXPECT_NEAR(level.y, 0.0, 1e-6);
  EXPECT_NEAR(level.z, 0.0, 1e-6);
  // Normal incidence: intensity equals the reflectivity.
  EXPECT_NEAR(level.intensity, 0.5, 1e-6);
  EXPECT_NEAR(Range(s.points[0]), 9.0 / std::cos(DegToRad(2)), 1e-5);
  EXPECT_NEAR(Range(s.points[2]), 9.0 / std::cos(DegToRad(2)), 1e-5);
}

TEST(LidarTest, RotatedBoxCornerAndSensorYaw) {
  // A square of side 2*sqrt(2) turned 45 degrees: its corner points at the sensor, 8 m away.
  const Lidar lidar(Config(1, 0, 0, 0.5));
  const std::vector<Solid> world = {
      Block(10, 0, 2 * std::sqrt(2.0), 2 * std::sqrt(2.0), 4, kPi / 4)};
  Sweep s = lidar.Scan(world, 0, StreetLayout(), At(0, 0, 1), nullptr);
  ASSERT_FALSE(s.points.empty());
  EXPECT_NEAR(s.points[0].x, 8.0, 1e-5);
  // Same box seen by a sensor facing +y: the box now lies at azimuth -90 degrees, to the
  // sensor's right (negative y in its frame).
  s = lidar.Scan(world, 0, StreetLayout(), At(0, 0, 1, kPi / 2), nullptr);
  ASSERT_FALSE(s.points.empty());
  double nearest = std::numeric_limits<double>::infinity();
  Point best;
  for (const Point& p : s.points) {
    if (Range(p) < nearest) nearest = Range(p), best = p;
  }
  EXPECT_NEAR(nearest, 8.0, 1e-5);
  EXPECT_NEAR(best.x, 0.0, 1e-4);
  EXPECT_NEAR(best.y, -8.0, 1e-4);
}

TEST(LidarTest, BoxBehindBoxGetsNoPointsButTheOtherSideSeesIt) {
  const Lidar lidar(Config(64, 2, -25, 0.1));
  // Two 2 x 2 x 2 m boxes in line along x; sensors at 1.9 m on either side.
  const std::vector<Solid> world = {Block(10, 0, 2, 2, 2, 0, /*owner=*/0),
                                    Block(20, 0, 2, 2, 2, 0, /*owner=*/1)};
  const Sweep west = lidar.Scan(world, 2, StreetLayout(), At(0, 0, 1.9, 0, 1), nullptr);
  const Sweep east = lidar.Scan(world, 2, StreetLayout(), At(30, 0, 1.9, kPi, 2), nullptr);
  EXPECT_GT(west.points_per_owner[0], 50);
  EXPECT_EQ(west.points_per_owner[1], 0);  // hidden behind the near box
  EXPECT_GT(east.points_per_owner[1], 50);
  EXPECT_EQ(east.points_per_owner[0], 0);
  // No west-sensor point lies beyond the near box in its shadow.
  for (const Point& p : west.points) {
    if (std::abs(p.y) < 0.9 && p.z > -1.8) {
      EXPECT_LT(p.x, 11.0 + 1e-4);
    }
  }
}

TEST(LidarTest, OwnBodyIsSkippedByItsOwnSensorOnly) {
  const Lidar lidar(Config(16, 2, -25, 0.5));
  Solid body = Block(0, 0, 4.5, 1.8, 1.5, 0, 0);
  body.body_of = 5;
  const std::vector<Solid> world = {body};
  EXPECT_EQ(lidar.Scan(world, 1, StreetLayout(), At(0, 0, 1.9, 0, 5), nullptr).points_per_owner[0],
            0);
  EXPECT_GT(lidar.Scan(world, 1, StreetLayout(), At(10, 0, 1.9, 0, 6), nullptr).points_per_owner[0],
            0);
}

TEST(LidarTest, RangeNoiseHasTheConfiguredSigma) {
  LidarConfig c = Config(8, -5, -20, 0.2);
  c.range_noise_m = 0.02;
  const Lidar lidar(c);
  Rng rng(StreamKey(9, {}));
  const Sweep s = lidar.Scan({}, 0, StreetLayout(), At(0, 0, 2), &rng);
  ASSERT_EQ(s.points.size(), 8u * 1800u);
  double sum = 0, sum2 = 0;
  for (size_t i = 0; i < s.points.size(); ++i) {
    const double e = DegToRad(lidar.beam_elevations_deg()[i % 8]);
    const double err = Range(s.points[i]) - 2.0 / std::sin(-e);
    sum += err;
    sum2 += err * err;
  }
  const double n = s.points.size();
  EXPECT_NEAR(sum / n, 0.0, 0.001);
  EXPECT_NEAR(std::sqrt(sum2 / n), 0.02, 0.001);
}

TEST(LidarTest, DropoutRemovesTheConfiguredShare) {
  LidarConfig c = Config(8, -5, -20, 0.2);
  c.dropout = 0.3;
  const Lidar lidar(c);
  Rng rng(StreamKey(10, {}));
  const Sweep s = lidar.Scan({}, 0, StreetLayout(), At(0, 0, 2), &rng);
  EXPECT_NEAR(s.points.size() / (8.0 * 1800), 0.7, 0.015);
}

// Reference caster: every ray against every box, no binning.
double BruteForceRange(const std::vector<Solid>& world, const SensorMount& m, double az, double el,
                       double range, double min_range) {
  const double dx = std::cos(az) * std::cos(el), dy = std::sin(az) * std::cos(el),
               dz = std::sin(el);
  double best = range;
  if (dz < 0) best = std::min(best, m.z / -dz);
  for (const Solid& s : world) {
    const double c = std::cos(s.box.yaw), sn = std::sin(s.box.yaw);
    const double ox = c * (m.x - s.box.x) + sn * (m.y - s.box.y);
    const double oy = -sn * (m.x - s.box.x) + c * (m.y - s.box.y);
    const double oz = m.z - s.box.z;
    const double d[3] = {c * dx + sn * dy, -sn * dx + c * dy, dz};
    const double o[3] = {ox, oy, oz};
    const double h[3] = {s.box.l / 2, s.box.w / 2, s.box.h / 2};
    double tn = -1e300, tf = 1e300;
    bool miss = false;
    for (int k = 0; k < 3 && !miss; ++k) {
      if (std::abs(d[k]) < 1e-12) {
        miss = o[k] < -h[k] || o[k] > h[k];
        continue;
      }
      double t1 = (-h[k] - o[k]) / d[k], t2 = (h[k] - o[k]) / d[k];
      if (t1 > t2) std::swap(t1, t2);
      tn = std::max(tn, t1);
      tf = std::min(tf, t2);
      miss = tn > tf;
    }
    if (!miss && tn >= min_range && tn < best) best = tn;
  }
  return best < range ? best : -1;
}

TEST(LidarTest, BroadPhaseMatchesBruteForceOnARandomCity) {
  Rng rng(StreamKey(11, {}));
  std::vector<Solid> world;
  for (int i = 0; i < 150; ++i) {
    world.push_back(Block(rng.Uniform(-60, 60), rng.Uniform(-60, 60), rng.Uniform(0.3, 12),
                          rng.Uniform(0.3, 8), rng.Uniform(0.5, 20), rng.Uniform(-kPi, kPi)));
  }
  const LidarConfig c = Config(16, 2, -25, 0.5);
  const Lidar lidar(c);
  const SensorMount m = At(1.5, -2, 1.9, 0.7);
  const Sweep s = lidar.Scan(world, 0, StreetLayout(), m, nullptr);
  size_t next = 0;
  for (int j = 0; j < c.Columns(); ++j) {
    for (int k = 0; k < c.channels; ++k) {
      const double expect =
          BruteForceRange(world, m, m.yaw_rad + DegToRad(j * c.azimuth_step_deg),
                          DegToRad(lidar.beam_elevations_deg()[k]), c.range_m, c.min_range_m);
      if (expect < 0) continue;
      ASSERT_LT(next, s.points.size());
      ASSERT_NEAR(Range(s.points[next]), expect, 1e-4) << "column " << j << " beam " << k;
      ++next;
    }
  }
  EXPECT_EQ(next, s.points.size());
}

}  // namespace
}  // namespace qv2x::sim
