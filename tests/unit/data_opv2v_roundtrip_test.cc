// OPV2V layout: a frame written by WriteOpv2vFrame reads back identically through
// Opv2vDataset; the agent YAML follows the dataset's conventions.
#include <unistd.h>

#include <filesystem>

#include "core/common/file_util.h"
#include "core/data/opv2v_reader.h"
#include "core/data/opv2v_writer.h"
#include "gtest/gtest.h"

namespace qv2x {
namespace {

namespace fs = std::filesystem;

class Opv2vRoundTripTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    dir_ = fs::path(::testing::TempDir()) / ("opv2v_" + std::to_string(::getpid()) + "_" + test);
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

GtObject Object(int id, ObjectClass cls, Box3D box, std::vector<int> seen,
                std::vector<int> points) {
  GtObject o;
  o.id = id;
  o.cls = cls;
  o.box = box;
  o.visible_to = std::move(seen);
  o.points_by_agent = std::move(points);
  return o;
}

SceneFrame Sample(int index) {
  SceneFrame f;
  f.scenario = "town_007";
  f.index = index;
  f.timestamp = index == 3 ? "000003" : "000004";
  f.ego_id = 2;
  AgentFrame ego;
  ego.agent_id = 2;
  ego.lidar_pose = {-31.25, -1.75, 1.9, 0, 0.1 * index, 0};
  ego.points = {{1.5f, -2.25f, -1.9f, 0.125f}, {30.1f, 4.0e-3f, 0.5f, 1.0f}};
  AgentFrame rsu;
  rsu.agent_id = -1;
  rsu.is_infrastructure = true;
  rsu.lidar_pose = {8.75, 8.75, 5.0, 0, -135, 0};
  rsu.points = {{-3.0f, 7.0f, -5.0f, 0.3f}};
  AgentFrame cav;
  cav.agent_id = 5;
  cav.lidar_pose = {20.0 / 3, 1.75, 1.9, 0, 180, 0};
  cav.points = {{2.0f, 0.5f, -1.0f, 0.75f}};
  f.agents = {ego, cav, rsu};
  f.objects = {
      Object(2, ObjectClass::kVehicle, {-31.25, -1.75, 0.75, 4.5, 1.8, 1.5, 0}, {5, -1}, {40, 12}),
      Object(5, ObjectClass::kVehicle, {20.0 / 3, 1.75, 0.8, 4.2, 1.7, 1.6, kPi}, {2}, {77}),
      Object(1003, ObjectClass::kTruck, {12.5, -5.25, 1.55, 8.0, 2.9, 3.1, 0.3}, {}, {}),
      Object(1010, ObjectClass::kPedestrian, {-9.5, 9.9, 0.85, 0.6, 0.55, 1.7, -1.2}, {2, 5, -1},
             {9, 14, 30})};
  return f;
}

void ExpectSame(const SceneFrame& want, const SceneFrame& got) {
  EXPECT_EQ(got.scenario, want.scenario);
  EXPECT_EQ(got.timestamp, want.timestamp);
  EXPECT_EQ(got.ego_id, want.ego_id);
  ASSERT_EQ(got.agents.size(), want.agents.size());
  for (size_t i = 0; i < want.agents.size(); ++i) {
    const AgentFrame& a = want.agents[i];
    const AgentFrame& b = got.agents[i];
    EXPECT_EQ(b.agent_id, a.agent_id);
    EXPECT_EQ(b.is_infrastructure, a.is_infrastructure);
    EXPECT_EQ(b.lidar_pose.ToArray(), a.lidar_pose.ToArray());  // exact: shortest round trip
    ASSERT_EQ(b.points.size(), a.points.size());
    for (size_t k = 0; k < a.points.size(); ++k) {
      EXPECT_EQ(b.points[k].x, a.points[k].x);
      EXPECT_EQ(b.points[k].y, a.points[k].y);
      EXPECT_EQ(b.points[k].z, a.points[k].z);
      EXPECT_EQ(b.points[k].intensity, a.points[k].intensity);
    }
  }
  ASSERT_EQ(got.objects.size(), want.objects.size());
  for (size_t i = 0; i < want.objects.size(); ++i) {
    const GtObject& a = want.objects[i];
    const GtObject& b = got.objects[i];
    EXPECT_EQ(b.id, a.id);
    EXPECT_EQ(b.cls, a.cls);
    EXPECT_DOUBLE_EQ(b.box.x, a.box.x);
    EXPECT_DOUBLE_EQ(b.box.y, a.box.y);
    EXPECT_DOUBLE_EQ(b.box.z, a.box.z);
    EXPECT_DOUBLE_EQ(b.box.l, a.box.l);
    EXPECT_DOUBLE_EQ(b.box.w, a.box.w);
    EXPECT_DOUBLE_EQ(b.box.h, a.box.h);
    EXPECT_NEAR(WrapAngle(b.box.yaw - a.box.yaw), 0, 1e-12);
    EXPECT_EQ(b.visible_to, a.visible_to);
    EXPECT_EQ(b.points_by_agent, a.points_by_agent);
  }
}

TEST_F(Opv2vRoundTripTest, WrittenFramesReadBackIdentically) {
  // Every PCD layout: ASCII with 9 significant digits is exact for float32 too.
  for (PcdData layout : {PcdData::kBinary, PcdData::kAscii, PcdData::kBinaryCompressed}) {
    SCOPED_TRACE(static_cast<int>(layout));
    const fs::path root = dir_ / std::to_string(static_cast<int>(layout));
    const SceneFrame f3 = Sample(3), f4 = Sample(4);
    ASSERT_TRUE(WriteOpv2vFrame(f3, root.string(), layout).ok());
    ASSERT_TRUE(WriteOpv2vFrame(f4, root.string(), layout).ok());
    for (const char* file : {"town_007/2/000003.pcd", "town_007/2/000003.yaml",
                             "town_007/-1/000004.pcd", "town_007/5/000004.yaml"}) {
      EXPECT_TRUE(fs::exists(root / file)) << file;
    }
    absl::StatusOr<Opv2vDataset> ds = Opv2vDataset::Open(root.string());
    ASSERT_TRUE(ds.ok()) << ds.status();
    ASSERT_EQ(ds->scenarios(), std::vector<std::string>{"town_007"});
    // The ego first, then the other vehicles by id, infrastructure last.
    EXPECT_EQ(ds->agent_ids(0), (std::vector<int>{2, 5, -1}));
    ASSERT_EQ(ds->frames().size(), 2u);
    absl::StatusOr<SceneFrame> r3 = ds->ReadFrame(0);
    ASSERT_TRUE(r3.ok()) << r3.status();
    EXPECT_EQ(r3->index, 0);
    ExpectSame(f3, *r3);
    absl::StatusOr<SceneFrame> r4 = ds->ReadFrame("town_007", "000004");
    ASSERT_TRUE(r4.ok()) << r4.status();
    EXPECT_EQ(r4->index, 1);
    ExpectSame(f4, *r4);
    EXPECT_EQ(ds->ReadFrame(2).status().code(), absl::StatusCode::kOutOfRange);
    EXPECT_EQ(ds->ReadFrame("town_007", "000009").status().code(), absl::StatusCode::kNotFound);
  }
}

TEST_F(Opv2vRoundTripTest, EgoFlagChoosesTheEgo) {
  SceneFrame f = Sample(3);
  f.ego_id = 5;  // not the lowest id: only the YAML flag can tell
  ASSERT_TRUE(WriteOpv2vFrame(f, dir_.string()).ok());
  absl::StatusOr<Opv2vDataset> ds = Opv2vDataset::Open(dir_.string());
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_EQ(ds->agent_ids(0).front(), 5);
  EXPECT_EQ(ds->ReadFrame(0)->agents.front().agent_id, 5);
}

std::vector<int> Ids(const std::string& root, DatasetMode mode) {
  absl::StatusOr<Opv2vDataset> ds = Opv2vDataset::Open(root, {mode, MissingAgent::kSkip});
  if (!ds.ok()) return {};
  absl::StatusOr<SceneFrame> f = ds->ReadFrame(0);
  std::vector<int> read;
  if (f.ok()) {
    for (const AgentFrame& a : f->agents) read.push_back(a.agent_id);
  }
  EXPECT_EQ(read, ds->agent_ids(0)) << DatasetModeName(mode);
  return read;
}

TEST_F(Opv2vRoundTripTest, DatasetModesChooseTheAgentsAndTheEgo) {
  SceneFrame f = Sample(3);
  AgentFrame rsu2 = f.agents[2];
  rsu2.agent_id = -2;
  f.agents.push_back(rsu2);
  ASSERT_TRUE(WriteOpv2vFrame(f, dir_.string()).ok());
  const std::string root = dir_.string();
  EXPECT_EQ(Ids(root, DatasetMode::kVc), (std::vector<int>{2, 5, -1, -2}));
  EXPECT_EQ(Ids(root, DatasetMode::kV2v), (std::vector<int>{2, 5}));
  EXPECT_EQ(Ids(root, DatasetMode::kIc), (std::vector<int>{-1, -2, 2, 5}));
  EXPECT_EQ(Ids(root, DatasetMode::kI2i), (std::vector<int>{-1, -2}));
  EXPECT_EQ(*ParseDatasetMode("i2i"), DatasetMode::kI2i);
  EXPECT_EQ(ParseDatasetMode("v2x").status().code(), absl::StatusCode::kInvalidArgument);

  // Vehicles only, read in an infrastructure mode: no scenario has an ego.
  fs::remove_all(dir_ / "town_007" / "-1");
  fs::remove_all(dir_ / "town_007" / "-2");
  absl::Status st = Opv2vDataset::Open(root, {DatasetMode::kI2i, MissingAgent::kSkip}).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(st.message().find("none of its 1 scenarios has an infrastructure agent"),
            std::string::npos)
      << st;
}

TEST_F(Opv2vRoundTripTest, MissingRecordsAreSkippedOrStopAsConfigured) {
  ASSERT_TRUE(WriteOpv2vFrame(Sample(3), dir_.string()).ok());
  ASSERT_TRUE(WriteOpv2vFrame(Sample(4), dir_.string()).ok());
  fs::remove(dir_ / "town_007" / "5" / "000003.yaml");  // agent 5 has no record at 000003
  fs::remove(dir_ / "town_007" / "-1" / "000004.pcd");  // the RSU's sweep at 000004 is lost
  const std::string root = dir_.string();
  absl::StatusOr<Opv2vDataset> skip = Opv2vDataset::Open(root);
  ASSERT_TRUE(skip.ok()) << skip.status();
  EXPECT_EQ(skip->ReadFrame(0)->agents.size(), 2u);
  EXPECT_EQ(skip->ReadFrame(1)->agents.size(), 2u);
  absl::StatusOr<Opv2vDataset> stop =
      Opv2vDataset::Open(root, {DatasetMode::kVc, *ParseMissingAgent("stop")});
  ASSERT_TRUE(stop.ok()) << stop.status();
  absl::Status st = stop->ReadFrame(0).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(st.message().find("town_007/5/000003.yaml: missing: agent 5 has no record at 000003 "
                              "(missing_agent: stop)"),
            std::string::npos)
      << st;
  st = stop->ReadFrame(1).status();
  EXPECT_NE(st.message().find("-1/000004.pcd (or .bin): missing: agent -1 has a YAML but no "
                              "sweep"),
            std::string::npos)
      << st;

  // An empty sweep: another agent's follows the policy; the ego's is always an error.
  ASSERT_TRUE(WritePcd((dir_ / "town_007" / "-1" / "000004.pcd").string(), {}).ok());
  EXPECT_EQ(skip->ReadFrame(1)->agents.size(), 2u);
  st = stop->ReadFrame(1).status();
  EXPECT_NE(st.message().find("000004.pcd: empty sweep"), std::string::npos) << st;
  ASSERT_TRUE(WritePcd((dir_ / "town_007" / "2" / "000004.pcd").string(), {}).ok());
  st = skip->ReadFrame(1).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("empty sweep (no point with finite coordinates) (the ego)"),
            std::string::npos)
      << st;
  EXPECT_EQ(ParseMissingAgent("ignore").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(Opv2vRoundTripTest, AgentYamlFollowsOpv2v) {
  const SceneFrame f = Sample(3);
  const std::string cav = Opv2vAgentYaml(f, f.agents[1]);  // agent 5
  absl::StatusOr<Opv2vAgentInfo> info = ParseOpv2vAgentYaml(cav, "cav");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_TRUE(info->has_ego_flag);
  EXPECT_FALSE(info->ego);
  EXPECT_EQ(info->lidar_pose.ToArray(), f.agents[1].lidar_pose.ToArray());
  // Its own body is left out; everything else is listed.
  ASSERT_EQ(info->objects.size(), 3u);
  for (const GtObject& o : info->objects) EXPECT_NE(o.id, 5);
  EXPECT_NE(cav.find("obj_type: Truck"), std::string::npos);
  EXPECT_NE(cav.find("obj_type: Pedestrian"), std::string::npos);
  EXPECT_NE(cav.find("extent: [4, 1.45, 1.55]"), std::string::npos) << cav;
  EXPECT_NE(cav.find("center: [0, 0, 0]"), std::string::npos);
}

TEST(Opv2vYamlTest, ReadsDatasetConventions) {
  // OPV2V style: no obj_type (vehicle), a centre offset, angles in degrees, half extents.
  const std::string text = R"(
camera0: {cords: [1, 2, 3, 0, 0, 0]}
ego_speed: 9.1
lidar_pose: [10.0, -4.0, 1.8, 0.5, 90.0, -0.2]
vehicles:
  641:
    angle: [0.0, 30.0, 0.0]
    center: [0.1, 0.0, 0.7]
    extent: [2.2, 0.9, 0.75]
    location: [15.0, 2.0, 0.03]
    speed: 8.0
  642:
    angle: [0.0, -120.0, 0.0]
    center: [0.0, 0.0, 0.9]
    extent: [0.3, 0.3, 0.9]
    location: [1.0, 2.0, 0.0]
    obj_type: BicycleRider
)";
  absl::StatusOr<Opv2vAgentInfo> info = ParseOpv2vAgentYaml(text, "a.yaml");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_FALSE(info->has_ego_flag);
  EXPECT_EQ(info->lidar_pose.ToArray(), (std::array<double, 6>{10, -4, 1.8, 0.5, 90, -0.2}));
  ASSERT_EQ(info->objects.size(), 2u);
  const GtObject& car = info->objects[0];
  EXPECT_EQ(car.id, 641);
  EXPECT_EQ(car.cls, ObjectClass::kVehicle);
  EXPECT_DOUBLE_EQ(car.box.x, 15.1);
  EXPECT_DOUBLE_EQ(car.box.z, 0.73);
  EXPECT_DOUBLE_EQ(car.box.l, 4.4);
  EXPECT_DOUBLE_EQ(car.box.w, 1.8);
  EXPECT_DOUBLE_EQ(car.box.h, 1.5);
  EXPECT_NEAR(car.box.yaw, kPi / 6, 1e-12);
  EXPECT_EQ(info->objects[1].cls, ObjectClass::kPedestrian);
  EXPECT_NEAR(info->objects[1].box.yaw, -2 * kPi / 3, 1e-12);
}

TEST(Opv2vYamlTest, ErrorsNameTheFileAndKey) {
  auto error = [](const std::string& text) {
    return std::string(ParseOpv2vAgentYaml(text, "f.yaml").status().message());
  };
  EXPECT_NE(error("vehicles: {}").find("f.yaml: lidar_pose"), std::string::npos);
  EXPECT_NE(error("lidar_pose: [1, 2, 3]").find("lidar_pose"), std::string::npos);
  const std::string bad_extent = R"(lidar_pose: [0, 0, 0, 0, 0, 0]
vehicles:
  5: {location: [0, 0, 0], angle: [0, 0, 0], extent: [1, 1]}
)";
  EXPECT_NE(error(bad_extent).find("vehicles.5.extent"), std::string::npos) << error(bad_extent);
  EXPECT_NE(error("lidar_pose: [0, 0, 0, 0, 0, 0]\nvehicles:\n  x: {}\n").find("vehicles"),
            std::string::npos);
  EXPECT_NE(error("lidar_pose: [0, 0, {").find("f.yaml"), std::string::npos);
}

TEST(Opv2vDatasetTest, MissingOrEmptyRootIsNotFound) {
  EXPECT_EQ(Opv2vDataset::Open("/nonexistent/qv2x").status().code(), absl::StatusCode::kNotFound);
  const fs::path empty = fs::path(::testing::TempDir()) / "opv2v_empty_root";
  fs::create_directories(empty / "not_a_scenario" / "camera");
  EXPECT_EQ(Opv2vDataset::Open(empty.string()).status().code(), absl::StatusCode::kNotFound);
  fs::remove_all(empty);
}

}  // namespace
}  // namespace qv2x
