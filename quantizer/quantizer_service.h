// qv2x.v1.Quantizer over core/quant: one PTQ job at a time, paths confined like the
// trainer's, progress streamed and exported to Prometheus, and a final FP32-vs-INT8 report.
#ifndef QV2X_QUANTIZER_QUANTIZER_SERVICE_H_
#define QV2X_QUANTIZER_QUANTIZER_SERVICE_H_

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"
#include "qv2x/v1/quantizer.grpc.pb.h"

namespace qv2x::quantizer {

struct QuantizerOptions {
  std::string artifacts_dir;  // outputs (and inputs) live here
  std::string configs_dir;    // read-only stage YAMLs and scene files
  int threads = 0;            // intra-op threads; 0 = default
};

class QuantizerService final : public v1::Quantizer::Service {
 public:
  QuantizerService(QuantizerOptions options, prometheus::Registry& registry);

  grpc::Status Quantize(grpc::ServerContext* ctx, const v1::QuantizeRequest* request,
                        grpc::ServerWriter<v1::QuantizeProgress>* writer) override;
  grpc::Status CancelQuantize(grpc::ServerContext* ctx, const v1::CancelQuantizeRequest* request,
                              v1::CancelQuantizeResponse* response) override;
  void CancelAll();

 private:
  grpc::Status Run(grpc::ServerContext* ctx, const v1::QuantizeRequest* request,
                   grpc::ServerWriter<v1::QuantizeProgress>* writer, const std::string& id,
                   std::atomic<bool>* cancel);
  // "sim:<scene.yaml>" or a dataset folder, resolved like any input.
  absl::StatusOr<std::string> ResolveSource(const std::string& source, const std::string& field);

  QuantizerOptions options_;
  std::mutex mu_;
  std::optional<std::string> running_;
  std::shared_ptr<std::atomic<bool>> cancel_;
  int next_id_ = 1;

  prometheus::Gauge& running_gauge_;
  prometheus::Family<prometheus::Counter>& jobs_;
  prometheus::Family<prometheus::Gauge>& block_loss_;
  prometheus::Family<prometheus::Gauge>& model_bytes_;
  prometheus::Family<prometheus::Gauge>& ap_;
  prometheus::Family<prometheus::Gauge>& latency_;
};

}  // namespace qv2x::quantizer

#endif  // QV2X_QUANTIZER_QUANTIZER_SERVICE_H_
