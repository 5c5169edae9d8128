// `qv2x scene up` as a user runs it: the launcher starts the tiny scene's services, the
// control commands find them through endpoints.json, and however the launcher ends (its
// --frames budget, SIGTERM, SIGKILL) no service is left behind.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "tests/integration/harness/process.h"

namespace qv2x {
namespace {

using qv2x::testing::ChildProcess;

std::string Qv2x() { return qv2x::testing::BuildDir() + "/bin/qv2x"; }

using qv2x::testing::NoneLeft;
using qv2x::testing::ProcessesWith;

int RunCli(const std::vector<std::string>& args, const std::string& log, std::string* out) {
  std::vector<std::string> argv = {Qv2x()};
  argv.insert(argv.end(), args.begin(), args.end());
  auto p = ChildProcess::Start(argv, log);
  if (!p.ok()) return -1;
  const int rc = (*p)->Wait(300);
  *out = (*p)->Log();
  return rc;
}

class SceneLauncherTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = qv2x::testing::MakeTempDir("qv2x_scene_"); }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(SceneLauncherTest, FramesBudgetPrintsAndWritesTheSummary) {
  const std::string run = dir_ + "/run", json = dir_ + "/summary.json";
  std::string out;
  const int rc = RunCli({"scene", "up", "--config", "configs/scenes/tiny.yaml", "--frames", "6",
                         "--json", json, "--run-dir", run},
                        dir_ + "/up.log", &out);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("frames fused          6 (3.00 agents/frame"), std::string::npos) << out;
  EXPECT_NE(out.find("compression ratio"), std::string::npos);
  std::ifstream in(json);
  const nlohmann::json s = nlohmann::json::parse(in);
  EXPECT_EQ(s["frames_fused"], 6);
  EXPECT_DOUBLE_EQ(s["agents_per_frame_mean"].get<double>(), 3.0);
  EXPECT_EQ(s["frames_with_all_agents"], 6);
  EXPECT_GT(s["bytes_per_message_mean"].get<double>(), 0);
  EXPECT_GT(s["compression_ratio"].get<double>(), 10);
  EXPECT_GT(s["by_encoding"]["zstd"]["messages"].get<int>(), 0);
  EXPECT_GT(s["encode_latency_p50_s"].get<double>(), 0);
  EXPECT_GE(s["e2e_latency_p50_s"].get<double>(), s["encode_latency_p50_s"].get<double>());
  EXPECT_TRUE(s["ap"].contains("vehicle"));
  EXPECT_TRUE(s["ap"]["vehicle"].contains("0.5"));
  EXPECT_TRUE(NoneLeft(run, 10)) << "services outlived the launcher";
}

TEST_F(SceneLauncherTest, ControlCommandsFindTheSceneAndSigtermStopsEverything) {
  const std::string run = dir_ + "/run";
  auto launcher = ChildProcess::Start(
      {Qv2x(), "scene", "up", "--config", "configs/scenes/tiny.yaml", "--run-dir", run},
      dir_ + "/up.log");
  ASSERT_TRUE(launcher.ok());
  const std::string endpoints = run + "/endpoints.json";
  for (int i = 0; i < 1200 && !std::filesystem::exists(endpoints); ++i) {
    ASSERT_TRUE((*launcher)->Running()) << (*launcher)->Log();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(std::filesystem::exists(endpoints)) << (*launcher)->Log();
  std::string out;
  ASSERT_EQ(RunCli({"watch", "--endpoints", endpoints, "--frames", "2"}, dir_ + "/w.log", &out), 0)
      << out;
  // The ego first, then the others nearest first.
  EXPECT_TRUE(out.find("agents [0,1,-1]") != std::string::npos ||
              out.find("agents [0,-1,1]") != std::string::npos)
      << out;
  ASSERT_EQ(
      RunCli({"agent", "status", "--agent", "-1", "--endpoints", endpoints}, dir_ + "/s.log", &out),
      0)
      << out;
  EXPECT_NE(out.find("agent -1: fp32, zstd, connected"), std::string::npos) << out;
  EXPECT_NE(RunCli({"agent", "set-precision", "--agent", "1", "int8", "--endpoints", endpoints},
                   dir_ + "/p.log", &out),
            0)
      << "no INT8 encoder is loaded: " << out;
  EXPECT_NE(out.find("INT8"), std::string::npos) << out;

  const nlohmann::json e = nlohmann::json::parse(std::ifstream(endpoints));
  const std::string fusion = absl::StrCat("127.0.0.1:", e["fusion"]["grpc_port"].get<int>());
  ASSERT_EQ(RunCli({"health", fusion}, dir_ + "/h.log", &out), 0) << out;
  EXPECT_NE(out.find("SERVING"), std::string::npos);

  (*launcher)->Signal(SIGTERM);
  EXPECT_EQ((*launcher)->Wait(60), 0) << (*launcher)->Log();
  EXPECT_TRUE(NoneLeft(run, 10)) << "services outlived the launcher";
  EXPECT_FALSE(std::filesystem::exists(endpoints));
  EXPECT_NE(RunCli({"health", fusion, "--timeout", "1"}, dir_ + "/h2.log", &out), 0)
      << "a probe of a stopped service fails";
}

TEST_F(SceneLauncherTest, KilledLauncherTakesItsServicesWithIt) {
  const std::string run = dir_ + "/run";
  auto launcher = ChildProcess::Start(
      {Qv2x(), "scene", "up", "--config", "configs/scenes/tiny.yaml", "--run-dir", run},
      dir_ + "/up.log");
  ASSERT_TRUE(launcher.ok());
  for (int i = 0; i < 1200 && !std::filesystem::exists(run + "/endpoints.json"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_FALSE(ProcessesWith(run).empty());
  (*launcher)->Signal(SIGKILL);
  (*launcher)->Wait(10);
  EXPECT_TRUE(NoneLeft(run, 30)) << "orphaned services";
}

}  // namespace
}  // namespace qv2x
