#include "tools/qv2x/client/scene_record.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/common/file_util.h"
#include "core/common/status_macros.h"
#include "core/sim/cluster_config.h"
#include "core/sim/scene_config.h"
#include "grpcpp/grpcpp.h"
#include "qv2x/v1/features.grpc.pb.h"
#include "services/tls_credentials.h"
#include "tools/qv2x/client/feature_recording.h"
#include "tools/qv2x/client/scene_launcher.h"
#include "yaml-cpp/yaml.h"

namespace qv2x::cli {
namespace {

constexpr int kMaxMessageBytes = 16 << 20;  // the fusion service's own gRPC cap

// Stands where the agents expect the fusion service: forwards every agent stream to it
// (replies included, so lock-step pacing works) and keeps the messages of frames
// [0, frames), the first of each agent and frame.
class FeatureTee final : public v1::Fusion::Service {
 public:
  explicit FeatureTee(uint64_t frames) : frames_(frames) {}

  void SetUpstream(const std::string& address) {
    std::lock_guard<std::mutex> lock(mu_);
    channel_ = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(),
                                         services::ClientChannelArguments(kMaxMessageBytes));
  }

  grpc::Status StreamFeatures(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<v1::FeatureStreamReply, v1::FeatureMessage>* agent) override {
    std::unique_ptr<v1::Fusion::Stub> stub;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!channel_) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "no fusion service yet");
      stub = v1::Fusion::NewStub(channel_);
    }
    grpc::ClientContext up_ctx;
    auto up = stub->StreamFeatures(&up_ctx);
    std::thread replies([&] {
      v1::FeatureStreamReply r;
      while (up->Read(&r) && agent->Write(r)) {
      }
    });
    v1::FeatureMessage m;
    while (agent->Read(&m)) {
      Keep(m);
      if (!up->Write(m)) break;
    }
    up_ctx.TryCancel();  // one side is gone: end the other one too
    replies.join();
    up->Finish().IgnoreError();
    return grpc::Status::OK;
  }

  // (agent, frame) -> serialized message.
  std::map<std::pair<int, uint64_t>, std::string> Take() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::move(kept_);
  }

 private:
  void Keep(const v1::FeatureMessage& m) {
    if (m.frame_id() >= frames_) return;
    std::lock_guard<std::mutex> lock(mu_);
    kept_.try_emplace({m.agent_id(), m.frame_id()}, m.SerializeAsString());
  }

  const uint64_t frames_;
  std::mutex mu_;
  std::shared_ptr<grpc::Channel> channel_;
  std::map<std::pair<int, uint64_t>, std::string> kept_;
};

// The model the services run, as the launcher resolves it: a missing checkpoint means the
// seeded initial model (and no INT8 artifact), a missing artifact FP32 only.
void ResolveModel(const RecordOptions& o, sim::ClusterConfig* c) {
  if (o.checkpoint) c->checkpoint = *o.checkpoint;
  if (o.codec) c->codec = *o.codec;
  if (!c->checkpoint.empty() && !std::filesystem::exists(c->checkpoint)) {
    c->checkpoint.clear();
    c->int8_artifact.clear();
  }
  if (!c->int8_artifact.empty() && !std::filesystem::exists(c->int8_artifact)) {
    c->int8_artifact.clear();
  }
}

// The scene file with the model and codec the recording ran, for the replay to start its
// fusion service with.
absl::Status WriteRecordedScene(const std::string& scene_path, const sim::ClusterConfig& c,
                                const std::string& out) {
  try {
    YAML::Node root = YAML::LoadFile(scene_path);
    root["cluster"]["model"]["checkpoint"] = c.checkpoint;
    root["cluster"]["model"]["int8_artifact"] = c.int8_artifact;
    root["cluster"]["codec"] = c.codec;
    YAML::Emitter e;
    e << root;
    return WriteFileAtomic(out, std::string(e.c_str()) + "\n");
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(scene_path, ": ", e.what()));
  }
}

std::string PresetName(const std::string& model_config) {
  try {
    return YAML::LoadFile(model_config)["name"].as<std::string>("");
  } catch (const YAML::Exception&) {
    return "";
  }
}

// The agents the launcher starts for `num_agents`: the ego, then the others in scene order.
std::vector<int> LaunchedAgents(const sim::SceneConfig& scene, int num_agents) {
  const size_t n = num_agents > 0 ? static_cast<size_t>(num_agents) : scene.agents.size();
  std::vector<int> ids = {scene.ego_id};
  for (const auto& a : scene.agents) {
    if (ids.size() >= n) break;
    if (a.id != scene.ego_id) ids.push_back(a.id);
  }
  return ids;
}

