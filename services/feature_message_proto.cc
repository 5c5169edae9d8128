#include "services/feature_message_proto.h"

#include <utility>

namespace qv2x::services {

v1::FeatureMessage FeatureMessageProto(int agent_id, uint64_t frame_id, int64_t capture_ns,
                                       const Pose& lidar_pose, const codec::IndexGrid& grid,
                                       const std::string& codebook_digest, v1::Precision precision,
                                       codec::EncodedIndices coded) {
  v1::FeatureMessage msg;
  msg.set_agent_id(agent_id);
  msg.set_frame_id(frame_id);
  msg.set_capture_time_unix_ns(capture_ns);
  v1::Pose* pose = msg.mutable_lidar_pose();
  pose->set_x(lidar_pose.x);
  pose->set_y(lidar_pose.y);
  pose->set_z(lidar_pose.z);
  pose->set_roll(lidar_pose.roll);
  pose->set_yaw(lidar_pose.yaw);
  pose->set_pitch(lidar_pose.pitch);
  v1::IndexGrid* g = msg.mutable_grid();
  g->set_levels(static_cast<uint32_t>(grid.levels));
  g->set_height(static_cast<uint32_t>(grid.height));
  g->set_width(static_cast<uint32_t>(grid.width));
  g->set_dict_size(static_cast<uint32_t>(grid.dict_size));
  msg.set_codebook_digest(codebook_digest);
  msg.set_precision(precision);
  msg.set_encoding(coded.encoding == codec::IndexEncoding::kZstd ? v1::INDEX_ENCODING_ZSTD
                                                                 : v1::INDEX_ENCODING_BITPACK);
  msg.set_bits_per_index(static_cast<uint32_t>(coded.bits_per_index));
  msg.set_decoded_bytes(coded.decoded_bytes);
  msg.set_sparse(coded.sparse);
  msg.set_sent_cells(coded.sent_cells);
  msg.set_dictionary_digest(std::move(coded.dictionary_digest));
  msg.set_payload(std::move(coded.payload));
  return msg;
}

}  // namespace qv2x::services
