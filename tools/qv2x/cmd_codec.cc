// `qv2x codec train-dict`: a zstd dictionary for a model's index maps (issue 13), trained
// with zstd's own builder on the maps its agent encoder produces for a scene's frames.
#include <torch/torch.h>
#include <zstd.h>

#include <cstdio>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/codec/index_codec.h"
#include "core/codec/zstd_dictionary.h"
#include "core/common/file_util.h"
#include "core/common/status_macros.h"
#include "core/model/runtime_model.h"
#include "core/training/frame_source.h"
#include "core/voxel/cell_selection.h"
#include "core/voxel/pillars.h"
#include "tools/qv2x/command.h"

namespace qv2x::cli {
namespace {

constexpr char kUsage[] =
    R"(usage: qv2x codec train-dict --config FILE --checkpoint CKPT --scene SCENE.yaml
                            --out FILE [--frames N] [--sparse SPAN[+DIL]] [--max-bytes B]
                            [--level L] [--eval-scene SCENE.yaml --eval-frames M]

Encodes every agent's sweep of N frames (default 200, spread over the scene's scenarios) with the model's agent encoder and codebook, and trains a zstd dictionary
(zstd's ZDICT builder) on the index maps as the zstd codec compresses them. Ship it next to the checkpoint and give it to the
agents and the fusion service (--zstd_dictionary, or model.zstd_dictionary in the scene's
cluster block); messages name it by digest.
  --sparse SPAN[+DIL]  train on sparse maps (the agent's --sparse_min_span_m / dilation)
  --max-bytes B        dictionary size limit (default 16384)
  --level L            zstd level the dictionary is prepared for (default 3)
  --eval-scene S       also measure it on M frames (default 100) of this held-out scene
Prints the dictionary's digest and the mean zstd bytes per map without and with it, over
the training maps and the held-out ones. A dictionary only pays where the held-out maps
shrink: one that memorised its training scenes makes held-out maps larger.)";

// Every agent's index map (as zstd's input) of `frames` frames of `scene` (FrameSource
// spreads them over its scenarios).
absl::StatusOr<std::vector<std::string>> CollectMaps(RuntimeModel& model, const std::string& scene,
                                                     int64_t frames,
                                                     const std::optional<CellSelection>& sparse) {
  QV2X_ASSIGN_OR_RETURN(auto source, FrameSource::Open("sim:" + scene, static_cast<int>(frames)));
  const VoxelConfig& voxel = model.cfg.preprocess;
  const size_t n = source->size();
  std::vector<std::string> samples;
  for (size_t k = 0; k < n; ++k) {
    QV2X_ASSIGN_OR_RETURN(SceneFrame frame, source->Read(k));
    for (const AgentFrame& a : frame.agents) {
      const Pillars pillars = Pillarize(CropPoints(a.points, voxel), voxel, PillarMode::kTest);
      QV2X_ASSIGN_OR_RETURN(AgentEncoding enc, model.detector->agent_encoder()->Encode(pillars));
      const torch::Tensor idx = enc.indices.to(torch::kInt32).contiguous();
      const codec::IndexGrid g{idx.size(0), idx.size(1), idx.size(2),
                               model.cfg.model.codebook.dict_size};
      const std::vector<int32_t> values(idx.data_ptr<int32_t>(),
                                        idx.data_ptr<int32_t>() + idx.numel());
      std::vector<uint8_t> mask;
      if (sparse) {
        QV2X_ASSIGN_OR_RETURN(mask, SelectCells(pillars, g.height, g.width, *sparse));
      }
      QV2X_ASSIGN_OR_RETURN(std::string raw,
                            codec::RawSymbols(values, g, sparse ? &mask : nullptr));
      samples.push_back(std::move(raw));
    }
    std::fprintf(stderr, "\r%s: frame %zu/%zu (%zu maps)", scene.c_str(), k + 1, n, samples.size());
  }
  std::fprintf(stderr, "\n");
  return samples;
}

// Mean zstd bytes per map without and with `dict`.
std::pair<double, double> MeanBytes(const std::vector<std::string>& maps,
                                    const codec::ZstdDictionary& dict, int level) {
  double plain = 0, with = 0;
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  for (const std::string& raw : maps) {
    std::string buf(ZSTD_compressBound(raw.size()), '\0');
    plain +=
        static_cast<double>(ZSTD_compress(buf.data(), buf.size(), raw.data(), raw.size(), level));
    with += static_cast<double>(ZSTD_compress_usingCDict(cctx, buf.data(), buf.size(), raw.data(),
                                                         raw.size(), dict.cdict()));
  }
  ZSTD_freeCCtx(cctx);
  const double n = static_cast<double>(std::max<size_t>(1, maps.size()));
  return {plain / n, with / n};
}

absl::Status RunTrainDict(Args& args) {
  QV2X_ASSIGN_OR_RETURN(std::string config, args.Required("config"));
  QV2X_ASSIGN_OR_RETURN(std::string checkpoint, args.Required("checkpoint"));
  QV2X_ASSIGN_OR_RETURN(std::string scene, args.Required("scene"));
  QV2X_ASSIGN_OR_RETURN(std::string out, args.Required("out"));
  QV2X_ASSIGN_OR_RETURN(int64_t frames, args.IntOr("frames", 200));
  QV2X_ASSIGN_OR_RETURN(int64_t max_bytes, args.IntOr("max-bytes", 16384));
  QV2X_ASSIGN_OR_RETURN(int64_t level, args.IntOr("level", 3));
  const std::string sparse_text = args.GetOr("sparse", "");
  const std::string eval_scene = args.GetOr("eval-scene", "");
  QV2X_ASSIGN_OR_RETURN(int64_t eval_frames, args.IntOr("eval-frames", 100));
  QV2X_RETURN_IF_ERROR(args.Finish());
  if (frames <= 0 || max_bytes < 256 || level < 1 || level > 22) {
    return absl::InvalidArgumentError("--frames > 0, --max-bytes >= 256, --level in [1, 22]");
  }
  std::optional<CellSelection> sparse;
  if (!sparse_text.empty()) {
    absl::StatusOr<CellSelection> sel = ParseCellSelection(sparse_text);
    if (!sel.ok())
      return absl::InvalidArgumentError(absl::StrCat("--sparse: ", sel.status().message()));
    sparse = *sel;
  }
  QV2X_ASSIGN_OR_RETURN(RuntimeModel model, LoadRuntimeModel(config, checkpoint));
  torch::NoGradGuard no_grad;
  model.detector->eval();
  QV2X_ASSIGN_OR_RETURN(std::vector<std::string> samples,
                        CollectMaps(model, scene, frames, sparse));
  QV2X_ASSIGN_OR_RETURN(auto dict,
                        codec::ZstdDictionary::Train(samples, static_cast<size_t>(max_bytes),
                                                     static_cast<int>(level)));
  QV2X_RETURN_IF_ERROR(WriteFileAtomic(out, dict->bytes()));
  std::printf("wrote %s: %zu bytes, digest %s, zstd dictionary id %u\n", out.c_str(),
              dict->bytes().size(), dict->digest().c_str(), dict->id());
  auto report = [&](const char* what, const std::vector<std::string>& maps) {
    const auto [plain, with] = MeanBytes(maps, *dict, static_cast<int>(level));
    std::printf("%s: %zu maps, zstd %.0f B/map, with the dictionary %.0f B/map (%+.1f %%)\n", what,
                maps.size(), plain, with, 100 * (with / plain - 1));
  };
  report("training maps", samples);
  if (!eval_scene.empty()) {
    QV2X_ASSIGN_OR_RETURN(std::vector<std::string> held,
                          CollectMaps(model, eval_scene, eval_frames, sparse));
    report(absl::StrCat("held-out maps (", eval_scene, ")").c_str(), held);
  }
  return absl::OkStatus();
}

absl::Status RunCodec(Args& args) {
  if (args.positional().size() != 1 || args.positional()[0] != "train-dict") {
    return absl::InvalidArgumentError("expected `qv2x codec train-dict`");
  }
  return RunTrainDict(args);
}

const Registration kCodec({"codec", "train a zstd dictionary for a model's index maps", kUsage,
                           RunCodec});

}  // namespace
}  // namespace qv2x::cli
