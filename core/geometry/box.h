// 3D boxes, their corners and BEV overlap (rotated polygon IoU and axis-aligned IoU).
#ifndef QV2X_CORE_GEOMETRY_BOX_H_
#define QV2X_CORE_GEOMETRY_BOX_H_

#include <array>
#include <vector>

#include "core/geometry/transform.h"

namespace qv2x {

// Centre (x, y, z), size (l along the heading, w, h), yaw in radians counter-clockwise
// from +x. All in one frame (the caller says which).
struct Box3D {
  double x = 0, y = 0, z = 0;
  double l = 0, w = 0, h = 0;
  double yaw = 0;
};

struct Vec2 {
  double x = 0, y = 0;
};

// The four BEV corners, counter-clockwise: front-left, rear-left, rear-right, front-right.
std::array<Vec2, 4> BevCorners(const Box3D& b);
// The eight 3D corners: the BEV corners at the bottom (z - h/2), then at the top.
std::array<Vec3, 8> Corners(const Box3D& b);

// Box expressed in another frame (rotation about z only is kept for the yaw; roll and
// pitch of `t` are assumed small, as between ground vehicles).
Box3D TransformBox(const Mat4& t, const Box3D& b);

// Area of a simple polygon (counter-clockwise positive).
double PolygonArea(const std::vector<Vec2>& poly);
// Intersection of two convex polygons (both counter-clockwise).
std::vector<Vec2> ConvexIntersection(const std::vector<Vec2>& a, const std::vector<Vec2>& b);

// Rotated BEV IoU of the boxes' bottom faces (SPEC §8).
double BevIou(const Box3D& a, const Box3D& b);
// IoU of the axis-aligned rectangles that enclose each box's BEV footprint (anchor
// matching, SPEC §3).
double AxisAlignedBevIou(const Box3D& a, const Box3D& b);

// True when the BEV point lies inside the box's footprint (inclusive).
bool BevContains(const Box3D& b, double x, double y);

}  // namespace qv2x

#endif  // QV2X_CORE_GEOMETRY_BOX_H_
