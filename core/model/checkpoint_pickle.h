// The pickle inside a LibTorch ZIP archive (checkpoints, INT8 artifacts), checked before
// LibTorch's unpickler runs on it. That unpickler allocates whatever length a string or
// bytes opcode declares before reading the bytes, so a 100 KB file claiming a 2 GiB string
// would make a service allocate 2 GiB (found by fuzz/checkpoint and fuzz/int8_artifact).
// The check walks every opcode of the pickle protocol and refuses a length, frame or line
// that runs past the end of the pickle, an unknown opcode, or a pickle without STOP; the
// archive around it is checked for what else LibTorch's reader trusts.
#ifndef QV2X_CORE_MODEL_CHECKPOINT_PICKLE_H_
#define QV2X_CORE_MODEL_CHECKPOINT_PICKLE_H_

#include <string_view>

#include "absl/status/status.h"

namespace qv2x {

// `pickle`: the bytes of a pickle stream. InvalidArgument naming the opcode and offset.
absl::Status CheckPickle(std::string_view pickle);

// What LibTorch's reader takes from the archive, checked before it opens it: every record
// stored (a compressed one makes it allocate the declared size), a version it supports
// (refusing one leaks its reader's state), and CheckPickle on every record it could take
// for the pickle (`<folder of the first record>/data.pkl`, names compared as it compares
// them, ignoring case). InvalidArgument naming what is wrong.
absl::Status CheckArchivePickle(std::string_view archive);

}  // namespace qv2x

#endif  // QV2X_CORE_MODEL_CHECKPOINT_PICKLE_H_
