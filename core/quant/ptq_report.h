// FP32 vs INT8 on held-out frames in one run (SPEC §7, §10 "Quantizer"): AP per class at
// each IoU threshold, model bytes, encode latency and fused-frame latency, with the PTQ
// options and reconstruction results the artifact records. No LibTorch headers.
#ifndef QV2X_CORE_QUANT_PTQ_REPORT_H_
#define QV2X_CORE_QUANT_PTQ_REPORT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/eval/average_precision.h"
#include "core/quant/ptq.h"
#include "nlohmann/json.hpp"

namespace qv2x::quant {

struct PrecisionReport {
  int64_t bytes = 0;       // model tensors: FP32 state_dict / INT8 artifact payload
  int64_t file_bytes = 0;  // checkpoint / artifact file on disk
  // p50 over every agent of every frame: pillars → codebook indices (features without a
  // codebook).
  double encode_latency_p50_s = 0;
  // p50 over frames: every agent's encode, fusion, heads and post-processing, in sequence
  // on this machine (no network).
  double e2e_latency_p50_s = 0;
  double fusion_latency_p50_s = 0;  // fusion + heads + post-processing only
  EvalResult ap;                    // global sort
};

struct PtqReport {
  PrecisionReport fp32, int8;
  nlohmann::json options;  // as recorded in the artifact
  std::vector<PtqBlockResult> reconstruction;
  std::string eval_source;
  int64_t frames = 0;
  double agents_per_frame = 0;
  std::string engine;  // quantized engine
  int threads = 0;     // LibTorch intra-op threads during timing
};

struct CompareOptions {
  int max_frames = 60;    // frames of eval_source (FrameSource::Open's max_frames)
  int warmup_frames = 1;  // run first, not timed or scored
};

// FP32 and INT8 alternate frame by frame, so load changes on a shared machine hit both.
absl::StatusOr<PtqReport> CompareFp32Int8(const std::string& config_yaml_path,
                                          const std::string& checkpoint_path,
                                          const std::string& artifact_path,
                                          const std::string& eval_source,
                                          const CompareOptions& options = {});

// {"fp32": {"bytes", "file_bytes", "encode_latency_p50_s", "e2e_latency_p50_s",
// "fusion_latency_p50_s", "ap": {"vehicle": {"0.3", "0.5", "0.7"}, ...}, "map": {...}},
// "int8": {...}, "options": {...}, "reconstruction": [{"block", "loss_before",
// "loss_after", "learned", "seconds"}], "eval": {"source", "frames", "agents_per_frame",
// "engine", "threads"}}
nlohmann::json PtqReportJson(const PtqReport& report);

}  // namespace qv2x::quant

#endif  // QV2X_CORE_QUANT_PTQ_REPORT_H_
