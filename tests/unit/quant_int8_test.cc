// The INT8 path: integer convs / linears against a fake-quant FP32 reference (within one
// output step), the artifact round trip (bit-identical integer weights, same outputs),
// and the INT8 model tracking the simulated model it was exported from.
#include <torch/torch.h>

#include <filesystem>

#include "core/model/checkpoint.h"
#include "core/quant/int8_artifact.h"
#include "core/quant/int8_model.h"
#include "core/quant/int8_ops.h"
#include "core/quant/int8_runtime.h"
#include "core/quant/ptq_pipeline.h"
#include "gtest/gtest.h"
#include "tests/unit/quant_test_util.h"

namespace qv2x::quant {
namespace {

Int8Layer ToInt8(const at::Tensor& w, const at::Tensor& b, const WeightQuant& q) {
  Int8Layer l;
  l.shape = w.sizes().vec();
  l.bits = q.bits;
  l.levels = WeightLevels(w, q).to(torch::kUInt8);
  l.scale = q.scale;
  l.zero_point = q.zero_point.to(torch::kInt32);
  l.bias = b;
  return l;
}

// The grid the ops run (EngineActQuant: 7 bits for 8 on CPUs without VNNI).
ActQuant RangeOf(const at::Tensor& x, int bits = 8) {
  return EngineActQuant(ActQuantFromRange(x.min().item<double>(), x.max().item<double>(), bits));
}

TEST(Int8Ops, ConvMatchesFakeQuantWithinOneOutputStep) {
  ASSERT_TRUE(SelectInt8Engine().ok());
  torch::manual_seed(0);
  torch::NoGradGuard g;
  struct Case {
    int64_t in, out, k, stride, groups;
    bool relu;
    int wbits, abits;
  };
  for (const Case& c : {Case{16, 32, 3, 1, 1, true, 8, 8}, Case{16, 32, 3, 2, 1, false, 8, 8},
                        Case{32, 32, 3, 2, 8, true, 4, 8}, Case{16, 8, 1, 1, 1, false, 3, 8},
                        Case{16, 16, 3, 1, 1, true, 8, 4}}) {
    SCOPED_TRACE(::testing::Message() << "k" << c.k << " s" << c.stride << " g" << c.groups << " W"
                                      << c.wbits << "A" << c.abits);
    const at::Tensor x = torch::randn({1, c.in, 20, 24}).contiguous(at::MemoryFormat::ChannelsLast);
    const at::Tensor w = torch::randn({c.out, c.in / c.groups, c.k, c.k}) * 0.2;
    const at::Tensor b = torch::randn({c.out}) * 0.1;
    const WeightQuant wq = FitWeightQuant(w, c.wbits, ScaleMethod::kMse);
    const ActQuant in = RangeOf(x, c.abits);
    const at::Tensor xq = FakeQuantAct(x, in);
    at::Tensor ref = torch::conv2d(xq, DequantizeWeight(WeightLevels(w, wq), wq), b, c.stride,
                                   c.k / 2, 1, c.groups);
    if (c.relu) ref = ref.relu();
    const ActQuant out = RangeOf(ref, c.abits);
    LayerSpec spec;
    spec.name = "conv";
    spec.kind = LayerKind::kConv;
    spec.in = c.in;
    spec.out = c.out;
    spec.kernel = c.k;
    spec.stride = c.stride;
    spec.padding = c.k / 2;
    spec.groups = c.groups;
    spec.relu = c.relu;
    auto packed = PackLayer(spec, ToInt8(w, b, wq));
    ASSERT_TRUE(packed.ok()) << packed.status();
    const at::Tensor y = QConv(Quantize(x, in), *packed, out).dequantize();
    const at::Tensor ref_q = FakeQuantAct(ref, out);
    EXPECT_EQ(y.sizes(), ref_q.sizes());
    EXPECT_LE((y - ref_q).abs().max().item<double>(), out.scale * 1.001);
    // Most outputs land on exactly the same level.
    EXPECT_GT(((y - ref_q).abs() < out.scale * 0.5).to(torch::kFloat).mean().item<double>(), 0.95);
  }
}

TEST(Int8Ops, LinearDeconvAddAndDynamicLinear) {
  ASSERT_TRUE(SelectInt8Engine().ok());
  torch::manual_seed(1);
  torch::NoGradGuard g;
  // Linear + ReLU.
  const at::Tensor x = torch::randn({300, 10});
  const at::Tensor w = torch::randn({24, 10}) * 0.3, b = torch::randn({24});
  const WeightQuant wq = FitWeightQuant(w, 8, ScaleMethod::kMinMax);
  const ActQuant in = RangeOf(x);
  const at::Tensor ref =
      torch::linear(FakeQuantAct(x, in), DequantizeWeight(WeightLevels(w, wq), wq), b).relu();
  const ActQuant out = RangeOf(ref);
  LayerSpec spec;
  spec.kind = LayerKind::kLinear;
  spec.in = 10;
  spec.out = 24;
  spec.relu = true;
  auto lin = PackLayer(spec, ToInt8(w, b, wq));
  ASSERT_TRUE(lin.ok()) << lin.status();
  const at::Tensor y = QLinear(Quantize(x, in), *lin, out).dequantize();
  EXPECT_LE((y - FakeQuantAct(ref, out)).abs().max().item<double>(), out.scale * 1.001);
  // FP32-output linear (the heads): int8 weights, input quantized per call.
  spec.relu = false;
  auto dyn = PackLayer(spec, ToInt8(w, b, wq));
  ASSERT_TRUE(dyn.ok());
  const at::Tensor yd = QLinearDynamic(x, *dyn);
  const at::Tensor refd = torch::linear(x, DequantizeWeight(WeightLevels(w, wq), wq), b);
  EXPECT_LT((yd - refd).abs().max().item<double>(), 0.1 * refd.abs().max().item<double>());

  // Deconv (kernel = stride = 2) as 1x1 conv + pixel shuffle.
  const at::Tensor m = torch::rand({1, 8, 6, 5}).contiguous(at::MemoryFormat::ChannelsLast);
  const at::Tensor wd = torch::randn({4 * 4, 8, 1, 1}) * 0.3, bd = torch::randn({16}) * 0.1;
  const WeightQuant wdq = FitWeightQuant(wd, 8, ScaleMethod::kMinMax);
  const ActQuant min = RangeOf(m);
  const at::Tensor refd2 = torch::pixel_shuffle(
      torch::conv2d(FakeQuantAct(m, min), DequantizeWeight(WeightLevels(wd, wdq), wdq), bd).relu(),
      2);
  const ActQuant dout = RangeOf(refd2);
  LayerSpec ds;
  ds.kind = LayerKind::kDeconv;
  ds.in = 8;
  ds.out = 4;
  ds.kernel = ds.stride = 2;
  ds.relu = true;
  auto dp = PackLayer(ds, ToInt8(wd, bd, wdq));
  ASSERT_TRUE(dp.ok()) << dp.status();
  const at::Tensor yt = QConv(Quantize(m, min), *dp, dout).dequantize();
  EXPECT_EQ(yt.sizes(), (std::vector<int64_t>{1, 4, 12, 10}));
  EXPECT_LE((yt - FakeQuantAct(refd2, dout)).abs().max().item<double>(), dout.scale * 1.001);

  // add + ReLU requantizes two grids onto a third.
  const at::Tensor a = torch::randn({1, 4, 5, 5}), c = torch::randn({1, 4, 5, 5});
  const ActQuant qa = RangeOf(a), qc = RangeOf(c);
  const at::Tensor sum = (FakeQuantAct(a, qa) + FakeQuantAct(c, qc)).relu();
  const ActQuant qs = RangeOf(sum);
  const at::Tensor ys = QAddRelu(Quantize(a, qa), Quantize(c, qc), qs).dequantize();
  EXPECT_LE((ys - FakeQuantAct(sum, qs)).abs().max().item<double>(), qs.scale * 1.001);
}

class Int8ModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cfg_ = new StageConfig(testing::TinyStage3());
    model_ = new Detector(testing::TinyDetector(*cfg_, 11));
    frames_ = new std::vector<Sample>(testing::TinyFrames(*cfg_, 3));
  }
  static void TearDownTestSuite() {
    delete frames_;
    delete model_;
    delete cfg_;
  }
  static PtqRun Calibrate(int wbits) {
    PtqOptions o;
    o.n_bits_w = wbits;
    o.reconstruct = false;
    auto run = RunPtq(*cfg_, StateDict(**model_), testing::Collated(*frames_), o, nullptr, nullptr);
    EXPECT_TRUE(run.ok()) << run.status();
    return std::move(*run);
  }
  static StageConfig* cfg_;
  static Detector* model_;
  static std::vector<Sample>* frames_;
};
StageConfig* Int8ModelTest::cfg_ = nullptr;
Detector* Int8ModelTest::model_ = nullptr;
std::vector<Sample>* Int8ModelTest::frames_ = nullptr;

