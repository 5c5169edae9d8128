// Writes the fuzz targets' seed corpora from what the project itself produces, so that the
// seeds follow the formats as they evolve: OUT/<target>/<name> for
//   feature_message  FeatureMessages of the tiny scene's agents as the agent sends them
//                    (FP32 and INT8 encoders, bitpack and zstd), capture time fuzz::kSeedCaptureNs
//   index_codec      the same index maps behind index_codec_fuzzer.cc's 12-byte header
//   pcd, kitti_bin   sweeps of the tiny scene (every 64th point) as binary PCD / .bin rows
//   opv2v_yaml       the agent YAMLs `qv2x sim --out` writes
//   checkpoint       checkpoints of the tiny detector, of its codebook and of one linear layer
//   int8_artifact    W8 and W4 INT8 artifacts of the tiny detector (calibration only), and
//                    the same cut to two layers
// The stage and scene config targets take configs/ directly.
// Usage: qv2x_fuzz_seed_writer OUT_DIR (run from the source root).
#include <torch/torch.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/agent_model.h"
#include "core/codec/index_codec.h"
#include "core/common/file_util.h"
#include "core/common/status_macros.h"
#include "core/data/opv2v_writer.h"
#include "core/data/point_cloud_io.h"
#include "core/detection/anchors.h"
#include "core/model/checkpoint.h"
#include "core/model/codebook.h"
#include "core/model/intra_op_threads.h"
#include "core/model/runtime_model.h"
#include "core/quant/int8_artifact.h"
#include "core/quant/ptq_pipeline.h"
#include "core/training/frame_source.h"
#include "core/training/sample_builder.h"
#include "fuzz/fuzz_clock.h"
#include "qv2x/v1/features.pb.h"
#include "services/feature_message_proto.h"

namespace qv2x::fuzz {
namespace {

namespace fs = std::filesystem;

constexpr char kConfig[] = "configs/tiny/stage3.yaml";
constexpr char kScene[] = "sim:configs/scenes/tiny.yaml";
constexpr int kFrames = 2;
constexpr size_t kPointStride = 64;

class Corpus {
 public:
  explicit Corpus(fs::path root) : root_(std::move(root)) {}
  absl::Status Write(const std::string& target, const std::string& name, const std::string& bytes) {
    const fs::path dir = root_ / target;
    std::error_code ec;
    fs::create_directories(dir, ec);
    ++files_;
    return WriteFileAtomic((dir / name).string(), bytes);
  }
  int files() const { return files_; }

