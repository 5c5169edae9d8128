#include "core/baselines/baseline_eval.h"

#include <algorithm>
#include <chrono>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "core/baselines/box_message.h"
#include "core/baselines/early_fusion.h"
#include "core/baselines/feature_message.h"
#include "core/baselines/late_fusion.h"
#include "core/baselines/point_message.h"
#include "core/common/percentile.h"
#include "core/common/status_macros.h"
#include "core/training/evaluator.h"
#include "core/training/sample_builder.h"

namespace qv2x::baselines {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

ByteStats Stats(const std::vector<double>& bytes) {
  ByteStats s;
  s.messages = bytes.size();
  if (!bytes.empty()) {
    s.mean = std::accumulate(bytes.begin(), bytes.end(), 0.0) / static_cast<double>(bytes.size());
    s.p95 = Percentile(bytes, 0.95);
  }
  return s;
}

// Per method while the frames run.
struct MethodState {
  ApAccumulator acc;
  std::vector<double> raw, zstd, zstd_dict, cell_fraction;
  double seconds = 0;
};

// One agent's own encoding, shared by the methods that use it.
struct Encoded {
  AgentEncoding enc;
  double seconds = 0;
};

class FrameRunner {
 public:
  FrameRunner(Detector& model, const StageConfig& cfg, const AnchorGrid& grid,
              const BaselineOptions& options)
      : model_(model),
        cfg_(cfg),
        grid_(grid),
        options_(options),
        codebook_digest_(model->has_codebook() ? model->codebook()->Digest() : "") {}

  absl::StatusOr<Encoded> Encode(const Pillars& pillars) {
    const auto t0 = Clock::now();
    Encoded e;
    QV2X_ASSIGN_OR_RETURN(e.enc, model_->agent_encoder()->Encode(pillars));
    e.seconds = Since(t0);
    return e;
  }

  // Fuses the given maps (indices when `use_codebook` and the model has one) and decodes
  // the boxes.
  absl::StatusOr<std::vector<Detection>> Detect(const std::vector<const AgentEncoding*>& maps,
                                                const std::vector<AffineWarp>& warps,
                                                bool use_codebook) {
    std::vector<AgentMessage> messages;
    for (size_t k = 0; k < maps.size(); ++k) {
      AgentMessage m;
      if (use_codebook && maps[k]->indices.defined()) {
        m.indices = maps[k]->indices;
      } else {
        m.features = maps[k]->features;
      }
      m.warp = warps[k];
      messages.push_back(std::move(m));
    }
    QV2X_ASSIGN_OR_RETURN(HeadOutput out, model_->ego_fusion()->Fuse(messages));
    return PostProcess(grid_, out.cls, out.reg, out.dir, cfg_.postprocess, cfg_.model.dir_args);
  }

  // The raw and zstd FP32 feature messages of one agent (zstd only when asked).
  absl::Status FeatureBytes(const MessageHeader& h, const AgentEncoding& e, bool with_zstd,
                            double* raw, double* zstd) {
    const torch::Tensor f = e.features.to(torch::kFloat32).contiguous();
    const absl::Span<const float> values(f.data_ptr<float>(), static_cast<size_t>(f.numel()));
    const std::array<int64_t, 3> shape{f.size(0), f.size(1), f.size(2)};
    QV2X_ASSIGN_OR_RETURN(std::string m, EncodeFeatureMessage(h, shape, values));
    *raw = static_cast<double>(m.size());
    if (with_zstd) {
      QV2X_ASSIGN_OR_RETURN(m, EncodeFeatureMessage(h, shape, values, Compression::kZstd));
      *zstd = static_cast<double>(m.size());
    }
    return absl::OkStatus();
  }

  // The bit-packed, zstd and (with a dictionary) zstd + dictionary index messages of one
  // agent; `mask`: a sparse message's cells.
  absl::Status IndexBytes(const MessageHeader& h, const AgentEncoding& e,
                          const std::vector<uint8_t>* mask, MethodState& st) {
    const torch::Tensor idx = e.indices.to(torch::kInt32).contiguous();
    const std::vector<int32_t> values(idx.data_ptr<int32_t>(),
                                      idx.data_ptr<int32_t>() + idx.numel());
    const codec::IndexGrid g{idx.size(0), idx.size(1), idx.size(2), cfg_.model.codebook.dict_size};
    auto size = [&](const codec::EncodeOptions& o, std::vector<double>& out) -> absl::Status {
      QV2X_ASSIGN_OR_RETURN(codec::EncodedIndices coded, codec::EncodeIndices(values, g, o, mask));
      const IndexMessage m{h.agent_id, h.frame_id, h.lidar_pose, g, codebook_digest_, &coded};
      out.push_back(options_.index_message_bytes
                        ? static_cast<double>(options_.index_message_bytes(m))
                        : static_cast<double>(kMessageHeaderBytes + coded.payload.size()));
      return absl::OkStatus();
    };
    QV2X_RETURN_IF_ERROR(size({codec::IndexEncoding::kBitpack}, st.raw));
    QV2X_RETURN_IF_ERROR(size({codec::IndexEncoding::kZstd}, st.zstd));
    if (options_.dictionary != nullptr) {
      QV2X_RETURN_IF_ERROR(
          size({codec::IndexEncoding::kZstd, 3, options_.dictionary}, st.zstd_dict));
    }
    return absl::OkStatus();
  }

