// The simulator end to end: determinism, random access, per-agent equivalence, ground
// truth that never collides, and the cooperation the scenes exist for (objects hidden from
// the ego but seen by another agent).
#include "core/sim/simulator.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <tuple>

#include "core/sim/street_layout.h"
#include "core/sim/traffic.h"
#include "gtest/gtest.h"

namespace qv2x::sim {
namespace {

SceneConfig Load(const std::string& name) {
  absl::StatusOr<SceneConfig> c = LoadSceneConfig("configs/scenes/" + name + ".yaml");
  EXPECT_TRUE(c.ok()) << c.status();
  return *c;
}

Simulator Make(const SceneConfig& c) {
  absl::StatusOr<Simulator> s = Simulator::Create(c);
  EXPECT_TRUE(s.ok()) << s.status();
  return *std::move(s);
}

bool SameBytes(const PointCloud& a, const PointCloud& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(Point)) == 0);
}

bool SameBox(const Box3D& a, const Box3D& b) {
  return a.x == b.x && a.y == b.y && a.z == b.z && a.l == b.l && a.w == b.w && a.h == b.h &&
         a.yaw == b.yaw;
}

void ExpectSameFrame(const SceneFrame& a, const SceneFrame& b) {
  EXPECT_EQ(a.scenario, b.scenario);
  EXPECT_EQ(a.timestamp, b.timestamp);
  ASSERT_EQ(a.agents.size(), b.agents.size());
  for (size_t i = 0; i < a.agents.size(); ++i) {
    EXPECT_EQ(a.agents[i].agent_id, b.agents[i].agent_id);
    EXPECT_EQ(a.agents[i].lidar_pose.ToArray(), b.agents[i].lidar_pose.ToArray());
    EXPECT_TRUE(SameBytes(a.agents[i].points, b.agents[i].points)) << "agent " << i;
  }
  ASSERT_EQ(a.objects.size(), b.objects.size());
  for (size_t i = 0; i < a.objects.size(); ++i) {
    EXPECT_EQ(a.objects[i].id, b.objects[i].id);
    EXPECT_TRUE(SameBox(a.objects[i].box, b.objects[i].box));
    EXPECT_EQ(a.objects[i].visible_to, b.objects[i].visible_to);
    EXPECT_EQ(a.objects[i].points_by_agent, b.objects[i].points_by_agent);
  }
}

TEST(SimulatorTest, SameSeedSameBytes) {
  const SceneConfig c = Load("tiny");
  const Simulator a = Make(c), b = Make(c);
  for (int k : {0, 1}) {
    absl::StatusOr<SceneFrame> fa = a.Frame(k, 4), fb = b.Frame(k, 4);
    ASSERT_TRUE(fa.ok() && fb.ok());
    ExpectSameFrame(*fa, *fb);
    EXPECT_FALSE(fa->objects.empty());
  }
}

TEST(SimulatorTest, DifferentSeedOrScenarioDiffers) {
  SceneConfig c = Load("tiny");
  const Simulator a = Make(c);
  c.seed += 1;
  const Simulator b = Make(c);
  const SceneFrame fa = *a.Frame(0, 2), fb = *b.Frame(0, 2);
  EXPECT_FALSE(SameBytes(fa.agents[0].points, fb.agents[0].points));
  const SceneFrame other = *a.Frame(1, 2);
  EXPECT_FALSE(SameBytes(fa.agents[0].points, other.agents[0].points));
}

TEST(SimulatorTest, RandomAccessDoesNotDependOnEarlierCalls) {
  const Simulator sim = Make(Load("tiny"));
  const SceneFrame first = *sim.Frame(0, 7);
  for (int i = 0; i < 7; ++i) ASSERT_TRUE(sim.Frame(0, i).ok());
  ASSERT_TRUE(sim.Frame(1, 3).ok());
  ASSERT_TRUE(sim.SimulateAgent(0, 2, 1).ok());
  ExpectSameFrame(first, *sim.Frame(0, 7));
  // Far-off frames are just as direct.
  EXPECT_TRUE(sim.Frame(0, 5000).ok());
}

