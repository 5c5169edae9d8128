#include "core/model/model_forward.h"

#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <limits>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/common/file_util.h"
#include "core/common/status_macros.h"
#include "core/data/npz_file.h"
#include "core/model/checkpoint.h"
#include "core/model/detector.h"
#include "core/model/npy_tensor.h"
#include "core/model/op_profile.h"
#include "core/model/torch_status.h"

namespace qv2x {
namespace {

namespace nn = torch::nn;
using TensorDict = c10::Dict<std::string, torch::Tensor>;

constexpr char kAgentPrefix[] = "agents.";

// A tensor that owns exactly its bytes: pickle_save writes a view's whole storage.
torch::Tensor Owned(const torch::Tensor& t) {
  torch::Tensor c = t.contiguous();
  if (c.storage_offset() != 0 || c.storage().nbytes() != c.nbytes()) c = c.clone();
  return c;
}

template <typename T>
torch::Tensor FromVector(const std::vector<T>& v, std::vector<int64_t> shape,
                         torch::ScalarType type) {
  return torch::from_blob(const_cast<T*>(v.data()), shape, type).clone();
}

bool IsNpzPath(const std::string& path) { return absl::EndsWithIgnoreCase(path, ".npz"); }

// The pickled dict torch.load reads, or an .npz (NumPy, no torch needed) when `path` ends
// in .npz; the same keys either way.
absl::Status WriteDict(const TensorDict& dict, const std::string& path) {
  if (IsNpzPath(path)) {
    NpzArrays arrays;
    for (const auto& e : dict) {
      absl::StatusOr<NpyArray> a = TensorToNpy(e.value());
      if (!a.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ": key ", e.key(), ": ", a.status().message()));
      }
      arrays.emplace(e.key(), *std::move(a));
    }
    return WriteNpz(path, arrays);
  }
  QV2X_ASSIGN_OR_RETURN(std::string bytes,
                        TorchCall("pickling", [&]() -> absl::StatusOr<std::string> {
                          const std::vector<char> b = torch::pickle_save(torch::IValue(dict));
                          return std::string(b.begin(), b.end());
                        }));
  return WriteFileAtomic(path, bytes);
}

std::string AgentKey(int64_t i, const std::string& field) {
  return absl::StrCat(kAgentPrefix, i, ".", field);
}

// The keys of an inputs file, each checked for dtype and shape with errors that name it.
class InputDict {
 public:
  InputDict(std::string path, std::map<std::string, torch::Tensor> entries)
      : path_(std::move(path)), entries_(std::move(entries)) {}

  absl::Status Error(const std::string& key, const std::string& what) const {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": key ", key, ": ", what));
  }

  // The tensor under `key` (nullptr when absent and optional), of `dim` dimensions whose
  // sizes equal `sizes` where those are >= 0.
  absl::StatusOr<const torch::Tensor*> Get(const std::string& key, bool integer, int64_t dim,
                                           const std::vector<int64_t>& sizes,
                                           bool required = true) {
    used_.insert(key);
    const auto it = entries_.find(key);
    if (it == entries_.end()) {
      if (!required) return nullptr;
      return absl::InvalidArgumentError(absl::StrCat(path_, ": missing key ", key));
    }
    const torch::Tensor& t = it->second;
    const bool is_int =
        !t.is_floating_point() && !t.is_complex() && t.scalar_type() != torch::kBool;
    if (integer != is_int) {
      return Error(key, absl::StrCat("expected an ", integer ? "integer" : "floating-point",
                                     " dtype, got ", c10::toString(t.scalar_type())));
    }
    bool shape_ok = t.dim() == dim;
    for (size_t d = 0; shape_ok && d < sizes.size(); ++d) {
      shape_ok = sizes[d] < 0 || t.size(static_cast<int64_t>(d)) == sizes[d];
    }
    if (!shape_ok) {
      std::vector<std::string> want;
      for (int64_t s : sizes) want.push_back(s < 0 ? "*" : std::to_string(s));
      return Error(key, absl::StrCat("expected shape [", absl::StrJoin(want, ", "), "], got ",
                                     c10::str(t.sizes())));
    }
    return &t;
  }

  absl::Status NoOtherKeys() const {
    std::vector<std::string> unknown;
    for (const auto& [key, t] : entries_) {
      if (!used_.count(key)) unknown.push_back(key);
    }
    if (unknown.empty()) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(path_, ": unexpected key(s) ",
                                                   absl::StrJoin(unknown, ", "),
                                                   " (docs/model-forward.md lists the keys)"));
  }

 private:
  std::string path_;
  std::map<std::string, torch::Tensor> entries_;
  std::set<std::string> used_;
};

