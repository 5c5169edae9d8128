// `qv2x model inputs|forward` (cmd_model_forward.cc), dispatched from `qv2x model`
// (cmd_model.cc): a frame's model inputs as a file, and the model run on them with every
// output written (docs/model-forward.md).
#ifndef QV2X_TOOLS_QV2X_CMD_MODEL_FORWARD_H_
#define QV2X_TOOLS_QV2X_CMD_MODEL_FORWARD_H_

#include "absl/status/status.h"
#include "tools/qv2x/command.h"

namespace qv2x::cli {

// Usage lines and flag text, appended to `qv2x model --help`.
extern const char kModelForwardUsage[];

absl::Status RunInputsCommand(Args& args);
absl::Status RunForwardCommand(Args& args);

}  // namespace qv2x::cli

#endif  // QV2X_TOOLS_QV2X_CMD_MODEL_FORWARD_H_
