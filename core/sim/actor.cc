#include "core/sim/actor.h"

#include <algorithm>
#include <cmath>

namespace qv2x::sim {
namespace {

double PositiveMod(double a, double m) {
  double r = std::fmod(a, m);
  return r < 0 ? r + m : r;
}

// A part of the body: `along` shifts it forward along the heading, [z0, z1] its height.
void AddPart(const Box3D& box, double l, double w, double z0, double z1, double along,
             float reflectivity, int owner, int body_of, std::vector<Solid>* out) {
  Solid s;
  s.box.x = box.x + along * std::cos(box.yaw);
  s.box.y = box.y + along * std::sin(box.yaw);
  s.box.z = (z0 + z1) / 2;
  s.box.l = l;
  s.box.w = w;
  s.box.h = z1 - z0;
  s.box.yaw = box.yaw;
  s.reflectivity = reflectivity;
  s.owner = owner;
  s.body_of = body_of;
  out->push_back(s);
}

constexpr float kGlassReflectivity = 0.12f;
constexpr float kChassisReflectivity = 0.15f;
constexpr float kSkinReflectivity = 0.35f;

}  // namespace

std::optional<Placement> PlaceAt(const Motion& m, double t) {
  double along = 0;
  double sign = 1;
  switch (m.kind) {
    case MotionKind::kLane: {
      double u;
      if (m.loop > 0) {
        const double s = PositiveMod(m.s0 + m.speed * t, m.loop);
        if (s > 2 * m.half_length) return std::nullopt;
        u = s - m.half_length;
      } else {
        u = m.s0 + m.speed * t;
      }
      return Placement{m.ox + u * m.dx, m.oy + u * m.dy, std::atan2(m.dy, m.dx)};
    }
    case MotionKind::kSidewalk: {
      const double q = PositiveMod(m.s0 + m.speed * t, 2 * m.length);
      along = q <= m.length ? q : 2 * m.length - q;
      sign = q <= m.length ? 1 : -1;
      break;
    }
    case MotionKind::kParked:
      break;
    case MotionKind::kCrosswalk: {
      const double k = std::floor((t - m.offset) / m.cycle);
      const double tau = t - m.offset - k * m.cycle;
      const int side = static_cast<int>(PositiveMod(m.first_side + k, 2.0));
      const double walked = std::clamp((tau - m.depart) * m.speed, 0.0, m.length);
      along = side == 0 ? walked : m.length - walked;
      sign = side == 0 ? 1 : -1;
      break;
    }
  }
  return Placement{m.ox + along * m.dx, m.oy + along * m.dy, std::atan2(sign * m.dy, sign * m.dx)};
}

Box3D ActorBox(const Actor& a, const Placement& p) {
  Box3D b;
  b.x = p.x;
  b.y = p.y;
  b.z = a.height / 2;
  b.l = a.length;
  b.w = a.width;
  b.h = a.height;
  b.yaw = p.yaw;
  return b;
}

void AppendBody(const Actor& a, const Box3D& box, int actor_index, std::vector<Solid>* out) {
  const double l = a.length, w = a.width, h = a.height;
  const int body_of = a.agent_id;
  switch (a.cls) {
    case ObjectClass::kVehicle: {
      // Body from the ground clearance to the belt line, cabin above, set back a little.
      const double clearance = 0.18, belt = 0.58 * h;
      AddPart(box, l, w, clearance, belt, 0, a.paint, actor_index, body_of, out);
      AddPart(box, 0.55 * l, 0.88 * w, belt, h, -0.06 * l, kGlassReflectivity, actor_index, body_of,
              out);
      break;
    }
    case ObjectClass::kTruck: {
      // Cab at the front, cargo box behind it on a narrower chassis.
      const double cab = std::min(2.4, 0.3 * l), gap = 0.3;
      const double cargo = l - cab - gap;
      AddPart(box, cab, w, 0.45, 0.82 * h, (l - cab) / 2, a.paint, actor_index, body_of, out);
      AddPart(box, cargo, w, 1.0, h, -(l - cargo) / 2, a.paint, actor_index, body_of, out);
      AddPart(box, cargo, 0.6 * w, 0.45, 1.0, -(l - cargo) / 2, kChassisReflectivity, actor_index,
              body_of, out);
      break;
    }
    case ObjectClass::kPedestrian: {
      const double hip = 0.48 * h, neck = 0.84 * h;
      AddPart(box, 0.55 * l, 0.75 * w, 0, hip, 0, a.paint, actor_index, body_of, out);
      AddPart(box, l, w, hip, neck, 0, a.paint, actor_index, body_of, out);
      AddPart(box, 0.45 * l, 0.4 * w, neck, h, 0, kSkinReflectivity, actor_index, body_of, out);
      break;
    }
  }
}

}  // namespace qv2x::sim
