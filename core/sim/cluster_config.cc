#include "core/sim/cluster_config.h"

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"
#include "core/config/yaml_reader.h"

namespace qv2x::sim {
namespace {

absl::StatusOr<int> Port(YamlReader& r, const std::string& key) {
  // 0 lets the OS pick (tests); the launcher then learns ports from port files.
  QV2X_ASSIGN_OR_RETURN(int64_t p, r.IntInRange(key, 0, 65535));
  return static_cast<int>(p);
}

absl::StatusOr<ServicePorts> ReadPorts(YamlReader& r) {
  ServicePorts p;
  QV2X_ASSIGN_OR_RETURN(p.grpc_port, Port(r, "grpc_port"));
  QV2X_ASSIGN_OR_RETURN(p.metrics_port, Port(r, "metrics_port"));
  return p;
}

absl::StatusOr<OptionalService> ReadOptional(YamlReader& parent, const std::string& key) {
  QV2X_ASSIGN_OR_RETURN(YamlReader r, parent.Map(key));
  OptionalService s;
  QV2X_ASSIGN_OR_RETURN(s.enabled, r.Bool("enabled"));
  QV2X_ASSIGN_OR_RETURN(s.ports, ReadPorts(r));
  QV2X_ASSIGN_OR_RETURN(s.artifacts, r.String("artifacts"));
  return s;
}

absl::StatusOr<ClusterSecurity> ReadSecurity(YamlReader& parent) {
  ClusterSecurity s;
  if (!parent.Has("security")) return s;
  QV2X_ASSIGN_OR_RETURN(YamlReader r, parent.Map("security"));
  QV2X_ASSIGN_OR_RETURN(s.tls_dir, r.String("tls_dir"));
  QV2X_ASSIGN_OR_RETURN(s.mutual_tls, r.Bool("mutual_tls"));
  QV2X_ASSIGN_OR_RETURN(s.auth_token_file, r.String("auth_token_file"));
  if (s.mutual_tls && s.tls_dir.empty()) return r.Error("mutual_tls", "needs tls_dir");
  return s;
}

}  // namespace

ServicePorts ClusterConfig::AgentPorts(size_t k) const {
  auto at = [k](int base) { return base == 0 ? 0 : base + static_cast<int>(k); };
  return {at(agent_grpc_port_base), at(agent_metrics_port_base)};
}

absl::StatusOr<ClusterConfig> LoadClusterConfig(const std::string& path) {
  QV2X_ASSIGN_OR_RETURN(YamlReader root, YamlReader::FromFile(path));
  if (!root.Has("cluster")) {
    return absl::NotFoundError(absl::StrCat(path, ": no `cluster:` section"));
  }
  auto parse = [&]() -> absl::StatusOr<ClusterConfig> {
    QV2X_ASSIGN_OR_RETURN(YamlReader r, root.Map("cluster"));
    ClusterConfig c;
    {
      QV2X_ASSIGN_OR_RETURN(YamlReader m, r.Map("model"));
      QV2X_ASSIGN_OR_RETURN(c.model_config, m.String("config"));
      QV2X_ASSIGN_OR_RETURN(c.checkpoint, m.String("checkpoint"));
      QV2X_ASSIGN_OR_RETURN(c.int8_artifact, m.String("int8_artifact"));
      QV2X_ASSIGN_OR_RETURN(c.zstd_dictionary, m.StringOr("zstd_dictionary", ""));
    }
    QV2X_ASSIGN_OR_RETURN(c.codec, r.Enum("codec", {"bitpack", "zstd"}));
    if (!c.zstd_dictionary.empty() && c.codec != "zstd") {
      return r.Error("codec", "model.zstd_dictionary needs codec: zstd");
    }
    if (r.Has("sparse")) {
      QV2X_ASSIGN_OR_RETURN(YamlReader sp, r.Map("sparse"));
      QV2X_ASSIGN_OR_RETURN(c.sparse_min_span_m, sp.DoubleInRange("min_height_span_m", 0, 100));
      QV2X_ASSIGN_OR_RETURN(int64_t dil, sp.IntInRange("dilation_cells", 0, 64));
      c.sparse_dilation_cells = static_cast<int>(dil);
    }
    QV2X_ASSIGN_OR_RETURN(c.pace, r.Enum("pace", {"realtime", "lockstep"}));
    QV2X_ASSIGN_OR_RETURN(c.precision, r.Enum("precision", {"fp32", "int8"}));
    if (c.precision == "int8" && c.int8_artifact.empty()) {
      return r.Error("precision", "int8 needs model.int8_artifact");
    }
    QV2X_ASSIGN_OR_RETURN(int64_t threads, r.IntInRange("agent_threads", 1, 64));
    c.agent_threads = static_cast<int>(threads);
    {
      QV2X_ASSIGN_OR_RETURN(YamlReader f, r.Map("fusion"));
      QV2X_ASSIGN_OR_RETURN(c.fusion, ReadPorts(f));
      QV2X_ASSIGN_OR_RETURN(int64_t deadline, f.IntInRange("deadline_ms", 1, 60000));
      c.fusion_deadline_ms = static_cast<int>(deadline);
      QV2X_ASSIGN_OR_RETURN(int64_t window, f.IntInRange("ap_window_frames", 1, 100000));
      c.ap_window_frames = static_cast<int>(window);
      QV2X_ASSIGN_OR_RETURN(int64_t ft, f.IntInRange("threads", 1, 64));
      c.fusion_threads = static_cast<int>(ft);
    }
    {
      QV2X_ASSIGN_OR_RETURN(YamlReader a, r.Map("agents"));
      QV2X_ASSIGN_OR_RETURN(c.agent_grpc_port_base, Port(a, "grpc_port_base"));
      QV2X_ASSIGN_OR_RETURN(c.agent_metrics_port_base, Port(a, "metrics_port_base"));
    }
    QV2X_ASSIGN_OR_RETURN(c.trainer, ReadOptional(r, "trainer"));
    QV2X_ASSIGN_OR_RETURN(c.quantizer, ReadOptional(r, "quantizer"));
    QV2X_ASSIGN_OR_RETURN(c.security, ReadSecurity(r));
    if (r.Has("dataset")) {
      QV2X_ASSIGN_OR_RETURN(YamlReader d, r.Map("dataset"));
      QV2X_ASSIGN_OR_RETURN(c.dataset.path, d.String("path"));
      if (c.dataset.path.empty()) return d.Error("path", "must name a dataset folder");
      if (d.Has("mode")) {
        QV2X_ASSIGN_OR_RETURN(c.dataset.mode, d.Enum("mode", {"vc", "v2v", "ic", "i2i"}));
      }
      if (d.Has("missing_agent")) {
        QV2X_ASSIGN_OR_RETURN(c.dataset.missing_agent, d.Enum("missing_agent", {"skip", "stop"}));
      }
    }
    QV2X_RETURN_IF_ERROR(r.Finish());
    return c;
  };
  absl::StatusOr<ClusterConfig> c = parse();
  if (!c.ok())
    return absl::Status(c.status().code(), absl::StrCat(path, ": ", c.status().message()));
  return c;
}

}  // namespace qv2x::sim
