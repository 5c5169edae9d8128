// Scene files: the shipped ones parse, and every kind of mistake names its key path.
#include "core/sim/scene_config.h"

#include <functional>
#include <string>

#include "core/common/file_util.h"
#include "gtest/gtest.h"
#include "yaml-cpp/yaml.h"

namespace qv2x::sim {
namespace {

std::string Intersection() {
  absl::StatusOr<std::string> text = ReadFile("configs/scenes/intersection.yaml");
  EXPECT_TRUE(text.ok()) << text.status();
  return text.value_or("");
}

// Parses intersection.yaml after `edit` changed its YAML tree.
absl::StatusOr<SceneConfig> ParseEdited(const std::function<void(YAML::Node&)>& edit) {
  YAML::Node root = YAML::Load(Intersection());
  edit(root);
  YAML::Emitter out;
  out << root;
  return ParseSceneConfig(out.c_str());
}

void ExpectErrorNaming(const absl::StatusOr<SceneConfig>& c, const std::string& key) {
  ASSERT_FALSE(c.ok()) << "expected an error naming " << key;
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << c.status();
  EXPECT_NE(c.status().message().find(key), std::string::npos) << c.status();
}

TEST(SceneConfigTest, ShippedScenesParse) {
  for (const char* name : {"intersection", "tiny", "train", "val", "test"}) {
    const std::string file = std::string("configs/scenes/") + name + ".yaml";
    absl::StatusOr<SceneConfig> c = LoadSceneConfig(file);
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_EQ(c->name, name);
    EXPECT_NE(c->FindAgent(c->ego_id), nullptr);
  }
}

TEST(SceneConfigTest, IntersectionValues) {
  absl::StatusOr<SceneConfig> c = ParseSceneConfig(Intersection());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->seed, 20240601u);
  EXPECT_DOUBLE_EQ(c->rate_hz, 10);
  EXPECT_EQ(c->lidar.channels, 32);
  EXPECT_DOUBLE_EQ(c->lidar.upper_fov_deg, 2);
  EXPECT_DOUBLE_EQ(c->lidar.lower_fov_deg, -25);
  EXPECT_DOUBLE_EQ(c->lidar.range_m, 120);
  EXPECT_EQ(c->lidar.Columns(), 1800);
  EXPECT_DOUBLE_EQ(c->lidar.mount_height_m, 1.9);
  EXPECT_DOUBLE_EQ(c->roi_half_x_m, 51.2);
  EXPECT_DOUBLE_EQ(c->roi_half_y_m, 25.6);
  ASSERT_EQ(c->agents.size(), 4u);
  int rsus = 0;
  for (const AgentConfig& a : c->agents) {
    if (a.kind == AgentKind::kRsu) {
      ++rsus;
      EXPECT_LT(a.id, 0);
      EXPECT_GE(a.mast_height_m, 4);
      EXPECT_LE(a.mast_height_m, 6);
    }
  }
  EXPECT_EQ(rsus, 1);
  EXPECT_DOUBLE_EQ(c->traffic.truck_size.length_m.min, 7.0);
}

TEST(SceneConfigTest, MissingFileIsNotFound) {
  EXPECT_EQ(LoadSceneConfig("configs/scenes/no_such_scene.yaml").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(SceneConfigTest, FileErrorsNameTheFile) {
  const std::string dir = ::testing::TempDir();
  const std::string path = dir + "/bad_scene.yaml";
  YAML::Node root = YAML::Load(Intersection());
  root["lidar"]["channels"] = "many";
  YAML::Emitter out;
  out << root;
  ASSERT_TRUE(WriteFileAtomic(path, out.c_str()).ok());
  absl::StatusOr<SceneConfig> c = LoadSceneConfig(path);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find(path), std::string::npos) << c.status();
  EXPECT_NE(c.status().message().find("lidar.channels"), std::string::npos) << c.status();
  EXPECT_NE(c.status().message().find("\"many\""), std::string::npos) << c.status();
}

TEST(SceneConfigTest, UnknownKeyIsNamed) {
  ExpectErrorNaming(ParseEdited([](YAML::Node& r) { r["traffic"]["vehicels"] = 3; }),
                    "traffic.vehicels");
}

TEST(SceneConfigTest, MissingKeyIsNamed) {
  ExpectErrorNaming(ParseEdited([](YAML::Node& r) { r["lidar"].remove("range_m"); }),
                    "lidar.range_m");
  ExpectErrorNaming(ParseEdited([](YAML::Node& r) { r.remove("seed"); }), "seed");
}

TEST(SceneConfigTest, BadValuesAreNamed) {
  ExpectErrorNaming(ParseEdited([](YAML::Node& r) { r["traffic"]["lane_speed_mps"][0] = 20; }),
                    "traffic.lane_speed_mps");
  ExpectErrorNaming(ParseEdited([](YAML::Node& r) { r["lidar"]["dropout"] = 1.5; }),
                    "lidar.dropout");
  ExpectErrorNaming(ParseEdited([](YAML::Node& r) { r["lidar"]["azimuth_step_deg"] = 0.7; }),
                    "lidar.azimuth_step_deg");
  ExpectErrorNaming(ParseEdited([](YAML::Node& r) { r["lidar"]["lower_fov_deg"] = 5; }),
                    "lidar.lower_fov_deg");
  ExpectErrorNaming(ParseEdited([](YAML::Node& r) { r["traffic"]["car_size"]["width_m"][1] = 9; }),
                    "traffic.car_size.width_m");
  ExpectErrorNaming(ParseEdited([](YAML::Node& r) { r["name"] = "a b"; }), "name");
}

TEST(SceneConfigTest, AgentMistakesAreNamed) {
  ExpectErrorNaming(ParseEdited([](YAML::Node& r) { r["agents"][3]["id"] = 3; }), "agents[3].id");
  ExpectErrorNaming(ParseEdited([](YAML::Node& r) { r["agents"][1]["id"] = 0; }), "agents[1].id");
  ExpectErrorNaming(ParseEdited([](YAML::Node& r) { r["agents"][0]["heading"] = "up"; }),
                    "agents[0].heading");
  ExpectErrorNaming(ParseEdited([](YAML::Node& r) { r["agents"][0]["lane"] = 3; }),
                    "agents[0].lane");
  ExpectErrorNaming(ParseEdited([](YAML::Node& r) { r["agents"][0]["start_m"][1] = 500; }),
                    "agents[0].start_m");
  ExpectErrorNaming(ParseEdited([](YAML::Node& r) { r["ego_id"] = 9; }), "ego_id");
}

TEST(SceneConfigTest, ParkedTrucksAreOptionalAndNeedAWideEnoughParkingLane) {
  absl::StatusOr<SceneConfig> c = ParseSceneConfig(Intersection());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->traffic.parked_trucks, 8);
  // Scene files from before the key load with none.
  absl::StatusOr<SceneConfig> old =
      ParseEdited([](YAML::Node& r) { r["traffic"].remove("parked_trucks"); });
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_EQ(old->traffic.parked_trucks, 0);
  ExpectErrorNaming(ParseEdited([](YAML::Node& r) { r["traffic"]["parked_trucks"] = -1; }),
                    "traffic.parked_trucks");
  ExpectErrorNaming(ParseEdited([](YAML::Node& r) { r["map"]["parking_lane_width_m"] = 2.6; }),
                    "traffic.parked_trucks");
}

TEST(SceneConfigTest, SignalTooShortForTheSlowestLaneIsNamed) {
  ExpectErrorNaming(ParseEdited([](YAML::Node& r) { r["traffic"]["signal_cycle_s"] = 8; }),
                    "traffic.signal_cycle_s");
}

}  // namespace
}  // namespace qv2x::sim
