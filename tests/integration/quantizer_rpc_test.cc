// The quantizer service on 127.0.0.1 (a real qv2x-quantizer process): PTQ of the tiny
// model through the RPC with progress and report, its refusals, and the live swap of an
// agent (and the ego half) to the INT8 artifact under traffic.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "absl/strings/str_cat.h"
#include "core/model/checkpoint.h"
#include "core/model/runtime_model.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"
#include "qv2x/v1/agent.grpc.pb.h"
#include "qv2x/v1/features.grpc.pb.h"
#include "qv2x/v1/quantizer.grpc.pb.h"
#include "tests/integration/harness/process.h"
#include "tests/integration/harness/prometheus_text.h"

namespace qv2x {
namespace {

using qv2x::testing::ChildProcess;

constexpr char kConfig[] = "configs/tiny/stage3.yaml";
constexpr char kScene[] = "configs/scenes/tiny.yaml";

std::string Bin(const std::string& name) { return qv2x::testing::BuildDir() + "/bin/" + name; }

// One quantization for the whole suite: the swap tests reuse its artifact.
class QuantizerRpcTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(qv2x::testing::MakeTempDir("qv2x_quant_"));
    std::filesystem::create_directories(*dir_ + "/artifacts");
    // The seeded initial tiny model as the "trained" checkpoint.
    auto m = LoadRuntimeModel(kConfig, "");
    ASSERT_TRUE(m.ok()) << m.status();
    CheckpointMeta meta;
    meta.model = m->cfg.model.core_method;
    meta.stage = 3;
    meta.codebook_digest = m->codebook_digest;
    meta.config_yaml = m->cfg.source_yaml;
    ASSERT_TRUE(SaveCheckpoint(*m->detector, meta, *dir_ + "/artifacts/tiny.pth").ok());
    const std::string pf = *dir_ + "/quantizer.port";
    auto p = ChildProcess::Start(
        {Bin("qv2x-quantizer"), "--listen=127.0.0.1:0", "--metrics=127.0.0.1:0",
         "--artifacts=" + *dir_ + "/artifacts", "--configs=configs", "--port_file=" + pf},
        *dir_ + "/quantizer.log");
    ASSERT_TRUE(p.ok());
    quantizer_ = p->release();
    auto ports = qv2x::testing::WaitForPortFile(pf, 120, quantizer_);
    ASSERT_TRUE(ports.ok()) << ports.status();
    ports_ = new qv2x::testing::Ports(*ports);
  }
  static void TearDownTestSuite() {
    delete quantizer_;
    std::filesystem::remove_all(*dir_);
    delete dir_;
    delete ports_;
  }

  static std::unique_ptr<v1::Quantizer::Stub> Stub() {
    return v1::Quantizer::NewStub(grpc::CreateChannel(absl::StrCat("127.0.0.1:", ports_->grpc),
                                                      grpc::InsecureChannelCredentials()));
  }
  static v1::QuantizeRequest Request() {
    v1::QuantizeRequest r;
    r.set_checkpoint("tiny.pth");
    r.set_config_path(kConfig);
    r.set_output_path("tiny.int8");
    r.set_n_bits_w(8);
    r.set_n_bits_a(8);
    r.set_num_cali_batches(2);
    r.set_iters_w(30);
    r.set_calibration_source(absl::StrCat("sim:", kScene));
    r.set_eval_source(absl::StrCat("sim:", kScene));
    r.set_eval_frames(4);
    r.set_report_path("tiny-int8-report.json");
    return r;
  }
  static grpc::Status Run(const v1::QuantizeRequest& r, std::vector<v1::QuantizeProgress>* out) {
    auto stub = Stub();
    grpc::ClientContext ctx;
    auto reader = stub->Quantize(&ctx, r);
    v1::QuantizeProgress p;
    while (reader->Read(&p)) out->push_back(p);
    return reader->Finish();
  }
  // The artifact of a successful run, made once.
  static const std::string& Artifact() {
    static std::string* path = [] {
      std::vector<v1::QuantizeProgress> progress;
      grpc::Status st = Run(Request(), &progress);
      EXPECT_TRUE(st.ok()) << st.error_message() << quantizer_->Log();
      progress_ = new std::vector<v1::QuantizeProgress>(progress);
      return new std::string(*dir_ + "/artifacts/tiny.int8");
    }();
    return *path;
  }

