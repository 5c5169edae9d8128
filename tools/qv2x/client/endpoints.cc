#include "tools/qv2x/client/endpoints.h"

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "core/common/file_util.h"
#include "core/common/status_macros.h"
#include "core/sim/cluster_config.h"
#include "core/sim/scene_config.h"
#include "nlohmann/json.hpp"

namespace qv2x::cli {
namespace {

nlohmann::json ToJson(const Endpoint& e) {
  return {{"host", e.host}, {"grpc_port", e.grpc_port}, {"metrics_port", e.metrics_port}};
}

Endpoint FromJson(const nlohmann::json& j) {
  Endpoint e;
  e.host = j.at("host").get<std::string>();
  e.grpc_port = j.at("grpc_port").get<int>();
  e.metrics_port = j.at("metrics_port").get<int>();
  return e;
}

nlohmann::json ToJson(const SecurityFiles& s) {
  return {{"tls_ca", s.ca}, {"tls_cert", s.cert}, {"tls_key", s.key}, {"token_file", s.token_file}};
}

SecurityFiles SecurityFromJson(const nlohmann::json& j) {
  SecurityFiles s;
  s.ca = j.at("tls_ca").get<std::string>();
  s.cert = j.at("tls_cert").get<std::string>();
  s.key = j.at("tls_key").get<std::string>();
  s.token_file = j.at("token_file").get<std::string>();
  return s;
}

}  // namespace

std::string Endpoint::grpc() const { return absl::StrCat(host, ":", grpc_port); }
std::string Endpoint::metrics() const {
  return absl::StrCat("http://", host, ":", metrics_port, "/metrics");
}

SecurityFiles ClientSecurityFiles(const sim::ClusterSecurity& security) {
  auto absolute = [](const std::string& p) {
    return p.empty() ? p : std::filesystem::absolute(p).lexically_normal().string();
  };
  SecurityFiles f;
  const std::string dir = absolute(security.tls_dir);
  if (!dir.empty()) {
    f.ca = dir + "/ca.crt";
    if (security.mutual_tls) {
      f.cert = dir + "/client.crt";
      f.key = dir + "/client.key";
    }
  }
  f.token_file = absolute(security.auth_token_file);
  return f;
}

std::string DefaultRunDir(const std::string& scene_name) {
  return absl::StrCat(".qv2x-run/", scene_name);
}

absl::Status WriteEndpoints(const std::string& path, const Endpoints& e) {
  nlohmann::json j;
  j["scene"] = e.scene;
  j["fusion"] = ToJson(e.fusion);
  if (!e.security.empty()) j["security"] = ToJson(e.security);
  for (const auto& [id, a] : e.agents) j["agents"][std::to_string(id)] = ToJson(a);
  for (const auto& [name, s] : e.others) j["services"][name] = ToJson(s);
  return WriteFileAtomic(path, j.dump(2) + "\n");
}

absl::StatusOr<Endpoints> ReadEndpoints(const std::string& path) {
  QV2X_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  try {
    const nlohmann::json j = nlohmann::json::parse(text);
    Endpoints e;
    e.scene = j.at("scene").get<std::string>();
    e.fusion = FromJson(j.at("fusion"));
    for (const auto& [id, a] : j.at("agents").items()) e.agents[std::stoi(id)] = FromJson(a);
    if (j.contains("security")) e.security = SecurityFromJson(j.at("security"));
    if (j.contains("services")) {
      for (const auto& [name, s] : j.at("services").items()) e.others[name] = FromJson(s);
    }
    return e;
  } catch (const std::exception& ex) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not an endpoints file: ", ex.what()));
  }
}

absl::StatusOr<Endpoints> EndpointsFromScene(const std::string& scene_path) {
  QV2X_ASSIGN_OR_RETURN(sim::SceneConfig scene, sim::LoadSceneConfig(scene_path));
  QV2X_ASSIGN_OR_RETURN(sim::ClusterConfig c, sim::LoadClusterConfig(scene_path));
  if (c.fusion.grpc_port == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        scene_path, " uses ports picked at start-up; pass --endpoints <run dir>/endpoints.json"));
  }
  Endpoints e;
  e.scene = scene.name;
  e.security = ClientSecurityFiles(c.security);
  e.fusion.grpc_port = c.fusion.grpc_port;
  e.fusion.metrics_port = c.fusion.metrics_port;
  for (size_t k = 0; k < scene.agents.size(); ++k) {
    const sim::ServicePorts p = c.AgentPorts(k);
    Endpoint a;
    a.grpc_port = p.grpc_port;
    a.metrics_port = p.metrics_port;
    e.agents[scene.agents[k].id] = a;
  }
  return e;
}

absl::StatusOr<Endpoints> ResolveEndpoints(const std::string& endpoints_file,
                                           const std::string& scene_path) {
  if (!endpoints_file.empty()) return ReadEndpoints(endpoints_file);
  QV2X_ASSIGN_OR_RETURN(sim::SceneConfig scene, sim::LoadSceneConfig(scene_path));
  const std::string run = DefaultRunDir(scene.name) + "/endpoints.json";
  if (std::filesystem::exists(run)) return ReadEndpoints(run);
  return EndpointsFromScene(scene_path);
}

}  // namespace qv2x::cli
