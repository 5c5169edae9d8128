// The cooperative runtime on 127.0.0.1 with real processes: qv2x-fusion and qv2x-agent on
// the tiny scene (2 vehicles + 1 roadside unit), lock-step so every frame is fused.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/common/file_util.h"
#include "core/data/opv2v_writer.h"
#include "core/model/checkpoint.h"
#include "core/model/quantv2x_interop.h"
#include "core/model/runtime_model.h"
#include "core/sim/simulator.h"
#include "grpcpp/grpcpp.h"
#include "qv2x/v1/agent.grpc.pb.h"
#include "qv2x/v1/features.grpc.pb.h"
#include "tests/integration/harness/cluster.h"

namespace qv2x {
namespace {

using qv2x::testing::AgentsOf;
using qv2x::testing::ClusterTest;
using qv2x::testing::FreePort;
using qv2x::testing::Serving;

constexpr const char* kConfig = qv2x::testing::kTinyConfig;
const std::vector<int>& kAgents = qv2x::testing::kTinyAgents;

TEST_F(ClusterTest, ThreeAgentsEveryFrameFusedAndMetricsExposed) {
  StartAll({"--max_frames=12"});
  const auto got = frames_->WaitFor(12, 180);
  ASSERT_GE(got.size(), 12u) << Logs();
  for (size_t i = 0; i < 12; ++i) {
    EXPECT_EQ(got[i].frame_id(), i) << "frames are fused in order, none skipped";
    EXPECT_EQ(AgentsOf(got[i]), std::set<int>({0, 1, -1})) << "frame " << i;
    EXPECT_EQ(got[i].agents(0).agent_id(), 0) << "the ego comes first";
    EXPECT_GT(got[i].e2e_latency_seconds(), 0);
    for (const auto& a : got[i].agents()) {
      EXPECT_EQ(a.encoding(), v1::INDEX_ENCODING_ZSTD);
      EXPECT_GT(a.payload_bytes(), 0u);
      // 64 channels x 32 x 128 / 2 ... whatever the grid: FP32 is 32 bits per channel.
      EXPECT_GT(a.fp32_feature_bytes(), 10 * a.message_bytes());
    }
  }
  EXPECT_GE(got.back().rolling_ap_size(), 3) << "AP after the first scored frame";

  const auto fm = Metrics(fusion_ports_.metrics);
  for (const char* m :
       {"qv2x_fusion_received_bytes_total", "qv2x_fusion_feature_fp32_bytes_total",
        "qv2x_fusion_e2e_latency_seconds_bucket", "qv2x_fusion_late_messages_total",
        "qv2x_fusion_rejected_messages_total", "qv2x_fusion_ap", "qv2x_build_info"}) {
    EXPECT_TRUE(qv2x::testing::HasMetric(fm, m)) << m;
  }
  EXPECT_EQ(qv2x::testing::SumOf(fm, "qv2x_fusion_frames_total", {"outcome=\"fused\""}), 12);
  EXPECT_EQ(qv2x::testing::SumOf(fm, "qv2x_fusion_messages_total"), 36);
  EXPECT_EQ(qv2x::testing::SumOf(fm, "qv2x_fusion_rejected_messages_total"), 0);
  EXPECT_EQ(qv2x::testing::SumOf(fm, "qv2x_fusion_ap", {"class=\"vehicle\""}) >= 0, true);

  // The agents exit after their 12 frames; their metrics were checked by the next tests
  // while running, here the exit status: 0 after a clean finish.
  for (auto& [id, p] : agents_) EXPECT_EQ(p->Wait(60), 0) << "agent " << id << p->Log();
  EXPECT_TRUE(Serving(fusion_ports_.grpc));
}

TEST_F(ClusterTest, AgentMetricsAndControlStatus) {
  StartAll();
  ASSERT_GE(frames_->WaitFor(5, 180).size(), 5u) << Logs();
  const auto am = Metrics(agent_ports_[1].metrics);
  for (const char* m :
       {"qv2x_agent_encode_duration_seconds_bucket", "qv2x_agent_sent_bytes_total",
        "qv2x_agent_feature_fp32_bytes_total", "qv2x_agent_frames_sent_total", "qv2x_build_info"}) {
    EXPECT_TRUE(qv2x::testing::HasMetric(am, m)) << m;
  }
  const double sent = qv2x::testing::SumOf(am, "qv2x_agent_sent_bytes_total");
  const double fp32 = qv2x::testing::SumOf(am, "qv2x_agent_feature_fp32_bytes_total");
  EXPECT_GT(sent, 0);
  EXPECT_GT(fp32 / sent, 10) << "the compression ratio is one division";
  EXPECT_GT(qv2x::testing::SumOf(am, "qv2x_agent_encode_duration_seconds_count",
                                 {"precision=\"fp32\"", "agent=\"1\""}),
            0);

  auto stub = v1::AgentControl::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", agent_ports_[1].grpc), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  v1::AgentStatus status;
  ASSERT_TRUE(stub->GetStatus(&ctx, {}, &status).ok());
  EXPECT_EQ(status.agent_id(), 1);
  EXPECT_EQ(status.precision(), v1::PRECISION_FP32);
  EXPECT_TRUE(status.connected());
  EXPECT_GE(status.frames_sent(), 5u);
  EXPECT_GT(status.bytes_sent(), 0u);

  // INT8 without an INT8 encoder is refused, and the agent keeps going.
  grpc::ClientContext ctx2;
  v1::SetPrecisionRequest req;
  req.set_precision(v1::PRECISION_INT8);
  v1::ControlReply reply;
  EXPECT_EQ(stub->SetPrecision(&ctx2, req, &reply).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(ClusterTest, KilledAgentIsCountedAndTheSceneGoesOn) {
  StartAll();
  ASSERT_GE(frames_->WaitFor(4, 180).size(), 4u) << Logs();
  agents_[1]->Signal(SIGKILL);
  agents_[1]->Wait(10);
  const size_t at_kill = frames_->size();
  const auto got = frames_->WaitFor(at_kill + 8, 120);
  ASSERT_GE(got.size(), at_kill + 8) << Logs();
  // After the kill the others keep being fused; agent 1 is missing from the last frames.
  for (size_t i = got.size() - 5; i < got.size(); ++i) {
    EXPECT_EQ(AgentsOf(got[i]), std::set<int>({0, -1})) << "frame " << got[i].frame_id();
    EXPECT_EQ(got[i].missing_agents_size(), 1);
    EXPECT_GT(got[i].frame_id(), got[i - 1].frame_id());
  }
  const auto fm = Metrics(fusion_ports_.metrics);
  EXPECT_GE(qv2x::testing::SumOf(fm, "qv2x_fusion_missing_messages_total", {"agent=\"1\""}), 5);
  EXPECT_EQ(qv2x::testing::SumOf(fm, "qv2x_fusion_connected_agents"), 2);
  EXPECT_TRUE(Serving(fusion_ports_.grpc));
}

TEST_F(ClusterTest, FusionRestartAgentsReconnectAndFramesResume) {
  const int port = FreePort();
  ASSERT_NO_FATAL_FAILURE(StartFusion(port));
  for (int id : kAgents) StartAgent(id);
  ASSERT_GE(frames_->WaitFor(4, 180).size(), 4u) << Logs();
  fusion_->Signal(SIGTERM);
  EXPECT_EQ(fusion_->Wait(30), 0) << "graceful shutdown" << fusion_->Log();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_NO_FATAL_FAILURE(StartFusion(port));
  const auto got = frames_->WaitFor(6, 180);
  ASSERT_GE(got.size(), 6u) << Logs();
  EXPECT_EQ(AgentsOf(got.back()), std::set<int>({0, 1, -1}));
  for (int id : kAgents) {
    const auto am = Metrics(agent_ports_[id].metrics);
    EXPECT_GE(qv2x::testing::SumOf(am, "qv2x_agent_reconnects_total"), 1) << "agent " << id;
    EXPECT_TRUE(agents_[id]->Running());
  }
}

// Writes a copy of the seeded initial model with a changed encoder (same codebook) and
// one with a changed codebook.
void WriteSwapModels(const std::string& same_codebook, const std::string& other_codebook) {
  auto m = LoadRuntimeModel(kConfig, "");
  ASSERT_TRUE(m.ok()) << m.status();
  torch::NoGradGuard no_grad;
  for (auto& p : m->detector->named_parameters()) {
    if (p.key().find("backbone") != std::string::npos) p.value().mul_(1.5);
  }
  CheckpointMeta meta;
  meta.model = m->cfg.model.core_method;
  meta.stage = 3;
  meta.codebook_digest = m->detector->codebook()->Digest();
  meta.config_yaml = m->cfg.source_yaml;
  ASSERT_TRUE(SaveCheckpoint(*m->detector, meta, same_codebook).ok());
  for (auto& p : m->detector->named_parameters()) {
    if (p.key().find("codebook") != std::string::npos) p.value().add_(0.25);
  }
  meta.codebook_digest = m->detector->codebook()->Digest();
  ASSERT_TRUE(SaveCheckpoint(*m->detector, meta, other_codebook).ok());
}

TEST_F(ClusterTest, ModelSwapUnderTrafficLosesAndMixesNoFrame) {
  const std::string same = dir_ + "/same_codebook.pth", other = dir_ + "/other_codebook.pth";
  WriteSwapModels(same, other);
  StartAll();
  ASSERT_GE(frames_->WaitFor(3, 180).size(), 3u) << Logs();
  auto stub = v1::AgentControl::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", agent_ports_[1].grpc), grpc::InsecureChannelCredentials()));
  {
    grpc::ClientContext ctx;
    v1::LoadModelRequest req;
    req.set_checkpoint(other);
    v1::ControlReply reply;
    grpc::Status st = stub->LoadModel(&ctx, req, &reply);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
    EXPECT_NE(st.error_message().find("codebook"), std::string::npos);
  }
  {
    grpc::ClientContext ctx;
    v1::LoadModelRequest req;
    req.set_checkpoint(dir_ + "/missing.pth");
    v1::ControlReply reply;
    EXPECT_EQ(stub->LoadModel(&ctx, req, &reply).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  grpc::ClientContext ctx;
  v1::LoadModelRequest req;
  req.set_checkpoint(same);
  v1::ControlReply reply;
  grpc::Status st = stub->LoadModel(&ctx, req, &reply);
  ASSERT_TRUE(st.ok()) << st.error_message();
  const uint64_t switch_at = reply.effective_frame_id();
  EXPECT_EQ(reply.status().checkpoint(), same);
  EXPECT_EQ(reply.status().model_generation(), 2u);
  const auto got = frames_->WaitFor(switch_at + 4, 180);
  ASSERT_GE(got.size(), switch_at + 4) << Logs();
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].frame_id(), i) << "no frame lost around the swap";
    ASSERT_EQ(AgentsOf(got[i]), std::set<int>({0, 1, -1})) << "frame " << i;
    for (const auto& a : got[i].agents()) {
      if (a.agent_id() != 1) continue;
      // Each frame was encoded by exactly one model: the old one before the switch.
      EXPECT_EQ(a.model_generation(), i < switch_at ? 1u : 2u) << "frame " << i;
    }
  }
}

// A roll-out of a model with a new codebook while the scene runs: fusion first (holding
// both codebooks), then the agents one at a time, then the old codebook retired. Every
// frame is fused with every agent, nothing is rejected, and the refusals name what to do.
TEST_F(ClusterTest, RollOutOfANewCodebookLosesNoFrame) {
  const std::string same = dir_ + "/same_codebook.pth", other = dir_ + "/other_codebook.pth";
  WriteSwapModels(same, other);
  StartAll();
  ASSERT_GE(frames_->WaitFor(3, 180).size(), 3u) << Logs();
  auto fusion = v1::Fusion::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", fusion_ports_.grpc), grpc::InsecureChannelCredentials()));
  auto agent = [&](int id) {
    return v1::AgentControl::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", agent_ports_[id].grpc), grpc::InsecureChannelCredentials()));
  };
  auto status = [&] {
    grpc::ClientContext ctx;
    v1::FusionStatus s;
    EXPECT_TRUE(fusion->GetStatus(&ctx, {}, &s).ok());
    return s;
  };
  auto retire = [&](const std::string& digest) {
    grpc::ClientContext ctx;
    v1::RetireCodebookRequest req;
    req.set_digest(digest);
    v1::FusionStatus s;
    return fusion->RetireCodebook(&ctx, req, &s);
  };
  auto load_agent = [&](int id, const std::string& ckpt) {
    grpc::ClientContext ctx;
    v1::LoadModelRequest req;
    req.set_checkpoint(ckpt);
    v1::ControlReply reply;
    return agent(id)->LoadModel(&ctx, req, &reply);
  };
  const v1::FusionStatus before = status();
  ASSERT_EQ(before.codebooks_size(), 1);
  const std::string old_digest = before.codebook_digest();
  EXPECT_TRUE(before.codebooks(0).current());

  // An agent cannot go first: fusion would refuse its indices.
  grpc::Status st = load_agent(1, other);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(st.error_message().find("qv2x fusion load"), std::string::npos) << st.error_message();
  {
    grpc::ClientContext ctx;
    v1::FusionLoadModelRequest req;
    req.set_checkpoint(dir_ + "/missing.pth");
    v1::FusionStatus s;
    EXPECT_EQ(fusion->LoadModel(&ctx, req, &s).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext ctx;
    v1::FusionLoadModelRequest req;
    req.set_checkpoint(other);
    v1::FusionStatus s;
    ASSERT_TRUE(fusion->LoadModel(&ctx, req, &s).ok());
    EXPECT_EQ(s.checkpoint(), other);
    EXPECT_EQ(s.model_generation(), 1u);
    ASSERT_EQ(s.codebooks_size(), 2);
    EXPECT_NE(s.codebook_digest(), old_digest);
  }
  const std::string new_digest = status().codebook_digest();
  EXPECT_EQ(retire(new_digest).error_code(), grpc::StatusCode::FAILED_PRECONDITION)
      << "the current codebook stays";
  EXPECT_EQ(retire(old_digest).error_code(), grpc::StatusCode::FAILED_PRECONDITION)
      << "agents still send the old one";
  EXPECT_EQ(retire("0123456789abcdef").error_code(), grpc::StatusCode::NOT_FOUND);

  for (int id : kAgents) {
    st = load_agent(id, other);
    ASSERT_TRUE(st.ok()) << "agent " << id << ": " << st.error_message();
    // Mixed frames (some agents on each codebook) keep being fused meanwhile.
    frames_->WaitFor(frames_->size() + 2, 120);
  }
  const size_t switched = frames_->size();
  frames_->WaitFor(switched + 2, 120);
  const v1::FusionStatus during = status();
  for (const v1::HeldCodebook& c : during.codebooks()) {
    EXPECT_EQ(c.agents_size(), c.digest() == new_digest ? 3 : 0) << c.digest();
    EXPECT_GT(c.messages(), 0u) << c.digest();
  }
  st = retire(old_digest);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(status().codebooks_size(), 1);
  // The old model is refused from now on: no fusion holds its codebook.
  EXPECT_EQ(load_agent(1, same).error_code(), grpc::StatusCode::FAILED_PRECONDITION);

  const auto got = frames_->WaitFor(frames_->size() + 3, 120);
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].frame_id(), i) << "no frame lost around the roll-out";
    ASSERT_EQ(AgentsOf(got[i]), std::set<int>({0, 1, -1})) << "frame " << i;
  }
  const auto fm = Metrics(fusion_ports_.metrics);
  EXPECT_EQ(qv2x::testing::SumOf(fm, "qv2x_fusion_rejected_messages_total"), 0);
  EXPECT_EQ(qv2x::testing::SumOf(fm, "qv2x_fusion_codebooks_held"), 1);
  EXPECT_EQ(qv2x::testing::SumOf(fm, "qv2x_fusion_model_loads_total", {"outcome=\"ok\""}), 1);
  EXPECT_GE(
      qv2x::testing::SumOf(fm, "qv2x_fusion_e2e_latency_seconds_count", {"precision=\"fp32\""}),
      static_cast<double>(got.size()));
}

// A stopping agent half-closes its stream and lets fusion read what is in flight: here two
// frames sent while fusion was stopped, unread when SIGTERM arrives, are still counted.
TEST_F(ClusterTest, StoppedAgentLosesNoMessageInFlight) {
  StartFusion();
  for (int id : kAgents) StartAgent(id, {"--pace=realtime"});
  ASSERT_GE(frames_->WaitFor(5, 180).size(), 5u) << Logs();
  fusion_->Signal(SIGSTOP);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  agents_[1]->Signal(SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  fusion_->Signal(SIGCONT);
  ASSERT_EQ(agents_[1]->Wait(30), 0) << agents_[1]->Log();
  uint64_t sent = 0;
  const std::string log = agents_[1]->Log();
  const size_t at = log.find("stopped after ");
  ASSERT_NE(at, std::string::npos) << log;
  ASSERT_TRUE(absl::SimpleAtoi(log.substr(at + 14, log.find(' ', at + 14) - at - 14), &sent));
  ASSERT_GT(sent, 5u);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // its last frames close
  const auto fm = Metrics(fusion_ports_.metrics);
  EXPECT_EQ(qv2x::testing::SumOf(fm, "qv2x_fusion_messages_total", {"agent=\"1\""}) +
                qv2x::testing::SumOf(fm, "qv2x_fusion_late_messages_total", {"agent=\"1\""}),
            static_cast<double>(sent));
  EXPECT_EQ(qv2x::testing::SumOf(fm, "qv2x_fusion_rejected_messages_total"), 0);
}

// Realtime agents pace themselves on the fusion service: while it fuses nothing (here it is
// stopped), each agent keeps at most two frames open there and skips the scene's ticks
// instead of queueing frames whose latency would then grow without bound.
TEST_F(ClusterTest, RealtimeAgentsWaitForAFusionServiceThatFallsBehind) {
  StartFusion();
  for (int id : kAgents) StartAgent(id, {"--pace=realtime"});
  ASSERT_GE(frames_->WaitFor(5, 180).size(), 5u) << Logs();
  fusion_->Signal(SIGSTOP);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // in-flight frames settle
  const auto sent = [&] {
    return qv2x::testing::SumOf(Metrics(agent_ports_[1].metrics), "qv2x_agent_frames_sent_total");
  };
  const auto skipped = [&] {
    return qv2x::testing::SumOf(Metrics(agent_ports_[1].metrics),
                                "qv2x_agent_frames_skipped_total");
  };
  const double sent0 = sent();
  std::this_thread::sleep_for(std::chrono::seconds(3));  // 30 ticks at the scene's 10 Hz
  const double sent1 = sent(), skipped1 = skipped();
  fusion_->Signal(SIGCONT);
  EXPECT_EQ(sent1, sent0) << "no frame encoded while two are open at a stalled fusion service";
  const size_t at_resume = frames_->size();
  ASSERT_GE(frames_->WaitFor(at_resume + 5, 120).size(), at_resume + 5) << Logs();
  EXPECT_GT(skipped(), skipped1) << "the ticks missed while waiting are counted as skipped";
}

// QuantV2X's model layout (its 3-level residual codebook with Linear heads, its class-vector
// cls head) as a scene, from a checkpoint as QuantV2X writes it (its names, DataParallel's
// `module.` prefixes, random values) imported with ImportQuantV2xCheckpoint: agents send
// three index maps per frame and fusion decodes them through the heads; every frame fused,
// nothing refused, every service on the imported codebook.
TEST_F(ClusterTest, Quantv2xLayoutRunsThroughTheCluster) {
  std::string yaml = *ReadFile(kConfig);
  for (auto [from, to] : {std::pair<std::string, std::string>{"variant: qv2x", "variant: umgm"},
                          {"residual_levels: 1", "residual_levels: 3"},
                          {"cls_head: anchor", "cls_head: class_vector"}}) {
    const size_t at = yaml.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    yaml.replace(at, from.size(), to);
  }
  const std::string config = dir_ + "/quantv2x_tiny.yaml";
  ASSERT_TRUE(WriteFileAtomic(config, yaml).ok());
  auto model = LoadRuntimeModel(config, "");  // what every process builds from the seed
  ASSERT_TRUE(model.ok()) << model.status();
  ASSERT_TRUE(model->detector->codebook()->umgm());
  // Other values than the seed's: every floating tensor scaled (variances stay positive).
  c10::Dict<std::string, torch::Tensor> state;
  for (const auto& [name, t] : StateDict(*model->detector)) {
    state.insert("module." + name, t.is_floating_point() ? t * 1.25 : t);
  }
  const std::vector<char> bytes = torch::pickle_save(torch::IValue(state));
  const std::string theirs = dir_ + "/quantv2x_net.pth", ours = dir_ + "/imported.pth";
  ASSERT_TRUE(WriteFileAtomic(theirs, std::string(bytes.begin(), bytes.end())).ok());
  auto imported = ImportQuantV2xCheckpoint(model->cfg, theirs, ours);
  ASSERT_TRUE(imported.ok()) << imported.status();
  EXPECT_EQ(imported->prefixes_removed, imported->tensors);
  EXPECT_NE(imported->codebook_digest, model->codebook_digest);

  StartFusion(0, {"--config=" + config, "--checkpoint=" + ours});
  for (int id : kAgents) {
    StartAgent(id, {"--config=" + config, "--checkpoint=" + ours, "--max_frames=4"});
  }
  const auto got = frames_->WaitFor(4, 180);
  ASSERT_GE(got.size(), 4u) << Logs();
  for (const auto& f : got) EXPECT_EQ(AgentsOf(f), std::set<int>({0, 1, -1})) << f.frame_id();

  auto fusion = v1::Fusion::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", fusion_ports_.grpc), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  v1::FusionStatus s;
  ASSERT_TRUE(fusion->GetStatus(&ctx, {}, &s).ok());
  EXPECT_EQ(s.codebook_digest(), imported->codebook_digest);
  EXPECT_EQ(s.grid().levels(), 3u);
  const auto fm = Metrics(fusion_ports_.metrics);
  EXPECT_EQ(qv2x::testing::SumOf(fm, "qv2x_fusion_messages_total"), 12);
  EXPECT_EQ(qv2x::testing::SumOf(fm, "qv2x_fusion_rejected_messages_total"), 0) << Logs();
}

// The scene's first frames written as a dataset folder and played back by fusion and the
// agents (--dataset): every agent sends the same index maps as when it simulates, fusion
// outputs the same boxes and scores the frames against the folder's labels. An agent with
// no record at a frame sends nothing then, and fusion neither waits for it nor counts it
// missing.
TEST_F(ClusterTest, DatasetPlaybackSendsAndFusesWhatTheSimulationDoes) {
  constexpr int kFrames = 4;
  const std::string data = dir_ + "/dataset";
  auto scene = sim::LoadSceneConfig(qv2x::testing::kTinyScene);
  ASSERT_TRUE(scene.ok()) << scene.status();
  auto sim = sim::Simulator::Create(*scene);
  ASSERT_TRUE(sim.ok()) << sim.status();
  for (int i = 0; i < kFrames; ++i) {
    auto f = sim->Frame(0, i);
    ASSERT_TRUE(f.ok()) << f.status();
    ASSERT_TRUE(WriteOpv2vFrame(*f, data).ok());
  }
  const std::filesystem::path rsu = std::filesystem::path(data) / sim->ScenarioName(0) / "-1";
  ASSERT_TRUE(std::filesystem::remove(rsu / "000002.yaml"));
  ASSERT_TRUE(std::filesystem::remove(rsu / "000002.pcd"));

  // The seeded tiny model scores every anchor low: keep them all, so there are boxes to
  // compare (the threshold is the ego half's alone; agents keep the stock config).
  std::string yaml = *ReadFile(kConfig);
  const size_t at = yaml.find("score_threshold: 0.20");
  ASSERT_NE(at, std::string::npos);
  yaml.replace(at, 21, "score_threshold: 0.0");
  const std::string fusion_config = "--config=" + dir_ + "/tiny_all_scores.yaml";
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/tiny_all_scores.yaml", yaml).ok());

  const int port = FreePort();
  ASSERT_NO_FATAL_FAILURE(StartFusion(port, {fusion_config}));
  for (int id : kAgents) StartAgent(id, {absl::StrCat("--max_frames=", kFrames)});
  const auto simulated = frames_->WaitFor(kFrames, 180);
  ASSERT_EQ(simulated.size(), static_cast<size_t>(kFrames)) << Logs();
  for (auto& [id, p] : agents_) ASSERT_EQ(p->Wait(60), 0) << "agent " << id << p->Log();
  fusion_->Signal(SIGTERM);
  ASSERT_EQ(fusion_->Wait(30), 0) << fusion_->Log();

  const std::string dataset = "--dataset=" + data;
  ASSERT_NO_FATAL_FAILURE(StartFusion(port, {fusion_config, dataset}));
  StartAgent(0, {dataset, absl::StrCat("--max_frames=", kFrames)});
  StartAgent(1, {dataset, absl::StrCat("--max_frames=", kFrames)});
  StartAgent(-1, {dataset});
  const auto played = frames_->WaitFor(kFrames, 180);  // a new collector: this run's only
  ASSERT_GE(played.size(), static_cast<size_t>(kFrames)) << Logs();
  // The roadside unit plays on past the vehicles, the folder wrapping (frame 6 is its
  // frame 2 again), so its count is at least the one absence.
  const auto rsu_metrics = Metrics(agent_ports_[-1].metrics);
  EXPECT_GE(qv2x::testing::SumOf(rsu_metrics, "qv2x_agent_frames_absent_total"), 1);

  int boxes = 0;
  for (int i = 0; i < kFrames; ++i) {
    const v1::DetectionFrame& want = simulated[i];
    const v1::DetectionFrame& got = played[i];
    ASSERT_EQ(got.frame_id(), want.frame_id());
    EXPECT_EQ(got.missing_agents_size(), 0) << "frame " << i;
    EXPECT_EQ(AgentsOf(got), i == 2 ? std::set<int>({0, 1}) : std::set<int>({0, 1, -1}))
        << "frame " << i;
    for (const v1::AgentContribution& a : got.agents()) {
      for (const v1::AgentContribution& b : want.agents()) {
        if (a.agent_id() != b.agent_id()) continue;
        EXPECT_EQ(a.payload_bytes(), b.payload_bytes())
            << "frame " << i << " agent " << b.agent_id();
        EXPECT_EQ(a.index_entropy_bits(), b.index_entropy_bits()) << "frame " << i;
      }
    }
    if (i == 2) continue;  // fused without the roadside unit: other boxes
    ASSERT_EQ(got.boxes_size(), want.boxes_size()) << "frame " << i;
    boxes += got.boxes_size();
    for (int k = 0; k < got.boxes_size(); ++k) {
      EXPECT_EQ(got.boxes(k).class_name(), want.boxes(k).class_name());
      EXPECT_FLOAT_EQ(got.boxes(k).x(), want.boxes(k).x()) << "frame " << i << " box " << k;
      EXPECT_FLOAT_EQ(got.boxes(k).y(), want.boxes(k).y()) << "frame " << i << " box " << k;
      EXPECT_FLOAT_EQ(got.boxes(k).yaw(), want.boxes(k).yaw()) << "frame " << i << " box " << k;
      EXPECT_FLOAT_EQ(got.boxes(k).score(), want.boxes(k).score()) << "frame " << i << " box " << k;
    }
  }
  EXPECT_GT(boxes, 0);
  // Frames scored against the folder's labels (the AP gauges appear with the first).
  auto fm = Metrics(fusion_ports_.metrics);
  for (int tries = 0; tries < 100 && !qv2x::testing::HasMetric(fm, "qv2x_fusion_ap"); ++tries) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    fm = Metrics(fusion_ports_.metrics);
  }
  EXPECT_TRUE(qv2x::testing::HasMetric(fm, "qv2x_fusion_ap")) << Logs();
  EXPECT_EQ(qv2x::testing::SumOf(fm, "qv2x_fusion_missing_messages_total", {"agent=\"-1\""}), 0)
      << Logs();
  EXPECT_EQ(qv2x::testing::SumOf(fm, "qv2x_fusion_rejected_messages_total"), 0) << Logs();
  EXPECT_EQ(fusion_->Log().find("scoring frame"), std::string::npos) << fusion_->Log();
}

}  // namespace
}  // namespace qv2x
