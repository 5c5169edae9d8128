// Static scenery of the simulated map: buildings on the corner blocks (the occluders that
// hide one street from the other), roadside unit masts, and distractors that are no
// detection class (poles, trees, walls, parked objects such as bins, kiosks and containers).
#ifndef QV2X_CORE_SIM_SCENERY_H_
#define QV2X_CORE_SIM_SCENERY_H_

#include <vector>

#include "core/sim/lidar.h"
#include "core/sim/rng.h"
#include "core/sim/scene_config.h"
#include "core/sim/street_layout.h"

namespace qv2x::sim {

// Where a roadside unit stands (on the sidewalk corner) and which way it faces (the
// intersection centre).
SensorMount RsuMount(const AgentConfig& rsu, const StreetLayout& layout);

// Lays out the scenery. Distractors that find no free spot after a bounded number of tries
// are left out, so a crowded block holds fewer than asked.
std::vector<Solid> PlaceScenery(const SceneConfig& config, const StreetLayout& layout, Rng& rng);

}  // namespace qv2x::sim

#endif  // QV2X_CORE_SIM_SCENERY_H_