 private:
  Detector& model_;
  const StageConfig& cfg_;
  const AnchorGrid& grid_;
  const BaselineOptions& options_;
  const std::string codebook_digest_;  // hashed once, not per message
};

// Encodes one message raw and with zstd, records both sizes and returns the raw bytes,
// which the ego then decodes.
template <typename EncodeFn>
absl::StatusOr<std::string> Send(MethodState& st, EncodeFn encode) {
  QV2X_ASSIGN_OR_RETURN(std::string wire, encode(Compression::kNone));
  QV2X_ASSIGN_OR_RETURN(std::string packed, encode(Compression::kZstd));
  st.raw.push_back(static_cast<double>(wire.size()));
  st.zstd.push_back(static_cast<double>(packed.size()));
  return wire;
}

bool Wants(const BaselineOptions& o, FusionMethod m) {
  return std::find(o.methods.begin(), o.methods.end(), m) != o.methods.end();
}

const AgentFrame* FindAgent(const SceneFrame& frame, int id) {
  for (const AgentFrame& a : frame.agents) {
    if (a.agent_id == id) return &a;
  }
  return nullptr;
}

std::string Sends(FusionMethod m, bool codebook) {
  switch (m) {
    case FusionMethod::kNone:
      return "nothing";
    case FusionMethod::kLate:
      return "boxes";
    case FusionMethod::kEarly:
      return "points (float32 x, y, z, i)";
    case FusionMethod::kIntermediate:
      return codebook ? "codebook indices" : "FP32 features";
    case FusionMethod::kIntermediateNoCodebook:
      return "FP32 features";
  }
  return "?";
}

}  // namespace

const char* FusionMethodName(FusionMethod m) {
  switch (m) {
    case FusionMethod::kNone:
      return "none";
    case FusionMethod::kLate:
      return "late";
    case FusionMethod::kEarly:
      return "early";
    case FusionMethod::kIntermediate:
      return "intermediate";
    case FusionMethod::kIntermediateNoCodebook:
      return "intermediate_no_codebook";
  }
  return "?";
}

