// `qv2x model inputs|forward` underneath: the inputs file round trip, the errors that name
// a bad key, and the forward outputs against the Detector's own eval forward; the same with
// NumPy .npz files.
#include "core/model/model_forward.h"

#include <torch/torch.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/common/file_util.h"
#include "core/data/npz_file.h"
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

  // ReadModelInputs' error for `arrays` written as an .npz.
  std::string NpzErrorFor(const NpzArrays& arrays) {
    EXPECT_TRUE(WriteNpz(Path("bad.npz"), arrays).ok());
    auto r = ReadModelInputs(Path("bad.npz"), cfg_.preprocess);
    EXPECT_FALSE(r.ok());
    return r.ok() ? "" : std::string(r.status().message());
  }

  fs::path dir_;
  StageConfig cfg_;
  CollatedFrame frame_;
};

void ExpectSameFrame(const CollatedFrame& a, const CollatedFrame& b) {
  ASSERT_EQ(a.agents.size(), b.agents.size());
  for (size_t i = 0; i < a.agents.size(); ++i) {
    const Pillars &p = a.agents[i].pillars, &q = b.agents[i].pillars;
    EXPECT_EQ(p.num_pillars, q.num_pillars);
    EXPECT_EQ(p.max_points, q.max_points);
    EXPECT_EQ(p.features, q.features);
    EXPECT_EQ(p.num_points, q.num_points);
    EXPECT_EQ(p.coords, q.coords);
    EXPECT_EQ(a.agents[i].agent_id, b.agents[i].agent_id);
    EXPECT_EQ(a.agents[i].lidar_pose.ToArray(), b.agents[i].lidar_pose.ToArray());
    for (size_t j = 0; j < a.agents.size(); ++j) EXPECT_EQ(a.pairwise[i][j].m, b.pairwise[i][j].m);
    EXPECT_EQ(a.warp_to_ego[i].a, b.warp_to_ego[i].a) << "agent " << i;
  }
}

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

TEST_F(ModelForwardTest, NpzInputsGiveTheSameOutputsAsPthBitForBit) {
  ASSERT_TRUE(WriteModelInputs(frame_, Path("in.pth")).ok());
  ASSERT_TRUE(WriteModelInputs(frame_, Path("in.npz")).ok());
  EXPECT_TRUE(LooksLikeNpz(*ReadFile(Path("in.npz"))));
  EXPECT_FALSE(LooksLikeNpz(*ReadFile(Path("in.pth"))));
  auto from_pth = ReadModelInputs(Path("in.pth"), cfg_.preprocess);
  auto from_npz = ReadModelInputs(Path("in.npz"), cfg_.preprocess);
  ASSERT_TRUE(from_pth.ok()) << from_pth.status();
  ASSERT_TRUE(from_npz.ok()) << from_npz.status();
  ExpectSameFrame(*from_npz, *from_pth);
  ExpectSameFrame(*from_npz, frame_);

  torch::manual_seed(5);
  auto model = MakeDetector(cfg_);
  ASSERT_TRUE(model.ok()) << model.status();
  ASSERT_TRUE(SaveCheckpoint(**model, {}, Path("model.pth")).ok());
  ForwardOptions options;
  options.out = Path("out.pth");
  ASSERT_TRUE(RunModelForward(cfg_, Path("model.pth"), *from_pth, options).ok());
  options.out = Path("out.npz");
  ASSERT_TRUE(RunModelForward(cfg_, Path("model.pth"), *from_npz, options).ok());

  auto pth = UnpickleArchive(*ReadFile(Path("out.pth")), "out");
  ASSERT_TRUE(pth.ok()) << pth.status();
  auto npz = ReadNpz(Path("out.npz"));
  ASSERT_TRUE(npz.ok()) << npz.status();
  const auto dict = pth->toGenericDict();
  EXPECT_EQ(npz->size(), dict.size());
  EXPECT_TRUE(npz->count("cls") && npz->count("indices.0") && npz->count("pyramid.2.fused"));
  for (const auto& e : dict) {
    const std::string key = e.key().toStringRef();
    const torch::Tensor t = e.value().toTensor().contiguous();
    ASSERT_TRUE(npz->count(key)) << key;
    const NpyArray& a = npz->at(key);
    EXPECT_EQ(a.shape, t.sizes().vec()) << key;
    EXPECT_EQ(NpyItemSize(a.dtype), static_cast<int>(t.element_size())) << key;
    EXPECT_EQ(a.dtype == NpyDtype::kInt64, t.scalar_type() == torch::kInt64) << key;
    ASSERT_EQ(a.data.size(), t.nbytes()) << key;
    EXPECT_EQ(std::memcmp(a.data.data(), t.data_ptr(), t.nbytes()), 0) << key;
  }
}

