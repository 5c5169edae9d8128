// qv2x sim: run the built-in scene simulator; write OPV2V folders, print statistics, or
// draw a bird's-eye view of one frame.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/common/file_util.h"
#include "core/common/status_macros.h"
#include "core/data/opv2v_writer.h"
#include "core/render/bev_png.h"
#include "core/sim/scene_config.h"
#include "core/sim/simulator.h"
#include "nlohmann/json.hpp"
#include "tools/qv2x/command.h"
#include "tools/qv2x/frame_export.h"

namespace qv2x::cli {
namespace {

constexpr char kUsage[] = R"(usage: qv2x sim --scene FILE [--frames N] [--scenario K|all]
                [--out DIR [--pcd LAYOUT]] [--stats] [--render PNG] [--export JSON]
                [--render-frame I]

Runs the built-in LiDAR scene simulator (deterministic from the scene file's seed) for
frames 0..N-1 of scenario K and does one or more of:

  --out DIR      write the frames in the OPV2V layout:
                 DIR/<scenario>/<agent_id>/<timestamp>.pcd (float32 x y z
                 intensity, sensor frame; --pcd: DATA binary (default), ascii or
                 binary_compressed) and .yaml (lidar_pose, vehicles, ego).
  --stats        print JSON statistics on stdout (see below).
  --render PNG   draw a bird's-eye view of frame I (--render-frame, default 0) in the
                 ego frame: each agent's points in its own colour, ground-truth boxes
                 (solid: the ego sees it; dashed: only other agents do; dim: nobody),
                 agent poses, the range of interest and a scale bar.
  --export JSON  write frame I (--render-frame) as JSON in the ego frame for external
                 plotting: agents (pose, points with their height above ground) and
                 ground-truth boxes with the agents that see them; --point-stride K
                 keeps every K-th point (default 1).

Flags:
  --scene FILE       scene file (configs/scenes/*.yaml)
  --frames N         frames per scenario (default: the scene's frames_per_scenario)
  --scenario K|all   which scenario (default 0); "all" runs every scenario of the scene
  --render-frame I   frame to draw with --render or write with --export (default 0)

Statistics (--stats): JSON with
  frames                          frames simulated
  agents                          agents in the scene
  objects_total                   object-frame pairs inside the ego's range of interest
  objects_visible_to_ego          ... that the ego sees (>= visibility_min_points points)
  objects_visible_only_to_others  ... that the ego does not see but another agent does
  objects_visible_to_nobody       ... that no agent sees
  share_visible_only_to_others    objects_visible_only_to_others / objects_total
  objects_by_class                objects_total split by class
  objects_per_frame_by_class      the same per frame
  points_per_agent_mean           mean points per agent sweep
  points_per_agent                the same per agent id
  seconds_per_frame               wall time to simulate one frame (all agents)
Counts are of unique (object, frame) pairs whose box centre lies within the scene's
range_of_interest_m around the ego, in the ego frame; the ego's own car is not counted.)";

struct Stats {
  int frames = 0;
  int64_t total = 0, by_ego = 0, only_others = 0, nobody = 0;
  std::map<std::string, int64_t> by_class;
  std::map<int, int64_t> points;  // per agent, summed over frames
  double seconds = 0;
};

void Accumulate(const SceneFrame& f, const sim::SceneConfig& cfg, Stats* s) {
  ++s->frames;
  for (const AgentFrame& a : f.agents) s->points[a.agent_id] += a.points.size();
  const AgentFrame& ego = f.agents.front();
  const Mat4 world_to_ego = RigidInverse(PoseToMatrix(ego.lidar_pose));
  for (const GtObject& o : f.objects) {
    if (o.id == f.ego_id) continue;
    const Vec3 c = TransformPoint(world_to_ego, {o.box.x, o.box.y, o.box.z});
    if (std::abs(c.x) > cfg.roi_half_x_m || std::abs(c.y) > cfg.roi_half_y_m) continue;
    ++s->total;
    ++s->by_class[ClassName(o.cls)];
    const bool ego_sees =
        std::find(o.visible_to.begin(), o.visible_to.end(), f.ego_id) != o.visible_to.end();
    if (ego_sees) {
      ++s->by_ego;
    } else if (!o.visible_to.empty()) {
      ++s->only_others;
    } else {
      ++s->nobody;
    }
  }
}

std::string StatsJson(const Stats& s, const sim::Simulator& simulator) {
  nlohmann::json j;
  j["scene"] = simulator.config().name;
  j["frames"] = s.frames;
  j["agents"] = simulator.agent_ids().size();
  j["objects_total"] = s.total;
  j["objects_visible_to_ego"] = s.by_ego;
  j["objects_visible_only_to_others"] = s.only_others;
  j["objects_visible_to_nobody"] = s.nobody;
  j["share_visible_only_to_others"] =
      s.total > 0 ? static_cast<double>(s.only_others) / static_cast<double>(s.total) : 0.0;
  nlohmann::json classes = nlohmann::json::object(), per_frame = nlohmann::json::object();
  for (ObjectClass c : {ObjectClass::kVehicle, ObjectClass::kPedestrian, ObjectClass::kTruck}) {
    auto it = s.by_class.find(ClassName(c));
    const int64_t n = it == s.by_class.end() ? 0 : it->second;
    classes[ClassName(c)] = n;
    per_frame[ClassName(c)] = s.frames > 0 ? static_cast<double>(n) / s.frames : 0.0;
  }
  j["objects_by_class"] = classes;
  j["objects_per_frame_by_class"] = per_frame;
  int64_t sum = 0;
  nlohmann::json per_agent = nlohmann::json::object();
  for (const auto& [id, n] : s.points) {
    sum += n;
    per_agent[std::to_string(id)] = s.frames > 0 ? static_cast<double>(n) / s.frames : 0.0;
  }
  const double sweeps = static_cast<double>(s.frames) * simulator.agent_ids().size();
  j["points_per_agent_mean"] = sweeps > 0 ? sum / sweeps : 0.0;
  j["points_per_agent"] = per_agent;
  j["seconds_per_frame"] = s.frames > 0 ? s.seconds / s.frames : 0.0;
  return j.dump(2);
}

BevRenderOptions RenderOptionsFor(const sim::SceneConfig& cfg) {
  BevRenderOptions o;
  o.roi_half_x_m = cfg.roi_half_x_m;
  o.roi_half_y_m = cfg.roi_half_y_m;
  // A margin around the range of interest so neighbours just outside it show too.
  const double margin = std::max(4.0, 0.15 * cfg.roi_half_x_m);
  o.view_half_x_m = cfg.roi_half_x_m + margin;
  o.view_half_y_m = cfg.roi_half_y_m + margin;
  // About 1200 pixels across.
  o.pixels_per_m = std::clamp(std::floor(1200 / (2 * o.view_half_x_m)), 4.0, 40.0);
  o.grid_step_m = o.view_half_x_m > 30 ? 10 : 5;
  return o;
}

absl::Status RunSim(Args& args) {
  QV2X_ASSIGN_OR_RETURN(std::string scene, args.Required("scene"));
  const std::optional<std::string> frames_flag = args.Get("frames");
  const std::string scenario_flag = args.GetOr("scenario", "0");
  const std::optional<std::string> out = args.Get("out");
  QV2X_ASSIGN_OR_RETURN(PcdData pcd, ParsePcdData(args.GetOr("pcd", "binary")));
  const bool stats = args.Switch("stats");
  const std::optional<std::string> render = args.Get("render");
  const std::optional<std::string> export_path = args.Get("export");
  QV2X_ASSIGN_OR_RETURN(int64_t render_frame, args.IntOr("render-frame", 0));
  QV2X_ASSIGN_OR_RETURN(int64_t point_stride, args.IntOr("point-stride", 1));
  QV2X_RETURN_IF_ERROR(args.Finish());
  if (export_path && export_path->empty()) {
    return absl::InvalidArgumentError("--export needs a file name");
  }
  if (point_stride < 1) return absl::InvalidArgumentError("--point-stride must be >= 1");
  if (out && out->empty()) return absl::InvalidArgumentError("--out needs a folder");
  if (render && render->empty()) return absl::InvalidArgumentError("--render needs a file name");
  if (!out && !stats && !render && !export_path) {
    return absl::InvalidArgumentError(
        "nothing to do: give --out DIR, --stats, --render PNG or --export JSON");
  }
  if (render_frame < 0) return absl::InvalidArgumentError("--render-frame must be >= 0");

  QV2X_ASSIGN_OR_RETURN(sim::SceneConfig cfg, sim::LoadSceneConfig(scene));
  int64_t frames = cfg.frames_per_scenario;
  if (frames_flag && (!absl::SimpleAtoi(*frames_flag, &frames) || frames <= 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--frames: expected a positive integer, got \"", *frames_flag, "\""));
  }
  absl::StatusOr<sim::Simulator> created = sim::Simulator::Create(cfg);
  if (!created.ok()) {
    return absl::Status(created.status().code(),
                        absl::StrCat(scene, ": ", created.status().message()));
  }
  sim::Simulator& simulator = *created;
  std::vector<int> scenarios;
  if (scenario_flag == "all") {
    for (int k = 0; k < simulator.num_scenarios(); ++k) scenarios.push_back(k);
  } else {
    int k;
    if (!absl::SimpleAtoi(scenario_flag, &k) || k < 0 || k >= simulator.num_scenarios()) {
      return absl::InvalidArgumentError(absl::StrCat("--scenario: expected \"all\" or 0..",
                                                     simulator.num_scenarios() - 1, ", got \"",
                                                     scenario_flag, "\""));
    }
    scenarios.push_back(k);
  }

  Stats s;
  if (out || stats) {
    for (int k : scenarios) {
      for (int i = 0; i < frames; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        QV2X_ASSIGN_OR_RETURN(SceneFrame f, simulator.Frame(k, i));
        s.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        Accumulate(f, cfg, &s);
        if (out) QV2X_RETURN_IF_ERROR(WriteOpv2vFrame(f, *out, pcd));
      }
    }
  }
  if (render) {
    QV2X_ASSIGN_OR_RETURN(SceneFrame f,
                          simulator.Frame(scenarios.front(), static_cast<int>(render_frame)));
    QV2X_RETURN_IF_ERROR(RenderBevPng(f, RenderOptionsFor(cfg), {}, *render));
  }
  if (export_path) {
    QV2X_ASSIGN_OR_RETURN(SceneFrame f,
                          simulator.Frame(scenarios.front(), static_cast<int>(render_frame)));
    const nlohmann::json j =
        FrameJson(f, cfg.roi_half_x_m, cfg.roi_half_y_m, static_cast<int>(point_stride));
    QV2X_RETURN_IF_ERROR(WriteFileAtomic(*export_path, j.dump() + "\n"));
  }
  if (stats) {
    std::printf("%s\n", StatsJson(s, simulator).c_str());
  } else if (out) {
    std::printf("wrote %d frames x %zu agents to %s\n", s.frames, simulator.agent_ids().size(),
                out->c_str());
  }
  if (render && !stats) std::printf("wrote %s\n", render->c_str());
  return absl::OkStatus();
}

const Registration kRegistration({"sim", "simulate a V2X LiDAR scene (OPV2V output, stats, BEV)",
                                  kUsage, RunSim});

}  // namespace
}  // namespace qv2x::cli