  static std::string* dir_;
  static ChildProcess* quantizer_;
  static qv2x::testing::Ports* ports_;
  static std::vector<v1::QuantizeProgress>* progress_;
};
std::string* QuantizerRpcTest::dir_ = nullptr;
ChildProcess* QuantizerRpcTest::quantizer_ = nullptr;
qv2x::testing::Ports* QuantizerRpcTest::ports_ = nullptr;
std::vector<v1::QuantizeProgress>* QuantizerRpcTest::progress_ = nullptr;

TEST_F(QuantizerRpcTest, QuantizesTheTinyModelWithProgressAndReport) {
  ASSERT_TRUE(std::filesystem::exists(Artifact()));
  const auto& p = *progress_;
  int calibration = 0, blocks = 0;
  for (const auto& m : p) {
    EXPECT_FALSE(m.job_id().empty());
    if (m.phase() == v1::QuantizeProgress::PHASE_CALIBRATION) {
      ++calibration;
      EXPECT_EQ(m.total(), 2);
    }
    if (m.phase() == v1::QuantizeProgress::PHASE_RECONSTRUCTION) {
      ++blocks;
      EXPECT_FALSE(m.block().empty());
      EXPECT_GE(m.loss_before(), 0);
      // The learned rounding is kept only when it does not lose to nearest rounding.
      EXPECT_LE(m.loss_after(), m.loss_before() * (1 + 1e-6) + 1e-12) << m.block();
    }
  }
  EXPECT_EQ(calibration, 2);
  EXPECT_GT(blocks, 0);
  ASSERT_FALSE(p.empty());
  const v1::QuantizeProgress& done = p.back();
  ASSERT_EQ(done.phase(), v1::QuantizeProgress::PHASE_DONE);
  EXPECT_GT(done.fp32().bytes(), 0);
  EXPECT_GT(done.int8().bytes(), 0);
  EXPECT_LT(done.int8().bytes(), done.fp32().bytes());
  EXPECT_EQ(done.fp32().ap_size(), 3);
  EXPECT_GT(done.int8().encode_latency_p50_s(), 0);

  std::ifstream in(*dir_ + "/artifacts/tiny-int8-report.json");
  const nlohmann::json r = nlohmann::json::parse(in);
  for (const char* prec : {"fp32", "int8"}) {
    for (const char* key : {"bytes", "encode_latency_p50_s", "e2e_latency_p50_s"}) {
      EXPECT_TRUE(r[prec].contains(key)) << prec << "." << key;
    }
    EXPECT_TRUE(r[prec]["ap"]["vehicle"].contains("0.5")) << prec;
  }
  const auto m =
      qv2x::testing::ParsePrometheusText(*qv2x::testing::HttpGet(ports_->metrics, "/metrics"));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(qv2x::testing::SumOf(*m, "qv2x_quantizer_jobs_total", {"state=\"done\""}), 1);
  EXPECT_GT(qv2x::testing::SumOf(*m, "qv2x_quantizer_model_bytes", {"precision=\"int8\""}), 0);
}

TEST_F(QuantizerRpcTest, BadRequestsAreRefusedWithTheField) {
  std::vector<v1::QuantizeProgress> p;
  auto r = Request();
  r.set_output_path("../outside.int8");
  grpc::Status st = Run(r, &p);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("output_path"), std::string::npos) << st.error_message();
  r = Request();
  r.set_checkpoint("missing.pth");
  st = Run(r, &p);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  EXPECT_NE(st.error_message().find("checkpoint"), std::string::npos);
  r = Request();
  r.set_n_bits_w(9);
  st = Run(r, &p);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  r = Request();
  r.set_scale_method("max");
  st = Run(r, &p);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_TRUE(p.empty());
}

