// Checks an agent's FeatureMessage against what this fusion service holds (scene agents,
// the model's index grid, the codebooks it can decode, size limits) and decodes the index
// map. The held codebooks change during a model roll-out (SetCodebooks); the rest is fixed.
// Every refusal carries a RejectReason for the metric label and a one-line detail.
#ifndef QV2X_FUSION_SERVER_MESSAGE_VALIDATOR_H_
#define QV2X_FUSION_SERVER_MESSAGE_VALIDATOR_H_

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "core/codec/index_codec.h"
#include "core/codec/zstd_dictionary.h"
#include "fusion_server/frame_assembler.h"
#include "qv2x/v1/features.pb.h"

namespace qv2x::fusion {

struct ValidatorOptions {
  std::set<int> agents;             // agent ids of the scene
  codec::IndexGrid grid;            // the model's index map shape
  std::set<std::string> codebooks;  // digests of the codebooks held at start
  // zstd dictionaries agents may compress against, by digest.
  std::map<std::string, std::shared_ptr<const codec::ZstdDictionary>> dictionaries;
  int64_t feature_channels = 0;     // C of the FP32 feature map (bandwidth comparison)
  uint64_t max_message_bytes = 0;   // serialized message
  uint64_t max_decoded_bytes = 0;   // index map after decompression
  // Poses beyond these bounds are refused: within them every warp between two agents stays
  // finite (OPV2V maps span a few km; angles are degrees).
  double max_position_m = 1e5;
  double max_angle_deg = 3600;
  // Capture times this far ahead of or behind the fusion service's clock are refused.
  int64_t max_capture_ahead_ns = 5'000'000'000;
  int64_t max_capture_age_ns = 60'000'000'000;
  size_t max_digest_bytes = 128;  // SHA-256 hex is 64
};

struct Rejection {
  v1::RejectReason reason = v1::REJECT_REASON_UNSPECIFIED;
  std::string detail;
};

// Lower-case label for qv2x_fusion_rejected_messages_total{reason}.
std::string ReasonLabel(v1::RejectReason reason);

class MessageValidator {
 public:
  explicit MessageValidator(ValidatorOptions options) : options_(std::move(options)) {}

  // On success fills `out` (arrival time left to the caller) and returns true. `now_ns`:
  // the service's wall clock (Unix ns), for the capture-time window.
  bool Validate(const v1::FeatureMessage& msg, int64_t now_ns, ReceivedMessage* out,
                Rejection* why) const;

  bool KnowsAgent(int agent_id) const { return options_.agents.count(agent_id) > 0; }
  void SetCodebooks(std::set<std::string> digests);

 private:
  ValidatorOptions options_;
  mutable std::mutex mu_;  // options_.codebooks
};

}  // namespace qv2x::fusion

#endif  // QV2X_FUSION_SERVER_MESSAGE_VALIDATOR_H_
