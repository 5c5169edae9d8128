#include "core/baselines/fusion_table.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"

namespace qv2x::baselines {
namespace {

std::string Bytes(const ByteStats& s) {
  if (s.messages == 0) return "0";
  // Thousands separators keep six- and seven-digit sizes readable.
  std::string digits = absl::StrFormat("%.0f", s.mean), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

std::string Ratio(double reference, const ByteStats& s) {
  if (s.messages == 0 || s.mean <= 0 || reference <= 0) return "—";
  const double r = reference / s.mean;
  return r >= 10 ? absl::StrFormat("%.0f×", r) : absl::StrFormat("%.2f×", r);
}

nlohmann::json BytesJson(const ByteStats& s, double reference) {
  nlohmann::json j = {{"messages", s.messages}, {"mean", s.mean}, {"p95", s.p95}};
  j["ratio_vs_fp32_features"] =
      s.messages > 0 && s.mean > 0 && reference > 0 ? nlohmann::json(reference / s.mean) : nullptr;
  return j;
}

}  // namespace

std::string MethodLabel(FusionMethod m, bool codebook_model) {
  switch (m) {
    case FusionMethod::kNone:
      return "no fusion (ego only)";
    case FusionMethod::kLate:
      return "late fusion";
    case FusionMethod::kEarly:
      return "early fusion";
    case FusionMethod::kIntermediate:
      return codebook_model ? "intermediate (codebook)" : "intermediate (FP32 features)";
    case FusionMethod::kIntermediateNoCodebook:
      return codebook_model ? "intermediate (codebook bypassed)" : "intermediate (FP32 features)";
  }
  return "?";
}

std::vector<FusionTableRow> TableRows(const BaselineRun& run, const std::string& weights,
                                      bool codebook_model) {
  std::vector<FusionTableRow> rows;
  for (const MethodRun& m : run.methods) {
    std::string label = MethodLabel(m.method, codebook_model);
    if (m.sparse) {
      label = absl::StrFormat("intermediate (codebook, sparse %.2g m +%d)",
                              m.sparse->min_height_span_m, m.sparse->dilation_cells);
    }
    rows.push_back({label, weights, m.sends, m.result, m.raw, m.zstd, m.zstd_dict, m.sparse,
                    m.sent_cell_fraction});
  }
  return rows;
}

std::string FusionTableMarkdown(const FusionTable& t) {
  std::string out =
      "| method | weights | each agent sends | veh 0.3 | veh 0.5 | veh 0.7 | ped 0.3 | ped 0.5 | "
      "ped 0.7 | truck 0.3 | truck 0.5 | truck 0.7 | bytes/agent/frame | with zstd | FP32 "
      "features ÷ bytes (zstd) |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const FusionTableRow& r : t.rows) {
    absl::StrAppend(&out, "| ", r.method, " | ", r.weights, " | ", r.sends, " |");
    for (int c = 0; c < kNumClasses; ++c) {
      for (double ap : r.result.ap[c]) absl::StrAppend(&out, absl::StrFormat(" %.3f |", ap));
    }
    absl::StrAppend(&out, " ", Bytes(r.raw), " | ", Bytes(r.zstd), " | ",
                    Ratio(t.fp32_feature_bytes, r.zstd), " |\n");
  }
  bool dictionary = false;
  for (const FusionTableRow& r : t.rows) dictionary |= r.zstd_dict.messages > 0;
  if (dictionary) {
    absl::StrAppend(&out,
                    "\n| codebook rows | cells sent | bytes (zstd) | with the zstd dictionary | "
                    "FP32 features ÷ bytes (dictionary) |\n|---|---|---|---|---|\n");
    for (const FusionTableRow& r : t.rows) {
      if (r.zstd_dict.messages == 0) continue;
      absl::StrAppend(&out, "| ", r.method, " | ",
                      absl::StrFormat("%.1f %%", 100 * r.sent_cell_fraction), " | ", Bytes(r.zstd),
                      " | ", Bytes(r.zstd_dict), " | ", Ratio(t.fp32_feature_bytes, r.zstd_dict),
                      " |\n");
    }
  }
  const EvalResult* any = t.rows.empty() ? nullptr : &t.rows.front().result;
  absl::StrAppend(&out, "\n", t.frames, " frames of ", t.source,
                  absl::StrFormat(", %.2f agents per frame", t.agents_per_frame));
  if (any != nullptr) {
    absl::StrAppend(&out, "; ground truth: ", any->num_gt[0], " vehicles, ", any->num_gt[1],
                    " pedestrians, ", any->num_gt[2], " trucks");
  }
  absl::StrAppend(&out,
                  "; AP with the global sort; bytes are the mean per non-ego agent and "
                  "frame; the FP32 feature message is ",
                  Bytes({1, t.fp32_feature_bytes, 0}), " bytes.\n");
  return out;
}

std::string FusionTableJson(const FusionTable& t) {
  nlohmann::json j;
  j["source"] = t.source;
  j["frames"] = t.frames;
  j["agents_per_frame"] = t.agents_per_frame;
  j["fp32_feature_bytes"] = t.fp32_feature_bytes;
  j["ap_sort"] = "global";
  j["rows"] = nlohmann::json::array();
  for (const FusionTableRow& r : t.rows) {
    nlohmann::json row = {{"method", r.method}, {"weights", r.weights}, {"sends", r.sends}};
    for (int c = 0; c < kNumClasses; ++c) {
      const char* name = ClassName(static_cast<ObjectClass>(c));
      for (size_t k = 0; k < r.result.iou_thresholds.size(); ++k) {
        row["ap"][name][absl::StrFormat("%g", r.result.iou_thresholds[k])] = r.result.ap[c][k];
      }
      row["num_gt"][name] = r.result.num_gt[c];
      row["num_pred"][name] = r.result.num_pred[c];
    }
    row["bytes"] = {{"raw", BytesJson(r.raw, t.fp32_feature_bytes)},
                    {"zstd", BytesJson(r.zstd, t.fp32_feature_bytes)}};
    if (r.zstd_dict.messages > 0) {
      row["bytes"]["zstd_dictionary"] = BytesJson(r.zstd_dict, t.fp32_feature_bytes);
    }
    if (r.sparse) {
      row["sparse"] = {{"min_height_span_m", r.sparse->min_height_span_m},
                       {"dilation_cells", r.sparse->dilation_cells}};
    }
    row["sent_cell_fraction"] = r.sent_cell_fraction;
    j["rows"].push_back(std::move(row));
  }
  return j.dump(2) + "\n";
}

}  // namespace qv2x::baselines
