#include "core/data/opv2v_reader.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/common/file_util.h"
#include "core/common/status_macros.h"
#include "core/data/point_cloud_io.h"
#include "yaml-cpp/yaml.h"

namespace qv2x {
namespace {

namespace fs = std::filesystem;

// Metres and degrees: OPV2V maps span a few kilometres.
constexpr double kMaxAbsValue = 1e7;

absl::Status Bad(const std::string& origin, const std::string& path, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(origin, ": ", path, ": ", what));
}

absl::StatusOr<std::vector<double>> Numbers(const YAML::Node& n, size_t size,
                                            const std::string& origin, const std::string& path) {
  // A key missing from a const mapping is an invalid node that throws on any question but
  // this one.
  if (!n.IsDefined()) return Bad(origin, path, "required key is missing");
  if (!n.IsSequence() || n.size() != size) {
    return Bad(origin, path, absl::StrCat("expected a list of ", size, " numbers"));
  }
  std::vector<double> out(size);
  for (size_t i = 0; i < size; ++i) {
    if (!n[i].IsScalar() || !absl::SimpleAtod(n[i].Scalar(), &out[i])) {
      return Bad(origin, absl::StrCat(path, "[", i, "]"), "expected a number");
    }
    // NaN, inf or a huge value (location + center, 2 x extent overflow) would make every
    // box, warp and loss computed from it non-finite.
    if (!(std::abs(out[i]) <= kMaxAbsValue)) {
      return Bad(origin, absl::StrCat(path, "[", i, "]"),
                 absl::StrCat("expected a finite number within +/-", kMaxAbsValue, ", got ",
                              n[i].Scalar().substr(0, 32)));
    }
  }
  return out;
}

absl::StatusOr<std::vector<int>> Ints(const YAML::Node& n, const std::string& origin,
                                      const std::string& path) {
  if (!n.IsSequence()) return Bad(origin, path, "expected a list of integers");
  std::vector<int> out(n.size());
  for (size_t i = 0; i < n.size(); ++i) {
    if (!n[i].IsScalar() || !absl::SimpleAtoi(n[i].Scalar(), &out[i])) {
      return Bad(origin, absl::StrCat(path, "[", i, "]"), "expected an integer");
    }
  }
  return out;
}

absl::StatusOr<GtObject> ParseObject(const YAML::Node& n, int id, const std::string& origin,
                                     const std::string& path) {
  if (!n.IsMap()) return Bad(origin, path, "expected a mapping");
  GtObject o;
  o.id = id;
  QV2X_ASSIGN_OR_RETURN(std::vector<double> loc,
                        Numbers(n["location"], 3, origin, path + ".location"));
  std::vector<double> center = {0, 0, 0};
  if (n["center"]) {
    QV2X_ASSIGN_OR_RETURN(center, Numbers(n["center"], 3, origin, path + ".center"));
  }
  QV2X_ASSIGN_OR_RETURN(std::vector<double> angle, Numbers(n["angle"], 3, origin, path + ".angle"));
  QV2X_ASSIGN_OR_RETURN(std::vector<double> extent,
                        Numbers(n["extent"], 3, origin, path + ".extent"));
  if (extent[0] < 0 || extent[1] < 0 || extent[2] < 0) {
    return Bad(origin, path + ".extent", "half sizes must not be negative");
  }
  o.box.x = loc[0] + center[0];
  o.box.y = loc[1] + center[1];
  o.box.z = loc[2] + center[2];
  o.box.l = 2 * extent[0];
  o.box.w = 2 * extent[1];
  o.box.h = 2 * extent[2];
  o.box.yaw = WrapAngle(DegToRad(angle[1]));
  if (n["obj_type"]) {
    if (!n["obj_type"].IsScalar()) return Bad(origin, path + ".obj_type", "expected a string");
    o.cls = ClassFromDatasetType(n["obj_type"].Scalar());
  }
  if (n["visible_to"]) {
    QV2X_ASSIGN_OR_RETURN(o.visible_to, Ints(n["visible_to"], origin, path + ".visible_to"));
  }
  if (n["points_by_agent"]) {
    QV2X_ASSIGN_OR_RETURN(o.points_by_agent,
                          Ints(n["points_by_agent"], origin, path + ".points_by_agent"));
  }
  if (o.points_by_agent.size() != o.visible_to.size()) {
    return Bad(origin, path, "visible_to and points_by_agent differ in length");
  }
  return o;
}

bool IsAgentFolder(const fs::directory_entry& e, int* id) {
  return e.is_directory() && absl::SimpleAtoi(e.path().filename().string(), id);
}

bool InfraEgo(DatasetMode m) { return m == DatasetMode::kIc || m == DatasetMode::kI2i; }

bool Keeps(DatasetMode m, int id) {
  if (m == DatasetMode::kV2v) return id >= 0;
  if (m == DatasetMode::kI2i) return id < 0;
  return true;
}

// Default ego order: the ego's kind first (vehicles ascending, infrastructure from -1 down),
// then the other kind.
bool AgentOrder(DatasetMode m, int a, int b) {
  if ((a < 0) != (b < 0)) return (a < 0) == InfraEgo(m);
  return a < 0 ? a > b : a < b;
}

absl::StatusOr<std::vector<std::string>> SortedTimestamps(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_regular_file() && e.path().extension() == ".yaml") {
      out.push_back(e.path().stem().string());
    }
  }
  if (ec) return absl::InternalError(absl::StrCat(dir.string(), ": ", ec.message()));
  std::sort(out.begin(), out.end());
  return out;
}