absl::StatusOr<Pillars> ReadPillars(InputDict& in, int64_t agent, const VoxelConfig& voxel) {
  const std::string fkey = AgentKey(agent, "features");
  const std::string nkey = AgentKey(agent, "num_points");
  const std::string ckey = AgentKey(agent, "coords");
  QV2X_ASSIGN_OR_RETURN(const torch::Tensor* f,
                        in.Get(fkey, false, 3, {-1, -1, kNumPointFeatures}));
  if (f->scalar_type() != torch::kFloat32) {
    return in.Error(fkey, absl::StrCat("expected float32, got ", c10::toString(f->scalar_type())));
  }
  const int64_t p = f->size(0), n = f->size(1);
  if (n < 1) return in.Error(fkey, "needs at least one point slot per pillar");
  QV2X_ASSIGN_OR_RETURN(const torch::Tensor* np, in.Get(nkey, true, 1, {p}));
  QV2X_ASSIGN_OR_RETURN(const torch::Tensor* co, in.Get(ckey, true, 2, {p, 2}));
  Pillars out;
  out.grid_w = voxel.grid_w();
  out.grid_h = voxel.grid_h();
  out.max_points = static_cast<int>(n);
  out.num_pillars = static_cast<int>(p);
  const torch::Tensor fc = f->contiguous();
  out.features.assign(fc.data_ptr<float>(), fc.data_ptr<float>() + fc.numel());
  const torch::Tensor npc = np->to(torch::kInt64).contiguous();
  const torch::Tensor cc = co->to(torch::kInt64).contiguous();
  const int64_t* counts = npc.data_ptr<int64_t>();
  const int64_t* cells = cc.data_ptr<int64_t>();
  std::map<int64_t, int64_t> seen;  // cell → pillar
  for (int64_t i = 0; i < p; ++i) {
    if (counts[i] < 1 || counts[i] > n) {
      return in.Error(nkey,
                      absl::StrCat("pillar ", i, " has ", counts[i], " points; expected 1 to ", n));
    }
    const int64_t row = cells[2 * i], col = cells[2 * i + 1];
    if (row < 0 || row >= out.grid_h || col < 0 || col >= out.grid_w) {
      return in.Error(ckey, absl::StrCat("pillar ", i, " at (row ", row, ", col ", col,
                                         ") lies outside the config's ", out.grid_h, " x ",
                                         out.grid_w, " grid"));
    }
    // Two pillars in one cell would make the scatter's result depend on write order.
    const auto [it, fresh] = seen.emplace(row * out.grid_w + col, i);
    if (!fresh) {
      return in.Error(ckey, absl::StrCat("pillars ", it->second, " and ", i, " share the cell (",
                                         row, ", ", col, ")"));
    }
    out.num_points.push_back(static_cast<int32_t>(counts[i]));
    out.coords.push_back(static_cast<int32_t>(row));
    out.coords.push_back(static_cast<int32_t>(col));
  }
  return out;
}

Mat4 MatrixAt(const torch::Tensor& pairwise, int64_t i, int64_t j) {
  Mat4 m;
  const torch::Tensor t = pairwise[i][j].contiguous();
  std::memcpy(m.m.data(), t.data_ptr<double>(), sizeof(double) * 16);
  return m;
}

