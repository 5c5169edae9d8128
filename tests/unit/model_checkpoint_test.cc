// Checkpoints: bit-exact round trip, metadata, named errors, the codebook options, and
// Python's torch.load reading what we write (when Debian's python3-torch is present).
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/model/checkpoint.h"
#include "core/model/detector.h"
#include "core/model/model_summary.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/model_test_util.h"

namespace qv2x {
namespace {

using ::testing::HasSubstr;
using testing::MakeFrame;
using ::testing::Not;
using testing::TinyConfig;

namespace fs = std::filesystem;

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        fs::temp_directory_path() /
        absl::StrCat("qv2x_ckpt_", ::testing::UnitTest::GetInstance()->current_test_info()->name(),
                     "_", getpid());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  static Detector Build(const StageConfig& cfg, uint64_t seed) {
    torch::manual_seed(seed);
    auto m = MakeDetector(cfg);
    EXPECT_TRUE(m.ok()) << m.status();
    return *m;
  }

  fs::path dir_;
};

TEST_F(CheckpointTest, RoundTripIsBitExactWithMetadata) {
  StageConfig cfg = TinyConfig(true);
  cfg.source_yaml = "name: tiny\nmodel:\n  core_method: x\n";
  Detector a = Build(cfg, 1);
  // Move the BN statistics off their initial values.
  a->train();
  const CollatedFrame f = MakeFrame(cfg, {Pose{}}, 200, 1);
  ASSERT_TRUE(RunDetector(a, {&f}).ok());

  CheckpointMeta meta;
  meta.model = "heter_pyramid_collab_codebook_mc";
  meta.stage = 3;
  meta.epoch = 17;
  meta.config_yaml = cfg.source_yaml;
  ASSERT_TRUE(SaveCheckpoint(*a, meta, Path("a.pth")).ok());

  auto ckpt = ReadCheckpoint(Path("a.pth"));
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  EXPECT_EQ(ckpt->meta.format_version, kCheckpointFormatVersion);
  EXPECT_EQ(ckpt->meta.model, meta.model);
  EXPECT_EQ(ckpt->meta.stage, 3);
  EXPECT_EQ(ckpt->meta.epoch, 17);
  EXPECT_EQ(ckpt->meta.config_yaml, cfg.source_yaml);
  EXPECT_EQ(ckpt->meta.codebook_digest, a->codebook()->Digest());

  Detector b = Build(cfg, 2);
  EXPECT_NE(b->codebook()->Digest(), a->codebook()->Digest());
  ASSERT_TRUE(LoadStateDict(*b, *ckpt).ok());
  const NamedTensors sa = StateDict(*a), sb = StateDict(*b);
  ASSERT_EQ(sa.size(), sb.size());
  for (size_t i = 0; i < sa.size(); ++i) {
    EXPECT_EQ(sa[i].first, sb[i].first);
    EXPECT_EQ(sa[i].second.scalar_type(), sb[i].second.scalar_type()) << sa[i].first;
    EXPECT_TRUE(torch::equal(sa[i].second, sb[i].second)) << sa[i].first;
  }
  EXPECT_EQ(b->codebook()->Digest(), a->codebook()->Digest());
  // File order is state_dict order.
  ASSERT_EQ(ckpt->tensors.size(), sa.size());
  EXPECT_EQ(ckpt->tensors.front().first, "encoder_m1.pillar_vfe.pfn_layers.0.linear.weight");
  EXPECT_EQ(ckpt->tensors.back().first, "dir_head.bias");

  // Saving the loaded model gives the same bytes.
  auto bytes_a = SerializeCheckpoint(*a, meta), bytes_b = SerializeCheckpoint(*b, meta);
  ASSERT_TRUE(bytes_a.ok() && bytes_b.ok());
  EXPECT_EQ(*bytes_a, *bytes_b);
}

TEST_F(CheckpointTest, MismatchNamesTheTensorsAndChangesNothing) {
  StageConfig cfg = TinyConfig(false);
  ASSERT_TRUE(SaveCheckpoint(*Build(cfg, 1), {}, Path("a.pth")).ok());
  StageConfig other = cfg;
  other.postprocess.classes.pop_back();  // 2 classes → 4 anchors
  other.model.anchor_number = 4;
  Detector b = Build(other, 2);
  const torch::Tensor before = b->ego_fusion()->reg_head->weight.clone();
  auto ckpt = ReadCheckpoint(Path("a.pth"));
  ASSERT_TRUE(ckpt.ok());
  const absl::Status s = LoadStateDict(*b, *ckpt);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("cls_head.weight (model [4, 32, 1, 1], file [6, 32, 1, 1])"));
  EXPECT_THAT(s.message(), HasSubstr("reg_head.bias"));
  EXPECT_THAT(s.message(), HasSubstr("6 mis-shaped"));
  EXPECT_TRUE(torch::equal(before, b->ego_fusion()->reg_head->weight));  // all or nothing
}