TEST_F(Int8ModelTest, ArtifactRoundTripIsBitIdentical) {
  std::map<int, int64_t> file_bytes;
  int64_t weights = 0;
  for (int bits : {8, 4, 3}) {
    SCOPED_TRACE(::testing::Message() << "W" << bits);
    PtqRun run = Calibrate(bits);
    const Int8Artifact a = ExportInt8Artifact(*run.net, cfg_->source_yaml, PtqOptions(), {});
    auto bytes = SerializeInt8Artifact(a);
    ASSERT_TRUE(bytes.ok()) << bytes.status();
    auto back = ParseInt8Artifact(*bytes);
    ASSERT_TRUE(back.ok()) << back.status();
    ASSERT_EQ(back->layers.size(), a.layers.size());
    for (const auto& [name, l] : a.layers) {
      const Int8Layer& r = back->layers.at(name);
      EXPECT_EQ(r.shape, l.shape) << name;
      EXPECT_EQ(r.bits, bits) << name;
      EXPECT_TRUE(torch::equal(r.levels, l.levels)) << name;
      EXPECT_TRUE(torch::equal(r.scale, l.scale)) << name;
      EXPECT_TRUE(torch::equal(r.zero_point, l.zero_point)) << name;
      EXPECT_TRUE(torch::equal(r.bias, l.bias)) << name;
    }
    for (const auto& [name, q] : a.acts) {
      EXPECT_EQ(back->acts.at(name).scale, q.scale) << name;
      EXPECT_EQ(back->acts.at(name).zero_point, q.zero_point) << name;
    }
    EXPECT_EQ(back->codebook_digest, a.codebook_digest);
    EXPECT_EQ(back->PayloadBytes(), a.PayloadBytes());
    file_bytes[bits] = static_cast<int64_t>(bytes->size());
    weights = 0;
    for (const auto& [name, l] : a.layers) weights += l.levels.numel();
  }
  // Packed below 8 bits: b/8 bytes per weight (plus per-entry overhead of the zip file).
  EXPECT_LT(file_bytes[4], file_bytes[8] - weights * 4 / 8 + 4096);
  EXPECT_LT(file_bytes[3], file_bytes[4] - weights / 8 + 4096);
}