TEST_F(ModelForwardTest, ReadsAnNpzThatNumpyWrote) {
  // tests/data/npz/make_fixtures.py: int64, int16 and uint8 indices, pairwise in Fortran order.
  const std::string path = "tests/data/npz/model_inputs.npz";
  auto f = ReadModelInputs(path, cfg_.preprocess);
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_EQ(f->agents.size(), 2u);
  EXPECT_EQ(f->agents[0].agent_id, 7);
  EXPECT_EQ(f->agents[1].agent_id, -2);
  EXPECT_EQ(f->agents[1].lidar_pose.x, 4);
  EXPECT_EQ(f->agents[1].lidar_pose.y, -1);
  const Pillars &a = f->agents[0].pillars, &b = f->agents[1].pillars;
  EXPECT_EQ(a.num_pillars, 2);
  EXPECT_EQ(a.max_points, 3);
  EXPECT_EQ(a.num_points, (std::vector<int32_t>{3, 1}));
  EXPECT_EQ(a.coords, (std::vector<int32_t>{0, 0, 31, 63}));
  EXPECT_EQ(b.num_points, (std::vector<int32_t>{2, 3}));
  EXPECT_EQ(b.coords, (std::vector<int32_t>{5, 9, 6, 9}));
  ASSERT_EQ(b.features.size(), 60u);
  for (size_t k = 0; k < 60; ++k) EXPECT_EQ(b.features[k], 0.25f * (60 + k)) << k;
  // pairwise[0][1] translates by (-4, 1), pairwise[1][0] back: the axes came out in order.
  EXPECT_EQ(f->pairwise[0][1](0, 3), -4);
  EXPECT_EQ(f->pairwise[0][1](1, 3), 1);
  EXPECT_EQ(f->pairwise[1][0](0, 3), 4);
  EXPECT_EQ(f->pairwise[1][0](1, 3), -1);
  EXPECT_EQ(f->pairwise[0][0].m, Mat4::Identity().m);
  EXPECT_EQ(f->warp_to_ego[1].a,
            NormalizedAffine(f->pairwise[0][1], 64, 32, cfg_.preprocess.voxel_size[0]).a);
  // Told by its content, whatever the name.
  fs::copy_file(path, Path("numpy_inputs.pth"));
  auto renamed = ReadModelInputs(Path("numpy_inputs.pth"), cfg_.preprocess);
  ASSERT_TRUE(renamed.ok()) << renamed.status();
  ExpectSameFrame(*renamed, *f);
}

TEST_F(ModelForwardTest, NpzInputsFortranOrderAndTheSameErrors) {
  ASSERT_TRUE(WriteModelInputs(frame_, Path("in.npz")).ok());
  auto written = ReadNpz(Path("in.npz"));
  ASSERT_TRUE(written.ok()) << written.status();
  {
    // agents.0.coords [300, 2] in column-major order reads as the same pillars.
    NpzArrays arrays = *written;
    NpyArray& c = arrays.at("agents.0.coords");
    const auto* rows = reinterpret_cast<const int32_t*>(c.data.data());
    std::vector<int32_t> cols(600);
    for (int i = 0; i < 300; ++i) {
      cols[i] = rows[2 * i];
      cols[300 + i] = rows[2 * i + 1];
    }
    c.data.assign(reinterpret_cast<const char*>(cols.data()), cols.size() * 4);
    c.fortran_order = true;
    ASSERT_TRUE(WriteNpz(Path("fortran.npz"), arrays).ok());
    auto f = ReadModelInputs(Path("fortran.npz"), cfg_.preprocess);
    ASSERT_TRUE(f.ok()) << f.status();
    ExpectSameFrame(*f, frame_);
  }
  {
    NpzArrays arrays = *written;
    arrays.erase("agents.1.coords");
    EXPECT_THAT(NpzErrorFor(arrays), HasSubstr("bad.npz: missing key agents.1.coords"));
  }
  {
    NpzArrays arrays = *written;
    NpyArray& f = arrays.at("agents.0.features");
    f.dtype = NpyDtype::kFloat64;
    f.data.resize(f.data.size() * 2);
    EXPECT_THAT(NpzErrorFor(arrays),
                HasSubstr("bad.npz: key agents.0.features: expected float32, got Double"));
  }
  {
    NpzArrays arrays = *written;
    arrays["extra"] = arrays.at("grid_size");
    EXPECT_THAT(NpzErrorFor(arrays), HasSubstr("bad.npz: unexpected key(s) extra"));
  }
  // A torch.save file named .npz still reads as one.
  ASSERT_TRUE(WriteModelInputs(frame_, Path("torch.pth")).ok());
  fs::copy_file(Path("torch.pth"), Path("torch.npz"));
  auto torch_named_npz = ReadModelInputs(Path("torch.npz"), cfg_.preprocess);
  ASSERT_TRUE(torch_named_npz.ok()) << torch_named_npz.status();
  // A damaged .npz gets the .npz reader's error.
  ASSERT_TRUE(WriteFileAtomic(Path("cut.npz"), "\x93NUMPY").ok());
  auto cut = ReadModelInputs(Path("cut.npz"), cfg_.preprocess);
  ASSERT_FALSE(cut.ok());
  EXPECT_THAT(cut.status().message(), HasSubstr("cut.npz: not a complete .npz (ZIP) archive"));
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