TEST_F(CheckpointTest, CodebookOptions) {
  ASSERT_TRUE(SaveCheckpoint(*Build(TinyConfig(false), 1), {}, Path("s1.pth")).ok());
  ASSERT_TRUE(SaveCheckpoint(*Build(TinyConfig(true), 1), {}, Path("s3.pth")).ok());
  auto s1 = ReadCheckpoint(Path("s1.pth"));
  auto s3 = ReadCheckpoint(Path("s3.pth"));
  ASSERT_TRUE(s1.ok() && s3.ok());
  EXPECT_TRUE(s1->meta.codebook_digest.empty());

  // Stage 2 starts from stage 1: the codebook is missing unless skipped explicitly.
  Detector with_cb = Build(TinyConfig(true), 2);
  const std::string digest = with_cb->codebook()->Digest();
  const absl::Status missing = LoadStateDict(*with_cb, *s1);
  EXPECT_THAT(missing.message(), HasSubstr("1 missing: codebook.codewords.0"));
  LoadOptions skip;
  skip.skip_codebook = true;
  EXPECT_TRUE(LoadStateDict(*with_cb, *s1, skip).ok());
  EXPECT_EQ(with_cb->codebook()->Digest(), digest);  // untouched
  EXPECT_TRUE(torch::equal(with_cb->ego_fusion()->cls_head->weight, *s1->Find("cls_head.weight")));

  // A codebook checkpoint into a stage-1 model: unexpected unless allowed.
  Detector no_cb = Build(TinyConfig(false), 3);
  EXPECT_THAT(LoadStateDict(*no_cb, *s3).message(),
              HasSubstr("1 unexpected: codebook.codewords.0"));
  LoadOptions extra;
  extra.allow_unexpected = true;
  EXPECT_TRUE(LoadStateDict(*no_cb, *s3, extra).ok());

  // The agent half loads its part of a full checkpoint.
  auto agent = MakeAgentEncoder(TinyConfig(true));
  ASSERT_TRUE(agent.ok());
  EXPECT_THAT(LoadStateDict(**agent, *s3).message(), HasSubstr("unexpected: pyramid_backbone"));
  ASSERT_TRUE(LoadStateDict(**agent, *s3, extra).ok());
  EXPECT_EQ((*agent)->codebook->Digest(), s3->meta.codebook_digest);

  // A codebook that does not hash to its recorded digest is refused.
  Checkpoint tampered = *s3;
  for (auto& [name, t] : tampered.tensors) {
    if (name == "codebook.codewords.0") t = t.clone().add_(1e-3);
  }
  EXPECT_EQ(LoadStateDict(*with_cb, tampered).code(), absl::StatusCode::kDataLoss);
}

TEST_F(CheckpointTest, BadFilesAreErrorsNotCrashes) {
  EXPECT_EQ(ReadCheckpoint(Path("absent.pth")).status().code(), absl::StatusCode::kNotFound);
  std::ofstream(Path("junk.pth")) << "definitely not a pickle";
  auto junk = ReadCheckpoint(Path("junk.pth"));
  EXPECT_FALSE(junk.ok());
  EXPECT_THAT(junk.status().message(), HasSubstr("junk.pth"));
  EXPECT_THAT(junk.status().message(), Not(HasSubstr("\n")));
  const std::vector<char> list = torch::pickle_save(torch::IValue(std::vector<int64_t>{1, 2}));
  std::ofstream(Path("list.pth"), std::ios::binary).write(list.data(), list.size());
  EXPECT_THAT(ReadCheckpoint(Path("list.pth")).status().message(), HasSubstr("expected a dict"));
}

// LibTorch's reader checks no CRC: a flipped bit would load silently. ParseCheckpoint
// refuses it naming the tensor, and refuses a cut file as incomplete.
TEST_F(CheckpointTest, CorruptOrTruncatedFilesAreRefusedNamingTheDamage) {
  Detector m = Build(TinyConfig(true), 1);
  auto bytes = SerializeCheckpoint(*m, {});
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  for (size_t n : {size_t{0}, size_t{100}, bytes->size() / 2, bytes->size() - 1}) {
    const absl::Status st = ParseCheckpoint(bytes->substr(0, n)).status();
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << n;
    EXPECT_THAT(st.message(), HasSubstr("not a complete ZIP archive")) << n;
  }
  const torch::Tensor w = m->ego_fusion()->cls_head->weight.detach().contiguous();
  const std::string raw(static_cast<const char*>(w.data_ptr()), w.nbytes());
  const size_t at = bytes->find(raw);
  ASSERT_NE(at, std::string::npos);
  std::string flipped = *bytes;
  flipped[at + raw.size() / 2] ^= 0x10;
  const absl::Status st = ParseCheckpoint(flipped).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(st.message(), HasSubstr("tensor cls_head.weight: record archive/data/"));
  EXPECT_THAT(st.message(), HasSubstr("fails its CRC-32 check"));
  EXPECT_TRUE(ParseCheckpoint(*bytes).ok());
}

