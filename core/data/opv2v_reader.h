// Reads datasets in the OPV2V / V2XSet / V2X-Real folder layout (SPEC §9):
// ROOT/<scenario>/<agent_id>/<timestamp>.{pcd|bin} + <timestamp>.yaml, negative agent ids
// being infrastructure. Also reads what `qv2x sim --out` writes (opv2v_writer.h).
#ifndef QV2X_CORE_DATA_OPV2V_READER_H_
#define QV2X_CORE_DATA_OPV2V_READER_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/data/frame.h"

namespace qv2x {

// One agent's YAML: its LiDAR pose and the objects it lists (world frame).
struct Opv2vAgentInfo {
  Pose lidar_pose;
  bool has_ego_flag = false;
  bool ego = false;
  std::vector<GtObject> objects;  // in file order
};

// Parses an agent YAML. Box centre = location + center; yaw = angle[1] (degrees);
// sizes = 2 x extent; class from obj_type (absent: vehicle). visible_to / points_by_agent
// are read when present (qv2x writes them). `origin` names the source in errors.
absl::StatusOr<Opv2vAgentInfo> ParseOpv2vAgentYaml(const std::string& text,
                                                   const std::string& origin);

// Which agents take part, as V2X-Real's dataset modes name them: vc (a vehicle is the ego,
// infrastructure joins), v2v (vehicles only), ic (infrastructure is the ego, vehicles join),
// i2i (infrastructure only). OPV2V has vehicles only: vc and v2v read it alike.
enum class DatasetMode { kVc, kV2v, kIc, kI2i };
absl::StatusOr<DatasetMode> ParseDatasetMode(const std::string& name);
const char* DatasetModeName(DatasetMode mode);

// An agent other than the ego with no record (YAML or sweep) at one of the ego's timestamps,
// or an empty sweep: left out of that frame (skip), or an error naming the file (stop).
enum class MissingAgent { kSkip, kStop };
absl::StatusOr<MissingAgent> ParseMissingAgent(const std::string& name);

struct Opv2vOptions {
  DatasetMode mode = DatasetMode::kVc;
  MissingAgent missing = MissingAgent::kSkip;
};

class Opv2vDataset {
 public:
  // Scans `root` for scenario folders (those with at least one numeric agent folder that
  // the mode keeps, one of them of the ego's kind).
  static absl::StatusOr<Opv2vDataset> Open(const std::string& root,
                                           const Opv2vOptions& options = {});

  struct FrameRef {
    int scenario = 0;
    std::string timestamp;
  };

  const std::string& root() const { return root_; }
  const Opv2vOptions& options() const { return options_; }
  const std::vector<std::string>& scenarios() const { return scenarios_; }
  // Agent ids of a scenario that the mode keeps, the ego first: the agent of the ego's kind
  // whose YAML says `ego: true`, else the lowest non-negative id (vc, v2v) or the
  // infrastructure id closest to zero (ic, i2i).
  const std::vector<int>& agent_ids(int scenario) const { return agents_[scenario]; }
  // Every timestamp of every scenario's ego, scenarios and timestamps in sorted order.
  const std::vector<FrameRef>& frames() const { return frames_; }

  // The frame: each agent that has this timestamp (ego first) and the ground truth, the
  // union of all agents' object lists de-duplicated by id. The ego's record must exist and
  // hold points; other agents' follow the MissingAgent policy.
  absl::StatusOr<SceneFrame> ReadFrame(size_t i) const;
  absl::StatusOr<SceneFrame> ReadFrame(const std::string& scenario,
                                       const std::string& timestamp) const;
  // Frame i without the sweeps: the agents with a record (poses only) and the ground truth.
  // An empty sweep file is not noticed here (it is by ReadFrame and ReadAgent).
  absl::StatusOr<SceneFrame> ReadLabels(size_t i) const;
  // One agent's record at frame i, as ReadFrame would list it; nullopt when the agent is not
  // in the scenario or, under missing_agent skip, has no record or an empty sweep then.
  absl::StatusOr<std::optional<AgentFrame>> ReadAgent(size_t i, int agent_id) const;
  // Whether an agent of frame i's scenario has a YAML and a sweep file at its timestamp (the
  // sweep is not read: an empty one still counts).
  bool HasRecord(size_t i, int agent_id) const;

 private:
  struct Record {
    AgentFrame agent;
    std::vector<GtObject> objects;
  };
  // nullopt: no record that the MissingAgent policy lets pass (skip).
  absl::StatusOr<std::optional<Record>> ReadRecord(int scenario, const std::string& timestamp,
                                                   int id, bool points) const;
  absl::StatusOr<SceneFrame> Read(int scenario, const std::string& timestamp, int index,
                                  bool points) const;
  absl::Status CheckFrame(size_t i) const;
  int IndexInScenario(size_t i) const;

  std::string root_;
  Opv2vOptions options_;
  std::vector<std::string> scenarios_;
  std::vector<std::vector<int>> agents_;
  std::vector<FrameRef> frames_;
};

}  // namespace qv2x

#endif  // QV2X_CORE_DATA_OPV2V_READER_H_
