// `qv2x model inputs|forward` underneath: the inputs file round trip, the errors that name
// a bad key, and the forward outputs against the Detector's own eval forward.
#include "core/model/model_forward.h"

#include <torch/torch.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/common/file_util.h"
#include "core/model/checkpoint.h"
#include "core/model/detector.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/model_test_util.h"

namespace qv2x {
namespace {

using ::testing::HasSubstr;
using testing::MakeFrame;
using testing::TinyConfig;

namespace fs = std::filesystem;

class ModelForwardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           absl::StrCat("qv2x_forward_",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name(), "_",
                        getpid());
    fs::create_directories(dir_);
    cfg_ = TinyConfig(true);
    // Ego, an agent turned and shifted, one behind: every warp but the ego's resamples.
    frame_ =
        MakeFrame(cfg_, {{0, 0, 0, 0, 0, 0}, {6, 2, 0, 0, 30, 0}, {-5, -1, 0, 0, 180, 0}}, 300, 11);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  // The inputs file of frame_ as a dict, for editing into bad inputs.
  c10::Dict<std::string, torch::Tensor> InputDict() {
    EXPECT_TRUE(WriteModelInputs(frame_, Path("in.pth")).ok());
    const auto bytes = ReadFile(Path("in.pth"));
    auto v = UnpickleArchive(*bytes, "test");
    EXPECT_TRUE(v.ok()) << v.status();
    c10::Dict<std::string, torch::Tensor> d;
    for (const auto& e : v->toGenericDict()) d.insert(e.key().toStringRef(), e.value().toTensor());
    return d;
  }

  // ReadModelInputs' error for `d` written as a file.
  std::string ErrorFor(const c10::Dict<std::string, torch::Tensor>& d) {
    const std::vector<char> bytes = torch::pickle_save(torch::IValue(d));
    EXPECT_TRUE(WriteFileAtomic(Path("bad.pth"), std::string(bytes.begin(), bytes.end())).ok());
    auto r = ReadModelInputs(Path("bad.pth"), cfg_.preprocess);
    EXPECT_FALSE(r.ok());
    return r.ok() ? "" : std::string(r.status().message());
  }

  fs::path dir_;
  StageConfig cfg_;
  CollatedFrame frame_;
};

TEST_F(ModelForwardTest, InputsRoundTripWithTheWarpsCollateFrameComputes) {
  ASSERT_TRUE(WriteModelInputs(frame_, Path("in.pth")).ok());
  auto back = ReadModelInputs(Path("in.pth"), cfg_.preprocess);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->agents.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    const Pillars &a = frame_.agents[i].pillars, &b = back->agents[i].pillars;
    EXPECT_EQ(a.num_pillars, b.num_pillars);
    EXPECT_EQ(a.max_points, b.max_points);
    EXPECT_EQ(a.features, b.features);
    EXPECT_EQ(a.num_points, b.num_points);
    EXPECT_EQ(a.coords, b.coords);
    EXPECT_EQ(back->agents[i].agent_id, frame_.agents[i].agent_id);
    EXPECT_EQ(back->agents[i].lidar_pose.yaw, frame_.agents[i].lidar_pose.yaw);
    for (size_t j = 0; j < 3; ++j) EXPECT_EQ(back->pairwise[i][j].m, frame_.pairwise[i][j].m);
    EXPECT_EQ(back->warp_to_ego[i].a, frame_.warp_to_ego[i].a) << "agent " << i;
  }
}

TEST_F(ModelForwardTest, BadInputsNameTheKey) {
  {
    auto d = InputDict();
    (void)d.erase("agents.1.coords");
    EXPECT_THAT(ErrorFor(d), HasSubstr("missing key agents.1.coords"));
  }
  {
    auto d = InputDict();
    d.insert_or_assign("agents.0.features", d.at("agents.0.features").to(torch::kFloat64));
    EXPECT_THAT(ErrorFor(d), HasSubstr("key agents.0.features: expected float32, got Double"));
  }
  {
    auto d = InputDict();
    d.insert_or_assign("agents.2.num_points", d.at("agents.2.num_points").to(torch::kFloat32));
    EXPECT_THAT(ErrorFor(d), HasSubstr("key agents.2.num_points: expected an integer dtype"));
  }
  {
    auto d = InputDict();
    d.insert_or_assign("agents.0.coords", torch::zeros({300, 3}, torch::kInt32));
    EXPECT_THAT(ErrorFor(d),
                HasSubstr("key agents.0.coords: expected shape [300, 2], got [300, 3]"));
  }
  {
    auto d = InputDict();
    d.insert_or_assign("pairwise", torch::zeros({3, 2, 4, 4}, torch::kFloat64));
    EXPECT_THAT(ErrorFor(d), HasSubstr("key pairwise: expected shape [n, n, 4, 4]"));
  }
  {
    auto d = InputDict();
    torch::Tensor coords = d.at("agents.1.coords").clone();
    coords[7][1].fill_(64);  // the tiny grid is 32 x 64
    d.insert_or_assign("agents.1.coords", coords);
    EXPECT_THAT(ErrorFor(d), HasSubstr("key agents.1.coords: pillar 7 at (row "));
    EXPECT_THAT(ErrorFor(d), HasSubstr("lies outside the config's 32 x 64 grid"));
  }
  {
    auto d = InputDict();
    torch::Tensor coords = d.at("agents.0.coords").clone();
    coords[5].copy_(coords[2]);
    d.insert_or_assign("agents.0.coords", coords);
    EXPECT_THAT(ErrorFor(d), HasSubstr("key agents.0.coords: pillars 2 and 5 share the cell"));
  }
  {
    auto d = InputDict();
    torch::Tensor counts = d.at("agents.0.num_points").clone();
    counts[4].fill_(0);
    d.insert_or_assign("agents.0.num_points", counts);
    EXPECT_THAT(ErrorFor(d), HasSubstr("key agents.0.num_points: pillar 4 has 0 points"));
  }
  {
    auto d = InputDict();
    d.insert_or_assign("grid_size", torch::tensor({int64_t{128}, int64_t{256}}));
    EXPECT_THAT(ErrorFor(d), HasSubstr("key grid_size: the inputs were made for a 128 x 256"));
  }
  {
    auto d = InputDict();
    d.insert("agents.3.features", d.at("agents.0.features"));
    EXPECT_THAT(ErrorFor(d), HasSubstr("unexpected key(s) agents.3.features"));
  }
}

