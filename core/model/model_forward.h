// `qv2x model forward` and `qv2x model inputs` (docs/model-forward.md): one collated frame
// as a file of tensors (PyTorch-readable, or NumPy .npz), and the model run on it with every
// head's output and the intermediate tensors written out (the same two formats), so that
// another implementation (e.g. bench/pytorch_reference.py) can be compared number by
// number, and timed on the same inputs. Torch-free: the CLI includes this header, never
// <torch/torch.h>.
#ifndef QV2X_CORE_MODEL_MODEL_FORWARD_H_
#define QV2X_CORE_MODEL_MODEL_FORWARD_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/config/model_config.h"
#include "core/model/op_profile.h"
#include "core/voxel/pillars.h"

namespace qv2x {

// Writes the frame's agents (pillars, ids, lidar poses) and pairwise transforms: an .npz
// (stored, as np.savez writes it) when `path` ends in .npz, else a torch.load-able dict.
absl::Status WriteModelInputs(const CollatedFrame& frame, const std::string& path);

// Reads a file written by WriteModelInputs, by Python's torch.save or by NumPy's np.savez /
// np.savez_compressed with the same keys (an .npz is told by its content or its name),
// checked against `voxel` (the grid); the warps are computed from the pairwise transforms
// as CollateFrame does. Errors name the file and the key.
absl::StatusOr<CollatedFrame> ReadModelInputs(const std::string& path, const VoxelConfig& voxel);

struct ForwardOptions {
  std::string out;       // the outputs file (.npz: NumPy's); empty: nothing written
  int repeat = 0;        // timed runs after the written one (0: no timing)
  int profile_runs = 0;  // whole-frame runs under LibTorch's profiler after those (0: none)
  bool freeze = true;    // the services' frozen convolutions (false: the plain eval layers)
};

struct ForwardReport {
  std::string codebook_digest;  // empty without a codebook
  // Timed runs, in seconds: one agent's encode (agent 0: pillars → indices or features),
  // the ego half fusing every agent (indices as uint8 when the codebook has ≤ 256 words,
  // as on the wire), and the whole frame in one process (every agent encoded, then fused).
  std::vector<double> encode_s, fuse_s, frame_s;
  // Largest max|a−b| / max|b| between the written intermediate path's heads (a) and
  // EgoFusion::Fuse's (b), the ones written: they are the same computation.
  double intermediate_path_rel_diff = 0;
  std::vector<OpProfileRow> profile;  // per whole frame, by descending self time
  double profile_frame_ms = 0;        // one whole frame's wall time under the profiler
  double sgemm_gflops = 0;            // MeasureSgemmGflops() after profiling
};

// Loads `checkpoint` into the model of `cfg` (eval mode) and runs it on `frame`: each
// agent through AgentEncoder::Encode, then EgoFusion::Fuse, as the services do.
absl::StatusOr<ForwardReport> RunModelForward(const StageConfig& cfg, const std::string& checkpoint,
                                              const CollatedFrame& frame,
                                              const ForwardOptions& options);

}  // namespace qv2x

#endif  // QV2X_CORE_MODEL_MODEL_FORWARD_H_
