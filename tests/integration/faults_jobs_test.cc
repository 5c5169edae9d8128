// Faults of the long jobs, with real qv2x-trainer / qv2x-quantizer / qv2x processes on
// 127.0.0.1 (issue 11): a trainer killed mid-stage and a disk that fills up mid-checkpoint
// (resume continues from the last good checkpoint; every checkpoint on disk loads), bad
// input checkpoints, a quantizer cancelled or killed mid-reconstruction (the previous
// artifact stays byte for byte), and the launcher killed with the training services up.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "core/model/checkpoint.h"
#include "grpcpp/grpcpp.h"
#include "qv2x/v1/quantizer.grpc.pb.h"
#include "qv2x/v1/trainer.grpc.pb.h"
#include "tests/integration/harness/cluster.h"
#include "tests/integration/harness/model_files.h"

namespace qv2x {
namespace {

namespace fs = std::filesystem;
using qv2x::testing::BadModelFile;
using qv2x::testing::ChildProcess;
using qv2x::testing::FileBytes;

std::string Bin(const std::string& name) { return qv2x::testing::BuildDir() + "/bin/" + name; }

// Files in `dir` (names only), sorted.
std::vector<std::string> Listing(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// Every checkpoint file in `dir` reads back (CRC-checked); their epochs by name.
std::map<std::string, int> LoadEveryCheckpoint(const std::string& dir) {
  std::map<std::string, int> epochs;
  for (const std::string& name : Listing(dir)) {
    EXPECT_EQ(name.find(".tmp."), std::string::npos) << "temporary file left: " << name;
    if (fs::path(name).extension() != ".pth") continue;
    absl::StatusOr<Checkpoint> c = ReadCheckpoint(dir + "/" + name);
    EXPECT_TRUE(c.ok()) << name << ": " << c.status();
    if (c.ok()) epochs[name] = c->meta.epoch;
  }
  return epochs;
}

// One server process (trainer or quantizer) with its artifacts folder.
class Service {
 public:
  absl::Status Start(const std::string& binary, const std::string& artifacts,
                     const std::string& log) {
    const std::string pf = log + ".port";
    fs::remove(pf);
    auto p = ChildProcess::Start(
        {Bin(binary), "--listen=127.0.0.1:0", "--metrics=127.0.0.1:0", "--artifacts=" + artifacts,
         "--configs=configs", "--port_file=" + pf, "--threads=1"},
        log);
    if (!p.ok()) return p.status();
    process_ = std::move(*p);
    auto ports = qv2x::testing::WaitForPortFile(pf, 60, process_.get());
    if (!ports.ok()) return ports.status();
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", ports->grpc),
                                   grpc::InsecureChannelCredentials());
    port_ = ports->grpc;
    return absl::OkStatus();
  }
  ChildProcess& process() { return *process_; }
  std::shared_ptr<grpc::Channel> channel() { return channel_; }
  int port() const { return port_; }

 private:
  std::unique_ptr<ChildProcess> process_;
  std::shared_ptr<grpc::Channel> channel_;
  int port_ = 0;
};

// A small stage 1 on the tiny preset, saved every epoch, validated (2 frames) at the end.
v1::RunStageRequest Stage1(const std::string& out, int epochs, int frames) {
  v1::RunStageRequest r;
  r.set_stage(1);
  r.set_config_path("configs/tiny/stage1.yaml");
  r.set_output_dir(out);
  for (const std::string& o :
       {absl::StrCat("train_params.train_frames=", frames),
        std::string("train_params.batch_size=2"), std::string("train_params.eval_freq=1000"),
        std::string("train_params.val_frames=2"), std::string("train_params.save_freq=1"),
        absl::StrCat("train_params.epoches=", epochs)}) {
    r.add_overrides(o);
  }
  return r;
}

// Runs a stage to its end; every progress message and the final status.
grpc::Status RunStage(Service& trainer, const v1::RunStageRequest& r,
                      std::vector<v1::TrainProgress>* msgs) {
  auto stub = v1::Trainer::NewStub(trainer.channel());
  grpc::ClientContext ctx;
  auto reader = stub->RunStage(&ctx, r);
  v1::TrainProgress p;
  while (reader->Read(&p)) msgs->push_back(p);
  return reader->Finish();
}

int FirstTrainedEpoch(const std::vector<v1::TrainProgress>& msgs) {
  for (const auto& m : msgs) {
    if (m.step() > 0) return m.epoch();
  }
  return 0;
}

class JobFaultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = qv2x::testing::MakeTempDir("qv2x_job_faults_");
    ASSERT_FALSE(dir_.empty());
    artifacts_ = dir_ + "/artifacts";
    fs::create_directories(artifacts_);
  }
  void TearDown() override {
    trainer_.reset();
    quantizer_.reset();
    if (mounted_) ::umount2(artifacts_.c_str(), MNT_DETACH);
    fs::remove_all(dir_);
  }
  void StartTrainer() {
    trainer_ = std::make_unique<Service>();
    const absl::Status st = trainer_->Start("qv2x-trainer", artifacts_, dir_ + "/trainer.log");
    ASSERT_TRUE(st.ok()) << st;
  }
  void StartQuantizer() {
    quantizer_ = std::make_unique<Service>();
    const absl::Status st =
        quantizer_->Start("qv2x-quantizer", artifacts_, dir_ + "/quantizer.log");
    ASSERT_TRUE(st.ok()) << st;
  }

