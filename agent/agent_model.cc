#include "agent/agent_model.h"

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"
#include "core/model/runtime_model.h"
#include "core/model/torch_status.h"
#include "core/quant/int8_model.h"
#include "core/voxel/pillars.h"

namespace qv2x::agent {

const char* PrecisionName(Precision p) { return p == Precision::kInt8 ? "int8" : "fp32"; }

absl::StatusOr<Precision> ParsePrecision(const std::string& name) {
  if (name == "fp32") return Precision::kFp32;
  if (name == "int8") return Precision::kInt8;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown precision \"", name, "\" (expected fp32 or int8)"));
}

struct AgentModel::Impl {
  RuntimeModel fp32;
  std::unique_ptr<quant::Int8AgentEncoder> int8;  // null: FP32 only
};

AgentModel::~AgentModel() = default;

bool AgentModel::has_int8() const { return impl_->int8 != nullptr; }

absl::StatusOr<std::shared_ptr<AgentModel>> AgentModel::Load(const std::string& config_path,
                                                             const std::string& checkpoint,
                                                             const std::string& int8_artifact) {
  std::shared_ptr<AgentModel> m(new AgentModel());
  m->impl_ = std::make_unique<Impl>();
  QV2X_ASSIGN_OR_RETURN(m->impl_->fp32, LoadRuntimeModel(config_path, checkpoint));
  if (!int8_artifact.empty()) {
    QV2X_ASSIGN_OR_RETURN(m->impl_->int8, quant::Int8AgentEncoder::Load(int8_artifact));
    // Both encoders must speak the same codebook: the fusion service decodes either.
    if (m->impl_->int8->codebook_digest() != m->impl_->fp32.codebook_digest) {
      return absl::FailedPreconditionError(
          absl::StrCat("INT8 artifact ", int8_artifact, " (config ", m->impl_->int8->config().name,
                       ") holds codebook ", m->impl_->int8->codebook_digest(),
                       ", the FP32 model (config ", m->impl_->fp32.cfg.name, ") ",
                       m->impl_->fp32.codebook_digest, ": quantize the checkpoint the agent runs"));
    }
  }
  m->checkpoint_ = checkpoint;
  m->int8_artifact_ = int8_artifact;
  m->digest_ = m->impl_->fp32.codebook_digest;
  return m;
}

absl::StatusOr<EncodedSweep> AgentModel::Encode(const PointCloud& sweep, Precision precision,
                                                const CellSelection* sparse) const {
  if (precision == Precision::kInt8 && !has_int8()) {
    return absl::FailedPreconditionError("no INT8 encoder loaded");
  }
  const StageConfig& cfg = impl_->fp32.cfg;
  const Pillars pillars =
      Pillarize(CropPoints(sweep, cfg.preprocess), cfg.preprocess, PillarMode::kTest);
  QV2X_ASSIGN_OR_RETURN(
      EncodedSweep out, TorchCall("encode", [&]() -> absl::StatusOr<EncodedSweep> {
        torch::NoGradGuard no_grad;
        torch::Tensor indices;
        if (precision == Precision::kInt8) {
          QV2X_ASSIGN_OR_RETURN(indices, impl_->int8->EncodeIndices(pillars));
        } else {
          QV2X_ASSIGN_OR_RETURN(AgentEncoding enc,
                                impl_->fp32.detector->agent_encoder()->Encode(pillars));
          indices = enc.indices;
        }
        EncodedSweep out;
        const torch::Tensor idx = indices.to(torch::kInt32).contiguous();
        out.grid = {idx.size(0), idx.size(1), idx.size(2), cfg.model.codebook.dict_size};
        out.indices.assign(idx.data_ptr<int32_t>(), idx.data_ptr<int32_t>() + idx.numel());
        // What sending the backbone's FP32 feature map instead would cost.
        out.fp32_feature_bytes = static_cast<uint64_t>(cfg.model.codebook.channel) * idx.size(1) *
                                 idx.size(2) * sizeof(float);
        out.num_pillars = pillars.num_pillars;
        return out;
      }));
  if (sparse != nullptr) {
    QV2X_ASSIGN_OR_RETURN(out.cell_mask,
                          SelectCells(pillars, out.grid.height, out.grid.width, *sparse));
  }
  return out;
}

}  // namespace qv2x::agent
