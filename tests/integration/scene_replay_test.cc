// Fusion capacity (issue 13): `qv2x scene record` keeps what real tiny-preset agents send,
// `qv2x scene bench --replay` streams it back into a real fusion service for more agents
// than were recorded, and a replay faster than fusion can fuse shows how it degrades:
// oldest frames dropped and counted, health still answered, the backlog bounded.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "nlohmann/json.hpp"
#include "qv2x/v1/features.pb.h"
#include "tests/integration/harness/cluster.h"

namespace qv2x {
namespace {

using qv2x::testing::BuildDir;
using qv2x::testing::ChildProcess;
using qv2x::testing::FrameCollector;
using qv2x::testing::Samples;
using qv2x::testing::SumOf;

int RunCli(const std::vector<std::string>& args, const std::string& log, std::string* out) {
  std::vector<std::string> argv = {BuildDir() + "/bin/qv2x"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto p = ChildProcess::Start(argv, log);
  if (!p.ok()) return -1;
  const int rc = (*p)->Wait(600);
  *out = (*p)->Log();
  return rc;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
}

absl::StatusOr<Samples> Metrics(int port) {
  absl::StatusOr<std::string> text = qv2x::testing::HttpGet(port, "/metrics");
  if (!text.ok()) return text.status();
  return qv2x::testing::ParsePrometheusText(*text);
}

class SceneReplayTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(qv2x::testing::MakeTempDir("qv2x_replay_"));
    // The tiny scene's ego and one more agent, 8 frames, as real lock-step agents send them.
    record_rc_ = RunCli({"scene", "record", "--config", qv2x::testing::kTinyScene, "--agents", "2",
                         "--frames", "8", "--out", Rec(), "--run-dir", *dir_ + "/record-run"},
                        *dir_ + "/record.log", record_out_);
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*dir_);
    delete dir_;
  }
  static std::string Rec() { return *dir_ + "/rec"; }

  static std::string* dir_;
  static int record_rc_;
  static std::string* record_out_;
};
std::string* SceneReplayTest::dir_ = nullptr;
int SceneReplayTest::record_rc_ = -1;
std::string* SceneReplayTest::record_out_ = new std::string();

TEST_F(SceneReplayTest, RecordingHoldsEveryAgentsFramesInTheDocumentedFraming) {
  ASSERT_EQ(record_rc_, 0) << *record_out_;
  EXPECT_TRUE(std::filesystem::exists(Rec() + "/scene.yaml"));
  EXPECT_FALSE(std::filesystem::exists(Rec() + "/int8.qv2xrec")) << "the tiny model has no INT8";
  // Read back with nothing but protobuf: magic line, JSON header line, varint-delimited
  // FeatureMessages.
  const std::string bytes = ReadAll(Rec() + "/fp32.qv2xrec");
  const size_t magic = bytes.find('\n'), header = bytes.find('\n', magic + 1);
  ASSERT_NE(header, std::string::npos);
  EXPECT_EQ(bytes.substr(0, magic), "qv2x-feature-record 1");
  const nlohmann::json h = nlohmann::json::parse(bytes.substr(magic + 1, header - magic - 1));
  EXPECT_EQ(h["scene"], "tiny");
  EXPECT_EQ(h["preset"], "tiny_stage3");
  EXPECT_EQ(h["model_config"], "configs/tiny/stage3.yaml");
  EXPECT_EQ(h["precision"], "fp32");
  EXPECT_EQ(h["codec"], "zstd");
  EXPECT_EQ(h["agents"], nlohmann::json({0, 1}));
  EXPECT_EQ(h["frames"], 8);
  EXPECT_EQ(h["messages"], 16);
  google::protobuf::io::ArrayInputStream raw(bytes.data() + header + 1,
                                             static_cast<int>(bytes.size() - header - 1));
  google::protobuf::io::CodedInputStream in(&raw);
  std::set<std::pair<int, uint64_t>> seen;
  uint32_t size = 0;
  while (in.ReadVarint32(&size)) {
    std::string m;
    ASSERT_TRUE(in.ReadString(&m, static_cast<int>(size)));
    v1::FeatureMessage msg;
    ASSERT_TRUE(msg.ParseFromString(m));
    EXPECT_EQ(msg.codebook_digest(), h["codebook_digest"].get<std::string>());
    EXPECT_EQ(msg.precision(), v1::PRECISION_FP32);
    EXPECT_EQ(msg.encoding(), v1::INDEX_ENCODING_ZSTD);
    EXPECT_GT(msg.payload().size(), 0u);
    seen.insert({msg.agent_id(), msg.frame_id()});
  }
  std::set<std::pair<int, uint64_t>> want;
  for (int id : {0, 1}) {
    for (uint64_t f = 0; f < 8; ++f) want.insert({id, f});
  }
  EXPECT_EQ(seen, want);
}

