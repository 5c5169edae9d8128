#include "core/data/frame.h"

#include <algorithm>
#include <cctype>

namespace qv2x {

const char* ClassName(ObjectClass c) {
  switch (c) {
    case ObjectClass::kVehicle:
      return "vehicle";
    case ObjectClass::kPedestrian:
      return "pedestrian";
    case ObjectClass::kTruck:
      return "truck";
  }
  return "unknown";
}

std::optional<ObjectClass> ClassFromName(const std::string& name) {
  if (name == "vehicle") return ObjectClass::kVehicle;
  if (name == "pedestrian") return ObjectClass::kPedestrian;
  if (name == "truck") return ObjectClass::kTruck;
  return std::nullopt;
}

ObjectClass ClassFromDatasetType(const std::string& obj_type) {
  static const char* kPedestrian[] = {"Pedestrian",     "Child",        "RoadWorker",
                                      "Scooter",        "ScooterRider", "Motorcycle",
                                      "MotorcyleRider", "BicycleRider", "pedestrian"};
  static const char* kTruck[] = {"Truck", "Van", "TrashCan", "ConcreteTruck", "Bus", "truck"};
  for (const char* t : kPedestrian) {
    if (obj_type == t) return ObjectClass::kPedestrian;
  }
  for (const char* t : kTruck) {
    if (obj_type == t) return ObjectClass::kTruck;
  }
  return ObjectClass::kVehicle;
}

}  // namespace qv2x
