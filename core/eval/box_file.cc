#include "core/eval/box_file.h"

#include <cmath>
#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "core/common/file_util.h"
#include "nlohmann/json.hpp"

namespace qv2x {
namespace {

using Json = nlohmann::json;

absl::Status Bad(const std::string& source, const std::string& path, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(source, ": ", path, ": ", what));
}

// A finite number under `key` of object `obj`; `positive` additionally requires > 0.
absl::StatusOr<double> Number(const Json& obj, const char* key, const std::string& source,
                              const std::string& path, bool positive) {
  const std::string at = absl::StrCat(path, ".", key);
  auto it = obj.find(key);
  if (it == obj.end()) return Bad(source, at, "missing");
  if (!it->is_number()) return Bad(source, at, absl::StrCat("expected a number, got ", it->dump()));
  const double v = it->get<double>();
  if (!std::isfinite(v)) return Bad(source, at, "must be finite");
  if (positive && !(v > 0)) return Bad(source, at, absl::StrCat("must be > 0, got ", it->dump()));
  return v;
}

absl::StatusOr<EvalBox> ParseBox(const Json& j, BoxFileKind kind, const std::string& source,
                                 const std::string& path) {
  if (!j.is_object()) return Bad(source, path, "expected an object");
  EvalBox out;
  auto cls = j.find("class");
  if (cls == j.end()) return Bad(source, path + ".class", "missing");
  if (!cls->is_string()) return Bad(source, path + ".class", "expected a string");
  const auto parsed = ClassFromName(cls->get<std::string>());
  if (!parsed) {
    return Bad(
        source, path + ".class",
        absl::StrCat("unknown class ", cls->dump(), " (expected vehicle, pedestrian or truck)"));
  }
  out.cls = *parsed;
  struct Field {
    const char* key;
    double* dst;
    bool positive;
  };
  const Field fields[] = {{"x", &out.box.x, false},    {"y", &out.box.y, false},
                          {"z", &out.box.z, false},    {"l", &out.box.l, true},
                          {"w", &out.box.w, true},     {"h", &out.box.h, true},
                          {"yaw", &out.box.yaw, false}};
  for (const Field& f : fields) {
    auto v = Number(j, f.key, source, path, f.positive);
    if (!v.ok()) return v.status();
    *f.dst = *v;
  }
  if (kind == BoxFileKind::kPrediction) {
    auto s = Number(j, "score", source, path, false);
    if (!s.ok()) return s.status();
    out.score = *s;
  }
  return out;
}

}  // namespace

absl::StatusOr<std::vector<FrameBoxes>> ParseBoxFile(const std::string& json_text, BoxFileKind kind,
                                                     const std::string& source) {
  Json root;
  try {
    root = Json::parse(json_text);
  } catch (const Json::exception& e) {
    // Drop nlohmann's "[json.exception.parse_error.101] " tag; keep line and column.
    std::string what = e.what();
    const size_t tag_end = what.find("] ");
    if (!what.empty() && what[0] == '[' && tag_end != std::string::npos) what.erase(0, tag_end + 2);
    return absl::InvalidArgumentError(absl::StrCat(source, ": malformed JSON: ", what));
  }
  if (!root.is_object()) return Bad(source, "(top level)", "expected an object with \"frames\"");
  auto frames = root.find("frames");
  if (frames == root.end()) return Bad(source, "frames", "missing");
  if (!frames->is_array()) return Bad(source, "frames", "expected an array");

  std::vector<FrameBoxes> out;
  out.reserve(frames->size());
  std::unordered_set<std::string> seen;
  for (size_t i = 0; i < frames->size(); ++i) {
    const Json& f = (*frames)[i];
    const std::string path = absl::StrCat("frames[", i, "]");
    if (!f.is_object()) return Bad(source, path, "expected an object");
    auto name = f.find("frame");
    if (name == f.end()) return Bad(source, path + ".frame", "missing");
    if (!name->is_string()) {
      return Bad(source, path + ".frame", absl::StrCat("expected a string, got ", name->dump()));
    }
    FrameBoxes fb;
    fb.frame = name->get<std::string>();
    if (!seen.insert(fb.frame).second) {
      return Bad(source, path + ".frame", absl::StrCat("duplicate frame \"", fb.frame, "\""));
    }
    auto boxes = f.find("boxes");
    if (boxes == f.end()) return Bad(source, path + ".boxes", "missing");
    if (!boxes->is_array()) return Bad(source, path + ".boxes", "expected an array");
    fb.boxes.reserve(boxes->size());
    for (size_t b = 0; b < boxes->size(); ++b) {
      auto box = ParseBox((*boxes)[b], kind, source, absl::StrCat(path, ".boxes[", b, "]"));
      if (!box.ok()) return box.status();
      fb.boxes.push_back(*box);
    }
    out.push_back(std::move(fb));
  }
  return out;
}

absl::StatusOr<std::vector<FrameBoxes>> LoadBoxFile(const std::string& path, BoxFileKind kind) {
  auto text = ReadFile(path);
  if (!text.ok()) return text.status();
  return ParseBoxFile(*text, kind, path);
}

std::string BoxFileToJson(const std::vector<FrameBoxes>& frames, BoxFileKind kind) {
  nlohmann::ordered_json root;
  auto& arr = root["frames"] = nlohmann::ordered_json::array();
  for (const FrameBoxes& f : frames) {
    nlohmann::ordered_json jf;
    jf["frame"] = f.frame;
    auto& boxes = jf["boxes"] = nlohmann::ordered_json::array();
    for (const EvalBox& b : f.boxes) {
      nlohmann::ordered_json jb;
      jb["class"] = ClassName(b.cls);
      jb["x"] = b.box.x;
      jb["y"] = b.box.y;
      jb["z"] = b.box.z;
      jb["l"] = b.box.l;
      jb["w"] = b.box.w;
      jb["h"] = b.box.h;
      jb["yaw"] = b.box.yaw;
      if (kind == BoxFileKind::kPrediction) jb["score"] = b.score;
      boxes.push_back(std::move(jb));
    }
    arr.push_back(std::move(jf));
  }
  return root.dump() + "\n";
}

absl::Status SaveBoxFile(const std::string& path, const std::vector<FrameBoxes>& frames,
                         BoxFileKind kind) {
  return WriteFileAtomic(path, BoxFileToJson(frames, kind));
}

}  // namespace qv2x
