// Scene YAML (configs/scenes/*.yaml) -> SceneConfig, and its `cluster:` section ->
// ClusterConfig (read from a file, as the launcher and the services do). Seeds: every scene
// the project ships.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>

#include "core/sim/cluster_config.h"
#include "core/sim/scene_config.h"
#include "fuzz/fuzz_check.h"

namespace {

// The cluster loader reads a file: one per process, so that parallel fuzzing jobs of this
// target do not share it; removed at exit.
struct ScratchFile {
  std::string path =
      (access("/dev/shm", W_OK) == 0 ? std::string("/dev/shm") : std::string("/tmp")) +
      "/qv2x-fuzz-scene-" + std::to_string(getpid()) + ".yaml";
  ~ScratchFile() { unlink(path.c_str()); }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<qv2x::sim::SceneConfig> scene = qv2x::sim::ParseSceneConfig(text);
  if (scene.ok()) {
    QV2X_FUZZ_CHECK(scene->FindAgent(scene->ego_id) != nullptr, "the ego is not an agent");
    QV2X_FUZZ_CHECK(scene->lidar.Columns() > 0 && scene->rate_hz > 0, "degenerate sensor");
  }
  static const ScratchFile file;
  {
    std::ofstream out(file.path, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
  }
  (void)qv2x::sim::LoadClusterConfig(file.path);
  return 0;
}
