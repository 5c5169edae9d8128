// Converts LibTorch exceptions into absl::Status at the model boundary (SPEC §11): public
// model entry points run their body through TorchCall so no c10::Error escapes a library.
#ifndef QV2X_CORE_MODEL_TORCH_STATUS_H_
#define QV2X_CORE_MODEL_TORCH_STATUS_H_

#include <exception>
#include <string>
#include <type_traits>
#include <utility>

#include <c10/util/Exception.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace qv2x {

// c10 messages carry a multi-line C++ backtrace after the first line; callers print one line.
inline std::string FirstLine(const std::string& s) { return s.substr(0, s.find('\n')); }

// Runs `fn` (returning absl::Status or absl::StatusOr<T>) and turns a thrown c10::Error or
// std::exception into an Internal / InvalidArgument status prefixed with `what`.
template <typename Fn>
auto TorchCall(const char* what, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", FirstLine(e.what_without_backtrace())));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(what, ": ", FirstLine(e.what())));
  }
}

}  // namespace qv2x

#endif  // QV2X_CORE_MODEL_TORCH_STATUS_H_
