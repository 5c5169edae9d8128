#include "core/render/bev_png.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/common/file_util.h"
#include "core/common/status_macros.h"
#include "core/render/canvas.h"

namespace qv2x {
namespace {

using render::Canvas;
using render::Rgb;

constexpr int kMaxSidePx = 8192;
constexpr Rgb kBackground{16, 20, 24};
constexpr Rgb kGrid{38, 44, 52};
constexpr Rgb kAxis{62, 70, 80};
constexpr Rgb kRoi{150, 156, 166};
constexpr Rgb kText{225, 228, 232};
constexpr Rgb kPrediction{255, 255, 255};
constexpr double kGroundDim = 0.38;
constexpr double kHeadingPx = 36;
constexpr double kUnseenDim = 0.45;
// Share of an agent's points below its ground estimate (most returns are ground).
constexpr double kGroundQuantile = 0.05;

Rgb ClassColour(ObjectClass c) {
  switch (c) {
    case ObjectClass::kVehicle:
      return {105, 240, 174};
    case ObjectClass::kPedestrian:
      return {255, 82, 82};
    case ObjectClass::kTruck:
      return {255, 235, 59};
  }
  return kText;
}

Rgb AgentColour(size_t i) {
  static constexpr Rgb kPalette[] = {{79, 195, 247},  {255, 171, 64},  {179, 157, 219},
                                     {188, 170, 164}, {144, 164, 174}, {206, 147, 216},
                                     {128, 222, 234}, {255, 204, 128}};
  return kPalette[i % (sizeof(kPalette) / sizeof(kPalette[0]))];
}

std::string AgentLabel(const AgentFrame& a, bool ego) {
  return absl::StrCat(ego ? "ego " : (a.agent_id < 0 ? "rsu " : "cav "), a.agent_id);
}

// Metres in the ego frame -> pixel coordinates.
struct View {
  double half_x, half_y, ppm;
  double Px(double x) const { return (x + half_x) * ppm; }
  double Py(double y) const { return (half_y - y) * ppm; }
};

enum class Stroke { kSolid, kDashed };

void DrawBox(Canvas& c, const View& v, const Box3D& b, Rgb colour, Stroke stroke, int thickness) {
  const auto corners = BevCorners(b);
  for (int i = 0; i < 4; ++i) {
    const Vec2& p = corners[i];
    const Vec2& q = corners[(i + 1) % 4];
    if (stroke == Stroke::kSolid) {
      c.Line(v.Px(p.x), v.Py(p.y), v.Px(q.x), v.Py(q.y), colour, thickness);
    } else {
      c.DashedLine(v.Px(p.x), v.Py(p.y), v.Px(q.x), v.Py(q.y), colour, 4, 3, thickness);
    }
  }
  // Heading: centre to the middle of the front edge.
  const double fx = (corners[0].x + corners[3].x) / 2, fy = (corners[0].y + corners[3].y) / 2;
  c.Line(v.Px(b.x), v.Py(b.y), v.Px(fx), v.Py(fy), colour, 1);
}

void DrawGrid(Canvas& c, const View& v, double step) {
  if (step <= 0) return;
  for (double x = -std::floor(v.half_x / step) * step; x <= v.half_x; x += step) {
    c.Line(v.Px(x), 0, v.Px(x), c.height() - 1, std::abs(x) < 1e-9 ? kAxis : kGrid);
  }
  for (double y = -std::floor(v.half_y / step) * step; y <= v.half_y; y += step) {
    c.Line(0, v.Py(y), c.width() - 1, v.Py(y), std::abs(y) < 1e-9 ? kAxis : kGrid);
  }
}

}  // namespace

float GroundLevel(const PointCloud& pts) {
  if (pts.empty()) return 0;
  std::vector<float> z(pts.size());
  for (size_t i = 0; i < pts.size(); ++i) z[i] = pts[i].z;
  const size_t k = static_cast<size_t>(kGroundQuantile * (z.size() - 1));
  std::nth_element(z.begin(), z.begin() + k, z.end());
  return z[k];
}

namespace {

void DrawPoints(Canvas& c, const View& v, const SceneFrame& frame, double ground_band) {
  const Pose& ego = frame.agents.front().lidar_pose;
  // Ground first for every agent, then everything above it, so objects stay on top.
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < frame.agents.size(); ++i) {
      const AgentFrame& a = frame.agents[i];
      const Mat4 t = RelativeTransform(a.lidar_pose, ego);
      const float ground = GroundLevel(a.points) + static_cast<float>(ground_band);
      const Rgb colour = pass == 0 ? render::Dim(AgentColour(i), kGroundDim) : AgentColour(i);
      for (const Point& p : a.points) {
        if ((p.z <= ground) != (pass == 0)) continue;
        const Vec3 q = TransformPoint(t, {p.x, p.y, p.z});
        c.Set(static_cast<int>(v.Px(q.x)), static_cast<int>(v.Py(q.y)), colour);
      }
    }
  }
}