 private:
  fs::path root_;
  int files_ = 0;
};

std::string IndexCodecSeed(const codec::IndexGrid& g, const codec::EncodedIndices& e) {
  // index_codec_fuzzer.cc's header; the tiny grid fits its ranges.
  const uint32_t dict = static_cast<uint32_t>(g.dict_size - 2);
  const uint32_t decoded = static_cast<uint32_t>(e.decoded_bytes);
  std::string h = {static_cast<char>(g.levels - 1),
                   static_cast<char>(g.height - 1),
                   static_cast<char>(g.width - 1),
                   static_cast<char>(dict & 0xff),
                   static_cast<char>(dict >> 8),
                   static_cast<char>(e.encoding == codec::IndexEncoding::kZstd ? 1 : 0),
                   static_cast<char>(e.bits_per_index),
                   static_cast<char>(decoded & 0xff),
                   static_cast<char>((decoded >> 8) & 0xff),
                   static_cast<char>((decoded >> 16) & 0xff),
                   static_cast<char>(decoded >> 24),
                   2};  // zstd level 3
  return h + e.payload;
}

// The message as agent/agent_runner.cc builds it.
v1::FeatureMessage Message(const AgentFrame& a, uint64_t frame_id, const agent::EncodedSweep& enc,
                           const codec::EncodedIndices& coded, const std::string& digest,
                           agent::Precision precision) {
  v1::FeatureMessage msg = services::FeatureMessageProto(
      a.agent_id, frame_id, kSeedCaptureNs, a.lidar_pose, enc.grid, digest,
      precision == agent::Precision::kInt8 ? v1::PRECISION_INT8 : v1::PRECISION_FP32, coded);
  msg.set_encode_seconds(0.05);
  msg.set_model_generation(1);
  return msg;
}

std::string BinRows(const PointCloud& cloud) {
  std::string out(cloud.size() * 16, '\0');
  for (size_t i = 0; i < cloud.size(); ++i) {
    const float v[4] = {cloud[i].x, cloud[i].y, cloud[i].z, cloud[i].intensity};
    std::memcpy(out.data() + i * 16, v, 16);
  }
  return out;
}

// W`bits` calibration of `model` on the frames, exported as the quantizer service does.
absl::StatusOr<quant::Int8Artifact> Int8Seed(const RuntimeModel& model,
                                             const std::vector<SceneFrame>& frames, int bits) {
  QV2X_ASSIGN_OR_RETURN(AnchorGrid anchors, MakeAnchorGrid(model.cfg));
  SampleOptions so;
  so.mode = PillarMode::kTest;
  so.targets = false;
  std::vector<Sample> samples;
  for (const SceneFrame& f : frames) {
    QV2X_ASSIGN_OR_RETURN(Sample s, BuildSample(f, model.cfg, anchors, so));
    samples.push_back(std::move(s));
  }
  std::vector<const CollatedFrame*> collated;
  for (const Sample& s : samples) collated.push_back(&s.collated);
  quant::PtqOptions o;
  o.n_bits_w = bits;
  o.reconstruct = false;
  QV2X_ASSIGN_OR_RETURN(quant::PtqRun run, quant::RunPtq(model.cfg, StateDict(*model.detector),
                                                         collated, o, nullptr, nullptr));
  return quant::ExportInt8Artifact(*run.net, model.cfg.source_yaml, o, {});
}

absl::Status Run(const fs::path& out) {
  Corpus corpus(out);
  QV2X_ASSIGN_OR_RETURN(std::unique_ptr<FrameSource> source, FrameSource::Open(kScene, kFrames));
  std::vector<SceneFrame> frames;
  for (size_t i = 0; i < source->size(); ++i) {
    QV2X_ASSIGN_OR_RETURN(SceneFrame f, source->Read(i));
    frames.push_back(std::move(f));
  }

  // The seeded initial model (what an untrained scene runs) and its INT8 artifacts.
  QV2X_ASSIGN_OR_RETURN(RuntimeModel model, LoadRuntimeModel(kConfig, ""));
  // Whole files reach the deep paths (the INT8 model, loading a detector); the small ones,
  // written by the same writers, keep the long runs at thousands of executions a second.
  std::string int8_path;
  for (int bits : {8, 4}) {
    QV2X_ASSIGN_OR_RETURN(quant::Int8Artifact a, Int8Seed(model, frames, bits));
    QV2X_ASSIGN_OR_RETURN(std::string bytes, quant::SerializeInt8Artifact(a));
    const std::string name = absl::StrCat("tiny_w", bits, ".int8");
    QV2X_RETURN_IF_ERROR(corpus.Write("int8_artifact", name, bytes));
    if (bits == 8) int8_path = (out / "int8_artifact" / name).string();
    // Its first two layers, the activation quantizers and the metadata.
    a.layers.erase(std::next(a.layers.begin(), 2), a.layers.end());
    a.fp32.clear();
    QV2X_ASSIGN_OR_RETURN(bytes, quant::SerializeInt8Artifact(a));
    QV2X_RETURN_IF_ERROR(
        corpus.Write("int8_artifact", absl::StrCat("tiny_w", bits, "_2_layers.int8"), bytes));
  }
  CheckpointMeta meta;
  meta.model = model.cfg.model.core_method;
  meta.stage = 3;
  meta.config_yaml = model.cfg.source_yaml;
  QV2X_ASSIGN_OR_RETURN(std::string ckpt, SerializeCheckpoint(*model.detector, meta));
  QV2X_RETURN_IF_ERROR(corpus.Write("checkpoint", "tiny_stage3.pth", ckpt));
  for (const auto& item : model.detector->named_modules()) {
    if (item.value()->as<CodebookImpl>() == nullptr) continue;
    QV2X_ASSIGN_OR_RETURN(ckpt, SerializeCheckpoint(*item.value(), meta));
    QV2X_RETURN_IF_ERROR(corpus.Write("checkpoint", "tiny_codebook.pth", ckpt));
    break;
  }
  torch::manual_seed(0);
  torch::nn::Linear small(3, 2);
  QV2X_ASSIGN_OR_RETURN(ckpt, SerializeCheckpoint(*small, CheckpointMeta{}));
  QV2X_RETURN_IF_ERROR(corpus.Write("checkpoint", "linear_3x2.pth", ckpt));

  QV2X_ASSIGN_OR_RETURN(std::shared_ptr<agent::AgentModel> encoder,
                        agent::AgentModel::Load(kConfig, "", int8_path));
  for (size_t fi = 0; fi < frames.size(); ++fi) {
    for (const AgentFrame& a : frames[fi].agents) {
      const std::string stem = absl::StrCat("frame", fi, "_agent", a.agent_id);
      PointCloud sparse;
      for (size_t i = 0; i < a.points.size(); i += kPointStride) sparse.push_back(a.points[i]);
      QV2X_RETURN_IF_ERROR(corpus.Write("pcd", stem + ".pcd", EncodePcd(sparse)));
      if (fi == 0) {
        QV2X_RETURN_IF_ERROR(
            corpus.Write("pcd", stem + "_ascii.pcd", EncodePcd(sparse, PcdData::kAscii)));
        QV2X_RETURN_IF_ERROR(
            corpus.Write("pcd", stem + "_lzf.pcd", EncodePcd(sparse, PcdData::kBinaryCompressed)));
      }
      QV2X_RETURN_IF_ERROR(corpus.Write("kitti_bin", stem + ".bin", BinRows(sparse)));
      QV2X_RETURN_IF_ERROR(
          corpus.Write("opv2v_yaml", stem + ".yaml", Opv2vAgentYaml(frames[fi], a)));
      for (agent::Precision p : {agent::Precision::kFp32, agent::Precision::kInt8}) {
        QV2X_ASSIGN_OR_RETURN(agent::EncodedSweep enc, encoder->Encode(a.points, p));
        for (codec::IndexEncoding e :
             {codec::IndexEncoding::kBitpack, codec::IndexEncoding::kZstd}) {
          QV2X_ASSIGN_OR_RETURN(codec::EncodedIndices coded,
                                codec::EncodeIndices(enc.indices, enc.grid, {e, 3}));
          const std::string name =
              absl::StrCat(stem, "_", agent::PrecisionName(p), "_", codec::EncodingName(e));
          QV2X_RETURN_IF_ERROR(
              corpus.Write("index_codec", name + ".bin", IndexCodecSeed(enc.grid, coded)));
          const v1::FeatureMessage msg = Message(a, fi, enc, coded, encoder->codebook_digest(), p);
          QV2X_RETURN_IF_ERROR(
              corpus.Write("feature_message", name + ".pb", msg.SerializeAsString()));
        }
      }
    }
  }
  std::printf("wrote %d seeds under %s\n", corpus.files(), out.c_str());
  return absl::OkStatus();
}

}  // namespace
}  // namespace qv2x::fuzz

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  qv2x::SetIntraOpThreads(1);
  const absl::Status st = qv2x::fuzz::Run(argv[1]);
  if (!st.ok()) {
    std::fprintf(stderr, "seed writer: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  return 0;
}
