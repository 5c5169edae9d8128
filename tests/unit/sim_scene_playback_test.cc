// ScenePlayback (core/sim/scene_playback.h): the agent and fusion services' frames from the
// simulator or from a dataset folder, scene agents mapped onto each scenario's agents by
// order.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "core/data/opv2v_writer.h"
#include "core/sim/scene_playback.h"

namespace qv2x::sim {
namespace {

namespace fs = std::filesystem;

constexpr char kTinyScene[] = "configs/scenes/tiny.yaml";

void ExpectSamePoints(const PointCloud& a, const PointCloud& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].x, b[i].x) << i;
    ASSERT_EQ(a[i].y, b[i].y) << i;
    ASSERT_EQ(a[i].z, b[i].z) << i;
    ASSERT_EQ(a[i].intensity, b[i].intensity) << i;
  }
}

// Frames 0 and 1 of scenario 0 and frame 0 of scenario 1 of the tiny scene (agents 0, 1,
// -1) on disk; in scenario 1 agent 1 is renamed 1045 (OPV2V names agents by CARLA actor),
// and agent -1 has no record at scenario 0's frame 1.
class ScenePlaybackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("playback_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    auto scene = LoadSceneConfig(kTinyScene);
    ASSERT_TRUE(scene.ok()) << scene.status();
    scene_ = *scene;
    auto sim = Simulator::Create(scene_);
    ASSERT_TRUE(sim.ok()) << sim.status();
    sim_.emplace(std::move(*sim));
    for (auto [scenario, index] : {std::pair{0, 0}, {0, 1}, {1, 0}}) {
      auto f = sim_->Frame(scenario, index);
      ASSERT_TRUE(f.ok()) << f.status();
      ASSERT_TRUE(WriteOpv2vFrame(*f, dir_.string()).ok());
    }
    s0_ = dir_ / sim_->ScenarioName(0);
    const fs::path s1 = dir_ / sim_->ScenarioName(1);
    fs::rename(s1 / "1", s1 / "1045");
    ASSERT_TRUE(fs::remove(s0_ / "-1" / "000001.yaml"));
    ASSERT_TRUE(fs::remove(s0_ / "-1" / "000001.pcd"));
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path dir_, s0_;
  SceneConfig scene_;
  std::optional<Simulator> sim_;
};

TEST_F(ScenePlaybackTest, DatasetFramesWrapAndAgentsMapByOrder) {
  auto p = ScenePlayback::Create(scene_, {dir_.string(), {}});
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_TRUE(p->is_dataset());
  EXPECT_NE(p->Describe().find("3 frames, 2 scenarios"), std::string::npos) << p->Describe();
  EXPECT_EQ(p->Instant(1).scenario, 0);
  EXPECT_EQ(p->Instant(1).index, 1);
  EXPECT_EQ(p->Instant(2).scenario, 1);
  EXPECT_EQ(p->Instant(2).index, 0);
  EXPECT_EQ(p->Instant(4).index, 1) << "frame ids wrap over the dataset";

  // Scenario 1: the scene's agent 1 plays the dataset's 1045, under its scene id.
  EXPECT_EQ(p->SourceId(2, 1), 1045);
  EXPECT_EQ(p->SourceId(2, -1), -1);
  EXPECT_EQ(p->SourceId(2, 7), std::nullopt) << "not an agent of the scene";
  auto sweep = p->Sweep(2, 1);
  ASSERT_TRUE(sweep.ok()) << sweep.status();
  ASSERT_TRUE(sweep->has_value());
  EXPECT_EQ((*sweep)->agent_id, 1);
  auto simulated = sim_->SimulateAgent(1, 0, 1);
  ASSERT_TRUE(simulated.ok());
  ExpectSamePoints((*sweep)->points, simulated->points);
  EXPECT_NEAR((*sweep)->lidar_pose.x, simulated->lidar_pose.x, 1e-6);
  EXPECT_NEAR((*sweep)->lidar_pose.yaw, simulated->lidar_pose.yaw, 1e-6);

  // Agent -1 has no record at frame 1: nothing to send, and fusion is not to wait for it.
  auto absent = p->Sweep(1, -1);
  ASSERT_TRUE(absent.ok()) << absent.status();
  EXPECT_FALSE(absent->has_value());
  EXPECT_FALSE(p->Plays(1, -1));
  EXPECT_FALSE(p->Plays(4, -1));
  EXPECT_TRUE(p->Plays(1, 0));
  EXPECT_TRUE(p->Plays(0, -1));
  EXPECT_FALSE(p->Plays(0, 7));

  // Labels: poses and ground truth without sweeps, under the dataset's ids.
  auto labels = p->Labels(2);
  ASSERT_TRUE(labels.ok()) << labels.status();
  ASSERT_EQ(labels->agents.size(), 3u);
  EXPECT_EQ(labels->agents[1].agent_id, 1045);
  for (const AgentFrame& a : labels->agents) EXPECT_TRUE(a.points.empty());
  auto truth = sim_->Frame(1, 0);
  ASSERT_TRUE(truth.ok());
  EXPECT_EQ(labels->objects.size(), truth->objects.size());
}

TEST_F(ScenePlaybackTest, MissingAgentStopNamesTheFile) {
  auto p = ScenePlayback::Create(scene_, {dir_.string(), {DatasetMode::kVc, MissingAgent::kStop}});
  ASSERT_TRUE(p.ok()) << p.status();
  auto sweep = p->Sweep(1, -1);
  ASSERT_FALSE(sweep.ok());
  EXPECT_NE(sweep.status().message().find((s0_ / "-1" / "000001.yaml").string()), std::string::npos)
      << sweep.status();
}

TEST_F(ScenePlaybackTest, VehiclesOnlyModeLeavesTheRoadsideUnitOut) {
  auto p = ScenePlayback::Create(scene_, {dir_.string(), {DatasetMode::kV2v, MissingAgent::kSkip}});
  ASSERT_TRUE(p.ok()) << p.status();
  auto sweep = p->Sweep(0, -1);
  ASSERT_TRUE(sweep.ok()) << sweep.status();
  EXPECT_FALSE(sweep->has_value());
  EXPECT_FALSE(p->Plays(0, -1));
}

TEST_F(ScenePlaybackTest, SimulatedSceneIsTheSimulator) {
  auto p = ScenePlayback::Create(scene_);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_FALSE(p->is_dataset());
  const uint64_t frame = scene_.frames_per_scenario + 3;  // scenario 1, frame 3
  EXPECT_EQ(p->Instant(frame).scenario, 1);
  EXPECT_EQ(p->Instant(frame).index, 3);
  EXPECT_TRUE(p->Plays(frame, -1));
  EXPECT_EQ(p->SourceId(frame, -1), -1);
  auto sweep = p->Sweep(frame, -1);
  ASSERT_TRUE(sweep.ok() && sweep->has_value());
  auto simulated = sim_->SimulateAgent(1, 3, -1);
  ASSERT_TRUE(simulated.ok());
  ExpectSamePoints((*sweep)->points, simulated->points);
}

TEST_F(ScenePlaybackTest, MissingFolderIsNamed) {
  auto p = ScenePlayback::Create(scene_, {(dir_ / "nope").string(), {}});
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("nope"), std::string::npos) << p.status();
}

}  // namespace
}  // namespace qv2x::sim
