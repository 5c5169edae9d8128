// Point-cloud files: PCD (ascii, binary and binary_compressed (LZF); intensity as an
// `intensity` field or packed in an Open3D-style `rgb` colour) and V2X-Real `.bin` (float32
// x, y, z, intensity rows).
#ifndef QV2X_CORE_DATA_POINT_CLOUD_IO_H_
#define QV2X_CORE_DATA_POINT_CLOUD_IO_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/data/frame.h"

namespace qv2x {

// Parses PCD bytes (`origin` names the source in errors). Points with a non-finite
// coordinate (organised clouds' holes) are dropped.
absl::StatusOr<PointCloud> ParsePcd(const std::string& bytes, const std::string& origin);
absl::StatusOr<PointCloud> ReadPcd(const std::string& path);

// PCD's three DATA layouts.
enum class PcdData { kAscii, kBinary, kBinaryCompressed };
absl::StatusOr<PcdData> ParsePcdData(const std::string& name);  // "ascii", "binary", ...
// PCD with float32 fields x y z intensity (ASCII: 9 significant digits, exact for float32).
std::string EncodePcd(const PointCloud& cloud, PcdData data = PcdData::kBinary);
absl::Status WritePcd(const std::string& path, const PointCloud& cloud,
                      PcdData data = PcdData::kBinary);

// Parses `.bin` bytes (rows of float32 x, y, z, intensity); `origin` names the source in
// errors.
absl::StatusOr<PointCloud> ParseBin(const std::string& bytes, const std::string& origin);
absl::StatusOr<PointCloud> ReadBin(const std::string& path);
// By extension: .pcd or .bin.
absl::StatusOr<PointCloud> ReadPointCloud(const std::string& path);

}  // namespace qv2x

#endif  // QV2X_CORE_DATA_POINT_CLOUD_IO_H_
