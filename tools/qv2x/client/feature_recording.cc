#include "tools/qv2x/client/feature_recording.h"

#include "absl/strings/str_cat.h"
#include "core/common/file_util.h"
#include "core/common/status_macros.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "nlohmann/json.hpp"

namespace qv2x::cli {
namespace {

// Larger than any message the fusion service accepts (its gRPC cap is 16 MiB).
constexpr uint32_t kMaxMessageBytes = 64u << 20;

nlohmann::json ToJson(const RecordingHeader& h) {
  return {{"scene", h.scene},
          {"scene_file", h.scene_file},
          {"preset", h.preset},
          {"model_config", h.model_config},
          {"checkpoint", h.checkpoint},
          {"int8_artifact", h.int8_artifact},
          {"codebook_digest", h.codebook_digest},
          {"precision", h.precision},
          {"codec", h.codec},
          {"rate_hz", h.rate_hz},
          {"ego_id", h.ego_id},
          {"agents", h.agents},
          {"first_frame", h.first_frame},
          {"frames", h.frames},
          {"messages", h.messages}};
}

absl::StatusOr<RecordingHeader> FromJson(const nlohmann::json& j) {
  RecordingHeader h;
  std::string key;
  try {
    auto get = [&](const char* k, auto* out) {
      key = k;
      j.at(k).get_to(*out);
    };
    get("scene", &h.scene);
    get("scene_file", &h.scene_file);
    get("preset", &h.preset);
    get("model_config", &h.model_config);
    get("checkpoint", &h.checkpoint);
    get("int8_artifact", &h.int8_artifact);
    get("codebook_digest", &h.codebook_digest);
    get("precision", &h.precision);
    get("codec", &h.codec);
    get("rate_hz", &h.rate_hz);
    get("ego_id", &h.ego_id);
    get("agents", &h.agents);
    get("first_frame", &h.first_frame);
    get("frames", &h.frames);
    get("messages", &h.messages);
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("header key \"", key, "\": ", e.what()));
  }
  if (h.agents.empty() || h.agents.front() != h.ego_id) {
    return absl::InvalidArgumentError("header: `agents` must list the ego (ego_id) first");
  }
  if (h.precision != "fp32" && h.precision != "int8") {
    return absl::InvalidArgumentError("header: `precision` must be fp32 or int8");
  }
  return h;
}

}  // namespace

absl::Status WriteRecording(const std::string& path, const Recording& recording) {
  std::string out = absl::StrCat(kRecordingMagic, "\n", ToJson(recording.header).dump(), "\n");
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    for (const std::string& m : recording.messages) {
      coded.WriteVarint32(static_cast<uint32_t>(m.size()));
      coded.WriteString(m);
    }
  }
  return WriteFileAtomic(path, out);
}

absl::StatusOr<Recording> ReadRecording(const std::string& path) {
  QV2X_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  auto error = [&](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", what));
  };
  const size_t magic_end = bytes.find('\n');
  if (magic_end == std::string::npos || bytes.compare(0, magic_end, kRecordingMagic) != 0) {
    return error(
        absl::StrCat("not a qv2x feature recording (first line is not \"", kRecordingMagic, "\")"));
  }
  const size_t header_end = bytes.find('\n', magic_end + 1);
  if (header_end == std::string::npos) return error("the header line is cut short");
  Recording r;
  const nlohmann::json j =
      nlohmann::json::parse(bytes.begin() + static_cast<std::ptrdiff_t>(magic_end + 1),
                            bytes.begin() + static_cast<std::ptrdiff_t>(header_end),
                            /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return error("the header is not a JSON object");
  absl::StatusOr<RecordingHeader> header = FromJson(j);
  if (!header.ok()) return error(std::string(header.status().message()));
  r.header = *std::move(header);

  const size_t start = header_end + 1;
  if (bytes.size() - start > static_cast<size_t>(INT32_MAX)) return error("larger than 2 GiB");
  google::protobuf::io::ArrayInputStream stream(bytes.data() + start,
                                                static_cast<int>(bytes.size() - start));
  google::protobuf::io::CodedInputStream coded(&stream);
  coded.SetTotalBytesLimit(static_cast<int>(bytes.size() - start));
  while (coded.CurrentPosition() < static_cast<int>(bytes.size() - start)) {
    const size_t at = start + static_cast<size_t>(coded.CurrentPosition());
    uint32_t size = 0;
    std::string message;
    if (!coded.ReadVarint32(&size) || size > kMaxMessageBytes ||
        !coded.ReadString(&message, size)) {
      return error(absl::StrCat("message ", r.messages.size() + 1, " at byte ", at,
                                " is cut short or has a bad length"));
    }
    r.messages.push_back(std::move(message));
  }
  if (r.messages.size() != r.header.messages) {
    return error(absl::StrCat("the header announces ", r.header.messages,
                              " messages, the file has ", r.messages.size()));
  }
  return r;
}

}  // namespace qv2x::cli
