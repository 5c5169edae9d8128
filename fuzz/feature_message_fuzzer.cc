// The fusion service's feature-message decoder: wire bytes -> qv2x.v1.FeatureMessage ->
// MessageValidator (the tiny preset's grid and codebook, the tiny scene's agents) -> a
// frame of the FrameAssembler. Seeds: real messages of the tiny scene's agents, encoded by
// the agent encoder (FP32 and INT8) and the codec (bitpack and zstd). What the validator
// accepts must be safe to fuse: a full index map within the codebook and a finite warp.
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/geometry/transform.h"
#include "core/model/intra_op_threads.h"
#include "core/model/runtime_model.h"
#include "core/sim/scene_config.h"
#include "fusion_server/frame_assembler.h"
#include "fusion_server/message_validator.h"
#include "fuzz/fuzz_check.h"
#include "fuzz/fuzz_clock.h"

namespace {

using qv2x::fusion::Clock;

struct Fixture {
  qv2x::fusion::ValidatorOptions options;
  std::unique_ptr<qv2x::fusion::MessageValidator> validator;
};

const Fixture& Get() {
  static const Fixture* f = [] {
    const std::string root = QV2X_SOURCE_DIR;
    auto* fx = new Fixture;
    absl::StatusOr<qv2x::RuntimeModel> model =
        qv2x::LoadRuntimeModel(root + "/configs/tiny/stage3.yaml", "");
    QV2X_FUZZ_CHECK(model.ok(), "the tiny model");
    absl::StatusOr<qv2x::sim::SceneConfig> scene =
        qv2x::sim::LoadSceneConfig(root + "/configs/scenes/tiny.yaml");
    QV2X_FUZZ_CHECK(scene.ok(), "the tiny scene");
    qv2x::fusion::ValidatorOptions& o = fx->options;
    for (const auto& a : scene->agents) o.agents.insert(a.id);
    // The grid as the fusion engine derives it: backbone strides shrink the pillar grid.
    const qv2x::StageConfig& cfg = model->cfg;
    int stride = 1;
    for (int s : cfg.model.backbone.layer_strides) stride *= s;
    const qv2x::CodebookConfig& cb = cfg.model.codebook;
    o.grid = {cb.residual_levels * cb.seg_num, cfg.preprocess.grid_h() / stride,
              cfg.preprocess.grid_w() / stride, cb.dict_size};
    o.codebooks = {model->codebook_digest};
    o.feature_channels = cb.channel;
    o.max_message_bytes = 4 << 20;  // fusion_server/main.cc's defaults
    o.max_decoded_bytes = 16 << 20;
    fx->validator = std::make_unique<qv2x::fusion::MessageValidator>(o);
    return fx;
  }();
  return *f;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  qv2x::SetIntraOpThreads(1);
  Get();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Fixture& fx = Get();
  qv2x::v1::FeatureMessage msg;
  if (!msg.ParseFromArray(data, static_cast<int>(size))) return 0;
  qv2x::fusion::ReceivedMessage received;
  qv2x::fusion::Rejection why;
  if (!fx.validator->Validate(msg, qv2x::fuzz::kNowNs, &received, &why)) {
    QV2X_FUZZ_CHECK(why.reason != qv2x::v1::REJECT_REASON_UNSPECIFIED, "a refusal without reason");
    QV2X_FUZZ_CHECK(why.detail.size() <= 1024, "a refusal that echoes unbounded input");
    return 0;
  }
  const qv2x::codec::IndexGrid& g = fx.options.grid;
  QV2X_FUZZ_CHECK(static_cast<int64_t>(received.indices.size()) == g.cells(), "index map size");
  for (int32_t v : received.indices) {
    QV2X_FUZZ_CHECK(v >= 0 && v < g.dict_size, "an index outside the codebook was accepted");
  }
  const qv2x::Mat4 m = qv2x::PoseToMatrix(received.lidar_pose);
  for (double v : m.m) QV2X_FUZZ_CHECK(std::isfinite(v), "a pose with a non-finite warp");

  // A fresh assembler takes it and closes its frame once the deadline has passed.
  qv2x::fusion::AssemblerOptions ao;
  ao.expected_agents.assign(fx.options.agents.begin(), fx.options.agents.end());
  const Clock::time_point start = Clock::now();
  received.arrival = start;
  qv2x::fusion::FrameAssembler assembler(ao, start);
  const uint64_t frame = received.frame_id;
  QV2X_FUZZ_CHECK(assembler.Add(std::move(received)) == qv2x::fusion::AddResult::kAccepted,
                  "the first message of a fresh assembler");
  const auto closed = assembler.TakeDue(start + ao.startup_grace + ao.deadline);
  QV2X_FUZZ_CHECK(
      closed.size() == 1 && closed[0].frame_id == frame && closed[0].messages.size() == 1,
      "the frame closes at its deadline with the message");
  return 0;
}
