#include "tools/qv2x/client/scene_summary.h"

#include <algorithm>
#include <numeric>

#include "absl/strings/str_format.h"
#include "core/common/percentile.h"

namespace qv2x::cli {
namespace {

double Mean(const std::vector<double>& v) {
  return v.empty() ? 0 : std::accumulate(v.begin(), v.end(), 0.0) / v.size();
}

std::string EncodingLabel(v1::IndexEncoding e) {
  return e == v1::INDEX_ENCODING_ZSTD ? "zstd" : "bitpack";
}

}  // namespace

void SceneSummary::Add(const v1::DetectionFrame& frame, double received_at_s) {
  agents_per_frame_.push_back(frame.agents_size());
  missing_ += frame.missing_agents_size();
  for (const v1::AgentContribution& a : frame.agents()) {
    Sizes& s = by_encoding_[EncodingLabel(a.encoding())];
    s.message.push_back(static_cast<double>(a.message_bytes()));
    s.payload.push_back(static_cast<double>(a.payload_bytes()));
    s.fp32 += static_cast<double>(a.fp32_feature_bytes());
    encode_s_.push_back(a.encode_seconds());
    entropy_bits_.push_back(a.index_entropy_bits());
    // What an ideal coder of independent indices would need for this map.
    lossless_bytes_.push_back(a.index_entropy_bits() * static_cast<double>(a.index_count()) / 8);
  }
  e2e_s_.push_back(frame.e2e_latency_seconds());
  fuse_s_.push_back(frame.fuse_seconds());
  received_at_.push_back(received_at_s);
  last_ = frame;
}

nlohmann::json SceneSummary::ToJson(int expected_agents) const {
  nlohmann::json j;
  j["frames_fused"] = frames();
  std::vector<double> apf(agents_per_frame_.begin(), agents_per_frame_.end());
  j["agents_per_frame_mean"] = Mean(apf);
  j["frames_with_all_agents"] =
      std::count(agents_per_frame_.begin(), agents_per_frame_.end(), expected_agents);
  j["missing_messages"] = missing_;
  std::vector<double> all_msg, all_payload;
  double fp32 = 0;
  for (const auto& [name, s] : by_encoding_) {
    all_msg.insert(all_msg.end(), s.message.begin(), s.message.end());
    all_payload.insert(all_payload.end(), s.payload.begin(), s.payload.end());
    fp32 += s.fp32;
    const double sum = std::accumulate(s.message.begin(), s.message.end(), 0.0);
    j["by_encoding"][name] = {{"messages", s.message.size()},
                              {"bytes_per_message_mean", Mean(s.message)},
                              {"bytes_per_message_p95", Percentile(s.message, 0.95)},
                              {"payload_bytes_mean", Mean(s.payload)},
                              {"compression_ratio", sum > 0 ? s.fp32 / sum : 0.0}};
  }
  const double msg_sum = std::accumulate(all_msg.begin(), all_msg.end(), 0.0);
  j["bytes_per_message_mean"] = Mean(all_msg);
  j["bytes_per_message_p95"] = Percentile(all_msg, 0.95);
  j["payload_bytes_mean"] = Mean(all_payload);
  j["fp32_feature_bytes_per_message"] = all_msg.empty() ? 0.0 : fp32 / all_msg.size();
  j["compression_ratio"] = msg_sum > 0 ? fp32 / msg_sum : 0.0;
  j["index_entropy_bits_mean"] = Mean(entropy_bits_);
  j["lossless_limit_bytes_mean"] = Mean(lossless_bytes_);
  j["encode_latency_p50_s"] = Percentile(encode_s_, 0.5);
  j["encode_latency_p95_s"] = Percentile(encode_s_, 0.95);
  j["e2e_latency_p50_s"] = Percentile(e2e_s_, 0.5);
  j["e2e_latency_p95_s"] = Percentile(e2e_s_, 0.95);
  j["fuse_latency_p50_s"] = Percentile(fuse_s_, 0.5);
  const double span = received_at_.size() > 1 ? received_at_.back() - received_at_.front() : 0;
  j["fused_frames_per_second"] = span > 0 ? (received_at_.size() - 1) / span : 0.0;
  nlohmann::json ap = nlohmann::json::object();
  for (const v1::ClassAp& c : last_.rolling_ap()) {
    ap[c.class_name()] = {{"0.3", c.ap_30()}, {"0.5", c.ap_50()}, {"0.7", c.ap_70()}};
  }
  j["ap"] = ap;
  j["ap_frames"] = last_.ap_frames();
  return j;
}

std::string SceneSummary::Table(const nlohmann::json& s) {
  std::string out = absl::StrFormat(
      "frames fused          %d (%.2f agents/frame, %d with every agent, %d messages missing)\n",
      s["frames_fused"].get<int64_t>(), s["agents_per_frame_mean"].get<double>(),
      s["frames_with_all_agents"].get<int64_t>(), s["missing_messages"].get<int64_t>());
  for (const auto& [name, e] : s["by_encoding"].items()) {
    out += absl::StrFormat(
        "bytes/message %-7s  mean %.0f, p95 %.0f (payload %.0f); %.0fx smaller than FP32 "
        "features\n",
        name, e["bytes_per_message_mean"].get<double>(), e["bytes_per_message_p95"].get<double>(),
        e["payload_bytes_mean"].get<double>(), e["compression_ratio"].get<double>());
  }
  out += absl::StrFormat(
      "FP32 features         %.0f bytes/message; compression ratio %.1fx; index entropy %.2f "
      "bits (order-0 limit %.0f bytes)\n",
      s["fp32_feature_bytes_per_message"].get<double>(), s["compression_ratio"].get<double>(),
      s["index_entropy_bits_mean"].get<double>(), s["lossless_limit_bytes_mean"].get<double>());
  out += absl::StrFormat(
      "latency               encode p50 %.1f ms p95 %.1f ms; end-to-end p50 %.1f ms p95 %.1f "
      "ms; %.2f fused frames/s\n",
      1e3 * s["encode_latency_p50_s"].get<double>(), 1e3 * s["encode_latency_p95_s"].get<double>(),
      1e3 * s["e2e_latency_p50_s"].get<double>(), 1e3 * s["e2e_latency_p95_s"].get<double>(),
      s["fused_frames_per_second"].get<double>());
  for (const auto& [cls, ap] : s["ap"].items()) {
    out += absl::StrFormat("rolling AP %-10s  %.3f / %.3f / %.3f (IoU 0.3/0.5/0.7, %d frames)\n",
                           cls, ap["0.3"].get<double>(), ap["0.5"].get<double>(),
                           ap["0.7"].get<double>(), s["ap_frames"].get<int64_t>());
  }
  return out;
}

}  // namespace qv2x::cli
