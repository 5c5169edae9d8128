// PCD bytes (ascii, binary or binary_compressed) -> PointCloud. Seeds: PCDs the project
// writes (EncodePcd of simulated sweeps, each DATA layout) and the small ASCII / rgb files
// in fuzz/corpus/pcd. A cloud that parses holds finite coordinates only and survives the
// project's own binary and binary_compressed writers unchanged.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "core/data/point_cloud_io.h"
#include "fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<qv2x::PointCloud> cloud = qv2x::ParsePcd(bytes, "fuzz.pcd");
  if (!cloud.ok()) return 0;
  for (const qv2x::Point& p : *cloud) {
    QV2X_FUZZ_CHECK(std::isfinite(p.x) && std::isfinite(p.y) && std::isfinite(p.z),
                    "a non-finite point was kept");
  }
  for (qv2x::PcdData layout : {qv2x::PcdData::kBinary, qv2x::PcdData::kBinaryCompressed}) {
    absl::StatusOr<qv2x::PointCloud> back =
        qv2x::ParsePcd(qv2x::EncodePcd(*cloud, layout), "fuzz-roundtrip.pcd");
    QV2X_FUZZ_CHECK(back.ok() && back->size() == cloud->size(), "the written PCD does not parse");
    // Bitwise, so that a NaN intensity compares equal to itself.
    QV2X_FUZZ_CHECK(cloud->empty() || std::memcmp(back->data(), cloud->data(),
                                                  cloud->size() * sizeof(qv2x::Point)) == 0,
                    "the written PCD reads back different points");
  }
  return 0;
}
