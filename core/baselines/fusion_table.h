// The fusion-baselines table (OpenCOOD's benchmark-table layout): per method AP per class
// at IoU 0.3 / 0.5 / 0.7 and the bytes each agent sends per frame, raw and with zstd,
// against the FP32 feature map. Markdown for people, JSON for scripts.
#ifndef QV2X_CORE_BASELINES_FUSION_TABLE_H_
#define QV2X_CORE_BASELINES_FUSION_TABLE_H_

#include <optional>
#include <string>
#include <vector>

#include "core/baselines/baseline_eval.h"

namespace qv2x::baselines {

struct FusionTableRow {
  std::string method;   // e.g. "intermediate (codebook)"
  std::string weights;  // which checkpoint, e.g. "stage 3"
  std::string sends;
  EvalResult result;
  ByteStats raw, zstd;  // messages == 0: sends nothing
  ByteStats zstd_dict;  // messages == 0: no dictionary given
  std::optional<CellSelection> sparse;
  double sent_cell_fraction = 1;
};

struct FusionTable {
  std::string source;  // the frames, e.g. "sim:configs/scenes/test.yaml"
  size_t frames = 0;
  double agents_per_frame = 0;
  double fp32_feature_bytes = 0;  // mean raw FP32 feature message, the ratios' reference
  std::vector<FusionTableRow> rows;
};

// One row per method of `run`; `weights` labels them all, `codebook_model` says whether the
// model had a codebook (it names the intermediate rows).
std::vector<FusionTableRow> TableRows(const BaselineRun& run, const std::string& weights,
                                      bool codebook_model);

// "intermediate (codebook)" for kIntermediate on a codebook model, and so on.
std::string MethodLabel(FusionMethod m, bool codebook_model);

std::string FusionTableMarkdown(const FusionTable& t);
std::string FusionTableJson(const FusionTable& t);

}  // namespace qv2x::baselines

#endif  // QV2X_CORE_BASELINES_FUSION_TABLE_H_