TEST_F(SceneReplayTest, TwoRecordedAgentsReplayAsTwoAndAsSixEveryFrameFusedWithAll) {
  ASSERT_EQ(record_rc_, 0) << *record_out_;
  const std::string json = *dir_ + "/capacity.json";
  std::string out;
  ASSERT_EQ(
      RunCli({"scene", "bench", "--replay", Rec(), "--agents", "2,6", "--rate", "10", "--frames",
              "16", "--warmup", "2", "--json", json, "--run-dir", *dir_ + "/replay-run"},
             *dir_ + "/replay.log", &out),
      0)
      << out;
  const nlohmann::json r = ReadJson(json);
  ASSERT_TRUE(r.is_object()) << out;
  ASSERT_EQ(r["runs"].size(), 2u) << r.dump(2);
  for (const auto& run : r["runs"]) {
    const int n = run["agents"].get<int>();
    SCOPED_TRACE(absl::StrCat(n, " agents"));
    EXPECT_EQ(run["precision"], "fp32");
    EXPECT_EQ(run["frames_sent"], 16);
    EXPECT_EQ(run["frames_fused"], 16) << "every replayed frame fused";
    EXPECT_EQ(run["frames_dropped"], 0);
    EXPECT_EQ(run["frames_partial"], 0);
    EXPECT_EQ(run["agents_per_frame_min"], n) << "clones beyond the 2 recorded are fused too";
    EXPECT_DOUBLE_EQ(run["agents_per_frame_mean"].get<double>(), n);
    EXPECT_TRUE(run["rejected"].empty()) << run["rejected"].dump();
    EXPECT_EQ(run["fusion_frames_fused"], 18) << "warm-up included, as the service counts";
    EXPECT_EQ(run["fusion_frames_dropped"], 0);
    EXPECT_TRUE(run["last_frame_fused"].get<bool>());
    EXPECT_GT(run["e2e_latency_p50_s"].get<double>(), 0);
    EXPECT_GE(run["e2e_latency_p99_s"].get<double>(), run["e2e_latency_p50_s"].get<double>());
  }
  EXPECT_EQ(r["recording"]["agents"], nlohmann::json({0, 1}));
  EXPECT_TRUE(r["max_agents_sustained"].contains("fp32"));
  // The generated 6-agent scene: the two recorded agents, then four clones as vehicles.
  const std::string scene = ReadAll(*dir_ + "/replay-run/n6/scene.yaml");
  EXPECT_NE(scene.find("tiny_replay6"), std::string::npos) << scene;
}