absl::Status RecordOne(const RecordOptions& o, const sim::SceneConfig& scene,
                       const sim::ClusterConfig& c, const std::string& precision) {
  const auto t0 = std::chrono::steady_clock::now();
  FeatureTee tee(static_cast<uint64_t>(o.frames));
  int tee_port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &tee_port);
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.RegisterService(&tee);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || tee_port == 0) return absl::UnavailableError("cannot start the recording tee");

  LaunchOptions l;
  l.scene_path = o.scene_path;
  l.run_dir = o.run_dir.empty() ? absl::StrCat(".qv2x-run/record-", scene.name, "-", precision)
                                : absl::StrCat(o.run_dir, "/", precision);
  l.ephemeral_ports = true;
  l.pace = "lockstep";
  l.precision = precision;
  l.codec = c.codec;
  l.checkpoint = c.checkpoint;
  l.num_agents = o.num_agents;
  l.verbose = false;
  // Every frame waits for every agent, however loaded the machine: a frame closed without a
  // slow agent would make it skip ahead, and the recording would miss its message.
  l.fusion_flags = {"--deadline_ms=30000"};
  // The tee speaks plaintext: the recording runs without the scene's TLS.
  l.tls_dir = "";
  l.mutual_tls = false;
  l.auth_token_file = "";
  l.agent_fusion_address = [&](const std::string& fusion) {
    tee.SetUpstream(fusion);
    return absl::StrCat("127.0.0.1:", tee_port);
  };
  {
    QV2X_ASSIGN_OR_RETURN(std::unique_ptr<SceneLauncher> run, SceneLauncher::Up(l));
    // Frames close only with every agent's message (above), so once `frames` frames are
    // fused every agent has sent frames [0, frames).
    QV2X_RETURN_IF_ERROR(run->Run(o.frames, false).status());
  }  // every service stopped
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  std::map<std::pair<int, uint64_t>, std::string> kept = tee.Take();

  Recording r;
  RecordingHeader& h = r.header;
  h.scene = scene.name;
  h.scene_file = "scene.yaml";
  h.model_config = c.model_config;
  h.preset = PresetName(c.model_config);
  h.checkpoint = c.checkpoint;
  h.int8_artifact = c.int8_artifact;
  h.precision = precision;
  h.codec = c.codec;
  h.rate_hz = scene.rate_hz;
  h.ego_id = scene.ego_id;
  h.agents = LaunchedAgents(scene, o.num_agents);
  h.frames = static_cast<uint64_t>(o.frames);
  size_t bytes = 0;
  for (uint64_t f = 0; f < h.frames; ++f) {
    for (int id : h.agents) {
      auto it = kept.find({id, f});
      if (it == kept.end()) {
        return absl::AbortedError(absl::StrCat("agent ", id, " never sent frame ", f,
                                               " (stopped early, or the agent crashed: see ",
                                               l.run_dir, ")"));
      }
      v1::FeatureMessage m;
      m.ParseFromString(it->second);
      const std::string p = m.precision() == v1::PRECISION_INT8 ? "int8" : "fp32";
      if (p != precision) {
        return absl::InternalError(
            absl::StrCat("agent ", id, " frame ", f, " was encoded ", p, ", not ", precision));
      }
      if (h.codebook_digest.empty()) h.codebook_digest = m.codebook_digest();
      if (m.codebook_digest() != h.codebook_digest) {
        return absl::InternalError(absl::StrCat("agent ", id, " frame ", f, " uses codebook ",
                                                m.codebook_digest(), ", the others ",
                                                h.codebook_digest));
      }
      bytes += it->second.size();
      r.messages.push_back(std::move(it->second));
    }
  }
  h.messages = r.messages.size();
  const std::string path = absl::StrCat(o.out_dir, "/", precision, ".qv2xrec");
  QV2X_RETURN_IF_ERROR(WriteRecording(path, r));
  std::printf(
      "recorded %s: %zu agents x %llu frames = %llu messages, %.0f B mean, codebook %s, %s "
      "(%.1f s)\n",
      precision.c_str(), h.agents.size(), static_cast<unsigned long long>(h.frames),
      static_cast<unsigned long long>(h.messages),
      static_cast<double>(bytes) / static_cast<double>(std::max<size_t>(h.messages, 1)),
      h.codebook_digest.c_str(), path.c_str(),
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  std::fflush(stdout);
  return absl::OkStatus();
}

}  // namespace

absl::Status RecordScene(const RecordOptions& o) {
  if (o.frames < 1) return absl::InvalidArgumentError("--frames must be at least 1");
  QV2X_ASSIGN_OR_RETURN(sim::SceneConfig scene, sim::LoadSceneConfig(o.scene_path));
  QV2X_ASSIGN_OR_RETURN(sim::ClusterConfig c, sim::LoadClusterConfig(o.scene_path));
  if (o.num_agents < 0 || o.num_agents > static_cast<int>(scene.agents.size())) {
    return absl::InvalidArgumentError(absl::StrCat("--agents ", o.num_agents, ": scene ",
                                                   scene.name, " has ", scene.agents.size()));
  }
  ResolveModel(o, &c);
  std::vector<std::string> precisions = o.precisions;
  if (precisions.empty()) {
    precisions = {"fp32"};
    if (!c.int8_artifact.empty()) {
      precisions.push_back("int8");
    } else {
      std::printf("no INT8 artifact in the scene's model: recording FP32 encoders only\n");
    }
  }
  for (const std::string& p : precisions) {
    if (p != "fp32" && p != "int8") {
      return absl::InvalidArgumentError(absl::StrCat("--precisions: \"", p, "\": fp32 or int8"));
    }
    if (p == "int8" && c.int8_artifact.empty()) {
      return absl::FailedPreconditionError("int8: the scene's model has no INT8 artifact");
    }
  }
  QV2X_RETURN_IF_ERROR(MakeDirs(o.out_dir));
  QV2X_RETURN_IF_ERROR(WriteRecordedScene(o.scene_path, c, o.out_dir + "/scene.yaml"));
  for (const std::string& p : precisions) QV2X_RETURN_IF_ERROR(RecordOne(o, scene, c, p));
  return absl::OkStatus();
}

}  // namespace qv2x::cli
