// A real qv2x-trainer on 127.0.0.1: the three stages through the RPC on the tiny preset,
// stage-2 freezing checked bit for bit, refusal, cancellation, resume, confinement,
// metrics and graceful shutdown.
#include <signal.h>

#include <filesystem>
#include <memory>
#include <thread>

#include "core/config/model_config.h"
#include "core/model/checkpoint.h"
#include "core/model/detector.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "qv2x/v1/trainer.grpc.pb.h"
#include "tests/integration/harness/process.h"

namespace qv2x {
namespace {

namespace fs = std::filesystem;
using ::qv2x::testing::ChildProcess;

// Small runs: a few frames, one or two epochs.
std::vector<std::string> QuickOverrides(int epochs) {
  return {"train_params.train_frames=4", "train_params.val_frames=2",
          "train_params.batch_size=2",   "train_params.eval_freq=1",
          "train_params.save_freq=1",    "train_params.epoches=" + std::to_string(epochs)};
}

class TrainerRpcTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    artifacts_ = new std::string(qv2x::testing::MakeTempDir("qv2x-trainer-"));
    const std::string port_file = *artifacts_ + "/ports";
    auto p = ChildProcess::Start(
        {qv2x::testing::BuildDir() + "/bin/qv2x-trainer", "--listen=127.0.0.1:0",
         "--metrics=127.0.0.1:0", "--artifacts=" + *artifacts_, "--configs=configs",
         "--port_file=" + port_file, "--threads=2"},
        *artifacts_ + "/trainer.log");
    ASSERT_TRUE(p.ok()) << p.status();
    server_ = p->release();
    auto ports = qv2x::testing::WaitForPortFile(port_file, 30, server_);
    ASSERT_TRUE(ports.ok()) << ports.status();
    ports_ = *ports;
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  std::unique_ptr<v1::Trainer::Stub> Stub() {
    return v1::Trainer::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(ports_.grpc),
                                                    grpc::InsecureChannelCredentials()));
  }

  // Runs a stage to the end; returns the final status and every progress message.
  grpc::Status Run(const v1::RunStageRequest& req, std::vector<v1::TrainProgress>* msgs) {
    auto stub = Stub();
    grpc::ClientContext ctx;
    auto reader = stub->RunStage(&ctx, req);
    v1::TrainProgress p;
    while (reader->Read(&p)) msgs->push_back(p);
    return reader->Finish();
  }

  static v1::RunStageRequest Request(int stage, const std::string& out, const std::string& from,
                                     int epochs) {
    v1::RunStageRequest r;
    r.set_stage(stage);
    r.set_config_path("configs/tiny/stage" + std::to_string(stage) + ".yaml");
    r.set_output_dir(out);
    r.set_from_checkpoint(from);
    for (const auto& o : QuickOverrides(epochs)) r.add_overrides(o);
    return r;
  }

  static Checkpoint Read(const std::string& rel) {
    auto c = ReadCheckpoint(*artifacts_ + "/" + rel);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *std::move(c) : Checkpoint{};
  }

  static std::string* artifacts_;
  static ChildProcess* server_;
  static qv2x::testing::Ports ports_;
};
std::string* TrainerRpcTest::artifacts_ = nullptr;
ChildProcess* TrainerRpcTest::server_ = nullptr;
qv2x::testing::Ports TrainerRpcTest::ports_;

bool IsCodebook(const std::string& name) { return name.rfind("codebook.", 0) == 0; }

TEST_F(TrainerRpcTest, Stage2WithoutStage1CheckpointIsFailedPrecondition) {
  std::vector<v1::TrainProgress> msgs;
  grpc::Status st = Run(Request(2, "no_input", "", 1), &msgs);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  st = Run(Request(2, "no_input", "does/not/exist.pth", 1), &msgs);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  EXPECT_NE(st.error_message().find("exist.pth"), std::string::npos) << st.error_message();
}