TEST_F(CheckpointTest, InitialCheckpointIsSeeded) {
  StageConfig cfg = TinyConfig(true);
  cfg.source_yaml = "tiny: yes\n";
  auto info = WriteInitialCheckpoint(cfg, 7, Path("a.pth"));
  ASSERT_TRUE(info.ok()) << info.status();
  ASSERT_TRUE(WriteInitialCheckpoint(cfg, 7, Path("b.pth")).ok());
  ASSERT_TRUE(WriteInitialCheckpoint(cfg, 8, Path("c.pth")).ok());
  auto a = ReadCheckpoint(Path("a.pth")), b = ReadCheckpoint(Path("b.pth")),
       c = ReadCheckpoint(Path("c.pth"));
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->meta.config_yaml, "tiny: yes\n");
  EXPECT_EQ(a->meta.stage, 0);
  EXPECT_EQ(a->meta.codebook_digest, b->meta.codebook_digest);
  EXPECT_EQ(a->meta.codebook_digest, info->codebook_digest);
  int64_t params = 0;
  for (const auto& [name, t] : a->tensors) {
    if (t.is_floating_point() && name.find("running_") == std::string::npos) params += t.numel();
  }
  EXPECT_EQ(params, info->parameters);
  EXPECT_NE(a->meta.codebook_digest, c->meta.codebook_digest);
  EXPECT_TRUE(torch::equal(*a->Find("shrink_conv.layers.0.double_conv.0.weight"),
                           *b->Find("shrink_conv.layers.0.double_conv.0.weight")));
}

bool PythonHasTorch() {
  return std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0;
}

int RunPython(const std::string& script_path) {
  return std::system(absl::StrCat("/usr/bin/python3 ", script_path).c_str());
}

TEST_F(CheckpointTest, PythonTorchLoadReadsNamesShapesAndMetadata) {
  if (!PythonHasTorch()) GTEST_SKIP() << "/usr/bin/python3 with torch is not available";
  StageConfig cfg = TinyConfig(true);
  Detector a = Build(cfg, 1);
  CheckpointMeta meta;
  meta.stage = 2;
  meta.model = "heter_pyramid_collab_codebook_mc";
  ASSERT_TRUE(SaveCheckpoint(*a, meta, Path("a.pth")).ok());
  // Expected names and shapes, one per line.
  {
    std::ofstream want(Path("want.txt"));
    for (const auto& [name, t] : StateDict(*a)) {
      want << name;
      for (int64_t d : t.sizes()) want << " " << d;
      want << "\n";
    }
  }
  std::ofstream(Path("check.py")) << R"PY(
import sys, torch
d = torch.load(sys.argv[1])
want = [l.split() for l in open(sys.argv[2]).read().splitlines()]
names = [k for k in d if not k.startswith("__qv2x__.")]
assert names == [w[0] for w in want], (names[:5], [w[0] for w in want][:5])
for w in want:
    assert list(d[w[0]].shape) == [int(x) for x in w[1:]], w
assert d["encoder_m1.pillar_vfe.pfn_layers.0.norm.num_batches_tracked"].dtype == torch.int64
meta = {k[9:]: bytes(v.tolist()).decode() for k, v in d.items() if k.startswith("__qv2x__.")}
assert meta["stage"] == "2" and meta["format_version"] == "1", meta
assert meta["model"] == "heter_pyramid_collab_codebook_mc", meta
assert len(meta["codebook_digest"]) == 16, meta
# And the other way: a state_dict saved by Python.
torch.save({"cls_head.weight": d["cls_head.weight"] * 2, "cls_head.bias": d["cls_head.bias"]}, sys.argv[3])
)PY";
  const std::string cmd = absl::StrCat(Path("check.py"), " ", Path("a.pth"), " ", Path("want.txt"),
                                       " ", Path("py.pth"));
  ASSERT_EQ(RunPython(cmd), 0);
  auto py = ReadCheckpoint(Path("py.pth"));
  ASSERT_TRUE(py.ok()) << py.status();
  ASSERT_EQ(py->tensors.size(), 2u);
  EXPECT_TRUE(torch::equal(*py->Find("cls_head.weight"), a->ego_fusion()->cls_head->weight * 2));
}

}  // namespace
}  // namespace qv2x
