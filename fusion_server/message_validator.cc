#include "fusion_server/message_validator.h"

#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/geometry/transform.h"
#include "services/log.h"

namespace qv2x::fusion {
namespace {

bool Reject(v1::RejectReason reason, std::string detail, Rejection* why) {
  why->reason = reason;
  why->detail = std::move(detail);
  return false;
}

// Empty when the pose is usable: finite, within the bounds, its matrix finite.
std::string PoseProblem(const v1::Pose& p, const ValidatorOptions& o) {
  for (double v : {p.x(), p.y(), p.z(), p.roll(), p.yaw(), p.pitch()}) {
    if (!std::isfinite(v)) return "lidar_pose is not finite";
  }
  for (double v : {p.x(), p.y(), p.z()}) {
    if (std::abs(v) > o.max_position_m) {
      return absl::StrCat("lidar_pose position ", v, " m is beyond +/-", o.max_position_m, " m");
    }
  }
  for (double v : {p.roll(), p.yaw(), p.pitch()}) {
    if (std::abs(v) > o.max_angle_deg) {
      return absl::StrCat("lidar_pose angle ", v, " deg is beyond +/-", o.max_angle_deg, " deg");
    }
  }
  const Mat4 m = PoseToMatrix(Pose{p.x(), p.y(), p.z(), p.roll(), p.yaw(), p.pitch()});
  for (double v : m.m) {
    if (!std::isfinite(v)) return "lidar_pose gives a non-finite transform";
  }
  return "";
}

std::string GridText(uint32_t l, uint32_t h, uint32_t w, uint32_t k) {
  return absl::StrCat(l, "x", h, "x", w, " (", k, " codes)");
}

}  // namespace

std::string ReasonLabel(v1::RejectReason reason) {
  std::string name = v1::RejectReason_Name(reason);
  constexpr char kPrefix[] = "REJECT_REASON_";
  if (name.rfind(kPrefix, 0) == 0) name = name.substr(sizeof(kPrefix) - 1);
  return absl::AsciiStrToLower(name);
}

void MessageValidator::SetCodebooks(std::set<std::string> digests) {
  std::lock_guard<std::mutex> lock(mu_);
  options_.codebooks = std::move(digests);
}

bool MessageValidator::Validate(const v1::FeatureMessage& msg, int64_t now_ns,
                                ReceivedMessage* out, Rejection* why) const {
  const ValidatorOptions& o = options_;
  if (o.agents.count(msg.agent_id()) == 0) {
    return Reject(v1::REJECT_REASON_UNKNOWN_AGENT,
                  absl::StrCat("agent ", msg.agent_id(), " is not an agent of this scene"), why);
  }
  const uint64_t size = msg.ByteSizeLong();
  if (size > o.max_message_bytes) {
    return Reject(
        v1::REJECT_REASON_OVERSIZED,
        absl::StrCat("message of ", size, " bytes exceeds the limit of ", o.max_message_bytes),
        why);
  }
  if (!msg.has_grid() || !msg.has_lidar_pose() || msg.capture_time_unix_ns() <= 0) {
    return Reject(v1::REJECT_REASON_MALFORMED,
                  "grid, lidar_pose and capture_time_unix_ns are required", why);
  }
  if (msg.precision() != v1::PRECISION_FP32 && msg.precision() != v1::PRECISION_INT8) {
    return Reject(v1::REJECT_REASON_MALFORMED,
                  absl::StrCat("precision ", static_cast<int>(msg.precision()),
                               " is neither FP32 (1) nor INT8 (2)"),
                  why);
  }
  for (const auto& [name, digest] : {std::pair<const char*, const std::string&>{
                                         "codebook_digest", msg.codebook_digest()},
                                     {"dictionary_digest", msg.dictionary_digest()}}) {
    if (digest.size() > o.max_digest_bytes) {
      return Reject(v1::REJECT_REASON_MALFORMED,
                    absl::StrCat(name, " of ", digest.size(), " bytes (at most ",
                                 o.max_digest_bytes, ")"),
                    why);
    }
  }
  if (std::string p = PoseProblem(msg.lidar_pose(), o); !p.empty()) {
    return Reject(v1::REJECT_REASON_POSE, std::move(p), why);
  }
  // Differences in int128-free form: both sides are positive int64.
  const int64_t capture = msg.capture_time_unix_ns();
  if (capture > now_ns && capture - now_ns > o.max_capture_ahead_ns) {
    return Reject(v1::REJECT_REASON_FRAME_WINDOW,
                  absl::StrCat("capture time is ", (capture - now_ns) / 1'000'000,
                               " ms ahead of this service's clock (at most ",
                               o.max_capture_ahead_ns / 1'000'000, ")"),
                  why);
  }
  if (now_ns > capture && now_ns - capture > o.max_capture_age_ns) {
    return Reject(v1::REJECT_REASON_FRAME_WINDOW,
                  absl::StrCat("capture time is ", (now_ns - capture) / 1'000'000,
                               " ms old (at most ", o.max_capture_age_ns / 1'000'000, ")"),
                  why);
  }
  codec::EncodedView enc;
  switch (msg.encoding()) {
    case v1::INDEX_ENCODING_BITPACK:
      enc.encoding = codec::IndexEncoding::kBitpack;
      break;
    case v1::INDEX_ENCODING_ZSTD:
      enc.encoding = codec::IndexEncoding::kZstd;
      break;
    default:
      return Reject(v1::REJECT_REASON_MALFORMED,
                    absl::StrCat("unknown encoding ", static_cast<int>(msg.encoding())), why);
  }
  const v1::IndexGrid& g = msg.grid();
  if (g.levels() != o.grid.levels || g.height() != o.grid.height || g.width() != o.grid.width ||
      g.dict_size() != o.grid.dict_size) {
    return Reject(
        v1::REJECT_REASON_GRID_SHAPE,
        absl::StrCat("grid ", GridText(g.levels(), g.height(), g.width(), g.dict_size()),
                     ", this model's is ",
                     GridText(o.grid.levels, o.grid.height, o.grid.width, o.grid.dict_size)),
        why);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (o.codebooks.count(msg.codebook_digest()) == 0) {
      return Reject(v1::REJECT_REASON_CODEBOOK_DIGEST,
                    absl::StrCat("codebook ", services::ClipForLog(msg.codebook_digest(), 16),
                                 " is not held here (", absl::StrJoin(o.codebooks, ", "), ")"),
                    why);
    }
  }
  enc.bits_per_index = static_cast<int>(msg.bits_per_index());
  enc.decoded_bytes = msg.decoded_bytes();
  enc.sparse = msg.sparse();
  enc.sent_cells = msg.sent_cells();
  enc.payload = msg.payload();  // a view: decoded in place, not copied
  const codec::ZstdDictionary* dictionary = nullptr;
  if (!msg.dictionary_digest().empty()) {
    const auto it = o.dictionaries.find(msg.dictionary_digest());
    if (it == o.dictionaries.end()) {
      std::vector<std::string> held;
      for (const auto& [digest, d] : o.dictionaries) held.push_back(digest);
      return Reject(v1::REJECT_REASON_DICTIONARY,
                    absl::StrCat("zstd dictionary ", services::ClipForLog(msg.dictionary_digest(), 16),
                                 " is not held here (",
                                 held.empty() ? "none" : absl::StrJoin(held, ", "), ")"),
                    why);
    }
    dictionary = it->second.get();
    enc.dictionary_digest = msg.dictionary_digest();
  }
  codec::DecodeLimits limits;
  limits.max_decoded_bytes = o.max_decoded_bytes;
  if (absl::Status st = codec::DecodeIndices(enc, o.grid, limits, &out->indices, dictionary);
      !st.ok()) {
    v1::RejectReason reason = v1::REJECT_REASON_PAYLOAD_LENGTH;
    if (st.code() == absl::StatusCode::kOutOfRange) reason = v1::REJECT_REASON_INDEX_RANGE;
    if (st.code() == absl::StatusCode::kResourceExhausted) reason = v1::REJECT_REASON_OVERSIZED;
    return Reject(reason, std::string(st.message()), why);
  }
  out->agent_id = msg.agent_id();
  out->codebook_digest = msg.codebook_digest();
  out->frame_id = msg.frame_id();
  out->capture_time_ns = msg.capture_time_unix_ns();
  const v1::Pose& p = msg.lidar_pose();
  out->lidar_pose = Pose{p.x(), p.y(), p.z(), p.roll(), p.yaw(), p.pitch()};
  v1::AgentContribution& c = out->contribution;
  c.set_agent_id(msg.agent_id());
  c.set_encoding(msg.encoding());
  c.set_precision(msg.precision());
  c.set_payload_bytes(msg.payload().size());
  c.set_message_bytes(size);
  c.set_fp32_feature_bytes(static_cast<uint64_t>(o.feature_channels) * o.grid.height *
                           o.grid.width * sizeof(float));
  c.set_encode_seconds(msg.encode_seconds());
  c.set_model_generation(msg.model_generation());
  c.set_index_entropy_bits(codec::IndexEntropyBits(out->indices, o.grid.dict_size));
  const uint64_t plane = static_cast<uint64_t>(o.grid.height * o.grid.width);
  c.set_sent_cells(msg.sparse() ? msg.sent_cells() : plane);
  c.set_index_count(c.sent_cells() * static_cast<uint64_t>(o.grid.levels));
  c.set_dictionary_digest(msg.dictionary_digest());
  return true;
}

}  // namespace qv2x::fusion