  std::string dir_, artifacts_;
  bool mounted_ = false;
  std::unique_ptr<Service> trainer_, quantizer_;
};

TEST_F(JobFaultsTest, TrainerKilledMidStageResumesFromTheLastGoodCheckpoint) {
  StartTrainer();
  {
    auto stub = v1::Trainer::NewStub(trainer_->channel());
    grpc::ClientContext ctx;
    auto reader = stub->RunStage(&ctx, Stage1("killed", 3, 4));
    v1::TrainProgress p;
    bool saved = false;
    while (reader->Read(&p)) {
      saved |= p.checkpoint().find("epoch_001.pth") != std::string::npos;
      if (saved && p.epoch() == 2 && p.step() > 0) break;  // in epoch 2, between checkpoints
    }
    ASSERT_TRUE(saved) << trainer_->process().Log();
    trainer_->process().Signal(SIGKILL);
    ASSERT_NE(trainer_->process().Wait(10), -1);
  }
  const std::string out = artifacts_ + "/killed";
  EXPECT_EQ(LoadEveryCheckpoint(out),
            (std::map<std::string, int>{{"epoch_001.pth", 1}, {"last.pth", 1}}));
  StartTrainer();
  v1::RunStageRequest resume = Stage1("killed", 3, 4);
  resume.set_resume(true);
  std::vector<v1::TrainProgress> msgs;
  const grpc::Status st = RunStage(*trainer_, resume, &msgs);
  ASSERT_TRUE(st.ok()) << st.error_message() << trainer_->process().Log();
  EXPECT_EQ(FirstTrainedEpoch(msgs), 2) << "resume continues with the epoch after the last save";
  const auto epochs = LoadEveryCheckpoint(out);
  EXPECT_EQ(epochs.at("last.pth"), 3);
  EXPECT_EQ(epochs.at("epoch_002.pth"), 2);
  EXPECT_EQ(Listing(out), (std::vector<std::string>{"best.pth", "epoch_001.pth", "epoch_002.pth",
                                                    "epoch_003.optim", "epoch_003.pth", "last.pth",
                                                    "losses.json"}));
}

