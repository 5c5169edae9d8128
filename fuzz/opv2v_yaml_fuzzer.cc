// An OPV2V agent YAML (lidar_pose + vehicles) -> Opv2vAgentInfo. Seeds: the YAMLs that
// `qv2x sim --out` writes (Opv2vAgentYaml) for simulated frames. What parses is finite:
// a NaN or infinite pose or box would poison every warp and loss downstream.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/data/opv2v_reader.h"
#include "fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<qv2x::Opv2vAgentInfo> info = qv2x::ParseOpv2vAgentYaml(text, "fuzz.yaml");
  if (!info.ok()) return 0;
  const qv2x::Pose& p = info->lidar_pose;
  for (double v : {p.x, p.y, p.z, p.roll, p.yaw, p.pitch}) {
    QV2X_FUZZ_CHECK(std::isfinite(v), "non-finite lidar_pose accepted");
  }
  for (const qv2x::GtObject& o : info->objects) {
    const qv2x::Box3D& b = o.box;
    for (double v : {b.x, b.y, b.z, b.l, b.w, b.h, b.yaw}) {
      QV2X_FUZZ_CHECK(std::isfinite(v), "non-finite box accepted");
    }
    QV2X_FUZZ_CHECK(b.l >= 0 && b.w >= 0 && b.h >= 0, "negative box size accepted");
  }
  return 0;
}