bool YamlSaysEgo(const fs::path& file) {
  absl::StatusOr<std::string> text = ReadFile(file.string());
  if (!text.ok()) return false;
  try {
    const YAML::Node root = YAML::Load(*text);
    return root.IsMap() && root["ego"] && root["ego"].IsScalar() && root["ego"].Scalar() == "true";
  } catch (const YAML::Exception&) {
    return false;  // a broken file is reported when its frame is read
  }
}

}  // namespace

absl::StatusOr<Opv2vAgentInfo> ParseOpv2vAgentYaml(const std::string& text,
                                                   const std::string& origin) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ":", e.mark.line + 1, ": ", e.msg));
  }
  if (!root.IsMap())
    return absl::InvalidArgumentError(absl::StrCat(origin, ": expected a mapping"));
  Opv2vAgentInfo info;
  QV2X_ASSIGN_OR_RETURN(std::vector<double> pose,
                        Numbers(root["lidar_pose"], 6, origin, "lidar_pose"));
  info.lidar_pose = Pose::FromArray({pose[0], pose[1], pose[2], pose[3], pose[4], pose[5]});
  if (root["ego"]) {
    const std::string v = root["ego"].IsScalar() ? root["ego"].Scalar() : "";
    if (v != "true" && v != "false") return Bad(origin, "ego", "expected true or false");
    info.has_ego_flag = true;
    info.ego = v == "true";
  }
  const YAML::Node vehicles = root["vehicles"];
  if (vehicles && !vehicles.IsNull()) {
    if (!vehicles.IsMap()) return Bad(origin, "vehicles", "expected a mapping of id to object");
    for (const auto& kv : vehicles) {
      int id;
      if (!kv.first.IsScalar() || !absl::SimpleAtoi(kv.first.Scalar(), &id)) {
        return Bad(origin, "vehicles", "object ids must be integers");
      }
      QV2X_ASSIGN_OR_RETURN(GtObject o,
                            ParseObject(kv.second, id, origin, absl::StrCat("vehicles.", id)));
      info.objects.push_back(std::move(o));
    }
  }
  return info;
}

absl::StatusOr<DatasetMode> ParseDatasetMode(const std::string& name) {
  for (DatasetMode m : {DatasetMode::kVc, DatasetMode::kV2v, DatasetMode::kIc, DatasetMode::kI2i}) {
    if (name == DatasetModeName(m)) return m;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("dataset mode \"", name, "\": expected vc, v2v, ic or i2i"));
}

const char* DatasetModeName(DatasetMode mode) {
  static constexpr const char* kNames[] = {"vc", "v2v", "ic", "i2i"};
  return kNames[static_cast<int>(mode)];
}

absl::StatusOr<MissingAgent> ParseMissingAgent(const std::string& name) {
  if (name == "skip") return MissingAgent::kSkip;
  if (name == "stop") return MissingAgent::kStop;
  return absl::InvalidArgumentError(
      absl::StrCat("missing-agent policy \"", name, "\": expected skip or stop"));
}

