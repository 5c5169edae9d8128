// V2X-Real / KITTI `.bin` bytes (float32 x, y, z, intensity rows) -> PointCloud. Seeds:
// simulated sweeps written as such rows.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/data/point_cloud_io.h"
#include "fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<qv2x::PointCloud> cloud = qv2x::ParseBin(bytes, "fuzz.bin");
  QV2X_FUZZ_CHECK(cloud.ok() == (size % 16 == 0), "whole rows parse, anything else is refused");
  if (cloud.ok()) QV2X_FUZZ_CHECK(cloud->size() == size / 16, "one point per row");
  return 0;
}