// The artifacts folder is a small tmpfs that fills up while epoch 2 is saved: the
// optimiser state still fits, last.pth does not. The job fails with RESOURCE_EXHAUSTED
// naming the checkpoint to resume from, the trainer keeps serving, every checkpoint on
// disk loads, and once space is freed the resume finishes the stage.
TEST_F(JobFaultsTest, DiskFullMidCheckpointFailsTheJobAndResumeContinues) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount a tmpfs (a real ENOSPC)";
  ASSERT_EQ(::mount("tmpfs", artifacts_.c_str(), "tmpfs", 0, "size=24m"), 0)
      << std::strerror(errno);
  mounted_ = true;
  StartTrainer();
  const std::string out = artifacts_ + "/full", filler = artifacts_ + "/filler";
  auto stub = v1::Trainer::NewStub(trainer_->channel());
  grpc::ClientContext ctx;
  auto reader = stub->RunStage(&ctx, Stage1("full", 3, 8));
  v1::TrainProgress p;
  std::string job;
  bool filled = false;
  while (reader->Read(&p)) {
    job = p.job_id();
    if (filled || p.checkpoint().find("epoch_001.pth") == std::string::npos) continue;
    // Room for the next optimiser state and half a checkpoint, no more.
    struct statvfs vfs {};
    ASSERT_EQ(::statvfs(artifacts_.c_str(), &vfs), 0);
    const int64_t free_bytes = static_cast<int64_t>(vfs.f_bavail) * vfs.f_frsize;
    const int64_t keep = static_cast<int64_t>(fs::file_size(out + "/epoch_001.optim") +
                                              fs::file_size(out + "/last.pth") / 2);
    ASSERT_GT(free_bytes, keep);
    std::ofstream f(filler, std::ios::binary);
    const std::string block(1 << 16, 'f');
    for (int64_t left = free_bytes - keep; left > 0; left -= block.size()) {
      f.write(block.data(), std::min<int64_t>(left, block.size()));
    }
    f.close();
    ASSERT_TRUE(f) << "could not fill the tmpfs";
    filled = true;
  }
  const grpc::Status st = reader->Finish();
  ASSERT_TRUE(filled) << trainer_->process().Log();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
  EXPECT_NE(st.error_message().find("No space left on device"), std::string::npos)
      << st.error_message();
  EXPECT_NE(st.error_message().find("resume continues from " + out + "/last.pth (epoch 1)"),
            std::string::npos)
      << st.error_message();

  EXPECT_TRUE(qv2x::testing::Serving(trainer_->port())) << "the trainer stopped serving";
  {
    grpc::ClientContext gctx;
    v1::GetJobRequest req;
    req.set_job_id(job);
    v1::Job got;
    ASSERT_TRUE(stub->GetJob(&gctx, req, &got).ok());
    EXPECT_EQ(got.state(), "failed");
    EXPECT_NE(got.error().find("No space left on device"), std::string::npos) << got.error();
  }
  EXPECT_EQ(LoadEveryCheckpoint(out),
            (std::map<std::string, int>{{"epoch_001.pth", 1}, {"last.pth", 1}}));

  fs::remove(filler);
  v1::RunStageRequest resume = Stage1("full", 3, 8);
  resume.set_resume(true);
  std::vector<v1::TrainProgress> msgs;
  const grpc::Status again = RunStage(*trainer_, resume, &msgs);
  ASSERT_TRUE(again.ok()) << again.error_message() << trainer_->process().Log();
  EXPECT_EQ(FirstTrainedEpoch(msgs), 2);
  EXPECT_EQ(LoadEveryCheckpoint(out).at("last.pth"), 3);
}

// Input checkpoints that cannot be used are refused naming what is wrong, and the
// trainer keeps serving.
TEST_F(JobFaultsTest, TrainerRefusesBadInputCheckpoints) {
  StartTrainer();
  struct Case {
    std::string from;  // in the artifacts folder
    int stage;
    grpc::StatusCode code;
    std::string expect;
  };
  auto make = [&](BadModelFile kind) {
    auto p = qv2x::testing::MakeBadModelFile(kind, artifacts_);
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? fs::path(*p).filename().string() : std::string();
  };
  fs::copy_file("models/cpu-stage1.pth", artifacts_ + "/cpu-stage1.pth");
  const std::vector<Case> cases = {
      {make(BadModelFile::kTruncatedCheckpoint), 2, grpc::StatusCode::FAILED_PRECONDITION,
       "not a complete ZIP archive"},
      {make(BadModelFile::kCorruptCheckpoint), 2, grpc::StatusCode::FAILED_PRECONDITION,
       "fails its CRC-32 check"},
      {make(BadModelFile::kWrongPresetCheckpoint), 2, grpc::StatusCode::FAILED_PRECONDITION,
       "holds a stage-3 model; stage 2 needs a stage-1 checkpoint"},
      {"cpu-stage1.pth", 1, grpc::StatusCode::INVALID_ARGUMENT,
       "(stage 1, config cpu_stage1) refused by config tiny_stage1"},
  };
  for (const Case& c : cases) {
    v1::RunStageRequest r = Stage1("bad_input", 1, 2);
    r.set_stage(c.stage);
    r.set_config_path(absl::StrCat("configs/tiny/stage", c.stage, ".yaml"));
    r.set_from_checkpoint(c.from);
    std::vector<v1::TrainProgress> msgs;
    const grpc::Status st = RunStage(*trainer_, r, &msgs);
    EXPECT_EQ(st.error_code(), c.code) << c.from << ": " << st.error_message();
    EXPECT_NE(st.error_message().find(c.expect), std::string::npos)
        << c.from << ": " << st.error_message();
  }
  // A resume whose last.pth went bad on disk names the file and the damage.
  fs::create_directories(artifacts_ + "/rotten");
  fs::copy_file(artifacts_ + "/" + make(BadModelFile::kCorruptCheckpoint),
                artifacts_ + "/rotten/last.pth");
  v1::RunStageRequest resume = Stage1("rotten", 2, 2);
  resume.set_config_path("configs/tiny/stage3.yaml");
  resume.set_stage(3);
  resume.set_resume(true);
  std::vector<v1::TrainProgress> msgs;
  const grpc::Status st = RunStage(*trainer_, resume, &msgs);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.error_message().find("rotten/last.pth"), std::string::npos) << st.error_message();
  EXPECT_NE(st.error_message().find("fails its CRC-32 check"), std::string::npos)
      << st.error_message();
  EXPECT_TRUE(qv2x::testing::Serving(trainer_->port()));
}

