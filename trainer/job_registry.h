// Bookkeeping of training jobs: at most one running, the others kept for ListJobs.
#ifndef QV2X_TRAINER_JOB_REGISTRY_H_
#define QV2X_TRAINER_JOB_REGISTRY_H_

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "qv2x/v1/trainer.pb.h"

namespace qv2x::trainer {

class JobRegistry {
 public:
  struct Handle {
    std::string id;
    std::shared_ptr<std::atomic<bool>> cancel;
  };

  // RESOURCE_EXHAUSTED naming the running job when one is running.
  absl::StatusOr<Handle> Begin(int stage, const std::string& output_dir);
  void Update(const std::string& id, const v1::TrainProgress& progress);
  // state: done | failed | cancelled
  void End(const std::string& id, const std::string& state, const std::string& error,
           const std::string& last_checkpoint);
  absl::StatusOr<v1::Job> Get(const std::string& id) const;
  std::vector<v1::Job> List() const;
  absl::StatusOr<v1::Job> Cancel(const std::string& id);
  void CancelAll();

 private:
  mutable std::mutex mu_;
  std::map<std::string, v1::Job> jobs_;
  std::map<std::string, std::shared_ptr<std::atomic<bool>>> cancels_;
  std::optional<std::string> running_;
  int next_id_ = 1;
};

}  // namespace qv2x::trainer

#endif  // QV2X_TRAINER_JOB_REGISTRY_H_
