// The full PTQ run on the shipped CPU model and the FP32 vs INT8 report on the held-out
// scene. Minutes to hours of CPU, so it only runs when asked:
//   QV2X_PTQ_REPORT_DIR=<out dir> [QV2X_PTQ_BITS_W=8] [QV2X_PTQ_ITERS=5000]
//   [QV2X_PTQ_RECONSTRUCT=1] [QV2X_PTQ_QDROP=0] [QV2X_PTQ_FRAMES=60]
//   build/tests/quant_cpu_report_test
// It writes <dir>/cpu-w<b>a8.int8 and <dir>/cpu-w<b>a8.json (PtqReportJson).
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "core/quant/ptq.h"
#include "core/quant/ptq_report.h"
#include "gtest/gtest.h"

namespace qv2x::quant {
namespace {

int EnvInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v == nullptr ? fallback : std::atoi(v);
}

TEST(CpuPresetPtq, QuantizeAndCompare) {
  const char* dir = std::getenv("QV2X_PTQ_REPORT_DIR");
  if (dir == nullptr) GTEST_SKIP() << "set QV2X_PTQ_REPORT_DIR to run the CPU-preset PTQ report";
  PtqOptions o;
  o.n_bits_w = EnvInt("QV2X_PTQ_BITS_W", 8);
  o.iters_w = EnvInt("QV2X_PTQ_ITERS", 5000);
  o.reconstruct = EnvInt("QV2X_PTQ_RECONSTRUCT", 1) != 0;
  o.qdrop = EnvInt("QV2X_PTQ_QDROP", 0) != 0;
  const std::string base = std::string(dir) + "/cpu-w" + std::to_string(o.n_bits_w) + "a8" +
                           (o.reconstruct ? "" : "-nearest") + (o.qdrop ? "-qdrop" : "");
  auto r = QuantizeCheckpoint(
      "configs/cpu/stage3.yaml", "models/cpu-stage3.pth", "sim:configs/scenes/train.yaml", o,
      base + ".int8",
      [](const PtqProgress& p) {
        if (p.kind == PtqProgress::kReconstruction) {
          std::fprintf(stderr, "[%d/%d] %s %.6g -> %.6g\n", p.index + 1, p.total, p.block.c_str(),
                       p.loss_before, p.loss_after);
        }
      },
      nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  std::fprintf(stderr, "PTQ %.0f s, artifact %lld bytes (payload %lld, FP32 %lld)\n", r->seconds,
               static_cast<long long>(r->artifact_file_bytes),
               static_cast<long long>(r->int8_bytes), static_cast<long long>(r->fp32_bytes));
  CompareOptions c;
  c.max_frames = EnvInt("QV2X_PTQ_FRAMES", 60);
  auto report = CompareFp32Int8("configs/cpu/stage3.yaml", "models/cpu-stage3.pth", base + ".int8",
                                "sim:configs/scenes/test.yaml", c);
  ASSERT_TRUE(report.ok()) << report.status();
  const std::string json = PtqReportJson(*report).dump(2);
  std::ofstream(base + ".json") << json << "\n";
  std::fprintf(stderr, "%s\n", json.c_str());
}

}  // namespace
}  // namespace qv2x::quant