class QuantizerFaultsTest : public JobFaultsTest {
 protected:
  void SetUp() override {
    JobFaultsTest::SetUp();
    auto good = qv2x::testing::MakeBadModelFile(BadModelFile::kNone, artifacts_);
    ASSERT_TRUE(good.ok()) << good.status();
    StartQuantizer();
    // The artifact every later job must leave alone: a quick one, no reconstruction.
    std::vector<v1::QuantizeProgress> msgs;
    const grpc::Status st = Quantize(Request(0, 1), &msgs);
    ASSERT_TRUE(st.ok()) << st.error_message() << quantizer_->process().Log();
    original_ = FileBytes(artifacts_ + "/tiny.int8");
    ASSERT_FALSE(original_.empty());
    listing_ = Listing(artifacts_);
  }

  static v1::QuantizeRequest Request(int iters, int eval_frames) {
    v1::QuantizeRequest r;
    r.set_checkpoint("good.pth");
    r.set_config_path("configs/tiny/stage3.yaml");
    r.set_output_path("tiny.int8");
    r.set_num_cali_batches(1);
    r.set_iters_w(iters);
    r.set_no_reconstruction(iters == 0);
    r.set_calibration_source("sim:configs/scenes/tiny.yaml");
    r.set_eval_source("sim:configs/scenes/tiny.yaml");
    r.set_eval_frames(eval_frames);
    return r;
  }
  // Would write a different artifact (6-bit weights) to the same path.
  static v1::QuantizeRequest Other(v1::QuantizeRequest r) {
    r.set_n_bits_w(6);
    return r;
  }
  grpc::Status Quantize(const v1::QuantizeRequest& r, std::vector<v1::QuantizeProgress>* msgs) {
    auto stub = v1::Quantizer::NewStub(quantizer_->channel());
    grpc::ClientContext ctx;
    auto reader = stub->Quantize(&ctx, r);
    v1::QuantizeProgress p;
    while (reader->Read(&p)) msgs->push_back(p);
    return reader->Finish();
  }
  // Starts a job and returns while it is in `phase`, its reader still open. A block is
  // reported only once reconstructed: for reconstruction, the last calibration batch + 1 s.
  struct Running {
    std::unique_ptr<grpc::ClientContext> ctx = std::make_unique<grpc::ClientContext>();
    std::unique_ptr<v1::Quantizer::Stub> stub;
    std::unique_ptr<grpc::ClientReader<v1::QuantizeProgress>> reader;
    std::string job;
  };
  Running StartUntil(const v1::QuantizeRequest& r, v1::QuantizeProgress::Phase phase) {
    Running run;
    run.stub = v1::Quantizer::NewStub(quantizer_->channel());
    run.reader = run.stub->Quantize(run.ctx.get(), r);
    const bool reconstruction = phase == v1::QuantizeProgress::PHASE_RECONSTRUCTION;
    v1::QuantizeProgress p;
    bool reached = false;
    while (!reached && run.reader->Read(&p)) {
      run.job = p.job_id();
      reached = reconstruction
                    ? p.phase() == v1::QuantizeProgress::PHASE_CALIBRATION && p.index() == p.total()
                    : p.phase() == phase;
    }
    EXPECT_TRUE(reached) << quantizer_->process().Log();
    if (reconstruction) std::this_thread::sleep_for(std::chrono::seconds(1));
    return run;
  }
  void ExpectOriginalUntouched(const std::string& after) {
    EXPECT_EQ(FileBytes(artifacts_ + "/tiny.int8"), original_)
        << "the previous artifact changed " << after;
    EXPECT_EQ(Listing(artifacts_), listing_) << "files left " << after;
  }

  std::string original_;
  std::vector<std::string> listing_;
};

TEST_F(QuantizerFaultsTest, CancelledMidReconstructionOrEvaluationLeavesThePreviousArtifact) {
  for (auto phase :
       {v1::QuantizeProgress::PHASE_RECONSTRUCTION, v1::QuantizeProgress::PHASE_EVALUATION}) {
    const bool reconstruct = phase == v1::QuantizeProgress::PHASE_RECONSTRUCTION;
    Running run = StartUntil(Other(Request(reconstruct ? 1000000 : 0, 12)), phase);
    grpc::ClientContext ctx;
    v1::CancelQuantizeRequest req;
    req.set_job_id(run.job);
    v1::CancelQuantizeResponse resp;
    ASSERT_TRUE(run.stub->CancelQuantize(&ctx, req, &resp).ok());
    v1::QuantizeProgress p;
    while (run.reader->Read(&p)) {
    }
    const grpc::Status st = run.reader->Finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::CANCELLED)
        << v1::QuantizeProgress::Phase_Name(phase) << ": " << st.error_message();
    ExpectOriginalUntouched("by a job cancelled in " + v1::QuantizeProgress::Phase_Name(phase));
  }
  EXPECT_TRUE(qv2x::testing::Serving(quantizer_->port()));
}

