// Poses, rigid transforms and the normalised affine warp (SPEC §5).
#ifndef QV2X_CORE_GEOMETRY_TRANSFORM_H_
#define QV2X_CORE_GEOMETRY_TRANSFORM_H_

#include <array>

namespace qv2x {

// Row-major 4x4 homogeneous matrix.
struct Mat4 {
  std::array<double, 16> m{};
  double& operator()(int r, int c) { return m[r * 4 + c]; }
  double operator()(int r, int c) const { return m[r * 4 + c]; }
  static Mat4 Identity();
};

Mat4 operator*(const Mat4& a, const Mat4& b);
// Inverse of a rigid transform [R | t] (R orthonormal).
Mat4 RigidInverse(const Mat4& t);

struct Vec3 {
  double x = 0, y = 0, z = 0;
};
Vec3 TransformPoint(const Mat4& t, const Vec3& p);

// OPV2V pose: position in metres and roll, yaw, pitch in degrees, world frame.
struct Pose {
  double x = 0, y = 0, z = 0;
  double roll = 0, yaw = 0, pitch = 0;
  // As the 6-tuple [x, y, z, roll, yaw, pitch] used in OPV2V YAML files.
  std::array<double, 6> ToArray() const { return {x, y, z, roll, yaw, pitch}; }
  static Pose FromArray(const std::array<double, 6>& a) {
    return {a[0], a[1], a[2], a[3], a[4], a[5]};
  }
};

// T(pose) = [R | t], R = Rz(yaw) * Ry(-pitch) * Rx(-roll): sensor frame -> world frame.
Mat4 PoseToMatrix(const Pose& pose);
// The inverse of PoseToMatrix for a rigid transform (pitch in [-90°, 90°]).
Pose MatrixToPose(const Mat4& t);

// Transform taking points in `from`'s frame to `to`'s frame: T_to^-1 * T_from.
Mat4 RelativeTransform(const Pose& from, const Pose& to);

// 2x3 matrix for affine_grid (normalised coordinates, align_corners = false).
struct AffineWarp {
  std::array<float, 6> a{};  // row-major [a00 a01 a02; a10 a11 a12]
};

// Backward warp: `ego_to_agent` is T_agent^-1 * T_ego (maps ego-frame points into the
// agent's frame), `width` x `height` the pillar grid and `ratio` the pillar size in metres.
// The same matrix serves every pyramid level. Requires a lidar range symmetric about the
// sensor.
AffineWarp NormalizedAffine(const Mat4& ego_to_agent, int width, int height, double ratio);

constexpr double kPi = 3.14159265358979323846;
inline double DegToRad(double d) { return d * kPi / 180.0; }
inline double RadToDeg(double r) { return r * 180.0 / kPi; }
// Wraps an angle to [-pi, pi).
double WrapAngle(double rad);

}  // namespace qv2x

#endif  // QV2X_CORE_GEOMETRY_TRANSFORM_H_
