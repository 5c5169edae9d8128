// Checkpoints as PyTorch state_dict files (docs/checkpoint-format.md): one pickled dict of
// name → tensor, written with torch::pickle_save so that Python's torch.load reads it.
// Metadata travels in the same dict as UTF-8 text in uint8 tensors under `__qv2x__.<key>`.
#ifndef QV2X_CORE_MODEL_CHECKPOINT_H_
#define QV2X_CORE_MODEL_CHECKPOINT_H_

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace qv2x {

inline constexpr int kCheckpointFormatVersion = 1;
inline constexpr char kCheckpointMetaPrefix[] = "__qv2x__.";

struct CheckpointMeta {
  int format_version = kCheckpointFormatVersion;
  std::string model;  // model.core_method
  int stage = 0;      // training stage that produced the weights (0: fresh init)
  int epoch = 0;
  std::string codebook_digest;  // CodebookImpl::Digest(); empty without a codebook
  std::string config_yaml;      // the stage YAML text the model was built from
};

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

struct Checkpoint {
  NamedTensors tensors;  // model tensors only, in file order
  CheckpointMeta meta;
  const torch::Tensor* Find(const std::string& name) const;
};

// Parameters and buffers in PyTorch's state_dict order (per module, pre-order: own
// parameters, then own buffers, then children). Tensors alias the module's storage.
NamedTensors StateDict(const torch::nn::Module& module);

// `module`'s state_dict alone, as torch.save(model.state_dict()) writes it.
absl::StatusOr<std::string> SerializeStateDict(const torch::nn::Module& module);
// Serialises `module`'s state_dict plus `meta`. The codebook digest is filled in from the
// module's codebook when it has one.
absl::StatusOr<std::string> SerializeCheckpoint(const torch::nn::Module& module,
                                                CheckpointMeta meta);
// Refuses a truncated or corrupt file before unpickling it (see VerifyArchive).
absl::StatusOr<Checkpoint> ParseCheckpoint(const std::string& bytes);

// The ZIP integrity check (core/common/zip_archive.h) of a pickled dict of tensors, with
// the damaged record mapped to the tensor(s) it stores where the dict still unpickles.
// Errors start with `what` ("checkpoint", "int8 artifact").
absl::Status VerifyArchive(const std::string& bytes, const std::string& what);

// Unpickles an archive that VerifyArchive passed, as torch::pickle_load does, and checks
// that every tensor of the dict it holds lies inside the record that stores its bytes:
// LibTorch takes a storage's size from the pickle, not from its record, so a pickle that
// claims more than the record holds makes every later read run off the allocation (found
// by fuzz/checkpoint). Errors start with `what`.
absl::StatusOr<torch::IValue> UnpickleArchive(const std::string& bytes, const std::string& what);

// `name:` of the stage YAML a file was written from ("" when it records none).
std::string ConfigNameOf(const std::string& config_yaml);

// Atomic write (temporary file + rename) / read of a checkpoint file.
absl::Status SaveCheckpoint(const torch::nn::Module& module, const CheckpointMeta& meta,
                            const std::string& path);
absl::StatusOr<Checkpoint> ReadCheckpoint(const std::string& path);

struct LoadOptions {
  // Leave `codebook.*` as it is in the module and ignore it in the file (stage 2 starts
  // from a stage-1 checkpoint this way).
  bool skip_codebook = false;
  // Accept file tensors the module does not have (an agent encoder loading a full
  // detector checkpoint).
  bool allow_unexpected = false;
};

// Copies the checkpoint into the module. Every missing, mis-shaped or (unless allowed)
// unexpected tensor is reported in one InvalidArgument naming them; nothing is copied
// then. A codebook whose values do not match the recorded digest is DataLoss.
absl::Status LoadStateDict(torch::nn::Module& module, const Checkpoint& checkpoint,
                           const LoadOptions& options = {});

// `error` (of LoadStateDict) prefixed with the file, the stage and config that wrote it and
// the config it was loaded into, so that a wrong preset or stage reads as such.
absl::Status CheckpointRefused(const absl::Status& error, const std::string& path,
                               const CheckpointMeta& meta, const std::string& model_config);

// The module's codebook digest, or "" when it has no codebook.
std::string CodebookDigestOf(const torch::nn::Module& module);

}  // namespace qv2x

#endif  // QV2X_CORE_MODEL_CHECKPOINT_H_