TEST_F(Int8ModelTest, LoadedModelsGiveTheSameOutputsAndDigest) {
  PtqRun run = Calibrate(8);
  const Int8Artifact a = ExportInt8Artifact(*run.net, cfg_->source_yaml, PtqOptions(), {});
  const std::string path = ::testing::TempDir() + "/quant_int8_test.int8.pth";
  ASSERT_TRUE(SaveInt8Artifact(a, path).ok());
  auto direct = Int8Net::Create(a);
  ASSERT_TRUE(direct.ok()) << direct.status();
  auto enc = Int8AgentEncoder::Load(path);
  ASSERT_TRUE(enc.ok()) << enc.status();
  auto fusion = Int8EgoFusion::Load(path);
  ASSERT_TRUE(fusion.ok()) << fusion.status();
  EXPECT_EQ((*enc)->codebook_digest(), CodebookDigestOf(**model_));
  EXPECT_EQ((*fusion)->codebook_digest(), CodebookDigestOf(**model_));
  EXPECT_EQ((*enc)->weight_bytes(), a.PayloadBytes());
  EXPECT_EQ((*enc)->config().name, cfg_->name);

  const CollatedFrame& f = frames_->front().collated;
  std::vector<AgentMessage> messages;
  for (size_t i = 0; i < f.agents.size(); ++i) {
    auto idx = (*enc)->EncodeIndices(f.agents[i].pillars);
    ASSERT_TRUE(idx.ok()) << idx.status();
    auto feats = (*direct)->AgentFeatures(f.agents[i].pillars);
    ASSERT_TRUE(feats.ok());
    EXPECT_TRUE(torch::equal(*idx, (*direct)->Encode(*feats)[0]));
    EXPECT_EQ(idx->scalar_type(), torch::kInt64);
    EXPECT_EQ(idx->dim(), 3);
    messages.push_back({at::Tensor(), *idx, f.warp_to_ego[i]});
  }
  auto out = (*fusion)->Fuse(messages);
  ASSERT_TRUE(out.ok()) << out.status();
  auto ref = (*direct)->Fuse(messages);
  ASSERT_TRUE(ref.ok());
  EXPECT_TRUE(torch::equal(out->cls, ref->cls));
  EXPECT_TRUE(torch::equal(out->reg, ref->reg));
  EXPECT_EQ(out->cls.sizes(), (std::vector<int64_t>{1, 6, 16, 32}));
  EXPECT_EQ(out->occupancy.size(), 3u);
  std::filesystem::remove(path);

  EXPECT_FALSE(Int8AgentEncoder::Load(path).ok());  // gone
  Pillars bad = f.agents[0].pillars;
  bad.grid_w += 1;
  EXPECT_FALSE((*enc)->EncodeIndices(bad).ok());
}

