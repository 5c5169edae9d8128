// The FeatureMessage an agent sends for one encoded sweep: built by the agent service, and
// by what must produce the same bytes (the fuzz seed writer, `qv2x infer`'s wire sizes).
#ifndef QV2X_SERVICES_FEATURE_MESSAGE_PROTO_H_
#define QV2X_SERVICES_FEATURE_MESSAGE_PROTO_H_

#include <cstdint>
#include <string>

#include "core/codec/index_codec.h"
#include "core/geometry/transform.h"
#include "qv2x/v1/features.pb.h"

namespace qv2x::services {

// Every field but encode_seconds and model_generation, which the sender sets; `coded`'s
// payload is moved into the message.
v1::FeatureMessage FeatureMessageProto(int agent_id, uint64_t frame_id, int64_t capture_ns,
                                       const Pose& lidar_pose, const codec::IndexGrid& grid,
                                       const std::string& codebook_digest, v1::Precision precision,
                                       codec::EncodedIndices coded);

}  // namespace qv2x::services

#endif  // QV2X_SERVICES_FEATURE_MESSAGE_PROTO_H_
