// Point-cloud files: PCD (ASCII and binary; intensity as an `intensity` field or packed in
// an Open3D-style `rgb` colour) and V2X-Real `.bin` (float32 x, y, z, intensity rows).
#ifndef QV2X_CORE_DATA_POINT_CLOUD_IO_H_
#define QV2X_CORE_DATA_POINT_CLOUD_IO_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/data/frame.h"

namespace qv2x {

// Parses PCD bytes (`origin` names the source in errors). Points with a non-finite
// coordinate (organised clouds' holes) are dropped. binary_compressed is not supported.
absl::StatusOr<PointCloud> ParsePcd(const std::string& bytes, const std::string& origin);
absl::StatusOr<PointCloud> ReadPcd(const std::string& path);
// Binary PCD with float32 fields x y z intensity.
std::string EncodePcdBinary(const PointCloud& cloud);
absl::Status WritePcd(const std::string& path, const PointCloud& cloud);

// Parses `.bin` bytes (rows of float32 x, y, z, intensity); `origin` names the source in
// errors.
absl::StatusOr<PointCloud> ParseBin(const std::string& bytes, const std::string& origin);
absl::StatusOr<PointCloud> ReadBin(const std::string& path);
// By extension: .pcd or .bin.
absl::StatusOr<PointCloud> ReadPointCloud(const std::string& path);

}  // namespace qv2x

#endif  // QV2X_CORE_DATA_POINT_CLOUD_IO_H_
