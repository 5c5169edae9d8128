// Aggregates the fusion service's DetectionFrame stream into the run summary that
// `qv2x scene up --frames N` prints and writes as JSON.
#ifndef QV2X_TOOLS_QV2X_CLIENT_SCENE_SUMMARY_H_
#define QV2X_TOOLS_QV2X_CLIENT_SCENE_SUMMARY_H_

#include <map>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "qv2x/v1/features.pb.h"

namespace qv2x::cli {

class SceneSummary {
 public:
  void Add(const v1::DetectionFrame& frame, double received_at_s);
  int64_t frames() const { return static_cast<int64_t>(agents_per_frame_.size()); }

  // Keys: frames_fused, agents_per_frame_mean, frames_with_all_agents, missing_messages,
  // bytes_per_message_mean / _p95 (whole serialized message), payload_bytes_mean,
  // fp32_feature_bytes_per_message, compression_ratio (FP32 bytes / message bytes),
  // index_entropy_bits_mean, lossless_limit_bytes_mean, by_encoding {name: {messages,
  // bytes_per_message_mean, bytes_per_message_p95, compression_ratio}}, encode_latency_p50_s
  // / _p95_s, e2e_latency_p50_s / _p95_s, fuse_latency_p50_s, fused_frames_per_second,
  // ap {class: {"0.3", "0.5", "0.7"}}, ap_frames.
  nlohmann::json ToJson(int expected_agents) const;
  static std::string Table(const nlohmann::json& summary);

 private:
  struct Sizes {
    std::vector<double> message, payload;
    double fp32 = 0;
  };
  std::vector<int> agents_per_frame_;
  int64_t missing_ = 0;
  std::map<std::string, Sizes> by_encoding_;
  std::vector<double> encode_s_, e2e_s_, fuse_s_, entropy_bits_, lossless_bytes_;
  std::vector<double> received_at_;
  v1::DetectionFrame last_;
};

}  // namespace qv2x::cli

#endif  // QV2X_TOOLS_QV2X_CLIENT_SCENE_SUMMARY_H_