void DrawAgents(Canvas& c, const View& v, const SceneFrame& frame) {
  const Mat4 world_to_ego = RigidInverse(PoseToMatrix(frame.agents.front().lidar_pose));
  for (size_t i = 0; i < frame.agents.size(); ++i) {
    const AgentFrame& a = frame.agents[i];
    const Vec3 p = TransformPoint(world_to_ego, {a.lidar_pose.x, a.lidar_pose.y, a.lidar_pose.z});
    // Heading, a fixed length on screen whatever the scale.
    const double rel = DegToRad(a.lidar_pose.yaw - frame.agents.front().lidar_pose.yaw);
    const Rgb colour = AgentColour(i);
    c.Line(v.Px(p.x), v.Py(p.y), v.Px(p.x) + kHeadingPx * std::cos(rel),
           v.Py(p.y) - kHeadingPx * std::sin(rel), colour, 3);
    c.Disc(v.Px(p.x), v.Py(p.y), 7, kBackground);
    c.Disc(v.Px(p.x), v.Py(p.y), 5, colour);
    const std::string label = AgentLabel(a, i == 0);
    const int lx = static_cast<int>(v.Px(p.x)) + 9, ly = static_cast<int>(v.Py(p.y)) + 6;
    c.FillRect(lx - 2, ly - 2, lx + Canvas::TextWidth(label, 2) + 1, ly + 15, kBackground);
    c.Text(lx, ly, label, colour, 2);
  }
}

void DrawScaleBar(Canvas& c, double ppm, double step) {
  const double metres = step > 0 ? step : 10;
  const int len = static_cast<int>(std::lround(metres * ppm));
  const int x0 = 16, y0 = c.height() - 20;
  c.FillRect(x0 - 6, y0 - 24, x0 + len + 6, y0 + 10, kBackground);
  c.Line(x0, y0, x0 + len, y0, kText, 3);
  c.Line(x0, y0 - 6, x0, y0 + 6, kText, 2);
  c.Line(x0 + len, y0 - 6, x0 + len, y0 + 6, kText, 2);
  c.Text(x0, y0 - 21, absl::StrCat(metres, " m"), kText, 2);
}

void DrawLegend(Canvas& c, const SceneFrame& frame, const std::string& title,
                bool with_predictions) {
  int y = 10;
  const int x = 10;
  auto row_bg = [&](int w) { c.FillRect(x - 4, y - 3, x + w + 4, y + 17, kBackground); };
  row_bg(Canvas::TextWidth(title, 2));
  c.Text(x, y, title, kText, 2);
  y += 22;
  int px = x;
  for (size_t i = 0; i < frame.agents.size(); ++i) {
    const std::string label = AgentLabel(frame.agents[i], i == 0);
    const int w = 18 + Canvas::TextWidth(label, 1);
    c.FillRect(px - 4, y - 3, px + w + 6, y + 11, kBackground);
    c.FillRect(px, y, px + 10, y + 7, AgentColour(i));
    c.Text(px + 14, y, label, kText, 1);
    px += w + 12;
  }
  y += 16;
  px = x;
  for (ObjectClass cls : {ObjectClass::kVehicle, ObjectClass::kPedestrian, ObjectClass::kTruck}) {
    const std::string label = ClassName(cls);
    const int w = 18 + Canvas::TextWidth(label, 1);
    c.FillRect(px - 4, y - 3, px + w + 6, y + 11, kBackground);
    c.Line(px, y + 3, px + 10, y + 3, ClassColour(cls), 3);
    c.Text(px + 14, y, label, kText, 1);
    px += w + 12;
  }
  y += 16;
  const std::string styles = with_predictions
                                 ? "box: solid ego sees, dashed others only, dim nobody; white: "
                                   "predicted"
                                 : "box: solid ego sees, dashed others only, dim nobody";
  c.FillRect(x - 4, y - 3, x + Canvas::TextWidth(styles, 1) + 4, y + 11, kBackground);
  c.Text(x, y, styles, kText, 1);
}

}  // namespace