// The tensors of a torch.save / pickle_save archive: a dict of str → tensor.
absl::StatusOr<std::map<std::string, torch::Tensor>> ArchiveEntries(const std::string& path,
                                                                    const std::string& bytes) {
  const std::string what = absl::StrCat("inputs ", path);
  QV2X_RETURN_IF_ERROR(VerifyArchive(bytes, what));
  QV2X_ASSIGN_OR_RETURN(torch::IValue v, UnpickleArchive(bytes, what));
  if (!v.isGenericDict()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": expected a dict of tensors, got ", v.tagKind()));
  }
  std::map<std::string, torch::Tensor> entries;
  for (const auto& e : v.toGenericDict()) {
    if (!e.key().isString()) return absl::InvalidArgumentError(path + ": a key is not a string");
    if (!e.value().isTensor()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": key ", e.key().toStringRef(), ": not a tensor"));
    }
    entries[e.key().toStringRef()] = e.value().toTensor();
  }
  return entries;
}

// The arrays of an .npz (np.savez), as tensors under the same keys.
absl::StatusOr<std::map<std::string, torch::Tensor>> NpzEntries(const std::string& path,
                                                                const std::string& bytes) {
  QV2X_ASSIGN_OR_RETURN(NpzArrays arrays, ParseNpz(bytes, path));
  std::map<std::string, torch::Tensor> entries;
  while (!arrays.empty()) {  // each array freed once copied
    auto node = arrays.extract(arrays.begin());
    absl::StatusOr<torch::Tensor> t = NpyToTensor(node.mapped());
    if (!t.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": key ", node.key(), ": ", t.status().message()));
    }
    entries[node.key()] = *std::move(t);
  }
  return entries;
}

// Every check and error message applies alike to both file formats' `entries`.
absl::StatusOr<CollatedFrame> ParseInputs(const std::string& path,
                                          std::map<std::string, torch::Tensor> entries,
                                          const VoxelConfig& voxel) {
  InputDict in(path, std::move(entries));
  QV2X_ASSIGN_OR_RETURN(const torch::Tensor* pw, in.Get("pairwise", false, 4, {-1, -1, 4, 4}));
  const int64_t n = pw->size(0);
  if (n < 1 || pw->size(1) != n) {
    return in.Error("pairwise", absl::StrCat("expected shape [n, n, 4, 4] with n >= 1, got ",
                                             c10::str(pw->sizes())));
  }
  if (!torch::isfinite(*pw).all().item<bool>()) return in.Error("pairwise", "not finite");
  QV2X_ASSIGN_OR_RETURN(const torch::Tensor* grid, in.Get("grid_size", true, 1, {2}));
  const torch::Tensor g = grid->to(torch::kInt64);
  if (g[0].item<int64_t>() != voxel.grid_h() || g[1].item<int64_t>() != voxel.grid_w()) {
    return in.Error("grid_size", absl::StrCat("the inputs were made for a ", g[0].item<int64_t>(),
                                              " x ", g[1].item<int64_t>(),
                                              " pillar grid, the "
                                              "config's is ",
                                              voxel.grid_h(), " x ", voxel.grid_w()));
  }
  QV2X_ASSIGN_OR_RETURN(const torch::Tensor* ids, in.Get("agent_ids", true, 1, {n}, false));
  QV2X_ASSIGN_OR_RETURN(const torch::Tensor* poses, in.Get("lidar_pose", false, 2, {n, 6}, false));

  CollatedFrame frame;
  const torch::Tensor pairwise = pw->to(torch::kFloat64);
  for (int64_t i = 0; i < n; ++i) {
    AgentInput a;
    a.agent_id = ids ? static_cast<int>((*ids)[i].item<int64_t>()) : static_cast<int>(i);
    if (poses) {
      const torch::Tensor row = (*poses)[i].to(torch::kFloat64).contiguous();
      std::array<double, 6> arr;
      std::memcpy(arr.data(), row.data_ptr<double>(), sizeof(arr));
      a.lidar_pose = Pose::FromArray(arr);
    }
    QV2X_ASSIGN_OR_RETURN(a.pillars, ReadPillars(in, i, voxel));
    frame.agents.push_back(std::move(a));
  }
  QV2X_RETURN_IF_ERROR(in.NoOtherKeys());
  frame.pairwise.assign(n, std::vector<Mat4>(n));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) frame.pairwise[i][j] = MatrixAt(pairwise, i, j);
  }
  // As CollateFrame: agent k's map is sampled at T_k^-1 T_ego, row 0 of pairwise.
  for (int64_t k = 0; k < n; ++k) {
    frame.warp_to_ego.push_back(NormalizedAffine(frame.pairwise[0][k], voxel.grid_w(),
                                                 voxel.grid_h(), voxel.voxel_size[0]));
  }
  return frame;
}

