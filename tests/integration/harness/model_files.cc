#include "tests/integration/harness/model_files.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "tests/integration/harness/process.h"

namespace qv2x::testing {
namespace {

constexpr char kShippedCheckpoint[] = "models/cpu-stage3.pth";
constexpr char kShippedInt8[] = "models/cpu-stage3.int8";

absl::Status ModelInit(const std::string& config, const std::vector<std::string>& sets,
                       const std::string& out) {
  std::vector<std::string> argv = {
      BuildDir() + "/bin/qv2x", "model", "init", "--config", config, "--out", out};
  for (const std::string& s : sets) {
    argv.push_back("--set");
    argv.push_back(s);
  }
  auto p = ChildProcess::Start(argv, out + ".log");
  if (!p.ok()) return p.status();
  if ((*p)->Wait(120) != 0) {
    return absl::InternalError(absl::StrCat("qv2x model init failed: ", (*p)->Log()));
  }
  return absl::OkStatus();
}

absl::Status WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  return out ? absl::OkStatus() : absl::InternalError(absl::StrCat("cannot write ", path));
}

// `src` cut to half its length, or with one bit flipped half way (inside the tensor data
// that makes up most of these files).
absl::Status Spoil(const std::string& src, const std::string& dst, bool truncate) {
  std::string bytes = FileBytes(src);
  if (bytes.empty()) return absl::NotFoundError(absl::StrCat("cannot read ", src));
  if (truncate) {
    bytes.resize(bytes.size() / 2);
  } else {
    bytes[bytes.size() / 2] ^= 0x01;
  }
  return WriteBytes(dst, bytes);
}

}  // namespace

std::string FileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::StatusOr<std::string> MakeBadModelFile(BadModelFile kind, const std::string& dir) {
  static const char* kNames[] = {"good.pth",       "truncated.pth", "corrupt.pth",
                                 "shape.pth",      "preset.pth",    "stage1.pth",
                                 "truncated.int8", "corrupt.int8",  "preset.int8"};
  const std::string path = absl::StrCat(dir, "/", kNames[static_cast<int>(kind)]);
  if (std::filesystem::exists(path)) return path;
  absl::Status st;
  switch (kind) {
    case BadModelFile::kNone:
      st = ModelInit("configs/tiny/stage3.yaml", {}, path);
      break;
    case BadModelFile::kTruncatedCheckpoint:
    case BadModelFile::kCorruptCheckpoint: {
      auto good = MakeBadModelFile(BadModelFile::kNone, dir);
      if (!good.ok()) return good.status();
      st = Spoil(*good, path, kind == BadModelFile::kTruncatedCheckpoint);
      break;
    }
    case BadModelFile::kWrongShapeCheckpoint:
      st = ModelInit("configs/tiny/stage3.yaml", {"model.args.shrink_header.dim=24"}, path);
      break;
    case BadModelFile::kWrongPresetCheckpoint:
      st = WriteBytes(path, FileBytes(kShippedCheckpoint));
      break;
    case BadModelFile::kWrongStageCheckpoint:
      st = ModelInit("configs/tiny/stage1.yaml", {}, path);
      break;
    case BadModelFile::kTruncatedInt8:
    case BadModelFile::kCorruptInt8:
      st = Spoil(kShippedInt8, path, kind == BadModelFile::kTruncatedInt8);
      break;
    case BadModelFile::kWrongPresetInt8:
      st = WriteBytes(path, FileBytes(kShippedInt8));
      break;
  }
  if (!st.ok()) return st;
  return path;
}

}  // namespace qv2x::testing