TEST(SimulatorTest, OneAgentAloneGetsTheSamePointsAsInTheFullFrame) {
  const Simulator sim = Make(Load("tiny"));
  const SceneFrame f = *sim.Frame(1, 6);
  EXPECT_EQ(f.agents.front().agent_id, sim.config().ego_id);
  for (const AgentFrame& a : f.agents) {
    absl::StatusOr<AgentFrame> alone = sim.SimulateAgent(1, 6, a.agent_id);
    ASSERT_TRUE(alone.ok()) << alone.status();
    EXPECT_TRUE(SameBytes(alone->points, a.points)) << "agent " << a.agent_id;
    EXPECT_EQ(alone->lidar_pose.ToArray(), a.lidar_pose.ToArray());
    EXPECT_EQ(alone->is_infrastructure, a.agent_id < 0);
    EXPECT_EQ(sim.AgentPose(1, 6, a.agent_id)->ToArray(), a.lidar_pose.ToArray());
  }
  absl::StatusOr<std::vector<GtObject>> gt = sim.GroundTruth(1, 6);
  ASSERT_TRUE(gt.ok());
  ASSERT_EQ(gt->size(), f.objects.size());
  for (size_t i = 0; i < gt->size(); ++i) EXPECT_EQ((*gt)[i].visible_to, f.objects[i].visible_to);
}