TEST_F(SceneReplayTest, OverloadDropsTheOldestFramesAndFusionKeepsAnswering) {
  ASSERT_EQ(record_rc_, 0) << *record_out_;
  // 8 agents at 1 kHz: several times more frames than one fusion thread fuses.
  constexpr int kFrames = 300, kBacklog = 2;
  const std::string scene = *dir_ + "/overload.yaml", json = *dir_ + "/overload.json";
  std::string out;
  ASSERT_EQ(RunCli({"scene", "bench", "--replay", Rec(), "--agents", "8", "--rate", "1000",
                    "--write-scene", scene},
                   *dir_ + "/write.log", &out),
            0)
      << out;
  const std::string port_file = *dir_ + "/fusion.port";
  auto fusion = ChildProcess::Start(
      {BuildDir() + "/bin/qv2x-fusion", "--scene=" + scene,
       absl::StrCat("--config=", qv2x::testing::kTinyConfig), "--listen=127.0.0.1:0",
       "--metrics=127.0.0.1:0", "--port_file=" + port_file, "--max_cav=8", "--score=false",
       absl::StrCat("--max_fuse_backlog=", kBacklog), "--threads=1", "--deadline_ms=2000"},
      *dir_ + "/fusion.log");
  ASSERT_TRUE(fusion.ok());
  auto ports = qv2x::testing::WaitForPortFile(port_file, 120, fusion->get());
  ASSERT_TRUE(ports.ok()) << (*fusion)->Log();
  FrameCollector frames(ports->grpc);
  // Subscribed before anything is sent, so every fused frame is seen.
  for (int i = 0; i < 200; ++i) {
    auto m = Metrics(ports->metrics);
    if (m.ok() && SumOf(*m, "qv2x_fusion_open_streams", {"rpc=\"WatchDetections\""}) == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }

  std::atomic<bool> stop{false};
  int polls = 0, unhealthy = 0;
  double max_backlog = 0;
  std::thread poller([&] {
    while (!stop) {
      ++polls;
      if (!qv2x::testing::Serving(ports->grpc)) ++unhealthy;
      if (auto m = Metrics(ports->metrics); m.ok()) {
        max_backlog = std::max(max_backlog, SumOf(*m, "qv2x_fusion_fuse_backlog_frames"));
      } else {
        ++unhealthy;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  const int rc =
      RunCli({"scene", "bench", "--replay", Rec(), "--agents", "8", "--rate", "1000", "--frames",
              std::to_string(kFrames), "--warmup", "0", "--precisions", "fp32", "--fusion",
              absl::StrCat("127.0.0.1:", ports->grpc), "--json", json},
             *dir_ + "/overload.log", &out);
  stop = true;
  poller.join();
  ASSERT_EQ(rc, 0) << out << (*fusion)->Log();

  EXPECT_GT(polls, 0);
  EXPECT_EQ(unhealthy, 0) << "fusion answered every health check and scrape while overloaded";
  EXPECT_LE(max_backlog, kBacklog) << "the queue of closed frames stays bounded";
  auto m = Metrics(ports->metrics);
  ASSERT_TRUE(m.ok());
  const double fused = SumOf(*m, "qv2x_fusion_frames_total", {"outcome=\"fused\""});
  const double overload = SumOf(*m, "qv2x_fusion_frames_total", {"outcome=\"overload\""});
  EXPECT_GT(overload, 0) << "fusion could not keep up, and says so";
  EXPECT_EQ(fused + overload, kFrames) << "every frame fused or dropped for overload, once";
  EXPECT_EQ(SumOf(*m, "qv2x_fusion_discarded_messages_total", {"reason=\"overload\""}),
            8 * overload);
  EXPECT_EQ(SumOf(*m, "qv2x_fusion_fuse_backlog_frames"), 0) << "drained at the end";
  const std::string log = (*fusion)->Log();
  const size_t logged = [&] {
    size_t n = 0;
    for (size_t at = log.find("falling behind: frame"); at != std::string::npos;
         at = log.find("falling behind: frame", at + 1)) {
      ++n;
    }
    return n;
  }();
  EXPECT_GE(logged, 1u) << log;
  EXPECT_LT(logged, static_cast<size_t>(overload)) << "logged once per interval, not per frame";

  // The frames fused are the newest: in order, the last one sent among them, and once the
  // replay stopped sending only the few left in the backlog were fused (not a queue of
  // stale frames).
  const auto got = frames.WaitFor(static_cast<size_t>(fused), 10);
  ASSERT_EQ(got.size(), static_cast<size_t>(fused));
  for (size_t i = 1; i < got.size(); ++i) EXPECT_GT(got[i].frame_id(), got[i - 1].frame_id());
  EXPECT_EQ(got.back().frame_id(), static_cast<uint64_t>(kFrames - 1));
  const nlohmann::json r = ReadJson(json);
  ASSERT_TRUE(r.is_object()) << out;
  const auto& run = r["runs"][0];
  EXPECT_EQ(run["frames_dropped"].get<double>(), overload);
  EXPECT_TRUE(run["last_frame_fused"].get<bool>());
  EXPECT_LT(run["fused_after_last_send"].get<int>(), kFrames / 4) << run.dump(2);
  EXPECT_FALSE(run["sustained"].get<bool>());
  EXPECT_TRUE(qv2x::testing::Serving(ports->grpc));
}

TEST_F(SceneReplayTest, CutShortRecordingIsRefusedNamingTheFile) {
  ASSERT_EQ(record_rc_, 0) << *record_out_;
  const std::string bad = *dir_ + "/bad";
  std::filesystem::create_directories(bad);
  std::filesystem::copy_file(Rec() + "/scene.yaml", bad + "/scene.yaml");
  const std::string bytes = ReadAll(Rec() + "/fp32.qv2xrec");
  std::ofstream(bad + "/fp32.qv2xrec", std::ios::binary) << bytes.substr(0, bytes.size() - 10);
  std::string out;
  EXPECT_NE(
      RunCli({"scene", "bench", "--replay", bad, "--agents", "2", "--write-scene", bad + "/s.yaml"},
             *dir_ + "/bad.log", &out),
      0);
  EXPECT_NE(out.find(bad + "/fp32.qv2xrec: message 16 at byte"), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(bad + "/s.yaml"));
}

}  // namespace
}  // namespace qv2x
