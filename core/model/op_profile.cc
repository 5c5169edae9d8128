#include "core/model/op_profile.h"

#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/common/status_macros.h"
#include "core/model/torch_status.h"

namespace qv2x {
namespace {

namespace prof = torch::autograd::profiler;

std::string ShapesText(const std::vector<std::vector<int64_t>>& shapes) {
  std::vector<std::string> parts;
  for (const auto& s : shapes) {
    if (!s.empty()) parts.push_back(absl::StrCat("[", absl::StrJoin(s, ", "), "]"));
  }
  return absl::StrJoin(parts, " ");
}

struct Open {
  prof::LegacyEvent* push;
  double children_us = 0;
};

}  // namespace

absl::StatusOr<std::vector<OpProfileRow>> ProfileOps(const std::function<absl::Status()>& work,
                                                     int runs, double* wall_ms) {
  if (runs <= 0) return absl::InvalidArgumentError("profile: runs must be > 0");
  prof::thread_event_lists lists;
  double wall = 0;
  QV2X_RETURN_IF_ERROR(TorchCall("profile", [&]() -> absl::Status {
    prof::enableProfilerLegacy(torch::profiler::impl::ProfilerConfig(
        torch::profiler::impl::ProfilerState::CPU, /*report_input_shapes=*/true,
        /*profile_memory=*/false, /*with_stack=*/false, /*with_flops=*/true));
    const auto t0 = std::chrono::steady_clock::now();
    absl::Status st;
    for (int r = 0; r < runs && st.ok(); ++r) st = work();
    wall = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    lists = prof::disableProfilerLegacy();
    return st;
  }));
  if (wall_ms != nullptr) *wall_ms = wall / runs;
  std::map<std::pair<std::string, std::string>, OpProfileRow> sums;  // by (op, shapes)
  for (auto& list : lists) {
    std::vector<Open> stack;
    for (prof::LegacyEvent& e : list) {
      if (e.kind() == prof::EventKind::PushRange) {
        stack.push_back({&e});
      } else if (e.kind() == prof::EventKind::PopRange) {
        // Ranges nest per thread; a pop without its push (the profiler started inside an
        // op) is skipped.
        auto it = std::find_if(stack.rbegin(), stack.rend(),
                               [&](const Open& o) { return o.push->handle() == e.handle(); });
        if (it == stack.rend()) continue;
        const Open open = *it;
        stack.erase(std::next(it).base(), stack.end());
        const double total = open.push->cpuElapsedUs(e);
        OpProfileRow& s = sums[{open.push->name(), ShapesText(open.push->shapes())}];
        s.calls += 1;
        s.total_ms += total / 1000;
        s.self_ms += (total - open.children_us) / 1000;
        s.gflop += static_cast<double>(open.push->flops()) / 1e9;
        if (!stack.empty()) stack.back().children_us += total;
      }
    }
  }
  std::vector<OpProfileRow> rows;
  for (auto& [key, s] : sums) {
    s.op = key.first;
    s.shapes = key.second;
    for (double* v : {&s.calls, &s.self_ms, &s.total_ms, &s.gflop}) *v /= runs;
    rows.push_back(std::move(s));
  }
  std::sort(rows.begin(), rows.end(),
            [](const OpProfileRow& a, const OpProfileRow& b) { return a.self_ms > b.self_ms; });
  return rows;
}

double MeasureSgemmGflops() {
  torch::NoGradGuard no_grad;
  const int64_t n = 2048;
  const torch::Tensor a = torch::rand({n, n}), b = torch::rand({n, n});
  torch::Tensor c = torch::empty({n, n});
  double best = 0;
  for (int r = 0; r < 4; ++r) {  // the first warms the BLAS threads and caches up
    const auto t0 = std::chrono::steady_clock::now();
    torch::mm_out(c, a, b);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (r > 0) best = std::max(best, 2.0 * n * n * n / s / 1e9);
  }
  return best;
}

std::vector<OpProfileRow> ByOpName(const std::vector<OpProfileRow>& rows) {
  std::map<std::string, OpProfileRow> by;
  for (const OpProfileRow& r : rows) {
    OpProfileRow& s = by[r.op];
    s.op = r.op;
    s.calls += r.calls;
    s.self_ms += r.self_ms;
    s.total_ms += r.total_ms;
    s.gflop += r.gflop;
  }
  std::vector<OpProfileRow> out;
  for (auto& [name, r] : by) out.push_back(std::move(r));
  std::sort(out.begin(), out.end(),
            [](const OpProfileRow& a, const OpProfileRow& b) { return a.self_ms > b.self_ms; });
  return out;
}

}  // namespace qv2x
