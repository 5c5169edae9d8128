// What one agent runs on its own sweep: crop, pillarise, the encoder half of the model
// and the codebook, in FP32 or (when an INT8 artifact is loaded) INT8. One AgentModel is
// immutable once loaded; a swap replaces the whole object between two frames.
#ifndef QV2X_AGENT_AGENT_MODEL_H_
#define QV2X_AGENT_AGENT_MODEL_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/codec/index_codec.h"
#include "core/data/frame.h"
#include "core/voxel/cell_selection.h"

namespace qv2x::agent {

enum class Precision { kFp32, kInt8 };
const char* PrecisionName(Precision p);  // "fp32" | "int8"
absl::StatusOr<Precision> ParsePrecision(const std::string& name);

struct EncodedSweep {
  std::vector<int32_t> indices;  // [levels, h, w]
  codec::IndexGrid grid;
  uint64_t fp32_feature_bytes = 0;  // C · h · w · 4: what sending features would cost
  int num_pillars = 0;
  std::vector<uint8_t> cell_mask;  // [h, w] cells to send; empty: all (a dense map)
};

class AgentModel {
 public:
  // `checkpoint` empty: the seeded initial model (see core/model/runtime_model.h).
  // `int8_artifact` empty: FP32 only.
  static absl::StatusOr<std::shared_ptr<AgentModel>> Load(const std::string& config_path,
                                                          const std::string& checkpoint,
                                                          const std::string& int8_artifact);
  ~AgentModel();

  // `sparse`: select the cells worth sending (cell_selection.h); null: send every cell.
  absl::StatusOr<EncodedSweep> Encode(const PointCloud& sweep, Precision precision,
                                      const CellSelection* sparse = nullptr) const;

  const std::string& checkpoint() const { return checkpoint_; }
  const std::string& int8_artifact() const { return int8_artifact_; }
  const std::string& codebook_digest() const { return digest_; }
  bool has_int8() const;

 private:
  struct Impl;
  AgentModel() = default;
  std::unique_ptr<Impl> impl_;
  std::string checkpoint_, int8_artifact_, digest_;
};

}  // namespace qv2x::agent

#endif  // QV2X_AGENT_AGENT_MODEL_H_