absl::StatusOr<BaselineRun> EvaluateFusionBaselines(Detector& model, const FrameSource& source,
                                                    const StageConfig& cfg, const AnchorGrid& grid,
                                                    const BaselineOptions& options) {
  if (options.methods.empty()) return absl::InvalidArgumentError("no fusion method asked for");
  model->eval();
  torch::NoGradGuard no_grad;
  const bool codebook = model->has_codebook();
  const bool any_intermediate = Wants(options, FusionMethod::kIntermediate) ||
                                Wants(options, FusionMethod::kIntermediateNoCodebook);
  const bool all_agents =
      any_intermediate || Wants(options, FusionMethod::kLate) || !options.sparse.empty();
  // zstd of FP32 features costs ~10 ms a map: only when a row sends features.
  const bool features_zstd = Wants(options, FusionMethod::kIntermediateNoCodebook) ||
                             (!codebook && Wants(options, FusionMethod::kIntermediate));

  if (!options.sparse.empty() && !codebook) {
    return absl::InvalidArgumentError("sparse messages need a model with a codebook");
  }
  const size_t runs = options.methods.size() + options.sparse.size();
  std::vector<MethodState> state(runs);
  std::vector<std::vector<FrameBoxes>> predictions(runs);
  std::vector<double> fp32_raw;
  BaselineRun run;
  size_t agents = 0;
  FrameRunner runner(model, cfg, grid, options);
  SampleOptions sample_options;
  sample_options.mode = PillarMode::kTest;
  sample_options.targets = false;
  for (size_t i = 0; i < source.size(); ++i) {
    QV2X_ASSIGN_OR_RETURN(SceneFrame frame, source.Read(i));
    QV2X_ASSIGN_OR_RETURN(Sample sample, BuildSample(frame, cfg, grid, sample_options));
    const CollatedFrame& c = sample.collated;
    const size_t n = c.agents.size();
    agents += n;
    const std::vector<AffineWarp> ego_warp{c.warp_to_ego[0]};
    std::vector<MessageHeader> headers(n);
    for (size_t k = 0; k < n; ++k) headers[k] = {c.agents[k].agent_id, i, c.agents[k].lidar_pose};

    // Every agent's own encoding (the ego's alone for ego-only and early-only runs).
    std::vector<Encoded> enc;
    for (size_t k = 0; k < (all_agents ? n : 1); ++k) {
      QV2X_ASSIGN_OR_RETURN(Encoded e, runner.Encode(c.agents[k].pillars));
      enc.push_back(std::move(e));
    }
    // FP32 feature message per non-ego agent: the reference every ratio is taken against,
    // and what intermediate fusion without the codebook sends.
    std::vector<double> feat_raw(n, 0), feat_zstd(n, 0);
    if (all_agents) {
      for (size_t k = 1; k < n; ++k) {
        QV2X_RETURN_IF_ERROR(runner.FeatureBytes(headers[k], enc[k].enc, features_zstd,
                                                 &feat_raw[k], &feat_zstd[k]));
        fp32_raw.push_back(feat_raw[k]);
      }
    }
    // Each agent's detections on its own sweep, computed once: late fusion's messages,
    // and the ego's are the no-fusion result.
    std::vector<std::vector<Detection>> own(n);
    std::vector<double> own_seconds(n, 0);
    auto own_detections = [&](size_t k) -> absl::Status {
      const auto t0 = Clock::now();
      QV2X_ASSIGN_OR_RETURN(own[k], runner.Detect({&enc[k].enc}, ego_warp, codebook));
      own_seconds[k] = Since(t0) + enc[k].seconds;
      return absl::OkStatus();
    };
    if (Wants(options, FusionMethod::kNone) || Wants(options, FusionMethod::kLate)) {
      QV2X_RETURN_IF_ERROR(own_detections(0));
    }
    if (Wants(options, FusionMethod::kLate)) {
      for (size_t k = 1; k < n; ++k) QV2X_RETURN_IF_ERROR(own_detections(k));
    }

    for (size_t m = 0; m < options.methods.size(); ++m) {
      const FusionMethod method = options.methods[m];
      MethodState& st = state[m];
      std::vector<Detection> dets;
      const auto t0 = Clock::now();
      double shared_seconds = 0;  // encodings done once for several methods
      switch (method) {
        case FusionMethod::kNone:
          dets = own[0];
          shared_seconds = own_seconds[0];
          break;
        case FusionMethod::kLate: {
          std::vector<AgentDetections> pooled{{Mat4::Identity(), own[0]}};
          shared_seconds = own_seconds[0];
          for (size_t k = 1; k < n; ++k) {
            shared_seconds += own_seconds[k];
            QV2X_ASSIGN_OR_RETURN(std::string wire, Send(st, [&](Compression z) {
                                    return EncodeBoxMessage(headers[k], own[k], z);
                                  }));
            // The ego works with what arrived: the boxes as quantised on the wire.
            QV2X_ASSIGN_OR_RETURN(BoxMessage got, DecodeBoxMessage(wire));
            pooled.push_back({c.pairwise[k][0], std::move(got.boxes)});
          }
          dets = MergeLateFusion(pooled, {cfg.postprocess.nms_thresh, cfg.postprocess.gt_range,
                                          cfg.preprocess.ego_body_box});
          break;
        }
        case FusionMethod::kEarly: {
          std::vector<AgentPoints> clouds;
          for (size_t k = 0; k < n; ++k) {
            const AgentFrame* a = FindAgent(frame, c.agents[k].agent_id);
            if (a == nullptr) {
              return absl::InternalError(
                  absl::StrCat("agent ", c.agents[k].agent_id, " vanished from frame ", i));
            }
            if (k == 0) {
              clouds.push_back({Mat4::Identity(), a->points});
              continue;
            }
            const PointCloud sent = PointsForEgo(a->points, c.pairwise[k][0], cfg.preprocess);
            QV2X_ASSIGN_OR_RETURN(std::string wire, Send(st, [&](Compression z) {
                                    return EncodePointMessage(headers[k], sent, z);
                                  }));
            QV2X_ASSIGN_OR_RETURN(PointMessage got, DecodePointMessage(wire));
            clouds.push_back({c.pairwise[k][0], std::move(got.points)});
          }
          const Pillars merged = Pillarize(MergeEarlyFusion(clouds, cfg.preprocess), cfg.preprocess,
                                           PillarMode::kTest);
          QV2X_ASSIGN_OR_RETURN(Encoded e, runner.Encode(merged));
          QV2X_ASSIGN_OR_RETURN(dets, runner.Detect({&e.enc}, ego_warp, codebook));
          break;
        }
        case FusionMethod::kIntermediate:
        case FusionMethod::kIntermediateNoCodebook: {
          const bool use_codebook = codebook && method == FusionMethod::kIntermediate;
          std::vector<const AgentEncoding*> maps;
          for (size_t k = 0; k < n; ++k) {
            maps.push_back(&enc[k].enc);
            shared_seconds += enc[k].seconds;
          }
          for (size_t k = 1; k < n; ++k) {
            if (use_codebook) {
              QV2X_RETURN_IF_ERROR(runner.IndexBytes(headers[k], enc[k].enc, nullptr, st));
            } else {
              st.raw.push_back(feat_raw[k]);
              st.zstd.push_back(feat_zstd[k]);
            }
          }
          QV2X_ASSIGN_OR_RETURN(dets, runner.Detect(maps, c.warp_to_ego, use_codebook));
          break;
        }
      }
      st.seconds += Since(t0) + shared_seconds;
      std::vector<EvalBox> pred = ToEvalBoxes(dets), gt = ToEvalBoxes(sample.gt);
      st.acc.AddFrame(pred, gt);
      predictions[m].push_back({source.FrameName(i), std::move(pred)});
      if (options.on_frame) options.on_frame(method, i, frame, dets, sample.gt);
    }
    for (size_t j = 0; j < options.sparse.size(); ++j) {
      MethodState& st = state[options.methods.size() + j];
      const auto t0 = Clock::now();
      std::vector<AgentEncoding> sent(n);
      std::vector<const AgentEncoding*> maps;
      for (size_t k = 0; k < n; ++k) {
        sent[k] = enc[k].enc;
        if (k > 0) {  // the ego's own map never travels
          const torch::Tensor& idx = enc[k].enc.indices;
          QV2X_ASSIGN_OR_RETURN(
              std::vector<uint8_t> mask,
              SelectCells(c.agents[k].pillars, idx.size(1), idx.size(2), options.sparse[j]));
          QV2X_RETURN_IF_ERROR(runner.IndexBytes(headers[k], enc[k].enc, &mask, st));
          const torch::Tensor keep =
              torch::from_blob(mask.data(), {1, idx.size(1), idx.size(2)}, torch::kUInt8)
                  .to(torch::kBool);
          sent[k].indices = idx.masked_fill(keep.logical_not(), kUnsentCode);
          st.cell_fraction.push_back(keep.to(torch::kFloat32).mean().item<double>());
        }
        maps.push_back(&sent[k]);
        st.seconds += enc[k].seconds;
      }
      QV2X_ASSIGN_OR_RETURN(std::vector<Detection> dets,
                            runner.Detect(maps, c.warp_to_ego, /*use_codebook=*/true));
      st.seconds += Since(t0);
      std::vector<EvalBox> pred = ToEvalBoxes(dets);
      st.acc.AddFrame(pred, ToEvalBoxes(sample.gt));
      predictions[options.methods.size() + j].push_back({source.FrameName(i), std::move(pred)});
    }
    run.ground_truth.push_back({source.FrameName(i), ToEvalBoxes(sample.gt)});
  }

  run.frames = source.size();
  const double frames = static_cast<double>(std::max<size_t>(1, source.size()));
  run.agents_per_frame = static_cast<double>(agents) / frames;
  run.fp32_features = Stats(fp32_raw);
  for (size_t m = 0; m < runs; ++m) {
    MethodRun r;
    const bool sparse = m >= options.methods.size();
    r.method = sparse ? FusionMethod::kIntermediate : options.methods[m];
    if (sparse) {
      const CellSelection& sel = options.sparse[m - options.methods.size()];
      r.sparse = sel;
      r.sends = absl::StrCat("codebook indices of the cells spanning >= ", sel.min_height_span_m,
                             " m, +", sel.dilation_cells, " cells");
      const std::vector<double>& f = state[m].cell_fraction;
      r.sent_cell_fraction =
          f.empty() ? 0 : std::accumulate(f.begin(), f.end(), 0.0) / static_cast<double>(f.size());
    } else {
      r.sends = Sends(r.method, codebook);
    }
    r.result = state[m].acc.Result(ApSortOrder::kGlobal);
    r.predictions = std::move(predictions[m]);
    r.raw = Stats(state[m].raw);
    r.zstd = Stats(state[m].zstd);
    r.zstd_dict = Stats(state[m].zstd_dict);
    r.seconds_per_frame = state[m].seconds / frames;
    run.methods.push_back(std::move(r));
  }
  return run;
}

}  // namespace qv2x::baselines
