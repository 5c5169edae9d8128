// MRPT rawlog files (`.rawlog`, gzip-compressed or plain), as MRPT's own datasets ship them
// (Debian's mrpt-common: /usr/share/mrpt/datasets/test_velodyne_VLP16.rawlog): reads the
// first CObservationVelodyneScan, its sensor label and pose and the raw VLP-16 packets.
// Layout read (serialization version 2 of both classes): a class header (0x80 | name
// length, the name, a version byte), the timestamp (uint64), the label (uint32 length +
// bytes), min and max range (float64), the sensor pose as a CPose3D object (x, y, z, qr,
// qx, qy, qz as float64, then MRPT's end-of-object byte 0x88), the packet count (uint32)
// and the packets. What follows the packets (calibration, a decoded cloud) is not read.
#ifndef QV2X_CORE_DATA_MRPT_RAWLOG_H_
#define QV2X_CORE_DATA_MRPT_RAWLOG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/data/frame.h"

namespace qv2x {

struct MrptVelodyneScan {
  std::string label;
  uint64_t timestamp = 0;  // MRPT's: 100 ns ticks since 1601-01-01
  double min_range_m = 0, max_range_m = 0;
  double position[3] = {0, 0, 0};       // sensor on the vehicle, metres
  double quaternion[4] = {1, 0, 0, 0};  // qr, qx, qy, qz
  std::vector<std::string> packets;     // kVlp16PacketBytes each

  // The sensor pose on the vehicle as a qv2x / OPV2V pose (degrees).
  Pose SensorPose() const;
};

// `bytes` is the file's content (gzip or plain); `origin` names it in errors.
absl::StatusOr<MrptVelodyneScan> ParseMrptVelodyneScan(const std::string& bytes,
                                                       const std::string& origin);
absl::StatusOr<MrptVelodyneScan> ReadMrptVelodyneScan(const std::string& path);

// The scan's points (DecodeVlp16Packets, within its max range), in the sensor frame.
absl::StatusOr<PointCloud> MrptScanPoints(const MrptVelodyneScan& scan, const std::string& origin);

}  // namespace qv2x

#endif  // QV2X_CORE_DATA_MRPT_RAWLOG_H_
