// The pickle inside a LibTorch ZIP archive (checkpoints, INT8 artifacts), checked before
// LibTorch's unpickler runs on it. That unpickler allocates whatever length a string or
// bytes opcode declares before reading the bytes, so a 100 KB file claiming a 2 GiB string
// would make a service allocate 2 GiB (found by fuzz/checkpoint and fuzz/int8_artifact).
// The check walks every opcode of the pickle protocol and refuses a length, frame or line
// that runs past the end of the pickle, an unknown opcode, a pickle without STOP, a memo id
// beyond the opcodes before it, and an opcode that takes more values than the stack holds
// above its last MARK (LibTorch's unpickler trusts all of these). The archive around it is
// read here too (ReadArchiveRecords), not by LibTorch's ZIP reader.
#ifndef QV2X_CORE_MODEL_CHECKPOINT_PICKLE_H_
#define QV2X_CORE_MODEL_CHECKPOINT_PICKLE_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace qv2x {

// `pickle`: the bytes of a pickle stream. InvalidArgument naming the opcode and offset.
absl::Status CheckPickle(std::string_view pickle);

// The records of a LibTorch archive, read here rather than by LibTorch's ZIP reader, which
// allocates a compressed record's declared size before inflating it and leaks its state
// whenever it refuses a file (LSan, LibTorch 1.13).
struct ArchiveRecords {
  std::string_view pickle;  // <folder>/data.pkl, CheckPickle passed
  uint64_t version = 0;     // <folder>/.data/version or <folder>/version
  // <folder>/data/<key>, the storages' bytes, by <key> in lower case.
  std::map<std::string, std::string_view> data;
};

// Every record stored (LibTorch writes no compressed one), no name twice (ignoring case), a
// pickle that passes CheckPickle and a version LibTorch reads. InvalidArgument naming what
// is wrong. The views point into `archive`.
absl::StatusOr<ArchiveRecords> ReadArchiveRecords(std::string_view archive);

}  // namespace qv2x

#endif  // QV2X_CORE_MODEL_CHECKPOINT_PICKLE_H_