// An agent switches to INT8 between two frames under traffic: no frame lost, none mixed,
// the fusion service decodes both precisions' indices (same codebook), and the ego half
// switches too.
TEST_F(QuantizerRpcTest, LiveSwapToInt8LosesNoFrame) {
  const std::string artifact = Artifact();
  const std::string ckpt = *dir_ + "/artifacts/tiny.pth";
  const std::string run = qv2x::testing::MakeTempDir("qv2x_swap_");
  auto fusion = ChildProcess::Start(
      {Bin("qv2x-fusion"), absl::StrCat("--scene=", kScene), absl::StrCat("--config=", kConfig),
       "--checkpoint=" + ckpt, "--int8_artifact=" + artifact, "--listen=127.0.0.1:0",
       "--metrics=127.0.0.1:0", "--deadline_ms=3000", "--port_file=" + run + "/f.port"},
      run + "/fusion.log");
  ASSERT_TRUE(fusion.ok());
  auto fp = qv2x::testing::WaitForPortFile(run + "/f.port", 120, fusion->get());
  ASSERT_TRUE(fp.ok()) << fp.status();
  auto fstub = v1::Fusion::NewStub(grpc::CreateChannel(absl::StrCat("127.0.0.1:", fp->grpc),
                                                       grpc::InsecureChannelCredentials()));
  grpc::ClientContext watch_ctx;
  auto watch = fstub->WatchDetections(&watch_ctx, {});
  std::vector<std::unique_ptr<ChildProcess>> agents;
  qv2x::testing::Ports agent1{};
  for (int id : {0, 1, -1}) {
    const std::string pf = absl::StrCat(run, "/a", id, ".port");
    auto a = ChildProcess::Start(
        {Bin("qv2x-agent"), absl::StrCat("--scene=", kScene), absl::StrCat("--config=", kConfig),
         absl::StrCat("--agent_id=", id), "--checkpoint=" + ckpt, "--int8_artifact=" + artifact,
         absl::StrCat("--fusion=127.0.0.1:", fp->grpc), "--listen=127.0.0.1:0",
         "--metrics=127.0.0.1:0", "--pace=lockstep", "--port_file=" + pf},
        absl::StrCat(run, "/agent", id, ".log"));
    ASSERT_TRUE(a.ok());
    auto ports = qv2x::testing::WaitForPortFile(pf, 120, a->get());
    ASSERT_TRUE(ports.ok()) << ports.status();
    if (id == 1) agent1 = *ports;
    agents.push_back(std::move(*a));
  }
  std::vector<v1::DetectionFrame> frames;
  v1::DetectionFrame f;
  while (frames.size() < 3 && watch->Read(&f)) frames.push_back(f);
  auto astub = v1::AgentControl::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", agent1.grpc), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  v1::SetPrecisionRequest req;
  req.set_precision(v1::PRECISION_INT8);
  v1::ControlReply reply;
  grpc::Status st = astub->SetPrecision(&ctx, req, &reply);
  ASSERT_TRUE(st.ok()) << st.error_message();
  const uint64_t switch_at = reply.effective_frame_id();
  EXPECT_EQ(reply.status().precision(), v1::PRECISION_INT8);
  {
    grpc::ClientContext c2;
    v1::FusionPrecisionRequest fr;
    fr.set_precision(v1::PRECISION_INT8);
    v1::FusionStatus fs;
    ASSERT_TRUE(fstub->SetPrecision(&c2, fr, &fs).ok());
    EXPECT_EQ(fs.precision(), v1::PRECISION_INT8);
  }
  while (frames.size() < switch_at + 6 && watch->Read(&f)) frames.push_back(f);
  watch_ctx.TryCancel();
  ASSERT_GE(frames.size(), switch_at + 6);
  for (size_t i = 0; i < frames.size(); ++i) {
    ASSERT_EQ(frames[i].frame_id(), i) << "no frame lost";
    ASSERT_EQ(frames[i].agents_size(), 3) << "frame " << i;
    for (const auto& a : frames[i].agents()) {
      const bool int8 = a.agent_id() == 1 && i >= switch_at;
      EXPECT_EQ(a.precision(), int8 ? v1::PRECISION_INT8 : v1::PRECISION_FP32) << "frame " << i;
    }
  }
  EXPECT_EQ(frames.back().fusion_precision(), v1::PRECISION_INT8);
  const auto fm =
      qv2x::testing::ParsePrometheusText(*qv2x::testing::HttpGet(fp->metrics, "/metrics"));
  ASSERT_TRUE(fm.ok());
  EXPECT_EQ(qv2x::testing::SumOf(*fm, "qv2x_fusion_rejected_messages_total"), 0)
      << "INT8 indices decode in the same codebook";
  const auto am =
      qv2x::testing::ParsePrometheusText(*qv2x::testing::HttpGet(agent1.metrics, "/metrics"));
  ASSERT_TRUE(am.ok());
  EXPECT_GT(
      qv2x::testing::SumOf(*am, "qv2x_agent_encode_duration_seconds_count", {"precision=\"int8\""}),
      0);
  EXPECT_GT(qv2x::testing::SumOf(*am, "qv2x_agent_frames_sent_total", {"precision=\"fp32\""}), 0);
  agents.clear();
  fusion->reset();
  std::filesystem::remove_all(run);
}

}  // namespace
}  // namespace qv2x
