// qv2x.v1.Trainer over core/training's RunStage: one job at a time, paths confined to
// the artifacts folder, progress streamed to the caller and exported to Prometheus.
#ifndef QV2X_TRAINER_TRAINER_SERVICE_H_
#define QV2X_TRAINER_TRAINER_SERVICE_H_

#include <string>

#include "absl/status/statusor.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "qv2x/v1/trainer.grpc.pb.h"
#include "trainer/job_registry.h"

namespace qv2x::trainer {

struct TrainerOptions {
  std::string artifacts_dir;  // every checkpoint read or written lives under here
  std::string configs_dir;    // stage YAMLs may also be read from here
  int threads = 0;            // intra-op threads for training; 0 = default
};

class TrainerService final : public v1::Trainer::Service {
 public:
  TrainerService(TrainerOptions options, prometheus::Registry& registry);

  grpc::Status RunStage(grpc::ServerContext* ctx, const v1::RunStageRequest* request,
                        grpc::ServerWriter<v1::TrainProgress>* writer) override;
  grpc::Status ListJobs(grpc::ServerContext* ctx, const v1::ListJobsRequest* request,
                        v1::ListJobsResponse* response) override;
  grpc::Status GetJob(grpc::ServerContext* ctx, const v1::GetJobRequest* request,
                      v1::Job* response) override;
  grpc::Status CancelJob(grpc::ServerContext* ctx, const v1::CancelJobRequest* request,
                         v1::Job* response) override;

  // Asks the running job to stop at its next step (used on SIGTERM).
  void CancelAll() { jobs_.CancelAll(); }

 private:
  grpc::Status RunStageImpl(grpc::ServerContext* ctx, const v1::RunStageRequest* request,
                            grpc::ServerWriter<v1::TrainProgress>* writer);
  absl::StatusOr<std::string> ResolveConfig(const std::string& path) const;

  TrainerOptions options_;
  JobRegistry jobs_;
  prometheus::Gauge& stage_;
  prometheus::Gauge& lr_;
  prometheus::Counter& steps_;
  prometheus::Family<prometheus::Gauge>& loss_;
  prometheus::Family<prometheus::Counter>& jobs_total_;
  prometheus::Histogram& step_seconds_;
};

}  // namespace qv2x::trainer

#endif  // QV2X_TRAINER_TRAINER_SERVICE_H_
