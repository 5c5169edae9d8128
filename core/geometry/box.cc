#include "core/geometry/box.h"

#include <algorithm>
#include <cmath>

namespace qv2x {

std::array<Vec2, 4> BevCorners(const Box3D& b) {
  const double c = std::cos(b.yaw), s = std::sin(b.yaw);
  const double hl = b.l / 2, hw = b.w / 2;
  const double local[4][2] = {{hl, hw}, {-hl, hw}, {-hl, -hw}, {hl, -hw}};
  std::array<Vec2, 4> out;
  for (int i = 0; i < 4; ++i) {
    out[i] = {b.x + c * local[i][0] - s * local[i][1], b.y + s * local[i][0] + c * local[i][1]};
  }
  return out;
}

std::array<Vec3, 8> Corners(const Box3D& b) {
  const auto bev = BevCorners(b);
  std::array<Vec3, 8> out;
  for (int i = 0; i < 4; ++i) {
    out[i] = {bev[i].x, bev[i].y, b.z - b.h / 2};
    out[i + 4] = {bev[i].x, bev[i].y, b.z + b.h / 2};
  }
  return out;
}

Box3D TransformBox(const Mat4& t, const Box3D& b) {
  const Vec3 c = TransformPoint(t, {b.x, b.y, b.z});
  Box3D out = b;
  out.x = c.x;
  out.y = c.y;
  out.z = c.z;
  out.yaw = WrapAngle(b.yaw + std::atan2(t(1, 0), t(0, 0)));
  return out;
}

double PolygonArea(const std::vector<Vec2>& poly) {
  double a = 0;
  const size_t n = poly.size();
  for (size_t i = 0; i < n; ++i) {
    const Vec2& p = poly[i];
    const Vec2& q = poly[(i + 1) % n];
    a += p.x * q.y - q.x * p.y;
  }
  return a / 2;
}

namespace {

// Signed side of point p relative to the directed edge a->b (positive: left).
double Side(const Vec2& a, const Vec2& b, const Vec2& p) {
  return (b.x - a.x) * (p.y - a.y) - (b.y - a.y) * (p.x - a.x);
}

Vec2 LineIntersect(const Vec2& p, const Vec2& q, const Vec2& a, const Vec2& b) {
  const double s1 = Side(a, b, p), s2 = Side(a, b, q);
  const double t = s1 / (s1 - s2);
  return {p.x + t * (q.x - p.x), p.y + t * (q.y - p.y)};
}

}  // namespace

std::vector<Vec2> ConvexIntersection(const std::vector<Vec2>& subject,
                                     const std::vector<Vec2>& clip) {
  // Sutherland-Hodgman: clip `subject` by each edge of the convex `clip`.
  std::vector<Vec2> out = subject;
  const size_t n = clip.size();
  for (size_t i = 0; i < n && !out.empty(); ++i) {
    const Vec2& a = clip[i];
    const Vec2& b = clip[(i + 1) % n];
    std::vector<Vec2> in;
    in.swap(out);
    for (size_t j = 0; j < in.size(); ++j) {
      const Vec2& p = in[j];
      const Vec2& q = in[(j + 1) % in.size()];
      const double sp = Side(a, b, p), sq = Side(a, b, q);
      if (sp >= 0) out.push_back(p);
      if ((sp >= 0) != (sq >= 0)) out.push_back(LineIntersect(p, q, a, b));
    }
  }
  return out;
}

double BevIou(const Box3D& a, const Box3D& b) {
  const double area_a = a.l * a.w, area_b = b.l * b.w;
  if (area_a <= 0 || area_b <= 0) return 0.0;
  // Cheap reject on the enclosing circles.
  const double ra = std::hypot(a.l, a.w) / 2, rb = std::hypot(b.l, b.w) / 2;
  if (std::hypot(a.x - b.x, a.y - b.y) > ra + rb) return 0.0;
  const auto ca = BevCorners(a), cb = BevCorners(b);
  const std::vector<Vec2> pa(ca.begin(), ca.end()), pb(cb.begin(), cb.end());
  const std::vector<Vec2> inter = ConvexIntersection(pa, pb);
  const double ai = inter.size() < 3 ? 0.0 : std::max(0.0, PolygonArea(inter));
  const double uni = area_a + area_b - ai;
  return uni > 0 ? std::min(1.0, ai / uni) : 0.0;
}

namespace {
struct Rect {
  double x0, y0, x1, y1;
};
Rect Enclosing(const Box3D& b) {
  const double c = std::fabs(std::cos(b.yaw)), s = std::fabs(std::sin(b.yaw));
  const double hx = (c * b.l + s * b.w) / 2, hy = (s * b.l + c * b.w) / 2;
  return {b.x - hx, b.y - hy, b.x + hx, b.y + hy};
}
}  // namespace

double AxisAlignedBevIou(const Box3D& a, const Box3D& b) {
  const Rect ra = Enclosing(a), rb = Enclosing(b);
  const double iw = std::min(ra.x1, rb.x1) - std::max(ra.x0, rb.x0);
  const double ih = std::min(ra.y1, rb.y1) - std::max(ra.y0, rb.y0);
  if (iw <= 0 || ih <= 0) return 0.0;
  const double inter = iw * ih;
  const double uni = (ra.x1 - ra.x0) * (ra.y1 - ra.y0) + (rb.x1 - rb.x0) * (rb.y1 - rb.y0) - inter;
  return uni > 0 ? inter / uni : 0.0;
}

bool BevContains(const Box3D& b, double x, double y) {
  const double c = std::cos(b.yaw), s = std::sin(b.yaw);
  const double dx = x - b.x, dy = y - b.y;
  const double lx = c * dx + s * dy, ly = -s * dx + c * dy;
  return std::fabs(lx) <= b.l / 2 && std::fabs(ly) <= b.w / 2;
}

}  // namespace qv2x
