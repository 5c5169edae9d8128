#include "core/geometry/transform.h"

#include <algorithm>
#include <cmath>

namespace qv2x {

Mat4 Mat4::Identity() {
  Mat4 t;
  for (int i = 0; i < 4; ++i) t(i, i) = 1.0;
  return t;
}

Mat4 operator*(const Mat4& a, const Mat4& b) {
  Mat4 r;
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 4; ++j) {
      double s = 0;
      for (int k = 0; k < 4; ++k) s += a(i, k) * b(k, j);
      r(i, j) = s;
    }
  }
  return r;
}

Mat4 RigidInverse(const Mat4& t) {
  Mat4 r = Mat4::Identity();
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) r(i, j) = t(j, i);
  }
  for (int i = 0; i < 3; ++i) {
    r(i, 3) = -(r(i, 0) * t(0, 3) + r(i, 1) * t(1, 3) + r(i, 2) * t(2, 3));
  }
  return r;
}

Vec3 TransformPoint(const Mat4& t, const Vec3& p) {
  return {t(0, 0) * p.x + t(0, 1) * p.y + t(0, 2) * p.z + t(0, 3),
          t(1, 0) * p.x + t(1, 1) * p.y + t(1, 2) * p.z + t(1, 3),
          t(2, 0) * p.x + t(2, 1) * p.y + t(2, 2) * p.z + t(2, 3)};
}

Mat4 PoseToMatrix(const Pose& pose) {
  // OPV2V's x_to_world: the closed form of Rz(yaw) * Ry(-pitch) * Rx(-roll).
  const double cy = std::cos(DegToRad(pose.yaw)), sy = std::sin(DegToRad(pose.yaw));
  const double cr = std::cos(DegToRad(pose.roll)), sr = std::sin(DegToRad(pose.roll));
  const double cp = std::cos(DegToRad(pose.pitch)), sp = std::sin(DegToRad(pose.pitch));
  Mat4 t = Mat4::Identity();
  t(0, 3) = pose.x;
  t(1, 3) = pose.y;
  t(2, 3) = pose.z;
  t(0, 0) = cp * cy;
  t(0, 1) = cy * sp * sr - sy * cr;
  t(0, 2) = -cy * sp * cr - sy * sr;
  t(1, 0) = sy * cp;
  t(1, 1) = sy * sp * sr + cy * cr;
  t(1, 2) = -sy * sp * cr + cy * sr;
  t(2, 0) = sp;
  t(2, 1) = -cp * sr;
  t(2, 2) = cp * cr;
  return t;
}

Pose MatrixToPose(const Mat4& t) {
  Pose p;
  p.x = t(0, 3);
  p.y = t(1, 3);
  p.z = t(2, 3);
  p.pitch = RadToDeg(std::asin(std::clamp(t(2, 0), -1.0, 1.0)));
  p.roll = RadToDeg(std::atan2(-t(2, 1), t(2, 2)));
  p.yaw = RadToDeg(std::atan2(t(1, 0), t(0, 0)));
  return p;
}

Mat4 RelativeTransform(const Pose& from, const Pose& to) {
  return RigidInverse(PoseToMatrix(to)) * PoseToMatrix(from);
}

AffineWarp NormalizedAffine(const Mat4& m, int width, int height, double ratio) {
  AffineWarp w;
  const double W = width, H = height;
  w.a[0] = static_cast<float>(m(0, 0));
  w.a[1] = static_cast<float>(m(0, 1) * H / W);
  w.a[2] = static_cast<float>(2.0 * m(0, 3) / (ratio * W));
  w.a[3] = static_cast<float>(m(1, 0) * W / H);
  w.a[4] = static_cast<float>(m(1, 1));
  w.a[5] = static_cast<float>(2.0 * m(1, 3) / (ratio * H));
  return w;
}

double WrapAngle(double rad) {
  double r = std::fmod(rad + kPi, 2.0 * kPi);
  if (r < 0) r += 2.0 * kPi;
  return r - kPi;
}

}  // namespace qv2x
