// Codebook (SPEC §4): argmin against brute force, decode ∘ encode, training gradients,
// digest; the umgm variant's names, training and digest (its decoding against QuantV2X's
// equations: model_quantv2x_interop_test).
#include <torch/torch.h>

#include <cmath>
#include <map>

#include "core/model/codebook.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qv2x {
namespace {

using ::testing::HasSubstr;

CodebookConfig Cfg(int seg, int dict, int channel, int levels = 1,
                   const char* variant = kCodebookQv2x) {
  CodebookConfig c;
  c.seg_num = seg;
  c.dict_size = dict;
  c.channel = channel;
  c.residual_levels = levels;
  c.variant = variant;
  return c;
}

// Nearest codeword by explicit (x - c)² sums in double precision.
int64_t BruteNearest(const torch::Tensor& x /*[d]*/, const torch::Tensor& cb /*[k, d]*/,
                     double* best_out = nullptr, double* second_out = nullptr) {
  const auto xd = x.to(torch::kFloat64), cd = cb.to(torch::kFloat64);
  double best = INFINITY, second = INFINITY;
  int64_t arg = -1;
  for (int64_t j = 0; j < cd.size(0); ++j) {
    const double d = (cd[j] - xd).pow(2).sum().item<double>();
    if (d < best) {
      second = best;
      best = d;
      arg = j;
    } else if (d < second) {
      second = d;
    }
  }
  if (best_out) *best_out = best;
  if (second_out) *second_out = second;
  return arg;
}

TEST(Codebook, InitStdAndShape) {
  torch::manual_seed(0);
  Codebook cb(Cfg(1, 128, 64));
  ASSERT_EQ(cb->levels(), 1);
  EXPECT_EQ(cb->level(0).sizes(), (std::vector<int64_t>{1, 128, 64}));
  // N(0, sqrt(2 / (5 · 64))) = 0.0791; 8192 samples put the estimate within a few %.
  EXPECT_NEAR(cb->level(0).std().item<double>(), std::sqrt(2.0 / 320.0), 0.004);
  EXPECT_EQ(cb->named_parameters().size(), 1u);
  EXPECT_TRUE(cb->named_parameters().contains("codewords.0"));
}

TEST(Codebook, ArgminEqualsBruteForceNearest) {
  torch::manual_seed(1);
  Codebook cb(Cfg(2, 32, 8));  // two segments of 4 channels
  cb->eval();
  const torch::Tensor x = torch::randn({2, 8, 3, 5}) * 0.2;
  const torch::Tensor idx = cb->Encode(x);
  ASSERT_EQ(idx.sizes(), (std::vector<int64_t>{2, 2, 3, 5}));
  int compared = 0;
  for (int64_t n = 0; n < 2; ++n) {
    for (int64_t s = 0; s < 2; ++s) {
      for (int64_t i = 0; i < 3; ++i) {
        for (int64_t j = 0; j < 5; ++j) {
          const torch::Tensor v = x[n].narrow(0, 4 * s, 4).select(1, i).select(1, j);
          double best, second;
          const int64_t want = BruteNearest(v, cb->level(0)[s], &best, &second);
          const int64_t got = idx[n][s][i][j].item<int64_t>();
          if (second - best > 1e-5) {
            EXPECT_EQ(got, want) << n << " " << s << " " << i << " " << j;
            ++compared;
          } else {  // a float near-tie: the chosen word must be as near as the best
            const double d = (cb->level(0)[s][got].to(torch::kFloat64) - v.to(torch::kFloat64))
                                 .pow(2)
                                 .sum()
                                 .item<double>();
            EXPECT_NEAR(d, best, 1e-5);
          }
        }
      }
    }
  }
  EXPECT_GT(compared, 50);
}

TEST(Codebook, DecodeOfEncodeIsTheNearestCodewords) {
  torch::manual_seed(2);
  Codebook cb(Cfg(2, 16, 6));
  cb->eval();
  const torch::Tensor x = torch::randn({1, 6, 4, 4}) * 0.3;
  const torch::Tensor idx = cb->Encode(x);
  auto rec = cb->Decode(idx);
  ASSERT_TRUE(rec.ok()) << rec.status();
  for (int64_t s = 0; s < 2; ++s) {
    for (int64_t i = 0; i < 4; ++i) {
      for (int64_t j = 0; j < 4; ++j) {
        const torch::Tensor v = x[0].narrow(0, 3 * s, 3).select(1, i).select(1, j);
        const torch::Tensor want = cb->level(0)[s][BruteNearest(v, cb->level(0)[s])];
        const torch::Tensor got = (*rec)[0].narrow(0, 3 * s, 3).select(1, i).select(1, j);
        EXPECT_TRUE(torch::equal(got, want)) << s << " " << i << " " << j;
      }
    }
  }
  // Narrow integer types decode identically (what the wire carries).
  auto rec_u8 = cb->Decode(idx.to(torch::kUInt8));
  auto rec_i16 = cb->Decode(idx.to(torch::kInt16));
  ASSERT_TRUE(rec_u8.ok() && rec_i16.ok());
  EXPECT_TRUE(torch::equal(*rec_u8, *rec));
  EXPECT_TRUE(torch::equal(*rec_i16, *rec));
  // The eval forward is encode + decode.
  CodebookOutput f = cb->forward(x);
  EXPECT_TRUE(torch::equal(f.indices, idx));
  EXPECT_TRUE(torch::equal(f.reconstruction, *rec));
}

TEST(Codebook, ResidualLevelsAddUp) {
  torch::manual_seed(3);
  Codebook cb(Cfg(1, 8, 4, /*levels=*/2));
  cb->eval();
  const torch::Tensor x = torch::randn({1, 4, 2, 3});
  const torch::Tensor idx = cb->Encode(x);
  ASSERT_EQ(idx.sizes(), (std::vector<int64_t>{1, 2, 2, 3}));
  auto rec = cb->Decode(idx);
  ASSERT_TRUE(rec.ok());
  for (int64_t i = 0; i < 2; ++i) {
    for (int64_t j = 0; j < 3; ++j) {
      const torch::Tensor v = x[0].select(1, i).select(1, j);
      const int64_t a = BruteNearest(v, cb->level(0)[0]);
      EXPECT_EQ(idx[0][0][i][j].item<int64_t>(), a);
      const torch::Tensor r = v - cb->level(0)[0][a];
      const int64_t b = BruteNearest(r, cb->level(1)[0]);
      EXPECT_EQ(idx[0][1][i][j].item<int64_t>(), b);
      EXPECT_TRUE(torch::allclose((*rec)[0].select(1, i).select(1, j),
                                  cb->level(0)[0][a] + cb->level(1)[0][b]));
    }
  }
}

TEST(Codebook, DecodeRejectsBadIndices) {
  Codebook cb(Cfg(1, 16, 4));
  auto out_of_range = cb->Decode(torch::full({1, 1, 2, 2}, 16, torch::kInt64));
  EXPECT_THAT(out_of_range.status().message(), HasSubstr("[-1, 16)"));
  auto negative = cb->Decode(torch::full({1, 1, 2, 2}, -2, torch::kInt64));
  EXPECT_FALSE(negative.ok());
  auto shape = cb->Decode(torch::zeros({1, 2, 2, 2}, torch::kInt64));
  EXPECT_THAT(shape.status().message(), HasSubstr("expected shape [N, 1, H, W]"));
  auto dtype = cb->Decode(torch::zeros({1, 1, 2, 2}));
  EXPECT_THAT(dtype.status().message(), HasSubstr("integer"));
}

// A sparse message's unsent cells (kUnsentCode) decode to zero; the sent ones as usual.
TEST(Codebook, UnsentCellsDecodeToZero) {
  torch::manual_seed(5);
  Codebook cb(Cfg(2, 8, 4, /*levels=*/2));
  cb->eval();
  const torch::Tensor idx = cb->Encode(torch::randn({1, 4, 2, 3}));
  const torch::Tensor dense = *cb->Decode(idx);
  torch::Tensor sparse_idx = idx.clone();
  sparse_idx.select(2, 1).select(2, 2).fill_(kUnsentCode);  // cell (1, 2), every level
  auto sparse = cb->Decode(sparse_idx);
  ASSERT_TRUE(sparse.ok()) << sparse.status();
  EXPECT_TRUE(torch::equal((*sparse)[0].select(1, 1).select(1, 2), torch::zeros({4})));
  torch::Tensor keep = torch::ones({1, 1, 2, 3});
  keep[0][0][1][2] = 0;
  EXPECT_TRUE(torch::allclose(*sparse, dense * keep));
}

TEST(Codebook, TrainingIsHardStraightThroughAndGradientsReachCodewords) {
  torch::manual_seed(4);
  Codebook cb(Cfg(1, 8, 4));
  cb->train();
  const torch::Tensor x = (torch::randn({2, 4, 3, 3}) * 0.3).requires_grad_(true);
  CodebookOutput out = cb->forward(x);
  ASSERT_EQ(out.reconstruction.sizes(), x.sizes());
  // Hard one-hot: every reconstructed vector is one of the codewords.
  const torch::Tensor vecs = out.reconstruction.detach().permute({0, 2, 3, 1}).reshape({-1, 4});
  for (int64_t i = 0; i < vecs.size(0); ++i) {
    const torch::Tensor d = (cb->level(0)[0].detach() - vecs[i]).abs().amax(1);
    EXPECT_LT(d.min().item<float>(), 1e-6f) << i;
  }
  const torch::Tensor expected_loss = (out.reconstruction.detach() - x.detach()).pow(2).mean();
  EXPECT_NEAR(out.loss.item<float>(), expected_loss.item<float>(), 1e-6);
  (out.loss + out.reconstruction.sum()).backward();
  const torch::Tensor g = cb->level(0).grad();
  ASSERT_TRUE(g.defined());
  EXPECT_GT(g.abs().sum().item<float>(), 0.f);
  // The straight-through path also reaches the encoder's features.
  ASSERT_TRUE(x.grad().defined());
  EXPECT_GT(x.grad().abs().sum().item<float>(), 0.f);
}

TEST(Codebook, DigestNamesTheValues) {
  torch::manual_seed(5);
  Codebook a(Cfg(1, 16, 4));
  torch::manual_seed(5);
  Codebook b(Cfg(1, 16, 4));
  EXPECT_EQ(a->Digest(), b->Digest());
  EXPECT_EQ(a->Digest().size(), 16u);
  {
    torch::NoGradGuard g;
    b->level(0)[0][3][1] += 1e-7f;
  }
  EXPECT_NE(a->Digest(), b->Digest());
  // The same bytes in another shape are another codebook.
  Codebook c(Cfg(2, 16, 8));
  EXPECT_NE(c->Digest(), a->Digest());
}

TEST(Codebook, UmgmHoldsQuantv2xNamesAndTrainsEveryPart) {
  torch::manual_seed(6);
  Codebook cb(Cfg(2, 8, 8, 3, kCodebookUmgm));
  EXPECT_TRUE(cb->umgm());
  ASSERT_EQ(cb->levels(), 3);
  std::map<std::string, std::vector<int64_t>> names;
  for (const auto& p : cb->named_parameters()) names[p.key()] = p.value().sizes().vec();
  for (const auto& b : cb->named_buffers()) names[b.key()] = b.value().sizes().vec();
  EXPECT_EQ(names["_encoders.0._quantizer._codebook"], (std::vector<int64_t>{2, 8, 4}));
  EXPECT_EQ(names["_encoders.2._quantizer._temperature"], (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(names["_encoders.1._quantizer._bound.bound"], (std::vector<int64_t>{1}));
  EXPECT_EQ(names["_decoders.1._dequantizer._codebook"], (std::vector<int64_t>{2, 8, 4}));
  EXPECT_EQ(names["_freqEMA.2"], (std::vector<int64_t>{2, 8}));
  EXPECT_EQ(names["_encoders.1._latentHead.weight"], (std::vector<int64_t>{8, 8}));
  EXPECT_FALSE(names.count("_encoders.2._latentHead.weight"));  // the last level has none
  EXPECT_FALSE(names.count("_decoders.2._sideHead.weight"));
  // 3 usage buffers; per level 8 encoder tensors and 5 decoder tensors; latent and side
  // heads on two levels.
  EXPECT_EQ(names.size(), 3u + 3 * (8 + 5) + 2 * 2 + 2 * 2);
  // One tensor under three names, trained once.
  EXPECT_EQ(cb->named_parameters()["_encoders.1._quantizer._codebook"].data_ptr(),
            cb->named_buffers()["_decoders.1._dequantizer._codebook"].data_ptr());

  cb->train();
  const torch::Tensor x = torch::randn({2, 8, 3, 4});
  torch::optim::Adam opt(cb->parameters(), torch::optim::AdamOptions(1e-2));
  double first = 0, last = 0;
  for (int step = 0; step < 60; ++step) {
    opt.zero_grad();
    CodebookOutput out = cb->forward(x);
    out.loss.backward();
    if (step == 0) {
      for (const auto& p : cb->named_parameters()) {
        if (p.key().find("_bound") != std::string::npos) continue;
        ASSERT_TRUE(p.value().grad().defined()) << p.key();
        EXPECT_GT(p.value().grad().abs().sum().item<float>(), 0.f) << p.key();
      }
      first = out.loss.item<double>();
    }
    if (step >= 50) last += out.loss.item<double>() / 10;  // Gumbel picks are noisy
    opt.step();
  }
  EXPECT_LT(last, 0.7 * first) << first << " -> " << last;
  // Usage statistics follow the picks: each row a distribution over the 8 codewords.
  EXPECT_NEAR(cb->named_buffers()["_freqEMA.0"].sum(1)[0].item<float>(), 1.0f - std::pow(0.9f, 60),
              1e-3);

  // Eval: deterministic, and the digest covers the heads as well as the codewords.
  cb->eval();
  EXPECT_TRUE(torch::equal(cb->Encode(x), cb->Encode(x)));
  const std::string before = cb->Digest();
  {
    torch::NoGradGuard g;
    cb->named_parameters()["_decoders.0._restoreHead.bias"][3] += 1e-6f;
  }
  EXPECT_NE(cb->Digest(), before);
}

}  // namespace
}  // namespace qv2x
