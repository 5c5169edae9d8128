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

absl::StatusOr<RecordedMessages> IndexRecording(const Recording& recording) {
  RecordedMessages out;
  for (size_t i = 0; i < recording.messages.size(); ++i) {
    v1::FeatureMessage m;
    if (!m.ParseFromString(recording.messages[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("recorded message ", i + 1, " is no qv2x.v1.FeatureMessage"));
    }
    out.try_emplace({m.agent_id(), m.frame_id()}, std::move(m));
  }
  return out;
}

absl::StatusOr<std::vector<uint64_t>> ReplayFrameCycle(const RecordingHeader& h,
                                                       const RecordedMessages& messages,
                                                       double comm_range_m) {
  constexpr double kMarginM = 5;  // clones lag their source by a few metres of driving
  auto in_range = [&](uint64_t f) {
    const auto ego = messages.find({h.ego_id, f});
    if (ego == messages.end()) return false;
    for (int id : h.agents) {
      const auto a = messages.find({id, f});
      if (a == messages.end() ||
          std::hypot(a->second.lidar_pose().x() - ego->second.lidar_pose().x(),
                     a->second.lidar_pose().y() - ego->second.lidar_pose().y()) >
              comm_range_m - kMarginM) {
        return false;
      }
    }
    return true;
  };
  uint64_t best_first = h.first_frame, best_len = 0;
  for (uint64_t f = h.first_frame, run = 0; f < h.first_frame + h.frames; ++f) {
    run = in_range(f) ? run + 1 : 0;
    if (run > best_len) best_len = run, best_first = f + 1 - run;
  }
  if (best_len < 2) best_first = h.first_frame, best_len = h.frames;
  std::vector<uint64_t> cycle;
  for (uint64_t i = 0; i < best_len; ++i) cycle.push_back(best_first + i);
  for (uint64_t i = best_len - 1; i-- > 1;) cycle.push_back(best_first + i);
  return cycle;
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
      while (!slot) {
        const double s = std::floor(first - next_slot[li]++ * spacing);  // whole metres
        if (s < last) break;
        if (!taken(lanes[li], s)) slot = {li, s};
      }
    }
    if (!slot) {
      return absl::FailedPreconditionError(absl::StrCat(
          "scene ", scene.name, " has lane room for ", clones,
          " connected vehicles beyond the recorded agents; replay fewer agents or record a "
          "scene with longer roads (map.road_half_length_m)"));
    }
    const double s = slot->second;
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
