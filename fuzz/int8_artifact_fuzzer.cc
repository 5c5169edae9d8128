// INT8 artifact bytes (docs/int8-format.md) -> Int8Artifact, then the INT8 model built
// from it, as the agent and fusion services do on load. Seeds: artifacts the project
// writes (PTQ calibration of the tiny detector, W8 and W4, exported and serialized).
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/model/intra_op_threads.h"
#include "core/quant/int8_artifact.h"
#include "core/quant/int8_runtime.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  qv2x::SetIntraOpThreads(1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::StatusOr<qv2x::quant::Int8Artifact> a =
      qv2x::quant::ParseInt8Artifact(std::string(reinterpret_cast<const char*>(data), size));
  if (!a.ok()) return 0;
  (void)qv2x::quant::Int8Net::Create(*a);
  return 0;
}
