#include "fusion_server/message_validator.h"

#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace qv2x::fusion {
namespace {

bool Reject(v1::RejectReason reason, std::string detail, Rejection* why) {
  why->reason = reason;
  why->detail = std::move(detail);
  return false;
}

bool FinitePose(const v1::Pose& p) {
  for (double v : {p.x(), p.y(), p.z(), p.roll(), p.yaw(), p.pitch()}) {
    if (!std::isfinite(v)) return false;
  }
  return true;
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

bool MessageValidator::Validate(const v1::FeatureMessage& msg, ReceivedMessage* out,
                                Rejection* why) const {
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
  if (!msg.has_grid() || !msg.has_lidar_pose() || !FinitePose(msg.lidar_pose()) ||
      msg.capture_time_unix_ns() <= 0 || msg.precision() == v1::PRECISION_UNSPECIFIED) {
    return Reject(v1::REJECT_REASON_MALFORMED,
                  "grid, a finite lidar_pose, capture_time_unix_ns and precision are required",
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
                    absl::StrCat("codebook ", msg.codebook_digest(), " is not held here (",
                                 absl::StrJoin(o.codebooks, ", "), ")"),
                    why);
    }
  }
  enc.bits_per_index = static_cast<int>(msg.bits_per_index());
  enc.decoded_bytes = msg.decoded_bytes();
  enc.payload = msg.payload();  // a view: decoded in place, not copied
  codec::DecodeLimits limits;
  limits.max_decoded_bytes = o.max_decoded_bytes;
  if (absl::Status st = codec::DecodeIndices(enc, o.grid, limits, &out->indices); !st.ok()) {
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
  c.set_index_count(static_cast<uint64_t>(o.grid.cells()));
  return true;
}

}  // namespace qv2x::fusion