TEST(SimulatorTest, BadRequestsAreErrors) {
  const Simulator sim = Make(Load("tiny"));
  EXPECT_EQ(sim.Frame(2, 0).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(sim.Frame(-1, 0).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(sim.Frame(0, -1).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(sim.SimulateAgent(0, 0, 42).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(sim.AgentPose(0, 0, 42).status().code(), absl::StatusCode::kNotFound);
}

TEST(SimulatorTest, PosesFollowLanesAndMastsStandStill) {
  const Simulator sim = Make(Load("intersection"));
  const SceneConfig& c = sim.config();
  const Pose p0 = *sim.AgentPose(0, 0, 0), p10 = *sim.AgentPose(0, 10, 0);
  // Agent 0 drives east in lane 1: y = -1.5 lane widths, heading 0, moving +x at lane speed.
  EXPECT_DOUBLE_EQ(p0.y, -1.5 * c.map.lane_width_m);
  EXPECT_DOUBLE_EQ(p0.yaw, 0);
  EXPECT_DOUBLE_EQ(p0.z, c.lidar.mount_height_m);
  const double speed = (p10.x - p0.x) / 1.0;  // 10 frames at 10 Hz
  EXPECT_GE(speed, c.traffic.lane_speed_mps.min);
  EXPECT_LE(speed, c.traffic.lane_speed_mps.max);
  EXPECT_NEAR(sim.AgentPose(0, 20, 0)->x - p10.x, speed, 1e-9);
  // Agent 1 drives west in lane 1.
  const Pose w = *sim.AgentPose(0, 0, 1);
  EXPECT_DOUBLE_EQ(w.y, 1.5 * c.map.lane_width_m);
  EXPECT_DOUBLE_EQ(std::abs(w.yaw), 180);
  // The roadside unit: south-west corner, on its mast, facing the centre, fixed.
  const Pose r0 = *sim.AgentPose(0, 0, -1), r50 = *sim.AgentPose(0, 50, -1);
  EXPECT_EQ(r0.ToArray(), r50.ToArray());
  EXPECT_LT(r0.x, -c.map.RoadHalfWidth());
  EXPECT_LT(r0.y, -c.map.RoadHalfWidth());
  // Its frame is the virtual LiDAR frame at the vehicles' LiDAR height; the scan is taken
  // from the 6 m mast.
  EXPECT_DOUBLE_EQ(r0.z, c.lidar.mount_height_m);
  EXPECT_DOUBLE_EQ(r0.yaw, 45);
}

// What the model keeps of a sweep (heights [-3, 1] m about the sensor) holds the traffic
// for a roadside unit as for a vehicle: cars stand 0-2 m above the street for both.
TEST(SimulatorTest, RoadsideUnitSweepsKeepTheTrafficInTheModelsHeightCrop) {
  const Simulator sim = Make(Load("intersection"));
  const SceneFrame f = *sim.Frame(0, 0);
  for (const AgentFrame& a : f.agents) {
    size_t above_street = 0;  // 0.3-2 m above the street: cars, people, trucks' lower half
    for (const Point& p : a.points) {
      const double h = p.z + a.lidar_pose.z;
      above_street += h > 0.3 && h < 2 && p.z >= -3 && p.z <= 1;
    }
    EXPECT_GT(above_street, 500u) << "agent " << a.agent_id;
  }
}

TEST(SimulatorTest, PointsAreInTheSensorFrame) {
  const Simulator sim = Make(Load("intersection"));
  const SceneFrame f = *sim.Frame(0, 0);
  for (const AgentFrame& a : f.agents) {
    // Ground returns lie mount-height below the sensor (noise 2 cm): the lowest points.
    float lowest = 1e9f;
    size_t near_ground = 0;
    for (const Point& p : a.points) lowest = std::min(lowest, p.z);
    for (const Point& p : a.points) near_ground += std::abs(p.z + a.lidar_pose.z) < 0.1;
    EXPECT_NEAR(lowest, -a.lidar_pose.z, 0.15) << "agent " << a.agent_id;
    EXPECT_GT(near_ground, a.points.size() / 3) << "agent " << a.agent_id;
  }
}

TEST(SimulatorTest, GroundTruthIsTheThreeClassesWithConfiguredSizes) {
  const Simulator sim = Make(Load("intersection"));
  const TrafficConfig& t = sim.config().traffic;
  const SceneFrame f = *sim.Frame(0, 12);
  int counts[kNumClasses] = {0, 0, 0};
  for (const GtObject& o : f.objects) {
    ++counts[static_cast<int>(o.cls)];
    const SizeRange& s = o.cls == ObjectClass::kVehicle ? t.car_size
                         : o.cls == ObjectClass::kTruck ? t.truck_size
                                                        : t.pedestrian_size;
    EXPECT_GE(o.box.l, s.length_m.min);
    EXPECT_LE(o.box.l, s.length_m.max);
    EXPECT_GE(o.box.w, s.width_m.min);
    EXPECT_LE(o.box.w, s.width_m.max);
    EXPECT_GE(o.box.h, s.height_m.min);
    EXPECT_LE(o.box.h, s.height_m.max);
    EXPECT_DOUBLE_EQ(o.box.z, o.box.h / 2);  // standing on the ground
    ASSERT_EQ(o.visible_to.size(), o.points_by_agent.size());
    for (int n : o.points_by_agent) EXPECT_GE(n, sim.config().visibility_min_points);
  }
  EXPECT_GT(counts[0], 20);
  EXPECT_GT(counts[1], 10);
  EXPECT_GT(counts[2], 0);
  // Connected vehicles are objects too (others can see them), with their agent id.
  for (int id : {0, 1, 2}) {
    EXPECT_TRUE(std::any_of(f.objects.begin(), f.objects.end(),
                            [id](const GtObject& o) { return o.id == id; }));
  }
}

TEST(SimulatorTest, ActorsNeverOverlap) {
  // Lane speeds, gaps and signal timing keep every actor clear of every other at all times,
  // in every training scenario.
  const Simulator sim = Make(Load("train"));
  for (int k = 0; k < sim.num_scenarios(); ++k) {
    const World& w = sim.world(k);
    for (double t = 0; t < 60; t += 0.25) {
      const std::vector<ActorState> s = w.ActorsAt(t);
      for (size_t i = 0; i < s.size(); ++i) {
        for (size_t j = i + 1; j < s.size(); ++j) {
          const Box3D& a = s[i].box;
          const Box3D& b = s[j].box;
          const double reach = (std::hypot(a.l, a.w) + std::hypot(b.l, b.w)) / 2;
          if (std::abs(a.x - b.x) > reach || std::abs(a.y - b.y) > reach) continue;
          ASSERT_EQ(BevIou(a, b), 0.0) << "t=" << t << " actors " << w.actors()[s[i].actor].id
                                       << " and " << w.actors()[s[j].actor].id;
        }
      }
    }
  }
}

TEST(SimulatorTest, IntersectionHasObjectsOnlyOtherAgentsSee) {
  const Simulator sim = Make(Load("intersection"));
  const SceneConfig& c = sim.config();
  int hidden_from_ego = 0, seen_by_ego = 0;
  for (int i : {0, 25, 50, 75}) {
    const SceneFrame f = *sim.Frame(0, i);
    const Mat4 to_ego = RigidInverse(PoseToMatrix(f.agents.front().lidar_pose));
    for (const GtObject& o : f.objects) {
      const Vec3 p = TransformPoint(to_ego, {o.box.x, o.box.y, o.box.z});
      if (o.id == c.ego_id || std::abs(p.x) > c.roi_half_x_m || std::abs(p.y) > c.roi_half_y_m) {
        continue;
      }
      const bool ego =
          std::find(o.visible_to.begin(), o.visible_to.end(), c.ego_id) != o.visible_to.end();
      seen_by_ego += ego;
      hidden_from_ego += !ego && !o.visible_to.empty();
    }
  }
  EXPECT_GT(seen_by_ego, 40);
  EXPECT_GT(hidden_from_ego, 10);
}

TEST(SimulatorTest, ParkedTrucksStandStillInTheParkingRows) {
  const Simulator sim = Make(Load("intersection"));
  const SceneConfig& c = sim.config();
  const StreetLayout layout(c.map);
  const World& w = sim.world(0);
  int parked_trucks = 0;
  for (const Actor& a : w.actors()) {
    if (a.motion.kind != MotionKind::kParked || a.cls != ObjectClass::kTruck) continue;
    ++parked_trucks;
    EXPECT_GE(a.length, c.traffic.truck_size.length_m.min);
    EXPECT_LE(a.length, c.traffic.truck_size.length_m.max);
    const std::optional<Placement> p0 = PlaceAt(a.motion, 0), p9 = PlaceAt(a.motion, 9.9);
    ASSERT_TRUE(p0 && p9);
    EXPECT_EQ(p0->x, p9->x);
    EXPECT_EQ(p0->y, p9->y);
    // In a kerb-side parking lane: beyond the traffic lanes, inside the curb, the body too.
    const double lateral = std::min(std::abs(p0->x), std::abs(p0->y));
    EXPECT_GE(lateral - a.width / 2, layout.lanes_edge - 1e-9);
    EXPECT_LE(lateral + a.width / 2, layout.road_half_width + 1e-9);
  }
  EXPECT_EQ(parked_trucks, c.traffic.parked_trucks);
}

TEST(SimulatorTest, CrowdedLanesAndRowsAreFilledToTheLastSpot) {
  // Near capacity (random tries alone cannot even place the shipped scene's 90 vehicles in
  // every scenario): every vehicle still gets a spot (the scan after the random tries), and
  // none overlaps another.
  SceneConfig c = Load("intersection");
  c.scenarios = 4;
  c.traffic.vehicles = 95;
  c.traffic.parked_vehicles = 60;
  const absl::StatusOr<Simulator> sim = Simulator::Create(c);
  ASSERT_TRUE(sim.ok()) << sim.status();
  const TrafficConfig& t = c.traffic;
  for (int k = 0; k < sim->num_scenarios(); ++k) {
    const World& w = sim->world(k);
    EXPECT_EQ(static_cast<int>(w.actors().size()),
              3 + t.vehicles + t.trucks + t.parked_vehicles + t.parked_trucks + t.pedestrians);
    for (double time = 0; time < 30; time += 0.5) {
      const std::vector<ActorState> s = w.ActorsAt(time);
      for (size_t i = 0; i < s.size(); ++i) {
        for (size_t j = i + 1; j < s.size(); ++j) {
          const Box3D& a = s[i].box;
          const Box3D& b = s[j].box;
          if (std::abs(a.x - b.x) > 13 || std::abs(a.y - b.y) > 13) continue;
          ASSERT_EQ(BevIou(a, b), 0.0) << "scenario " << k << " t=" << time;
        }
      }
    }
  }
  // Beyond what fits, the error names the key.
  c.traffic.parked_vehicles = 80;
  const absl::StatusOr<Simulator> full = Simulator::Create(c);
  ASSERT_FALSE(full.ok());
  EXPECT_NE(full.status().message().find("traffic.parked_vehicles"), std::string::npos)
      << full.status();
}

// The scene sets exist for cooperation: at least 30 % of the objects in the ego's range are
// hidden from it and seen by another agent, and training holds every class.
struct SceneShare {
  int64_t total = 0, only_others = 0, frames = 0;
  std::array<int64_t, kNumClasses> by_class{};
  double Share() const { return static_cast<double>(only_others) / static_cast<double>(total); }
};

SceneShare MeasureShare(const std::string& name, int scenarios, int frame_step) {
  const Simulator sim = Make(Load(name));
  const SceneConfig& c = sim.config();
  SceneShare s;
  for (int k = 0; k < std::min(scenarios, sim.num_scenarios()); ++k) {
    for (int i = 0; i < c.frames_per_scenario; i += frame_step) {
      const SceneFrame f = *sim.Frame(k, i);
      ++s.frames;
      const Mat4 to_ego = RigidInverse(PoseToMatrix(f.agents.front().lidar_pose));
      for (const GtObject& o : f.objects) {
        const Vec3 p = TransformPoint(to_ego, {o.box.x, o.box.y, o.box.z});
        if (o.id == c.ego_id || std::abs(p.x) > c.roi_half_x_m || std::abs(p.y) > c.roi_half_y_m) {
          continue;
        }
        ++s.total;
        ++s.by_class[static_cast<int>(o.cls)];
        const bool ego =
            std::find(o.visible_to.begin(), o.visible_to.end(), c.ego_id) != o.visible_to.end();
        s.only_others += !ego && !o.visible_to.empty();
      }
    }
  }
  return s;
}

TEST(SimulatorTest, SceneSetsHideAThirdFromTheEgo) {
  for (const auto& [name, scenarios, step] :
       {std::tuple{"train", 12, 10}, std::tuple{"val", 8, 5}, std::tuple{"test", 8, 5}}) {
    const SceneShare s = MeasureShare(name, scenarios, step);
    std::printf("%s: %ld frames, %ld objects in range, %.3f seen only by others\n", name, s.frames,
                s.total, s.Share());
    EXPECT_GE(s.Share(), 0.30) << name;
    if (std::string(name) == "train") {
      // Every class in numbers: trucks ~10 % of the objects in range.
      EXPECT_GE(static_cast<double>(s.by_class[static_cast<int>(ObjectClass::kTruck)]) / s.frames,
                4.0);
      EXPECT_GE(
          static_cast<double>(s.by_class[static_cast<int>(ObjectClass::kPedestrian)]) / s.frames,
          15.0);
    }
  }
}

TEST(SimulatorTest, TrafficIdsAreStableAndAgentsKeepTheirs) {
  const Simulator sim = Make(Load("intersection"));
  const World& w = sim.world(0);
  int next = kFirstTrafficId;
  for (const Actor& a : w.actors()) {
    if (a.agent_id != kNoAgent) {
      EXPECT_EQ(a.id, a.agent_id);
    } else {
      EXPECT_EQ(a.id, next++);
    }
  }
}

}  // namespace
}  // namespace qv2x::sim
