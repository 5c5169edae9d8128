#include "tools/qv2x/client/replay_scene.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"
#include "core/sim/scene_config.h"
#include "core/sim/simulator.h"
#include "core/sim/street_layout.h"
#include "yaml-cpp/yaml.h"

namespace qv2x::cli {
namespace {

struct Lane {
  sim::Heading heading;
  int index;
};

}  // namespace

absl::StatusOr<std::vector<ReplayAgent>> ReplayAgents(const RecordingHeader& recording,
                                                      const std::string& scene_yaml, int n) {
  if (n < 1) return absl::InvalidArgumentError("a replay needs at least one agent");
  QV2X_ASSIGN_OR_RETURN(sim::SceneConfig scene, sim::ParseSceneConfig(scene_yaml));
  int next_id = 0;
  for (const sim::AgentConfig& a : scene.agents) next_id = std::max(next_id, a.id + 1);
  const std::vector<int>& rec = recording.agents;
  std::vector<ReplayAgent> out;
  for (int k = 0; k < n; ++k) {
    const size_t r = rec.size(), kk = static_cast<size_t>(k);
    if (kk < r) {
      out.push_back({rec[kk], rec[kk], 0});
    } else {
      out.push_back({next_id++, rec[kk % r], (kk / r) * kCloneLagFrames});
    }
  }
  return out;
}

absl::StatusOr<std::string> ReplaySceneYaml(const std::string& scene_yaml,
                                            const std::vector<ReplayAgent>& agents,
                                            double rate_hz) {
  QV2X_ASSIGN_OR_RETURN(sim::SceneConfig scene, sim::ParseSceneConfig(scene_yaml));
  YAML::Node root;
  std::map<int, YAML::Node> listed;  // the recorded scene's agent entries by id
  try {
    root = YAML::Load(scene_yaml);
    for (YAML::Node a : root["agents"]) listed[a["id"].as<int>()] = a;
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("scene: ", e.what()));
  }
  // Clone slots: each lane from just past the intersection (no signal to wait for) out to
  // the road's end, one car length plus the minimum gap apart, clear of the recorded
  // vehicles' start ranges in that lane.
  const sim::StreetLayout layout(scene.map);
  const double car = scene.traffic.car_size.length_m.max;
  const double spacing = car + scene.traffic.min_gap_m + 1.0;
  const double first = -(layout.conflict_half + spacing);
  const double last = -(scene.map.road_half_length_m - 5.0);  // as far as start_m may go
  std::vector<Lane> lanes;
  for (sim::Heading h :
       {sim::Heading::kEast, sim::Heading::kWest, sim::Heading::kNorth, sim::Heading::kSouth}) {
    for (int i = 0; i < scene.map.lanes_per_direction; ++i) lanes.push_back({h, i});
  }
  auto taken = [&](const Lane& lane, double s) {
    for (const ReplayAgent& a : agents) {
      const sim::AgentConfig* c = a.id == a.source ? scene.FindAgent(a.id) : nullptr;
      if (c == nullptr || c->kind != sim::AgentKind::kVehicle || c->heading != lane.heading ||
          c->lane != lane.index) {
        continue;
      }
      if (s > c->start_m.min - spacing && s < c->start_m.max + spacing) return true;
    }
    return false;
  };
  std::vector<int> next_slot(lanes.size(), 0);
  YAML::Node list(YAML::NodeType::Sequence);
  size_t clones = 0;
  for (const ReplayAgent& a : agents) {
    if (a.id == a.source) {
      auto it = listed.find(a.id);
      if (it == listed.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat("recorded agent ", a.id, " is not an agent of scene ", scene.name));
      }
      list.push_back(it->second);
      continue;
    }
    std::optional<std::pair<size_t, double>> slot;
    for (size_t t = 0; t < lanes.size() && !slot; ++t) {
      const size_t li = (clones + t) % lanes.size();
      for (double s = first - next_slot[li] * spacing; std::floor(s) >= last && !slot;
           s = first - ++next_slot[li] * spacing) {
        if (!taken(lanes[li], s)) slot = {li, s};
      }
      if (slot) ++next_slot[li];
    }
    if (!slot) {
      return absl::FailedPreconditionError(absl::StrCat(
          "scene ", scene.name, " has lane room for ", clones,
          " connected vehicles beyond the recorded agents; replay fewer agents or record a "
          "scene with longer roads (map.road_half_length_m)"));
    }
    const double s = std::floor(slot->second);  // whole metres, still past the last slot
    YAML::Node start(YAML::NodeType::Sequence);
    start.SetStyle(YAML::EmitterStyle::Flow);
    start.push_back(s);
    start.push_back(s);
    YAML::Node v;
    v.SetStyle(YAML::EmitterStyle::Flow);
    v["id"] = a.id;
    v["kind"] = "vehicle";
    v["heading"] = sim::HeadingName(lanes[slot->first].heading);
    v["lane"] = lanes[slot->first].index;
    v["start_m"] = start;
    list.push_back(v);
    ++clones;
  }
  root["agents"] = list;
  root["name"] = absl::StrCat(scene.name, "_replay", agents.size());
  root["rate_hz"] = rate_hz;
  if (root["cluster"]) {
    // The replay feeds fusion itself: no trainer, quantizer or TLS.
    root["cluster"].remove("security");
    for (const char* s : {"trainer", "quantizer"}) {
      if (root["cluster"][s]) root["cluster"][s]["enabled"] = false;
    }
  }
  YAML::Emitter e;
  e << root;
  std::string text = std::string(e.c_str()) + "\n";
  const absl::Status laid_out = [&]() -> absl::Status {
    QV2X_ASSIGN_OR_RETURN(sim::SceneConfig c, sim::ParseSceneConfig(text));
    return sim::Simulator::Create(c).status();
  }();
  if (!laid_out.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the replay scene for ", agents.size(),
                     " agents cannot be laid out: ", laid_out.message()));
  }
  return text;
}

}  // namespace qv2x::cli