absl::StatusOr<Opv2vDataset> Opv2vDataset::Open(const std::string& root,
                                                const Opv2vOptions& options) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    return absl::NotFoundError(absl::StrCat(root, ": no such dataset folder"));
  }
  Opv2vDataset ds;
  ds.root_ = root;
  ds.options_ = options;
  const DatasetMode mode = options.mode;
  int without_ego = 0;
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    if (e.is_directory()) dirs.push_back(e.path());
  }
  std::sort(dirs.begin(), dirs.end());
  for (const fs::path& dir : dirs) {
    std::vector<int> ids;
    bool any_agent = false;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      int id;
      if (!IsAgentFolder(e, &id)) continue;
      any_agent = true;
      if (Keeps(mode, id)) ids.push_back(id);
    }
    if (!any_agent) continue;
    std::sort(ids.begin(), ids.end(), [mode](int a, int b) { return AgentOrder(mode, a, b); });
    if (ids.empty() || (ids.front() < 0) != InfraEgo(mode)) {
      ++without_ego;
      continue;
    }
    // An explicit `ego: true` in the first YAML of an agent of the ego's kind overrides the
    // default order.
    for (size_t i = 0; i < ids.size() && (ids[i] < 0) == InfraEgo(mode); ++i) {
      QV2X_ASSIGN_OR_RETURN(std::vector<std::string> ts,
                            SortedTimestamps(dir / std::to_string(ids[i])));
      if (!ts.empty() && YamlSaysEgo(dir / std::to_string(ids[i]) / (ts.front() + ".yaml"))) {
        std::rotate(ids.begin(), ids.begin() + i, ids.begin() + i + 1);
        break;
      }
    }
    QV2X_ASSIGN_OR_RETURN(std::vector<std::string> stamps,
                          SortedTimestamps(dir / std::to_string(ids.front())));
    const int scenario = static_cast<int>(ds.scenarios_.size());
    ds.scenarios_.push_back(dir.filename().string());
    ds.agents_.push_back(ids);
    for (const std::string& t : stamps) ds.frames_.push_back({scenario, t});
  }
  if (ds.scenarios_.empty()) {
    if (without_ego > 0) {
      return absl::NotFoundError(
          absl::StrCat(root, ": none of its ", without_ego, " scenarios has ",
                       InfraEgo(mode) ? "an infrastructure agent (negative id)" : "a vehicle agent",
                       " to be the ego of dataset mode ", DatasetModeName(mode)));
    }
    return absl::NotFoundError(
        absl::StrCat(root, ": no scenario folders (expected <scenario>/<agent id>/...)"));
  }
  return ds;
}

absl::StatusOr<SceneFrame> Opv2vDataset::ReadFrame(size_t i) const {
  QV2X_RETURN_IF_ERROR(CheckFrame(i));
  return Read(frames_[i].scenario, frames_[i].timestamp, IndexInScenario(i), /*points=*/true);
}

absl::StatusOr<SceneFrame> Opv2vDataset::ReadFrame(const std::string& scenario,
                                                   const std::string& timestamp) const {
  int index = 0;
  for (const FrameRef& f : frames_) {
    if (scenarios_[f.scenario] != scenario) continue;
    if (f.timestamp == timestamp) return Read(f.scenario, timestamp, index, /*points=*/true);
    ++index;
  }
  return absl::NotFoundError(
      absl::StrCat(root_, ": no frame ", timestamp, " in scenario \"", scenario, "\""));
}