TEST_F(ModelForwardTest, OutputsMatchTheDetectorsEvalForward) {
  torch::manual_seed(5);
  auto model = MakeDetector(cfg_);
  ASSERT_TRUE(model.ok()) << model.status();
  Detector det = *model;
  ASSERT_TRUE(SaveCheckpoint(*det, {}, Path("model.pth")).ok());
  ForwardOptions options;
  options.out = Path("out.pth");
  options.repeat = 2;
  auto report = RunModelForward(cfg_, Path("model.pth"), frame_, options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->codebook_digest, det->codebook()->Digest());
  EXPECT_EQ(report->intermediate_path_rel_diff, 0);
  EXPECT_EQ(report->encode_s.size(), 2u);
  EXPECT_EQ(report->fuse_s.size(), 2u);
  EXPECT_EQ(report->frame_s.size(), 2u);

  const auto bytes = ReadFile(Path("out.pth"));
  ASSERT_TRUE(bytes.ok());
  auto v = UnpickleArchive(*bytes, "out");
  ASSERT_TRUE(v.ok()) << v.status();
  const auto out = v->toGenericDict();
  auto get = [&](const std::string& key) {
    EXPECT_TRUE(out.contains(key)) << key;
    return out.contains(key) ? out.at(key).toTensor() : torch::Tensor();
  };
  // The Detector's batched eval forward is another path through the same weights.
  det->eval();
  torch::NoGradGuard no_grad;
  const DetectorOutput want = det->forward(frame_);
  const torch::Tensor cls = get("cls");
  ASSERT_EQ(cls.sizes(), want.cls.sizes());
  EXPECT_TRUE(torch::allclose(cls, want.cls, 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(get("reg"), want.reg, 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(get("dir"), want.dir, 1e-5, 1e-5));
  const torch::Tensor bev = get("bev_features");
  EXPECT_EQ(bev.sizes(), (std::vector<int64_t>{3, 16, 16, 32}));
  const torch::Tensor indices = get("indices.0");
  EXPECT_TRUE(torch::equal(indices, det->codebook()->Encode(bev)));
  EXPECT_TRUE(torch::equal(get("decoded"), det->codebook()->DecodeUnchecked(indices).contiguous()));
  for (int l = 0; l < 3; ++l) {
    const std::string p = absl::StrCat("pyramid.", l, ".");
    const torch::Tensor w = get(p + "weights");
    // Per cell the weights over agents sum to 1 where any agent sees it, else 0.
    const torch::Tensor sum = w.sum(0);
    EXPECT_TRUE(torch::all(((sum - 1).abs() < 1e-5) | (sum == 0)).item<bool>()) << p;
    // The ego's warp is the identity: its warped map is its own.
    EXPECT_TRUE(torch::equal(get(p + "warped")[0], get(p + "features")[0])) << p;
    EXPECT_EQ(get(p + "fused").size(0), 1);
  }
  EXPECT_EQ(get("agents.1.pillar_features").sizes(), (std::vector<int64_t>{300, 16}));
  EXPECT_EQ(get("warp_to_ego").sizes(), (std::vector<int64_t>{3, 2, 3}));
}

TEST_F(ModelForwardTest, RefusesACheckpointOfAnotherModel) {
  torch::manual_seed(5);
  auto model = MakeDetector(TinyConfig(false));
  ASSERT_TRUE(model.ok());
  ASSERT_TRUE(SaveCheckpoint(**model, {}, Path("stage1.pth")).ok());
  auto report = RunModelForward(cfg_, Path("stage1.pth"), frame_, {});
  ASSERT_FALSE(report.ok());
  EXPECT_THAT(report.status().message(), HasSubstr("missing: codebook.codewords.0"));
}

}  // namespace
}  // namespace qv2x