TEST_F(TrainerRpcTest, PathsOutsideArtifactsAreRefused) {
  std::vector<v1::TrainProgress> msgs;
  grpc::Status st = Run(Request(1, "../escape", "", 1), &msgs);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("output_dir"), std::string::npos) << st.error_message();
  v1::RunStageRequest r = Request(1, "ok", "", 1);
  r.set_config_path("/etc/passwd");
  st = Run(r, &msgs);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
}

TEST_F(TrainerRpcTest, ThreeStagesFreezeWhatStage2MustNotTouch) {
  std::vector<v1::TrainProgress> msgs;
  grpc::Status st = Run(Request(1, "s1", "", 1), &msgs);
  ASSERT_TRUE(st.ok()) << st.error_message() << "\n" << server_->Log();
  ASSERT_FALSE(msgs.empty());
  EXPECT_TRUE(msgs.back().done());
  bool saw_loss = false, saw_ap = false;
  for (const auto& m : msgs) {
    saw_loss |= m.losses_size() > 0 && m.step() > 0;
    saw_ap |= m.validation_ap_size() == 3;
  }
  EXPECT_TRUE(saw_loss);
  EXPECT_TRUE(saw_ap);
  ASSERT_TRUE(fs::exists(*artifacts_ + "/s1/last.pth"));
  ASSERT_TRUE(fs::exists(*artifacts_ + "/s1/best.pth"));

  msgs.clear();
  st = Run(Request(2, "s2", "s1/last.pth", 1), &msgs);
  ASSERT_TRUE(st.ok()) << st.error_message() << "\n" << server_->Log();
  const Checkpoint s1 = Read("s1/last.pth"), s2 = Read("s2/last.pth");
  EXPECT_EQ(s1.meta.stage, 1);
  EXPECT_EQ(s2.meta.stage, 2);
  EXPECT_FALSE(s2.meta.codebook_digest.empty());
  int compared = 0;
  for (const auto& [name, t] : s1.tensors) {
    const torch::Tensor* u = s2.Find(name);
    ASSERT_NE(u, nullptr) << name;
    EXPECT_TRUE(torch::equal(t, *u)) << name << " moved in stage 2";
    ++compared;
  }
  EXPECT_GT(compared, 20);
  // The codebook moved away from its initialisation (same seed, same init order).
  auto cfg2 = LoadStageConfig("configs/tiny/stage2.yaml", QuickOverrides(1));
  ASSERT_TRUE(cfg2.ok()) << cfg2.status();
  torch::manual_seed(static_cast<uint64_t>(cfg2->train_params.seed));
  auto fresh = MakeDetector(*cfg2);
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  int codebook_tensors = 0;
  for (const auto& [name, t] : StateDict(**fresh)) {
    if (!IsCodebook(name)) continue;
    const torch::Tensor* trained = s2.Find(name);
    ASSERT_NE(trained, nullptr) << name;
    EXPECT_FALSE(torch::equal(t, *trained)) << name << " did not train";
    ++codebook_tensors;
  }
  EXPECT_GT(codebook_tensors, 0);

  msgs.clear();
  st = Run(Request(3, "s3", "s2/last.pth", 1), &msgs);
  ASSERT_TRUE(st.ok()) << st.error_message() << "\n" << server_->Log();
  const Checkpoint s3 = Read("s3/last.pth");
  EXPECT_EQ(s3.meta.stage, 3);
  int changed = 0;
  for (const auto& [name, t] : s2.tensors) {
    const torch::Tensor* u = s3.Find(name);
    ASSERT_NE(u, nullptr) << name;
    if (!IsCodebook(name) && !torch::equal(t, *u)) ++changed;
  }
  EXPECT_GT(changed, 10) << "stage 3 should train the detector";

  // Stage 3 refuses a stage-1 checkpoint.
  st = Run(Request(3, "s3b", "s1/last.pth", 1), &msgs);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();

  // Stage 1 fine-tunes a stage-1 checkpoint when given one: at a vanishing rate it keeps
  // the weights it started from (BN running statistics aside).
  v1::RunStageRequest ft1 = Request(1, "ft1", "s1/last.pth", 1);
  ft1.add_overrides("optimizer.lr=1e-12");
  st = Run(ft1, &msgs);
  ASSERT_TRUE(st.ok()) << st.error_message() << "\n" << server_->Log();
  const Checkpoint f1 = Read("ft1/last.pth");
  int weights = 0;
  for (const auto& [name, t] : s1.tensors) {
    if (name.find("running_") != std::string::npos ||
        name.find("num_batches") != std::string::npos) {
      continue;
    }
    const torch::Tensor* u = f1.Find(name);
    ASSERT_NE(u, nullptr) << name;
    EXPECT_TRUE(torch::allclose(t, *u, 1e-5, 1e-8)) << name << ": not fine-tuned from s1";
    ++weights;
  }
  EXPECT_GT(weights, 10);

  auto metrics = qv2x::testing::HttpGet(ports_.metrics, "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_NE(metrics->find("qv2x_trainer_step_total"), std::string::npos);
  EXPECT_NE(metrics->find("qv2x_trainer_loss{term=\"total\"}"), std::string::npos);
  EXPECT_NE(metrics->find("qv2x_build_info"), std::string::npos);
}

TEST_F(TrainerRpcTest, CancelStopsTheJobAndASecondJobIsRefusedMeanwhile) {
  v1::RunStageRequest long_run = Request(1, "cancel", "", 50);
  auto stub = Stub();
  grpc::ClientContext ctx;
  auto reader = stub->RunStage(&ctx, long_run);
  v1::TrainProgress p;
  ASSERT_TRUE(reader->Read(&p));
  const std::string job = p.job_id();
  ASSERT_FALSE(job.empty());

  std::vector<v1::TrainProgress> msgs;
  grpc::Status busy = Run(Request(1, "other", "", 1), &msgs);
  EXPECT_EQ(busy.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(busy.error_message().find(job), std::string::npos) << busy.error_message();

  grpc::ClientContext cctx;
  v1::CancelJobRequest creq;
  creq.set_job_id(job);
  v1::Job cancelled;
  ASSERT_TRUE(Stub()->CancelJob(&cctx, creq, &cancelled).ok());
  while (reader->Read(&p)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);

  grpc::ClientContext gctx;
  v1::GetJobRequest greq;
  greq.set_job_id(job);
  v1::Job got;
  ASSERT_TRUE(Stub()->GetJob(&gctx, greq, &got).ok());
  EXPECT_EQ(got.state(), "cancelled");
  EXPECT_LT(got.last_progress().epoch(), 50);
}

TEST_F(TrainerRpcTest, ResumeContinuesFromTheSavedEpoch) {
  std::vector<v1::TrainProgress> msgs;
  ASSERT_TRUE(Run(Request(1, "resume", "", 1), &msgs).ok()) << server_->Log();
  EXPECT_EQ(Read("resume/last.pth").meta.epoch, 1);
  v1::RunStageRequest again = Request(1, "resume", "", 2);
  again.set_resume(true);
  msgs.clear();
  grpc::Status st = Run(again, &msgs);
  ASSERT_TRUE(st.ok()) << st.error_message();
  int first_step_epoch = 0;
  for (const auto& m : msgs) {
    if (m.step() > 0 && first_step_epoch == 0) first_step_epoch = m.epoch();
  }
  EXPECT_EQ(first_step_epoch, 2);
  EXPECT_EQ(Read("resume/last.pth").meta.epoch, 2);
}

TEST_F(TrainerRpcTest, ZzzSigtermShutsDownGracefully) {
  server_->Signal(SIGTERM);
  EXPECT_EQ(server_->Wait(20), 0) << server_->Log();
}

}  // namespace
}  // namespace qv2x