// max|a − b| / max|b| (0 when both are all zero).
double RelDiff(const torch::Tensor& a, const torch::Tensor& b) {
  const double diff = (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
  const double scale = b.abs().max().item<double>();
  return scale > 0 ? diff / scale : diff;
}

torch::Tensor WireIndices(const torch::Tensor& indices, int64_t dict_size) {
  return dict_size <= 256 ? indices.to(torch::kUInt8) : indices;
}

// The ego half again, level by level, from the same modules and fusion functions that
// EgoFusion::Fuse runs, writing what it computes on the way into `out`. maps: [n, C, h, w].
HeadOutput IntermediatePath(EgoFusionImpl& ego, const torch::Tensor& maps,
                            const torch::Tensor& warps, TensorDict& out) {
  PyramidFusionImpl& pyramid = *ego.pyramid_backbone;
  const int64_t n = maps.size(0);
  std::vector<torch::Tensor> y;
  for (int64_t i = 0; i < n; ++i) {
    y.push_back(maps.narrow(0, i, 1).contiguous(torch::MemoryFormat::ChannelsLast));
  }
  std::vector<torch::Tensor> decoded;
  for (int64_t l = 0; l < pyramid.num_levels(); ++l) {
    std::vector<torch::Tensor> occ, score;
    for (int64_t i = 0; i < n; ++i) {
      y[i] = pyramid.resnet->RunLevel(l, y[i]);
      occ.push_back(pyramid.Head(l, y[i]));
      score.push_back(torch::sigmoid(occ.back()) + 1e-4);
    }
    const torch::Tensor feats = torch::cat(y), scores = torch::cat(score);
    // The weights WeightedFuse applies (pyramid_fusion.cc, FuseFrame), kept for the file.
    torch::Tensor weights = WarpToEgo(scores, warps);
    weights = torch::softmax(
        weights.masked_fill(weights == 0, -std::numeric_limits<float>::infinity()), 0);
    weights = torch::where(torch::isnan(weights), torch::zeros_like(weights), weights);
    const torch::Tensor fused = WeightedFuse(feats, scores, {n}, warps);
    const std::string p = absl::StrCat("pyramid.", l, ".");
    out.insert(p + "features", Owned(feats));
    out.insert(p + "occupancy", Owned(torch::cat(occ)));
    out.insert(p + "warped", Owned(WarpToEgo(feats, warps)));
    out.insert(p + "weights", Owned(weights));
    out.insert(p + "fused", Owned(fused));
    decoded.push_back(pyramid.Deblock(l, fused));
  }
  const torch::Tensor fused = torch::cat(decoded, 1);
  out.insert("fused", Owned(fused));
  const torch::Tensor shrunk = ego.shrink_conv(fused.contiguous(torch::MemoryFormat::ChannelsLast));
  out.insert("shrink", Owned(shrunk));
  HeadOutput heads;
  heads.cls = ego.cls_head(shrunk);
  heads.reg = ego.reg_head(shrunk);
  heads.dir = ego.dir_head(shrunk);
  return heads;
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

absl::StatusOr<ForwardReport> Forward(Detector& det, const CollatedFrame& frame,
                                      const ForwardOptions& options) {
  c10::InferenceMode guard;
  AgentEncoder enc = det->agent_encoder();
  EgoFusion ego = det->ego_fusion();
  const bool with_codebook = det->has_codebook();
  const int64_t dict_size = with_codebook ? det->codebook()->dict_size() : 0;
  const int64_t n = static_cast<int64_t>(frame.agents.size());
  TensorDict out;
  ForwardReport report;
  std::vector<torch::Tensor> bev, indices, maps;
  std::vector<AgentMessage> messages;
  for (int64_t i = 0; i < n; ++i) {
    const Pillars& p = frame.agents[i].pillars;
    QV2X_ASSIGN_OR_RETURN(AgentEncoding e, enc->Encode(p));
    const PillarBatch batch = MakePillarBatch({&p});
    out.insert(AgentKey(i, "pillar_features"),
               Owned(enc->encoder_m1->pillar_vfe(batch.features, batch.num_points)));
    bev.push_back(e.features.unsqueeze(0));
    AgentMessage m;
    m.warp = frame.warp_to_ego[i];
    if (with_codebook) {
      indices.push_back(e.indices.unsqueeze(0));
      QV2X_ASSIGN_OR_RETURN(torch::Tensor d, det->codebook()->Decode(indices.back()));
      maps.push_back(d);
      m.indices = WireIndices(e.indices, dict_size);
    } else {
      maps.push_back(bev.back());
      m.features = e.features;
    }
    messages.push_back(std::move(m));
  }
  QV2X_ASSIGN_OR_RETURN(HeadOutput heads, ego->Fuse(messages));

  const torch::Tensor warps = WarpTensor(frame.warp_to_ego);
  out.insert("warp_to_ego", warps);
  out.insert("bev_features", Owned(torch::cat(bev)));
  if (with_codebook) {
    report.codebook_digest = det->codebook()->Digest();
    const torch::Tensor all = torch::cat(indices);  // [n, L·m, h, w], level-major
    const int64_t m = det->codebook()->segments();
    for (int64_t l = 0; l < det->codebook()->levels(); ++l) {
      out.insert(absl::StrCat("indices.", l), Owned(all.narrow(1, l * m, m)));
    }
    out.insert("decoded", Owned(torch::cat(maps)));
  }
  const HeadOutput again = IntermediatePath(*ego, torch::cat(maps), warps, out);
  report.intermediate_path_rel_diff =
      std::max({RelDiff(again.cls, heads.cls), RelDiff(again.reg, heads.reg),
                RelDiff(again.dir, heads.dir)});
  out.insert("cls", Owned(heads.cls));
  out.insert("reg", Owned(heads.reg));
  out.insert("dir", Owned(heads.dir));
  if (!options.out.empty()) QV2X_RETURN_IF_ERROR(WriteDict(out, options.out));
  out = TensorDict();

  // The whole frame in one process: every agent encoded, then fused.
  auto whole_frame = [&]() -> absl::Status {
    std::vector<AgentMessage> sent = messages;
    for (int64_t i = 0; i < n; ++i) {
      QV2X_ASSIGN_OR_RETURN(AgentEncoding e, enc->Encode(frame.agents[i].pillars));
      if (with_codebook) {
        sent[i].indices = WireIndices(e.indices, dict_size);
      } else {
        sent[i].features = e.features;
      }
    }
    return ego->Fuse(sent).status();
  };
  for (int r = 0; r < options.repeat; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    QV2X_RETURN_IF_ERROR(enc->Encode(frame.agents[0].pillars).status());
    report.encode_s.push_back(Seconds(t0));
    t0 = std::chrono::steady_clock::now();
    QV2X_RETURN_IF_ERROR(ego->Fuse(messages).status());
    report.fuse_s.push_back(Seconds(t0));
    t0 = std::chrono::steady_clock::now();
    QV2X_RETURN_IF_ERROR(whole_frame());
    report.frame_s.push_back(Seconds(t0));
  }
  if (options.profile_runs > 0) {
    QV2X_ASSIGN_OR_RETURN(report.profile,
                          ProfileOps(whole_frame, options.profile_runs, &report.profile_frame_ms));
    report.sgemm_gflops = MeasureSgemmGflops();
  }
  return report;
}

}  // namespace

absl::Status WriteModelInputs(const CollatedFrame& frame, const std::string& path) {
  const int64_t n = static_cast<int64_t>(frame.agents.size());
  if (n == 0) return absl::InvalidArgumentError("model inputs: the frame has no agents");
  if (frame.pairwise.size() != static_cast<size_t>(n)) {
    return absl::InvalidArgumentError("model inputs: pairwise transforms do not match the agents");
  }
  return TorchCall("writing model inputs", [&]() -> absl::Status {
    TensorDict d;
    const Pillars& first = frame.agents.front().pillars;
    d.insert("grid_size", torch::tensor({int64_t{first.grid_h}, int64_t{first.grid_w}}));
    std::vector<int64_t> ids;
    std::vector<double> poses, pairwise;
    for (const AgentInput& a : frame.agents) {
      ids.push_back(a.agent_id);
      for (double v : a.lidar_pose.ToArray()) poses.push_back(v);
    }
    for (const auto& row : frame.pairwise) {
      if (row.size() != static_cast<size_t>(n)) {
        return absl::InvalidArgumentError("model inputs: pairwise transforms are not n x n");
      }
      for (const Mat4& m : row) pairwise.insert(pairwise.end(), m.m.begin(), m.m.end());
    }
    d.insert("agent_ids", FromVector(ids, {n}, torch::kInt64));
    d.insert("lidar_pose", FromVector(poses, {n, 6}, torch::kFloat64));
    d.insert("pairwise", FromVector(pairwise, {n, n, 4, 4}, torch::kFloat64));
    for (int64_t i = 0; i < n; ++i) {
      const Pillars& p = frame.agents[i].pillars;
      d.insert(AgentKey(i, "features"),
               FromVector(p.features, {p.num_pillars, p.max_points, kNumPointFeatures},
                          torch::kFloat32));
      d.insert(AgentKey(i, "num_points"), FromVector(p.num_points, {p.num_pillars}, torch::kInt32));
      d.insert(AgentKey(i, "coords"), FromVector(p.coords, {p.num_pillars, 2}, torch::kInt32));
    }
    return WriteDict(d, path);
  });
}

absl::StatusOr<CollatedFrame> ReadModelInputs(const std::string& path, const VoxelConfig& voxel) {
  QV2X_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  // By content: torch.save's archives are ZIPs too, but of data.pkl and storages. The name
  // decides only for what is no ZIP, so that a broken .npz gets the .npz reader's error.
  const bool npz =
      LooksLikeNpz(bytes) || (IsNpzPath(path) && !absl::StartsWith(bytes, "PK\x03\x04"));
  return TorchCall("reading model inputs", [&]() -> absl::StatusOr<CollatedFrame> {
    QV2X_ASSIGN_OR_RETURN(auto entries,
                          npz ? NpzEntries(path, bytes) : ArchiveEntries(path, bytes));
    bytes = std::string();
    return ParseInputs(path, std::move(entries), voxel);
  });
}

absl::StatusOr<ForwardReport> RunModelForward(const StageConfig& cfg, const std::string& checkpoint,
                                              const CollatedFrame& frame,
                                              const ForwardOptions& options) {
  if (frame.agents.empty()) return absl::InvalidArgumentError("model forward: no agents");
  if (frame.warp_to_ego.size() != frame.agents.size()) {
    return absl::InvalidArgumentError("model forward: one warp per agent expected");
  }
  if (options.repeat < 0 || options.profile_runs < 0) {
    return absl::InvalidArgumentError(absl::StrCat("model forward: repeat (", options.repeat,
                                                   ") and profile runs (", options.profile_runs,
                                                   ") must be >= 0"));
  }
  QV2X_ASSIGN_OR_RETURN(Checkpoint ckpt, ReadCheckpoint(checkpoint));
  QV2X_ASSIGN_OR_RETURN(Detector det, MakeDetector(cfg));
  if (absl::Status st = LoadStateDict(*det, ckpt); !st.ok()) {
    return CheckpointRefused(st, checkpoint, ckpt.meta, cfg.name);
  }
  return TorchCall("model forward", [&]() -> absl::StatusOr<ForwardReport> {
    det->eval();
    if (options.freeze) det->FreezeForInference();
    return Forward(det, frame, options);
  });
}

}  // namespace qv2x
