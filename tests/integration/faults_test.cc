// Faults the cooperative runtime must survive, with real processes on 127.0.0.1 (issue 11):
// an agent that stalls without closing its stream and is then restarted, the fusion
// service killed and restarted, and bad model files given to the services at start and
// through LoadModel.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "qv2x/v1/agent.grpc.pb.h"
#include "qv2x/v1/features.grpc.pb.h"
#include "tests/integration/harness/cluster.h"
#include "tests/integration/harness/model_files.h"

namespace qv2x {
namespace {

using qv2x::testing::AgentsOf;
using qv2x::testing::BadModelFile;
using qv2x::testing::ChildProcess;
using qv2x::testing::SumOf;

class FaultsTest : public qv2x::testing::ClusterTest {
 protected:
  double AgentMetric(int id, const std::string& name) {
    return SumOf(Metrics(agent_ports_[id].metrics), name);
  }
  double FusionMetric(const std::string& name, int agent) {
    return SumOf(Metrics(fusion_ports_.metrics), name, {absl::StrCat("agent=\"", agent, "\"")});
  }
  void FusionDownFor(int window_s);
};

// Agent 1 is frozen (SIGSTOP): its stream stays open but nothing comes. Every frame is
// fused with the other two at the deadline and agent 1 is counted missing; once it is
// killed and started again it rejoins at the frame the scene is at, not at frame 0.
TEST_F(FaultsTest, StalledAgentIsCountedAndRejoinsAtTheCurrentFrameWhenRestarted) {
  StartFusion(0, {"--deadline_ms=1000"});
  for (int id : qv2x::testing::kTinyAgents) StartAgent(id);
  ASSERT_GE(frames_->WaitFor(4, 180).size(), 4u) << Logs();

  agents_[1]->Signal(SIGSTOP);
  // The frame agent 1 may have sent just before it stopped is still fused with it.
  const size_t stalled_at = frames_->WaitFor(frames_->size() + 2, 60).size();
  std::map<int, double> missing0, late0;  // of the other two
  for (int id : qv2x::testing::kTinyAgents) {
    missing0[id] = FusionMetric("qv2x_fusion_missing_messages_total", id);
    late0[id] = FusionMetric("qv2x_fusion_late_messages_total", id);
  }
  auto got = frames_->WaitFor(stalled_at + 6, 120);
  ASSERT_GE(got.size(), stalled_at + 6) << "fusion stopped fusing the others\n" << Logs();
  double e2e_max = 0;
  for (size_t i = stalled_at; i < got.size(); ++i) {
    e2e_max = std::max(e2e_max, got[i].e2e_latency_seconds());
    EXPECT_EQ(AgentsOf(got[i]), std::set<int>({0, -1})) << "frame " << got[i].frame_id();
    EXPECT_EQ(std::vector<int>(got[i].missing_agents().begin(), got[i].missing_agents().end()),
              std::vector<int>({1}));
    EXPECT_EQ(got[i].frame_id(), got[i - 1].frame_id() + 1) << "no frame skipped";
  }
  std::cout << "agent 1 stalled: " << got.size() - stalled_at
            << " frames fused without it at the 1 s deadline, e2e latency at most " << e2e_max
            << " s\n";
  // Counted before its frame is published: at least every frame seen without agent 1.
  const auto without_1 = std::count_if(got.begin(), got.end(), [](const v1::DetectionFrame& f) {
    return AgentsOf(f).count(1) == 0;
  });
  EXPECT_GE(FusionMetric("qv2x_fusion_missing_messages_total", 1), without_1)
      << "each frame fused without agent 1 is counted against it";
  for (int id : {0, -1}) {
    EXPECT_EQ(FusionMetric("qv2x_fusion_missing_messages_total", id), missing0[id])
        << "agent " << id;
    EXPECT_EQ(FusionMetric("qv2x_fusion_late_messages_total", id), late0[id])
        << "the stalled agent made agent " << id << " late";
  }

  // Restarted (a stopped process dies of SIGKILL): the fusion service's first reply on the
  // new stream says where the scene is, and the agent starts there.
  agents_[1]->Signal(SIGKILL);
  ASSERT_NE(agents_[1]->Wait(10), -1);
  const double late_before = FusionMetric("qv2x_fusion_late_messages_total", 1);
  const uint64_t scene_at = frames_->WaitFor(0, 0).back().frame_id();
  StartAgent(1);
  const size_t restarted_at = frames_->size();
  size_t rejoined = 0;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  for (got = {}; rejoined == 0 && std::chrono::steady_clock::now() < give_up;) {
    got = frames_->WaitFor(std::max(got.size(), restarted_at) + 1, 5);
    for (size_t i = restarted_at; i < got.size() && rejoined == 0; ++i) {
      if (AgentsOf(got[i]).count(1) > 0) rejoined = i;
    }
  }
  ASSERT_GT(rejoined, 0u) << "agent 1 never rejoined\n" << Logs();
  EXPECT_GT(got[rejoined].frame_id(), scene_at) << "rejoined at an old frame";
  got = frames_->WaitFor(rejoined + 4, 120);
  ASSERT_GE(got.size(), rejoined + 4) << Logs();
  for (size_t i = rejoined; i < got.size(); ++i) {
    EXPECT_EQ(AgentsOf(got[i]), std::set<int>({0, 1, -1})) << "frame " << got[i].frame_id();
  }
  // Until its first message arrives the fusion service does not know to wait for it, so
  // the frames it encodes meanwhile (at most ahead + 1 = 2) can close without it.
  EXPECT_LE(FusionMetric("qv2x_fusion_late_messages_total", 1) - late_before, 2);
}

// The fusion service dies (SIGKILL) for `window_s` + 2 seconds: the agents retry with
// back-off instead of spinning, hold at most two unclosed frames, their memory stays flat,
// and fused frames resume with every agent once it is back on the same port.
void FaultsTest::FusionDownFor(int window_s) {
  const int port = qv2x::testing::FreePort();
  ASSERT_NO_FATAL_FAILURE(StartFusion(port));
  for (int id : qv2x::testing::kTinyAgents) StartAgent(id);
  ASSERT_GE(frames_->WaitFor(4, 180).size(), 4u) << Logs();
  fusion_->Signal(SIGKILL);
  ASSERT_NE(fusion_->Wait(10), -1);
  std::this_thread::sleep_for(std::chrono::seconds(2));  // streams noticed broken

  struct Sample {
    double failures, in_flight, connected;
    int64_t rss;
  };
  auto sample = [&](int id) {
    const auto m = Metrics(agent_ports_[id].metrics);
    return Sample{SumOf(m, "qv2x_agent_connect_failures_total"),
                  SumOf(m, "qv2x_agent_in_flight_frames"), SumOf(m, "qv2x_agent_connected"),
                  qv2x::testing::ResidentBytes(agents_[id]->pid())};
  };
  std::map<int, Sample> before;
  for (int id : qv2x::testing::kTinyAgents) before[id] = sample(id);
  std::map<int, int64_t> rss_max;
  for (int s = 0; s < window_s; ++s) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    for (int id : qv2x::testing::kTinyAgents) {
      rss_max[id] = std::max(rss_max[id], qv2x::testing::ResidentBytes(agents_[id]->pid()));
      EXPECT_LE(AgentMetric(id, "qv2x_agent_in_flight_frames"), 2) << "agent " << id;
    }
  }
  for (int id : qv2x::testing::kTinyAgents) {
    const Sample &b = before[id], a = sample(id);
    std::cout << "agent " << id << ": fusion down " << window_s + 2 << " s, RSS " << b.rss << " -> "
              << a.rss << " (max " << rss_max[id] << ") bytes, failed connects "
              << a.failures - b.failures << " in " << window_s << " s, in flight " << a.in_flight
              << "\n";
    EXPECT_EQ(a.connected, 0) << "agent " << id;
    ASSERT_GT(b.rss, 0);
    // Idle while disconnected: nothing is encoded or queued, so nothing should grow.
    EXPECT_LE(rss_max[id], b.rss + (4 << 20)) << "agent " << id << " grew while fusion was down";
    // Back-off doubles from 0.1 s to 2 s: one attempt per 2 s once settled, not 10 per s.
    EXPECT_GE(a.failures - b.failures, window_s / 4) << "agent " << id << " stopped retrying";
    EXPECT_LE(a.failures - b.failures, window_s / 2 + 7)
        << "agent " << id << " retries without back-off";
    EXPECT_TRUE(agents_[id]->Running()) << agents_[id]->Log();
  }

