// `qv2x dataset import`: turns a real recorded sweep into a one-frame OPV2V-layout folder
// that `--dataset` readers (infer, diagnose, model inputs, the trainer) take.
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"
#include "core/data/mrpt_rawlog.h"
#include "core/data/opv2v_writer.h"
#include "tools/qv2x/command.h"

namespace qv2x::cli {
namespace {

constexpr char kUsage[] =
    R"(usage: qv2x dataset import --rawlog FILE --out DIR [--scenario NAME] [--pcd LAYOUT]

Reads the first Velodyne VLP-16 scan of an MRPT rawlog (gzip or plain; e.g. Debian's
mrpt-common ships /usr/share/mrpt/datasets/test_velodyne_VLP16.rawlog), decodes its raw
packets into points (x forward, y left, z up, in the sensor frame) and writes them as
DIR/<scenario>/0/000000.pcd + .yaml: one agent (id 0, the ego) whose lidar_pose is the
sensor's pose on its vehicle, and no labelled objects.

flags:
  --rawlog FILE     the MRPT rawlog
  --out DIR         dataset root to write into
  --scenario NAME   scenario folder (default: the rawlog's sensor label)
  --pcd LAYOUT      DATA layout of the sweep: binary (default), ascii or binary_compressed

Prints one line: the scenario, the number of packets and points, and the sensor pose.)";

absl::Status RunDataset(Args& args) {
  if (args.positional().empty() || args.positional().front() != "import") {
    return absl::InvalidArgumentError("expected a subcommand: qv2x dataset import ...");
  }
  if (args.positional().size() > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("unexpected argument \"", args.positional()[1], "\""));
  }
  QV2X_ASSIGN_OR_RETURN(std::string rawlog, args.Required("rawlog"));
  QV2X_ASSIGN_OR_RETURN(std::string out, args.Required("out"));
  const std::string scenario_flag = args.GetOr("scenario", "");
  QV2X_ASSIGN_OR_RETURN(PcdData pcd, ParsePcdData(args.GetOr("pcd", "binary")));
  QV2X_RETURN_IF_ERROR(args.Finish());

  QV2X_ASSIGN_OR_RETURN(MrptVelodyneScan scan, ReadMrptVelodyneScan(rawlog));
  SceneFrame frame;
  frame.scenario = scenario_flag.empty() ? scan.label : scenario_flag;
  if (frame.scenario.empty() || frame.scenario.find('/') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "scenario name \"", frame.scenario, "\" is not a folder name: give --scenario NAME"));
  }
  frame.timestamp = "000000";
  AgentFrame agent;
  agent.lidar_pose = scan.SensorPose();
  QV2X_ASSIGN_OR_RETURN(agent.points, MrptScanPoints(scan, rawlog));
  frame.agents.push_back(std::move(agent));
  QV2X_RETURN_IF_ERROR(WriteOpv2vFrame(frame, out, pcd));
  const Pose& p = frame.agents[0].lidar_pose;
  std::printf("%s: %zu packets, %zu points, sensor at (%.3f, %.3f, %.3f) m, yaw %.2f deg\n",
              frame.scenario.c_str(), scan.packets.size(), frame.agents[0].points.size(), p.x, p.y,
              p.z, p.yaw);
  return absl::OkStatus();
}

const Registration kRegistration({"dataset", "import a recorded LiDAR sweep as a dataset folder",
                                  kUsage, RunDataset});

}  // namespace
}  // namespace qv2x::cli