int BevRenderOptions::width_px() const {
  return static_cast<int>(std::lround(2 * view_half_x_m * pixels_per_m));
}
int BevRenderOptions::height_px() const {
  return static_cast<int>(std::lround(2 * view_half_y_m * pixels_per_m));
}

absl::StatusOr<std::string> RenderBevPngBytes(const SceneFrame& frame,
                                              const BevRenderOptions& options,
                                              const std::vector<RenderBox>& predictions) {
  if (frame.agents.empty()) {
    return absl::InvalidArgumentError("cannot render a frame without agents");
  }
  if (!(options.pixels_per_m > 0) || !(options.view_half_x_m > 0) || !(options.view_half_y_m > 0)) {
    return absl::InvalidArgumentError("render options: view extent and scale must be positive");
  }
  const int w = options.width_px(), h = options.height_px();
  if (w < 64 || h < 64 || w > kMaxSidePx || h > kMaxSidePx) {
    return absl::InvalidArgumentError(absl::StrCat("render options: picture would be ", w, "x", h,
                                                   " pixels; each side must be 64..", kMaxSidePx));
  }
  Canvas c(w, h, kBackground);
  const View v{options.view_half_x_m, options.view_half_y_m, options.pixels_per_m};
  DrawGrid(c, v, options.grid_step_m);
  if (options.roi_half_x_m > 0 && options.roi_half_y_m > 0) {
    Box3D roi;
    roi.l = 2 * options.roi_half_x_m;
    roi.w = 2 * options.roi_half_y_m;
    const auto k = BevCorners(roi);
    for (int i = 0; i < 4; ++i) {
      c.DashedLine(v.Px(k[i].x), v.Py(k[i].y), v.Px(k[(i + 1) % 4].x), v.Py(k[(i + 1) % 4].y), kRoi,
                   10, 6, 1);
    }
  }
  DrawPoints(c, v, frame, options.ground_band_m);

  const Mat4 world_to_ego = RigidInverse(PoseToMatrix(frame.agents.front().lidar_pose));
  const int ego_id = frame.agents.front().agent_id;
  for (const GtObject& o : frame.objects) {
    const Box3D b = TransformBox(world_to_ego, o.box);
    const bool by_ego =
        std::find(o.visible_to.begin(), o.visible_to.end(), ego_id) != o.visible_to.end();
    const Rgb colour = ClassColour(o.cls);
    if (by_ego) {
      DrawBox(c, v, b, colour, Stroke::kSolid, 2);
    } else if (!o.visible_to.empty()) {
      DrawBox(c, v, b, colour, Stroke::kDashed, 2);
    } else {
      DrawBox(c, v, b, render::Dim(colour, kUnseenDim), Stroke::kDashed, 1);
    }
  }
  for (const RenderBox& p : predictions) {
    DrawBox(c, v, p.box, kPrediction, Stroke::kSolid, 1);
    const auto k = BevCorners(p.box);
    const double top_x = std::max({k[0].x, k[1].x, k[2].x, k[3].x});
    const double top_y = std::max({k[0].y, k[1].y, k[2].y, k[3].y});
    c.Text(static_cast<int>(v.Px(top_x)) + 2, static_cast<int>(v.Py(top_y)) - 9,
           absl::StrFormat("%.2f", p.score), ClassColour(p.cls), 1);
  }
  DrawAgents(c, v, frame);
  const std::string title = options.title.empty()
                                ? absl::StrCat(frame.scenario, "  frame ", frame.timestamp)
                                : options.title;
  DrawLegend(c, frame, title, !predictions.empty());
  DrawScaleBar(c, options.pixels_per_m, options.grid_step_m);
  return c.EncodePng();
}

absl::Status RenderBevPng(const SceneFrame& frame, const BevRenderOptions& options,
                          const std::vector<RenderBox>& predictions, const std::string& path) {
  QV2X_ASSIGN_OR_RETURN(std::string png, RenderBevPngBytes(frame, options, predictions));
  return WriteFileAtomic(path, png);
}

}  // namespace qv2x
