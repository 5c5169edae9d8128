// Velodyne VLP-16 data packets, as the sensor sends them over UDP (VLP-16 user manual): 1206
// bytes, 12 firing blocks of 100 bytes (flag 0xFFEE, azimuth in 0.01°, then two firing
// sequences of 16 returns: distance in 2 mm units and reflectivity), a 4-byte timestamp,
// the return mode and the product id.
#ifndef QV2X_CORE_DATA_VELODYNE_PACKETS_H_
#define QV2X_CORE_DATA_VELODYNE_PACKETS_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/data/frame.h"

namespace qv2x {

inline constexpr size_t kVlp16PacketBytes = 1206;

// Points of every return in `packets` (each kVlp16PacketBytes long), in the sensor frame
// with qv2x's axes (x forward, y left, z up; Velodyne's own frame has y forward, x right).
// Returns with distance 0 (no echo) or beyond `max_range_m` are dropped; intensity is the
// reflectivity / 255. The azimuth of a block's second firing sequence is interpolated
// halfway to the next block's. A packet that is not a VLP-16 data packet (size, block
// flags, azimuth range) is an InvalidArgument naming `origin` and the packet.
absl::StatusOr<PointCloud> DecodeVlp16Packets(const std::vector<absl::string_view>& packets,
                                              const std::string& origin,
                                              float max_range_m = 130.0f);

// VLP-16 laser elevation in degrees, by laser id 0..15 (the manual's table).
float Vlp16LaserElevationDeg(int laser);

}  // namespace qv2x

#endif  // QV2X_CORE_DATA_VELODYNE_PACKETS_H_
