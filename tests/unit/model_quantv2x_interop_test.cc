// QuantV2X's checkpoints: a state_dict with QuantV2X's names and shapes (the reference
// table, random values, DataParallel prefixes) imports into configs/quantv2x with every
// tensor accounted for, decodes as QuantV2X's residual codebook does (checked against the
// equations applied to the raw tensors), exports back to the same names and values, and
// anything missing, mis-shaped or inconsistent is refused by name.
#include <torch/torch.h>

#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <map>

#include "absl/strings/str_split.h"
#include "core/common/file_util.h"
#include "core/config/model_config.h"
#include "core/model/checkpoint.h"
#include "core/model/detector.h"
#include "core/model/quantv2x_interop.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qv2x {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

class Quantv2xInteropTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("qv2x_interop_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    auto cfg = LoadStageConfig("configs/quantv2x/stage3.yaml");
    ASSERT_TRUE(cfg.ok()) << cfg.status();
    cfg_ = *cfg;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  // QuantV2X's stage-1 and codebook tensors from the reference table, random values; the
  // three names of each codebook level share one value, as QuantV2X's module holds it.
  std::map<std::string, torch::Tensor> Reference() const {
    torch::manual_seed(7);
    std::ifstream in("tests/data/model/quantv2x_state_dict_v2x_real.tsv");
    EXPECT_TRUE(in.good());
    std::map<std::string, torch::Tensor> out, level;
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      std::vector<std::string> col = absl::StrSplit(line, '\t');
      const std::string& name = col[1];
      torch::Tensor t;
      if (col[2] == "scalar") {
        t = torch::tensor(int64_t{12});
      } else {
        std::vector<int64_t> shape;
        for (absl::string_view d : absl::StrSplit(col[2], 'x'))
          shape.push_back(std::stoll(std::string(d)));
        t = torch::randn(shape) * 0.2;
        if (name.find("running_var") != std::string::npos) t = t.abs() + 0.5;
      }
      const size_t cb = name.find("._codebook");
      if (cb != std::string::npos) {
        const std::string lvl = name.substr(0, name.find('.', name.find("coders.") + 7));
        const std::string key = lvl.substr(lvl.rfind('.') + 1);  // the level number
        if (!level.count(key)) level[key] = t;
        t = level[key];
      }
      out[name] = t;
    }
    return out;
  }

  void Save(const std::map<std::string, torch::Tensor>& tensors, const std::string& path,
            const std::string& prefix = "module.") const {
    c10::Dict<std::string, torch::Tensor> dict;
    for (const auto& [name, t] : tensors) dict.insert(prefix + name, t);
    const std::vector<char> bytes = torch::pickle_save(torch::IValue(dict));
    ASSERT_TRUE(WriteFileAtomic(path, std::string(bytes.begin(), bytes.end())).ok());
  }

  fs::path dir_;
  StageConfig cfg_;
};

torch::Tensor Linear(const std::map<std::string, torch::Tensor>& sd, const std::string& head,
                     const torch::Tensor& x) {
  return torch::addmm(sd.at(head + ".bias"), x, sd.at(head + ".weight").t());
}

