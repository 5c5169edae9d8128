// Simulator speed (run from the repository root: it reads configs/scenes/*.yaml):
//   one 32-beam sweep of the intersection scene (ray casting alone), one agent's full
//   simulation (world state + sweep), a full 4-agent frame with ground truth, the tiny
//   scene's sweep, and laying out a scenario.
#include <optional>

#include "benchmark/benchmark.h"
#include "core/sim/simulator.h"

namespace qv2x::sim {
namespace {

const Simulator* Get(const std::string& name) {
  static std::map<std::string, std::optional<Simulator>>* cache =
      new std::map<std::string, std::optional<Simulator>>();
  auto it = cache->find(name);
  if (it == cache->end()) {
    absl::StatusOr<SceneConfig> c = LoadSceneConfig("configs/scenes/" + name + ".yaml");
    std::optional<Simulator> sim;
    if (c.ok()) {
      absl::StatusOr<Simulator> s = Simulator::Create(*c);
      if (s.ok()) sim.emplace(*std::move(s));
    }
    it = cache->emplace(name, std::move(sim)).first;
  }
  return it->second ? &*it->second : nullptr;
}

// Ray casting only: the world state at frame 30 is built once.
void SweepOnly(benchmark::State& state, const std::string& scene) {
  const Simulator* sim = Get(scene);
  if (sim == nullptr) {
    state.SkipWithError("cannot load the scene (run from the repository root)");
    return;
  }
  const World& w = sim->world(0);
  const double t = sim->TimeAt(30);
  const std::vector<ActorState> actors = w.ActorsAt(t);
  const std::vector<Solid> solids = w.Solids(actors);
  const SensorMount mount = *w.Mount(sim->config().ego_id, t);
  const Lidar lidar(sim->config().lidar);
  size_t points = 0;
  for (auto _ : state) {
    Rng noise(StreamKey(1, {}));
    Sweep s = lidar.Scan(solids, static_cast<int>(w.actors().size()), w.layout(), mount, &noise);
    points = s.points.size();
    benchmark::DoNotOptimize(s.points.data());
  }
  state.counters["points"] = static_cast<double>(points);
  state.counters["solids"] = static_cast<double>(solids.size());
  state.counters["rays"] =
      static_cast<double>(sim->config().lidar.channels) * sim->config().lidar.Columns();
}

void BM_SweepIntersection(benchmark::State& state) { SweepOnly(state, "intersection"); }
void BM_SweepTiny(benchmark::State& state) { SweepOnly(state, "tiny"); }

void BM_SimulateAgentIntersection(benchmark::State& state) {
  const Simulator* sim = Get("intersection");
  if (sim == nullptr) return state.SkipWithError("cannot load the scene");
  int i = 0;
  for (auto _ : state) {
    absl::StatusOr<AgentFrame> f = sim->SimulateAgent(0, i++ % 100, sim->config().ego_id);
    benchmark::DoNotOptimize(f);
  }
}

void BM_FrameAllAgentsIntersection(benchmark::State& state) {
  const Simulator* sim = Get("intersection");
  if (sim == nullptr) return state.SkipWithError("cannot load the scene");
  int i = 0;
  for (auto _ : state) {
    absl::StatusOr<SceneFrame> f = sim->Frame(0, i++ % 100);
    benchmark::DoNotOptimize(f);
  }
  state.counters["agents"] = static_cast<double>(sim->agent_ids().size());
}

void BM_BuildWorldIntersection(benchmark::State& state) {
  const Simulator* sim = Get("intersection");
  if (sim == nullptr) return state.SkipWithError("cannot load the scene");
  int k = 0;
  for (auto _ : state) {
    absl::StatusOr<World> w = World::Build(sim->config(), k++);
    benchmark::DoNotOptimize(w);
  }
}

BENCHMARK(BM_SweepIntersection)->Unit(benchmark::kMillisecond)->Repetitions(9);
BENCHMARK(BM_SweepTiny)->Unit(benchmark::kMillisecond)->Repetitions(9);
BENCHMARK(BM_SimulateAgentIntersection)->Unit(benchmark::kMillisecond)->Repetitions(9);
BENCHMARK(BM_FrameAllAgentsIntersection)->Unit(benchmark::kMillisecond)->Repetitions(9);
BENCHMARK(BM_BuildWorldIntersection)->Unit(benchmark::kMicrosecond)->Repetitions(9);

}  // namespace
}  // namespace qv2x::sim