  const size_t before_restart = frames_->size();
  ASSERT_NO_FATAL_FAILURE(StartFusion(port));  // a fresh collector: counts from zero again
  auto got = frames_->WaitFor(4, 180);
  ASSERT_GE(got.size(), 4u) << "no frame fused after the restart (had " << before_restart << ")\n"
                            << Logs();
  EXPECT_EQ(AgentsOf(got.back()), std::set<int>({0, 1, -1}));
  for (int id : qv2x::testing::kTinyAgents) {
    EXPECT_GE(AgentMetric(id, "qv2x_agent_reconnects_total"), 1) << "agent " << id;
    EXPECT_EQ(AgentMetric(id, "qv2x_agent_connected"), 1) << "agent " << id;
  }
}

TEST_F(FaultsTest, KilledFusionAgentsBackOffStayBoundedAndFramesResume) { FusionDownFor(10); }

// The same for two minutes (ctest -L slow): RSS and retries over a longer outage.
TEST_F(FaultsTest, SlowFusionDownForTwoMinutes) { FusionDownFor(120); }

struct BadFile {
  BadModelFile kind;
  std::string expect;  // in the refusal
};

// Every service refuses a bad model file at start, exiting non-zero with a log line that
// says what is wrong.
TEST_F(FaultsTest, BadModelFilesAtStartAreRefusedNamingWhatIsWrong) {
  const std::vector<BadFile> checkpoints = {
      {BadModelFile::kTruncatedCheckpoint, "not a complete ZIP archive"},
      {BadModelFile::kCorruptCheckpoint, "fails its CRC-32 check"},
      {BadModelFile::kWrongShapeCheckpoint, "(model [6, 32, 1, 1], file [6, 24, 1, 1])"},
      {BadModelFile::kWrongPresetCheckpoint, "config cpu_stage3) refused by config tiny_stage3"},
      {BadModelFile::kWrongStageCheckpoint, "missing: codebook.codewords.0"},
  };
  const std::vector<BadFile> artifacts = {
      {BadModelFile::kTruncatedInt8, "int8 artifact: not a complete ZIP archive"},
      {BadModelFile::kCorruptInt8, "fails its CRC-32 check"},
      {BadModelFile::kWrongPresetInt8, "(config cpu_stage3) holds codebook"},
  };
  auto refused = [&](const std::string& service, std::vector<std::string> argv,
                     const std::string& expect) {
    auto p = ChildProcess::Start(argv, dir_ + "/start.log");
    ASSERT_TRUE(p.ok());
    const int rc = (*p)->Wait(120);
    const std::string log = (*p)->Log();
    EXPECT_NE(rc, 0) << service << " started with " << argv.back() << "\n" << log;
    EXPECT_NE(rc, -1) << service << " still running with " << argv.back();
    EXPECT_NE(log.find(expect), std::string::npos) << service << ": " << log;
  };
  const std::string fusion = qv2x::testing::BuildDir() + "/bin/qv2x-fusion";
  const std::string agent = qv2x::testing::BuildDir() + "/bin/qv2x-agent";
  const std::vector<std::string> common = {absl::StrCat("--scene=", qv2x::testing::kTinyScene),
                                           absl::StrCat("--config=", qv2x::testing::kTinyConfig),
                                           "--listen=127.0.0.1:0", "--metrics=127.0.0.1:0"};
  auto with = [&](const std::string& bin, std::vector<std::string> extra) {
    std::vector<std::string> argv = {bin};
    argv.insert(argv.end(), common.begin(), common.end());
    if (bin == agent) argv.push_back("--agent_id=1");
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  };
  for (const BadFile& b : checkpoints) {
    auto path = qv2x::testing::MakeBadModelFile(b.kind, dir_);
    ASSERT_TRUE(path.ok()) << path.status();
    refused("fusion", with(fusion, {"--checkpoint=" + *path}), b.expect);
    refused("agent", with(agent, {"--checkpoint=" + *path}), b.expect);
  }
  for (const BadFile& b : artifacts) {
    auto path = qv2x::testing::MakeBadModelFile(b.kind, dir_);
    ASSERT_TRUE(path.ok()) << path.status();
    refused("fusion", with(fusion, {"--int8_artifact=" + *path}), b.expect);
    refused("agent", with(agent, {"--int8_artifact=" + *path}), b.expect);
  }
}

// The same files through LoadModel while the scene runs: each is refused naming what is
// wrong, the services keep their model (status unchanged) and frames keep being fused
// with every agent.
TEST_F(FaultsTest, BadModelFilesThroughLoadModelAreRefusedAndTheSceneGoesOn) {
  StartAll();
  ASSERT_GE(frames_->WaitFor(3, 180).size(), 3u) << Logs();
  auto fusion = v1::Fusion::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", fusion_ports_.grpc), grpc::InsecureChannelCredentials()));
  auto agent = v1::AgentControl::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", agent_ports_[1].grpc), grpc::InsecureChannelCredentials()));
  auto fusion_status = [&] {
    grpc::ClientContext ctx;
    v1::FusionStatus s;
    EXPECT_TRUE(fusion->GetStatus(&ctx, {}, &s).ok());
    return s;
  };
  auto agent_status = [&] {
    grpc::ClientContext ctx;
    v1::AgentStatus s;
    EXPECT_TRUE(agent->GetStatus(&ctx, {}, &s).ok());
    return s;
  };
  const v1::FusionStatus f0 = fusion_status();
  const v1::AgentStatus a0 = agent_status();

  struct Case {
    BadModelFile kind;
    bool int8;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {BadModelFile::kTruncatedCheckpoint, false, "not a complete ZIP archive"},
      {BadModelFile::kCorruptCheckpoint, false, "fails its CRC-32 check"},
      {BadModelFile::kWrongShapeCheckpoint, false, "shrink_conv"},
      {BadModelFile::kWrongPresetCheckpoint, false, "config cpu_stage3"},
      {BadModelFile::kWrongStageCheckpoint, false, "codebook.codewords.0"},
      {BadModelFile::kTruncatedInt8, true, "not a complete ZIP archive"},
      {BadModelFile::kCorruptInt8, true, "fails its CRC-32 check"},
      {BadModelFile::kWrongPresetInt8, true, "(config cpu_stage3) holds codebook"},
  };
  auto good = qv2x::testing::MakeBadModelFile(BadModelFile::kNone, dir_);
  ASSERT_TRUE(good.ok()) << good.status();
  for (const Case& c : cases) {
    auto path = qv2x::testing::MakeBadModelFile(c.kind, dir_);
    ASSERT_TRUE(path.ok()) << path.status();
    {
      grpc::ClientContext ctx;
      v1::FusionLoadModelRequest req;
      req.set_checkpoint(c.int8 ? *good : *path);
      if (c.int8) req.set_int8_artifact(*path);
      v1::FusionStatus s;
      const grpc::Status st = fusion->LoadModel(&ctx, req, &s);
      EXPECT_FALSE(st.ok()) << "fusion loaded " << *path;
      EXPECT_NE(st.error_message().find(c.expect), std::string::npos)
          << "fusion: " << st.error_message();
    }
    {
      grpc::ClientContext ctx;
      v1::LoadModelRequest req;
      (c.int8 ? req.mutable_int8_artifact() : req.mutable_checkpoint())->assign(*path);
      v1::ControlReply reply;
      const grpc::Status st = agent->LoadModel(&ctx, req, &reply);
      EXPECT_FALSE(st.ok()) << "agent loaded " << *path;
      EXPECT_NE(st.error_message().find(c.expect), std::string::npos)
          << "agent: " << st.error_message();
    }
  }
  const v1::FusionStatus f1 = fusion_status();
  EXPECT_EQ(f1.model_generation(), f0.model_generation());
  EXPECT_EQ(f1.checkpoint(), f0.checkpoint());
  EXPECT_EQ(f1.codebook_digest(), f0.codebook_digest());
  EXPECT_EQ(f1.codebooks_size(), 1);
  const v1::AgentStatus a1 = agent_status();
  EXPECT_EQ(a1.model_generation(), a0.model_generation());
  EXPECT_EQ(a1.checkpoint(), a0.checkpoint());
  EXPECT_EQ(a1.int8_artifact(), a0.int8_artifact());
  EXPECT_EQ(a1.codebook_digest(), a0.codebook_digest());

  const size_t now = frames_->size();
  const auto got = frames_->WaitFor(now + 3, 120);
  ASSERT_GE(got.size(), now + 3) << Logs();
  for (size_t i = now; i < got.size(); ++i) {
    EXPECT_EQ(AgentsOf(got[i]), std::set<int>({0, 1, -1})) << "frame " << got[i].frame_id();
  }
  const auto fm = Metrics(fusion_ports_.metrics);
  EXPECT_EQ(SumOf(fm, "qv2x_fusion_model_loads_total", {"outcome=\"error\""}),
            static_cast<double>(cases.size()));
  EXPECT_EQ(SumOf(fm, "qv2x_fusion_model_loads_total", {"outcome=\"ok\""}), 0);
  EXPECT_EQ(SumOf(fm, "qv2x_fusion_rejected_messages_total"), 0);
}

}  // namespace
}  // namespace qv2x