TEST_F(QuantizerFaultsTest, KilledMidReconstructionLeavesThePreviousArtifact) {
  Running run = StartUntil(Other(Request(1000000, 1)), v1::QuantizeProgress::PHASE_RECONSTRUCTION);
  quantizer_->process().Signal(SIGKILL);
  ASSERT_NE(quantizer_->process().Wait(10), -1);
  ExpectOriginalUntouched("by a killed job");
  // A restarted quantizer runs the next job to the end and replaces it only then.
  StartQuantizer();
  std::vector<v1::QuantizeProgress> msgs;
  const grpc::Status st = Quantize(Request(0, 1), &msgs);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(Listing(artifacts_), listing_);
}

TEST_F(QuantizerFaultsTest, BadInputCheckpointsAreRefusedNamingWhatIsWrong) {
  const std::vector<std::pair<BadModelFile, std::string>> cases = {
      {BadModelFile::kTruncatedCheckpoint, "not a complete ZIP archive"},
      {BadModelFile::kCorruptCheckpoint, "fails its CRC-32 check"},
      {BadModelFile::kWrongPresetCheckpoint, "(model [16, 10], file [64, 10])"},
  };
  for (const auto& [kind, expect] : cases) {
    auto path = qv2x::testing::MakeBadModelFile(kind, artifacts_);
    ASSERT_TRUE(path.ok()) << path.status();
    v1::QuantizeRequest r = Request(0, 1);
    r.set_checkpoint(fs::path(*path).filename().string());
    std::vector<v1::QuantizeProgress> msgs;
    const grpc::Status st = Quantize(r, &msgs);
    EXPECT_FALSE(st.ok()) << *path;
    EXPECT_NE(st.error_message().find(expect), std::string::npos) << st.error_message();
    EXPECT_EQ(FileBytes(artifacts_ + "/tiny.int8"), original_);
  }
  EXPECT_TRUE(qv2x::testing::Serving(quantizer_->port()));
}

// `qv2x scene up --with-training` killed with SIGKILL while the trainer runs a job: the
// services, trainer and quantizer included, go with it.
TEST_F(JobFaultsTest, KilledLauncherLeavesNoTrainerOrQuantizerBehind) {
  const std::string run = dir_ + "/run";
  auto launcher =
      ChildProcess::Start({Bin("qv2x"), "scene", "up", "--config", "configs/scenes/tiny.yaml",
                           "--with-training", "--artifacts", artifacts_, "--run-dir", run},
                          dir_ + "/up.log");
  ASSERT_TRUE(launcher.ok());
  for (int i = 0; i < 1800 && !fs::exists(run + "/endpoints.json"); ++i) {
    ASSERT_TRUE((*launcher)->Running()) << (*launcher)->Log();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(fs::exists(run + "/endpoints.json")) << (*launcher)->Log();
  std::string commands;
  for (int pid : qv2x::testing::ProcessesWith(run)) {
    absl::StrAppend(&commands, FileBytes(absl::StrCat("/proc/", pid, "/cmdline")), "\n");
  }
  EXPECT_NE(commands.find("qv2x-trainer"), std::string::npos) << commands;
  EXPECT_NE(commands.find("qv2x-quantizer"), std::string::npos) << commands;
  auto ports = qv2x::testing::WaitForPortFile(run + "/trainer.port", 10, nullptr);
  ASSERT_TRUE(ports.ok()) << ports.status();
  auto stub = v1::Trainer::NewStub(grpc::CreateChannel(absl::StrCat("127.0.0.1:", ports->grpc),
                                                       grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  auto reader = stub->RunStage(&ctx, Stage1("busy", 50, 4));
  v1::TrainProgress p;
  ASSERT_TRUE(reader->Read(&p)) << "the job did not start";
  (*launcher)->Signal(SIGKILL);
  (*launcher)->Wait(10);
  EXPECT_TRUE(qv2x::testing::NoneLeft(run, 30)) << "orphaned services";
  ctx.TryCancel();
}

}  // namespace
}  // namespace qv2x