TEST_F(Quantv2xInteropTest, ImportsEveryTensorAndDecodesAsQuantv2xDoes) {
  const auto ref = Reference();
  ASSERT_EQ(ref.size(), 432u);  // 382 stage-1 tensors + 50 of the codebook
  Save(ref, Path("quantv2x.pth"));
  auto r = ImportQuantV2xCheckpoint(cfg_, Path("quantv2x.pth"), Path("qv2x.pth"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->tensors, 432);
  EXPECT_EQ(r->prefixes_removed, 432);
  EXPECT_EQ(r->codebook_digest.size(), 16u);

  auto ckpt = ReadCheckpoint(Path("qv2x.pth"));
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  EXPECT_EQ(ckpt->meta.stage, 3);
  EXPECT_EQ(ckpt->meta.codebook_digest, r->codebook_digest);
  ASSERT_EQ(ckpt->tensors.size(), ref.size());
  for (const auto& [name, t] : ckpt->tensors) {
    ASSERT_TRUE(ref.count(name)) << name;
    EXPECT_TRUE(torch::equal(t, ref.at(name))) << name;
  }

  auto model = MakeDetector(cfg_);
  ASSERT_TRUE(model.ok()) << model.status();
  ASSERT_TRUE(LoadStateDict(**model, *ckpt).ok());
  Codebook cb = (*model)->codebook();
  cb->eval();
  EXPECT_EQ(cb->Digest(), r->codebook_digest);
  ASSERT_EQ(cb->levels(), 3);
  const torch::Tensor x = torch::randn({2, 64, 3, 5});
  const torch::Tensor idx = cb->Encode(x);  // [2, 3, 3, 5]
  ASSERT_EQ(idx.sizes(), (std::vector<int64_t>{2, 3, 3, 5}));
  auto recon = cb->Decode(idx);
  ASSERT_TRUE(recon.ok()) << recon.status();

  // The reference's equations on the raw tensors (one segment of 64 channels).
  auto C = [&](int l) {
    return ref.at("codebook._encoders." + std::to_string(l) + "._quantizer._codebook")[0];
  };
  auto head = [](const std::string& side, int l, const std::string& name) {
    return "codebook._" + side + "." + std::to_string(l) + "._" + name;
  };
  torch::Tensor xi = x.permute({0, 2, 3, 1}).reshape({-1, 64});
  std::vector<torch::Tensor> codes;
  for (int l = 0; l < 3; ++l) {
    const torch::Tensor z = Linear(ref, head("encoders", l, "latentStageEncoder"), xi);
    const torch::Tensor q = Linear(ref, head("encoders", l, "quantizationHead"), z);
    const torch::Tensor code = torch::cdist(q, C(l)).argmin(1);
    codes.push_back(code);
    if (l < 2) xi = Linear(ref, head("encoders", l, "latentHead"), z) - C(l).index_select(0, code);
  }
  torch::Tensor rr;
  for (int l = 2; l >= 0; --l) {
    torch::Tensor q =
        Linear(ref, head("decoders", l, "dequantizationHead"), C(l).index_select(0, codes[l]));
    if (l < 2) q = q + Linear(ref, head("decoders", l, "sideHead"), rr);
    rr = Linear(ref, head("decoders", l, "restoreHead"), q);
  }
  for (int l = 0; l < 3; ++l) {
    EXPECT_TRUE(torch::equal(idx.select(1, l).reshape(-1), codes[l])) << "level " << l;
  }
  const torch::Tensor want = rr.view({2, 3, 5, 64}).permute({0, 3, 1, 2});
  EXPECT_TRUE(torch::allclose(*recon, want, 1e-4, 1e-5))
      << (*recon - want).abs().max().item<float>();

  // An unsent cell (a sparse message) decodes to the empty feature, not to the heads' bias.
  torch::Tensor sparse = idx.clone();
  sparse.index_put_({0, torch::indexing::Slice(), 1, 2}, kUnsentCode);
  auto with_hole = cb->Decode(sparse);
  ASSERT_TRUE(with_hole.ok()) << with_hole.status();
  EXPECT_EQ(with_hole->index({0, torch::indexing::Slice(), 1, 2}).abs().sum().item<float>(), 0);
  EXPECT_TRUE(torch::allclose(with_hole->index({1}), want.index({1}), 1e-4, 1e-5));
}

TEST_F(Quantv2xInteropTest, ExportsQuantv2xNamesAndValues) {
  const auto ref = Reference();
  Save(ref, Path("quantv2x.pth"), "");  // no DataParallel prefix this time
  auto imp = ImportQuantV2xCheckpoint(cfg_, Path("quantv2x.pth"), Path("qv2x.pth"));
  ASSERT_TRUE(imp.ok()) << imp.status();
  EXPECT_EQ(imp->prefixes_removed, 0);
  auto exp = ExportQuantV2xCheckpoint(cfg_, Path("qv2x.pth"), Path("back.pth"));
  ASSERT_TRUE(exp.ok()) << exp.status();
  EXPECT_EQ(exp->tensors, 432);
  auto bytes = ReadFile(Path("back.pth"));
  ASSERT_TRUE(bytes.ok());
  const std::vector<char> raw(bytes->begin(), bytes->end());
  const c10::Dict<c10::IValue, c10::IValue> dict = torch::pickle_load(raw).toGenericDict();
  EXPECT_EQ(dict.size(), ref.size());  // no qv2x metadata entries
  for (const auto& e : dict) {
    const std::string name = e.key().toStringRef();
    ASSERT_TRUE(ref.count(name)) << name;
    EXPECT_TRUE(torch::equal(e.value().toTensor(), ref.at(name))) << name;
  }
}

TEST_F(Quantv2xInteropTest, RefusesWhatDoesNotFitByName) {
  auto ref = Reference();
  auto refused = [&](const std::map<std::string, torch::Tensor>& sd) {
    Save(sd, Path("bad.pth"));
    return ImportQuantV2xCheckpoint(cfg_, Path("bad.pth"), Path("out.pth")).status();
  };
  auto missing = ref;
  missing.erase("codebook._decoders.2._restoreHead.bias");
  absl::Status st = refused(missing);
  EXPECT_THAT(std::string(st.message()),
              HasSubstr("1 missing: codebook._decoders.2._restoreHead.bias"));
  EXPECT_THAT(std::string(st.message()), HasSubstr("bad.pth (for config quantv2x_stage3)"));

  auto extra = ref;
  extra["codebook._decoders.2._sideHead.weight"] = torch::zeros({64, 64});
  EXPECT_THAT(std::string(refused(extra).message()),
              HasSubstr("1 unexpected: codebook._decoders.2._sideHead.weight"));

  auto narrow = ref;
  narrow["cls_head.weight"] = torch::zeros({6, 256, 1, 1});
  narrow["cls_head.bias"] = torch::zeros({6});
  EXPECT_THAT(std::string(refused(narrow).message()),
              HasSubstr("cls_head.weight (model [18, 256, 1, 1], file [6, 256, 1, 1])"));

  auto split = ref;
  split["codebook._decoders.1._dequantizer._codebook"] = torch::randn({1, 128, 64});
  EXPECT_THAT(std::string(refused(split).message()),
              HasSubstr("which the model holds as the same tensor"));
  EXPECT_FALSE(fs::exists(Path("out.pth")));
}

}  // namespace
}  // namespace qv2x