// The integer kernels compute what the simulated model computes, up to requantization
// rounding: backbone features within a few output steps, heads close.
TEST_F(Int8ModelTest, RuntimeTracksTheSimulatedModel) {
  PtqRun run = Calibrate(8);
  SimNet& net = *run.net;
  const Int8Artifact a = ExportInt8Artifact(net, cfg_->source_yaml, PtqOptions(), {});
  auto int8 = Int8Net::Create(a);
  ASSERT_TRUE(int8.ok()) << int8.status();
  torch::NoGradGuard g;
  const double step = net.acts.at(net.agent.back().spec->output_act).q.scale;
  for (const Sample& s : *frames_) {
    std::vector<at::Tensor> maps;
    std::vector<AgentMessage> messages;
    for (size_t i = 0; i < s.collated.agents.size(); ++i) {
      const Pillars& p = s.collated.agents[i].pillars;
      const at::Tensor sim = net.AgentForward(MakePillarBatch({&p}), SimCtx::Quant());
      auto real = (*int8)->AgentFeatures(p);
      ASSERT_TRUE(real.ok()) << real.status();
      const at::Tensor diff = (sim - *real).abs();
      EXPECT_LT(diff.mean().item<double>(), 0.1 * step);
      EXPECT_LE(diff.max().item<double>(), 4 * step);
      const at::Tensor idx = net.EncodeDecode(sim).first;
      maps.push_back(net.EncodeDecode(sim).second);
      messages.push_back({at::Tensor(), idx[0], s.collated.warp_to_ego[i]});
    }
    const SimHeads sim = net.EgoForward(maps, WarpTensor(s.collated.warp_to_ego), SimCtx::Quant());
    auto real = (*int8)->Fuse(messages);
    ASSERT_TRUE(real.ok()) << real.status();
    const double range = sim.reg.abs().max().item<double>();
    EXPECT_LT((sim.reg - real->reg).abs().mean().item<double>(), 0.02 * range);
    EXPECT_LT((sim.cls - real->cls).abs().mean().item<double>(),
              0.02 * sim.cls.abs().max().item<double>());
  }
}

}  // namespace
}  // namespace qv2x::quant