absl::StatusOr<std::optional<Opv2vDataset::Record>> Opv2vDataset::ReadRecord(
    int scenario, const std::string& timestamp, int id, bool points) const {
  const fs::path stem = fs::path(root_) / scenarios_[scenario] / std::to_string(id) / timestamp;
  const std::string yaml_path = stem.string() + ".yaml";
  std::error_code ec;
  const bool ego = id == agents_[scenario].front();
  const bool stop = ego || options_.missing == MissingAgent::kStop;
  const char* why = ego ? " (the ego)" : " (missing_agent: stop)";
  if (!fs::exists(yaml_path, ec)) {
    if (!stop) return std::nullopt;  // this agent has no record at this instant
    return absl::NotFoundError(
        absl::StrCat(yaml_path, ": missing: agent ", id, " has no record at ", timestamp, why));
  }
  QV2X_ASSIGN_OR_RETURN(std::string text, ReadFile(yaml_path));
  QV2X_ASSIGN_OR_RETURN(Opv2vAgentInfo info, ParseOpv2vAgentYaml(text, yaml_path));
  std::string cloud_path = stem.string() + ".pcd";
  if (!fs::exists(cloud_path, ec)) cloud_path = stem.string() + ".bin";
  if (!fs::exists(cloud_path, ec)) {
    if (!stop) return std::nullopt;
    return absl::NotFoundError(absl::StrCat(stem.string(), ".pcd (or .bin): missing: agent ", id,
                                            " has a YAML but no sweep at ", timestamp, why));
  }
  Record r;
  r.agent.agent_id = id;
  r.agent.is_infrastructure = id < 0;
  r.agent.lidar_pose = info.lidar_pose;
  r.objects = std::move(info.objects);
  if (!points) return r;
  QV2X_ASSIGN_OR_RETURN(r.agent.points, ReadPointCloud(cloud_path));
  if (r.agent.points.empty()) {
    if (!stop) return std::nullopt;
    return absl::InvalidArgumentError(
        absl::StrCat(cloud_path, ": empty sweep (no point with finite coordinates)", why));
  }
  return r;
}

absl::StatusOr<SceneFrame> Opv2vDataset::Read(int scenario, const std::string& timestamp, int index,
                                              bool points) const {
  SceneFrame frame;
  frame.scenario = scenarios_[scenario];
  frame.timestamp = timestamp;
  frame.index = index;
  frame.ego_id = agents_[scenario].front();
  std::set<int> seen;
  for (int id : agents_[scenario]) {
    QV2X_ASSIGN_OR_RETURN(std::optional<Record> r, ReadRecord(scenario, timestamp, id, points));
    if (!r) continue;
    frame.agents.push_back(std::move(r->agent));
    for (GtObject& o : r->objects) {
      if (seen.insert(o.id).second) frame.objects.push_back(std::move(o));
    }
  }
  std::sort(frame.objects.begin(), frame.objects.end(),
            [](const GtObject& x, const GtObject& y) { return x.id < y.id; });
  return frame;
}

absl::StatusOr<SceneFrame> Opv2vDataset::ReadLabels(size_t i) const {
  QV2X_RETURN_IF_ERROR(CheckFrame(i));
  return Read(frames_[i].scenario, frames_[i].timestamp, IndexInScenario(i), /*points=*/false);
}

absl::StatusOr<std::optional<AgentFrame>> Opv2vDataset::ReadAgent(size_t i, int agent_id) const {
  QV2X_RETURN_IF_ERROR(CheckFrame(i));
  const FrameRef& f = frames_[i];
  const std::vector<int>& ids = agents_[f.scenario];
  if (std::find(ids.begin(), ids.end(), agent_id) == ids.end()) return std::nullopt;
  QV2X_ASSIGN_OR_RETURN(std::optional<Record> r,
                        ReadRecord(f.scenario, f.timestamp, agent_id, /*points=*/true));
  if (!r) return std::nullopt;
  return std::move(r->agent);
}

bool Opv2vDataset::HasRecord(size_t i, int agent_id) const {
  if (i >= frames_.size()) return false;
  const fs::path stem = fs::path(root_) / scenarios_[frames_[i].scenario] /
                        std::to_string(agent_id) / frames_[i].timestamp;
  std::error_code ec;
  return fs::exists(stem.string() + ".yaml", ec) &&
         (fs::exists(stem.string() + ".pcd", ec) || fs::exists(stem.string() + ".bin", ec));
}

absl::Status Opv2vDataset::CheckFrame(size_t i) const {
  if (i < frames_.size()) return absl::OkStatus();
  return absl::OutOfRangeError(absl::StrCat("frame ", i, " of ", frames_.size()));
}

int Opv2vDataset::IndexInScenario(size_t i) const {
  int index = 0;
  for (size_t k = i; k > 0 && frames_[k - 1].scenario == frames_[i].scenario; --k) ++index;
  return index;
}

}  // namespace qv2x
