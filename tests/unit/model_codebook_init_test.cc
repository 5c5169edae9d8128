// The codebook's k-means start: features drawn around a few centres are reconstructed
// almost exactly afterwards, far better than from the random init; empty cells are ignored.
#include "core/config/model_config.h"
#include "core/model/codebook.h"
#include "gtest/gtest.h"

namespace qv2x {
namespace {

// [1, C, H, W] features: every position is one of `centres` plus small noise.
torch::Tensor ClusteredFeatures(const torch::Tensor& centres, int64_t h, int64_t w) {
  const int64_t k = centres.size(0);
  const torch::Tensor pick = torch::randint(k, {h * w});
  torch::Tensor rows =
      centres.index_select(0, pick) + 0.01 * torch::randn({h * w, centres.size(1)});
  return rows.t().reshape({1, centres.size(1), h, w}).contiguous();
}

double ReconstructionMse(Codebook& cb, const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  cb->eval();
  auto decoded = cb->Decode(cb->Encode(x));
  EXPECT_TRUE(decoded.ok()) << decoded.status();
  return (decoded->contiguous() - x).pow(2).mean().item<double>();
}

TEST(CodebookInitTest, KMeansStartFitsClusteredFeatures) {
  torch::manual_seed(5);
  CodebookConfig cfg;
  cfg.seg_num = 2;
  cfg.dict_size = 8;
  cfg.channel = 16;
  cfg.residual_levels = 1;
  const torch::Tensor centres = 3.0 * torch::randn({8, 16});
  const torch::Tensor x = ClusteredFeatures(centres, 16, 16);
  Codebook cb(cfg);
  const double before = ReconstructionMse(cb, x);
  cb->InitFromFeatures(x);
  const double after = ReconstructionMse(cb, x);
  EXPECT_GT(before, 1.0);
  EXPECT_LT(after, 0.01) << "before " << before;
}

TEST(CodebookInitTest, ResidualLevelsReduceTheErrorFurtherAndZerosAreSkipped) {
  torch::manual_seed(6);
  CodebookConfig cfg;
  cfg.seg_num = 1;
  cfg.dict_size = 4;
  cfg.channel = 8;
  cfg.residual_levels = 2;
  torch::Tensor x = torch::randn({1, 8, 12, 12});
  x.index_put_({torch::indexing::Slice(), torch::indexing::Slice(), torch::indexing::Slice(0, 6)},
               0.0);  // half the map empty
  Codebook one_level(CodebookConfig{1, 4, 8, 1});
  one_level->InitFromFeatures(x);
  Codebook two_levels(cfg);
  two_levels->InitFromFeatures(x);
  const torch::Tensor occupied =
      x.index({torch::indexing::Slice(), torch::indexing::Slice(), torch::indexing::Slice(6, 12)});
  EXPECT_LT(ReconstructionMse(two_levels, occupied), ReconstructionMse(one_level, occupied));
}

}  // namespace
}  // namespace qv2x
